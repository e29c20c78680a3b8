//! External tools run with a time limit, and the documents of an input.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::{AutomationError, Result};

/// A document of the work item, as the input lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub id: String,
    pub name: String,
    pub media_type: String,
    pub sha256: Option<String>,
    pub path: Option<PathBuf>,
}

/// What a document's bytes are, by their first bytes (and then by media type and name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Pdf,
    Png,
    Jpeg,
    Tiff,
    Xlsx,
    Csv,
    Json,
    Text,
    Other,
}

impl Kind {
    pub fn is_image(self) -> bool {
        matches!(self, Kind::Png | Kind::Jpeg | Kind::Tiff)
    }
}

/// The kind of a file by its magic bytes; text kinds by media type or extension.
pub fn sniff(head: &[u8], media_type: &str, name: &str) -> Kind {
    if head.starts_with(b"%PDF-") {
        return Kind::Pdf;
    }
    if head.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Kind::Png;
    }
    if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Kind::Jpeg;
    }
    if head.starts_with(b"II*\0") || head.starts_with(b"MM\0*") {
        return Kind::Tiff;
    }
    if head.starts_with(b"PK\x03\x04") {
        return Kind::Xlsx;
    }
    let lower = name.to_ascii_lowercase();
    let media = media_type.to_ascii_lowercase();
    if media.contains("csv") || lower.ends_with(".csv") {
        Kind::Csv
    } else if media.contains("json") || lower.ends_with(".json") || lower.ends_with(".jsonl") {
        Kind::Json
    } else if media.starts_with("text/") || lower.ends_with(".txt") {
        Kind::Text
    } else {
        Kind::Other
    }
}

impl Document {
    pub fn path(&self) -> Result<&Path> {
        self.path.as_deref().ok_or_else(|| {
            AutomationError::bad(format!("document {:?} has no path to read", self.name))
        })
    }

    pub fn kind(&self) -> Result<Kind> {
        let path = self.path()?;
        let mut head = [0u8; 8];
        let mut file = std::fs::File::open(path).map_err(|e| AutomationError::file(path, e))?;
        let n = file
            .read(&mut head)
            .map_err(|e| AutomationError::file(path, e))?;
        Ok(sniff(&head[..n], &self.media_type, &self.name))
    }

    pub fn read(&self) -> Result<Vec<u8>> {
        let path = self.path()?;
        std::fs::read(path).map_err(|e| AutomationError::file(path, e))
    }
}

/// The `documents` array of an input (absent: none).
pub fn documents(input: &Value) -> Result<Vec<Document>> {
    let Some(list) = input.get("documents") else {
        return Ok(Vec::new());
    };
    let list = list
        .as_array()
        .ok_or_else(|| AutomationError::bad("documents must be an array"))?;
    list.iter()
        .enumerate()
        .map(|(i, doc)| {
            let text = |key: &str| doc.get(key).and_then(Value::as_str).map(str::to_string);
            let name = text("name")
                .ok_or_else(|| AutomationError::bad(format!("documents[{i}].name is missing")))?;
            Ok(Document {
                id: text("id").unwrap_or_else(|| name.clone()),
                media_type: text("media_type").unwrap_or_default(),
                sha256: text("sha256"),
                path: text("path").map(PathBuf::from),
                name,
            })
        })
        .collect()
}

/// Runs `program` with `args`, killing it after `timeout`; its standard output on success.
pub fn run(program: &Path, args: &[&str], timeout: Duration) -> Result<Vec<u8>> {
    let tool = program.display().to_string();
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|err| AutomationError::Tool {
            tool: tool.clone(),
            message: if err.kind() == std::io::ErrorKind::NotFound {
                "not installed (Debian: tesseract-ocr, poppler-utils)".to_string()
            } else {
                err.to_string()
            },
        })?;
    let mut stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let out = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf);
        buf
    });
    let err = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stderr.read_to_end(&mut buf);
        buf
    });
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() > timeout => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(AutomationError::Tool {
                    tool,
                    message: format!("killed after {} s", timeout.as_secs()),
                });
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => {
                return Err(AutomationError::Tool {
                    tool,
                    message: e.to_string(),
                })
            }
        }
    };
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    if !status.success() {
        let text = String::from_utf8_lossy(&stderr);
        let last = text
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        return Err(AutomationError::Tool {
            tool,
            message: format!("exited with {status}: {last}"),
        });
    }
    Ok(stdout)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sniffs_magic_bytes_before_names() {
        assert_eq!(sniff(b"%PDF-1.7", "image/png", "a.png"), Kind::Pdf);
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n", "", "a.pdf"), Kind::Png);
        assert_eq!(sniff(&[0xFF, 0xD8, 0xFF, 0xE0], "", ""), Kind::Jpeg);
        assert_eq!(sniff(b"II*\0abcd", "", ""), Kind::Tiff);
        assert_eq!(sniff(b"a,b,c\n", "text/csv", "x"), Kind::Csv);
        assert_eq!(sniff(b"{\"a\"", "", "x.json"), Kind::Json);
        assert_eq!(sniff(b"hello", "text/plain", "x"), Kind::Text);
        assert_eq!(
            sniff(b"\0\0\0", "application/octet-stream", "x.bin"),
            Kind::Other
        );
    }

    #[test]
    fn documents_need_names() {
        let err = documents(&json!({"documents": [{"id": "d1"}]})).unwrap_err();
        assert!(err.to_string().contains("documents[0].name"), "{err}");
        let docs =
            documents(&json!({"documents": [{"name": "a.pdf", "path": "/x/a.pdf"}]})).unwrap();
        assert_eq!(docs[0].id, "a.pdf");
        assert_eq!(docs[0].path.as_deref(), Some(Path::new("/x/a.pdf")));
    }

    #[test]
    fn a_missing_tool_is_named() {
        let err = run(
            Path::new("/nonexistent/karya-tool"),
            &[],
            Duration::from_secs(1),
        )
        .unwrap_err();
        assert!(err.to_string().contains("not installed"), "{err}");
    }

    #[test]
    fn a_slow_tool_is_killed() {
        let started = Instant::now();
        let err = run(Path::new("sleep"), &["5"], Duration::from_millis(200)).unwrap_err();
        assert!(err.to_string().contains("killed"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(3));
    }

    #[test]
    fn a_failing_tool_reports_its_last_error_line() {
        let err = run(
            Path::new("sh"),
            &["-c", "echo first >&2; echo 'the real cause' >&2; exit 3"],
            Duration::from_secs(5),
        )
        .unwrap_err();
        assert!(err.to_string().contains("the real cause"), "{err}");
    }
}
