//! Quality assurance over HTTP: an engagement's QA policy, submitting a task (the sampling
//! decision comes back with its reason), reviews with defects, gold answers, reviewer
//! qualifications, and the engagement's accuracy over a period.
//!
//! Handlers parse into core types, let the store apply the core's rules, and render the
//! result. A broken QA rule (a reviewer checking their own work) is a 422 `rule_violation`
//! whose message names the rule.

use axum::extract::State;
use axum::http::Method;
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use karya_core::id::{ClientId, EngagementId, ReviewId, TaskId, WorkerId};
use karya_core::model::{Defect, Review, Severity};
use karya_core::qa::duty::ReviewerRequirements;
use karya_core::qa::gold::GoldPolicy;
use karya_core::qa::review::{Rework, ReworkPolicy, Verdict};
use karya_core::qa::sampling::SamplingPolicy;
use karya_core::qa::Fields;
use karya_store::{AccuracyReport, NewReview, QaPolicy, SubmitOutcome};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::api::Api;
use crate::auth::{self, Access};
use crate::error::ApiError;
use crate::extract::{parse_id, Json, Path, Query};
use crate::{check_text, ApiResult, AppState};

/// Longest qualification code or defect category.
const CODE_LEN_MAX: usize = 64;
/// Longest field name or value in an output or gold answer.
const VALUE_LEN_MAX: usize = 10_000;

pub fn api() -> Api {
    Api::new()
        .route(
            "/api/v1/clients/{client_id}/engagements/{engagement_id}/qa-policy",
            get(get_policy).put(put_policy),
            &[
                (
                    Method::GET,
                    Access::tenant(auth::WORK_READ, auth::CLIENT_ALL),
                ),
                (Method::PUT, Access::tenant(auth::ADMINS, auth::NOBODY)),
            ],
        )
        .route(
            "/api/v1/clients/{client_id}/engagements/{engagement_id}/accuracy",
            get(get_accuracy),
            &[(
                Method::GET,
                Access::tenant(auth::WORK_READ, auth::CLIENT_ALL),
            )],
        )
        .route(
            "/api/v1/clients/{client_id}/tasks/{task_id}/submission",
            post(submit),
            &[(
                Method::POST,
                Access::tenant_or_holder(auth::STAFF, auth::NOBODY),
            )],
        )
        .route(
            "/api/v1/clients/{client_id}/tasks/{task_id}/reviews",
            get(list_reviews).post(create_review),
            &[
                (
                    Method::GET,
                    Access::tenant_or_holder(auth::WORK_READ, auth::CLIENT_ADMIN),
                ),
                (Method::POST, Access::tenant(auth::REVIEWERS, auth::NOBODY)),
            ],
        )
        .route(
            "/api/v1/clients/{client_id}/tasks/{task_id}/gold",
            put(put_gold),
            &[(Method::PUT, Access::tenant(auth::STAFF, auth::NOBODY))],
        )
        .route(
            "/api/v1/workers/{worker_id}/reviewer-qualifications",
            post(grant_qualification),
            &[(Method::POST, Access::Firm(auth::ADMINS))],
        )
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct QaPolicyDto {
    pub accuracy_target: f64,
    pub confidence: f64,
    pub min_checks: u32,
    pub floor_rate: f64,
    pub checks_after_failure: u32,
    pub reviewer_min_designation: String,
    pub reviewer_qualification: Option<String>,
    /// `same_maker` or `another_worker`.
    pub rework: String,
    pub defect_categories: Vec<String>,
    pub gold_window: u32,
    pub gold_min_scored: u32,
    pub gold_threshold: f64,
}

impl From<&QaPolicy> for QaPolicyDto {
    fn from(policy: &QaPolicy) -> QaPolicyDto {
        QaPolicyDto {
            accuracy_target: 1.0 - policy.sampling.error_target,
            confidence: policy.sampling.confidence,
            min_checks: policy.sampling.min_checks,
            floor_rate: policy.sampling.floor_rate,
            checks_after_failure: policy.sampling.checks_after_failure,
            reviewer_min_designation: policy.reviewers.min_designation.code().into(),
            reviewer_qualification: policy.reviewers.qualification.clone(),
            rework: policy.rework.code().into(),
            defect_categories: policy.defect_categories.clone(),
            gold_window: policy.gold.window,
            gold_min_scored: policy.gold.min_scored,
            gold_threshold: policy.gold.accuracy_threshold,
        }
    }
}

fn parse_designation(text: &str) -> ApiResult<karya_core::model::Designation> {
    use karya_core::model::Designation::*;
    [Analyst, SeniorAnalyst, TeamLead, Manager]
        .into_iter()
        .find(|d| d.code() == text)
        .ok_or_else(|| {
            ApiError::invalid(format!(
                "unknown designation {text:?}: use analyst, senior_analyst, team_lead or manager"
            ))
        })
}

fn policy_of(dto: &QaPolicyDto) -> ApiResult<QaPolicy> {
    let mut categories = Vec::with_capacity(dto.defect_categories.len());
    for category in &dto.defect_categories {
        categories.push(check_text("defect_categories", category, CODE_LEN_MAX)?.to_string());
    }
    let qualification = match dto.reviewer_qualification.as_deref() {
        None => None,
        Some(text) => Some(check_text("reviewer_qualification", text, CODE_LEN_MAX)?.to_string()),
    };
    Ok(QaPolicy {
        sampling: SamplingPolicy {
            error_target: 1.0 - dto.accuracy_target,
            confidence: dto.confidence,
            min_checks: dto.min_checks,
            floor_rate: dto.floor_rate,
            checks_after_failure: dto.checks_after_failure,
        },
        reviewers: ReviewerRequirements {
            min_designation: parse_designation(&dto.reviewer_min_designation)?,
            qualification,
        },
        rework: ReworkPolicy::parse(&dto.rework).ok_or_else(|| {
            ApiError::invalid(format!(
                "unknown rework {:?}: use same_maker or another_worker",
                dto.rework
            ))
        })?,
        defect_categories: categories,
        gold: GoldPolicy {
            window: dto.gold_window,
            min_scored: dto.gold_min_scored,
            accuracy_threshold: dto.gold_threshold,
        },
    })
}

async fn get_policy(
    State(state): State<AppState>,
    Path((client_id, engagement_id)): Path<(String, String)>,
) -> ApiResult<axum::Json<QaPolicyDto>> {
    let client_id: ClientId = parse_id(&client_id)?;
    let engagement_id: EngagementId = parse_id(&engagement_id)?;
    let policy = state
        .store
        .tenant(client_id)
        .qa_policy(engagement_id)
        .await?;
    Ok(axum::Json(QaPolicyDto::from(&policy)))
}

async fn put_policy(
    State(state): State<AppState>,
    Path((client_id, engagement_id)): Path<(String, String)>,
    Json(body): Json<QaPolicyDto>,
) -> ApiResult<axum::Json<QaPolicyDto>> {
    let client_id: ClientId = parse_id(&client_id)?;
    let engagement_id: EngagementId = parse_id(&engagement_id)?;
    let policy = policy_of(&body)?;
    let stored = state
        .store
        .tenant(client_id)
        .set_qa_policy(engagement_id, &policy, state.now())
        .await?;
    Ok(axum::Json(QaPolicyDto::from(&stored)))
}

pub(crate) fn check_fields(name: &str, fields: &Fields) -> ApiResult<()> {
    if fields.len() > karya_core::qa::consensus::FIELDS_MAX {
        return Err(ApiError::invalid(format!(
            "{name} has more than {} fields",
            karya_core::qa::consensus::FIELDS_MAX
        )));
    }
    if fields
        .iter()
        .any(|(k, v)| k.len() > VALUE_LEN_MAX || v.len() > VALUE_LEN_MAX)
    {
        return Err(ApiError::invalid(format!(
            "{name} holds a name or value longer than {VALUE_LEN_MAX} bytes"
        )));
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubmissionDto {
    /// The task's output: a JSON object, stored with the task. Its top-level text, number and
    /// boolean values are also the fields gold answers and consensus compare.
    #[serde(default)]
    pub output: serde_json::Map<String, Value>,
}

/// The comparable fields of an output: its top-level scalar values as text.
fn fields_of(output: &serde_json::Map<String, Value>) -> Fields {
    output
        .iter()
        .filter_map(|(name, value)| match value {
            Value::String(text) => Some((name.clone(), text.clone())),
            Value::Number(n) => Some((name.clone(), n.to_string())),
            Value::Bool(b) => Some((name.clone(), b.to_string())),
            _ => None,
        })
        .filter(|(_, text)| text.len() <= VALUE_LEN_MAX)
        .collect()
}

async fn submit(
    State(state): State<AppState>,
    Path((client_id, task_id)): Path<(String, String)>,
    Json(body): Json<SubmissionDto>,
) -> ApiResult<axum::Json<Value>> {
    let client_id: ClientId = parse_id(&client_id)?;
    let task_id: TaskId = parse_id(&task_id)?;
    let fields = fields_of(&body.output);
    check_fields("output", &fields)?;
    let document = Value::Object(body.output).to_string();
    let submission = karya_store::Submission {
        fields: &fields,
        document: Some(&document),
        next_id: state.new_id(),
    };
    let outcome = state
        .store
        .tenant(client_id)
        .submit_task_with_output(task_id, &submission, state.now())
        .await?;
    // A gold task answers exactly like an ordinary task that was not sampled: the worker
    // must not learn which tasks are gold. Scores reach leads through the event log.
    let body = match outcome {
        SubmitOutcome::Sampled {
            task,
            submission,
            decision,
        } => json!({
            "task_id": task.id.to_string(),
            "state": task.state.code(),
            "submission": submission,
            "review": decision.review,
        }),
        SubmitOutcome::Gold {
            task, submission, ..
        } => json!({
            "task_id": task.id.to_string(),
            "state": task.state.code(),
            "submission": submission,
            "review": false,
        }),
    };
    Ok(axum::Json(body))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DefectDto {
    pub category: String,
    pub severity: String,
    pub field: Option<String>,
    #[serde(default)]
    pub comment: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewReviewDto {
    pub reviewer_id: String,
    /// `pass` or `fail`.
    pub verdict: String,
    #[serde(default)]
    pub defects: Vec<DefectDto>,
}

fn review_json(review: &Review) -> Value {
    let defects: Vec<Value> = review
        .defects
        .iter()
        .map(|d| {
            json!({"category": d.category, "severity": d.severity.code(), "field": d.field, "comment": d.comment})
        })
        .collect();
    json!({
        "id": review.id.to_string(),
        "task_id": review.task_id.to_string(),
        "reviewer_id": review.reviewer_id.to_string(),
        "verdict": if review.passed { "pass" } else { "fail" },
        "defects": defects,
        "reviewed_at": review.reviewed_at.to_string(),
    })
}

async fn create_review(
    State(state): State<AppState>,
    Path((client_id, task_id)): Path<(String, String)>,
    crate::extract::Caller(caller): crate::extract::Caller,
    Json(body): Json<NewReviewDto>,
) -> ApiResult<(StatusCode, axum::Json<Value>)> {
    let client_id: ClientId = parse_id(&client_id)?;
    let task_id: TaskId = parse_id(&task_id)?;
    let reviewer_id: WorkerId = parse_id(&body.reviewer_id)?;
    if caller.role() == karya_core::model::Role::Reviewer && caller.worker_id() != Some(reviewer_id)
    {
        return Err(ApiError::new(
            crate::error::ErrorCode::Forbidden,
            "a reviewer records reviews in their own name",
        ));
    }
    let verdict = match body.verdict.as_str() {
        "pass" => Verdict::Pass,
        "fail" => Verdict::Fail,
        other => {
            return Err(ApiError::invalid(format!(
                "unknown verdict {other:?}: use pass or fail"
            )))
        }
    };
    if body.defects.len() > karya_core::qa::review::DEFECTS_PER_REVIEW_MAX {
        return Err(ApiError::invalid(format!(
            "a review lists at most {} defects",
            karya_core::qa::review::DEFECTS_PER_REVIEW_MAX
        )));
    }
    let mut defects = Vec::with_capacity(body.defects.len());
    for defect in &body.defects {
        defects.push(Defect {
            category: check_text("category", &defect.category, CODE_LEN_MAX)?.to_string(),
            severity: Severity::parse(&defect.severity).ok_or_else(|| {
                ApiError::invalid(format!(
                    "unknown severity {:?}: use minor, major or critical",
                    defect.severity
                ))
            })?,
            field: defect.field.clone(),
            comment: defect.comment.clone(),
        });
    }
    let new = NewReview {
        id: ReviewId::from_uuid(state.new_id()),
        reviewer_id,
        verdict,
        defects,
    };
    let outcome = state
        .store
        .tenant(client_id)
        .record_review_then(task_id, &new, state.new_id(), state.now())
        .await?;
    let rework = match outcome.rework {
        None => Value::Null,
        Some(Rework::Maker(worker)) => json!({"to": "maker", "worker_id": worker.to_string()}),
        Some(Rework::Reroute { excluded }) => {
            json!({"to": "queue", "excluded_worker_id": excluded.to_string()})
        }
    };
    let mut body = review_json(&outcome.review);
    body["maker_id"] = json!(outcome.maker_id.to_string());
    body["task_state"] = json!(outcome.task.state.code());
    body["rework"] = rework;
    Ok((StatusCode::CREATED, axum::Json(body)))
}

async fn list_reviews(
    State(state): State<AppState>,
    Path((client_id, task_id)): Path<(String, String)>,
) -> ApiResult<axum::Json<Value>> {
    let client_id: ClientId = parse_id(&client_id)?;
    let task_id: TaskId = parse_id(&task_id)?;
    let tenant = state.store.tenant(client_id);
    tenant.task(task_id).await?;
    let reviews = tenant.reviews_of(task_id).await?;
    let items: Vec<Value> = reviews.iter().map(review_json).collect();
    Ok(axum::Json(json!({"items": items})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GoldDto {
    pub expected: Fields,
}

async fn put_gold(
    State(state): State<AppState>,
    Path((client_id, task_id)): Path<(String, String)>,
    Json(body): Json<GoldDto>,
) -> ApiResult<StatusCode> {
    let client_id: ClientId = parse_id(&client_id)?;
    let task_id: TaskId = parse_id(&task_id)?;
    check_fields("expected", &body.expected)?;
    if body.expected.is_empty() {
        return Err(ApiError::invalid("expected must hold at least one field"));
    }
    state
        .store
        .tenant(client_id)
        .set_gold_answer(task_id, &body.expected, state.now())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QualificationDto {
    pub qualification: String,
}

async fn grant_qualification(
    State(state): State<AppState>,
    Path(worker_id): Path<String>,
    Json(body): Json<QualificationDto>,
) -> ApiResult<StatusCode> {
    let worker_id: WorkerId = parse_id(&worker_id)?;
    let qualification = check_text("qualification", &body.qualification, CODE_LEN_MAX)?;
    state
        .store
        .grant_reviewer_qualification(worker_id, qualification, state.now())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccuracyQuery {
    /// RFC 3339 start of the period (inclusive).
    pub from: String,
    /// RFC 3339 end of the period (exclusive).
    pub to: String,
}

fn timestamp(name: &str, text: &str) -> ApiResult<jiff::Timestamp> {
    text.parse().map_err(|err| {
        ApiError::new(
            crate::error::ErrorCode::InvalidParameter,
            format!("{name} {text:?} is not an RFC 3339 time: {err}"),
        )
    })
}

fn accuracy_json(report: &AccuracyReport) -> Value {
    let evidence =
        |e: karya_core::qa::accuracy::Evidence| json!({"checks": e.checks, "correct": e.correct});
    let workers: Vec<Value> = report
        .workers
        .iter()
        .map(|w| {
            json!({
                "worker_id": w.worker_id.to_string(),
                "tasks": w.tasks,
                "reviews": evidence(w.sources.reviews),
                "gold": evidence(w.sources.gold),
                "accuracy": w.estimate.accuracy,
                "interval": [w.estimate.interval.low, w.estimate.interval.high],
            })
        })
        .collect();
    json!({
        "engagement_id": report.engagement_id.to_string(),
        "from": report.from.to_string(),
        "to": report.to.to_string(),
        "target": report.target,
        "accuracy": report.estimate.accuracy,
        "interval": [report.estimate.interval.low, report.estimate.interval.high],
        "confidence": report.estimate.confidence,
        "checks": report.estimate.checks,
        "status": report.status.code(),
        "sources": {
            "reviews": evidence(report.sources.reviews),
            "consensus": evidence(report.sources.consensus),
            "gold": evidence(report.sources.gold),
        },
        "workers": workers,
    })
}

async fn get_accuracy(
    State(state): State<AppState>,
    Path((client_id, engagement_id)): Path<(String, String)>,
    Query(query): Query<AccuracyQuery>,
) -> ApiResult<axum::Json<Value>> {
    let client_id: ClientId = parse_id(&client_id)?;
    let engagement_id: EngagementId = parse_id(&engagement_id)?;
    let from = timestamp("from", &query.from)?;
    let to = timestamp("to", &query.to)?;
    if to < from {
        return Err(ApiError::new(
            crate::error::ErrorCode::InvalidParameter,
            "to must not be before from",
        ));
    }
    let report = state
        .store
        .tenant(client_id)
        .accuracy(engagement_id, from, to)
        .await?;
    Ok(axum::Json(accuracy_json(&report)))
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use karya_core::id::{AssignmentId, ClientId, EngagementId, TaskId, WorkItemId, WorkerId};
    use karya_core::lifecycle::TaskState;
    use karya_core::model::{Designation, Priority};
    use karya_core::money::Currency;
    use karya_core::service_line::ServiceLine;
    use karya_store::{NewEngagement, NewTask, NewWorkItem, Store, StoreOptions};
    use serde_json::{json, Value};
    use tower::ServiceExt;

    use crate::{router, AppState};

    async fn call(
        state: &AppState,
        method: &str,
        uri: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        // Each call acts as a fresh administrator, through the real token path.
        let (_, token) = crate::auth::user_with_token(
            &state.store,
            &format!("admin-{}@firm.example", uuid::Uuid::now_v7().simple()),
            karya_core::model::Role::Admin,
            None,
            None,
            jiff::Timestamp::now(),
        )
        .await
        .unwrap();
        let request = Request::builder()
            .method(method)
            .uri(uri)
            .header("authorization", format!("Bearer {token}"));
        let request = match body {
            Some(body) => request
                .header("content-type", "application/json")
                .body(Body::from(body.to_string())),
            None => request.body(Body::empty()),
        }
        .unwrap();
        let response = router(state.clone()).oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        let value = match bytes.is_empty() {
            true => Value::Null,
            false => serde_json::from_slice(&bytes).unwrap(),
        };
        (status, value)
    }

    fn new_uuid() -> uuid::Uuid {
        uuid::Uuid::now_v7()
    }

    #[tokio::test]
    async fn review_endpoints_sample_refuse_and_rework() {
        let dir = std::env::temp_dir().join(format!("karya-qa-http-{}", new_uuid().simple()));
        let url = format!("sqlite://{}/karya.db", dir.display());
        let store = Store::open(&url, &StoreOptions::default()).await.unwrap();
        let state = AppState::new(store.clone());
        let now = jiff::Timestamp::now();

        let client_id = ClientId::from_uuid(new_uuid());
        store
            .create_client(client_id, "ledgers inc", Currency::USD, now)
            .await
            .unwrap();
        let tenant = store.tenant(client_id);
        let engagement_id = EngagementId::from_uuid(new_uuid());
        let new = NewEngagement {
            id: engagement_id,
            name: "books".into(),
            service_line: ServiceLine::IpResearch,
        };
        tenant.create_engagement(&new, now).await.unwrap();
        let work_item_id = WorkItemId::from_uuid(new_uuid());
        let item = NewWorkItem {
            id: work_item_id,
            engagement_id,
            external_ref: None,
            title: "april ledger".into(),
            priority: Priority::Normal,
            input: "{}".into(),
        };
        tenant.create_work_item(&item, now).await.unwrap();
        let maker = WorkerId::from_uuid(new_uuid());
        store
            .create_worker(maker, "maker", None, Designation::Analyst, now)
            .await
            .unwrap();
        let reviewer = WorkerId::from_uuid(new_uuid());
        store
            .create_worker(reviewer, "reviewer", None, Designation::TeamLead, now)
            .await
            .unwrap();
        let task_id = TaskId::from_uuid(new_uuid());
        let task = NewTask {
            id: task_id,
            work_item_id,
            step: "post_entries".into(),
        };
        tenant.create_task(&task, now).await.unwrap();
        tenant
            .assign_task(task_id, maker, AssignmentId::from_uuid(new_uuid()), now)
            .await
            .unwrap();
        tenant
            .transition_task(task_id, TaskState::InProgress, now)
            .await
            .unwrap();

        let base = format!("/api/v1/clients/{client_id}");
        let (status, policy) = call(
            &state,
            "GET",
            &format!("{base}/engagements/{engagement_id}/qa-policy"),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let mut policy = policy;
        policy["reviewer_qualification"] = json!("ca");
        let (status, stored) = call(
            &state,
            "PUT",
            &format!("{base}/engagements/{engagement_id}/qa-policy"),
            Some(policy.clone()),
        )
        .await;
        assert_eq!((status, &stored), (StatusCode::OK, &policy));
        let mut bad = policy.clone();
        bad["confidence"] = json!(1.5);
        let (status, body) = call(
            &state,
            "PUT",
            &format!("{base}/engagements/{engagement_id}/qa-policy"),
            Some(bad),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(body["error"]["code"], "rule_violation");

        // Submit: a new worker's work is always sampled.
        let (status, body) = call(
            &state,
            "POST",
            &format!("{base}/tasks/{task_id}/submission"),
            Some(json!({"output": {"amount": "1000"}})),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(
            (body["state"].as_str(), body["review"].as_bool()),
            (Some("in_review"), Some(true))
        );

        // The maker may not review; a reviewer without the client's qualification may not either.
        let fail = |worker: WorkerId| {
            json!({"reviewer_id": worker.to_string(), "verdict": "fail",
                   "defects": [{"category": "wrong_value", "severity": "major", "field": "amount", "comment": "off by 10x"}]})
        };
        let reviews = format!("{base}/tasks/{task_id}/reviews");
        let (status, body) = call(&state, "POST", &reviews, Some(fail(maker))).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            body["error"]["message"],
            format!("worker {maker} made this work and cannot check it")
        );
        let (status, body) = call(&state, "POST", &reviews, Some(fail(reviewer))).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("qualification \"ca\""),
            "{body}"
        );
        let (status, _) = call(
            &state,
            "POST",
            &format!("/api/v1/workers/{reviewer}/reviewer-qualifications"),
            Some(json!({"qualification": "ca"})),
        )
        .await;
        assert_eq!(status, StatusCode::NO_CONTENT);

        // Another client's id answers exactly like a missing one.
        let other = ClientId::from_uuid(new_uuid());
        let (status, body) = call(
            &state,
            "POST",
            &format!("/api/v1/clients/{other}/tasks/{task_id}/reviews"),
            Some(fail(reviewer)),
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(
            body,
            json!({"error": {"code": "not_found", "message": format!("task {task_id} not found")}})
        );

        let (status, body) = call(&state, "POST", &reviews, Some(fail(reviewer))).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["task_state"], "rework");
        assert_eq!(
            body["rework"],
            json!({"to": "maker", "worker_id": maker.to_string()})
        );
        assert_eq!(body["defects"][0]["severity"], "major");
        let (status, body) = call(&state, "GET", &reviews, None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["items"].as_array().unwrap().len(), 1);

        let (status, body) = call(
            &state,
            "GET",
            &format!("{base}/engagements/{engagement_id}/accuracy?from=2000-01-01T00:00:00Z&to=2100-01-01T00:00:00Z"),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(
            body["sources"]["reviews"],
            json!({"checks": 1, "correct": 0})
        );
        assert_eq!(body["accuracy"], json!(0.0));
        assert_eq!(body["target"], json!(0.95));
        let (status, body) = call(
            &state,
            "GET",
            &format!("{base}/engagements/{engagement_id}/accuracy?from=yesterday&to=x"),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"]["code"], "invalid_parameter");

        store.close().await;
        std::fs::remove_dir_all(dir).ok();
    }
}
