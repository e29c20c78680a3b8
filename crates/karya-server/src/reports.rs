//! SLA and QA figures of a period split per service line, site, team or worker, over HTTP
//! (JSON or CSV); utilisation subtracts workers' leave (`leave.rs`) from their rosters.
//!
//! The firm's report covers every client and carries utilisation (handled time over rostered
//! time); a client's report covers only its own work, per service line or site, without
//! utilisation (a worker's roster serves several clients). The store reads the facts, the core
//! groups and measures them ([`karya_core::metrics::breakdown`]).

use std::fmt::Write;

use axum::extract::State;
use axum::http::header;
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use jiff::{SignedDuration, Timestamp};
use karya_core::id::ClientId;
use karya_core::metrics::{self, Breakdown, Dimension, Figures, GroupKey};
use karya_store::PeriodReport;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::api::Api;
use crate::auth::{self, Access};
use crate::error::{ApiError, ErrorCode};
use crate::extract::{parse_id, Path, Query};
use crate::sla::{parse_time, performance_dto};
use crate::{ApiResult, AppState};

/// Confidence of the accuracy intervals of a breakdown: the firm's default QA confidence.
/// (An engagement's own confidence applies to its SLA report and its invoice.)
pub const BREAKDOWN_CONFIDENCE: f64 = 0.9;

/// Default period of a report: the last 30 days.
pub const REPORT_PERIOD_DEFAULT: SignedDuration = SignedDuration::from_hours(30 * 24);

/// Longest period a report covers: a year and a month (rosters are walked day by day).
pub const REPORT_PERIOD_MAX: SignedDuration =
    SignedDuration::from_hours(metrics::ROSTER_DAYS_MAX * 24);

pub fn api() -> Api {
    Api::new()
        .route(
            "/api/v1/metrics/sla",
            get(firm_report),
            &[(Method::GET, Access::Firm(auth::STAFF_READ))],
        )
        .route(
            "/api/v1/clients/{client_id}/metrics/sla",
            get(client_report),
            &[(
                Method::GET,
                Access::tenant(auth::STAFF_READ, auth::CLIENT_ALL),
            )],
        )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReportQuery {
    /// `service_line`, `site`, `team` or `worker`.
    by: Option<String>,
    /// RFC 3339 instants; default: the last 30 days.
    from: Option<String>,
    to: Option<String>,
    /// `json` (default) or `csv`.
    format: Option<String>,
}

/// A report's parameters, checked.
pub struct Period {
    pub by: Dimension,
    pub from: Timestamp,
    pub to: Timestamp,
}

/// Parses `by`, `from` and `to` (defaults: per service line, the last 30 days to `now`).
pub fn period(
    by: Option<&str>,
    from: Option<&str>,
    to: Option<&str>,
    now: Timestamp,
) -> ApiResult<Period> {
    let by_text = by.unwrap_or("service_line");
    let by = Dimension::parse(by_text).ok_or_else(|| {
        ApiError::new(
            ErrorCode::InvalidParameter,
            format!("by {by_text:?} unknown: use service_line, site, team or worker"),
        )
    })?;
    let to = match to {
        Some(text) => parse_time("to", text)?,
        None => now,
    };
    let from = match from {
        Some(text) => parse_time("from", text)?,
        None => to - REPORT_PERIOD_DEFAULT,
    };
    if from >= to {
        return Err(ApiError::new(
            ErrorCode::InvalidParameter,
            "from must be before to",
        ));
    }
    if to.duration_since(from) > REPORT_PERIOD_MAX {
        return Err(ApiError::new(
            ErrorCode::InvalidParameter,
            format!("a report covers at most {} days", metrics::ROSTER_DAYS_MAX),
        ));
    }
    Ok(Period { by, from, to })
}

/// What a group is called on a page or in a file.
pub struct GroupLabel {
    /// `service_line`, `site`, `team`, `worker` or `unassigned`.
    pub kind: &'static str,
    /// The service line's code or the site's or worker's id; empty for the rest.
    pub id: String,
    pub name: String,
}

pub fn group_label(key: &GroupKey, report: &PeriodReport) -> GroupLabel {
    let site_name = |site_id: &Option<karya_core::id::SiteId>| match site_id {
        Some(id) => report
            .site_names
            .get(id)
            .cloned()
            .unwrap_or_else(|| id.to_string()),
        None => "no site".to_string(),
    };
    match key {
        GroupKey::ServiceLine(line) => GroupLabel {
            kind: "service_line",
            id: line.code().into(),
            name: line.name().into(),
        },
        GroupKey::Site(site_id) => GroupLabel {
            kind: "site",
            id: site_id.map(|id| id.to_string()).unwrap_or_default(),
            name: site_name(site_id),
        },
        GroupKey::Team {
            site_id,
            designation,
        } => GroupLabel {
            kind: "team",
            id: format!(
                "{}/{}",
                site_id.map(|id| id.to_string()).unwrap_or_default(),
                designation.code()
            ),
            name: format!(
                "{} · {}",
                site_name(site_id),
                designation.code().replace('_', " ")
            ),
        },
        GroupKey::Worker(worker_id) => GroupLabel {
            kind: "worker",
            id: worker_id.to_string(),
            name: report
                .worker_names
                .get(worker_id)
                .cloned()
                .unwrap_or_else(|| worker_id.to_string()),
        },
        GroupKey::Unassigned => GroupLabel {
            kind: "unassigned",
            id: String::new(),
            name: "not yet picked up".into(),
        },
    }
}

fn figures_dto(figures: &Figures) -> Value {
    let mut dto = performance_dto(&figures.performance);
    dto["accuracy"] = match &figures.accuracy {
        None => Value::Null,
        Some(a) => json!({
            "checks": a.checks,
            "accuracy": a.accuracy,
            "low": a.interval.low,
            "high": a.interval.high,
            "confidence": a.confidence,
        }),
    };
    dto["workers"] = json!(figures.workers);
    dto
}

pub fn breakdown_json(period: &Period, report: &PeriodReport, breakdown: &Breakdown) -> Value {
    json!({
        "by": breakdown.by.code(),
        "from": period.from.to_string(),
        "to": period.to.to_string(),
        "truncated": report.truncated,
        "groups": breakdown.groups.iter().map(|(key, figures)| {
            let label = group_label(key, report);
            let mut dto = figures_dto(figures);
            dto["group"] = json!({"kind": label.kind, "id": label.id, "name": label.name});
            dto
        }).collect::<Vec<_>>(),
        "total": figures_dto(&breakdown.total),
    })
}

/// Quotes a CSV field that needs it; a leading formula character is neutralised.
fn csv_field(text: &str) -> String {
    let text = match text.chars().next() {
        Some('=' | '+' | '-' | '@') => format!("'{text}"),
        _ => text.to_string(),
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

/// One row per group, then the total; durations in seconds, shares in basis points.
pub fn breakdown_csv(report: &PeriodReport, breakdown: &Breakdown) -> String {
    let mut out = String::from(
        "group,id,name,delivered,delivered_on_time,on_time_bp,turnaround_p50_seconds,\
         turnaround_p90_seconds,backlog,backlog_breached,aht_seconds,utilisation_bp,\
         first_pass_yield_bp,accuracy_checks,accuracy_bp,accuracy_low_bp,accuracy_high_bp\n",
    );
    let opt = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_default();
    let bp = |share: f64| ((share * 10_000.0).round() as i64).to_string();
    let mut row = |kind: &str, id: &str, name: &str, f: &Figures| {
        let p = &f.performance;
        let _ = writeln!(
            out,
            "{kind},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            csv_field(id),
            csv_field(name),
            p.delivered,
            p.delivered_on_time,
            opt(p.on_time_bp.map(i64::from)),
            opt(p.turnaround.map(|s| s.p50.as_secs())),
            opt(p.turnaround.map(|s| s.p90.as_secs())),
            p.backlog,
            p.backlog_breached,
            opt(p.aht.map(|d| d.as_secs())),
            opt(p.utilisation_bp.map(i64::from)),
            opt(p.first_pass_yield_bp.map(i64::from)),
            f.accuracy.map(|a| a.checks.to_string()).unwrap_or_default(),
            f.accuracy.map(|a| bp(a.accuracy)).unwrap_or_default(),
            f.accuracy.map(|a| bp(a.interval.low)).unwrap_or_default(),
            f.accuracy.map(|a| bp(a.interval.high)).unwrap_or_default(),
        );
    };
    for (key, figures) in &breakdown.groups {
        let label = group_label(key, report);
        row(label.kind, &label.id, &label.name, figures);
    }
    row("total", "", "all", &breakdown.total);
    out
}

fn respond(
    period: &Period,
    report: &PeriodReport,
    breakdown: &Breakdown,
    format: Option<&str>,
) -> ApiResult<Response> {
    match format.unwrap_or("json") {
        "json" => Ok(axum::Json(breakdown_json(period, report, breakdown)).into_response()),
        "csv" => Ok((
            [(header::CONTENT_TYPE, "text/csv; charset=utf-8")],
            breakdown_csv(report, breakdown),
        )
            .into_response()),
        other => Err(ApiError::new(
            ErrorCode::InvalidParameter,
            format!("format {other:?} unknown: use json or csv"),
        )),
    }
}

async fn firm_report(
    State(state): State<AppState>,
    Query(query): Query<ReportQuery>,
) -> ApiResult<Response> {
    let now = state.now();
    let period = period(
        query.by.as_deref(),
        query.from.as_deref(),
        query.to.as_deref(),
        now,
    )?;
    let report = state
        .store
        .period_report(period.from, period.to, now)
        .await?;
    let breakdown = metrics::breakdown(period.by, &report.facts, BREAKDOWN_CONFIDENCE, now);
    respond(&period, &report, &breakdown, query.format.as_deref())
}

async fn client_report(
    State(state): State<AppState>,
    Path(client_id): Path<String>,
    Query(query): Query<ReportQuery>,
) -> ApiResult<Response> {
    let client_id: ClientId = parse_id(&client_id)?;
    let now = state.now();
    let period = period(
        query.by.as_deref(),
        query.from.as_deref(),
        query.to.as_deref(),
        now,
    )?;
    if !matches!(period.by, Dimension::ServiceLine | Dimension::Site) {
        return Err(ApiError::new(
            ErrorCode::InvalidParameter,
            "a client's report is per service_line or site; per team and worker is the firm's report",
        ));
    }
    let report = state
        .store
        .tenant(client_id)
        .period_report(period.from, period.to, now)
        .await?;
    let breakdown = metrics::breakdown(period.by, &report.facts, BREAKDOWN_CONFIDENCE, now);
    respond(&period, &report, &breakdown, query.format.as_deref())
}
