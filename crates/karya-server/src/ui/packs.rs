//! The service packs, read-only: the list of the built-in packs (version, steps, forms) and one
//! pack's detail (its steps with their requirements, the intake and deliverable forms, SLA
//! terms, QA policy, decision types, defect categories and deliverable files).

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::Method;
use axum::routing::get;
use karya_core::pack::{
    Authority, BasisPoints, Beyond, ConsensusMode, Inverse, Pack, Requirements, StepKind,
};
use karya_packs::LoadedPack;

use super::{layout, page, Action, Block, Cell, Heading, Stat, Table, UiError, UiResult};
use crate::api::Api;
use crate::auth::{self, Access};
use crate::error::{ApiError, ErrorCode};
use crate::extract::{Caller, Path};
use crate::AppState;

pub fn api() -> Api {
    Api::new()
        .route(
            "/ui/packs",
            get(packs),
            &[(Method::GET, Access::Firm(auth::STAFF_READ))],
        )
        .route(
            "/ui/packs/{pack_id}",
            get(pack_page),
            &[(Method::GET, Access::Firm(auth::STAFF_READ))],
        )
}

fn all_packs() -> &'static [LoadedPack] {
    crate::builtin_catalog().packs()
}

fn form_fields(schema: &str) -> usize {
    super::forms::fields_of(schema, &BTreeMap::new(), &BTreeMap::new()).len()
}

fn bp(value: BasisPoints) -> String {
    let percent = value.as_percent();
    match percent.fract() == 0.0 {
        true => format!("{percent:.0} %"),
        false => format!("{percent} %"),
    }
}

/// Business minutes as people read them: `90 min`, `8 h`, `3 d 4 h` (days of 24 hours).
fn minutes(total: u32) -> String {
    match total {
        0..=119 => format!("{total} min"),
        _ if !total.is_multiple_of(60) => format!("{} h {} min", total / 60, total % 60),
        _ => format!("{} h", total / 60),
    }
}

async fn packs(State(_state): State<AppState>, Caller(caller): Caller) -> UiResult {
    let layout = layout(&caller, "Service packs", "/ui/packs");
    let mut table = Table::new(
        "packs",
        &[
            "Pack",
            "Service line",
            "Version",
            "Steps",
            "Intake form",
            "Deliverable",
            "Decision types",
        ],
        "No packs loaded",
        "The built-in packs did not load; the server log names the file and field at fault.",
    );
    let packs = all_packs();
    for loaded in packs {
        let pack = &loaded.pack;
        let human = pack
            .steps
            .iter()
            .filter(|s| s.kind == StepKind::Human)
            .count();
        table.rows.push(vec![
            Cell::link(&pack.title, format!("/ui/packs/{}", pack.id)),
            Cell::text(pack.service_line.name()),
            Cell::text(format!("v{}", pack.version)),
            Cell::text(format!("{} ({} by people)", pack.steps.len(), human)),
            Cell::text(format!("{} fields", form_fields(&pack.input_schema))),
            Cell::text(format!("{} fields", form_fields(&pack.output_schema))),
            Cell::text(pack.decisions.len()),
        ]);
    }
    let steps: usize = packs.iter().map(|p| p.pack.steps.len()).sum();
    Ok(page(
        &layout,
        &[
            Block::Heading(Heading {
                title: "Service packs".into(),
                sub: "How each service line's work is done: steps, forms, SLA, QA and decisions. \
                      Read-only; packs change with a new version."
                    .into(),
                actions: Vec::new(),
            }),
            Block::Stats(vec![
                Stat::new("Packs", packs.len(), "one per service line"),
                Stat::new("Steps", steps, "across all packs"),
            ]),
            Block::Table(table),
        ],
    ))
}

fn requirements_text(req: &Requirements) -> String {
    let mut parts = Vec::new();
    if !req.qualifications_any.is_empty() {
        parts.push(format!(
            "one of: {}",
            req.qualifications_any
                .iter()
                .map(|q| q.code().replace('_', " "))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    for skill in &req.skills {
        parts.push(format!(
            "{} ≥ {}",
            skill.skill.replace('_', " "),
            skill.min_level
        ));
    }
    if !req.languages.is_empty() {
        parts.push(format!("speaks {}", req.languages.join(", ")));
    }
    if let Some(designation) = req.min_designation {
        parts.push(format!("at least {}", designation.code().replace('_', " ")));
    }
    match parts.is_empty() {
        true => "anyone".into(),
        false => parts.join("; "),
    }
}

fn authority_text(authority: &Authority) -> String {
    match authority {
        Authority::Designation { minimum } => {
            format!("{} and above", minimum.code().replace('_', " "))
        }
        Authority::Amount {
            currency,
            limits,
            beyond,
            ..
        } => {
            let limits: Vec<String> = limits
                .iter()
                .map(|l| {
                    format!(
                        "{} up to {}",
                        l.designation.code().replace('_', " "),
                        l.up_to
                    )
                })
                .collect();
            format!(
                "{} ({currency}); beyond: {}",
                limits.join(", "),
                match beyond {
                    Beyond::ClientApproval => "client approves",
                    Beyond::Refused => "refused",
                }
            )
        }
    }
}

fn form_table(id: &str, schema: &str) -> Table {
    let mut table = Table::new(
        id,
        &["Field", "Kind", "Required", "Help"],
        "No fields",
        "This form takes no fields.",
    );
    for field in super::forms::fields_of(schema, &BTreeMap::new(), &BTreeMap::new()) {
        table.rows.push(vec![
            Cell::text(&field.label),
            Cell::text(match field.kind {
                "select" => format!("choice of {}", field.options.len().saturating_sub(1)),
                kind => kind.to_string(),
            }),
            match field.required {
                true => Cell::pill("required", "info"),
                false => Cell::text("optional"),
            },
            Cell::text(&field.help),
        ]);
    }
    table
}

async fn pack_page(
    State(_state): State<AppState>,
    Path(pack_id): Path<String>,
    Caller(caller): Caller,
) -> UiResult {
    let loaded = all_packs()
        .iter()
        .find(|p| p.pack.id == pack_id)
        .ok_or_else(|| {
            UiError(ApiError::new(
                ErrorCode::NotFound,
                format!("pack {pack_id} not found"),
            ))
        })?;
    let pack: &Pack = &loaded.pack;
    let layout = layout(&caller, &pack.title, "/ui/packs");
    let mut steps = Table::new(
        "pack-steps",
        &[
            "#",
            "Step",
            "Done by",
            "Who may do it",
            "Decisions",
            "Expected",
        ],
        "No steps",
        "",
    );
    for (idx, step) in pack.steps.iter().enumerate() {
        steps.rows.push(vec![
            Cell::text(idx + 1),
            Cell::text(&step.title),
            match &step.kind {
                StepKind::Human => Cell::pill("person", "info"),
                StepKind::Processor { processor } => {
                    Cell::pill(format!("processor: {processor}"), "plain")
                }
            },
            Cell::text(match step.kind {
                StepKind::Human => requirements_text(&step.requirements),
                StepKind::Processor { .. } => "–".into(),
            }),
            Cell::text(match step.decisions.is_empty() {
                true => "–".into(),
                false => step.decisions.join(", "),
            }),
            Cell::text(minutes(step.expected_minutes)),
        ]);
    }
    let mut sla = Table::new(
        "pack-sla",
        &[
            "Priority",
            "First response",
            "Resolution",
            "Warning at",
            "Accuracy target",
        ],
        "No SLA terms",
        "",
    );
    for terms in &pack.sla {
        sla.rows.push(vec![
            Cell::text(terms.priority.code()),
            Cell::text(minutes(terms.first_response_minutes)),
            Cell::text(minutes(terms.resolution_minutes)),
            Cell::text(format!("{} of the time", bp(terms.warning_at))),
            Cell::text(bp(terms.accuracy_target)),
        ]);
    }
    let qa = &pack.qa;
    let mut qa_facts = vec![
        (
            "Reviewers".to_string(),
            Cell::text(format!(
                "{} and above",
                qa.min_reviewer.code().replace('_', " ")
            )),
        ),
        (
            "Review rate at first".into(),
            Cell::text(bp(qa.initial_review_rate)),
        ),
        (
            "Accuracy to prove".into(),
            Cell::text(format!(
                "{} at {} confidence",
                bp(qa.target_accuracy),
                bp(qa.confidence)
            )),
        ),
        ("Gold tasks".into(), Cell::text(bp(qa.gold_share))),
    ];
    qa_facts.push((
        "Consensus".into(),
        Cell::text(match qa.consensus {
            None => "none".to_string(),
            Some(c) => format!(
                "{} by {} workers",
                match c.mode {
                    ConsensusMode::DoubleKeying => "double keying",
                    ConsensusMode::IndependentJudgement => "independent judgement",
                },
                c.k
            ),
        }),
    ));
    let mut decisions = Table::new(
        "pack-decisions",
        &["Decision", "Undo", "Who may decide"],
        "No decision types",
        "Workers in this service line record no business decisions.",
    );
    for decision in &pack.decisions {
        decisions.rows.push(vec![
            Cell::text(format!("{} ({})", decision.title, decision.name)),
            Cell::text(match &decision.inverse {
                Inverse::Compensate { action } => format!(
                    "{} within {} h",
                    action.replace('_', " "),
                    decision.undo_window_hours
                ),
                Inverse::Irreversible => "irreversible".into(),
            }),
            Cell::text(authority_text(&decision.authority)),
        ]);
    }
    let mut defects = Table::new(
        "pack-defects",
        &["Defect", "Severity"],
        "No defect categories",
        "",
    );
    for defect in &pack.defects {
        defects.rows.push(vec![
            Cell::text(&defect.title),
            Cell::text(defect.severity.code()),
        ]);
    }
    let mut files = Table::new(
        "pack-files",
        &["File", "Type", "What it is", ""],
        "No files",
        "The deliverable is data only.",
    );
    for file in &pack.deliverable.files {
        files.rows.push(vec![
            Cell::mono(&file.name),
            Cell::mono(&file.media_type),
            Cell::text(&file.description),
            match file.required {
                true => Cell::pill("required", "info"),
                false => Cell::text("optional"),
            },
        ]);
    }
    Ok(page(
        &layout,
        &[
            Block::Heading(Heading {
                title: pack.title.clone(),
                sub: format!("{} · version {}", pack.service_line.name(), pack.version),
                actions: vec![Action::link("packs", "All packs", "/ui/packs".into())],
            }),
            Block::Text(pack.description.clone()),
            Block::Facts(vec![
                ("Pack".into(), Cell::mono(&pack.id)),
                ("Version".into(), Cell::text(pack.version)),
                (
                    "Service line".into(),
                    Cell::text(format!(
                        "{} ({})",
                        pack.service_line.name(),
                        pack.service_line.code()
                    )),
                ),
                (
                    "Examples".into(),
                    Cell::text(
                        pack.examples
                            .iter()
                            .map(|e| e.name.clone())
                            .collect::<Vec<_>>()
                            .join(", "),
                    ),
                ),
            ]),
            Block::Section("Steps".into()),
            Block::Table(steps),
            Block::Section("SLA terms (defaults, in business time)".into()),
            Block::Table(sla),
            Block::Section("QA policy".into()),
            Block::Facts(qa_facts),
            Block::Section("Decision types".into()),
            Block::Table(decisions),
            Block::Section("Intake form".into()),
            Block::Table(form_table("pack-input", &pack.input_schema)),
            Block::Section("Deliverable".into()),
            Block::Table(form_table("pack-output", &pack.output_schema)),
            Block::Table(files),
            Block::Section("Defect categories".into()),
            Block::Table(defects),
        ],
    ))
}
