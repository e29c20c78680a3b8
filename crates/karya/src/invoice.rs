//! `karya invoice`: a client's invoice for one month, printed as JSON, CSV or a printable HTML
//! page, the same renderings the API serves.

use anyhow::Context;
use karya_core::id::ClientId;
use karya_server::invoices::{month_period, render, InvoiceFormat};

use crate::config::Config;

/// Computes and prints the invoice of `client` for `period` (`YYYY-MM`, a UTC month).
pub async fn run(config: &Config, client: &str, period: &str, format: &str) -> anyhow::Result<()> {
    let text = text(config, client, period, format).await?;
    print!("{text}");
    if !text.ends_with('\n') {
        println!();
    }
    Ok(())
}

/// The invoice, rendered.
async fn text(config: &Config, client: &str, period: &str, format: &str) -> anyhow::Result<String> {
    let client_id: ClientId = client
        .parse()
        .map_err(|err| anyhow::anyhow!("--client: {err}"))?;
    let (from, to) = month_period(period).map_err(|msg| anyhow::anyhow!("--period: {msg}"))?;
    let format = InvoiceFormat::parse(format)
        .with_context(|| format!("--format {format:?} unknown: use json, csv or html"))?;
    let store = crate::open_store(config).await?;
    let result = async {
        let client = store.client(client_id).await?;
        let invoice = store.tenant(client_id).invoice(from, to).await?;
        anyhow::Ok(render(&client, period, &invoice, format))
    }
    .await;
    store.close().await;
    result.with_context(|| format!("cannot compute the invoice of client {client_id}"))
}

#[cfg(test)]
mod tests {
    use jiff::civil::time;
    use jiff::{SignedDuration, Timestamp};
    use karya_core::billing::{CreditRule, ItemRate, Pricing};
    use karya_core::calendar::Shift;
    use karya_core::id::{
        AssignmentId, CalendarId, EngagementId, ReviewId, TaskId, WorkItemId, WorkerId,
    };
    use karya_core::lifecycle::{TaskState, WorkItemState};
    use karya_core::model::{Defect, Designation, Priority, Severity};
    use karya_core::money::{Currency, Money};
    use karya_core::qa::review::Verdict;
    use karya_core::service_line::ServiceLine;
    use karya_core::sla::SlaTerms;
    use karya_store::{
        CalendarSpec, EngagementSla, NewEngagement, NewReview, NewTask, NewWorkItem, StoreOptions,
    };

    use super::*;
    use crate::config::Overrides;

    fn at(text: &str) -> Timestamp {
        format!("2026-11-{text}:00Z").parse().unwrap()
    }

    #[tokio::test]
    async fn prints_the_month_in_each_format() {
        let dir = std::env::temp_dir().join(format!("karya-invoice-{}", uuid::Uuid::now_v7()));
        let url = format!("sqlite://{}/karya.db", dir.display());
        let store = karya_store::Store::open(&url, &StoreOptions::default())
            .await
            .unwrap();
        let client_id = ClientId::from_uuid(uuid::Uuid::now_v7());
        store
            .create_client(client_id, "Initech", Currency::USD, at("01T00:00"))
            .await
            .unwrap();
        let tenant = store.tenant(client_id);
        let engagement_id = EngagementId::from_uuid(uuid::Uuid::now_v7());
        let new = NewEngagement {
            id: engagement_id,
            name: "forms".into(),
            service_line: ServiceLine::FormProcessing,
        };
        tenant
            .create_engagement(&new, at("01T00:00"))
            .await
            .unwrap();
        let calendar_id = CalendarId::from_uuid(uuid::Uuid::now_v7());
        let day = vec![Shift::new(time(9, 0, 0, 0), time(17, 0, 0, 0))];
        let spec = CalendarSpec {
            id: calendar_id,
            name: "desk".into(),
            time_zone: "America/New_York".into(),
            week: [
                day.clone(),
                day.clone(),
                day.clone(),
                day.clone(),
                day,
                vec![],
                vec![],
            ],
            holidays: vec![],
            exceptions: vec![],
        };
        tenant
            .put_calendar(&spec, "setup", at("01T00:00"))
            .await
            .unwrap();
        let terms = SlaTerms {
            first_response: SignedDuration::from_hours(1),
            resolution: SignedDuration::from_hours(4),
            warning_pct: 75,
            on_time_target_bp: 9_000,
            accuracy_target_bp: 9_800,
        };
        let sla = EngagementSla {
            calendar: calendar_id.into(),
            terms: vec![(Priority::Normal, terms)],
            pricing: Pricing::PerItem {
                rates: vec![ItemRate {
                    priority: Priority::Normal,
                    band: None,
                    price: Money::new(1_250, Currency::USD),
                }],
            },
            credit_rule: Some(CreditRule {
                per_point_bp: 100,
                cap_bp: 1_000,
            }),
            accuracy_credit_rule: Some(CreditRule {
                per_point_bp: 100,
                cap_bp: 5_000,
            }),
        };
        tenant
            .set_engagement_sla(engagement_id, &sla, "setup", at("01T00:00"))
            .await
            .unwrap();
        // Received Mon 2 Nov 10:00 EST, delivered 12:00 EST: 2h of 4h, on time.
        let id = WorkItemId::from_uuid(uuid::Uuid::now_v7());
        let item = NewWorkItem {
            id,
            engagement_id,
            external_ref: None,
            title: "form 1".into(),
            priority: Priority::Normal,
            input: "{}".into(),
        };
        tenant
            .create_work_item(&item, at("02T15:00"))
            .await
            .unwrap();
        tenant
            .transition_work_item(id, WorkItemState::InProgress, None, None, at("02T15:30"))
            .await
            .unwrap();
        // Its one task fails review with one defect: the month's only accuracy check.
        let maker = WorkerId::from_uuid(uuid::Uuid::now_v7());
        let checker = WorkerId::from_uuid(uuid::Uuid::now_v7());
        for (worker, designation) in [
            (maker, Designation::Analyst),
            (checker, Designation::SeniorAnalyst),
        ] {
            store
                .create_worker(worker, "staff", None, designation, at("01T00:00"))
                .await
                .unwrap();
        }
        let task_id = TaskId::from_uuid(uuid::Uuid::now_v7());
        let new_task = NewTask {
            id: task_id,
            work_item_id: id,
            step: "key".into(),
        };
        tenant.create_task(&new_task, at("02T15:30")).await.unwrap();
        let assignment = AssignmentId::from_uuid(uuid::Uuid::now_v7());
        tenant
            .assign_task(task_id, maker, assignment, at("02T15:35"))
            .await
            .unwrap();
        tenant
            .transition_task(task_id, TaskState::InProgress, at("02T15:40"))
            .await
            .unwrap();
        let output = [("total".to_string(), "10".to_string())].into();
        tenant
            .submit_task(task_id, &output, at("02T16:00"))
            .await
            .unwrap();
        let defect = Defect {
            category: "wrong_value".into(),
            severity: Severity::Major,
            field: Some("total".into()),
            comment: "keyed 10 for 100".into(),
        };
        let failed = NewReview {
            id: ReviewId::from_uuid(uuid::Uuid::now_v7()),
            reviewer_id: checker,
            verdict: Verdict::Fail,
            defects: vec![defect],
        };
        tenant
            .record_review(task_id, &failed, at("02T16:30"))
            .await
            .unwrap();
        tenant
            .transition_work_item(id, WorkItemState::Delivered, None, None, at("02T17:00"))
            .await
            .unwrap();
        let state = tenant.sla_state(id).await.unwrap().unwrap();
        assert_eq!(state.resolution.elapsed, SignedDuration::from_hours(2));
        store.close().await;

        let config = Config::load(&Overrides {
            database_url: Some(url),
            ..Overrides::default()
        })
        .unwrap();
        let client = client_id.to_string();
        let json = text(&config, &client, "2026-11", "json").await.unwrap();
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value["lines"][0]["work_item_id"], id.to_string());
        assert_eq!(value["subtotal"]["text"], "12.50 USD");
        assert_eq!(value["sla_credits"], serde_json::json!([]));
        // 0 of 1 right: at 90% confidence the interval reaches 73.02%, 24.98 points short of
        // 98%: a 24.98% credit of 12.50 = 3.12.
        let credit = &value["accuracy_credits"][0];
        assert_eq!(
            (credit["checks"].as_u64(), credit["correct"].as_u64()),
            (Some(1), Some(0))
        );
        assert_eq!(credit["defects"], 1);
        assert_eq!(credit["interval_high_bp"], 7_302);
        assert_eq!(credit["credit_bp"], 2_498);
        assert_eq!(credit["amount"]["text"], "-3.12 USD");
        assert_eq!(value["total"]["text"], "9.38 USD");
        let csv = text(&config, &client, "2026-11", "csv").await.unwrap();
        assert!(
            csv.contains(&format!(",{id},form 1,1.000,12.50,12.50,USD")),
            "{csv}"
        );
        let html = text(&config, &client, "2026-11", "html").await.unwrap();
        assert!(html.contains("Total due: 9.38 USD"), "{html}");
        assert!(html.contains("<h2>Accuracy credit</h2>"), "{html}");
        assert!(csv.contains("accuracy_credit,"), "{csv}");
        let err = text(&config, &client, "2026-11", "pdf").await.unwrap_err();
        assert!(err.to_string().contains("unknown"), "{err}");
        std::fs::remove_dir_all(dir).ok();
    }
}
