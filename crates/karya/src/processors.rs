//! The processors this binary runs for the packs' processor steps, handed to the job runner of
//! `karya serve`: the machine steps of `karya-automation` (OCR with tesseract, field
//! extraction, conversion, prior-art search, calculators, classification, de-duplication,
//! rule validation, indexing, packaging).
//!
//! A processor that cannot run on this node is reported as not installed, and the job runner
//! hands its step to a person at once: OCR without the `tesseract` program, prior-art search
//! without a patent corpus (`KARYA_PATENT_CORPUS`, a directory of flat XML patent records).

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;

use karya_automation::{Automation, Config};
use karya_processors::ProcessorSet;

/// Names the directory of patent records the prior-art search reads.
pub const PATENT_CORPUS_ENV: &str = "KARYA_PATENT_CORPUS";

/// The processor set of this node.
pub fn processors() -> Arc<dyn ProcessorSet> {
    let config = Config {
        patent_corpus: std::env::var_os(PATENT_CORPUS_ENV)
            .map(PathBuf::from)
            .filter(|dir| dir.is_dir()),
        ..Config::default()
    };
    let tesseract = tool_runs(&config.tesseract);
    if !tesseract {
        tracing::warn!("tesseract is not installed: OCR steps go to people");
    }
    Arc::new(Machine {
        tesseract,
        corpus: config.patent_corpus.is_some(),
        automation: Automation::new(config),
    })
}

/// Whether `program --version` runs.
fn tool_runs(program: &std::path::Path) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

struct Machine {
    automation: Automation,
    tesseract: bool,
    corpus: bool,
}

impl ProcessorSet for Machine {
    fn run(&self, name: &str, input: &serde_json::Value) -> Result<serde_json::Value, String> {
        self.automation
            .run(name, input)
            .map_err(|err| err.to_string())
    }

    fn installed(&self, name: &str) -> bool {
        match name {
            "ocr" => self.tesseract,
            "prior_art_search" => self.corpus,
            _ => karya_core::pack::PROCESSORS.contains(&name),
        }
    }
}
