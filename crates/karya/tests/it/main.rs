//! End-to-end tests of the `karya` binary: real processes, real sockets, real files.

mod audit;
mod bench;
mod crash;
mod demo;
mod http;
mod leader;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// A scratch directory removed at the end of a passing test (kept on failure for a look).
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!(
            "karya-it-{name}-{}-{}",
            std::process::id(),
            nanos()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    pub fn sqlite_url(&self) -> String {
        format!("sqlite://{}/karya-data/karya.db", self.0.display())
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            std::fs::remove_dir_all(&self.0).ok();
        }
    }
}

fn nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// The first example input of a service line's built-in pack: valid at intake.
pub fn example_input(service_line: &str) -> serde_json::Value {
    let catalog = karya_server::builtin_packs();
    let loaded = catalog
        .for_line(service_line.parse().unwrap())
        .next()
        .unwrap();
    serde_json::from_str(&loaded.pack.examples[0].input).unwrap()
}

/// The PostgreSQL server the tests make their databases on.
pub fn admin_url() -> String {
    std::env::var("KARYA_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

pub fn karya() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_karya"));
    command
        .env_remove("KARYA_DATABASE_URL")
        .env_remove("KARYA_BIND")
        .env_remove("KARYA_CONFIG");
    command
}

/// A running `karya serve` on a free port.
pub struct Server {
    pub child: Child,
    pub addr: String,
}

/// An administrator's API token for the database, created on first use and kept beside it.
pub fn admin_token(db_url: &str, cwd: &std::path::Path) -> String {
    let file = cwd.join(".admin-token");
    if let Ok(token) = std::fs::read_to_string(&file) {
        return token;
    }
    let output = karya()
        .args([
            "user",
            "add",
            "--db",
            db_url,
            "--email",
            "admin@firm.example",
            "--name",
            "Admin",
            "--role",
            "admin",
            "--token",
        ])
        .current_dir(cwd)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "user add failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    let token = stdout
        .lines()
        .find_map(|l| l.strip_prefix("api token: "))
        .expect("a token line")
        .to_string();
    std::fs::write(&file, &token).unwrap();
    token
}

impl Server {
    /// Starts `karya serve`; `addr` carries an administrator's token as `TOKEN@HOST:PORT`,
    /// which [`http::request`] sends as a bearer token.
    pub fn start(db_url: &str, cwd: &std::path::Path) -> Server {
        let token = admin_token(db_url, cwd);
        let mut child = karya()
            .args([
                "serve",
                "--db",
                db_url,
                "--bind",
                "127.0.0.1:0",
                "--log",
                "warn",
            ])
            .current_dir(cwd)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start karya serve");
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line).unwrap();
        let addr = line
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("unexpected first line from karya serve: {line:?}"))
            .to_string();
        Server {
            child,
            addr: format!("{token}@{addr}"),
        }
    }

    /// Kills the process at once, as a crash or power cut would.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Asks for a graceful stop (SIGTERM) and waits for it.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        self.child.wait().unwrap()
    }
}

#[test]
fn help_is_there_for_every_command() {
    for args in [
        vec!["--help"],
        vec!["serve", "--help"],
        vec!["migrate", "--help"],
        vec!["audit", "verify", "--help"],
        vec!["config", "default", "--help"],
    ] {
        let output = karya().args(&args).output().unwrap();
        assert!(output.status.success(), "{args:?}");
        assert!(
            String::from_utf8_lossy(&output.stdout).contains("Usage: karya"),
            "{args:?}"
        );
    }
}

#[test]
fn config_default_prints_a_valid_commented_config() {
    let output = karya().args(["config", "default"]).output().unwrap();
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(
        text.contains("url = \"sqlite://karya-data/karya.db\""),
        "{text}"
    );
    assert!(text.lines().any(|line| line.starts_with('#')));

    // That text, used as a config file, is accepted and gives the same effective config.
    let scratch = Scratch::new("config");
    std::fs::write(scratch.0.join("karya.toml"), &text).unwrap();
    let shown = karya()
        .args(["config", "show"])
        .current_dir(&scratch.0)
        .output()
        .unwrap();
    assert!(
        shown.status.success(),
        "{}",
        String::from_utf8_lossy(&shown.stderr)
    );
    let shown = String::from_utf8(shown.stdout).unwrap();
    assert!(shown.contains("bind = \"127.0.0.1:8080\""), "{shown}");

    let secret = karya()
        .args([
            "config",
            "show",
            "--db",
            "postgres://karya:hunter2@db.internal/karya",
        ])
        .current_dir(&scratch.0)
        .output()
        .unwrap();
    let secret = String::from_utf8(secret.stdout).unwrap();
    assert!(
        secret.contains("postgres://karya:***@db.internal/karya") && !secret.contains("hunter2"),
        "{secret}"
    );
}

#[test]
fn serve_starts_on_an_empty_directory_and_stops_on_sigterm() {
    let scratch = Scratch::new("serve");
    // No --db: the default sqlite://karya-data/karya.db, relative to the working directory.
    let mut child = karya()
        .args(["serve", "--bind", "127.0.0.1:0", "--log", "warn"])
        .current_dir(&scratch.0)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let addr = line
        .split("http://")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let server = Server { child, addr };
    let health = http::request(&server.addr, "GET", "/healthz", None).unwrap();
    assert_eq!(health.status, 200, "{health:?}");
    assert!(scratch.0.join("karya-data/karya.db").exists());
    let status = server.terminate();
    assert!(status.success(), "graceful stop exits 0: {status:?}");
}

#[test]
fn bad_database_urls_fail_clearly() {
    let output = karya()
        .args(["migrate", "--db", "mysql://localhost/x"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("unsupported database url"), "{stderr}");
}
