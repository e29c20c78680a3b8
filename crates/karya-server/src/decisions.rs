//! Decisions under client policy over HTTP: decision types, policies (publishing reports what
//! a change undid or flagged), decisions, approvals and undos.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::Method;
use axum::http::StatusCode;
use axum::routing::{get, post};
use jiff::SignedDuration;
use karya_core::decision::authority::{DecisionType, Inverse};
use karya_core::decision::ledger::{DecisionStatus, Resolution, LOOKBACK_DEFAULT};
use karya_core::decision::policy::{
    Approver, Constraint, Layer, OnFail, Policy, PolicyDraft, Scope,
};
use karya_core::id::{ClientId, DecisionId, EngagementId, WorkerId};
use karya_store::{designation_from_code, NewDecision, PolicyReport, StoredDecision};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::api::Api;
use crate::auth::{self, Access};
use crate::clients::page_request;
use crate::dto::{PageDto, PageQuery};
use crate::error::{ApiError, ErrorCode};
use crate::extract::{parse_id, Caller, Json, Path, Query};
use crate::{check_text, ApiResult, AppState};
use karya_core::model::Role;

/// Longest lookback a policy change may ask for: a year of decisions is re-evaluated at most.
const LOOKBACK_HOURS_MAX: i64 = 24 * 366;
/// Most authority limits a decision type may list (one per designation).
const LIMITS_MAX: usize = 8;

pub fn api() -> Api {
    Api::new()
        .route(
            "/api/v1/clients/{client_id}/engagements/{engagement_id}/decision-types",
            get(list_decision_types).post(register_decision_type),
            &[
                (
                    Method::GET,
                    Access::tenant(auth::DECIDERS_READ, auth::CLIENT_ALL),
                ),
                (Method::POST, Access::tenant(auth::ADMINS, auth::NOBODY)),
            ],
        )
        .route(
            "/api/v1/policies",
            post(publish_firm_policy),
            &[(Method::POST, Access::Firm(&[Role::Admin]))],
        )
        .route(
            "/api/v1/clients/{client_id}/policies",
            get(list_policies).post(publish_client_policy),
            &[
                (
                    Method::GET,
                    Access::tenant(auth::DECIDERS_READ, auth::CLIENT_ALL),
                ),
                (
                    Method::POST,
                    Access::tenant(auth::ADMINS, auth::CLIENT_ADMIN),
                ),
            ],
        )
        .route(
            "/api/v1/clients/{client_id}/decisions",
            get(list_decisions).post(take_decision),
            &[
                (
                    Method::GET,
                    Access::tenant(auth::STAFF_READ, auth::CLIENT_ALL),
                ),
                (Method::POST, Access::tenant(auth::DECIDERS, auth::NOBODY)),
            ],
        )
        .route(
            "/api/v1/clients/{client_id}/decisions/{decision_id}",
            get(get_decision),
            &[(
                Method::GET,
                Access::tenant(auth::STAFF_READ, auth::CLIENT_ALL),
            )],
        )
        .route(
            "/api/v1/clients/{client_id}/decisions/{decision_id}/approval",
            post(settle_approval),
            &[(
                Method::POST,
                Access::tenant(auth::STAFF, auth::CLIENT_ADMIN),
            )],
        )
        .route(
            "/api/v1/clients/{client_id}/decisions/{decision_id}/undo",
            post(undo_decision),
            &[(Method::POST, Access::tenant(auth::STAFF, auth::NOBODY))],
        )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DecisionTypeDto {
    name: String,
    #[serde(default)]
    amount_field: Option<String>,
    /// Designation code → highest amount (minor units) it may decide alone.
    #[serde(default)]
    limits: BTreeMap<String, i64>,
    #[serde(default)]
    required_qualifications: Vec<String>,
    /// `{"compensate": "<action>"}` or `"irreversible"`.
    inverse: Value,
    undo_window_hours: u32,
    #[serde(default)]
    reopen_on_undo: bool,
}

fn decision_type_json(decision_type: &DecisionType) -> Value {
    json!({
        "name": decision_type.name,
        "amount_field": decision_type.amount_field,
        "limits": decision_type.limits.iter().map(|(d, l)| (d.code().to_string(), json!(l))).collect::<serde_json::Map<_, _>>(),
        "required_qualifications": decision_type.required_qualifications,
        "inverse": match &decision_type.inverse {
            Inverse::Compensate { action } => json!({"compensate": action}),
            Inverse::Irreversible => json!("irreversible"),
        },
        "undo_window_hours": decision_type.undo_window_hours,
        "reopen_on_undo": decision_type.reopen_on_undo,
    })
}

async fn register_decision_type(
    State(state): State<AppState>,
    Path((client_id, engagement_id)): Path<(String, String)>,
    Json(body): Json<DecisionTypeDto>,
) -> ApiResult<(StatusCode, axum::Json<Value>)> {
    let tenant = state.store.tenant(parse_id(&client_id)?);
    let engagement_id: EngagementId = parse_id(&engagement_id)?;
    let name = check_text("name", &body.name, 100)?;
    if body.limits.len() > LIMITS_MAX {
        return Err(ApiError::invalid(format!(
            "at most {LIMITS_MAX} authority limits"
        )));
    }
    let mut limits = Vec::new();
    for (code, limit) in &body.limits {
        let designation = designation_from_code(code).ok_or_else(|| {
            ApiError::invalid(format!(
                "unknown designation {code:?}: use analyst, senior_analyst, team_lead or manager"
            ))
        })?;
        if *limit < 0 {
            return Err(ApiError::invalid(format!(
                "the limit of {code} is negative"
            )));
        }
        limits.push((designation, *limit));
    }
    limits.sort();
    if limits.windows(2).any(|pair| pair[1].1 < pair[0].1) {
        return Err(ApiError::invalid(
            "authority limits must not fall as the designation rises",
        ));
    }
    let inverse = match &body.inverse {
        Value::String(text) if text == "irreversible" => Inverse::Irreversible,
        Value::Object(map)
            if map.len() == 1 && map.get("compensate").is_some_and(Value::is_string) =>
        {
            Inverse::Compensate {
                action: check_text(
                    "inverse.compensate",
                    map["compensate"].as_str().unwrap_or_default(),
                    100,
                )?
                .to_string(),
            }
        }
        _ => {
            return Err(ApiError::invalid(
                r#"inverse is "irreversible" or {"compensate": "<action>"}"#,
            ))
        }
    };
    let decision_type = DecisionType {
        name: name.to_string(),
        amount_field: body
            .amount_field
            .as_deref()
            .map(|f| check_text("amount_field", f, 100))
            .transpose()?
            .map(str::to_string),
        limits,
        required_qualifications: body.required_qualifications.clone(),
        inverse,
        undo_window_hours: body.undo_window_hours,
        reopen_on_undo: body.reopen_on_undo,
    };
    tenant
        .register_decision_type(engagement_id, &decision_type, state.now())
        .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(decision_type_json(&decision_type)),
    ))
}

async fn list_decision_types(
    State(state): State<AppState>,
    Path((client_id, engagement_id)): Path<(String, String)>,
) -> ApiResult<axum::Json<Value>> {
    let tenant = state.store.tenant(parse_id(&client_id)?);
    let types = tenant.decision_types(parse_id(&engagement_id)?).await?;
    Ok(axum::Json(
        json!({"items": types.iter().map(decision_type_json).collect::<Vec<_>>()}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyDto {
    key: String,
    /// firm (only at /api/v1/policies), client, engagement or team.
    layer: String,
    #[serde(default)]
    engagement_id: Option<String>,
    #[serde(default)]
    team: Option<String>,
    #[serde(default)]
    decision_type: Option<String>,
    /// `{"rule": "<CEL>"}`, `{"at_most": {"field", "limit"}}` or `{"at_least": {"field", "limit"}}`.
    constraint: Value,
    /// block, approval:lead or approval:client.
    on_fail: String,
    #[serde(default)]
    default: bool,
    #[serde(default)]
    reason: Option<String>,
    /// How far back to look for decisions the change conflicts with (default 30 days).
    #[serde(default)]
    lookback_hours: Option<i64>,
}

fn constraint_from(value: &Value) -> ApiResult<Constraint> {
    let bad = || {
        ApiError::invalid(
            r#"constraint is {"rule": "<CEL>"}, {"at_most": {"field", "limit"}} or {"at_least": {"field", "limit"}}"#,
        )
    };
    let map = value.as_object().filter(|m| m.len() == 1).ok_or_else(bad)?;
    let (kind, inner) = map.iter().next().ok_or_else(bad)?;
    let bound = |inner: &Value| -> ApiResult<(String, i64)> {
        let field = inner.get("field").and_then(Value::as_str).ok_or_else(bad)?;
        let limit = inner.get("limit").and_then(Value::as_i64).ok_or_else(bad)?;
        if !field.split('.').all(|part| {
            !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        }) {
            return Err(ApiError::invalid(format!(
                "field {field:?} is not a dotted path of names"
            )));
        }
        Ok((field.to_string(), limit))
    };
    match kind.as_str() {
        "rule" => Ok(Constraint::Rule {
            expression: inner.as_str().ok_or_else(bad)?.to_string(),
        }),
        "at_most" => bound(inner).map(|(field, limit)| Constraint::AtMost { field, limit }),
        "at_least" => bound(inner).map(|(field, limit)| Constraint::AtLeast { field, limit }),
        _ => Err(bad()),
    }
}

fn draft_from(
    body: &PolicyDto,
    client_id: Option<ClientId>,
) -> ApiResult<(PolicyDraft, SignedDuration)> {
    let layer = Layer::parse(&body.layer)
        .ok_or_else(|| ApiError::invalid("layer is firm, client, engagement or team"))?;
    match (layer, client_id) {
        (Layer::Firm, Some(_)) => {
            return Err(ApiError::invalid(
                "firm policies are published at /api/v1/policies",
            ))
        }
        (Layer::Firm, None) => {}
        (_, None) => {
            return Err(ApiError::invalid(
                "only firm policies are published at /api/v1/policies",
            ))
        }
        (_, Some(_)) => {}
    }
    let engagement_id: Option<EngagementId> =
        body.engagement_id.as_deref().map(parse_id).transpose()?;
    let scope = Scope {
        layer,
        client_id,
        engagement_id,
        team: body.team.clone(),
    };
    let on_fail = OnFail::parse(&body.on_fail)
        .ok_or_else(|| ApiError::invalid("on_fail is block, approval:lead or approval:client"))?;
    let lookback_hours = body.lookback_hours.unwrap_or(LOOKBACK_DEFAULT.as_hours());
    if !(0..=LOOKBACK_HOURS_MAX).contains(&lookback_hours) {
        return Err(ApiError::invalid(format!(
            "lookback_hours is 0 to {LOOKBACK_HOURS_MAX}"
        )));
    }
    let draft = PolicyDraft {
        key: check_text("key", &body.key, 200)?.to_string(),
        scope,
        decision_type: body.decision_type.clone(),
        constraint: constraint_from(&body.constraint)?,
        on_fail,
        default: body.default,
        reason: body
            .reason
            .as_deref()
            .map(|r| check_text("reason", r, 1_000))
            .transpose()?
            .map(str::to_string),
    };
    Ok((draft, SignedDuration::from_hours(lookback_hours)))
}

pub(crate) fn policy_json(policy: &Policy) -> Value {
    json!({
        "label": policy.label(),
        "key": policy.key,
        "layer": policy.scope.layer.code(),
        "engagement_id": policy.scope.engagement_id.map(|e| e.to_string()),
        "team": policy.scope.team,
        "version": policy.version,
        "decision_type": policy.decision_type,
        "expression": policy.constraint.expression(),
        "on_fail": policy.on_fail.code(),
        "default": policy.default,
        "reason": policy.reason,
        "effective_from": policy.effective_from.to_string(),
    })
}

fn report_json(report: &PolicyReport, only: Option<ClientId>) -> Value {
    let mut undone = Vec::new();
    let mut flagged = Vec::new();
    let mut kept = Vec::new();
    for (client_id, resolution) in &report.resolutions {
        if only.is_some_and(|c| c != *client_id) {
            continue;
        }
        let entry = json!({"client_id": client_id.to_string(), "decision_id": resolution.id().to_string(), "trace": resolution.trace()});
        match resolution {
            Resolution::Undone { compensation, .. } => {
                let mut entry = entry;
                entry["compensation"] = json!(compensation);
                undone.push(entry);
            }
            Resolution::Flagged { .. } => flagged.push(entry),
            Resolution::Kept { .. } => kept.push(entry),
        }
    }
    json!({"policy": policy_json(&report.policy), "report": {"undone": undone, "flagged": flagged, "kept": kept}})
}

async fn publish_firm_policy(
    State(state): State<AppState>,
    Json(body): Json<PolicyDto>,
) -> ApiResult<(StatusCode, axum::Json<Value>)> {
    let (draft, lookback) = draft_from(&body, None)?;
    let report = state
        .store
        .publish_policy(draft, lookback, state.now())
        .await?;
    Ok((StatusCode::CREATED, axum::Json(report_json(&report, None))))
}

async fn publish_client_policy(
    State(state): State<AppState>,
    Path(client_id): Path<String>,
    Json(body): Json<PolicyDto>,
) -> ApiResult<(StatusCode, axum::Json<Value>)> {
    let client_id: ClientId = parse_id(&client_id)?;
    let (draft, lookback) = draft_from(&body, Some(client_id))?;
    let report = state
        .store
        .publish_policy(draft, lookback, state.now())
        .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(report_json(&report, Some(client_id))),
    ))
}

async fn list_policies(
    State(state): State<AppState>,
    Path(client_id): Path<String>,
) -> ApiResult<axum::Json<Value>> {
    let client_id: ClientId = parse_id(&client_id)?;
    state.store.client(client_id).await?;
    let policies = state.store.tenant(client_id).policies().await?;
    Ok(axum::Json(
        json!({"items": policies.iter().map(policy_json).collect::<Vec<_>>()}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewDecisionDto {
    work_item_id: String,
    #[serde(default)]
    task_id: Option<String>,
    decision_type: String,
    payload: Value,
    #[serde(default)]
    team: Option<String>,
    decided_by: String,
}

fn decision_json(decision: &StoredDecision) -> Value {
    let record = &decision.record;
    json!({
        "id": record.id.to_string(),
        "work_item_id": decision.work_item_id.to_string(),
        "task_id": decision.task_id.map(|t| t.to_string()),
        "decision_type": record.input.decision_type,
        "payload": karya_store::attrs::to_json(&record.input.payload),
        "decided_by": decision.decided_by.to_string(),
        "designation": record.decider.designation.code(),
        "decided_at": record.decided_at.to_string(),
        "status": record.status.code(),
        "policies_applied": record.applied,
        "trace": record.trace,
        "updated_at": decision.updated_at.to_string(),
    })
}

async fn take_decision(
    State(state): State<AppState>,
    Path(client_id): Path<String>,
    Caller(caller): Caller,
    Json(body): Json<NewDecisionDto>,
) -> ApiResult<(StatusCode, axum::Json<Value>)> {
    let client_id: ClientId = parse_id(&client_id)?;
    let tenant = state.store.tenant(client_id);
    if caller.role() == Role::Worker {
        // A worker decides in their own name, inside work they hold.
        let own = caller
            .worker_id()
            .is_some_and(|w| w.to_string() == body.decided_by);
        let holds = match caller.worker_id() {
            Some(worker_id) => {
                state
                    .store
                    .worker_holds(worker_id, client_id, None, Some(&body.work_item_id))
                    .await?
            }
            None => false,
        };
        if !own {
            return Err(ApiError::new(
                ErrorCode::Forbidden,
                "a worker takes decisions in their own name",
            ));
        }
        if !holds {
            return Err(ApiError::new(
                ErrorCode::NotFound,
                format!("work item {} not found", body.work_item_id),
            ));
        }
    }
    if !body.payload.is_object() {
        return Err(ApiError::invalid("payload must be a JSON object"));
    }
    let payload = karya_store::attrs::from_json(&body.payload)
        .map_err(|err| ApiError::invalid(format!("payload: {err}")))?;
    let decided_by: WorkerId = parse_id(&body.decided_by)?;
    let work_item_id = parse_id(&body.work_item_id)?;
    check_pack_payload(
        &state,
        &tenant,
        work_item_id,
        &body.decision_type,
        &body.payload,
    )
    .await?;
    let new = NewDecision {
        id: DecisionId::from_uuid(state.new_id()),
        work_item_id,
        task_id: body.task_id.as_deref().map(parse_id).transpose()?,
        decision_type: check_text("decision_type", &body.decision_type, 100)?.to_string(),
        payload,
        team: body
            .team
            .as_deref()
            .map(|t| check_text("team", t, 100))
            .transpose()?
            .map(str::to_string),
        decided_by,
    };
    let decision = tenant.take_decision(&new, state.now()).await?;
    Ok((StatusCode::CREATED, axum::Json(decision_json(&decision))))
}

/// Checks a decision's payload against its type's schema when the work item's engagement runs
/// on a pack that defines the type; field-level problems answer 400 and nothing is stored.
/// Types registered by hand have no schema.
async fn check_pack_payload(
    state: &AppState,
    tenant: &karya_store::Tenant,
    work_item_id: karya_core::id::WorkItemId,
    decision_type: &str,
    payload: &Value,
) -> ApiResult<()> {
    let item = tenant.work_item(work_item_id).await?;
    let Some((pack_id, _)) = tenant.engagement_pack(item.engagement_id).await? else {
        return Ok(());
    };
    let Some(loaded) = state.packs.by_id(&pack_id) else {
        return Ok(());
    };
    if !loaded
        .pack
        .decisions
        .iter()
        .any(|d| d.name == decision_type)
    {
        return Ok(());
    }
    if let Err(problems) = loaded.validate_decision(decision_type, &payload.to_string()) {
        let mut error = ApiError::invalid(format!(
            "payload does not match the {decision_type} form of pack {pack_id} ({} problems)",
            problems.len()
        ));
        error.fields = problems.into_iter().map(|p| (p.path, p.problem)).collect();
        return Err(error);
    }
    Ok(())
}

async fn list_decisions(
    State(state): State<AppState>,
    Path(client_id): Path<String>,
    Query(query): Query<PageQuery>,
) -> ApiResult<axum::Json<PageDto<Value>>> {
    let client_id: ClientId = parse_id(&client_id)?;
    state.store.client(client_id).await?;
    let page = state
        .store
        .tenant(client_id)
        .list_decisions(&page_request(&query))
        .await?;
    Ok(axum::Json(PageDto {
        items: page.items.iter().map(decision_json).collect(),
        next_after: page.next_after,
    }))
}

async fn get_decision(
    State(state): State<AppState>,
    Path((client_id, decision_id)): Path<(String, String)>,
) -> ApiResult<axum::Json<Value>> {
    let tenant = state.store.tenant(parse_id(&client_id)?);
    let decision = tenant.decision(parse_id(&decision_id)?).await?;
    Ok(axum::Json(decision_json(&decision)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ApprovalDto {
    approve: bool,
}

async fn settle_approval(
    State(state): State<AppState>,
    Path((client_id, decision_id)): Path<(String, String)>,
    Caller(caller): Caller,
    Json(body): Json<ApprovalDto>,
) -> ApiResult<axum::Json<Value>> {
    let tenant = state.store.tenant(parse_id(&client_id)?);
    let pending = tenant.decision(parse_id(&decision_id)?).await?;
    // The client approves what exceeds the firm's authority; the firm's leads the rest.
    let client_side = caller.client_id().is_some();
    match pending.record.status {
        DecisionStatus::PendingApproval(Approver::Client) if !client_side => {
            return Err(ApiError::new(
                ErrorCode::Forbidden,
                "this decision waits for the client's approval",
            ))
        }
        DecisionStatus::PendingApproval(Approver::Lead) if client_side => {
            return Err(ApiError::new(
                ErrorCode::Forbidden,
                "this decision waits for a lead of the firm",
            ))
        }
        _ => {}
    }
    let decision = tenant
        .settle_approval(parse_id(&decision_id)?, body.approve, state.now())
        .await?;
    Ok(axum::Json(decision_json(&decision)))
}

async fn undo_decision(
    State(state): State<AppState>,
    Path((client_id, decision_id)): Path<(String, String)>,
) -> ApiResult<axum::Json<Value>> {
    let tenant = state.store.tenant(parse_id(&client_id)?);
    let decision = tenant
        .undo_decision(parse_id(&decision_id)?, state.now())
        .await
        .map_err(|err| match err {
            karya_store::StoreError::Rejected { message } => {
                ApiError::new(ErrorCode::RuleViolation, message)
            }
            other => other.into(),
        })?;
    Ok(axum::Json(decision_json(&decision)))
}
