//! Embeds the built-in packs: lists `packs/*.toml` at the workspace root and writes an
//! `include_str!` table of them, so adding a pack file needs no code change and the binary
//! reads no pack file at run time.

use std::fmt::Write as _;
use std::path::PathBuf;

/// Most built-in pack files; one per service line today, with room for variants.
const PACK_FILES_MAX: usize = 256;

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let packs_dir = manifest_dir.join("../../packs");
    println!("cargo:rerun-if-changed={}", packs_dir.display());
    let mut files: Vec<PathBuf> = std::fs::read_dir(&packs_dir)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", packs_dir.display()))
        .map(|entry| entry.expect("readable directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .collect();
    files.sort();
    assert!(
        files.len() <= PACK_FILES_MAX,
        "more than {PACK_FILES_MAX} pack files"
    );
    let mut table = String::from("/// The built-in pack files: (file name, content).\n");
    table.push_str("pub(crate) static BUILTIN: &[(&str, &str)] = &[\n");
    for path in &files {
        println!("cargo:rerun-if-changed={}", path.display());
        let name = path.file_name().expect("a file").to_string_lossy();
        let absolute = path.canonicalize().expect("pack file exists");
        writeln!(
            table,
            "    ({name:?}, include_str!({:?})),",
            absolute.display()
        )
        .expect("writing to a string");
    }
    table.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("set by cargo")).join("builtin.rs");
    std::fs::write(&out, table).expect("write the built-in pack table");
}
