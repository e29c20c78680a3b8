//! Bulk intake: parsing and validation of CSV, JSON Lines and XLSX files (data-driven), and the
//! import route end to end.

use std::io::{Cursor, Write};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use karya_core::id::{EngagementId, WorkItemId};
use karya_server::intake::{parse, Format, IntakeError, ParsedFile, XLSX_MEDIA_TYPE};
use serde_json::{json, Value};

use crate::TestApp;

/// Parses `file` and renders the outcome as text: one line per row, or one per row error.
fn render(format: Format, file: Vec<u8>) -> String {
    let engagement_id = EngagementId::from_uuid(uuid::Uuid::nil());
    let mut n = 0u128;
    let mut new_id = || {
        n += 1;
        WorkItemId::from_uuid(uuid::Uuid::from_u128(n))
    };
    match parse(format, &mut Cursor::new(file), engagement_id, &mut new_id) {
        Ok(ParsedFile { rows, row_numbers }) => rows
            .iter()
            .zip(&row_numbers)
            .map(|(row, number)| {
                format!(
                    "row {number}: {:?} {} ref={:?} {}\n",
                    row.title,
                    row.priority.code(),
                    row.external_ref,
                    row.input
                )
            })
            .collect(),
        Err(IntakeError::Refused(report)) => {
            let mut text: String = report
                .errors
                .iter()
                .map(|e| format!("error row {} [{:?}]: {}\n", e.row, e.column, e.message))
                .collect();
            text.push_str(&format!("total {}\n", report.total_errors));
            text
        }
        Err(other) => format!("{other}\n"),
    }
}

fn check(format: Format, file: &str, expect: &str) {
    assert_eq!(
        render(format, file.as_bytes().to_vec()),
        expect,
        "file:\n{file}"
    );
}

#[test]
fn csv_rows_become_items() {
    check(
        Format::Csv,
        "title,priority,external_ref,amount,zip,note\n\
         Claim one,high,CLM-1,1250.50,02139,\"multi\nline\"\n\
         Claim two,,,-3,,\n\
         \"Claim \"\"three\"\"\",URGENT,7,1e3,x,\n",
        "row 2: \"Claim one\" high ref=Some(\"CLM-1\") {\"amount\":1250.50,\"zip\":\"02139\",\"note\":\"multi\\nline\"}\n\
         row 4: \"Claim two\" normal ref=None {\"amount\":-3}\n\
         row 5: \"Claim \\\"three\\\"\" urgent ref=Some(\"7\") {\"amount\":1e3,\"zip\":\"x\"}\n",
    );
}

#[test]
fn csv_cells_holding_json_objects_or_arrays_stay_structured() {
    check(
        Format::Csv,
        "title,claimant,documents,note\n\
         Claim,\"{\"\"name\"\": \"\"Ann\"\"}\",\"[\"\"a.pdf\"\"]\",{not json}\n",
        "row 2: \"Claim\" normal ref=None {\"claimant\":{\"name\": \"Ann\"},\"documents\":[\"a.pdf\"],\"note\":\"{not json}\"}\n",
    );
}

#[test]
fn csv_bad_rows_refuse_the_file() {
    check(
        Format::Csv,
        "title,priority\n\
         ok,low\n\
         ,high\n\
         fine,soon\n\
         a,b,c\n",
        "error row 3 [Some(\"title\")]: title is required\n\
         error row 4 [Some(\"priority\")]: unknown priority \"soon\": use low, normal, high or urgent\n\
         error row 5 [None]: the row has 3 cells, the header 2 columns\n\
         total 3\n",
    );
    check(
        Format::Csv,
        "name,priority,name\nx,low,y\n",
        "error row 1 [Some(\"name\")]: the column appears twice in the header\n\
         error row 1 [Some(\"title\")]: the header has no title column\n\
         total 2\n",
    );
    check(Format::Csv, "title\n", "the file holds no rows\n");
    check(Format::Csv, "", "the file holds no rows\n");
}

#[test]
fn an_error_report_lists_the_first_errors_and_counts_all() {
    let mut file = String::from("title,priority\n");
    for _ in 0..250 {
        file.push_str("t,bogus\n");
    }
    let text = render(Format::Csv, file.into_bytes());
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), karya_server::intake::ROW_ERRORS_MAX + 1);
    assert!(lines[0].starts_with("error row 2 "), "{}", lines[0]);
    assert_eq!(*lines.last().unwrap(), "total 250");
}

#[test]
fn json_lines_rows_become_items() {
    check(
        Format::JsonLines,
        "{\"title\": \"Claim one\", \"priority\": \"high\", \"external_ref\": 1001, \"amount\": 12.5, \"tags\": [\"a\", \"b\"], \"gone\": null}\n\
         \n\
         {\"title\": \"Claim two\", \"policy\": {\"id\": \"P-9\"}}\n",
        "row 1: \"Claim one\" high ref=Some(\"1001\") {\"amount\":12.5,\"tags\":[\"a\", \"b\"]}\n\
         row 3: \"Claim two\" normal ref=None {\"policy\":{\"id\": \"P-9\"}}\n",
    );
    check(
        Format::JsonLines,
        "{\"title\": \"ok\"}\n\
         [1, 2]\n\
         {\"title\": {\"a\": 1}}\n\
         {\"priority\": \"low\"}\n",
        "error row 2 [None]: the line is not a JSON object: invalid type: sequence, expected a map at line 1 column 0\n\
         error row 3 [Some(\"title\")]: title must be a string or an integer\n\
         error row 4 [Some(\"title\")]: title is required\n\
         total 3\n",
    );
}

/// A minimal XLSX workbook with one sheet of inline strings and numbers.
pub fn xlsx(rows: &[Vec<Value>]) -> Vec<u8> {
    let mut sheet = String::from(
        r#"<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>"#,
    );
    for (r, row) in rows.iter().enumerate() {
        sheet.push_str(&format!(r#"<row r="{}">"#, r + 1));
        for (c, value) in row.iter().enumerate() {
            let reference = format!("{}{}", (b'A' + c as u8) as char, r + 1);
            match value {
                Value::Null => {}
                Value::Number(n) => {
                    sheet.push_str(&format!(r#"<c r="{reference}"><v>{n}</v></c>"#))
                }
                Value::Bool(b) => sheet.push_str(&format!(
                    r#"<c r="{reference}" t="b"><v>{}</v></c>"#,
                    u8::from(*b)
                )),
                other => sheet.push_str(&format!(
                    r#"<c r="{reference}" t="inlineStr"><is><t>{}</t></is></c>"#,
                    other.as_str().unwrap()
                )),
            }
        }
        sheet.push_str("</row>");
    }
    sheet.push_str("</sheetData></worksheet>");
    let parts = [
        (
            "[Content_Types].xml",
            r#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>"#.to_string(),
        ),
        (
            "_rels/.rels",
            r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#.to_string(),
        ),
        (
            "xl/workbook.xml",
            r#"<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="Items" sheetId="1" r:id="rId1"/></sheets></workbook>"#.to_string(),
        ),
        (
            "xl/_rels/workbook.xml.rels",
            r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>"#.to_string(),
        ),
        ("xl/worksheets/sheet1.xml", sheet),
    ];
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, text) in parts {
        zip.start_file(name, options).unwrap();
        zip.write_all(text.as_bytes()).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

#[test]
fn xlsx_rows_become_items() {
    let file = xlsx(&[
        vec![
            json!("title"),
            json!("priority"),
            json!("external_ref"),
            json!("amount"),
            json!("paid"),
        ],
        vec![
            json!("Claim one"),
            json!("low"),
            json!(4711),
            json!(99.5),
            json!(true),
        ],
        vec![],
        vec![json!("Claim two"), Value::Null, json!("CLM-2"), json!(3)],
    ]);
    assert_eq!(
        render(Format::Xlsx, file),
        "row 2: \"Claim one\" low ref=Some(\"4711\") {\"amount\":99.5,\"paid\":true}\n\
         row 4: \"Claim two\" normal ref=Some(\"CLM-2\") {\"amount\":3}\n"
    );
    let file = xlsx(&[
        vec![json!("title"), json!("priority")],
        vec![Value::Null, json!("high")],
        vec![json!("x"), json!("later")],
    ]);
    assert_eq!(
        render(Format::Xlsx, file),
        "error row 2 [Some(\"title\")]: title is required\n\
         error row 3 [Some(\"priority\")]: unknown priority \"later\": use low, normal, high or urgent\n\
         total 2\n"
    );
    assert_eq!(
        render(Format::Xlsx, b"not a zip".to_vec()),
        "the file is not readable as XLSX: Zip error: invalid Zip archive: Could not find EOCD\n"
    );
}

/// A client with an engagement that runs on no pack, created in the store (the API gives every
/// engagement its service line's pack): the file mechanics, without an intake form.
async fn plain_engagement(app: &TestApp, name: &str) -> (String, String) {
    let (client_id, _) = app.client_with_engagement(name).await;
    let engagement_id = EngagementId::from_uuid(uuid::Uuid::now_v7());
    app.store
        .tenant(client_id.parse().unwrap())
        .create_engagement(
            &karya_store::NewEngagement {
                id: engagement_id,
                name: "Claims intake".into(),
                service_line: karya_core::service_line::ServiceLine::InsuranceProcessing,
            },
            jiff::Timestamp::now(),
        )
        .await
        .unwrap();
    (client_id, engagement_id.to_string())
}

fn imports_path(client_id: &str, engagement_id: &str) -> String {
    format!("/api/v1/clients/{client_id}/engagements/{engagement_id}/imports")
}

async fn upload(app: &TestApp, path: &str, content_type: &str, body: Vec<u8>) -> crate::Reply {
    let request = Request::post(path)
        .header("content-type", content_type)
        .body(Body::from(body))
        .unwrap();
    app.send(request).await
}

#[tokio::test]
async fn a_clean_file_is_imported_whole() {
    let app = TestApp::new().await;
    let (client_id, engagement_id) = plain_engagement(&app, "Acme").await;
    let path = imports_path(&client_id, &engagement_id);
    let csv = "title,priority,external_ref,claimant\nFlood,high,F-1,Ann\nFire,,F-2,Bob\n";
    let reply = upload(&app, &path, "text/csv; charset=utf-8", csv.into()).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
    assert_eq!(reply.body["imported"], 2);
    let first = reply.body["first_id"].as_str().unwrap();
    let item = app
        .get(&format!("/api/v1/clients/{client_id}/work-items/{first}"))
        .await;
    assert_eq!(item.body["title"], "Flood");
    assert_eq!(item.body["external_ref"], "F-1");
    assert_eq!(item.body["input"], json!({"claimant": "Ann"}));

    let jsonl = "{\"title\": \"Theft\", \"external_ref\": \"F-3\", \"amount\": 10}\n";
    let reply = upload(&app, &path, "application/x-ndjson", jsonl.into()).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
    assert_eq!(reply.body["first_id"], reply.body["last_id"]);

    let book = xlsx(&[
        vec![json!("title"), json!("external_ref")],
        vec![json!("Hail"), json!("F-4")],
    ]);
    let reply = upload(&app, &path, XLSX_MEDIA_TYPE, book).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");

    let items = app
        .get(&format!("/api/v1/clients/{client_id}/work-items"))
        .await;
    assert_eq!(items.body["items"].as_array().unwrap().len(), 4);

    let audit = app
        .get(&format!("/api/v1/clients/{client_id}/events?limit=500"))
        .await;
    assert_eq!(
        audit.body["next_after"],
        Value::Null,
        "all events on one page"
    );
    let created = audit.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|event| event["kind"] == "work_item.created")
        .count();
    assert_eq!(created, 4);
    // Files are larger than JSON requests: a few MiB pass the route's own body limit.
    let mut big = String::from("title,note\n");
    while big.len() <= 3 * karya_server::BODY_BYTES_MAX {
        big.push_str("Water damage in the basement,customer called twice about it\n");
    }
    let n_rows = big.lines().count() - 1;
    let reply = upload(&app, &path, "text/csv", big.into_bytes()).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
    assert_eq!(reply.body["imported"], n_rows);
    app.finish().await;
}

#[tokio::test]
async fn a_file_with_bad_rows_is_refused_whole() {
    let app = TestApp::new().await;
    let (client_id, engagement_id) = plain_engagement(&app, "Acme").await;
    let path = imports_path(&client_id, &engagement_id);
    let csv = "title,priority\nGood,low\n,high\nAlso good,whenever\n";
    let reply = upload(&app, &path, "text/csv", csv.into()).await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{reply:?}");
    assert_eq!(
        reply.body,
        json!({"error": {
            "code": "invalid_rows",
            "message": "2 rows are refused; nothing was imported",
            "rows": [
                {"row": 3, "column": "title", "message": "title is required"},
                {"row": 4, "column": "priority", "message": "unknown priority \"whenever\": use low, normal, high or urgent"},
            ],
            "total_errors": 2,
        }})
    );

    // Duplicates against stored items and within the file are row errors too.
    let first = "title,external_ref\nA,R-1\n";
    let reply = upload(&app, &path, "text/csv", first.into()).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
    let second = "title,external_ref\nB,R-2\nC,R-1\nD,R-2\n";
    let reply = upload(&app, &path, "text/csv", second.into()).await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{reply:?}");
    let rows = &reply.body["error"]["rows"];
    assert_eq!(reply.body["error"]["total_errors"], 2);
    assert_eq!(
        (rows[0]["row"].clone(), rows[0]["column"].clone()),
        (json!(3), json!("external_ref"))
    );
    assert_eq!(
        rows[1]["message"],
        "external_ref \"R-2\" is given on row 2 already"
    );

    let items = app
        .get(&format!("/api/v1/clients/{client_id}/work-items"))
        .await;
    assert_eq!(items.body["items"].as_array().unwrap().len(), 1);
    app.finish().await;
}

#[tokio::test]
async fn imports_refuse_wrong_types_bodies_and_tenants() {
    let app = TestApp::new().await;
    let (client_id, engagement_id) = plain_engagement(&app, "Acme").await;
    let path = imports_path(&client_id, &engagement_id);
    let csv = || b"title\nx\n".to_vec();

    let reply = upload(&app, &path, "application/json", csv()).await;
    assert_eq!(reply.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(reply.body["error"]["code"], "unsupported_media_type");

    let reply = upload(&app, &path, "text/csv", b"title\n".to_vec()).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.body["error"]["message"], "the file holds no rows");

    let reply = upload(&app, &path, XLSX_MEDIA_TYPE, csv()).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{reply:?}");

    // Another client's engagement answers exactly like a missing one.
    let (other_client, _) = app.client_with_engagement("Globex").await;
    let foreign = upload(
        &app,
        &imports_path(&other_client, &engagement_id),
        "text/csv",
        csv(),
    )
    .await;
    let missing_id = uuid::Uuid::now_v7().to_string();
    let missing = upload(
        &app,
        &imports_path(&other_client, &missing_id),
        "text/csv",
        csv(),
    )
    .await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND);
    assert_eq!(
        foreign.body["error"]["message"]
            .as_str()
            .unwrap()
            .replace(&engagement_id, "ID"),
        missing.body["error"]["message"]
            .as_str()
            .unwrap()
            .replace(&missing_id, "ID"),
    );

    let reply = upload(&app, &imports_path(&client_id, "nope"), "text/csv", csv()).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    app.finish().await;
}

#[tokio::test]
async fn an_upload_over_the_limit_is_refused_unread() {
    let app = TestApp::new().await;
    let (client_id, engagement_id) = plain_engagement(&app, "Acme").await;
    let path = imports_path(&client_id, &engagement_id);
    // A streamed body that claims no length and goes past the limit.
    let limit = karya_server::intake::FILE_BYTES_MAX as usize;
    let chunk = vec![b'x'; 1024 * 1024];
    let n_chunks = limit / chunk.len() + 1;
    let stream = futures_stream(chunk, n_chunks);
    let request = Request::post(&path)
        .header("content-type", "text/csv")
        .body(Body::from_stream(stream))
        .unwrap();
    let reply = app.send(request).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE, "{reply:?}");
    assert_eq!(reply.body["error"]["code"], "payload_too_large");
    app.finish().await;
}

/// A stream of `n` copies of `chunk`.
fn futures_stream(
    chunk: Vec<u8>,
    n: usize,
) -> impl futures_core::Stream<Item = Result<Vec<u8>, std::io::Error>> + Send + 'static {
    ChunkStream { chunk, left: n }
}

struct ChunkStream {
    chunk: Vec<u8>,
    left: usize,
}

impl futures_core::Stream for ChunkStream {
    type Item = Result<Vec<u8>, std::io::Error>;
    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        if self.left == 0 {
            return std::task::Poll::Ready(None);
        }
        self.left -= 1;
        std::task::Poll::Ready(Some(Ok(self.chunk.clone())))
    }
}

#[tokio::test]
async fn a_pack_engagement_checks_its_intake_form_and_starts_each_item() {
    let app = TestApp::new().await;
    // Over the API an engagement runs on its service line's pack: here IP research.
    let (client_id, engagement_id) = app.client_with_engagement("Acme").await;
    let path = imports_path(&client_id, &engagement_id);
    let input = crate::ip_research_input();

    // Rows whose input misses the form's required fields are refused, naming the field.
    let csv = "title,external_ref,invention_title\nSearch,P-1,Heat pump\n";
    let reply = upload(&app, &path, "text/csv", csv.into()).await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{reply:?}");
    let rows = reply.body["error"]["rows"].as_array().unwrap();
    assert!(!rows.is_empty());
    assert!(rows.iter().all(|r| r["row"] == 2), "{rows:?}");
    assert!(
        rows.iter().all(|r| r["message"]
            .as_str()
            .unwrap()
            .starts_with("does not match the ip-prior-art-search input form")),
        "{rows:?}"
    );
    let items = app
        .get(&format!("/api/v1/clients/{client_id}/work-items"))
        .await;
    assert_eq!(items.body["items"].as_array().unwrap().len(), 0);

    // Valid rows (JSON Lines, and CSV with the nested fields in JSON cells) are imported and
    // start on the pack's first step, as a single intake does.
    let mut line = input.clone();
    line["title"] = json!("Prior-art search, heat pump");
    line["external_ref"] = json!("P-2");
    let jsonl = format!("{line}\n");
    let reply = upload(&app, &path, "application/x-ndjson", jsonl.into()).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
    let mut header = vec!["title".to_string(), "external_ref".to_string()];
    let mut cells = vec!["\"Prior-art search, valve\"".to_string(), "P-3".to_string()];
    for (key, value) in input.as_object().unwrap() {
        header.push(key.clone());
        let text = match value {
            Value::String(text) => text.clone(),
            other => other.to_string(),
        };
        cells.push(format!("\"{}\"", text.replace('"', "\"\"")));
    }
    let csv = format!("{}\n{}\n", header.join(","), cells.join(","));
    let reply = upload(&app, &path, "text/csv", csv.into()).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");

    let items = app
        .get(&format!("/api/v1/clients/{client_id}/work-items"))
        .await;
    let items = items.body["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 2);
    for item in &items {
        assert_eq!(item["state"], "in_progress", "{item}");
        let tasks = app
            .store
            .tenant(client_id.parse().unwrap())
            .tasks_of(item["id"].as_str().unwrap().parse().unwrap())
            .await
            .unwrap();
        let jobs = app
            .store
            .tenant(client_id.parse().unwrap())
            .jobs_of(item["id"].as_str().unwrap().parse().unwrap())
            .await
            .unwrap();
        assert_eq!(
            tasks.len() + jobs.len(),
            1,
            "the first step is queued: {item}"
        );
    }
    let audit = app.get(&format!("/api/v1/clients/{client_id}/audit")).await;
    assert_eq!(audit.status, StatusCode::OK, "{audit:?}");
    assert_eq!(audit.body["intact"], true, "{audit:?}");
    app.finish().await;
}
