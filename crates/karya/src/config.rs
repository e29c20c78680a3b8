//! The one configuration tree: built-in defaults < `karya.toml` < `KARYA_*` environment <
//! command-line flags, resolved once in `main` and passed down as typed values.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;

/// The file read when `--config` is not given, if it exists.
pub const DEFAULT_CONFIG_FILE: &str = "karya.toml";

/// The defaults, as `karya config default` prints them.
pub const DEFAULT_TOML: &str = r#"# karya configuration. Every key is optional; this file shows the defaults.
# Precedence: these defaults < this file < KARYA_* environment variables < command-line flags.

[database]
# sqlite://PATH (embedded, one file, created on first start) or postgres://USER:PASSWORD@HOST/DB.
# Environment: KARYA_DATABASE_URL. Flag: --db.
url = "sqlite://karya-data/karya.db"
# Connections in the pool: all connections on PostgreSQL; on SQLite the most readers (at most twice the cores are opened; writes go through one connection of their own).
max_connections = 8

[server]
# Address to listen on. Environment: KARYA_BIND. Flag: --bind.
bind = "127.0.0.1:8080"
# Let webhooks go to loopback, private and link-local addresses. Keep false unless every
# client is trusted: otherwise a client could make the server probe the firm's own network.
allow_private_webhooks = false

[log]
# "text" for people, "json" for log collectors. Environment: KARYA_LOG_FORMAT.
format = "text"
# A tracing filter such as "info" or "karya_server=debug,info". Environment: KARYA_LOG.
level = "info"
"#;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    #[serde(default)]
    database: FileDatabase,
    #[serde(default)]
    server: FileServer,
    #[serde(default)]
    log: FileLog,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDatabase {
    url: Option<String>,
    max_connections: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileServer {
    bind: Option<String>,
    allow_private_webhooks: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileLog {
    format: Option<String>,
    level: Option<String>,
}

/// Values given on the command line or in the environment (clap merges those two).
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub config_file: Option<PathBuf>,
    pub database_url: Option<String>,
    pub bind: Option<String>,
    pub log_format: Option<String>,
    pub log_level: Option<String>,
}

/// A database URL, which may hold a password: it never prints whole.
#[derive(Clone)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&karya_store::redact_url(&self.0))
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&karya_store::redact_url(&self.0))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// The resolved configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub database_url: DatabaseUrl,
    pub max_connections: u32,
    pub bind: SocketAddr,
    pub log_format: LogFormat,
    pub log_level: String,
    /// Whether webhooks may go to non-public addresses.
    pub allow_private_webhooks: bool,
}

impl Config {
    /// Resolves the layers. A `--config` file that is missing is an error; the default
    /// `karya.toml` is read only if present.
    pub fn load(overrides: &Overrides) -> anyhow::Result<Config> {
        let file = match &overrides.config_file {
            Some(path) => read_file(path)?,
            None if Path::new(DEFAULT_CONFIG_FILE).exists() => {
                read_file(Path::new(DEFAULT_CONFIG_FILE))?
            }
            None => FileConfig::default(),
        };
        let defaults: FileConfig = toml::from_str(DEFAULT_TOML).expect("the default config parses");
        let pick = |flag: &Option<String>, file: &Option<String>, default: &Option<String>| {
            flag.clone()
                .or_else(|| file.clone())
                .or_else(|| default.clone())
                .expect("every key has a default")
        };
        let bind_text = pick(&overrides.bind, &file.server.bind, &defaults.server.bind);
        let bind: SocketAddr = bind_text.parse().with_context(|| {
            format!("bind address {bind_text:?} is not of the form HOST:PORT, e.g. 127.0.0.1:8080")
        })?;
        let format_text = pick(
            &overrides.log_format,
            &file.log.format,
            &defaults.log.format,
        );
        let log_format = match format_text.as_str() {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => anyhow::bail!("log format {other:?} unknown: use text or json"),
        };
        let max_connections = file
            .database
            .max_connections
            .or(defaults.database.max_connections)
            .unwrap_or(8);
        if max_connections == 0 {
            anyhow::bail!("database.max_connections must be at least 1");
        }
        Ok(Config {
            database_url: DatabaseUrl(pick(
                &overrides.database_url,
                &file.database.url,
                &defaults.database.url,
            )),
            max_connections,
            bind,
            log_format,
            log_level: pick(&overrides.log_level, &file.log.level, &defaults.log.level),
            allow_private_webhooks: file
                .server
                .allow_private_webhooks
                .or(defaults.server.allow_private_webhooks)
                .unwrap_or(false),
        })
    }

    /// The effective configuration as TOML, with secrets redacted.
    pub fn to_toml(&self) -> String {
        format!(
            "[database]\nurl = {:?}\nmax_connections = {}\n\n[server]\nbind = {:?}\nallow_private_webhooks = {}\n\n[log]\nformat = {:?}\nlevel = {:?}\n",
            self.database_url.to_string(),
            self.max_connections,
            self.bind.to_string(),
            self.allow_private_webhooks,
            match self.log_format {
                LogFormat::Text => "text",
                LogFormat::Json => "json",
            },
            self.log_level,
        )
    }
}

fn read_file(path: &Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("config file {} is not valid", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_resolve_in_order_and_secrets_stay_hidden() {
        let dir = std::env::temp_dir().join(format!("karya-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("karya.toml");
        std::fs::write(&file, "[database]\nurl = \"postgres://karya:hunter2@db/karya\"\n[server]\nbind = \"0.0.0.0:9000\"\n")
            .unwrap();

        let from_file = Config::load(&Overrides {
            config_file: Some(file.clone()),
            ..Overrides::default()
        })
        .unwrap();
        assert_eq!(from_file.bind.to_string(), "0.0.0.0:9000");
        assert_eq!(
            from_file.database_url.expose(),
            "postgres://karya:hunter2@db/karya"
        );
        assert!(!format!("{from_file:?}").contains("hunter2"));
        assert!(!from_file.to_toml().contains("hunter2"));
        assert_eq!(from_file.log_level, "info");

        let flagged = Config::load(&Overrides {
            config_file: Some(file.clone()),
            bind: Some("127.0.0.1:7000".into()),
            ..Overrides::default()
        })
        .unwrap();
        assert_eq!(flagged.bind.to_string(), "127.0.0.1:7000");
        assert!(!flagged.allow_private_webhooks);

        std::fs::write(&file, "[server]\nallow_private_webhooks = true\n").unwrap();
        let private = Config::load(&Overrides {
            config_file: Some(file.clone()),
            ..Overrides::default()
        })
        .unwrap();
        assert!(private.allow_private_webhooks);
        assert!(private.to_toml().contains("allow_private_webhooks = true"));

        std::fs::write(&file, "[server]\nport = 1\n").unwrap();
        let err = Config::load(&Overrides {
            config_file: Some(file),
            ..Overrides::default()
        })
        .unwrap_err();
        assert!(
            format!("{err:#}").contains("unknown field `port`"),
            "{err:#}"
        );
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn default_text_is_the_default() {
        let config = Config::load(&Overrides {
            config_file: None,
            ..Overrides::default()
        })
        .unwrap();
        assert_eq!(config.database_url.expose(), "sqlite://karya-data/karya.db");
        assert_eq!(config.bind.to_string(), "127.0.0.1:8080");
        assert!(!config.allow_private_webhooks);
    }
}
