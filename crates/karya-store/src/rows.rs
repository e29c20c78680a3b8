//! Row ↔ domain mapping helpers shared by the use-case modules.
//!
//! A stored value that does not parse (an unknown state name, a malformed id) means the
//! database was altered outside karya or by a newer version; it is reported, never guessed at.

use std::fmt::Display;
use std::str::FromStr;

use jiff::Timestamp;
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::Result;

pub(crate) fn get<T>(row: &AnyRow, column: &str) -> Result<T>
where
    T: for<'r> sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>,
{
    Ok(row.try_get(column)?)
}

/// Reads a text column and parses it into a domain type.
pub(crate) fn parse<T>(row: &AnyRow, column: &str) -> Result<T>
where
    T: FromStr,
    T::Err: Display,
{
    let text: String = row.try_get(column)?;
    text.parse()
        .map_err(|err| anyhow::anyhow!("stored {column} {text:?} does not parse: {err}").into())
}

pub(crate) fn timestamp(row: &AnyRow, column: &str) -> Result<Timestamp> {
    let us: i64 = row.try_get(column)?;
    micros(us)
}

fn micros(us: i64) -> Result<Timestamp> {
    Timestamp::from_microsecond(us)
        .map_err(|err| anyhow::anyhow!("stored time {us} out of range: {err}").into())
}

/// The precision the store keeps: microseconds. Callers' timestamps are truncated to it, so a
/// value read back equals the value hashed into the chain.
pub(crate) fn us(ts: Timestamp) -> i64 {
    ts.as_microsecond()
}

/// Whether an error is a unique-constraint violation (a duplicate).
pub(crate) fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(
        err.as_database_error().map(|e| e.kind()),
        Some(sqlx::error::ErrorKind::UniqueViolation)
    )
}

/// Whether an error is a foreign-key violation (a reference to something missing).
pub(crate) fn is_foreign_key_violation(err: &sqlx::Error) -> bool {
    matches!(
        err.as_database_error().map(|e| e.kind()),
        Some(sqlx::error::ErrorKind::ForeignKeyViolation)
    )
}

/// Rows `(id, ord)` of a JSON array of strings bound as `param` (`ord` counting from 0 in the
/// array's order). A statement over a list of ids written this way has one text for any number
/// of ids, so each connection prepares it once and PostgreSQL plans it once; a list of
/// placeholders is a new statement, prepared and planned anew, for every length.
pub(crate) fn json_ids(engine: crate::Engine, param: &str) -> String {
    match engine {
        crate::Engine::Sqlite => format!("SELECT value AS id, key AS ord FROM json_each({param})"),
        crate::Engine::Postgres => format!(
            "SELECT j.id, j.ord - 1 AS ord FROM json_array_elements_text({param}::json) WITH ORDINALITY AS j (id, ord)"
        ),
    }
}

/// The JSON array of `ids` as text, to bind for [`json_ids`].
pub(crate) fn json_id_list<T: ToString>(ids: impl IntoIterator<Item = T>) -> String {
    serde_json::Value::Array(
        ids.into_iter()
            .map(|id| serde_json::Value::String(id.to_string()))
            .collect(),
    )
    .to_string()
}

/// The placeholders of a multi-row `VALUES` list: `rows` rows of `columns` parameters each,
/// numbered from `$1` row by row: `($1, $2), ($3, $4)`.
pub(crate) fn value_rows(rows: usize, columns: usize) -> String {
    (0..rows)
        .map(|row| {
            let params: Vec<String> = (1..=columns)
                .map(|col| format!("${}", row * columns + col))
                .collect();
            format!("({})", params.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    #[test]
    fn value_rows_number_parameters_row_by_row() {
        assert_eq!(super::value_rows(2, 3), "($1, $2, $3), ($4, $5, $6)");
        assert_eq!(super::value_rows(0, 3), "");
    }
}
