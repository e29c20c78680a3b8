//! `ocr`: text of scanned pages with the box and confidence of each line.
//!
//! Images (PNG, JPEG, TIFF) go through `tesseract ... tsv`, whose word rows are grouped into
//! lines. A PDF's own text layer is read with `pdftotext -layout` when it has one; a PDF
//! without one (a scan) is rasterised with `pdftoppm` and each page recognised as an image.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{json, Value};

use crate::tools::{self, Kind};
use crate::{AutomationError, Config, Context, Result};

/// One recognised line.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub page: u32,
    pub text: String,
    pub left: u32,
    pub top: u32,
    pub width: u32,
    pub height: u32,
    /// Mean of the words' confidences, 0 to 1; 1 for a text layer.
    pub confidence: f64,
}

/// The text of one document.
#[derive(Debug, Clone, PartialEq)]
pub struct Recognised {
    /// `tesseract` or `text_layer`.
    pub source: &'static str,
    pub pages: u32,
    pub lines: Vec<Line>,
    /// Mean word confidence, 0 to 1 (None when no word was found).
    pub mean_confidence: Option<f64>,
    pub words: usize,
}

impl Recognised {
    /// Lines joined with newlines, pages with a form feed.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let mut page = self.lines.first().map_or(1, |l| l.page);
        for line in &self.lines {
            if line.page != page {
                out.push('\u{c}');
                page = line.page;
            } else if !out.is_empty() {
                out.push('\n');
            }
            out.push_str(&line.text);
        }
        out
    }

    pub fn to_json(&self) -> Value {
        json!({
            "source": self.source,
            "pages": self.pages,
            "text": self.text(),
            "words": self.words,
            "mean_confidence": self.mean_confidence.map(|c| (c * 1000.0).round() / 1000.0),
            "lines": self.lines.iter().map(|l| json!({
                "page": l.page, "text": l.text,
                "box": { "left": l.left, "top": l.top, "width": l.width, "height": l.height },
                "confidence": (l.confidence * 1000.0).round() / 1000.0,
            })).collect::<Vec<_>>(),
        })
    }
}

/// Parses tesseract's TSV output (level, page, block, paragraph, line, word, left, top, width,
/// height, confidence, text) into lines of words, numbering pages from `first_page`.
pub fn parse_tsv(tsv: &str, first_page: u32) -> Recognised {
    #[derive(Default)]
    struct Acc {
        words: Vec<String>,
        confs: Vec<f64>,
        left: u32,
        top: u32,
        right: u32,
        bottom: u32,
    }
    let mut lines: BTreeMap<(u32, u32, u32, u32), Acc> = BTreeMap::new();
    let mut pages = 0u32;
    for row in tsv.lines().skip(1) {
        let cols: Vec<&str> = row.splitn(12, '\t').collect();
        if cols.len() < 12 {
            continue;
        }
        let n = |i: usize| cols[i].trim().parse::<u32>().unwrap_or(0);
        pages = pages.max(n(1));
        if n(0) != 5 {
            continue;
        }
        let text = cols[11].trim();
        let conf: f64 = cols[10].trim().parse().unwrap_or(-1.0);
        if text.is_empty() || conf < 0.0 {
            continue;
        }
        let (left, top, width, height) = (n(6), n(7), n(8), n(9));
        let acc = lines
            .entry((n(1), n(2), n(3), n(4)))
            .or_insert_with(|| Acc {
                left: u32::MAX,
                top: u32::MAX,
                ..Acc::default()
            });
        acc.words.push(text.to_string());
        acc.confs.push(conf / 100.0);
        acc.left = acc.left.min(left);
        acc.top = acc.top.min(top);
        acc.right = acc.right.max(left + width);
        acc.bottom = acc.bottom.max(top + height);
    }
    let mut all_confs = Vec::new();
    let lines: Vec<Line> = lines
        .into_iter()
        .map(|((page, ..), acc)| {
            all_confs.extend_from_slice(&acc.confs);
            Line {
                page: first_page + page.saturating_sub(1),
                text: acc.words.join(" "),
                left: acc.left,
                top: acc.top,
                width: acc.right - acc.left,
                height: acc.bottom - acc.top,
                confidence: acc.confs.iter().sum::<f64>() / acc.confs.len() as f64,
            }
        })
        .collect();
    let words = all_confs.len();
    Recognised {
        source: "tesseract",
        pages: pages.max(1),
        lines,
        mean_confidence: (words > 0).then(|| all_confs.iter().sum::<f64>() / words as f64),
        words,
    }
}

/// Tesseract's installed languages.
pub fn languages(config: &Config) -> Result<Vec<String>> {
    let out = tools::run(&config.tesseract, &["--list-langs"], config.tool_timeout)?;
    Ok(String::from_utf8_lossy(&out)
        .lines()
        .skip(1)
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty() && l != "osd")
        .collect())
}

/// Recognises one image file.
pub fn image(config: &Config, path: &Path, langs: &str) -> Result<Recognised> {
    let path_str = path
        .to_str()
        .ok_or_else(|| AutomationError::file(path, "path is not UTF-8"))?;
    let psm = config.ocr_psm.to_string();
    let out = tools::run(
        &config.tesseract,
        &[path_str, "stdout", "-l", langs, "--psm", &psm, "tsv"],
        config.tool_timeout,
    )?;
    Ok(parse_tsv(&String::from_utf8_lossy(&out), 1))
}

/// The text layer of a PDF, pages split on form feeds.
pub fn pdf_text_layer(config: &Config, path: &Path) -> Result<Vec<String>> {
    let path_str = path
        .to_str()
        .ok_or_else(|| AutomationError::file(path, "path is not UTF-8"))?;
    let out = tools::run(
        &config.pdftotext,
        &["-layout", "-enc", "UTF-8", path_str, "-"],
        config.tool_timeout,
    )?;
    let text = String::from_utf8_lossy(&out);
    let mut pages: Vec<String> = text.split('\u{c}').map(str::to_string).collect();
    if pages.last().is_some_and(|p| p.trim().is_empty()) {
        pages.pop();
    }
    Ok(pages)
}

/// Whether a text layer carries real text (not just page numbers from a scanner).
fn has_text(pages: &[String]) -> bool {
    let letters: usize = pages
        .iter()
        .map(|p| p.chars().filter(|c| c.is_alphabetic()).count())
        .sum();
    letters >= 20 * pages.len().max(1) / 2 + 10
}

/// Recognises a PDF: its text layer, or else each rasterised page.
pub fn pdf(config: &Config, path: &Path, langs: &str) -> Result<Recognised> {
    let pages = pdf_text_layer(config, path)?;
    if has_text(&pages) {
        let mut lines = Vec::new();
        for (i, page) in pages.iter().enumerate() {
            for (row, text) in page.lines().enumerate() {
                let trimmed = text.trim_end();
                if trimmed.trim().is_empty() {
                    continue;
                }
                lines.push(Line {
                    page: i as u32 + 1,
                    text: trimmed.to_string(),
                    left: (trimmed.len() - trimmed.trim_start().len()) as u32,
                    top: row as u32,
                    width: trimmed.trim_start().chars().count() as u32,
                    height: 1,
                    confidence: 1.0,
                });
            }
        }
        let words = lines
            .iter()
            .map(|l| l.text.split_whitespace().count())
            .sum();
        return Ok(Recognised {
            source: "text_layer",
            pages: pages.len() as u32,
            lines,
            mean_confidence: Some(1.0),
            words,
        });
    }
    let dir = tempfile::tempdir().map_err(|e| AutomationError::file(Path::new("tmp"), e))?;
    let prefix = dir.path().join("page");
    let (path_str, prefix_str) = (
        path.to_str()
            .ok_or_else(|| AutomationError::file(path, "path is not UTF-8"))?,
        prefix.to_str().unwrap_or("page"),
    );
    let dpi = config.ocr_dpi.to_string();
    let last = config.max_pdf_pages.to_string();
    tools::run(
        &config.pdftoppm,
        &[
            "-r", &dpi, "-gray", "-png", "-l", &last, path_str, prefix_str,
        ],
        config.tool_timeout,
    )?;
    let mut images: Vec<_> = std::fs::read_dir(dir.path())
        .map_err(|e| AutomationError::file(dir.path(), e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
        .collect();
    images.sort();
    let mut all = Recognised {
        source: "tesseract",
        pages: images.len() as u32,
        lines: Vec::new(),
        mean_confidence: None,
        words: 0,
    };
    let mut conf_sum = 0.0;
    for (i, page) in images.iter().enumerate() {
        let mut one = image(config, page, langs)?;
        for line in &mut one.lines {
            line.page = i as u32 + 1;
        }
        conf_sum += one.mean_confidence.unwrap_or(0.0) * one.words as f64;
        all.words += one.words;
        all.lines.extend(one.lines);
    }
    all.mean_confidence = (all.words > 0).then(|| conf_sum / all.words as f64);
    Ok(all)
}

/// Recognises a document of any supported kind.
pub fn document(config: &Config, doc: &tools::Document, langs: &str) -> Result<Recognised> {
    let path = doc.path()?;
    match doc.kind()? {
        Kind::Pdf => pdf(config, path, langs),
        kind if kind.is_image() => image(config, path, langs),
        Kind::Text | Kind::Csv | Kind::Json => {
            let text = String::from_utf8_lossy(&doc.read()?).into_owned();
            let lines: Vec<Line> = text
                .lines()
                .enumerate()
                .filter(|(_, l)| !l.trim().is_empty())
                .map(|(row, l)| Line {
                    page: 1,
                    text: l.trim_end().to_string(),
                    left: 0,
                    top: row as u32,
                    width: l.chars().count() as u32,
                    height: 1,
                    confidence: 1.0,
                })
                .collect();
            let words = lines
                .iter()
                .map(|l| l.text.split_whitespace().count())
                .sum();
            Ok(Recognised {
                source: "text_layer",
                pages: 1,
                lines,
                mean_confidence: Some(1.0),
                words,
            })
        }
        _ => Err(AutomationError::bad(format!(
            "document {:?} is not an image, a PDF or text",
            doc.name
        ))),
    }
}

/// The tesseract language argument for an item: its `ocr_languages` that are installed,
/// else English.
pub fn language_arg(config: &Config, item: &Value) -> String {
    let wanted: Vec<&str> = item
        .get("ocr_languages")
        .and_then(Value::as_array)
        .map(|langs| langs.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let installed = languages(config).unwrap_or_default();
    let usable: Vec<&str> = wanted
        .into_iter()
        .filter(|l| installed.iter().any(|i| i == l))
        .collect();
    if usable.is_empty() {
        "eng".to_string()
    } else {
        usable.join("+")
    }
}

pub(crate) fn run(ctx: &Context) -> Result<Value> {
    let docs = ctx.documents()?;
    let readable: Vec<_> = docs.iter().filter(|d| d.path.is_some()).collect();
    if readable.is_empty() {
        return Err(AutomationError::bad(
            "no document with a file to recognise; attach the page images or PDFs to the item",
        ));
    }
    let langs = language_arg(ctx.config(), ctx.item());
    let mut out = Vec::new();
    let (mut conf_sum, mut words, mut pages) = (0.0, 0usize, 0u32);
    let mut texts = Vec::new();
    for doc in readable {
        let recognised = document(ctx.config(), doc, &langs)?;
        conf_sum += recognised.mean_confidence.unwrap_or(0.0) * recognised.words as f64;
        words += recognised.words;
        pages += recognised.pages;
        texts.push(recognised.text());
        let mut entry = recognised.to_json();
        entry["id"] = json!(doc.id);
        entry["name"] = json!(doc.name);
        out.push(entry);
    }
    Ok(json!({
        "languages": langs,
        "pages": pages,
        "documents": out,
        "text": texts.join("\u{c}"),
        "mean_confidence": (words > 0).then(|| (conf_sum / words as f64 * 1000.0).round() / 1000.0),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TSV: &str = "level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight\tconf\ttext
1\t1\t0\t0\t0\t0\t0\t0\t600\t800\t-1\t
4\t1\t1\t1\t1\t0\t50\t82\t390\t39\t-1\t
5\t1\t1\t1\t1\t1\t50\t82\t100\t39\t96.5\tBOOK
5\t1\t1\t1\t1\t2\t160\t84\t60\t35\t90.0\tTA.K
5\t1\t1\t1\t2\t1\t205\t121\t80\t18\t70.0\t789417-W
5\t1\t1\t1\t2\t2\t290\t121\t10\t18\t-1\t
";

    #[test]
    fn tsv_words_become_lines_with_boxes() {
        let r = parse_tsv(TSV, 1);
        assert_eq!(r.lines.len(), 2);
        assert_eq!(r.lines[0].text, "BOOK TA.K");
        assert_eq!((r.lines[0].left, r.lines[0].top), (50, 82));
        assert_eq!((r.lines[0].width, r.lines[0].height), (170, 39));
        assert!((r.lines[0].confidence - 0.9325).abs() < 1e-9);
        assert_eq!(r.words, 3);
        assert!((r.mean_confidence.unwrap() - (0.965 + 0.9 + 0.7) / 3.0).abs() < 1e-9);
        assert_eq!(r.text(), "BOOK TA.K\n789417-W");
    }

    #[test]
    fn no_document_is_a_clear_error() {
        let automation = crate::Automation::new(Config::default());
        let err = automation
            .run(
                "ocr",
                &json!({"item": {}, "documents": [{"name": "a.png"}]}),
            )
            .unwrap_err();
        assert!(err.to_string().contains("attach"), "{err}");
    }

    /// Renders a line of text to an image with ImageMagick-free means: a PDF written by hand
    /// and its text layer read back.
    #[test]
    fn a_pdf_text_layer_is_read_when_poppler_is_installed() {
        let config = Config::default();
        if tools::run(&config.pdftotext, &["-v"], config.tool_timeout).is_err() {
            eprintln!("pdftotext is not installed; skipped");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("invoice.pdf");
        std::fs::write(&path, test_pdf("Invoice No INV-2231 Total 1,180.00 INR")).unwrap();
        let r = pdf(&config, &path, "eng").unwrap();
        assert_eq!(r.source, "text_layer");
        assert!(r.text().contains("INV-2231"), "{}", r.text());
    }

    #[test]
    fn tesseract_reads_a_rendered_page() {
        let config = Config::default();
        if tools::run(&config.tesseract, &["--version"], config.tool_timeout).is_err()
            || tools::run(&config.pdftoppm, &["-v"], config.tool_timeout).is_err()
        {
            eprintln!("tesseract or pdftoppm is not installed; skipped");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let pdf_path = dir.path().join("page.pdf");
        std::fs::write(&pdf_path, test_pdf("GRATUITY CLAIM 2026")).unwrap();
        let prefix = dir.path().join("img");
        tools::run(
            &config.pdftoppm,
            &[
                "-r",
                "200",
                "-png",
                "-singlefile",
                pdf_path.to_str().unwrap(),
                prefix.to_str().unwrap(),
            ],
            config.tool_timeout,
        )
        .unwrap();
        let r = image(&config, &dir.path().join("img.png"), "eng").unwrap();
        assert!(r.text().contains("GRATUITY"), "{:?}", r.text());
        assert!(r.mean_confidence.unwrap() > 0.5);
        assert!(r.lines[0].width > 0);
    }

    /// A one-page PDF with one line of Helvetica text.
    pub(crate) fn test_pdf(line: &str) -> Vec<u8> {
        let stream = format!("BT /F1 24 Tf 40 700 Td ({line}) Tj ET");
        let objects = [
            "<< /Type /Catalog /Pages 2 0 R >>".to_string(),
            "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_string(),
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>".to_string(),
            format!("<< /Length {} >>\nstream\n{stream}\nendstream", stream.len()),
            "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_string(),
        ];
        let mut out = b"%PDF-1.4\n".to_vec();
        let mut offsets = Vec::new();
        for (i, obj) in objects.iter().enumerate() {
            offsets.push(out.len());
            out.extend_from_slice(format!("{} 0 obj\n{obj}\nendobj\n", i + 1).as_bytes());
        }
        let xref = out.len();
        out.extend_from_slice(
            format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
        );
        for off in offsets {
            out.extend_from_slice(format!("{off:010} 00000 n \n").as_bytes());
        }
        out.extend_from_slice(
            format!(
                "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
                objects.len() + 1
            )
            .as_bytes(),
        );
        out
    }
}
