//! From a parsed pack file to a validated [`Pack`]: every rule that a pack must satisfy, each
//! reported with the field it concerns.
//!
//! Checking never stops at the first problem: an author fixing a pack sees all of them at once.
//! The rules are listed in `packs/README.md`; a new rule belongs both here and there.

use std::collections::{BTreeMap, BTreeSet};

use karya_core::model::{Designation, Priority, Severity};
use karya_core::money::{Currency, Money};
use karya_core::pack::{
    Authority, AuthorityLimit, BasisPoints, Beyond, Consensus, ConsensusMode, DecisionType,
    DefectCategory, DeliverableFile, DeliverableShape, Example, Inverse, Pack, QaPolicy,
    Qualification, Requirements, SkillRequirement, SlaTerms, Step, StepKind, PROCESSORS,
    SKILL_LEVEL_MAX, SKILL_LEVEL_MIN,
};
use karya_core::service_line::ServiceLine;

use crate::file::{self, PackFile};
use crate::schema::{self, Schema};
use crate::{LoadedPack, Problem};

/// Most steps a pack may have; a longer process is a sign of steps that should be one task.
pub const STEPS_MAX: usize = 24;
/// Most decision types, defect categories or examples of one kind in a pack.
pub const ENTRIES_MAX: usize = 64;
/// Most workers a consensus may ask to repeat the same work.
pub const CONSENSUS_K_MAX: i64 = 5;
/// Longest undo window: a decision older than a year is settled business.
pub const UNDO_WINDOW_HOURS_MAX: u32 = 24 * 366;
/// Longest SLA resolution time, in business minutes (a quarter of 8-hour days).
pub const RESOLUTION_MINUTES_MAX: u32 = 66 * 8 * 60;
/// Longest code, name or title, in bytes.
const NAME_LEN_MAX: usize = 120;

/// The designations in rank order, lowest first.
const DESIGNATIONS: [Designation; 4] = [
    Designation::Analyst,
    Designation::SeniorAnalyst,
    Designation::TeamLead,
    Designation::Manager,
];

/// Collects the problems found in one file.
struct Problems<'a> {
    file: &'a str,
    list: Vec<Problem>,
}

impl Problems<'_> {
    fn push(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.list.push(Problem {
            file: self.file.to_owned(),
            field: field.into(),
            message: message.into(),
        });
    }

    fn extend_fields(&mut self, field: &str, errors: Vec<schema::FieldError>, what: &str) {
        for error in errors {
            let at = match error.path.as_str() {
                "" => String::new(),
                path => format!(" at {path}"),
            };
            self.push(field, format!("{what}{at}: {}", error.problem));
        }
    }
}

/// Turns a parsed file into a pack, or the list of everything wrong with it.
pub fn check(file_name: &str, raw: PackFile) -> Result<LoadedPack, Vec<Problem>> {
    let mut problems = Problems {
        file: file_name,
        list: Vec::new(),
    };
    let p = &mut problems;

    if !is_pack_id(&raw.id) {
        p.push(
            "id",
            format!(
                "pack id {:?} must be 3-64 lower-case letters, digits, '-', '_' or '.'",
                short(&raw.id)
            ),
        );
    }
    if raw.version == 0 {
        p.push("version", "version must be 1 or more");
    }
    let service_line = match raw.service_line.parse::<ServiceLine>() {
        Ok(line) => Some(line),
        Err(_) => {
            let codes: Vec<&str> = ServiceLine::ALL.iter().map(|l| l.code()).collect();
            p.push(
                "service_line",
                format!(
                    "unknown service line {:?}; expected one of {}",
                    short(&raw.service_line),
                    codes.join(", ")
                ),
            );
            None
        }
    };
    check_text(p, "title", &raw.title);
    if raw.description.trim().is_empty() {
        p.push("description", "description must not be empty");
    }

    let input = compile(p, "forms.input", &raw.forms.input);
    let output = compile(p, "forms.output", &raw.forms.output);
    for (field, compiled) in [("forms.input", &input), ("forms.output", &output)] {
        if let Some(compiled) = compiled {
            if compiled.value.get("type").and_then(|t| t.as_str()) != Some("object") {
                p.push(
                    field,
                    "the form must be a JSON object schema (\"type\": \"object\")",
                );
            }
        }
    }

    let decision_names: BTreeSet<&str> = raw.decisions.iter().map(|d| d.name.as_str()).collect();
    let steps = check_steps(p, &raw.steps, &decision_names);
    let examples = check_examples(p, &raw.examples, input.as_ref());
    let sla = check_sla(p, &raw.sla);
    let qa = check_qa(p, &raw.qa);
    let (decisions, payload_schemas) = check_decisions(p, &raw.decisions);
    for (idx, decision) in raw.decisions.iter().enumerate() {
        if !raw
            .steps
            .iter()
            .any(|s| s.decisions.contains(&decision.name))
        {
            p.push(
                format!("decisions[{idx}].name"),
                format!(
                    "decision type {:?} is not taken in any step",
                    short(&decision.name)
                ),
            );
        }
    }
    let defects = check_defects(p, &raw.defects);
    let deliverable = check_deliverable(p, &raw.deliverable, output.as_ref());

    match (problems.list.is_empty(), service_line, input, output, qa) {
        (true, Some(service_line), Some(input), Some(output), Some(qa)) => Ok(LoadedPack {
            pack: Pack {
                id: raw.id,
                version: raw.version,
                service_line,
                title: raw.title,
                description: raw.description.trim().to_owned(),
                steps,
                input_schema: raw.forms.input,
                output_schema: raw.forms.output,
                examples,
                sla,
                qa,
                decisions,
                defects,
                deliverable,
            },
            input,
            output,
            payload_schemas,
        }),
        _ => Err(problems.list),
    }
}

fn check_steps(
    p: &mut Problems<'_>,
    raw: &[file::StepFile],
    decision_names: &BTreeSet<&str>,
) -> Vec<Step> {
    if raw.is_empty() {
        p.push("steps", "a pack needs at least one step");
    }
    if raw.len() > STEPS_MAX {
        p.push(
            "steps",
            format!("{} steps is more than the {STEPS_MAX} allowed", raw.len()),
        );
    }
    let mut seen = BTreeSet::new();
    let mut steps = Vec::new();
    for (idx, step) in raw.iter().enumerate() {
        let at = format!("steps[{idx}]");
        if !is_code(&step.name) {
            p.push(
                format!("{at}.name"),
                format!(
                    "step name {:?} must be a snake_case code",
                    short(&step.name)
                ),
            );
        }
        if !seen.insert(step.name.as_str()) {
            p.push(
                format!("{at}.name"),
                format!("duplicate step name {:?}", short(&step.name)),
            );
        }
        check_text(p, &format!("{at}.title"), &step.title);
        if step.expected_minutes == 0 {
            p.push(
                format!("{at}.expected_minutes"),
                "expected minutes must be 1 or more",
            );
        }
        let requirements = check_requirements(p, &at, step);
        let kind = match (step.kind.as_str(), &step.processor) {
            ("human", None) => {
                if requirements.is_empty() {
                    p.push(
                        format!("{at}.kind"),
                        "a human step needs at least one requirement (qualification, skill, language or designation)",
                    );
                }
                StepKind::Human
            }
            ("human", Some(_)) => {
                p.push(format!("{at}.processor"), "a human step names no processor");
                StepKind::Human
            }
            ("processor", Some(name)) => {
                if !PROCESSORS.contains(&name.as_str()) {
                    p.push(
                        format!("{at}.processor"),
                        format!(
                            "unknown processor {:?}; expected one of {}",
                            short(name),
                            PROCESSORS.join(", ")
                        ),
                    );
                }
                if !requirements.is_empty() {
                    p.push(
                        format!("{at}.kind"),
                        "a processor step has no worker requirements",
                    );
                }
                if !step.decisions.is_empty() {
                    p.push(
                        format!("{at}.decisions"),
                        "a processor step takes no decisions",
                    );
                }
                StepKind::Processor {
                    processor: name.clone(),
                }
            }
            ("processor", None) => {
                p.push(
                    format!("{at}.processor"),
                    "a processor step must name its processor",
                );
                StepKind::Human
            }
            (other, _) => {
                p.push(
                    format!("{at}.kind"),
                    format!(
                        "unknown step kind {:?}; expected human or processor",
                        short(other)
                    ),
                );
                StepKind::Human
            }
        };
        for (d_idx, decision) in step.decisions.iter().enumerate() {
            if !decision_names.contains(decision.as_str()) {
                p.push(
                    format!("{at}.decisions[{d_idx}]"),
                    format!(
                        "unknown decision type {:?}; declare it under [[decisions]]",
                        short(decision)
                    ),
                );
            }
        }
        steps.push(Step {
            name: step.name.clone(),
            title: step.title.clone(),
            kind,
            requirements,
            decisions: step.decisions.clone(),
            expected_minutes: step.expected_minutes,
        });
    }
    steps
}

fn check_requirements(p: &mut Problems<'_>, at: &str, step: &file::StepFile) -> Requirements {
    let mut requirements = Requirements::default();
    for (idx, code) in step.qualifications_any.iter().enumerate() {
        match Qualification::parse(code) {
            Some(q) if requirements.qualifications_any.contains(&q) => {
                p.push(format!("{at}.qualifications_any[{idx}]"), format!("qualification {code:?} is listed twice"));
            }
            Some(q) => requirements.qualifications_any.push(q),
            None => p.push(
                format!("{at}.qualifications_any[{idx}]"),
                format!("unknown qualification code {:?}; the known codes are listed in packs/README.md", short(code)),
            ),
        }
    }
    for (idx, skill) in step.skills.iter().enumerate() {
        if !is_code(&skill.skill) {
            p.push(
                format!("{at}.skills[{idx}].skill"),
                format!("skill {:?} must be a snake_case code", short(&skill.skill)),
            );
        }
        if requirements.skills.iter().any(|s| s.skill == skill.skill) {
            p.push(
                format!("{at}.skills[{idx}].skill"),
                format!("skill {:?} is listed twice", short(&skill.skill)),
            );
        }
        let range = i64::from(SKILL_LEVEL_MIN)..=i64::from(SKILL_LEVEL_MAX);
        match u8::try_from(skill.min_level) {
            Ok(level) if range.contains(&skill.min_level) => {
                requirements.skills.push(SkillRequirement {
                    skill: skill.skill.clone(),
                    min_level: level,
                })
            }
            _ => p.push(
                format!("{at}.skills[{idx}].min_level"),
                format!(
                    "skill level {} is outside {SKILL_LEVEL_MIN}-{SKILL_LEVEL_MAX}",
                    skill.min_level
                ),
            ),
        }
    }
    for (idx, language) in step.languages.iter().enumerate() {
        if !is_language(language) {
            p.push(
                format!("{at}.languages[{idx}]"),
                format!(
                    "language {:?} is not a BCP 47 code such as en, de or pt-BR",
                    short(language)
                ),
            );
        }
        requirements.languages.push(language.clone());
    }
    if let Some(code) = &step.min_designation {
        requirements.min_designation = designation(p, &format!("{at}.min_designation"), code);
    }
    requirements
}

fn check_examples(
    p: &mut Problems<'_>,
    raw: &[file::ExampleFile],
    input: Option<&Schema>,
) -> Vec<Example> {
    if raw.is_empty() {
        p.push("examples", "a pack needs at least one example input");
    }
    if raw.len() > ENTRIES_MAX {
        p.push("examples", format!("more than {ENTRIES_MAX} examples"));
    }
    let mut seen = BTreeSet::new();
    let mut examples = Vec::new();
    for (idx, example) in raw.iter().enumerate() {
        let at = format!("examples[{idx}]");
        check_text(p, &format!("{at}.name"), &example.name);
        if !seen.insert(example.name.as_str()) {
            p.push(
                format!("{at}.name"),
                format!("duplicate example name {:?}", short(&example.name)),
            );
        }
        let priority = Priority::parse(&example.priority).unwrap_or_else(|| {
            p.push(
                format!("{at}.priority"),
                format!(
                    "unknown priority {:?}; expected low, normal, high or urgent",
                    short(&example.priority)
                ),
            );
            Priority::Normal
        });
        match schema::parse(&example.input) {
            Err(errors) => p.extend_fields(&format!("{at}.input"), errors, "example input"),
            Ok(value) => {
                if let Some(input) = input {
                    let errors = schema::field_errors(input, &value);
                    p.extend_fields(
                        &format!("{at}.input"),
                        errors,
                        "example input does not match the input schema",
                    );
                }
            }
        }
        examples.push(Example {
            name: example.name.clone(),
            priority,
            input: example.input.clone(),
        });
    }
    examples
}

fn check_sla(p: &mut Problems<'_>, raw: &BTreeMap<String, file::SlaFile>) -> Vec<SlaTerms> {
    for key in raw.keys() {
        if Priority::parse(key).is_none() {
            p.push(
                format!("sla.{key}"),
                format!(
                    "unknown priority {:?}; expected low, normal, high or urgent",
                    short(key)
                ),
            );
        }
    }
    let mut terms = Vec::new();
    for priority in Priority::ALL {
        let at = format!("sla.{}", priority.code());
        let Some(sla) = raw.get(priority.code()) else {
            p.push(
                at,
                format!("missing SLA terms for priority {}", priority.code()),
            );
            continue;
        };
        if sla.resolution_minutes == 0 || sla.resolution_minutes > RESOLUTION_MINUTES_MAX {
            p.push(
                format!("{at}.resolution_minutes"),
                format!("resolution must be 1 to {RESOLUTION_MINUTES_MAX} business minutes"),
            );
        }
        if sla.first_response_minutes == 0 || sla.first_response_minutes > sla.resolution_minutes {
            p.push(
                format!("{at}.first_response_minutes"),
                "first response must be at least 1 minute and no later than resolution",
            );
        }
        let warning_at = percent(p, &format!("{at}.warning_percent"), sla.warning_percent);
        if warning_at.0 == 0 || warning_at >= BasisPoints::WHOLE {
            p.push(
                format!("{at}.warning_percent"),
                "the warning must come strictly between 0 and 100 percent of the resolution time",
            );
        }
        let accuracy_target = percent(
            p,
            &format!("{at}.accuracy_target_percent"),
            sla.accuracy_target_percent,
        );
        terms.push(SlaTerms {
            priority,
            first_response_minutes: sla.first_response_minutes,
            resolution_minutes: sla.resolution_minutes,
            warning_at,
            accuracy_target,
        });
    }
    for pair in terms.windows(2) {
        let (lower, higher) = (&pair[0], &pair[1]);
        if higher.resolution_minutes > lower.resolution_minutes
            || higher.first_response_minutes > lower.first_response_minutes
        {
            p.push(
                format!("sla.{}", higher.priority.code()),
                format!(
                    "priority {} must be no slower than {} (first response and resolution)",
                    higher.priority.code(),
                    lower.priority.code()
                ),
            );
        }
    }
    terms
}

fn check_qa(p: &mut Problems<'_>, raw: &file::QaFile) -> Option<QaPolicy> {
    let min_reviewer = designation(p, "qa.min_reviewer", &raw.min_reviewer);
    let initial_review_rate = percent(
        p,
        "qa.initial_review_rate_percent",
        raw.initial_review_rate_percent,
    );
    let target_accuracy = percent(p, "qa.target_accuracy_percent", raw.target_accuracy_percent);
    let confidence = percent(p, "qa.confidence_percent", raw.confidence_percent);
    if confidence.0 < 5_000 || confidence >= BasisPoints::WHOLE {
        p.push(
            "qa.confidence_percent",
            "confidence must be at least 50 and below 100 percent",
        );
    }
    let gold_share = percent(p, "qa.gold_share_percent", raw.gold_share_percent);
    let consensus = raw.consensus.as_ref().and_then(|consensus| {
        let mode = match consensus.mode.as_str() {
            "double_keying" => Some(ConsensusMode::DoubleKeying),
            "independent_judgement" => Some(ConsensusMode::IndependentJudgement),
            other => {
                p.push("qa.consensus.mode", format!("unknown consensus mode {:?}; expected double_keying or independent_judgement", short(other)));
                None
            }
        };
        if !(2..=CONSENSUS_K_MAX).contains(&consensus.k) {
            p.push("qa.consensus.k", format!("k = {} is outside 2-{CONSENSUS_K_MAX}", consensus.k));
            return None;
        }
        Some(Consensus { mode: mode?, k: u8::try_from(consensus.k).ok()? })
    });
    Some(QaPolicy {
        min_reviewer: min_reviewer?,
        initial_review_rate,
        target_accuracy,
        confidence,
        consensus,
        gold_share,
    })
}

fn check_decisions(
    p: &mut Problems<'_>,
    raw: &[file::DecisionFile],
) -> (Vec<DecisionType>, Vec<(String, Schema)>) {
    if raw.len() > ENTRIES_MAX {
        p.push(
            "decisions",
            format!("more than {ENTRIES_MAX} decision types"),
        );
    }
    let mut seen = BTreeSet::new();
    let mut decisions = Vec::new();
    let mut schemas = Vec::new();
    for (idx, decision) in raw.iter().enumerate() {
        let at = format!("decisions[{idx}]");
        if !is_code(&decision.name) {
            p.push(
                format!("{at}.name"),
                format!(
                    "decision type {:?} must be a snake_case code",
                    short(&decision.name)
                ),
            );
        }
        if !seen.insert(decision.name.as_str()) {
            p.push(
                format!("{at}.name"),
                format!("duplicate decision type {:?}", short(&decision.name)),
            );
        }
        check_text(p, &format!("{at}.title"), &decision.title);
        let payload = compile(p, &format!("{at}.payload_schema"), &decision.payload_schema);
        let inverse = match (decision.inverse.as_str(), &decision.compensating_action) {
            ("compensate", Some(action)) if is_code(action) => {
                if decision.undo_window_hours == 0
                    || decision.undo_window_hours > UNDO_WINDOW_HOURS_MAX
                {
                    p.push(
                        format!("{at}.undo_window_hours"),
                        format!("a compensable decision needs an undo window of 1 to {UNDO_WINDOW_HOURS_MAX} hours"),
                    );
                }
                Inverse::Compensate {
                    action: action.clone(),
                }
            }
            ("compensate", _) => {
                p.push(
                    format!("{at}.compensating_action"),
                    "a compensable decision names its compensating action as a snake_case code",
                );
                Inverse::Irreversible
            }
            ("irreversible", None) => {
                if decision.undo_window_hours != 0 {
                    p.push(
                        format!("{at}.undo_window_hours"),
                        "an irreversible decision has no undo window",
                    );
                }
                Inverse::Irreversible
            }
            ("irreversible", Some(_)) => {
                p.push(
                    format!("{at}.compensating_action"),
                    "an irreversible decision has no compensating action",
                );
                Inverse::Irreversible
            }
            (other, _) => {
                p.push(
                    format!("{at}.inverse"),
                    format!(
                        "unknown inverse {:?}; expected compensate or irreversible",
                        short(other)
                    ),
                );
                Inverse::Irreversible
            }
        };
        let authority = check_authority(
            p,
            &format!("{at}.authority"),
            &decision.authority,
            payload.as_ref(),
        );
        if let (Some(payload), Some(authority)) = (payload, authority) {
            schemas.push((decision.name.clone(), payload));
            decisions.push(DecisionType {
                name: decision.name.clone(),
                title: decision.title.clone(),
                payload_schema: decision.payload_schema.clone(),
                inverse,
                undo_window_hours: decision.undo_window_hours,
                authority,
            });
        }
    }
    (decisions, schemas)
}

fn check_authority(
    p: &mut Problems<'_>,
    at: &str,
    raw: &file::AuthorityFile,
    payload: Option<&Schema>,
) -> Option<Authority> {
    let by_amount = raw.amount_field.is_some()
        || raw.currency.is_some()
        || !raw.limits.is_empty()
        || raw.beyond.is_some();
    match (&raw.minimum, by_amount) {
        (Some(_), true) => {
            p.push(
                at.to_owned(),
                "give either minimum, or amount_field with currency, limits and beyond; not both",
            );
            None
        }
        (Some(minimum), false) => Some(Authority::Designation {
            minimum: designation(p, &format!("{at}.minimum"), minimum)?,
        }),
        (None, false) => {
            p.push(
                at.to_owned(),
                "give either minimum, or amount_field with currency, limits and beyond",
            );
            None
        }
        (None, true) => {
            let field = raw.amount_field.clone().unwrap_or_default();
            if let Some(payload) = payload {
                if !schema::declares_number(&payload.value, &field) {
                    p.push(
                        format!("{at}.amount_field"),
                        format!(
                            "{:?} is not a JSON pointer to a number property of the payload schema",
                            short(&field)
                        ),
                    );
                }
            }
            let currency = match raw.currency.as_deref().map(str::parse::<Currency>) {
                Some(Ok(currency)) => Some(currency),
                Some(Err(error)) => {
                    p.push(format!("{at}.currency"), error.to_string());
                    None
                }
                None => {
                    p.push(
                        format!("{at}.currency"),
                        "a monetary authority needs a currency",
                    );
                    None
                }
            };
            let beyond = match raw.beyond.as_deref() {
                Some("client_approval") => Some(Beyond::ClientApproval),
                Some("refused") => Some(Beyond::Refused),
                other => {
                    p.push(
                        format!("{at}.beyond"),
                        format!(
                            "beyond is {:?}; expected client_approval or refused",
                            other.map(short)
                        ),
                    );
                    None
                }
            };
            if raw.limits.is_empty() {
                p.push(
                    format!("{at}.limits"),
                    "a monetary authority needs at least one limit",
                );
            }
            let mut limits: Vec<AuthorityLimit> = Vec::new();
            for (idx, limit) in raw.limits.iter().enumerate() {
                let Some(designation) = designation(
                    p,
                    &format!("{at}.limits[{idx}].designation"),
                    &limit.designation,
                ) else {
                    continue;
                };
                let Some(currency) = currency else { continue };
                let minor = 10_i64
                    .checked_pow(currency.minor_digits())
                    .and_then(|unit| limit.up_to.checked_mul(unit))
                    .filter(|minor| *minor > 0);
                let Some(minor) = minor else {
                    p.push(
                        format!("{at}.limits[{idx}].up_to"),
                        "a limit must be a positive amount",
                    );
                    continue;
                };
                if let Some(previous) = limits.last() {
                    if designation <= previous.designation || minor <= previous.up_to.minor {
                        p.push(
                            format!("{at}.limits[{idx}]"),
                            format!(
                                "authority limits must increase with designation: {} up to {} follows {} up to {}",
                                designation.code(),
                                limit.up_to,
                                previous.designation.code(),
                                previous.up_to.minor / 10_i64.pow(currency.minor_digits())
                            ),
                        );
                    }
                }
                limits.push(AuthorityLimit {
                    designation,
                    up_to: Money::new(minor, currency),
                });
            }
            Some(Authority::Amount {
                field,
                currency: currency?,
                limits,
                beyond: beyond?,
            })
        }
    }
}

fn check_defects(p: &mut Problems<'_>, raw: &[file::DefectFile]) -> Vec<DefectCategory> {
    if raw.is_empty() {
        p.push("defects", "a pack needs at least one defect category");
    }
    if raw.len() > ENTRIES_MAX {
        p.push(
            "defects",
            format!("more than {ENTRIES_MAX} defect categories"),
        );
    }
    let mut seen = BTreeSet::new();
    let mut defects = Vec::new();
    for (idx, defect) in raw.iter().enumerate() {
        let at = format!("defects[{idx}]");
        if !is_code(&defect.name) {
            p.push(
                format!("{at}.name"),
                format!(
                    "defect category {:?} must be a snake_case code",
                    short(&defect.name)
                ),
            );
        }
        if !seen.insert(defect.name.as_str()) {
            p.push(
                format!("{at}.name"),
                format!("duplicate defect category {:?}", short(&defect.name)),
            );
        }
        check_text(p, &format!("{at}.title"), &defect.title);
        let severity = match defect.severity.as_str() {
            "minor" => Severity::Minor,
            "major" => Severity::Major,
            "critical" => Severity::Critical,
            other => {
                p.push(
                    format!("{at}.severity"),
                    format!(
                        "unknown severity {:?}; expected minor, major or critical",
                        short(other)
                    ),
                );
                continue;
            }
        };
        defects.push(DefectCategory {
            name: defect.name.clone(),
            title: defect.title.clone(),
            severity,
        });
    }
    defects
}

fn check_deliverable(
    p: &mut Problems<'_>,
    raw: &file::DeliverableFile,
    output: Option<&Schema>,
) -> DeliverableShape {
    if raw.files.is_empty() && raw.fields.is_empty() {
        p.push(
            "deliverable",
            "a deliverable has at least one file or one data field",
        );
    }
    let mut files = Vec::new();
    for (idx, file) in raw.files.iter().enumerate() {
        let at = format!("deliverable.files[{idx}]");
        check_text(p, &format!("{at}.name"), &file.name);
        if file.name.contains('/') || file.name.contains('\\') {
            p.push(format!("{at}.name"), "a file name has no directory part");
        }
        if !is_media_type(&file.media_type) {
            p.push(
                format!("{at}.media_type"),
                format!(
                    "{:?} is not a media type such as application/pdf",
                    short(&file.media_type)
                ),
            );
        }
        files.push(DeliverableFile {
            name: file.name.clone(),
            media_type: file.media_type.clone(),
            description: file.description.clone(),
            required: file.required,
        });
    }
    if let Some(output) = output {
        let declared = schema::top_level_properties(&output.value);
        for (idx, field) in raw.fields.iter().enumerate() {
            if !declared.contains(&field.as_str()) {
                p.push(
                    format!("deliverable.fields[{idx}]"),
                    format!(
                        "{:?} is not a top-level property of the output schema",
                        short(field)
                    ),
                );
            }
        }
    }
    DeliverableShape {
        files,
        fields: raw.fields.clone(),
    }
}

fn compile(p: &mut Problems<'_>, field: &str, text: &str) -> Option<Schema> {
    match schema::compile(text) {
        Ok(schema) => Some(schema),
        Err(errors) => {
            p.extend_fields(field, errors, "invalid JSON Schema");
            None
        }
    }
}

fn designation(p: &mut Problems<'_>, field: &str, code: &str) -> Option<Designation> {
    let found = DESIGNATIONS.into_iter().find(|d| d.code() == code);
    if found.is_none() {
        p.push(
            field,
            format!(
                "unknown designation {:?}; expected analyst, senior_analyst, team_lead or manager",
                short(code)
            ),
        );
    }
    found
}

/// A percentage with at most two decimals, 0 to 100, as basis points.
fn percent(p: &mut Problems<'_>, field: &str, value: f64) -> BasisPoints {
    let scaled = value * 100.0;
    if !(0.0..=10_000.0).contains(&scaled) || (scaled - scaled.round()).abs() > 1e-6 {
        p.push(
            field,
            format!("{value} is not a percentage between 0 and 100 with at most two decimals"),
        );
        return BasisPoints(0);
    }
    // In range and whole, so the cast is exact.
    BasisPoints(scaled.round() as u16)
}

fn check_text(p: &mut Problems<'_>, field: &str, text: &str) {
    if text.trim().is_empty() {
        p.push(field, "must not be empty");
    } else if text.len() > NAME_LEN_MAX {
        p.push(field, format!("longer than {NAME_LEN_MAX} bytes"));
    }
}

fn is_pack_id(text: &str) -> bool {
    (3..=64).contains(&text.len())
        && text.starts_with(|c: char| c.is_ascii_lowercase())
        && text
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c))
}

/// A snake_case code: lower-case ASCII letters, digits and single underscores, starting with a letter.
fn is_code(text: &str) -> bool {
    (1..=NAME_LEN_MAX).contains(&text.len())
        && text.starts_with(|c: char| c.is_ascii_lowercase())
        && !text.ends_with('_')
        && !text.contains("__")
        && text
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// A BCP 47 language tag of the common shapes: `en`, `fil`, `pt-BR`, `zh-Hant`, `es-419`.
fn is_language(text: &str) -> bool {
    let mut parts = text.split('-');
    let primary = parts.next().unwrap_or_default();
    if !(2..=3).contains(&primary.len()) || !primary.chars().all(|c| c.is_ascii_lowercase()) {
        return false;
    }
    parts.all(|part| match part.len() {
        2 => part.chars().all(|c| c.is_ascii_uppercase()),
        3 => part.chars().all(|c| c.is_ascii_digit()),
        4 => {
            part.starts_with(|c: char| c.is_ascii_uppercase())
                && part[1..].chars().all(|c| c.is_ascii_lowercase())
        }
        _ => false,
    })
}

fn is_media_type(text: &str) -> bool {
    let Some((kind, subtype)) = text.split_once('/') else {
        return false;
    };
    let token = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    };
    token(kind) && token(subtype)
}

/// The first characters of a value echoed in an error, so a long mistake stays readable.
fn short(text: &str) -> String {
    /// Characters of a faulty value quoted back.
    const QUOTED_CHARS_MAX: usize = 64;
    text.chars().take(QUOTED_CHARS_MAX).collect()
}
