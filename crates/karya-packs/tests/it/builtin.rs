//! The built-in packs: every embedded file loads, and each pack is complete enough to work.

use karya_core::pack::StepKind;
use karya_packs::{builtin_file_names, parse_pack};

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
