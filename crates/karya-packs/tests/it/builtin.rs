//! The built-in packs: every embedded file loads, and each pack is complete enough to work.

use std::collections::BTreeSet;

use karya_core::model::Priority;
use karya_core::pack::{ConsensusMode, Qualification, StepKind, PROCESSORS};
use karya_core::service_line::ServiceLine;
use karya_packs::{builtin, builtin_file_names, parse_pack, validate_input};

#[test]
fn every_embedded_pack_loads_and_its_examples_validate() {
    let mut n_files = 0;
    for name in builtin_file_names() {
        n_files += 1;
        let path = format!("{}/../../packs/{name}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).expect("pack file");
        let loaded = parse_pack(name, &text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            Some(loaded.pack.service_line.code()),
            name.strip_suffix(".toml")
        );
        assert!(!loaded.pack.examples.is_empty(), "{name} has no example");
        for example in &loaded.pack.examples {
            if let Err(errors) = loaded.validate_input(&example.input) {
                panic!("{name}: example {:?} is invalid: {errors:?}", example.name);
            }
        }
        for step in &loaded.pack.steps {
            if step.kind == StepKind::Human {
                assert!(
                    !step.requirements.is_empty(),
                    "{name}: step {} has no requirement",
                    step.name
                );
            }
        }
    }
    assert!(n_files > 0, "no built-in pack embedded");
}

#[test]
fn builtin_has_exactly_one_pack_per_service_line() {
    let catalog = builtin().unwrap_or_else(|e| panic!("{e}"));
    for line in ServiceLine::ALL {
        let ids: Vec<&str> = catalog.for_line(line).map(|l| l.pack.id.as_str()).collect();
        assert_eq!(ids.len(), 1, "{line}: {ids:?}");
    }
    assert_eq!(catalog.packs().len(), ServiceLine::ALL.len());
    for loaded in catalog.packs() {
        let pack = &loaded.pack;
        // Every priority has terms, and the examples drive intake like a client would.
        for priority in Priority::ALL {
            assert!(
                pack.sla_for(priority).is_some(),
                "{}: no {priority:?} terms",
                pack.id
            );
        }
        for example in &pack.examples {
            assert_eq!(
                validate_input(loaded, &example.input),
                Ok(()),
                "{}: {}",
                pack.id,
                example.name
            );
        }
        // The empty object is never a valid work item: every form requires something.
        assert!(
            validate_input(loaded, "{}").is_err(),
            "{} accepts an empty input",
            pack.id
        );
    }
}

#[test]
fn the_packs_differ_from_line_to_line() {
    // Not 25 copies of one template: step names, decision types and defect categories are
    // mostly particular to their line.
    let catalog = builtin().unwrap_or_else(|e| panic!("{e}"));
    let mut step_names = BTreeSet::new();
    let mut decisions = BTreeSet::new();
    let mut defects = BTreeSet::new();
    for loaded in catalog.packs() {
        step_names.extend(loaded.pack.steps.iter().map(|s| s.name.clone()));
        decisions.extend(loaded.pack.decisions.iter().map(|d| d.name.clone()));
        defects.extend(loaded.pack.defects.iter().map(|d| d.name.clone()));
    }
    assert!(
        step_names.len() >= 60,
        "{} distinct step names",
        step_names.len()
    );
    assert!(
        decisions.len() >= 30,
        "{} distinct decision types",
        decisions.len()
    );
    assert!(
        defects.len() >= 100,
        "{} distinct defect categories",
        defects.len()
    );
}

#[test]
fn lines_that_need_a_profession_ask_for_it() {
    // A practitioner's expectations, spot-checked: who may do the core step of some lines.
    let catalog = builtin().unwrap_or_else(|e| panic!("{e}"));
    let check = |line: ServiceLine, step: &str, expect: &[Qualification]| {
        let loaded = catalog.for_line(line).next().expect("one pack per line");
        let found = loaded
            .pack
            .step(step)
            .unwrap_or_else(|| panic!("{line} has no step {step}"));
        assert_eq!(
            found.requirements.qualifications_any, expect,
            "{line}/{step}"
        );
    };
    check(
        ServiceLine::MedicalServices,
        "coding",
        &[Qualification::Cpc, Qualification::Ccs],
    );
    check(
        ServiceLine::Bookkeeping,
        "review",
        &[Qualification::Ca, Qualification::Cpa, Qualification::Acca],
    );
    check(
        ServiceLine::PharmaAndBiotech,
        "medical_review",
        &[Qualification::Mbbs, Qualification::Md],
    );
    check(
        ServiceLine::LegalServices,
        "second_level_review",
        &[Qualification::BarAdmission],
    );
    let data_entry = catalog
        .for_line(ServiceLine::DataEntry)
        .next()
        .expect("pack");
    assert_eq!(
        data_entry.pack.qa.consensus.map(|c| (c.mode, c.k)),
        Some((ConsensusMode::DoubleKeying, 2))
    );
}

#[test]
fn the_readme_lists_exactly_the_qualification_codes_and_processors() {
    let readme = include_str!("../../../../packs/README.md");
    let section = readme
        .split("## Qualification codes")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("a qualification codes section");
    let documented: Vec<&str> = section
        .lines()
        .filter_map(|line| line.strip_prefix("| `"))
        .filter_map(|rest| rest.split('`').next())
        .collect();
    let known: Vec<&str> = Qualification::ALL.iter().map(|q| q.code()).collect();
    assert_eq!(documented, known);
    for processor in PROCESSORS {
        assert!(
            readme.contains(&format!("`{processor}`")),
            "processor {processor} undocumented"
        );
    }
}
