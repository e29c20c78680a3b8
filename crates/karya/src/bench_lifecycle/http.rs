//! A small HTTP/1.1 client over one keep-alive TCP connection: enough to drive karya's JSON API
//! from the load generator without a client library, so the measurement includes little that
//! is not karya.

use anyhow::{anyhow, bail, Context};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Largest response body read; karya's answers in the lifecycle are a few hundred bytes.
const BODY_BYTES_MAX: usize = 1024 * 1024;
/// Most header lines read from one response.
const HEADERS_MAX: usize = 64;

/// One connection, reused for every call of one simulated person.
pub struct Conn {
    stream: BufReader<TcpStream>,
    request: Vec<u8>,
    line: String,
}

/// A response: status and body bytes.
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> anyhow::Result<serde_json::Value> {
        serde_json::from_slice(&self.body).context("response body is not JSON")
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

impl Conn {
    pub async fn open(addr: std::net::SocketAddr) -> anyhow::Result<Conn> {
        let stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("cannot connect to {addr}"))?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream: BufReader::new(stream),
            request: Vec::with_capacity(1024),
            line: String::new(),
        })
    }

    /// Sends one request and reads its response.
    pub async fn call(
        &mut self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<&str>,
    ) -> anyhow::Result<Reply> {
        use std::io::Write;
        self.request.clear();
        let body = body.unwrap_or("");
        write!(
            self.request,
            "{method} {path} HTTP/1.1\r\nhost: karya\r\nauthorization: Bearer {token}\r\n"
        )?;
        if !body.is_empty() || method != "GET" {
            write!(
                self.request,
                "content-type: application/json\r\ncontent-length: {}\r\n",
                body.len()
            )?;
        }
        self.request.extend_from_slice(b"\r\n");
        self.request.extend_from_slice(body.as_bytes());
        self.stream.get_mut().write_all(&self.request).await?;
        self.read_reply().await
    }

    async fn read_reply(&mut self) -> anyhow::Result<Reply> {
        self.line.clear();
        if self.stream.read_line(&mut self.line).await? == 0 {
            bail!("the server closed the connection");
        }
        let status: u16 = self
            .line
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| anyhow!("malformed status line {:?}", self.line.trim_end()))?;
        let mut length: Option<usize> = None;
        let mut chunked = false;
        for _ in 0..HEADERS_MAX {
            self.line.clear();
            self.stream.read_line(&mut self.line).await?;
            let header = self.line.trim_end();
            if header.is_empty() {
                return self.read_body(status, length, chunked).await;
            }
            let Some((name, value)) = header.split_once(':') else {
                bail!("malformed header line {header:?}");
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = Some(value.parse().context("malformed content-length")?);
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.eq_ignore_ascii_case("chunked");
            }
        }
        bail!("more than {HEADERS_MAX} header lines")
    }

    async fn read_body(
        &mut self,
        status: u16,
        length: Option<usize>,
        chunked: bool,
    ) -> anyhow::Result<Reply> {
        let mut body = Vec::new();
        if chunked {
            loop {
                self.line.clear();
                self.stream.read_line(&mut self.line).await?;
                let size = usize::from_str_radix(self.line.trim_end(), 16)
                    .context("malformed chunk size")?;
                if body.len() + size > BODY_BYTES_MAX {
                    bail!("response body larger than {BODY_BYTES_MAX} bytes");
                }
                let start = body.len();
                body.resize(start + size, 0);
                self.stream.read_exact(&mut body[start..]).await?;
                self.line.clear();
                self.stream.read_line(&mut self.line).await?;
                if size == 0 {
                    break;
                }
            }
        } else {
            let length = length.unwrap_or(0);
            if length > BODY_BYTES_MAX {
                bail!("response body larger than {BODY_BYTES_MAX} bytes");
            }
            body.resize(length, 0);
            self.stream.read_exact(&mut body).await?;
        }
        Ok(Reply { status, body })
    }
}
