//! Validation at load: a valid fixture pack, and one broken variant of it per rule, each
//! expected to fail with a problem naming the field and saying what is wrong.

use karya_core::model::Designation;
use karya_core::pack::{Authority, StepKind};
use karya_packs::{load_dir, parse_files, parse_pack};

/// A small but complete pack: claims triage with a monetary decision.
const VALID: &str = r#"
id = "test-claims"
version = 3
service_line = "insurance_processing"
title = "Motor claim triage"
description = "Document check, then adjudication with a settlement decision."

[[steps]]
name = "document_check"
title = "Document check"
kind = "human"
expected_minutes = 15
skills = [{ skill = "claims_documentation", min_level = 3 }]
languages = ["en"]

[[steps]]
name = "adjudication"
title = "Adjudication"
kind = "human"
expected_minutes = 40
qualifications_any = ["iii_licentiate", "aic"]
skills = [{ skill = "claim_adjudication", min_level = 5 }]
decisions = ["approve_claim"]

[[steps]]
name = "payment"
title = "Payment instruction"
kind = "processor"
processor = "calculate"
expected_minutes = 1

[forms]
input = '''
{ "type": "object", "required": ["policy_number", "amount"],
  "properties": { "policy_number": { "type": "string" }, "amount": { "type": "number" },
                  "loss_date": { "type": "string", "format": "date" } } }
'''
output = '''
{ "type": "object", "properties": { "settled_amount": { "type": "number" }, "reason": { "type": "string" } } }
'''

[[examples]]
name = "rear-end collision"
input = '{ "policy_number": "MOT-1", "amount": 42000, "loss_date": "2026-01-04" }'

[sla.low]
first_response_minutes = 480
resolution_minutes = 4800
warning_percent = 80
accuracy_target_percent = 98
[sla.normal]
first_response_minutes = 240
resolution_minutes = 2400
warning_percent = 80
accuracy_target_percent = 98
[sla.high]
first_response_minutes = 120
resolution_minutes = 960
warning_percent = 75
accuracy_target_percent = 98
[sla.urgent]
first_response_minutes = 30
resolution_minutes = 480
warning_percent = 70
accuracy_target_percent = 97.5

[qa]
min_reviewer = "senior_analyst"
initial_review_rate_percent = 25
target_accuracy_percent = 98
confidence_percent = 95
gold_share_percent = 1.5

[[decisions]]
name = "approve_claim"
title = "Approve the claim for settlement"
payload_schema = '''
{ "type": "object", "required": ["approved_amount"],
  "properties": { "approved_amount": { "type": "number", "minimum": 0 } } }
'''
inverse = "compensate"
compensating_action = "reverse_payment_instruction"
undo_window_hours = 72

[decisions.authority]
amount_field = "/approved_amount"
currency = "INR"
beyond = "client_approval"
limits = [
    { designation = "analyst", up_to = 50000 },
    { designation = "team_lead", up_to = 500000 },
]

[[defects]]
name = "wrong_amount"
title = "Settlement amount wrong"
severity = "critical"

[deliverable]
fields = ["settled_amount", "reason"]

[[deliverable.files]]
name = "{external_ref}-settlement.pdf"
media_type = "application/pdf"
description = "Settlement letter"
"#;

/// Applies each (from, to) replacement to the valid fixture, each `from` occurring exactly once
/// so that a fixture edit cannot silently stop breaking anything.
fn broken(edits: &[(&str, &str)]) -> String {
    let mut text = VALID.to_owned();
    for (from, to) in edits {
        assert_eq!(
            text.matches(from).count(),
            1,
            "fixture must contain {from:?} exactly once"
        );
        text = text.replacen(from, to, 1);
    }
    text
}

/// Loads the broken fixture and expects a problem whose rendering contains each `expect` line.
fn check(edits: &[(&str, &str)], expect: &[&str]) {
    let text = broken(edits);
    let error = match parse_pack("claims.toml", &text) {
        Ok(_) => panic!("pack with {edits:?} loaded, expected {expect:?}"),
        Err(error) => error,
    };
    let rendered: Vec<String> = error.problems.iter().map(|p| p.to_string()).collect();
    for wanted in expect {
        assert!(
            rendered.iter().any(|line| line.contains(wanted)),
            "expected a problem containing {wanted:?}, got:\n{}",
            rendered.join("\n")
        );
    }
}

#[test]
fn the_valid_fixture_loads_into_core_types() {
    let loaded = parse_pack("claims.toml", VALID).unwrap_or_else(|e| panic!("{e}"));
    let pack = &loaded.pack;
    assert_eq!((pack.id.as_str(), pack.version), ("test-claims", 3));
    assert_eq!(pack.steps.len(), 3);
    assert_eq!(
        pack.steps[2].kind,
        StepKind::Processor {
            processor: "calculate".into()
        }
    );
    assert_eq!(pack.sla.len(), 4);
    assert_eq!(pack.sla[3].accuracy_target.0, 9_750);
    assert_eq!(pack.qa.gold_share.0, 150);
    match &pack.decision("approve_claim").expect("declared").authority {
        Authority::Amount { limits, .. } => {
            assert_eq!(limits[1].designation, Designation::TeamLead);
            // 500,000 rupees in paise.
            assert_eq!(limits[1].up_to.minor, 50_000_000);
        }
        other => panic!("expected a monetary authority, got {other:?}"),
    }
}

#[test]
fn unknown_service_line() {
    check(
        &[(
            r#"service_line = "insurance_processing""#,
            r#"service_line = "insurance""#,
        )],
        &[r#"claims.toml: service_line: unknown service line "insurance""#],
    );
}

#[test]
fn duplicate_step_names() {
    check(
        &[(r#"name = "payment""#, r#"name = "adjudication""#)],
        &[r#"steps[2].name: duplicate step name "adjudication""#],
    );
}

#[test]
fn unknown_qualification_code() {
    check(
        &[(
            r#"["iii_licentiate", "aic"]"#,
            r#"["iii_licentiate", "insurance_diploma"]"#,
        )],
        &[r#"steps[1].qualifications_any[1]: unknown qualification code "insurance_diploma""#],
    );
}

#[test]
fn skill_level_outside_range() {
    check(
        &[("min_level = 5", "min_level = 11")],
        &["steps[1].skills[0].min_level: skill level 11 is outside 1-10"],
    );
    check(
        &[("min_level = 3", "min_level = 0")],
        &["steps[0].skills[0].min_level: skill level 0 is outside 1-10"],
    );
}

#[test]
fn invalid_json_schema() {
    check(
        &[(
            r#""amount": { "type": "number" }"#,
            r#""amount": { "type": "numeric" }"#,
        )],
        &[
            "forms.input: invalid JSON Schema",
            "not a valid JSON Schema",
        ],
    );
    check(
        &[(
            r#"{ "type": "object", "properties": { "settled_amount""#,
            r#"{ "type": "object" "properties": { "settled_amount""#,
        )],
        &["forms.output: invalid JSON Schema: not valid JSON"],
    );
}

#[test]
fn example_input_not_matching_the_schema() {
    check(
        &[(r#""amount": 42000"#, r#""amount": "42000""#)],
        &["examples[0].input: example input does not match the input schema at /amount"],
    );
    check(
        &[(
            r#""loss_date": "2026-01-04""#,
            r#""loss_date": "04/01/2026""#,
        )],
        &["examples[0].input: example input does not match the input schema at /loss_date"],
    );
}

#[test]
fn a_pack_needs_an_example() {
    check(
        &[("[[examples]]\nname = \"rear-end collision\"\ninput = '{ \"policy_number\": \"MOT-1\", \"amount\": 42000, \"loss_date\": \"2026-01-04\" }'\n", "")],
        &["examples: a pack needs at least one example input"],
    );
}

#[test]
fn authority_limits_must_increase_with_designation() {
    check(
        &[(r#"{ designation = "team_lead", up_to = 500000 }"#, r#"{ designation = "team_lead", up_to = 40000 }"#)],
        &["decisions[0].authority.limits[1]: authority limits must increase with designation: team_lead up to 40000 follows analyst up to 50000"],
    );
    check(
        &[(
            r#"{ designation = "team_lead", up_to = 500000 }"#,
            r#"{ designation = "analyst", up_to = 500000 }"#,
        )],
        &["decisions[0].authority.limits[1]: authority limits must increase with designation"],
    );
}

#[test]
fn authority_amount_must_be_a_number_in_the_payload() {
    check(
        &[(
            r#"amount_field = "/approved_amount""#,
            r#"amount_field = "/amount""#,
        )],
        &[
            r#"decisions[0].authority.amount_field: "/amount" is not a JSON pointer to a number property"#,
        ],
    );
}

#[test]
fn missing_sla_priority() {
    check(
        &[("[sla.urgent]", "[sla.critical]")],
        &[
            "sla.urgent: missing SLA terms for priority urgent",
            r#"sla.critical: unknown priority "critical""#,
        ],
    );
}

#[test]
fn sla_must_not_slow_down_as_priority_rises() {
    check(
        &[("resolution_minutes = 960", "resolution_minutes = 3000")],
        &["sla.high: priority high must be no slower than normal"],
    );
    check(
        &[("first_response_minutes = 30", "first_response_minutes = 600")],
        &["sla.urgent.first_response_minutes: first response must be at least 1 minute and no later than resolution"],
    );
}

#[test]
fn percentages_are_bounded() {
    check(
        &[(
            "initial_review_rate_percent = 25",
            "initial_review_rate_percent = 125",
        )],
        &["qa.initial_review_rate_percent: 125 is not a percentage between 0 and 100"],
    );
    check(
        &[("warning_percent = 70", "warning_percent = 100")],
        &["sla.urgent.warning_percent: the warning must come strictly between 0 and 100 percent"],
    );
}

#[test]
fn unknown_designation_and_consensus() {
    check(
        &[(
            r#"min_reviewer = "senior_analyst""#,
            "min_reviewer = \"supervisor\"\nconsensus = { mode = \"double_keying\", k = 1 }",
        )],
        &[
            r#"qa.min_reviewer: unknown designation "supervisor""#,
            "qa.consensus.k: k = 1 is outside 2-5",
        ],
    );
}

#[test]
fn human_step_without_requirements() {
    check(
        &[("skills = [{ skill = \"claims_documentation\", min_level = 3 }]\nlanguages = [\"en\"]\n", "")],
        &["steps[0].kind: a human step needs at least one requirement"],
    );
}

#[test]
fn processor_steps_name_a_known_processor() {
    check(
        &[(r#"processor = "calculate""#, r#"processor = "abacus""#)],
        &[r#"steps[2].processor: unknown processor "abacus""#],
    );
    check(
        &[("processor = \"calculate\"\n", "")],
        &["steps[2].processor: a processor step must name its processor"],
    );
}

#[test]
fn steps_refer_to_declared_decisions() {
    check(
        &[(
            r#"decisions = ["approve_claim"]"#,
            r#"decisions = ["approve_payment"]"#,
        )],
        &[
            r#"steps[1].decisions[0]: unknown decision type "approve_payment""#,
            r#"decisions[0].name: decision type "approve_claim" is not taken in any step"#,
        ],
    );
}

#[test]
fn inverse_and_undo_window_agree() {
    check(
        &[("compensating_action = \"reverse_payment_instruction\"\n", "")],
        &["decisions[0].compensating_action: a compensable decision names its compensating action"],
    );
    check(
        &[(r#"inverse = "compensate""#, r#"inverse = "irreversible""#)],
        &["decisions[0].compensating_action: an irreversible decision has no compensating action"],
    );
    check(
        &[("undo_window_hours = 72", "undo_window_hours = 0")],
        &["decisions[0].undo_window_hours: a compensable decision needs an undo window"],
    );
}

#[test]
fn unknown_severity_and_language() {
    check(
        &[
            (r#"severity = "critical""#, r#"severity = "blocker""#),
            (r#"languages = ["en"]"#, r#"languages = ["English"]"#),
        ],
        &[
            r#"defects[0].severity: unknown severity "blocker""#,
            r#"steps[0].languages[0]: language "English" is not a BCP 47 code"#,
        ],
    );
}

#[test]
fn deliverable_fields_exist_in_the_output_schema() {
    check(
        &[(
            r#"fields = ["settled_amount", "reason"]"#,
            r#"fields = ["settled_amount", "decision_letter"]"#,
        )],
        &[
            r#"deliverable.fields[1]: "decision_letter" is not a top-level property of the output schema"#,
        ],
    );
}

#[test]
fn unknown_keys_are_refused_with_their_line() {
    check(
        &[(
            "expected_minutes = 40",
            "expected_minutes = 40\nqualification = [\"ca\"]",
        )],
        &["claims.toml: line 21: unknown field `qualification`"],
    );
}

#[test]
fn duplicate_pack_ids_across_files() {
    let error = parse_files(&[("a.toml", VALID), ("b.toml", VALID)]).expect_err("same id twice");
    assert_eq!(
        error
            .problems
            .iter()
            .map(|p| p.to_string())
            .collect::<Vec<_>>(),
        [r#"b.toml: id: pack id "test-claims" is already defined in a.toml"#]
    );
}

#[test]
fn load_dir_reads_toml_files_and_names_the_file_in_errors() {
    let dir = std::env::temp_dir().join(format!("karya-packs-load-dir-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    std::fs::write(dir.join("claims.toml"), VALID).expect("write");
    std::fs::write(dir.join("notes.txt"), "not a pack").expect("write");
    let catalog = load_dir(&dir).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(catalog.packs().len(), 1);
    assert!(catalog.by_id("test-claims").is_some());

    std::fs::write(
        dir.join("broken.toml"),
        broken(&[("version = 3", "version = 0")]),
    )
    .expect("write");
    let error = load_dir(&dir).expect_err("broken pack in the directory");
    let rendered = error.to_string();
    std::fs::remove_dir_all(&dir).expect("clean up");
    assert!(
        rendered.contains("broken.toml: version: version must be 1 or more"),
        "{rendered}"
    );

    let missing = load_dir(&dir).expect_err("directory removed");
    assert!(
        missing.to_string().contains("cannot read the directory"),
        "{missing}"
    );
}
