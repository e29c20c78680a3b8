//! A deliberately small HTTP/1.1 client for the end-to-end tests: one request per connection.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub body: serde_json::Value,
}

/// Sends one request; an error means the server did not answer (it may have been killed).
/// `target` is `HOST:PORT`, or `TOKEN@HOST:PORT` to send a bearer token.
pub fn request(
    addr: &str,
    method: &str,
    path: &str,
    body: Option<&serde_json::Value>,
) -> std::io::Result<Response> {
    let (token, addr) = match addr.split_once('@') {
        Some((token, addr)) => (Some(token), addr),
        None => (None, addr),
    };
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\n{}Content-Length: {}\r\n\r\n",
        token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default(),
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body.as_bytes())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").ok_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "incomplete response")
    })?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, "no status"))?;
    // The server answers with Content-Length bodies; a cut-off body is an incomplete answer.
    let length: Option<usize> = head
        .lines()
        .find_map(|line| {
            line.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().ok())
        })
        .flatten();
    if length.is_some_and(|length| body.len() < length) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "body cut off",
        ));
    }
    let body = if body.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_str(body)?
    };
    Ok(Response { status, body })
}
