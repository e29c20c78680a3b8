//! `cargo run -p xtask -- tidy`: checks the architecture invariants of `docs/ARCHITECTURE.md`.
//! The same checks run as tests (`cargo test -p xtask`), so a change that breaks one fails CI.

mod tidy;

fn main() -> anyhow::Result<()> {
    let task = std::env::args().nth(1);
    match task.as_deref() {
        Some("tidy") => {
            let problems = tidy::check_all(&tidy::workspace_root())?;
            for problem in &problems {
                eprintln!("{problem}");
            }
            anyhow::ensure!(problems.is_empty(), "{} tidy problem(s)", problems.len());
            println!("tidy: ok");
            Ok(())
        }
        _ => {
            eprintln!("usage: cargo run -p xtask -- tidy");
            std::process::exit(2);
        }
    }
}
