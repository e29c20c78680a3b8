//! Documents of a work item through the router: upload with sniffing and limits, list, download
//! with the stored type and disposition, a worker's access only while holding the item's task,
//! and the viewer page and the item page's list.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use karya_core::id::{AssignmentId, ClientId, TaskId, WorkerId};
use karya_core::model::{Designation, Role};
use karya_server::{router, AppState};
use karya_store::NewTask;
use tower::ServiceExt;

use crate::TestApp;

const PDF: &[u8] =
    b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n";
const PNG: &[u8] =
    b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89";

struct Raw {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Vec<u8>,
}

impl Raw {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap())
            .unwrap_or("")
    }
}

async fn call(app: &TestApp, request: Request<Body>, token: &str) -> Raw {
    let mut request = request;
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let response = router(AppState::new(app.store.clone()))
        .oneshot(request)
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    Raw {
        status,
        headers,
        body,
    }
}

async fn upload(
    app: &TestApp,
    token: &str,
    path: &str,
    media_type: Option<&str>,
    bytes: Vec<u8>,
) -> Raw {
    let mut request = Request::post(path);
    if let Some(m) = media_type {
        request = request.header("content-type", m);
    }
    call(app, request.body(Body::from(bytes)).unwrap(), token).await
}

async fn get(app: &TestApp, token: &str, path: &str) -> Raw {
    call(app, Request::get(path).body(Body::empty()).unwrap(), token).await
}

async fn token_for(
    app: &TestApp,
    email: &str,
    role: Role,
    client: Option<ClientId>,
    worker: Option<WorkerId>,
) -> String {
    karya_server::auth::user_with_token(
        &app.store,
        email,
        role,
        client,
        worker,
        jiff::Timestamp::now(),
    )
    .await
    .unwrap()
    .1
}

#[tokio::test]
async fn upload_list_download_and_view() {
    let app = TestApp::new().await;
    let (client, engagement) = app.client_with_engagement("Docs Assurance").await;
    let item = app
        .work_item(&client, &engagement, "claim with scans")
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let client_id: ClientId = client.parse().unwrap();
    let client_user = token_for(
        &app,
        "clerk@docs.example",
        Role::ClientUser,
        Some(client_id),
        None,
    )
    .await;
    let base = format!("/api/v1/clients/{client}/work-items/{item}/documents");

    let created = upload(
        &app,
        &client_user,
        &format!("{base}?name=discharge%20summary%20M%C3%A4rz.pdf"),
        Some("application/pdf"),
        PDF.to_vec(),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    let doc = created.json();
    assert_eq!(doc["name"], "discharge summary März.pdf");
    assert_eq!(doc["size"], PDF.len());
    assert_eq!(doc["sha256"], karya_store::sha256_hex(PDF));
    assert_eq!(doc["media_type"], "application/pdf");
    let png = upload(
        &app,
        &app.token,
        &format!("{base}?name=photo.png"),
        Some("image/png; charset=binary"),
        PNG.to_vec(),
    )
    .await;
    assert_eq!(png.status, StatusCode::CREATED, "{}", png.text());

    let listed = get(&app, &client_user, &base).await;
    assert_eq!(listed.status, StatusCode::OK);
    let items = listed.json()["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["id"], doc["id"]);

    let href = doc["href"].as_str().unwrap().to_string();
    let download = get(&app, &client_user, &href).await;
    assert_eq!(download.status, StatusCode::OK);
    assert_eq!(download.body, PDF);
    assert_eq!(download.header("content-type"), "application/pdf");
    assert_eq!(
        download.header("content-disposition"),
        "attachment; filename=\"discharge summary M_rz.pdf\"; filename*=UTF-8''discharge%20summary%20M%C3%A4rz.pdf"
    );
    assert_eq!(download.header("x-content-type-options"), "nosniff");
    let inline = get(&app, &client_user, &format!("{href}?disposition=inline")).await;
    assert!(inline.header("content-disposition").starts_with("inline;"));
    let bad = get(&app, &client_user, &format!("{href}?disposition=explode")).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);

    // The attachment is in the client's audit trail.
    let events = get(
        &app,
        &app.token,
        &format!("/api/v1/clients/{client}/events?limit=500"),
    )
    .await
    .json();
    let kinds: Vec<&str> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    assert_eq!(
        kinds.iter().filter(|k| **k == "document.attached").count(),
        2,
        "{kinds:?}"
    );

    // The viewer page frames a PDF and shows an image; the item page lists both.
    let pdf_page = get(
        &app,
        &client_user,
        &format!(
            "/ui/clients/{client}/items/{item}/documents/{}",
            doc["id"].as_str().unwrap()
        ),
    )
    .await;
    assert_eq!(pdf_page.status, StatusCode::OK, "{}", pdf_page.text());
    assert!(
        pdf_page.text().contains(&format!(
            "<iframe id=\"document-view\" src=\"{href}?disposition=inline\""
        )),
        "{}",
        pdf_page.text()
    );
    let png_page = get(
        &app,
        &client_user,
        &format!(
            "/ui/clients/{client}/items/{item}/documents/{}",
            png.json()["id"].as_str().unwrap()
        ),
    )
    .await;
    assert!(
        png_page.text().contains("<img id=\"document-view\""),
        "{}",
        png_page.text()
    );
    let item_page = get(
        &app,
        &client_user,
        &format!("/ui/clients/{client}/items/{item}"),
    )
    .await;
    assert!(
        item_page.text().contains("discharge summary März.pdf"),
        "{}",
        item_page.text()
    );
    assert!(item_page.text().contains("photo.png"));
    app.finish().await;
}

#[tokio::test]
async fn bad_uploads_are_refused_and_store_nothing() {
    let app = TestApp::new().await;
    let (client, engagement) = app.client_with_engagement("Docs Refusals").await;
    let item = app.work_item(&client, &engagement, "refusals").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let base = format!("/api/v1/clients/{client}/work-items/{item}/documents");
    let t = app.token.clone();
    // Upload path, media type sent (if any), bytes, and the status and error code expected.
    type Case<'a> = (String, Option<&'a str>, Vec<u8>, StatusCode, &'a str);
    let cases: Vec<Case> = vec![
        (
            format!("{base}?name=a.pdf"),
            None,
            PDF.to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            format!("{base}?name=a.html"),
            Some("text/html"),
            b"<script>".to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            format!("{base}?name=a.png"),
            Some("image/png"),
            PDF.to_vec(),
            StatusCode::BAD_REQUEST,
            "invalid_input",
        ),
        (
            format!("{base}?name=a.json"),
            Some("application/json"),
            b"{\"a\":".to_vec(),
            StatusCode::BAD_REQUEST,
            "invalid_input",
        ),
        (
            format!("{base}?name=a.csv"),
            Some("text/csv"),
            b"a,b\n\xff\xfe\n".to_vec(),
            StatusCode::BAD_REQUEST,
            "invalid_input",
        ),
        (
            format!("{base}?name=a.pdf"),
            Some("application/pdf"),
            Vec::new(),
            StatusCode::BAD_REQUEST,
            "invalid_input",
        ),
        (
            base.clone(),
            Some("application/pdf"),
            PDF.to_vec(),
            StatusCode::BAD_REQUEST,
            "invalid_input",
        ),
        (
            format!("{base}?name=..%2Fetc%2Fpasswd"),
            Some("application/pdf"),
            PDF.to_vec(),
            StatusCode::BAD_REQUEST,
            "invalid_input",
        ),
        (
            format!("{base}?name=%20%20"),
            Some("application/pdf"),
            PDF.to_vec(),
            StatusCode::BAD_REQUEST,
            "invalid_input",
        ),
        (
            format!(
                "/api/v1/clients/{client}/work-items/{}/documents?name=a.pdf",
                uuid::Uuid::now_v7()
            ),
            Some("application/pdf"),
            PDF.to_vec(),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            format!("/api/v1/clients/{client}/work-items/not-a-uuid/documents?name=a.pdf"),
            Some("application/pdf"),
            PDF.to_vec(),
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
        ),
    ];
    for (path, media, bytes, status, code) in cases {
        let reply = upload(&app, &t, &path, media, bytes).await;
        assert_eq!(reply.status, status, "{path} {media:?}: {}", reply.text());
        assert_eq!(reply.json()["error"]["code"], code, "{path}");
    }
    // Beyond the limit: refused by the declared length, and by the bytes when streamed.
    let big = {
        let mut b = PDF.to_vec();
        b.resize(karya_server::documents::DOCUMENT_BYTES_MAX + 1, b' ');
        b
    };
    let reply = upload(
        &app,
        &t,
        &format!("{base}?name=big.pdf"),
        Some("application/pdf"),
        big.clone(),
    )
    .await;
    assert_eq!(
        reply.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        reply.text()
    );
    assert_eq!(reply.json()["error"]["code"], "payload_too_large");
    let stream = futures_util::stream::iter(
        big.chunks(1 << 20)
            .map(|c| Ok::<_, std::io::Error>(c.to_vec()))
            .collect::<Vec<_>>(),
    );
    let request = Request::post(format!("{base}?name=big.pdf"))
        .header("content-type", "application/pdf")
        .body(Body::from_stream(stream))
        .unwrap();
    let reply = call(&app, request, &t).await;
    assert_eq!(
        reply.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        reply.text()
    );

    let listed = get(&app, &t, &base).await.json();
    assert_eq!(listed["items"], serde_json::json!([]), "nothing stored");
    let missing = get(&app, &t, &format!("{base}/{}", uuid::Uuid::now_v7())).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    app.finish().await;
}

#[tokio::test]
async fn a_worker_reads_documents_only_of_an_item_they_hold() {
    let app = TestApp::new().await;
    let (client, engagement) = app.client_with_engagement("Docs Workers").await;
    let held = app.work_item(&client, &engagement, "held").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let other = app.work_item(&client, &engagement, "other").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let client_id: ClientId = client.parse().unwrap();
    let now = jiff::Timestamp::now();
    let worker = WorkerId::from_uuid(uuid::Uuid::now_v7());
    app.store
        .create_worker(worker, "Wendy", None, Designation::Analyst, now)
        .await
        .unwrap();
    let tenant = app.store.tenant(client_id);
    let task = tenant
        .create_task(
            &NewTask {
                id: TaskId::from_uuid(uuid::Uuid::now_v7()),
                work_item_id: held.parse().unwrap(),
                step: "search".into(),
            },
            now,
        )
        .await
        .unwrap();
    tenant
        .assign_task(
            task.id,
            worker,
            AssignmentId::from_uuid(uuid::Uuid::now_v7()),
            now,
        )
        .await
        .unwrap();
    let token = token_for(&app, "wendy@firm.example", Role::Worker, None, Some(worker)).await;
    let mut hrefs = Vec::new();
    for item in [&held, &other] {
        let base = format!("/api/v1/clients/{client}/work-items/{item}/documents");
        let doc = upload(
            &app,
            &app.token,
            &format!("{base}?name=scan.pdf"),
            Some("application/pdf"),
            PDF.to_vec(),
        )
        .await
        .json();
        hrefs.push((base, doc["href"].as_str().unwrap().to_string()));
    }
    let (held_base, held_href) = &hrefs[0];
    assert_eq!(get(&app, &token, held_base).await.status, StatusCode::OK);
    let download = get(&app, &token, held_href).await;
    assert_eq!(
        (download.status, download.body.as_slice()),
        (StatusCode::OK, PDF)
    );
    let (other_base, other_href) = &hrefs[1];
    assert_eq!(
        get(&app, &token, other_base).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get(&app, &token, other_href).await.status,
        StatusCode::NOT_FOUND
    );
    // The task page shows the held item's documents, linked to the viewer, which opens.
    let page = get(
        &app,
        &token,
        &format!("/ui/clients/{client}/tasks/{}", task.id),
    )
    .await;
    assert_eq!(page.status, StatusCode::OK);
    let html = String::from_utf8_lossy(&page.body).to_string();
    assert!(
        html.contains("scan.pdf"),
        "the task page lists the document"
    );
    let viewer = html
        .split("href=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .find(|href| href.contains("/documents/"))
        .expect("a link to the document viewer")
        .replace("&amp;", "&");
    assert_eq!(get(&app, &token, &viewer).await.status, StatusCode::OK);
    // A worker does not upload into the client's item.
    let refused = upload(
        &app,
        &token,
        &format!("{held_base}?name=x.pdf"),
        Some("application/pdf"),
        PDF.to_vec(),
    )
    .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    app.finish().await;
}
