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
