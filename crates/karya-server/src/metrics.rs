//! Prometheus metrics at `/metrics`, in the standard text exposition format (version 0.0.4),
//! written by hand: a few gauges, counters and histograms computed from the store at scrape
//! time. Labels are bounded sets (work item states); no label names an item, client or worker.

use std::fmt::Write;

use axum::extract::State;
use axum::http::header;
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use karya_store::{SlaMetrics, HISTOGRAM_BUCKETS_S};

use crate::api::Api;
use crate::auth::{self, Access};
use crate::{ApiResult, AppState};

/// The content type Prometheus expects for the text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

pub fn api() -> Api {
    Api::new().route(
        "/metrics",
        get(metrics),
        &[(Method::GET, Access::Firm(auth::ADMINS))],
    )
}

async fn metrics(State(state): State<AppState>) -> ApiResult<Response> {
    let metrics = state.store.sla_metrics().await?;
    Ok(([(header::CONTENT_TYPE, CONTENT_TYPE)], exposition(&metrics)).into_response())
}

/// Renders the figures in the text exposition format.
pub fn exposition(metrics: &SlaMetrics) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# HELP karya_work_items_received_total Work items taken in."
    );
    let _ = writeln!(out, "# TYPE karya_work_items_received_total counter");
    let _ = writeln!(
        out,
        "karya_work_items_received_total {}",
        metrics.items_received
    );
    let _ = writeln!(out, "# HELP karya_work_items Work items by current state.");
    let _ = writeln!(out, "# TYPE karya_work_items gauge");
    for (state, count) in &metrics.items_by_state {
        // States come from the lifecycle table: plain lower-case words, nothing to escape.
        let _ = writeln!(out, "karya_work_items{{state=\"{state}\"}} {count}");
    }
    let _ = writeln!(
        out,
        "# HELP karya_sla_breached_items Work items past their resolution target."
    );
    let _ = writeln!(out, "# TYPE karya_sla_breached_items gauge");
    let _ = writeln!(out, "karya_sla_breached_items {}", metrics.breached);
    histogram(
        &mut out,
        "karya_sla_first_response_business_seconds",
        "Business time from intake to first response.",
        &metrics.response,
    );
    histogram(
        &mut out,
        "karya_sla_turnaround_business_seconds",
        "Business time from intake to delivery.",
        &metrics.turnaround,
    );
    out
}

fn histogram(
    out: &mut String,
    name: &str,
    help: &str,
    (buckets, count, sum): &(Vec<i64>, i64, i64),
) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} histogram");
    for (bound, cumulative) in HISTOGRAM_BUCKETS_S.iter().zip(buckets) {
        let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
    }
    let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
    let _ = writeln!(out, "{name}_sum {sum}");
    let _ = writeln!(out, "{name}_count {count}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_is_well_formed() {
        let metrics = SlaMetrics {
            items_by_state: vec![("delivered".into(), 3), ("received".into(), 2)],
            items_received: 5,
            breached: 1,
            response: (vec![1, 2, 3, 3, 3, 3, 3, 3], 3, 4_000),
            turnaround: (vec![0, 0, 1, 2, 3, 3, 3, 3], 3, 50_000),
        };
        let text = exposition(&metrics);
        assert!(
            text.contains("karya_work_items{state=\"received\"} 2\n"),
            "{text}"
        );
        assert!(text.contains("karya_sla_turnaround_business_seconds_bucket{le=\"14400\"} 1\n"));
        assert!(text.contains("karya_sla_turnaround_business_seconds_bucket{le=\"+Inf\"} 3\n"));
        assert!(text.contains("karya_sla_first_response_business_seconds_sum 4000\n"));
        // Every sample line is `name{labels} value` or `name value`; every family has a TYPE.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let (name, value) = line.rsplit_once(' ').unwrap();
            assert!(value.parse::<f64>().is_ok(), "{line}");
            let family = name.split('{').next().unwrap();
            let family = family
                .trim_end_matches("_bucket")
                .trim_end_matches("_sum")
                .trim_end_matches("_count");
            assert!(text.contains(&format!("# TYPE {family} ")), "{line}");
        }
    }
}
