//! Bulk intake at the edge: a file of work items (CSV, JSON Lines or XLSX) parsed into rows,
//! validated row by row, and handed to the store, which takes all of them or none.
//!
//! The file's columns are `title` (required), `priority` and `external_ref` (optional); every
//! other column becomes a key of the item's `input` object. A cell that is a JSON number stays
//! a number, `true` and `false` are booleans, and a cell that is a JSON object or array (`{"name": "Ann"}`, `["a.pdf"]`) stays that
//! object or array, so that flat files can carry the nested fields of a pack's input form;
//! empty cells are left out. When the engagement runs on a pack, every row's input must match
//! the pack's input form (checked by [`store`]). A file with any bad row is refused whole, with a report
//! naming row, column and problem for the first [`ROW_ERRORS_MAX`] rows and counting the rest.
//!
//! Parsing is synchronous and reads from a file (a spooled upload, or the CLI's argument), one
//! record at a time, so the file's bytes and its rows are not both in memory. The HTTP route
//! ([`router`]) streams the request body to a temporary file first, under [`FILE_BYTES_MAX`].
//! The same [`parse`] and [`store`] serve the CLI and the benchmark, so they measure the path
//! clients use.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{BufRead, BufReader, Read, Seek, Write};
use std::path::PathBuf;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::RequestExt;
use http_body_util::BodyExt;
use karya_core::id::{ClientId, EngagementId, WorkItemId};
use karya_core::model::Priority;
use karya_store::{ImportOutcome, ImportProblem, ImportSummary, NewWorkItem, StoreError, Tenant};
use serde_json::json;
use serde_json::value::RawValue;

use crate::error::{ApiError, ErrorCode};
use crate::extract::{parse_id, Path};
use crate::work_items::{EXTERNAL_REF_LEN_MAX, INPUT_BYTES_MAX, TITLE_LEN_MAX};
use crate::{check_text, ApiResult, AppState};

/// Largest file accepted: a million typical rows (about 120 bytes each) with room to spare,
/// and a bound on the temporary file an upload may occupy.
pub const FILE_BYTES_MAX: u64 = 256 * 1024 * 1024;
/// Most rows in one file. One import is one transaction, and its rows are held in memory
/// until it commits; larger batches are split by the client.
pub const ROWS_MAX: usize = 1_000_000;
/// Row errors listed in a refusal (all are counted).
pub const ROW_ERRORS_MAX: usize = karya_store::IMPORT_ROW_ERRORS_MAX;
/// Most columns in a file: far more than any pack's input form has fields.
pub const COLUMNS_MAX: usize = 512;
/// Bytes of an upload gathered before each write to the temporary file.
const SPOOL_CHUNK_BYTES: usize = 1024 * 1024;

/// Whole floats below this (2^53) are exact integers, and are written as such.
const WHOLE_FLOAT_MAX: f64 = 9_007_199_254_740_992.0;

/// The media type of an XLSX workbook.
pub const XLSX_MEDIA_TYPE: &str =
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

/// The file formats accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    JsonLines,
    Xlsx,
}

impl Format {
    /// The format of a request's `content-type` (parameters such as `charset` ignored).
    pub fn from_media_type(content_type: &str) -> Option<Format> {
        let media_type = content_type.split(';').next()?.trim();
        match media_type.to_ascii_lowercase().as_str() {
            "text/csv" => Some(Format::Csv),
            "application/x-ndjson" | "application/jsonl" | "application/jsonlines" => {
                Some(Format::JsonLines)
            }
            XLSX_MEDIA_TYPE => Some(Format::Xlsx),
            _ => None,
        }
    }

    /// The format of a file name's extension.
    pub fn from_path(path: &std::path::Path) -> Option<Format> {
        let extension = path.extension()?.to_str()?.to_ascii_lowercase();
        match extension.as_str() {
            "csv" => Some(Format::Csv),
            "jsonl" | "ndjson" => Some(Format::JsonLines),
            "xlsx" => Some(Format::Xlsx),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::JsonLines => "jsonl",
            Format::Xlsx => "xlsx",
        }
    }
}

/// A problem with one row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    /// The row as the client sees it: the line for CSV and JSON Lines, the sheet row for XLSX.
    pub row: u64,
    /// The column (or JSON key) at fault, when the problem is in one.
    pub column: Option<String>,
    pub message: String,
}

/// Why a file was refused: the first [`ROW_ERRORS_MAX`] row errors and how many there are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorReport {
    pub errors: Vec<RowError>,
    pub total_errors: u64,
}

/// What can go wrong with an intake file.
#[derive(Debug)]
pub enum IntakeError {
    /// The file cannot be read as its format at all, or holds no rows.
    Unreadable(String),
    /// The file is beyond [`FILE_BYTES_MAX`] or [`ROWS_MAX`].
    TooLarge(String),
    /// Rows are bad: nothing is stored.
    Refused(ErrorReport),
    Store(StoreError),
}

impl fmt::Display for IntakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IntakeError::Unreadable(message) | IntakeError::TooLarge(message) => {
                f.write_str(message)
            }
            IntakeError::Refused(report) => write!(
                f,
                "{} rows are refused; nothing was imported",
                report.total_errors
            ),
            IntakeError::Store(err) => err.fmt(f),
        }
    }
}

impl std::error::Error for IntakeError {}

impl From<StoreError> for IntakeError {
    fn from(err: StoreError) -> IntakeError {
        IntakeError::Store(err)
    }
}

/// The rows of a file that passed validation, ready for the store.
#[derive(Debug, Default)]
pub struct ParsedFile {
    pub rows: Vec<NewWorkItem>,
    /// The row number (as in [`RowError::row`]) of each row, for the store's row errors.
    pub row_numbers: Vec<u64>,
}

/// Something to parse a file from: XLSX needs to seek (it is a zip archive).
pub trait FileSource: Read + Seek + Send {}
impl<T: Read + Seek + Send> FileSource for T {}

/// Reads a whole file, validating every row. `new_id` mints the items' ids, in row order.
pub fn parse(
    format: Format,
    source: &mut dyn FileSource,
    engagement_id: EngagementId,
    new_id: &mut dyn FnMut() -> WorkItemId,
) -> Result<ParsedFile, IntakeError> {
    let mut sink = RowSink {
        engagement_id,
        new_id,
        parsed: ParsedFile::default(),
        errors: Vec::new(),
        total_errors: 0,
    };
    match format {
        Format::Csv => parse_csv(source, &mut sink)?,
        Format::JsonLines => parse_json_lines(source, &mut sink)?,
        Format::Xlsx => parse_xlsx(source, &mut sink)?,
    }
    sink.finish()
}

/// Hands validated rows to the store in one import. When the engagement runs on a pack, every
/// row's input is first checked against the pack's input form, as a single intake checks it,
/// and the items start on the pack's first step. Duplicate references and inputs the form
/// refuses come back as row errors with the file's row numbers.
pub async fn store(
    tenant: &Tenant,
    packs: &karya_packs::Catalog,
    engagement_id: EngagementId,
    parsed: &ParsedFile,
    now: jiff::Timestamp,
    on_progress: &(dyn Fn(u64) + Send + Sync),
) -> Result<ImportSummary, IntakeError> {
    if let Some((pack_id, _)) = tenant.engagement_pack(engagement_id).await? {
        let pack = packs.by_id(&pack_id).ok_or_else(|| {
            IntakeError::Store(karya_store::StoreError::Other(anyhow::anyhow!(
                "engagement runs on pack {pack_id}, which is not loaded"
            )))
        })?;
        check_pack_form(pack, parsed)?;
    }
    let outcome = tenant
        .import_work_items_with_progress(engagement_id, &parsed.rows, now, on_progress)
        .await?;
    match outcome {
        ImportOutcome::Imported(summary) => Ok(summary),
        ImportOutcome::Refused(refusal) => {
            let errors = refusal
                .errors
                .iter()
                .map(|error| RowError {
                    row: parsed.row_numbers[error.index],
                    column: Some("external_ref".into()),
                    message: match &error.problem {
                        ImportProblem::DuplicateInImport {
                            external_ref,
                            first_index,
                        } => format!(
                            "external_ref {external_ref:?} is given on row {} already",
                            parsed.row_numbers[*first_index]
                        ),
                        ImportProblem::DuplicateStored {
                            external_ref,
                            existing,
                        } => format!(
                            "a work item with external_ref {external_ref:?} exists already in \
                             this engagement: {existing}"
                        ),
                    },
                })
                .collect();
            Err(IntakeError::Refused(ErrorReport {
                errors,
                total_errors: refusal.total_errors,
            }))
        }
    }
}

/// Checks every row's input against the pack's input form; the refusal names the first
/// [`ROW_ERRORS_MAX`] problems (row, `input` and the field's JSON pointer) and counts them all.
fn check_pack_form(pack: &karya_packs::LoadedPack, parsed: &ParsedFile) -> Result<(), IntakeError> {
    let mut errors = Vec::new();
    let mut total_errors = 0u64;
    for (row, number) in parsed.rows.iter().zip(&parsed.row_numbers) {
        let Err(problems) = karya_packs::validate_input(pack, &row.input) else {
            continue;
        };
        for problem in problems {
            total_errors += 1;
            if errors.len() < ROW_ERRORS_MAX {
                errors.push(RowError {
                    row: *number,
                    column: Some(format!("input{}", problem.path)),
                    message: format!(
                        "does not match the {} input form: {}",
                        pack.pack.id, problem.problem
                    ),
                });
            }
        }
    }
    match total_errors {
        0 => Ok(()),
        _ => Err(IntakeError::Refused(ErrorReport {
            errors,
            total_errors,
        })),
    }
}

/// Validates one row's `input` object (JSON text): a JSON object within [`INPUT_BYTES_MAX`].
/// The pack's input form, when the engagement runs on one, is checked by [`store`].
pub fn validate_row_input(input: &str) -> Result<(), String> {
    if input.len() > INPUT_BYTES_MAX {
        return Err(format!(
            "input is {} bytes; the limit is {INPUT_BYTES_MAX}",
            input.len()
        ));
    }
    if !input.starts_with('{') || !input.ends_with('}') {
        return Err("input must be a JSON object".into());
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Rows: validation shared by the three formats.

/// Collects rows and row errors. Once a row is bad the file is refused, so later good rows
/// are no longer kept, only checked.
struct RowSink<'a> {
    engagement_id: EngagementId,
    new_id: &'a mut dyn FnMut() -> WorkItemId,
    parsed: ParsedFile,
    errors: Vec<RowError>,
    total_errors: u64,
}

/// One row's values before validation.
#[derive(Default)]
struct Draft {
    title: Option<String>,
    priority: Option<String>,
    external_ref: Option<String>,
    /// The `input` object being written: `{` and the members so far.
    input: String,
}

impl Draft {
    fn new() -> Draft {
        let mut input = String::with_capacity(128);
        input.push('{');
        Draft {
            input,
            ..Draft::default()
        }
    }

    /// Adds `"key":` (key already JSON-encoded) to the input object.
    fn input_key(&mut self, key_json: &str) {
        if self.input.len() > 1 {
            self.input.push(',');
        }
        self.input.push_str(key_json);
        self.input.push(':');
    }

    fn input_str(&mut self, key_json: &str, value: &str) {
        self.input_key(key_json);
        push_json_str(&mut self.input, value);
    }

    fn input_raw(&mut self, key_json: &str, raw: &str) {
        self.input_key(key_json);
        self.input.push_str(raw);
    }

    /// A text cell: a JSON number, `true` or `false`, object or array as itself, anything else
    /// as a string.
    fn input_cell(&mut self, key_json: &str, text: &str) {
        let trimmed = text.trim();
        if is_json_number(text) || text == "true" || text == "false" || is_json_structure(trimmed) {
            self.input_raw(key_json, trimmed);
        } else {
            self.input_str(key_json, text);
        }
    }
}

/// Whether a cell holds a JSON object or array (checked by parsing it).
fn is_json_structure(text: &str) -> bool {
    let bracketed = (text.starts_with('{') && text.ends_with('}'))
        || (text.starts_with('[') && text.ends_with(']'));
    bracketed && serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok()
}

impl RowSink<'_> {
    fn error(&mut self, row: u64, column: Option<&str>, message: impl Into<String>) {
        self.total_errors += 1;
        if self.errors.len() < ROW_ERRORS_MAX {
            self.errors.push(RowError {
                row,
                column: column.map(str::to_string),
                message: message.into(),
            });
        }
        // The file is refused: free the rows kept so far.
        self.parsed = ParsedFile::default();
    }

    /// Rows seen, good or bad, against [`ROWS_MAX`].
    fn check_count(&self, n_rows: usize) -> Result<(), IntakeError> {
        if n_rows > ROWS_MAX {
            return Err(IntakeError::TooLarge(format!(
                "the file has more than {ROWS_MAX} rows: split it into several imports"
            )));
        }
        Ok(())
    }

    /// Validates a draft and keeps it as a row when the file is still clean.
    fn row(&mut self, row: u64, mut draft: Draft) {
        let mut bad = false;
        let title = match draft
            .title
            .as_deref()
            .map(|t| check_text("title", t, TITLE_LEN_MAX))
        {
            None => {
                self.error(row, Some("title"), "title is required");
                bad = true;
                None
            }
            Some(Err(err)) => {
                self.error(row, Some("title"), err.message);
                bad = true;
                None
            }
            Some(Ok(title)) => Some(title.to_string()),
        };
        let priority = match draft.priority.as_deref().map(str::trim) {
            None | Some("") => Priority::Normal,
            Some(text) => match Priority::parse(&text.to_ascii_lowercase()) {
                Some(priority) => priority,
                None => {
                    self.error(
                        row,
                        Some("priority"),
                        format!("unknown priority {text:?}: use low, normal, high or urgent"),
                    );
                    bad = true;
                    Priority::Normal
                }
            },
        };
        let external_ref = match draft.external_ref.as_deref() {
            None => None,
            Some(text) if text.trim().is_empty() => None,
            Some(text) => match check_text("external_ref", text, EXTERNAL_REF_LEN_MAX) {
                Ok(text) => Some(text.to_string()),
                Err(err) => {
                    self.error(row, Some("external_ref"), err.message);
                    bad = true;
                    None
                }
            },
        };
        draft.input.push('}');
        if let Err(message) = validate_row_input(&draft.input) {
            self.error(row, Some("input"), message);
            bad = true;
        }
        if bad || self.total_errors > 0 {
            return;
        }
        draft.input.shrink_to_fit();
        self.parsed.rows.push(NewWorkItem {
            id: (self.new_id)(),
            engagement_id: self.engagement_id,
            external_ref,
            title: title.expect("checked above"),
            priority,
            input: draft.input,
        });
        self.parsed.row_numbers.push(row);
    }

    fn finish(self) -> Result<ParsedFile, IntakeError> {
        if self.total_errors > 0 {
            return Err(IntakeError::Refused(ErrorReport {
                errors: self.errors,
                total_errors: self.total_errors,
            }));
        }
        if self.parsed.rows.is_empty() {
            return Err(IntakeError::Unreadable("the file holds no rows".into()));
        }
        Ok(self.parsed)
    }
}

/// What a column of a table (CSV, XLSX) holds.
enum Column {
    Title,
    Priority,
    ExternalRef,
    /// A key of `input`, JSON-encoded once for every row.
    Input {
        key_json: String,
    },
}

/// Reads a header row into columns; refuses a header without `title`, with an unnamed or
/// repeated column, or with more than [`COLUMNS_MAX`] columns.
fn header_columns(
    names: &[String],
    header_row: u64,
    sink: &mut RowSink<'_>,
) -> Option<Vec<Column>> {
    if names.len() > COLUMNS_MAX {
        sink.error(
            header_row,
            None,
            format!(
                "the header has {} columns; the limit is {COLUMNS_MAX}",
                names.len()
            ),
        );
        return None;
    }
    let mut columns = Vec::with_capacity(names.len());
    let mut seen = std::collections::HashSet::new();
    for (idx, name) in names.iter().enumerate() {
        let name = name.trim().trim_start_matches('\u{feff}');
        if name.is_empty() {
            sink.error(
                header_row,
                None,
                format!("column {} has no name in the header", idx + 1),
            );
            continue;
        }
        if !seen.insert(name.to_string()) {
            sink.error(
                header_row,
                Some(name),
                "the column appears twice in the header",
            );
            continue;
        }
        columns.push(match name {
            "title" => Column::Title,
            "priority" => Column::Priority,
            "external_ref" => Column::ExternalRef,
            _ => {
                let mut key_json = String::with_capacity(name.len() + 2);
                push_json_str(&mut key_json, name);
                Column::Input { key_json }
            }
        });
    }
    if !seen.contains("title") {
        sink.error(header_row, Some("title"), "the header has no title column");
    }
    (sink.total_errors == 0).then_some(columns)
}

// ---------------------------------------------------------------------------------------------
// CSV

fn parse_csv(source: &mut dyn FileSource, sink: &mut RowSink<'_>) -> Result<(), IntakeError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(BufReader::with_capacity(256 * 1024, source));
    let mut record = csv::StringRecord::new();
    let columns = match reader.read_record(&mut record) {
        Ok(false) => return Err(IntakeError::Unreadable("the file holds no rows".into())),
        Ok(true) => {
            let names: Vec<String> = record.iter().map(str::to_string).collect();
            match header_columns(&names, 1, sink) {
                Some(columns) => columns,
                None => return Ok(()),
            }
        }
        Err(err) => return Err(csv_unreadable(err)),
    };
    let mut n_rows = 0usize;
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => return Ok(()),
            Ok(true) => {
                n_rows += 1;
                sink.check_count(n_rows)?;
                let row = record.position().map_or(0, |p| p.line());
                if record.len() == 1 && record[0].is_empty() {
                    continue; // a blank line
                }
                if record.len() > columns.len() {
                    sink.error(
                        row,
                        None,
                        format!(
                            "the row has {} cells, the header {} columns",
                            record.len(),
                            columns.len()
                        ),
                    );
                    continue;
                }
                let mut draft = Draft::new();
                for (column, cell) in columns.iter().zip(record.iter()) {
                    if cell.trim().is_empty() {
                        continue;
                    }
                    match column {
                        Column::Title => draft.title = Some(cell.to_string()),
                        Column::Priority => draft.priority = Some(cell.to_string()),
                        Column::ExternalRef => draft.external_ref = Some(cell.to_string()),
                        Column::Input { key_json } => draft.input_cell(key_json, cell),
                    }
                }
                sink.row(row, draft);
            }
            Err(err) => match err.kind() {
                csv::ErrorKind::Utf8 { pos, .. } => {
                    n_rows += 1;
                    sink.check_count(n_rows)?;
                    let row = pos.as_ref().map_or(0, |p| p.line());
                    sink.error(row, None, "the row is not valid UTF-8");
                }
                _ => return Err(csv_unreadable(err)),
            },
        }
    }
}

fn csv_unreadable(err: csv::Error) -> IntakeError {
    IntakeError::Unreadable(format!("the file is not readable as CSV: {err}"))
}

/// Whether a cell is a JSON number literal (`-12`, `3.5`, `1e6`; not `012`, `+1`, `1.`),
/// so that identifiers with leading zeros stay text.
fn is_json_number(text: &str) -> bool {
    let bytes = text.as_bytes();
    let mut idx = 0;
    if bytes.first() == Some(&b'-') {
        idx += 1;
    }
    let digits = |idx: &mut usize| {
        let start = *idx;
        while *idx < bytes.len() && bytes[*idx].is_ascii_digit() {
            *idx += 1;
        }
        *idx - start
    };
    let int_start = idx;
    let n_int = digits(&mut idx);
    if n_int == 0 || (n_int > 1 && bytes[int_start] == b'0') {
        return false;
    }
    if idx < bytes.len() && bytes[idx] == b'.' {
        idx += 1;
        if digits(&mut idx) == 0 {
            return false;
        }
    }
    if idx < bytes.len() && (bytes[idx] == b'e' || bytes[idx] == b'E') {
        idx += 1;
        if idx < bytes.len() && (bytes[idx] == b'+' || bytes[idx] == b'-') {
            idx += 1;
        }
        if digits(&mut idx) == 0 {
            return false;
        }
    }
    idx == bytes.len()
}

// ---------------------------------------------------------------------------------------------
// JSON Lines

fn parse_json_lines(
    source: &mut dyn FileSource,
    sink: &mut RowSink<'_>,
) -> Result<(), IntakeError> {
    let mut reader = BufReader::with_capacity(256 * 1024, source);
    let mut line = Vec::with_capacity(1024);
    let mut line_number = 0u64;
    let mut n_rows = 0usize;
    loop {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .map_err(|err| IntakeError::Unreadable(format!("cannot read the file: {err}")))?;
        if n == 0 {
            return Ok(());
        }
        line_number += 1;
        let Ok(text) = std::str::from_utf8(&line) else {
            n_rows += 1;
            sink.check_count(n_rows)?;
            sink.error(line_number, None, "the line is not valid UTF-8");
            continue;
        };
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        n_rows += 1;
        sink.check_count(n_rows)?;
        let object: BTreeMap<String, &RawValue> = match serde_json::from_str(text) {
            Ok(object) => object,
            Err(err) => {
                sink.error(
                    line_number,
                    None,
                    format!("the line is not a JSON object: {err}"),
                );
                continue;
            }
        };
        let mut draft = Draft::new();
        let mut bad = false;
        for (key, raw) in &object {
            let raw = raw.get();
            if raw == "null" {
                continue;
            }
            match key.as_str() {
                "title" | "priority" | "external_ref" => {
                    let Some(text) = json_scalar_text(raw) else {
                        sink.error(
                            line_number,
                            Some(key),
                            format!("{key} must be a string or an integer"),
                        );
                        bad = true;
                        continue;
                    };
                    match key.as_str() {
                        "title" => draft.title = Some(text),
                        "priority" => draft.priority = Some(text),
                        _ => draft.external_ref = Some(text),
                    }
                }
                _ => {
                    let mut key_json = String::with_capacity(key.len() + 2);
                    push_json_str(&mut key_json, key);
                    draft.input_raw(&key_json, raw);
                }
            }
        }
        if !bad {
            sink.row(line_number, draft);
        }
    }
}

/// The text of a JSON string, or of an integer (client references are often numbers).
fn json_scalar_text(raw: &str) -> Option<String> {
    match raw.as_bytes().first()? {
        b'"' => serde_json::from_str::<String>(raw).ok(),
        b'-' | b'0'..=b'9' if raw.bytes().all(|b| b == b'-' || b.is_ascii_digit()) => {
            Some(raw.to_string())
        }
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// XLSX

fn parse_xlsx(source: &mut dyn FileSource, sink: &mut RowSink<'_>) -> Result<(), IntakeError> {
    use calamine::{DataRef, Reader, Xlsx};

    let unreadable = |err: calamine::XlsxError| {
        IntakeError::Unreadable(format!("the file is not readable as XLSX: {err}"))
    };
    let mut workbook: Xlsx<_> = Xlsx::new(BufReader::new(source)).map_err(unreadable)?;
    let Some(sheet) = workbook.sheet_names().into_iter().next() else {
        return Err(IntakeError::Unreadable("the workbook has no sheet".into()));
    };
    let mut cells = workbook
        .worksheet_cells_reader(&sheet)
        .map_err(unreadable)?;

    // Cells come row by row, left to right, and only cells with content are listed. The cells
    // of one row are gathered, then the row is read: the first one as the header.
    let mut columns: Option<Vec<Column>> = None;
    let mut pending: Vec<(usize, DataRef<'_>)> = Vec::new();
    let mut pending_row: Option<u32> = None;
    let mut n_rows = 0usize;
    loop {
        let cell = cells.next_cell().map_err(unreadable)?;
        let position = cell.as_ref().map(|cell| cell.get_position());
        if let Some(row_idx) = pending_row.filter(|row| position.is_none_or(|(r, _)| r != *row)) {
            let row = u64::from(row_idx) + 1;
            match &columns {
                None => {
                    let width = pending.last().map_or(0, |(col, _)| col + 1);
                    if width > COLUMNS_MAX {
                        sink.error(
                            row,
                            None,
                            format!("the header has more than {COLUMNS_MAX} columns"),
                        );
                        return Ok(());
                    }
                    let mut names = vec![String::new(); width];
                    for (col, value) in &pending {
                        names[*col] = cell_text(value).unwrap_or_default();
                    }
                    match header_columns(&names, row, sink) {
                        Some(found) => columns = Some(found),
                        None => return Ok(()),
                    }
                }
                Some(columns) => {
                    n_rows += 1;
                    sink.check_count(n_rows)?;
                    xlsx_row(row, columns, &pending, sink);
                }
            }
            pending.clear();
            pending_row = None;
        }
        let Some(cell) = cell else {
            return Ok(());
        };
        let (row_idx, col_idx) = cell.get_position();
        let value = cell.get_value().clone();
        if !matches!(value, DataRef::Empty) {
            pending_row = Some(row_idx);
            pending.push((col_idx as usize, value));
        }
    }
}

/// Reads one data row of a sheet into a draft and hands it on.
fn xlsx_row(
    row: u64,
    columns: &[Column],
    cells: &[(usize, calamine::DataRef<'_>)],
    sink: &mut RowSink<'_>,
) {
    use calamine::DataRef;

    let mut draft = Draft::new();
    for (col, value) in cells {
        let Some(column) = columns.get(*col) else {
            sink.error(
                row,
                None,
                format!("cell in column {} has no header", col + 1),
            );
            return;
        };
        match column {
            Column::Title => draft.title = cell_text(value),
            Column::Priority => draft.priority = cell_text(value),
            Column::ExternalRef => draft.external_ref = cell_text(value),
            Column::Input { key_json } => match value {
                DataRef::Int(n) => draft.input_raw(key_json, &n.to_string()),
                // Sheets store every number as a float: whole ones are written as integers.
                DataRef::Float(x) if x.fract() == 0.0 && x.abs() < WHOLE_FLOAT_MAX => {
                    draft.input_raw(key_json, &(*x as i64).to_string())
                }
                DataRef::Float(x) if x.is_finite() => {
                    draft.input_raw(key_json, &json!(x).to_string())
                }
                DataRef::Bool(b) => draft.input_raw(key_json, if *b { "true" } else { "false" }),
                DataRef::Error(err) => {
                    let name: String = serde_json::from_str(key_json).unwrap_or_default();
                    sink.error(row, Some(&name), format!("the cell holds an error: {err}"));
                    return;
                }
                other => {
                    // A sheet types its numbers itself: a text cell stays text unless it
                    // holds a JSON object or array.
                    if let Some(text) = cell_text(other).filter(|t| !t.trim().is_empty()) {
                        match is_json_structure(text.trim()) {
                            true => draft.input_raw(key_json, text.trim()),
                            false => draft.input_str(key_json, &text),
                        }
                    }
                }
            },
        }
    }
    sink.row(row, draft);
}

/// A cell as text: strings as they are, numbers without a needless `.0`, dates in ISO 8601.
fn cell_text(value: &calamine::DataRef<'_>) -> Option<String> {
    use calamine::DataRef;
    match value {
        DataRef::String(text) | DataRef::DateTimeIso(text) | DataRef::DurationIso(text) => {
            Some(text.clone())
        }
        DataRef::SharedString(text) => Some(text.to_string()),
        DataRef::Int(n) => Some(n.to_string()),
        DataRef::Float(x) if x.fract() == 0.0 && x.abs() < WHOLE_FLOAT_MAX => {
            Some((*x as i64).to_string())
        }
        DataRef::Float(x) => Some(x.to_string()),
        DataRef::Bool(b) => Some(b.to_string()),
        DataRef::DateTime(dt) if dt.is_datetime() => {
            let (year, month, day, hour, minute, second, milli) = dt.to_ymd_hms_milli();
            Some(if (hour, minute, second, milli) == (0, 0, 0, 0) {
                format!("{year:04}-{month:02}-{day:02}")
            } else {
                format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}")
            })
        }
        DataRef::DateTime(dt) => Some(dt.as_f64().to_string()),
        DataRef::Error(_) | DataRef::Empty => None,
    }
}

fn push_json_str(out: &mut String, text: &str) {
    // serde_json writes a str as a quoted, escaped JSON string; the bytes are UTF-8.
    let mut bytes = std::mem::take(out).into_bytes();
    serde_json::to_writer(&mut bytes, text).expect("writing to a vec cannot fail");
    *out = String::from_utf8(bytes).expect("json text of utf-8 parts is utf-8");
}

// ---------------------------------------------------------------------------------------------
// HTTP

pub fn api() -> crate::api::Api {
    use crate::auth::{self, Access};
    crate::api::Api::new().route(
        "/api/v1/clients/{client_id}/engagements/{engagement_id}/imports",
        post(import).layer(DefaultBodyLimit::max(FILE_BYTES_MAX as usize)),
        &[(
            axum::http::Method::POST,
            Access::tenant(auth::STAFF, auth::CLIENT_ALL),
        )],
    )
}

async fn import(
    State(state): State<AppState>,
    Path((client_id, engagement_id)): Path<(String, String)>,
    request: Request,
) -> ApiResult<Response> {
    let client_id: ClientId = parse_id(&client_id)?;
    let engagement_id: EngagementId = parse_id(&engagement_id)?;
    let format = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(Format::from_media_type)
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::UnsupportedMediaType,
                format!(
                    "send the file with content-type text/csv, application/x-ndjson or {XLSX_MEDIA_TYPE}"
                ),
            )
        })?;
    let tenant = state.store.tenant(client_id);
    // Refuse an unknown engagement before reading a large body.
    tenant.engagement(engagement_id).await?;
    // The route's `DefaultBodyLimit` bounds the body read here.
    let spool = spool_body(request.into_limited_body()).await?;

    let minting = state.clone();
    let parsed = tokio::task::spawn_blocking(move || {
        let mut file = std::fs::File::open(&spool.path)
            .map_err(|err| IntakeError::Unreadable(format!("cannot reopen the upload: {err}")))?;
        let mut new_id = || WorkItemId::from_uuid(minting.new_id());
        let parsed = parse(format, &mut file, engagement_id, &mut new_id);
        drop(spool);
        parsed
    })
    .await
    .map_err(|err| ApiError::internal(&err))?;
    let summary = match parsed {
        Ok(parsed) => {
            store(
                &tenant,
                &state.packs,
                engagement_id,
                &parsed,
                state.now(),
                &|_| {},
            )
            .await
        }
        Err(err) => Err(err),
    };
    match summary {
        Ok(summary) => Ok((
            StatusCode::CREATED,
            axum::Json(json!({
                "imported": summary.imported,
                "first_id": summary.first_id.to_string(),
                "last_id": summary.last_id.to_string(),
            })),
        )
            .into_response()),
        Err(err) => Ok(error_response(err)),
    }
}

/// The response for an intake failure: a refusal lists its rows, the rest are plain errors.
fn error_response(err: IntakeError) -> Response {
    match err {
        IntakeError::Unreadable(message) => ApiError::invalid(message).into_response(),
        IntakeError::TooLarge(message) => {
            ApiError::new(ErrorCode::PayloadTooLarge, message).into_response()
        }
        IntakeError::Store(err) => ApiError::from(err).into_response(),
        IntakeError::Refused(report) => {
            let rows: Vec<_> = report
                .errors
                .iter()
                .map(|error| {
                    json!({"row": error.row, "column": error.column, "message": error.message})
                })
                .collect();
            let code = ErrorCode::InvalidRows;
            let body = json!({"error": {
                "code": code.as_str(),
                "message": format!("{} rows are refused; nothing was imported", report.total_errors),
                "rows": rows,
                "total_errors": report.total_errors,
            }});
            (code.status(), axum::Json(body)).into_response()
        }
    }
}

/// A temporary file holding an upload; removed when dropped.
struct Spool {
    path: PathBuf,
}

impl Drop for Spool {
    fn drop(&mut self) {
        std::fs::remove_file(&self.path).ok();
    }
}

/// Streams a request body into a temporary file, refusing it past [`FILE_BYTES_MAX`].
async fn spool_body(mut body: Body) -> ApiResult<Spool> {
    let spool = Spool {
        path: std::env::temp_dir().join(format!("karya-intake-{}", uuid::Uuid::now_v7().simple())),
    };
    let path = spool.path.clone();
    let mut file = tokio::task::spawn_blocking(move || std::fs::File::create_new(path))
        .await
        .map_err(|err| ApiError::internal(&err))?
        .map_err(|err| ApiError::internal(&err))?;
    let mut chunk: Vec<u8> = Vec::with_capacity(SPOOL_CHUNK_BYTES);
    loop {
        let frame = body.frame().await.transpose().map_err(|err| {
            let cause = err.into_inner();
            if cause.is::<http_body_util::LengthLimitError>() {
                ApiError::new(ErrorCode::PayloadTooLarge, too_large_message())
            } else {
                ApiError::invalid(format!("cannot read the request body: {cause}"))
            }
        })?;
        let done = frame.is_none();
        if let Some(data) = frame.and_then(|frame| frame.into_data().ok()) {
            chunk.extend_from_slice(&data);
        }
        if chunk.len() >= SPOOL_CHUNK_BYTES || (done && !chunk.is_empty()) {
            // Disk writes block: they go to the blocking pool, a chunk at a time.
            let (returned_file, returned_chunk) = tokio::task::spawn_blocking(move || {
                let mut file = file;
                let written = file.write_all(&chunk);
                chunk.clear();
                written.map(|()| (file, chunk))
            })
            .await
            .map_err(|err| ApiError::internal(&err))?
            .map_err(|err| ApiError::internal(&err))?;
            file = returned_file;
            chunk = returned_chunk;
        }
        if done {
            return Ok(spool);
        }
    }
}

fn too_large_message() -> String {
    format!(
        "the file is larger than {} MiB: split it into several imports",
        FILE_BYTES_MAX / (1024 * 1024)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_numbers_are_told_from_text() {
        for (text, expect) in [
            ("0", true),
            ("-12", true),
            ("3.25", true),
            ("1e6", true),
            ("-2.5E-3", true),
            ("012", false),
            ("+1", false),
            ("1.", false),
            (".5", false),
            ("1e", false),
            ("12a", false),
            ("-", false),
            ("", false),
            ("NaN", false),
        ] {
            assert_eq!(is_json_number(text), expect, "{text:?}");
        }
    }

    #[test]
    fn media_types_and_extensions_name_formats() {
        for (media_type, expect) in [
            ("text/csv", Some(Format::Csv)),
            ("text/csv; charset=utf-8", Some(Format::Csv)),
            ("application/x-ndjson", Some(Format::JsonLines)),
            (XLSX_MEDIA_TYPE, Some(Format::Xlsx)),
            ("application/json", None),
        ] {
            assert_eq!(Format::from_media_type(media_type), expect, "{media_type}");
        }
        for (path, expect) in [
            ("claims.CSV", Some(Format::Csv)),
            ("a/b.jsonl", Some(Format::JsonLines)),
            ("book.xlsx", Some(Format::Xlsx)),
            ("notes.txt", None),
        ] {
            assert_eq!(
                Format::from_path(std::path::Path::new(path)),
                expect,
                "{path}"
            );
        }
    }
}
