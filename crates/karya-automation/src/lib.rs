//! The machine steps of the packs: each `processor` a pack step names is carried out here.
//!
//! A processor takes one JSON value,
//!
//! ```text
//! { "item": <the work item's input>,
//!   "outputs": { <earlier step name>: <its output>, ... },
//!   "documents": [ { "id", "name", "media_type", "sha256", "path"? }, ... ],
//!   "pack": <pack id, optional: found from the item's shape when absent> }
//! ```
//!
//! and answers one JSON object, or an error naming what is wrong with the input or which tool
//! failed. Processors read files only through the documents' `path`s and the configured patent
//! corpus, run the configured external tools (`tesseract`, `pdftotext`, `pdftoppm`) with a time
//! limit, and write nothing but temporary files that are removed when they finish.
//!
//! | processor | module |
//! | --- | --- |
//! | `ocr` | [`ocr`]: tesseract on images, PDF text layers (pdftotext) or rasterised pages |
//! | `extract_fields` | [`extract`]: invoice, receipt, claim, KYC form, payroll and index fields |
//! | `convert` | [`convert`]: CSV, JSON, XLSX and fixed-width records; text normalisation |
//! | `prior_art_search` | [`prior_art`]: BM25 over a patent corpus, date cut-off, IPC boost |
//! | `calculate` | [`calculate`]: gratuity, EPF/EPS/EDLI, claim payable, reconciliation, scores |
//! | `classify` | [`classify`]: keyword-seeded naive Bayes over the pack's categories |
//! | `dedupe` | [`dedupe`]: normalised fingerprints and Jaro-Winkler / trigram matching |
//! | `validate_rules` | [`validate`]: field rules and check digits (IBAN, GSTIN, PAN, Luhn, ...) |
//! | `index` | [`index`]: index terms, metadata and a load file |
//! | `package` | [`package`]: the deliverable per the pack's `[deliverable]` |

pub mod calculate;
pub mod classify;
pub mod convert;
pub mod dedupe;
pub mod extract;
pub mod index;
pub mod ocr;
pub mod package;
pub mod prior_art;
pub mod text;
pub mod tools;
pub mod validate;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use karya_packs::{Catalog, LoadedPack};
use serde_json::Value;

/// What went wrong in a processor. The message is meant for the operator reading a failed
/// job: it names the field or the tool.
#[derive(Debug, thiserror::Error)]
pub enum AutomationError {
    #[error("unknown processor {0:?}; the processors are {list}", list = PROCESSORS.join(", "))]
    UnknownProcessor(String),
    /// The input lacks what the processor needs, or has it in the wrong shape.
    #[error("bad input: {0}")]
    BadInput(String),
    /// An external tool is missing, failed, or ran past its time limit.
    #[error("{tool}: {message}")]
    Tool { tool: String, message: String },
    /// A file named by the input or the configuration could not be read.
    #[error("{path}: {message}")]
    File { path: String, message: String },
    #[error("not configured: {0}")]
    NotConfigured(String),
}

impl AutomationError {
    pub(crate) fn bad(message: impl Into<String>) -> Self {
        AutomationError::BadInput(message.into())
    }

    pub(crate) fn file(path: &std::path::Path, err: impl std::fmt::Display) -> Self {
        AutomationError::File {
            path: path.display().to_string(),
            message: err.to_string(),
        }
    }
}

pub type Result<T> = std::result::Result<T, AutomationError>;

/// The processors, in the order of `karya_core::pack::PROCESSORS`.
pub const PROCESSORS: &[&str] = &[
    "ocr",
    "extract_fields",
    "convert",
    "prior_art_search",
    "calculate",
    "index",
    "classify",
    "dedupe",
    "validate_rules",
    "package",
];

/// Where the tools and reference data are.
#[derive(Debug, Clone)]
pub struct Config {
    pub tesseract: PathBuf,
    pub pdftotext: PathBuf,
    pub pdftoppm: PathBuf,
    /// Directory of flat XML patent records; `prior_art_search` refuses to run without it.
    pub patent_corpus: Option<PathBuf>,
    /// Resolution at which PDF pages without a text layer are rasterised for OCR.
    pub ocr_dpi: u32,
    /// Tesseract's page segmentation mode (3: fully automatic; 4: one column of varying sizes).
    pub ocr_psm: u32,
    /// At most this many pages of one PDF are rasterised.
    pub max_pdf_pages: u32,
    /// Each run of an external tool is killed after this long.
    pub tool_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            tesseract: PathBuf::from("tesseract"),
            pdftotext: PathBuf::from("pdftotext"),
            pdftoppm: PathBuf::from("pdftoppm"),
            patent_corpus: None,
            ocr_dpi: 300,
            ocr_psm: 4,
            max_pdf_pages: 100,
            tool_timeout: Duration::from_secs(120),
        }
    }
}

/// The processors with their configuration, the packs they serve and the caches they build
/// (the patent index is built once, on first use).
pub struct Automation {
    config: Config,
    packs: Catalog,
    corpus: Mutex<Option<Arc<prior_art::Corpus>>>,
}

impl Automation {
    /// Processors over the built-in packs.
    pub fn new(config: Config) -> Self {
        let packs = karya_packs::builtin().expect("the built-in packs are validated at build time");
        Automation::with_packs(config, packs)
    }

    pub fn with_packs(config: Config, packs: Catalog) -> Self {
        Automation {
            config,
            packs,
            corpus: Mutex::new(None),
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Runs processor `name` on `input` (see the crate documentation for its shape).
    pub fn run(&self, name: &str, input: &Value) -> Result<Value> {
        if !input.is_object() {
            return Err(AutomationError::bad("the input must be a JSON object"));
        }
        let ctx = Context {
            automation: self,
            input,
            pack: self.pack_for(input)?,
        };
        match name {
            "ocr" => ocr::run(&ctx),
            "extract_fields" => extract::run(&ctx),
            "convert" => convert::run(&ctx),
            "prior_art_search" => prior_art::run(&ctx),
            "calculate" => calculate::run(&ctx),
            "index" => index::run(&ctx),
            "classify" => classify::run(&ctx),
            "dedupe" => dedupe::run(&ctx),
            "validate_rules" => validate::run(&ctx),
            "package" => package::run(&ctx),
            other => Err(AutomationError::UnknownProcessor(other.to_string())),
        }
    }

    /// The pack the input names, or else the first whose input form the item satisfies.
    fn pack_for(&self, input: &Value) -> Result<Option<&LoadedPack>> {
        if let Some(id) = input.get("pack").and_then(Value::as_str) {
            return match self.packs.by_id(id) {
                Some(pack) => Ok(Some(pack)),
                None => Err(AutomationError::bad(format!("unknown pack {id:?}"))),
            };
        }
        let Some(item) = input.get("item").filter(|item| item.is_object()) else {
            return Ok(None);
        };
        let text = item.to_string();
        Ok(self
            .packs
            .packs()
            .iter()
            .find(|pack| pack.validate_input(&text).is_ok()))
    }

    /// The patent corpus, loaded and indexed on first use.
    pub fn corpus(&self) -> Result<Arc<prior_art::Corpus>> {
        let mut guard = self.corpus.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(corpus) = guard.as_ref() {
            return Ok(corpus.clone());
        }
        let dir = self.config.patent_corpus.as_ref().ok_or_else(|| {
            AutomationError::NotConfigured("no patent corpus directory is configured".into())
        })?;
        let corpus = Arc::new(prior_art::Corpus::load(dir)?);
        *guard = Some(corpus.clone());
        Ok(corpus)
    }
}

/// One processor run: the input and the pack it belongs to.
pub(crate) struct Context<'a> {
    pub automation: &'a Automation,
    pub input: &'a Value,
    pub pack: Option<&'a LoadedPack>,
}

impl Context<'_> {
    pub fn item(&self) -> &Value {
        self.input.get("item").unwrap_or(&Value::Null)
    }

    pub fn config(&self) -> &Config {
        &self.automation.config
    }

    /// The service line code of the pack, e.g. `provident_fund_gratuity`.
    pub fn service_line(&self) -> Option<&'static str> {
        self.pack.map(|pack| pack.pack.service_line.code())
    }

    /// Earlier steps' outputs, in the pack's step order when the pack is known.
    pub fn outputs(&self) -> Vec<(&str, &Value)> {
        let Some(map) = self.input.get("outputs").and_then(Value::as_object) else {
            return Vec::new();
        };
        let mut all: Vec<(&str, &Value)> = map.iter().map(|(k, v)| (k.as_str(), v)).collect();
        if let Some(pack) = self.pack {
            let position = |name: &str| {
                pack.pack
                    .steps
                    .iter()
                    .position(|step| step.name == name)
                    .unwrap_or(usize::MAX)
            };
            all.sort_by_key(|(name, _)| position(name));
        }
        all
    }

    /// The latest earlier output (in step order) that has `key`.
    pub fn latest_output_with(&self, key: &str) -> Option<&Value> {
        self.outputs()
            .into_iter()
            .rev()
            .find_map(|(_, output)| output.get(key))
    }

    pub fn documents(&self) -> Result<Vec<tools::Document>> {
        tools::documents(self.input)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_processor_is_named() {
        let automation = Automation::new(Config::default());
        let err = automation.run("teleport", &json!({})).unwrap_err();
        assert!(err.to_string().contains("teleport"), "{err}");
        assert!(err.to_string().contains("prior_art_search"), "{err}");
    }

    #[test]
    fn input_must_be_an_object() {
        let automation = Automation::new(Config::default());
        let err = automation.run("ocr", &json!([1, 2])).unwrap_err();
        assert!(matches!(err, AutomationError::BadInput(_)));
    }

    #[test]
    fn the_pack_is_found_from_the_item_shape() {
        let automation = Automation::new(Config::default());
        let catalog = karya_packs::builtin().unwrap();
        for pack in catalog.packs() {
            let item: Value = serde_json::from_str(&pack.pack.examples[0].input).unwrap();
            let input = json!({ "item": item });
            let found = automation.pack_for(&input).unwrap().unwrap();
            assert_eq!(
                found.pack.service_line, pack.pack.service_line,
                "example of {} taken for {}",
                pack.pack.id, found.pack.id
            );
        }
    }

    #[test]
    fn every_core_processor_is_served() {
        assert_eq!(PROCESSORS, karya_core::pack::PROCESSORS);
    }
}
