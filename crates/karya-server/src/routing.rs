//! An engagement's routing (requirements and workflow) and the explanations of routing
//! decisions about a client's tasks. Both are tenant resources: another client's id answers
//! like a missing one.

use axum::extract::State;
use axum::http::Method;
use axum::http::StatusCode;
use axum::routing::get;
use jiff::SignedDuration;
use karya_core::id::{ClientId, EngagementId, SiteId, TaskId};
use karya_core::model::Designation;
use karya_core::routing::{expr, Requirements, RoutingWorkflow, SkillRequirement, WorkflowStep};
use karya_core::workforce::SKILL_LEVEL_MAX;
use karya_store::StoreError;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::api::Api;
use crate::auth::{self, Access};
use crate::error::ApiError;
use crate::extract::{parse_id, Json, Path};
use crate::{ApiResult, AppState};

/// Most entries in any requirement list.
const LIST_LEN_MAX: usize = 64;

pub fn api() -> Api {
    Api::new()
        .route(
            "/api/v1/clients/{client_id}/engagements/{engagement_id}/routing",
            get(get_routing).put(set_routing),
            &[
                (Method::GET, Access::tenant(auth::STAFF_READ, auth::NOBODY)),
                (Method::PUT, Access::tenant(auth::ADMINS, auth::NOBODY)),
            ],
        )
        .route(
            "/api/v1/clients/{client_id}/tasks/{task_id}/explanations",
            get(explanations),
            &[(
                Method::GET,
                Access::tenant_or_holder(auth::STAFF_READ, auth::NOBODY),
            )],
        )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SkillNeedDto {
    skill: String,
    level_min: u8,
    #[serde(default)]
    optional: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RequirementsDto {
    #[serde(default)]
    qualifications: Vec<String>,
    #[serde(default)]
    skills: Vec<SkillNeedDto>,
    #[serde(default)]
    languages: Vec<String>,
    allowed_sites: Option<Vec<String>>,
    #[serde(default)]
    home_sites: Vec<String>,
    target: Option<String>,
    channel: String,
    weight: u32,
    expected_handling_s: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StepDto {
    name: String,
    #[serde(default)]
    drop_optional_skills: bool,
    #[serde(default)]
    widen_sites: bool,
    designation_min: Option<String>,
    #[serde(default)]
    escalate: bool,
    timeout_s: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RoutingDto {
    requirements: RequirementsDto,
    /// Absent: the standard workflow.
    workflow: Option<Vec<StepDto>>,
}

fn requirements(dto: RequirementsDto) -> ApiResult<Requirements> {
    if dto.qualifications.len() > LIST_LEN_MAX
        || dto.skills.len() > LIST_LEN_MAX
        || dto.languages.len() > LIST_LEN_MAX
        || dto.home_sites.len() > LIST_LEN_MAX
        || dto
            .allowed_sites
            .as_ref()
            .is_some_and(|s| s.len() > LIST_LEN_MAX)
    {
        return Err(ApiError::invalid(format!(
            "requirement lists take at most {LIST_LEN_MAX} entries"
        )));
    }
    let skills = dto
        .skills
        .into_iter()
        .map(|s| match (1..=SKILL_LEVEL_MAX).contains(&s.level_min) {
            true => Ok(SkillRequirement {
                skill: s.skill,
                level_min: s.level_min,
                optional: s.optional,
            }),
            false => Err(ApiError::invalid(format!(
                "level_min must be between 1 and {SKILL_LEVEL_MAX}"
            ))),
        })
        .collect::<ApiResult<Vec<_>>>()?;
    let target = dto
        .target
        .as_deref()
        .map(expr::parse)
        .transpose()
        .map_err(|e| ApiError::invalid(e.to_string()))?;
    if dto.expected_handling_s <= 0 || dto.weight == 0 {
        return Err(ApiError::invalid(
            "weight and expected_handling_s must be positive",
        ));
    }
    Ok(Requirements {
        qualifications: dto.qualifications,
        skills,
        languages: dto.languages,
        allowed_sites: dto
            .allowed_sites
            .map(|sites| sites.iter().map(|s| parse_id::<SiteId>(s)).collect())
            .transpose()?,
        home_sites: dto
            .home_sites
            .iter()
            .map(|s| parse_id::<SiteId>(s))
            .collect::<ApiResult<Vec<_>>>()?,
        target,
        channel: dto.channel,
        weight: dto.weight,
        expected_handling: SignedDuration::from_secs(dto.expected_handling_s),
    })
}

fn workflow(steps: Option<Vec<StepDto>>) -> ApiResult<RoutingWorkflow> {
    let Some(steps) = steps else {
        return Ok(RoutingWorkflow::standard());
    };
    let steps = steps
        .into_iter()
        .map(|s| {
            let designation_min = match s.designation_min.as_deref() {
                None => None,
                Some("analyst") => Some(Designation::Analyst),
                Some("senior_analyst") => Some(Designation::SeniorAnalyst),
                Some("team_lead") => Some(Designation::TeamLead),
                Some("manager") => Some(Designation::Manager),
                Some(other) => {
                    return Err(ApiError::invalid(format!("unknown designation {other:?}")))
                }
            };
            Ok(WorkflowStep {
                name: s.name,
                drop_optional_skills: s.drop_optional_skills,
                widen_sites: s.widen_sites,
                designation_min,
                escalate: s.escalate,
                timeout: s.timeout_s.map(SignedDuration::from_secs),
            })
        })
        .collect::<ApiResult<Vec<_>>>()?;
    let workflow = RoutingWorkflow { steps };
    workflow
        .validate()
        .map_err(|e| ApiError::invalid(e.to_string()))?;
    Ok(workflow)
}

async fn set_routing(
    State(state): State<AppState>,
    Path((client_id, engagement_id)): Path<(String, String)>,
    Json(body): Json<RoutingDto>,
) -> ApiResult<StatusCode> {
    let client_id: ClientId = parse_id(&client_id)?;
    let engagement_id: EngagementId = parse_id(&engagement_id)?;
    let req = requirements(body.requirements)?;
    let flow = workflow(body.workflow)?;
    state
        .store
        .tenant(client_id)
        .set_engagement_routing(engagement_id, &req, &flow, state.now())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn get_routing(
    State(state): State<AppState>,
    Path((client_id, engagement_id)): Path<(String, String)>,
) -> ApiResult<axum::Json<Value>> {
    let client_id: ClientId = parse_id(&client_id)?;
    let engagement_id: EngagementId = parse_id(&engagement_id)?;
    let routing = state
        .store
        .tenant(client_id)
        .engagement_routing(engagement_id)
        .await?;
    let Some((req, flow)) = routing else {
        return Err(StoreError::NotFound {
            kind: "engagement routing",
            id: engagement_id.to_string(),
        }
        .into());
    };
    Ok(axum::Json(json!({
        "requirements": karya_store::requirements_json(&req),
        "workflow": karya_store::workflow_json(&flow),
    })))
}

async fn explanations(
    State(state): State<AppState>,
    Path((client_id, task_id)): Path<(String, String)>,
) -> ApiResult<axum::Json<Value>> {
    let client_id: ClientId = parse_id(&client_id)?;
    let task_id: TaskId = parse_id(&task_id)?;
    let items = state.store.tenant(client_id).explanations(task_id).await?;
    let items: Vec<Value> = items
        .iter()
        .map(|e| {
            json!({
                "task_id": e.task_id.to_string(),
                "worker_id": e.worker_id.map(|w| w.to_string()),
                "assignment_id": e.assignment_id.map(|a| a.to_string()),
                "path": e.path,
                "rule": e.rule,
                "decided_at": e.decided_at.to_string(),
                "explanation": serde_json::from_str::<Value>(&e.explanation).unwrap_or(Value::Null),
            })
        })
        .collect();
    Ok(axum::Json(json!({"items": items})))
}
