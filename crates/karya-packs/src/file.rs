//! The pack file as written: TOML shapes that mirror `packs/README.md` field for field.
//!
//! These types only describe the syntax. Every field is taken as the author wrote it (strings
//! for codes, floats for percentages) and unknown keys are refused, so a misspelt key fails at
//! load instead of being silently ignored. Turning them into core types, with every check that
//! needs more than one field, is the job of `check.rs`.

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackFile {
    pub id: String,
    pub version: u32,
    pub service_line: String,
    pub title: String,
    pub description: String,
    pub steps: Vec<StepFile>,
    pub forms: FormsFile,
    #[serde(default)]
    pub examples: Vec<ExampleFile>,
    /// Keyed by priority code; a map so that an unknown or missing priority is reported by name.
    pub sla: BTreeMap<String, SlaFile>,
    pub qa: QaFile,
    #[serde(default)]
    pub decisions: Vec<DecisionFile>,
    pub defects: Vec<DefectFile>,
    pub deliverable: DeliverableFile,
}

/// The input and output forms, as JSON Schema text.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FormsFile {
    pub input: String,
    pub output: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepFile {
    pub name: String,
    pub title: String,
    /// `human` or `processor`.
    pub kind: String,
    pub processor: Option<String>,
    pub expected_minutes: u32,
    #[serde(default)]
    pub qualifications_any: Vec<String>,
    #[serde(default)]
    pub skills: Vec<SkillFile>,
    #[serde(default)]
    pub languages: Vec<String>,
    pub min_designation: Option<String>,
    #[serde(default)]
    pub decisions: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SkillFile {
    pub skill: String,
    /// Wider than the valid range so that an out-of-range level is reported as such.
    pub min_level: i64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExampleFile {
    pub name: String,
    #[serde(default = "normal_priority")]
    pub priority: String,
    pub input: String,
}

fn normal_priority() -> String {
    "normal".to_owned()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlaFile {
    pub first_response_minutes: u32,
    pub resolution_minutes: u32,
    pub warning_percent: f64,
    pub accuracy_target_percent: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QaFile {
    pub min_reviewer: String,
    pub initial_review_rate_percent: f64,
    pub target_accuracy_percent: f64,
    pub confidence_percent: f64,
    #[serde(default)]
    pub gold_share_percent: f64,
    pub consensus: Option<ConsensusFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsensusFile {
    /// `double_keying` or `independent_judgement`.
    pub mode: String,
    pub k: i64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionFile {
    pub name: String,
    pub title: String,
    pub payload_schema: String,
    /// `compensate` or `irreversible`.
    pub inverse: String,
    pub compensating_action: Option<String>,
    #[serde(default)]
    pub undo_window_hours: u32,
    pub authority: AuthorityFile,
}

/// Either `minimum` alone, or `amount_field`, `currency`, `limits` and `beyond` together.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthorityFile {
    pub minimum: Option<String>,
    pub amount_field: Option<String>,
    pub currency: Option<String>,
    #[serde(default)]
    pub limits: Vec<LimitFile>,
    pub beyond: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitFile {
    pub designation: String,
    /// Major units of the authority's currency.
    pub up_to: i64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DefectFile {
    pub name: String,
    pub title: String,
    /// `minor`, `major` or `critical`.
    pub severity: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliverableFile {
    #[serde(default)]
    pub files: Vec<DeliverableFileFile>,
    #[serde(default)]
    pub fields: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliverableFileFile {
    pub name: String,
    pub media_type: String,
    pub description: String,
    #[serde(default = "yes")]
    pub required: bool,
}

fn yes() -> bool {
    true
}
