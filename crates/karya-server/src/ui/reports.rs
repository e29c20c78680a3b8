//! The SLA report of the firm for staff: a period's figures per service line, site, team and
//! worker (on time, turnaround, backlog, handling time, utilisation, first-pass yield,
//! accuracy), each breakdown as a table with its charts, drawn on the server.
//!
//! The figures are the ones `GET /api/v1/metrics/sla` serves; the page links to its CSV.

use axum::extract::State;
use axum::http::Method;
use axum::routing::get;
use jiff::SignedDuration;
use karya_core::metrics::{self, Breakdown, Dimension, Figures, Performance};
use karya_store::PeriodReport;
use serde::Deserialize;

use super::charts::{bar_chart, share_bars};
use super::{layout, page, percent, Action, Block, Cell, Chart, Heading, Stat, Table, UiResult};
use crate::api::Api;
use crate::auth::{self, Access};
use crate::extract::{Caller, Query};
use crate::reports::{group_label, BREAKDOWN_CONFIDENCE};
use crate::AppState;

/// The periods the page offers, in days.
pub const REPORT_DAYS_CHOICES: [i64; 3] = [7, 30, 90];

/// Groups drawn in one chart; the table lists them all.
const CHART_GROUPS_MAX: usize = 24;

/// Characters of a group's name under a bar.
const CHART_LABEL_CHARS_MAX: usize = 14;

pub fn api() -> Api {
    Api::new().route(
        "/ui/reports/sla",
        get(sla_report),
        &[(Method::GET, Access::Firm(auth::STAFF_READ))],
    )
}

#[derive(Deserialize)]
struct ReportQuery {
    days: Option<i64>,
}

fn share(bp: Option<u32>) -> String {
    percent(bp.map(|bp| f64::from(bp) / 10_000.0))
}

fn hours(duration: Option<SignedDuration>) -> String {
    match duration {
        Some(d) => format!("{:.1} h", d.as_secs_f64() / 3_600.0),
        None => "–".into(),
    }
}

fn accuracy_text(figures: &Figures) -> String {
    match &figures.accuracy {
        Some(a) => format!(
            "{} ({} – {}, {} checks)",
            percent(Some(a.accuracy)),
            percent(Some(a.interval.low)),
            percent(Some(a.interval.high)),
            a.checks
        ),
        None => "–".into(),
    }
}

fn on_time_tone(perf: &Performance) -> &'static str {
    match perf.on_time_bp {
        Some(bp) if bp >= 9_500 => "ok",
        Some(bp) if bp >= 8_500 => "warn",
        Some(_) => "bad",
        None => "plain",
    }
}

/// The blocks of one breakdown: a section, a table and two charts.
fn breakdown_blocks(report: &PeriodReport, breakdown: &Breakdown) -> Vec<Block> {
    let title = match breakdown.by {
        Dimension::ServiceLine => "Per service line",
        Dimension::Site => "Per site",
        Dimension::Team => "Per team (site and designation)",
        Dimension::Worker => "Per worker",
    };
    let mut table = Table::new(
        &format!("by-{}", breakdown.by.code()),
        &[
            "Group",
            "Delivered",
            "On time",
            "Turnaround p50 / p90",
            "Backlog (breached)",
            "AHT",
            "Utilisation",
            "First-pass yield",
            "Accuracy",
        ],
        "Nothing in this period",
        "Figures appear once work is received in the period.",
    );
    let mut labels = Vec::new();
    let mut on_time = Vec::new();
    let mut utilisation = Vec::new();
    let mut backlog = Vec::new();
    for (key, figures) in &breakdown.groups {
        let label = group_label(key, report);
        let perf = &figures.performance;
        table.rows.push(vec![
            Cell::text(&label.name),
            Cell::text(perf.delivered),
            Cell::pill(share(perf.on_time_bp), on_time_tone(perf)),
            Cell::text(format!(
                "{} / {}",
                hours(perf.turnaround.map(|s| s.p50)),
                hours(perf.turnaround.map(|s| s.p90))
            )),
            Cell::text(format!("{} ({})", perf.backlog, perf.backlog_breached)),
            Cell::text(hours(perf.aht)),
            Cell::text(share(perf.utilisation_bp)),
            Cell::text(share(perf.first_pass_yield_bp)),
            Cell::text(accuracy_text(figures)),
        ]);
        if labels.len() < CHART_GROUPS_MAX {
            labels.push(label.name.chars().take(CHART_LABEL_CHARS_MAX).collect());
            on_time.push(perf.on_time_bp.map(|bp| f64::from(bp) / 10_000.0));
            utilisation.push(perf.utilisation_bp.map(|bp| f64::from(bp) / 10_000.0));
            backlog.push(perf.backlog);
        }
    }
    let second = match breakdown.by {
        Dimension::ServiceLine => Chart {
            title: "Backlog".into(),
            svg: bar_chart("backlog per group", &labels, &backlog),
            caption: "Items received in the period and still open.".into(),
        },
        _ => Chart {
            title: "Utilisation".into(),
            svg: share_bars("utilisation per group", &labels, &utilisation),
            caption: "Handled task time over rostered shift time (minus leave).".into(),
        },
    };
    vec![
        Block::Section(title.into()),
        Block::Table(table),
        Block::Split(
            vec![Block::Chart(Chart {
                title: "On-time delivery".into(),
                svg: share_bars("on-time delivery per group", &labels, &on_time),
                caption: "Share of deliveries within the resolution target.".into(),
            })],
            vec![Block::Chart(second)],
        ),
    ]
}

async fn sla_report(
    State(state): State<AppState>,
    Query(query): Query<ReportQuery>,
    Caller(caller): Caller,
) -> UiResult {
    let days = query
        .days
        .filter(|d| REPORT_DAYS_CHOICES.contains(d))
        .unwrap_or(30);
    let now = state.now();
    let from = now - SignedDuration::from_hours(24 * days);
    let report = state.store.period_report(from, now, now).await?;
    let layout = layout(&caller, "SLA reports", "/ui/reports/sla");
    let mut actions: Vec<Action> = REPORT_DAYS_CHOICES
        .iter()
        .map(|d| {
            Action::link(
                &format!("days-{d}"),
                &format!("{d} days"),
                format!("/ui/reports/sla?days={d}"),
            )
        })
        .collect();
    actions.push(Action::link(
        "csv",
        "CSV per worker",
        format!(
            "/api/v1/metrics/sla?by=worker&from={}&to={}&format=csv",
            from, now
        ),
    ));
    let mut blocks = vec![Block::Heading(Heading {
        title: "SLA reports".into(),
        sub: format!(
            "Every client, the last {days} days: items received in the period, task time handled in it, checks made in it."
        ),
        actions,
    })];
    if report.truncated {
        blocks.push(Block::Notice(
            "warn",
            "More work than one report reads fell in this period: the figures cover its first part. Choose a shorter period.".into(),
        ));
    }
    let by_line = metrics::breakdown(
        Dimension::ServiceLine,
        &report.facts,
        BREAKDOWN_CONFIDENCE,
        now,
    );
    let total = &by_line.total;
    let perf = &total.performance;
    blocks.push(Block::Stats(vec![
        Stat::new("Delivered", perf.delivered, format!("last {days} days")),
        Stat::new("On time", share(perf.on_time_bp), "of deliveries").tone(on_time_tone(perf)),
        Stat::new(
            "Turnaround p90",
            hours(perf.turnaround.map(|s| s.p90)),
            "business time",
        ),
        Stat::new(
            "Backlog",
            perf.backlog,
            format!("{} past target", perf.backlog_breached),
        ),
        Stat::new("AHT", hours(perf.aht), "per submitted task"),
        Stat::new(
            "Utilisation",
            share(perf.utilisation_bp),
            "handled / rostered",
        ),
        Stat::new(
            "First-pass yield",
            share(perf.first_pass_yield_bp),
            "of reviewed tasks",
        ),
        Stat::new(
            "Accuracy",
            total
                .accuracy
                .map(|a| percent(Some(a.accuracy)))
                .unwrap_or_else(|| "–".into()),
            total
                .accuracy
                .map(|a| format!("{} checks", a.checks))
                .unwrap_or_default(),
        ),
    ]));
    blocks.extend(breakdown_blocks(&report, &by_line));
    for by in [Dimension::Site, Dimension::Team, Dimension::Worker] {
        let breakdown = metrics::breakdown(by, &report.facts, BREAKDOWN_CONFIDENCE, now);
        blocks.extend(breakdown_blocks(&report, &breakdown));
    }
    Ok(page(&layout, &blocks))
}
