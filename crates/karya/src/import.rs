//! `karya import`: a file of work items (CSV, JSON Lines or XLSX) into one engagement, all rows
//! or none, with a progress bar and a per-row error report.
//!
//! It goes through the same [`karya_server::intake`] parse, validation and store path as the
//! HTTP route, without the upload. Exit status: 0 imported, 1 refused (the report says why),
//! 2 on any other error.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use karya_core::id::{ClientId, EngagementId, WorkItemId};
use karya_server::intake::{self, ErrorReport, Format, IntakeError};
use karya_store::Store;

/// Imports `path` and prints the outcome.
pub async fn run(
    store: &Store,
    client_id: ClientId,
    engagement_id: EngagementId,
    path: &Path,
) -> anyhow::Result<ExitCode> {
    let format = Format::from_path(path).with_context(|| {
        format!(
            "cannot tell the format of {}: name it .csv, .jsonl (or .ndjson) or .xlsx",
            path.display()
        )
    })?;
    let tenant = store.tenant(client_id);
    tenant
        .engagement(engagement_id)
        .await
        .with_context(|| format!("cannot import into engagement {engagement_id}"))?;
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let file_bytes = file.metadata()?.len();
    if file_bytes > intake::FILE_BYTES_MAX {
        anyhow::bail!(
            "{} is {} MiB; the limit is {} MiB: split it into several imports",
            path.display(),
            file_bytes / (1024 * 1024),
            intake::FILE_BYTES_MAX / (1024 * 1024)
        );
    }

    let reading = bar(
        file_bytes,
        "reading  {bar:40} {bytes}/{total_bytes} ({eta})",
    );
    let mut source = reading.wrap_read(file);
    let parsed = tokio::task::block_in_place(|| {
        let mut new_id = || WorkItemId::from_uuid(uuid::Uuid::now_v7());
        intake::parse(format, &mut source, engagement_id, &mut new_id)
    });
    reading.finish_and_clear();
    let parsed = match parsed {
        Ok(parsed) => parsed,
        Err(err) => return refused(path, err),
    };

    let n_rows = parsed.rows.len() as u64;
    let storing = bar(n_rows, "storing  {bar:40} {pos}/{len} rows ({eta})");
    let on_progress = |written: u64| storing.set_position(written);
    // The packs `karya serve` runs on: an engagement's pack decides the input form and the
    // first step.
    let outcome = intake::store(
        &tenant,
        &karya_server::builtin_packs(),
        engagement_id,
        &parsed,
        jiff::Timestamp::now(),
        &on_progress,
    )
    .await;
    storing.finish_and_clear();
    match outcome {
        Ok(summary) => {
            println!(
                "imported {} work items from {} (first {}, last {})",
                summary.imported,
                path.display(),
                summary.first_id,
                summary.last_id
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(err) => refused(path, err),
    }
}

fn bar(len: u64, template: &str) -> ProgressBar {
    let style = ProgressStyle::with_template(template).expect("the template is valid");
    ProgressBar::new(len).with_style(style)
}

/// Reports why nothing was imported: exit 1 for a refused file, an error otherwise.
fn refused(path: &Path, err: IntakeError) -> anyhow::Result<ExitCode> {
    match err {
        IntakeError::Refused(report) => {
            print_report(path, &report);
            Ok(ExitCode::from(1))
        }
        IntakeError::Unreadable(message) | IntakeError::TooLarge(message) => {
            eprintln!("{}: {message}", path.display());
            eprintln!("refused: nothing was imported");
            Ok(ExitCode::from(1))
        }
        IntakeError::Store(err) => {
            Err(anyhow::Error::new(err).context(format!("cannot import {}", path.display())))
        }
    }
}

fn print_report(path: &Path, report: &ErrorReport) {
    for error in &report.errors {
        match &error.column {
            Some(column) => eprintln!(
                "{}: row {}, column {column}: {}",
                path.display(),
                error.row,
                error.message
            ),
            None => eprintln!("{}: row {}: {}", path.display(), error.row, error.message),
        }
    }
    let listed = report.errors.len() as u64;
    if report.total_errors > listed {
        eprintln!("... and {} more row errors", report.total_errors - listed);
    }
    eprintln!(
        "refused: {} row errors; nothing was imported",
        report.total_errors
    );
}
