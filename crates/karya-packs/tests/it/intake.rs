//! Field-level validation of a work item's input at intake, on the built-in IP research pack.

use karya_packs::{parse_files, validate_input, FieldError};

fn ip_pack() -> karya_packs::Catalog {
    let text = include_str!("../../../../packs/ip_research.toml");
    parse_files(&[("ip_research.toml", text)]).unwrap_or_else(|e| panic!("{e}"))
}

fn check(input: &str, expect: &[(&str, &str)]) {
    let catalog = ip_pack();
    let pack = catalog.by_id("ip-prior-art-search").expect("loaded");
    let errors = validate_input(pack, input).expect_err("input should be refused");
    let got: Vec<(String, String)> = errors
        .into_iter()
        .map(|FieldError { path, problem }| (path, problem))
        .collect();
    for (path, fragment) in expect {
        assert!(
            got.iter()
                .any(|(p, problem)| p == path && problem.contains(fragment)),
            "expected {path}: ..{fragment}.., got {got:#?}"
        );
    }
}

#[test]
fn a_realistic_bad_prior_art_request_gets_one_error_per_field() {
    // An invalidity request that forgot the target patent, gave the cut-off in US notation,
    // a jurisdiction that is not an office code, a malformed CPC class, a claim without text
    // and a field the form does not have.
    let input = r#"{
        "search_type": "invalidity",
        "invention_title": "Wrist-worn SpO2 estimation",
        "invention_disclosure": "The target patent claims a wrist-worn device with three LED wavelengths and adaptive wavelength-pair selection.",
        "claims": [{ "number": 1 }],
        "priority_date_cutoff": "06/02/2018",
        "jurisdictions": ["USA"],
        "ipc_cpc_classes": ["A61B5"],
        "budget_usd": 4000
    }"#;
    check(
        input,
        &[
            ("/target_patent", "is a required property"),
            ("/priority_date_cutoff", "is not a \"date\""),
            ("/jurisdictions/0", ""),
            ("/ipc_cpc_classes/0", "does not match"),
            ("/claims/0/text", "is a required property"),
            ("", "Additional properties are not allowed"),
        ],
    );
}

#[test]
fn malformed_json_is_reported_with_its_position() {
    check(
        "{ \"search_type\": \"novelty\", }",
        &[("", "not valid JSON")],
    );
    check(
        "{ \"search_type\": \"novelty\", }",
        &[("", "line 1 column")],
    );
}

#[test]
fn submitted_values_are_not_echoed_back() {
    let catalog = ip_pack();
    let pack = catalog.by_id("ip-prior-art-search").expect("loaded");
    let errors =
        validate_input(pack, r#"{ "search_type": "SECRET-PROJECT-NAME" }"#).expect_err("refused");
    assert!(
        errors.iter().all(|e| !e.problem.contains("SECRET")),
        "{errors:?}"
    );
}

#[test]
fn a_valid_request_passes() {
    let catalog = ip_pack();
    let pack = catalog.by_id("ip-prior-art-search").expect("loaded");
    for example in &pack.pack.examples {
        assert_eq!(validate_input(pack, &example.input), Ok(()));
    }
}
