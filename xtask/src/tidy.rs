//! The invariants, each a function returning the problems it found.
//!
//! - `karya-core` does no IO: none of its normal (non-dev) dependencies, direct or transitive,
//!   is an IO crate, and its non-test source does not reach for the clock, environment, files,
//!   network or processes.
//! - Only `karya-store` depends on `sqlx`; only `karya-server` (and the binary that serves it)
//!   on `axum`.
//! - Every Rust source file opens with a `//!` paragraph saying what it is.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context;

/// Crates that do IO or bring an async runtime; the core may depend on none of them.
const IO_CRATES: &[&str] = &[
    "tokio",
    "mio",
    "socket2",
    "sqlx",
    "sqlx-core",
    "libsqlite3-sys",
    "axum",
    "hyper",
    "tower",
    "reqwest",
    "ureq",
    "tantivy",
    "tempfile",
    "async-std",
    "smol",
];

/// Source text that means the core reads the clock, the environment or the outside world.
const IO_CALLS: &[&str] = &[
    "std::fs",
    "std::net",
    "std::env",
    "std::process",
    "std::io::stdin",
    "SystemTime::now",
    "Instant::now",
    "Timestamp::now",
    "Zoned::now",
    "TimeZone::system",
    "TimeZone::get(",
    "thread_rng",
    "getrandom",
    "Uuid::now_v7",
    "Uuid::new_v4",
    "println!",
];

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask sits in the workspace root")
        .to_path_buf()
}

pub fn check_all(root: &Path) -> anyhow::Result<Vec<String>> {
    let metadata = cargo_metadata(root)?;
    let mut problems = Vec::new();
    problems.extend(core_dependencies_are_pure(&metadata)?);
    problems.extend(core_source_is_pure(root)?);
    problems.extend(dependency_boundaries(&metadata)?);
    problems.extend(files_open_with_module_docs(root)?);
    Ok(problems)
}

/// The workspace's metadata for the host platform. Offline, from the packages already fetched:
/// the host's filter spares cargo the manifests of other platforms' packages (Windows consoles,
/// say), which a Linux machine never downloads.
fn cargo_metadata(root: &Path) -> anyhow::Result<serde_json::Value> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let host = host_triple()?;
    let output = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--offline"])
        .args(["--filter-platform", &host])
        .current_dir(root)
        .output()
        .context("cannot run cargo metadata")?;
    anyhow::ensure!(
        output.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(serde_json::from_slice(&output.stdout)?)
}

/// The target triple the toolchain builds for by default (`rustc -vV`'s `host:` line).
fn host_triple() -> anyhow::Result<String> {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let output = Command::new(rustc)
        .arg("-vV")
        .output()
        .context("cannot run rustc -vV")?;
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(|line| line.strip_prefix("host: "))
        .map(|host| host.trim().to_string())
        .context("rustc -vV names no host")
}

/// Package id → (name, ids of its normal dependencies).
fn normal_graph(metadata: &serde_json::Value) -> HashMap<String, (String, Vec<String>)> {
    let names: HashMap<&str, &str> = metadata["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            (
                p["id"].as_str().unwrap_or_default(),
                p["name"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    let mut graph = HashMap::new();
    for node in metadata["resolve"]["nodes"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let id = node["id"].as_str().unwrap_or_default().to_string();
        let deps = node["deps"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|dep| {
                dep["dep_kinds"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|kind| kind["kind"].is_null())
            })
            .filter_map(|dep| dep["pkg"].as_str().map(str::to_string))
            .collect();
        let name = names
            .get(id.as_str())
            .copied()
            .unwrap_or_default()
            .to_string();
        graph.insert(id, (name, deps));
    }
    graph
}

fn workspace_package_id(metadata: &serde_json::Value, name: &str) -> Option<String> {
    metadata["packages"]
        .as_array()?
        .iter()
        .find(|p| p["name"] == name && p["source"].is_null())
        .and_then(|p| p["id"].as_str().map(str::to_string))
}

fn core_dependencies_are_pure(metadata: &serde_json::Value) -> anyhow::Result<Vec<String>> {
    let graph = normal_graph(metadata);
    let core =
        workspace_package_id(metadata, "karya-core").context("karya-core not in the workspace")?;
    let mut seen = BTreeSet::new();
    let mut stack = vec![core];
    let mut problems = Vec::new();
    while let Some(id) = stack.pop() {
        if !seen.insert(id.clone()) {
            continue;
        }
        let Some((name, deps)) = graph.get(&id) else {
            continue;
        };
        if IO_CRATES.contains(&name.as_str()) {
            problems.push(format!(
                "karya-core depends on IO crate `{name}` (directly or through another crate)"
            ));
        }
        stack.extend(deps.iter().cloned());
    }
    Ok(problems)
}

fn core_source_is_pure(root: &Path) -> anyhow::Result<Vec<String>> {
    let mut problems = Vec::new();
    for file in rust_files(&root.join("crates/karya-core/src"))? {
        let text = std::fs::read_to_string(&file)?;
        // Tests may build fixtures however they like; the rule is for the code they test.
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        for (line_idx, line) in code.lines().enumerate() {
            let line_code = line.split("//").next().unwrap_or_default();
            for call in IO_CALLS.iter().filter(|call| line_code.contains(*call)) {
                problems.push(format!(
                    "{}:{}: karya-core must not use `{call}`",
                    file.display(),
                    line_idx + 1
                ));
            }
        }
    }
    Ok(problems)
}

fn dependency_boundaries(metadata: &serde_json::Value) -> anyhow::Result<Vec<String>> {
    // The binary's lifecycle benchmark measures the raw database limit with SQL of its own
    // (the baseline must not go through karya) and creates its scratch databases; nothing
    // else in the binary writes SQL.
    let allowed: &[(&str, &[&str])] = &[
        ("sqlx", &["karya-store", "karya"]),
        ("axum", &["karya-server", "karya"]),
    ];
    let mut problems = Vec::new();
    for package in metadata["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["source"].is_null())
    {
        let name = package["name"].as_str().unwrap_or_default();
        for dep in package["dependencies"].as_array().into_iter().flatten() {
            let dep_name = dep["name"].as_str().unwrap_or_default();
            let is_dev = dep["kind"] == "dev";
            for (guarded, owners) in allowed {
                // Tests may use sqlx to create, inspect and drop test databases; code may not.
                if dep_name == *guarded && !owners.contains(&name) && !is_dev {
                    problems.push(format!(
                        "{name} depends on {guarded}; only {} may",
                        owners.join(" and ")
                    ));
                }
            }
        }
    }
    Ok(problems)
}

fn files_open_with_module_docs(root: &Path) -> anyhow::Result<Vec<String>> {
    let mut problems = Vec::new();
    for dir in [root.join("crates"), root.join("xtask")] {
        for file in rust_files(&dir)? {
            let text = std::fs::read_to_string(&file)?;
            if !text.trim_start().starts_with("//!") {
                problems.push(format!(
                    "{} does not open with a //! paragraph",
                    file.display()
                ));
            }
        }
    }
    Ok(problems)
}

fn rust_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in
            std::fs::read_dir(&dir).with_context(|| format!("cannot read {}", dir.display()))?
        {
            let path = entry?.path();
            if path.is_dir() {
                if path
                    .file_name()
                    .is_some_and(|n| n != "target" && n != "node_modules")
                {
                    stack.push(path);
                }
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_workspace_is_tidy() {
        let problems = check_all(&workspace_root()).unwrap();
        assert!(
            problems.is_empty(),
            "tidy problems:\n{}",
            problems.join("\n")
        );
    }

    #[test]
    fn the_core_check_catches_io() {
        // The checks themselves must be able to fail: feed them a core that reads the clock.
        let dir = std::env::temp_dir().join(format!("karya-tidy-{}", std::process::id()));
        let src = dir.join("crates/karya-core/src");
        std::fs::create_dir_all(&src).unwrap();
        std::fs::write(src.join("lib.rs"), "//! x\npub fn f() { let _ = jiff::Timestamp::now(); }\n#[cfg(test)]\nmod t { fn g() { std::fs::read(\"x\"); } }\n").unwrap();
        let problems = core_source_is_pure(&dir).unwrap();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("Timestamp::now"));
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn the_dependency_check_catches_an_io_crate() {
        let metadata = serde_json::json!({
            "packages": [
                {"id": "core", "name": "karya-core", "source": null, "dependencies": []},
                {"id": "t", "name": "tokio", "source": "registry", "dependencies": []},
                {"id": "j", "name": "jiff", "source": "registry", "dependencies": []}
            ],
            "resolve": {"nodes": [
                {"id": "core", "deps": [{"pkg": "j", "dep_kinds": [{"kind": null}]}]},
                {"id": "j", "deps": [{"pkg": "t", "dep_kinds": [{"kind": null}]}]},
                {"id": "t", "deps": []}
            ]}
        });
        let problems = core_dependencies_are_pure(&metadata).unwrap();
        assert_eq!(
            problems,
            ["karya-core depends on IO crate `tokio` (directly or through another crate)"]
        );
    }
}
