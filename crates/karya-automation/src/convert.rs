//! `convert`: records between CSV, JSON, XLSX, fixed-width text and XML; documents to
//! normalised text.
//!
//! What is converted, in order: the records of the latest earlier output (`records`) into the
//! item's `output_format` (data entry) or the input's `to`; else attached CSV, XLSX or JSON
//! files into records; else attached PDFs and text into normalised text (conversion jobs); else
//! the earlier outputs merged into one record (CRM updates, exports), as JSON and one CSV row,
//! or as XML for a safety case. Binary results (XLSX) are returned base64-encoded.

use std::io::{Cursor, Write};

use serde_json::{json, Map, Value};

use crate::extract::value_text;
use crate::tools::{Document, Kind};
use crate::{ocr, text, AutomationError, Context, Result};

pub const XLSX_MEDIA_TYPE: &str =
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

/// Records of a CSV, XLSX or JSON (array or JSON Lines) document, keyed by header.
pub fn read_records(doc: &Document) -> Result<Vec<Map<String, Value>>> {
    let bytes = doc.read()?;
    match doc.kind()? {
        Kind::Csv | Kind::Text => csv_records(&bytes),
        Kind::Xlsx => xlsx_records(&bytes),
        Kind::Json => json_records(&bytes),
        _ => Err(AutomationError::bad(format!(
            "document {:?} is not CSV, XLSX or JSON",
            doc.name
        ))),
    }
}

pub fn csv_records(bytes: &[u8]) -> Result<Vec<Map<String, Value>>> {
    let text =
        String::from_utf8_lossy(bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)).into_owned();
    let first = text.lines().next().unwrap_or("");
    let delimiter = [b',', b';', b'\t', b'|']
        .into_iter()
        .max_by_key(|d| first.bytes().filter(|b| b == d).count())
        .unwrap_or(b',');
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .from_reader(text.as_bytes());
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| AutomationError::bad(format!("CSV header: {e}")))?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    let mut out = Vec::new();
    for (i, row) in reader.records().enumerate() {
        let row = row.map_err(|e| AutomationError::bad(format!("CSV row {}: {e}", i + 2)))?;
        let mut record = Map::new();
        for (h, v) in headers.iter().zip(row.iter()) {
            record.insert(h.clone(), Value::String(v.to_string()));
        }
        out.push(record);
    }
    Ok(out)
}

pub fn xlsx_records(bytes: &[u8]) -> Result<Vec<Map<String, Value>>> {
    use calamine::{Data, Reader, Xlsx};
    let bad = |e: calamine::XlsxError| {
        AutomationError::bad(format!("the file is not readable as XLSX: {e}"))
    };
    let mut workbook: Xlsx<_> = Xlsx::new(Cursor::new(bytes)).map_err(bad)?;
    let range = workbook
        .worksheet_range_at(0)
        .ok_or_else(|| AutomationError::bad("the workbook has no sheet"))?
        .map_err(bad)?;
    let mut rows = range.rows();
    let Some(header) = rows.next() else {
        return Ok(Vec::new());
    };
    let headers: Vec<String> = header
        .iter()
        .map(|c| c.to_string().trim().to_string())
        .collect();
    let mut out = Vec::new();
    for row in rows {
        let mut record = Map::new();
        for (h, cell) in headers.iter().zip(row) {
            if h.is_empty() {
                continue;
            }
            let value = match cell {
                Data::Empty => continue,
                Data::Int(n) => json!(n),
                Data::Float(x) if x.fract() == 0.0 && x.abs() < 1e15 => json!(*x as i64),
                Data::Float(x) => json!(x),
                Data::Bool(b) => json!(b),
                Data::DateTime(dt) if dt.is_datetime() => {
                    let (y, m, d, ..) = dt.to_ymd_hms_milli();
                    json!(format!("{y:04}-{m:02}-{d:02}"))
                }
                Data::DateTime(dt) => json!(dt.as_f64()),
                other => json!(other.to_string()),
            };
            record.insert(h.clone(), value);
        }
        if !record.is_empty() {
            out.push(record);
        }
    }
    Ok(out)
}

pub fn json_records(bytes: &[u8]) -> Result<Vec<Map<String, Value>>> {
    let text = String::from_utf8_lossy(bytes);
    let to_records = |v: Value| -> Result<Vec<Map<String, Value>>> {
        match v {
            Value::Array(items) => Ok(items
                .into_iter()
                .filter_map(|i| i.as_object().cloned())
                .collect()),
            Value::Object(o) => Ok(vec![o]),
            _ => Err(AutomationError::bad(
                "JSON must be an object or an array of objects",
            )),
        }
    };
    match serde_json::from_str::<Value>(&text) {
        Ok(v) => to_records(v),
        Err(_) => text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .enumerate()
            .map(|(i, l)| {
                serde_json::from_str::<Map<String, Value>>(l)
                    .map_err(|e| AutomationError::bad(format!("JSON line {}: {e}", i + 1)))
            })
            .collect(),
    }
}

/// Column names: the preferred ones that occur (a layout's order), then the others in order of
/// appearance.
pub fn ordered_columns(records: &[Map<String, Value>], preferred: &[String]) -> Vec<String> {
    let mut cols: Vec<String> = preferred
        .iter()
        .filter(|p| records.iter().any(|r| r.contains_key(*p)))
        .cloned()
        .collect();
    for c in columns(records) {
        if !cols.contains(&c) {
            cols.push(c);
        }
    }
    cols
}

/// Column names: the first record's keys, then any new key in order of appearance.
pub fn columns(records: &[Map<String, Value>]) -> Vec<String> {
    let mut cols: Vec<String> = Vec::new();
    for r in records {
        for k in r.keys() {
            if !cols.contains(k) {
                cols.push(k.clone());
            }
        }
    }
    cols
}

fn cell_text(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other @ (Value::Array(_) | Value::Object(_))) => other.to_string(),
        Some(other) => other.to_string(),
    }
}

pub fn to_csv(records: &[Map<String, Value>]) -> String {
    to_csv_with(records, &columns(records))
}

pub fn to_csv_with(records: &[Map<String, Value>], cols: &[String]) -> String {
    let mut writer = csv::Writer::from_writer(Vec::new());
    let _ = writer.write_record(cols);
    for r in records {
        let _ = writer.write_record(cols.iter().map(|c| cell_text(r.get(c))));
    }
    String::from_utf8(writer.into_inner().unwrap_or_default()).unwrap_or_default()
}

/// Fixed-width text: each column as wide as its longest value, left-aligned.
pub fn to_fixed_width(records: &[Map<String, Value>], cols: &[String]) -> String {
    let cols = cols.to_vec();
    let widths: Vec<usize> = cols
        .iter()
        .map(|c| {
            records
                .iter()
                .map(|r| cell_text(r.get(c)).chars().count())
                .chain([c.chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    let row = |cells: Vec<String>, out: &mut String| {
        let line: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(line.join(" ").trim_end());
        out.push('\n');
    };
    row(cols.clone(), &mut out);
    for r in records {
        row(cols.iter().map(|c| cell_text(r.get(c))).collect(), &mut out);
    }
    out
}

fn xml_escape(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control() || matches!(c, '\n' | '\t'))
        .map(|c| match c {
            '&' => "&amp;".to_string(),
            '<' => "&lt;".to_string(),
            '>' => "&gt;".to_string(),
            '"' => "&quot;".to_string(),
            c => c.to_string(),
        })
        .collect()
}

fn column_letters(mut index: usize) -> String {
    let mut out = Vec::new();
    loop {
        out.push(b'A' + (index % 26) as u8);
        if index < 26 {
            break;
        }
        index = index / 26 - 1;
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

/// A one-sheet XLSX workbook (stored, uncompressed parts), numbers as numbers.
pub fn to_xlsx(
    records: &[Map<String, Value>],
    cols: &[String],
    sheet_name: &str,
) -> Result<Vec<u8>> {
    let cols = cols.to_vec();
    let mut sheet = String::from(
        r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>"#,
    );
    let header: Vec<Value> = cols.iter().map(|c| json!(c)).collect();
    let body = records.iter().map(|r| {
        cols.iter()
            .map(|c| r.get(c).cloned().unwrap_or(Value::Null))
            .collect::<Vec<_>>()
    });
    for (r, row) in std::iter::once(header).chain(body).enumerate() {
        sheet.push_str(&format!(r#"<row r="{}">"#, r + 1));
        for (c, value) in row.iter().enumerate() {
            let reference = format!("{}{}", column_letters(c), r + 1);
            match value {
                Value::Null => {}
                Value::Number(n) => sheet.push_str(&format!(r#"<c r="{reference}"><v>{n}</v></c>"#)),
                Value::Bool(b) => sheet.push_str(&format!(r#"<c r="{reference}" t="b"><v>{}</v></c>"#, u8::from(*b))),
                other => sheet.push_str(&format!(
                    r#"<c r="{reference}" t="inlineStr"><is><t xml:space="preserve">{}</t></is></c>"#,
                    xml_escape(&cell_text(Some(other)))
                )),
            }
        }
        sheet.push_str("</row>");
    }
    sheet.push_str("</sheetData></worksheet>");
    let sheet_name = xml_escape(
        &sheet_name
            .chars()
            .filter(|c| !"[]:*?/\\".contains(*c))
            .take(31)
            .collect::<String>(),
    );
    let parts = [
        ("[Content_Types].xml", r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>"#.to_string()),
        ("_rels/.rels", r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#.to_string()),
        ("xl/workbook.xml", format!(r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="{sheet_name}" sheetId="1" r:id="rId1"/></sheets></workbook>"#)),
        ("xl/_rels/workbook.xml.rels", r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>"#.to_string()),
        ("xl/worksheets/sheet1.xml", sheet),
    ];
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    let fail = |e: &dyn std::fmt::Display| AutomationError::Tool {
        tool: "xlsx writer".into(),
        message: e.to_string(),
    };
    for (name, text) in parts {
        zip.start_file(name, options).map_err(|e| fail(&e))?;
        zip.write_all(text.as_bytes()).map_err(|e| fail(&e))?;
    }
    Ok(zip.finish().map_err(|e| fail(&e))?.into_inner())
}

/// An XML rendering of a JSON value: objects as elements named by their keys (made safe),
/// arrays as repeated elements.
pub fn to_xml(root: &str, value: &Value) -> String {
    fn name(key: &str) -> String {
        let mut n: String = key
            .chars()
            .map(|c| {
                if c.is_alphanumeric() || c == '_' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        if n.is_empty() || n.starts_with(|c: char| c.is_ascii_digit() || c == '-') {
            n.insert(0, '_');
        }
        n
    }
    fn write(out: &mut String, tag: &str, value: &Value, depth: usize) {
        let pad = "  ".repeat(depth);
        match value {
            Value::Array(items) => {
                for item in items {
                    write(out, tag, item, depth);
                }
            }
            Value::Object(map) => {
                out.push_str(&format!("{pad}<{tag}>\n"));
                for (k, v) in map {
                    write(out, &name(k), v, depth + 1);
                }
                out.push_str(&format!("{pad}</{tag}>\n"));
            }
            Value::Null => out.push_str(&format!("{pad}<{tag}/>\n")),
            other => out.push_str(&format!(
                "{pad}<{tag}>{}</{tag}>\n",
                xml_escape(&value_text(other))
            )),
        }
    }
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    write(&mut out, &name(root), value, 0);
    out
}

pub fn base64(bytes: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        out.push(T[(n >> 18) as usize & 63] as char);
        out.push(T[(n >> 12) as usize & 63] as char);
        out.push(if chunk.len() > 1 {
            T[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if chunk.len() > 2 {
            T[n as usize & 63] as char
        } else {
            '='
        });
    }
    out
}

/// Records rendered in `format`: the file's JSON description with text or base64 content.
pub fn render(records: &[Map<String, Value>], format: &str, base_name: &str) -> Result<Value> {
    render_with(records, &columns(records), format, base_name)
}

/// The same with the columns in a given order.
pub fn render_with(
    records: &[Map<String, Value>],
    cols: &[String],
    format: &str,
    base_name: &str,
) -> Result<Value> {
    let (content, media_type, ext, binary) = match format {
        "csv" => (to_csv_with(records, cols).into_bytes(), "text/csv", "csv", false),
        "json" => (serde_json::to_vec_pretty(records).unwrap_or_default(), "application/json", "json", false),
        "jsonl" => (
            records.iter().map(|r| format!("{}\n", Value::Object(r.clone()))).collect::<String>().into_bytes(),
            "application/x-ndjson",
            "jsonl",
            false,
        ),
        "fixed_width" => (to_fixed_width(records, cols).into_bytes(), "text/plain", "txt", false),
        "xlsx" => (to_xlsx(records, cols, base_name)?, XLSX_MEDIA_TYPE, "xlsx", true),
        "xml" => (to_xml("records", &json!({ "record": records })).into_bytes(), "application/xml", "xml", false),
        other => return Err(AutomationError::bad(format!("cannot convert to {other:?}; csv, json, jsonl, fixed_width, xlsx and xml can be written"))),
    };
    let mut file = json!({
        "name": format!("{base_name}.{ext}"),
        "media_type": media_type,
        "bytes": content.len(),
        "rows": records.len(),
        "columns": cols,
    });
    if binary {
        file["content_base64"] = json!(base64(&content));
    } else {
        file["content"] = json!(String::from_utf8_lossy(&content));
    }
    Ok(file)
}

fn as_records(v: &Value) -> Vec<Map<String, Value>> {
    v.as_array()
        .map(|a| a.iter().filter_map(|r| r.as_object().cloned()).collect())
        .unwrap_or_default()
}

pub(crate) fn run(ctx: &Context) -> Result<Value> {
    let item = ctx.item();
    let base = [
        "batch_id",
        "job_id",
        "case_id",
        "mah_case_id",
        "encounter_id",
        "campaign_id",
    ]
    .iter()
    .find_map(|k| item.get(*k).and_then(Value::as_str))
    .unwrap_or("records")
    .to_string();
    let wanted = ctx
        .input
        .get("to")
        .or_else(|| item.get("output_format"))
        .and_then(Value::as_str)
        .map(str::to_string);

    // 1. Records of an earlier step into the wanted format.
    if let Some(records) = ctx
        .latest_output_with("records")
        .map(as_records)
        .filter(|r| !r.is_empty())
    {
        let format = wanted.unwrap_or_else(|| "csv".into());
        let layout: Vec<String> = item
            .get("layout")
            .and_then(Value::as_array)
            .map(|l| {
                l.iter()
                    .filter_map(|f| f.get("field").and_then(Value::as_str))
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        let file = render_with(
            &records,
            &ordered_columns(&records, &layout),
            &format,
            &base,
        )?;
        return Ok(json!({ "files": [file], "records": records.len() }));
    }

    // 2. Attached data files into records (and into the wanted format).
    let docs = ctx.documents()?;
    let mut files = Vec::new();
    let mut all_records = Vec::new();
    let mut texts = Vec::new();
    for doc in docs.iter().filter(|d| d.path.is_some()) {
        let kind = doc.kind()?;
        match kind {
            Kind::Csv | Kind::Xlsx | Kind::Json => {
                let records = read_records(doc)?;
                let stem = doc
                    .name
                    .rsplit_once('.')
                    .map_or(doc.name.as_str(), |(s, _)| s);
                let format = wanted.clone().unwrap_or_else(|| {
                    if kind == Kind::Json {
                        "csv".into()
                    } else {
                        "json".into()
                    }
                });
                files.push(render(&records, &format, stem)?);
                all_records.extend(records);
            }
            Kind::Pdf | Kind::Text | Kind::Png | Kind::Jpeg | Kind::Tiff => {
                let r = ocr::document(ctx.config(), doc, &ocr::language_arg(ctx.config(), item))?;
                let normal = text::normalise(&r.text());
                let paragraphs = normal
                    .split("\n\n")
                    .filter(|p| !p.trim().is_empty())
                    .count();
                texts.push(json!({
                    "id": doc.id, "name": doc.name, "source": r.source, "pages": r.pages,
                    "paragraphs": paragraphs, "words": normal.split_whitespace().count(), "text": normal,
                }));
            }
            _ => {}
        }
    }
    if !files.is_empty() || !texts.is_empty() {
        return Ok(json!({ "files": files, "records": all_records.len(), "texts": texts }));
    }

    // 3. Earlier outputs merged into one record.
    let outputs = ctx.outputs();
    if outputs.is_empty() {
        return Err(AutomationError::bad(
            "nothing to convert: no earlier output with records, no data or text document attached",
        ));
    }
    let mut merged = Map::new();
    for (_, out) in outputs {
        if let Some(o) = out.as_object() {
            for (k, v) in o {
                merged.insert(k.clone(), v.clone());
            }
        }
    }
    let (format, root) = match ctx.service_line() {
        Some("pharma_and_biotech") => ("xml".to_string(), "safety_case"),
        _ => (wanted.unwrap_or_else(|| "json".into()), "record"),
    };
    let file = if format == "xml" {
        let content = to_xml(root, &Value::Object(merged.clone()));
        json!({ "name": format!("{base}.xml"), "media_type": "application/xml", "bytes": content.len(), "content": content })
    } else {
        render(&[merged.clone()], &format, &base)?
    };
    Ok(json!({ "files": [file], "record": merged }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recs(v: Value) -> Vec<Map<String, Value>> {
        as_records(&v)
    }

    #[test]
    fn csv_round_trip_with_semicolons_and_quotes() {
        let records = csv_records(
            "\u{feff}name;amount;note\nAsha;1.234,50;\"says \"\"hi\"\"\"\nRavi;12;\n".as_bytes(),
        )
        .unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(records[0]["amount"], "1.234,50");
        assert_eq!(records[0]["note"], "says \"hi\"");
        let csv = to_csv(&records);
        assert_eq!(csv_records(csv.as_bytes()).unwrap(), records);
    }

    #[test]
    fn xlsx_round_trip_through_calamine() {
        let records = recs(json!([
            {"uan": "100912345678", "name": "Ramesh & Sons <Pune>", "gross": 68400, "rate": 0.12, "active": true},
            {"uan": "101455512345", "name": "Shilpa N", "gross": 31250.5}
        ]));
        let bytes = to_xlsx(&records, &columns(&records), "PF register").unwrap();
        let back = xlsx_records(&bytes).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(back[0]["name"], "Ramesh & Sons <Pune>");
        assert_eq!(back[0]["uan"], "100912345678");
        assert_eq!(back[0]["gross"], 68400);
        assert_eq!(back[0]["rate"], 0.12);
        assert_eq!(back[0]["active"], true);
        assert_eq!(back[1]["gross"], 31250.5);
        assert!(!back[1].contains_key("active"));
    }

    #[test]
    fn wide_sheets_have_two_letter_columns() {
        assert_eq!(column_letters(0), "A");
        assert_eq!(column_letters(25), "Z");
        assert_eq!(column_letters(26), "AA");
        assert_eq!(column_letters(701), "ZZ");
        assert_eq!(column_letters(702), "AAA");
    }

    #[test]
    fn json_lines_and_arrays() {
        assert_eq!(json_records(b"{\"a\":1}\n{\"a\":2}\n").unwrap().len(), 2);
        assert_eq!(json_records(b"[{\"a\":1},{\"a\":2},3]").unwrap().len(), 2);
        assert!(json_records(b"{\"a\":1}\n{oops")
            .unwrap_err()
            .to_string()
            .contains("line 2"));
    }

    #[test]
    fn fixed_width_and_xml() {
        let records = recs(json!([{"id": "1", "name": "Asha"}, {"id": "22", "name": "Ravi K"}]));
        assert_eq!(
            to_fixed_width(&records, &columns(&records)),
            "id name\n1  Asha\n22 Ravi K\n"
        );
        let xml = to_xml(
            "case",
            &json!({"patient": {"initials": "R&K"}, "events": [{"pt": "Jaundice"}, {"pt": "ALT increased"}]}),
        );
        assert!(xml.contains("<initials>R&amp;K</initials>"), "{xml}");
        assert_eq!(xml.matches("<events>").count(), 2);
    }

    #[test]
    fn base64_matches_the_rfc_vectors() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn data_entry_export_in_the_items_format() {
        let automation = crate::Automation::new(crate::Config::default());
        let item: Value = serde_json::from_str(
            &karya_packs::builtin()
                .unwrap()
                .packs()
                .iter()
                .find(|p| p.pack.service_line.code() == "data_entry")
                .unwrap()
                .pack
                .examples[0]
                .input,
        )
        .unwrap();
        let records = json!([{"serial_number": "SN1", "pin_code": "411038"}, {"serial_number": "SN2", "pin_code": "560001"}]);
        let out = automation
            .run(
                "convert",
                &json!({"item": item, "outputs": {"adjudication": {"records": records}}}),
            )
            .unwrap();
        assert_eq!(out["files"][0]["name"], "WRC-2026-0311-A.csv");
        assert_eq!(
            out["files"][0]["content"],
            "serial_number,pin_code\nSN1,411038\nSN2,560001\n"
        );
        let out = automation
            .run("convert", &json!({"item": item, "to": "bogus", "outputs": {"adjudication": {"records": records}}}))
            .unwrap_err();
        assert!(out.to_string().contains("bogus"));
    }
}
