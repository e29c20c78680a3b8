//! `karya bench intake` on each engine: the import goes to a database made for the run and
//! removed after it, so a run against a PostgreSQL server leaves the database named in its URL
//! as it was.

use sqlx::{Connection, Row};

use crate::{admin_url, karya};

/// The figures of a run: its output's last line.
fn figures(args: &[&str]) -> serde_json::Value {
    let out = karya().args(args).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.lines().last().unwrap()).unwrap()
}

/// Tables in the public schema of the database at `url`, and databases the bench left behind.
async fn traces(url: &str) -> (i64, i64) {
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    let row = sqlx::query(
        "SELECT (SELECT count(*) FROM pg_tables
                 WHERE schemaname = 'public' AND tablename = 'schema_migrations') AS tables,
                (SELECT count(*) FROM pg_database
                 WHERE datname LIKE 'karya_bench_intake_%') AS databases",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();
    (row.get("tables"), row.get("databases"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_intake_runs_on_a_fresh_database_of_each_engine() {
    let sqlite = figures(&["bench", "intake", "--rows", "300"]);
    assert_eq!(sqlite["engine"], "sqlite");
    assert_eq!(sqlite["rows"], 300);

    let server = admin_url();
    let before = traces(&server).await;
    let postgres = figures(&["bench", "intake", "--rows", "300", "--db", &server]);
    assert_eq!(postgres["engine"], "postgres");
    assert_eq!(postgres["rows"], 300);
    assert!(postgres["items_per_s"].as_f64().unwrap() > 0.0);
    assert_eq!(
        traces(&server).await,
        before,
        "the server's database untouched and the run's own dropped"
    );
}
