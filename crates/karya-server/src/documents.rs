//! Documents of a work item: upload (raw body, `?name=`), list, and download.
//!
//! An upload is refused unless its content type is one karya reads (PDF, PNG, JPEG, TIFF, CSV,
//! XLSX, JSON, plain text) and its bytes are what the type says: magic bytes for the binary
//! kinds, UTF-8 without NUL for the text kinds, and a parse for JSON. The body is bounded by
//! [`DOCUMENT_BYTES_MAX`] (413 beyond). Client users of the client and staff may upload; a
//! worker may read the documents of an item only while holding one of its tasks.

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::RequestExt;
use karya_core::id::{ClientId, DocumentId, WorkItemId};
use serde::{Deserialize, Serialize};

use crate::api::Api;
use crate::auth::{self, Access};
use crate::error::{ApiError, ErrorCode};
use crate::extract::parse_id;
use crate::{ApiResult, AppState};

/// Largest document accepted: 20 MiB (a scanned multi-page PDF at 300 dpi fits).
pub const DOCUMENT_BYTES_MAX: usize = 20 * 1024 * 1024;
/// Longest document name, in characters.
pub const NAME_CHARS_MAX: usize = 200;

/// The kinds of file karya accepts, by media type.
pub const MEDIA_TYPES: &[&str] = &[
    "application/pdf",
    "image/png",
    "image/jpeg",
    "image/tiff",
    "text/csv",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/json",
    "text/plain",
];

pub fn api() -> Api {
    Api::new()
        .route(
            "/api/v1/clients/{client_id}/work-items/{work_item_id}/documents",
            get(list_documents)
                .post(upload_document)
                .layer(DefaultBodyLimit::max(DOCUMENT_BYTES_MAX)),
            &[
                (
                    Method::GET,
                    Access::tenant_or_holder(auth::WORK_READ, auth::CLIENT_ALL),
                ),
                (Method::POST, Access::tenant(auth::STAFF, auth::CLIENT_ALL)),
            ],
        )
        .route(
            "/api/v1/clients/{client_id}/work-items/{work_item_id}/documents/{document_id}",
            get(download_document),
            &[(
                Method::GET,
                Access::tenant_or_holder(auth::WORK_READ, auth::CLIENT_ALL),
            )],
        )
}

/// A document as the API shows it.
#[derive(Debug, Serialize)]
pub struct DocumentDto {
    pub id: String,
    pub work_item_id: String,
    pub name: String,
    pub media_type: String,
    pub size: u64,
    pub sha256: String,
    pub created_at: String,
    pub uploaded_by: Option<String>,
    /// Where to download it.
    pub href: String,
}

impl DocumentDto {
    pub fn from_document(client_id: ClientId, d: &karya_store::Document) -> DocumentDto {
        DocumentDto {
            id: d.id.to_string(),
            work_item_id: d.work_item_id.to_string(),
            name: d.name.clone(),
            media_type: d.media_type.clone(),
            size: d.size,
            sha256: d.sha256.clone(),
            created_at: d.created_at.to_string(),
            uploaded_by: d.uploaded_by.map(|u| u.to_string()),
            href: format!(
                "/api/v1/clients/{client_id}/work-items/{}/documents/{}",
                d.work_item_id, d.id
            ),
        }
    }
}

/// The media type of a `Content-Type` header without parameters, lower-cased.
fn essence(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Whether the bytes are of the declared kind; the reason when not.
pub fn sniff(media_type: &str, bytes: &[u8]) -> Result<(), String> {
    let starts = |magic: &[u8]| bytes.starts_with(magic);
    let ok = match media_type {
        "application/pdf" => starts(b"%PDF-"),
        "image/png" => starts(b"\x89PNG\r\n\x1a\n"),
        "image/jpeg" => starts(&[0xFF, 0xD8, 0xFF]),
        "image/tiff" => starts(b"II*\0") || starts(b"MM\0*"),
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" => {
            starts(b"PK\x03\x04")
        }
        "text/csv" | "text/plain" | "application/json" => {
            let text = std::str::from_utf8(bytes)
                .map_err(|_| format!("a {media_type} document must be UTF-8 text"))?;
            if text.contains('\0') {
                return Err(format!(
                    "a {media_type} document must not contain NUL bytes"
                ));
            }
            if media_type == "application/json" {
                serde_json::from_str::<serde::de::IgnoredAny>(text)
                    .map_err(|err| format!("the document is not JSON: {err}"))?;
            }
            true
        }
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!("the bytes are not a {media_type} file"))
    }
}

/// Checks a document's name: not empty, not too long, no path separators or control characters.
pub fn check_name(name: &str) -> ApiResult<&str> {
    let name = crate::check_text("name", name, NAME_CHARS_MAX)?;
    if name.contains(['/', '\\']) || name == "." || name == ".." {
        return Err(ApiError::invalid("name must not contain / or \\"));
    }
    if name.contains(['\n', '\t']) {
        return Err(ApiError::invalid("name must be one line"));
    }
    Ok(name)
}

#[derive(Debug, Deserialize)]
struct UploadQuery {
    name: Option<String>,
}

async fn upload_document(
    State(state): State<AppState>,
    Path((client_id, work_item_id)): Path<(String, String)>,
    Query(query): Query<UploadQuery>,
    request: Request,
) -> ApiResult<(StatusCode, axum::Json<DocumentDto>)> {
    let client_id: ClientId = parse_id(&client_id)?;
    let work_item_id: WorkItemId = parse_id(&work_item_id)?;
    let media_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(essence)
        .filter(|m| MEDIA_TYPES.contains(&m.as_str()))
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::UnsupportedMediaType,
                format!(
                    "send the file as its own content type, one of: {}",
                    MEDIA_TYPES.join(", ")
                ),
            )
        })?;
    let name = check_name(query.name.as_deref().unwrap_or(""))?.to_string();
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > DOCUMENT_BYTES_MAX as u64) {
        return Err(too_large());
    }
    let uploaded_by = auth::principal(request.extensions()).map(|p| p.user.id);
    let tenant = state.store.tenant(client_id);
    // An unknown item (or another client's) is refused before the body is read.
    tenant.work_item(work_item_id).await?;
    let bytes = axum::body::to_bytes(request.into_limited_body(), DOCUMENT_BYTES_MAX)
        .await
        .map_err(|err| {
            let cause = err.into_inner();
            // The limit error may be wrapped by the layers the body went through.
            let mut link: Option<&(dyn std::error::Error + 'static)> = Some(cause.as_ref());
            let mut over_limit = false;
            while let Some(e) = link {
                over_limit |= e.is::<http_body_util::LengthLimitError>();
                link = e.source();
            }
            if over_limit {
                too_large()
            } else {
                ApiError::invalid(format!("cannot read the request body: {cause}"))
            }
        })?;
    if bytes.is_empty() {
        return Err(ApiError::invalid("the document is empty"));
    }
    sniff(&media_type, &bytes).map_err(ApiError::invalid)?;
    let document = tenant
        .attach_document(
            karya_store::NewDocument {
                id: DocumentId::from_uuid(state.new_id()),
                work_item_id,
                name: &name,
                media_type: &media_type,
                bytes: &bytes,
                uploaded_by,
            },
            state.now(),
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(DocumentDto::from_document(client_id, &document)),
    ))
}

fn too_large() -> ApiError {
    ApiError::new(
        ErrorCode::PayloadTooLarge,
        format!(
            "the document is larger than {} MiB",
            DOCUMENT_BYTES_MAX / (1024 * 1024)
        ),
    )
}

#[derive(Debug, Serialize)]
struct DocumentList {
    items: Vec<DocumentDto>,
}

async fn list_documents(
    State(state): State<AppState>,
    Path((client_id, work_item_id)): Path<(String, String)>,
) -> ApiResult<axum::Json<DocumentList>> {
    let client_id: ClientId = parse_id(&client_id)?;
    let work_item_id: WorkItemId = parse_id(&work_item_id)?;
    let documents = state
        .store
        .tenant(client_id)
        .documents(work_item_id)
        .await?;
    Ok(axum::Json(DocumentList {
        items: documents
            .iter()
            .map(|d| DocumentDto::from_document(client_id, d))
            .collect(),
    }))
}

#[derive(Debug, Deserialize)]
struct DownloadQuery {
    /// `inline` to show a PDF or an image in the browser; a download otherwise.
    disposition: Option<String>,
}

/// `Content-Disposition` with an ASCII fallback name and the UTF-8 name (RFC 6266, 5987).
pub fn content_disposition(kind: &str, name: &str) -> String {
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded: String = name
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    format!("{kind}; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

async fn download_document(
    State(state): State<AppState>,
    Path((client_id, work_item_id, document_id)): Path<(String, String, String)>,
    Query(query): Query<DownloadQuery>,
) -> ApiResult<Response> {
    let client_id: ClientId = parse_id(&client_id)?;
    let work_item_id: WorkItemId = parse_id(&work_item_id)?;
    let document_id: DocumentId = parse_id(&document_id)?;
    let inline = match query.disposition.as_deref() {
        None | Some("attachment") => false,
        Some("inline") => true,
        Some(other) => {
            return Err(ApiError::new(
                ErrorCode::InvalidParameter,
                format!("disposition must be inline or attachment, not {other:?}"),
            ))
        }
    };
    let (document, bytes) = state
        .store
        .tenant(client_id)
        .document_bytes(work_item_id, document_id)
        .await?;
    // Only kinds a browser shows without running anything are shown inline.
    let viewable = matches!(
        document.media_type.as_str(),
        "application/pdf" | "image/png" | "image/jpeg" | "image/tiff"
    );
    let kind = if inline && viewable {
        "inline"
    } else {
        "attachment"
    };
    let mut response = Body::from(bytes).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&document.media_type)
            .unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    if let Ok(value) = HeaderValue::from_str(&content_disposition(kind, &document.name)) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    if let Ok(etag) = HeaderValue::from_str(&format!("\"{}\"", document.sha256)) {
        headers.insert(header::ETAG, etag);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffing_checks_the_bytes_against_the_type() {
        assert!(sniff("application/pdf", b"%PDF-1.7\n...").is_ok());
        assert!(sniff("application/pdf", b"<html>").is_err());
        assert!(sniff("image/png", b"\x89PNG\r\n\x1a\nxxxx").is_ok());
        assert!(sniff("image/jpeg", b"\x89PNG\r\n\x1a\n").is_err());
        assert!(sniff("image/tiff", b"MM\0*....").is_ok());
        assert!(sniff("text/csv", b"a,b\n1,2\n").is_ok());
        assert!(sniff("text/csv", b"a,b\n\xff\xfe").is_err());
        assert!(sniff("text/plain", b"a\0b").is_err());
        assert!(sniff("application/json", b"{\"a\": [1, 2]}").is_ok());
        assert!(sniff("application/json", b"{\"a\": ").is_err());
        assert!(sniff(
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            b"PK\x03\x04..."
        )
        .is_ok());
        assert!(sniff("application/zip", b"PK\x03\x04").is_err());
    }

    #[test]
    fn names_are_one_safe_line() {
        assert_eq!(check_name("  claim form.pdf ").unwrap(), "claim form.pdf");
        assert!(check_name("").is_err());
        assert!(check_name("../etc/passwd").is_err());
        assert!(check_name("a\\b.pdf").is_err());
        assert!(check_name("two\nlines").is_err());
        assert!(check_name(&"x".repeat(201)).is_err());
    }

    #[test]
    fn disposition_keeps_unicode_names() {
        assert_eq!(
            content_disposition("inline", "Rechnung März \"A\".pdf"),
            "inline; filename=\"Rechnung M_rz _A_.pdf\"; filename*=UTF-8''Rechnung%20M%C3%A4rz%20%22A%22.pdf"
        );
    }
}
