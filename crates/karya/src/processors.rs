//! The processors this binary runs for the packs' processor steps (OCR, extraction,
//! calculators, packaging...), handed to the job runner of `karya serve`.
//!
//! No processor is installed in this build yet: every job fails with "processor X is not
//! installed" and its step is handed to a person at once (see `karya_processors::jobs`), so
//! items keep moving, by hand, until processors are.

use std::sync::Arc;

use karya_processors::ProcessorSet;

/// The processor set of this build.
pub fn processors() -> Arc<dyn ProcessorSet> {
    Arc::new(NotInstalled)
}

/// A set without processors.
struct NotInstalled;

impl ProcessorSet for NotInstalled {
    fn run(&self, name: &str, _input: &serde_json::Value) -> Result<serde_json::Value, String> {
        Err(format!("processor {name} is not installed"))
    }

    fn installed(&self, _name: &str) -> bool {
        false
    }
}
