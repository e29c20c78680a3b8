//! Test databases: a fresh SQLite file or a fresh PostgreSQL database per test.

use std::path::PathBuf;

use karya_store::{Store, StoreOptions};
use sqlx::{Connection, Executor};

pub struct TestDb {
    pub store: Store,
    pub url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    Dir(PathBuf),
    Database { admin_url: String, name: String },
}

impl TestDb {
    pub async fn sqlite() -> TestDb {
        let dir =
            std::env::temp_dir().join(format!("karya-test-{}", uuid::Uuid::now_v7().simple()));
        let url = format!("sqlite://{}/karya.db", dir.display());
        let store = Store::open(&url, &StoreOptions::default())
            .await
            .expect("open sqlite");
        TestDb {
            store,
            url,
            cleanup: Cleanup::Dir(dir),
        }
    }

    /// A fresh PostgreSQL database, or `None` when PostgreSQL tests are explicitly skipped.
    pub async fn postgres() -> Option<TestDb> {
        if std::env::var("KARYA_TEST_SKIP_POSTGRES").is_ok_and(|v| v == "1") {
            eprintln!("KARYA_TEST_SKIP_POSTGRES=1: skipping a PostgreSQL conformance test");
            return None;
        }
        let admin_url = admin_url();
        let name = format!("karya_test_{}", uuid::Uuid::now_v7().simple());
        let mut admin = sqlx::PgConnection::connect(&admin_url)
            .await
            .unwrap_or_else(|err| {
                panic!(
                "PostgreSQL is not reachable at {admin_url} ({err}); start it as the README says, \
                 or set KARYA_TEST_SKIP_POSTGRES=1 to skip PostgreSQL locally"
            )
            });
        admin
            .execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .expect("create test database");
        admin.close().await.ok();
        let url = database_url(&admin_url, &name);
        let store = Store::open(
            &url,
            &StoreOptions {
                max_connections: 40,
                // Generous: the claim race keeps 32 claimers queued on a few chain heads, and
                // a loaded machine must not turn waiting into a failure.
                acquire_timeout: std::time::Duration::from_secs(120),
            },
        )
        .await
        .expect("open postgres");
        Some(TestDb {
            store,
            url,
            cleanup: Cleanup::Database { admin_url, name },
        })
    }

    pub async fn finish(self) {
        self.store.close().await;
        match self.cleanup {
            Cleanup::Dir(dir) => {
                std::fs::remove_dir_all(dir).ok();
            }
            Cleanup::Database { admin_url, name } => {
                if let Ok(mut admin) = sqlx::PgConnection::connect(&admin_url).await {
                    admin
                        .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
                        .await
                        .ok();
                }
            }
        }
    }
}

fn admin_url() -> String {
    std::env::var("KARYA_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// The admin URL with its database name replaced.
fn database_url(admin_url: &str, name: &str) -> String {
    let (base, query) = match admin_url.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (admin_url, String::new()),
    };
    let base = match base.rfind('/') {
        Some(idx) if idx > "postgres://".len() => &base[..idx],
        _ => base,
    };
    format!("{base}/{name}{query}")
}
