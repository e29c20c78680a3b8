//! Workers as the router sees them (profile, qualifications, skills, presence) and *Get next*.
//!
//! *Get next* follows the three beats: load the worker, their load (offers and channels
//! included) and a page of ready tasks with their engagements' requirements and their case
//! (the preferred worker, the workers excluded: makers of what a checking step checks, workers
//! who declined), marking the tasks QA bars the worker from (a gold pause on the step, a
//! rework exclusion, another part of a consensus group) as excluded too; let
//! `karya-core` rank the tasks for the worker; claim them in that order with the store's
//! exactly-once assignment until one succeeds, and store the explanation of the winner.

use std::sync::Arc;

use axum::extract::State;
use axum::http::Method;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use jiff::civil::{Time, Weekday};
use jiff::{SignedDuration, Timestamp};
use karya_core::id::{AssignmentId, ClientId, SiteId, WorkerId};
use karya_core::model::Designation;
use karya_core::routing::{
    rank_for_worker, Candidate, OpenTask, Requirements, RoutingConfig, RoutingWorkflow, Waiting,
    WorkerLoad,
};
use karya_core::workforce::{
    ChannelCap, Presence, Qualification, ShiftBlock, ShiftBreak, Skill, SKILL_LEVEL_MAX,
};
use karya_store::{
    explanation_json, CaseQuery, Claim, GrowthFlag, RoutedWorker, StoreError, WorkerRouting,
    WorkerRoutingExtras,
};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::api::Api;
use crate::auth::{self, Access};
use crate::error::ApiError;
use crate::extract::{parse_id, Json, Path};
use crate::{check_text, ApiResult, AppState};

/// Longest worker name, skill or qualification text accepted.
const TEXT_LEN_MAX: usize = 200;
/// Most list entries (languages, shifts, conflicts) accepted in one profile.
const LIST_LEN_MAX: usize = 64;
/// Expected handling of a task whose engagement sets no routing.
const DEFAULT_HANDLING: SignedDuration = SignedDuration::from_mins(30);

pub fn api() -> Api {
    Api::new()
        .route(
            "/api/v1/workers",
            post(create_worker),
            &[(Method::POST, Access::Firm(auth::ADMINS))],
        )
        .route(
            "/api/v1/workers/{worker_id}",
            get(get_worker),
            &[(
                Method::GET,
                Access::OwnWorker {
                    firm: auth::STAFF_READ,
                },
            )],
        )
        .route(
            "/api/v1/workers/{worker_id}/profile",
            put(set_profile),
            &[(Method::PUT, Access::Firm(auth::STAFF))],
        )
        .route(
            "/api/v1/workers/{worker_id}/presence",
            post(set_presence),
            &[(Method::POST, Access::OwnWorker { firm: auth::STAFF })],
        )
        .route(
            "/api/v1/workers/{worker_id}/qualifications",
            post(add_qualification),
            &[(Method::POST, Access::Firm(auth::ADMINS))],
        )
        .route(
            "/api/v1/workers/{worker_id}/skills/{skill}",
            put(set_skill),
            &[(Method::PUT, Access::Firm(auth::STAFF))],
        )
        .route(
            "/api/v1/workers/{worker_id}/next",
            post(get_next),
            &[(Method::POST, Access::OwnWorker { firm: auth::STAFF })],
        )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewWorkerDto {
    name: String,
    site_id: Option<String>,
    designation: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ShiftDto {
    /// 1 (Monday) to 7 (Sunday).
    weekday: i8,
    /// Local start, `HH:MM`.
    start: String,
    minutes: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChannelCapDto {
    channel: String,
    units_max: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BreakDto {
    /// Minutes after the start of each shift block.
    after_minutes: i64,
    minutes: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileDto {
    languages: Vec<String>,
    time_zone: String,
    shifts: Vec<ShiftDto>,
    capacity_units: u32,
    #[serde(default)]
    excluded_clients: Vec<String>,
    /// Caps per channel within `capacity_units`.
    #[serde(default)]
    channel_caps: Vec<ChannelCapDto>,
    /// Free attributes target expressions read as `worker.attr.<key>`.
    #[serde(default)]
    attributes: std::collections::BTreeMap<String, String>,
    /// Breaks in every shift block; shifts put the worker on break then.
    #[serde(default)]
    breaks: Vec<BreakDto>,
}

/// The longest break accepted, in minutes.
const BREAK_MINUTES_MAX: i64 = 240;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PresenceDto {
    presence: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QualificationDto {
    kind: String,
    field: Option<String>,
    issuer: String,
    valid_from: String,
    valid_until: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SkillDto {
    level: u8,
    #[serde(default)]
    growing: bool,
}

fn designation(text: &str) -> ApiResult<Designation> {
    [
        Designation::Analyst,
        Designation::SeniorAnalyst,
        Designation::TeamLead,
        Designation::Manager,
    ]
    .into_iter()
    .find(|d| d.code() == text)
    .ok_or_else(|| {
        ApiError::invalid(format!(
            "unknown designation {text:?}: use analyst, senior_analyst, team_lead or manager"
        ))
    })
}

fn timestamp(field: &str, text: &str) -> ApiResult<Timestamp> {
    text.parse()
        .map_err(|_| ApiError::invalid(format!("{field} must be an RFC 3339 time")))
}

async fn create_worker(
    State(state): State<AppState>,
    Json(body): Json<NewWorkerDto>,
) -> ApiResult<(StatusCode, axum::Json<Value>)> {
    let name = check_text("name", &body.name, TEXT_LEN_MAX)?;
    let site_id: Option<SiteId> = body.site_id.as_deref().map(parse_id).transpose()?;
    let designation = designation(body.designation.as_deref().unwrap_or("analyst"))?;
    let worker = state
        .store
        .create_worker(
            WorkerId::from_uuid(state.new_id()),
            name,
            site_id,
            designation,
            state.now(),
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({
            "id": worker.id.to_string(),
            "name": worker.name,
            "site_id": worker.site_id.map(|s| s.to_string()),
            "designation": worker.designation.code(),
            "created_at": worker.created_at.to_string(),
        })),
    ))
}

async fn get_worker(
    State(state): State<AppState>,
    Path(worker_id): Path<String>,
) -> ApiResult<axum::Json<Value>> {
    let worker_id: WorkerId = parse_id(&worker_id)?;
    let worker = state.store.worker(worker_id).await?;
    let routing = match state.store.routed_worker(worker_id).await {
        Ok(routed) => Some(routed),
        Err(StoreError::NotFound { .. }) => None,
        Err(err) => return Err(err.into()),
    };
    let (units_used, _) = state.store.worker_units(worker_id).await?;
    Ok(axum::Json(json!({
        "id": worker.id.to_string(),
        "name": worker.name,
        "site_id": worker.site_id.map(|s| s.to_string()),
        "designation": worker.designation.code(),
        "created_at": worker.created_at.to_string(),
        "units_used": units_used,
        "routing": routing.as_ref().map(profile_json),
    })))
}

fn profile_json(routed: &RoutedWorker) -> Value {
    let p = &routed.profile;
    json!({
        "presence": routed.presence.code(),
        "presence_since": routed.presence_since.to_string(),
        "presence_by": routed.presence_by.code(),
        "languages": p.languages,
        "time_zone": p.shift.time_zone.iana_name(),
        "shifts": p.shift.weekly.iter().map(|b| json!({
            "weekday": b.weekday.to_monday_one_offset(),
            "start": format!("{:02}:{:02}", b.start.hour(), b.start.minute()),
            "minutes": b.length.as_mins(),
        })).collect::<Vec<_>>(),
        "capacity_units": p.capacity.units_max,
        "channel_caps": p.capacity.channels.iter().map(|c| json!({
            "channel": c.channel, "units_max": c.units_max,
        })).collect::<Vec<_>>(),
        "attributes": p.attributes.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect::<serde_json::Map<String, Value>>(),
        "breaks": p.shift.breaks.iter().map(|b| json!({
            "after_minutes": b.after.as_mins(), "minutes": b.length.as_mins(),
        })).collect::<Vec<_>>(),
        "excluded_clients": p.excluded_clients.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
        "qualifications": p.qualifications.iter().map(|q| json!({
            "kind": q.kind, "field": q.field, "issuer": q.issuer,
            "valid_from": q.valid_from.to_string(),
            "valid_until": q.valid_until.map(|t| t.to_string()),
        })).collect::<Vec<_>>(),
        "skills": p.skills.iter().map(|s| json!({
            "skill": s.name, "level": s.level, "growing": p.growth_skills.contains(&s.name),
        })).collect::<Vec<_>>(),
    })
}

async fn set_profile(
    State(state): State<AppState>,
    Path(worker_id): Path<String>,
    Json(body): Json<ProfileDto>,
) -> ApiResult<StatusCode> {
    let worker_id: WorkerId = parse_id(&worker_id)?;
    if body.languages.len() > LIST_LEN_MAX
        || body.shifts.len() > LIST_LEN_MAX
        || body.excluded_clients.len() > LIST_LEN_MAX
    {
        return Err(ApiError::invalid(format!(
            "languages, shifts and excluded_clients take at most {LIST_LEN_MAX} entries each"
        )));
    }
    if jiff::tz::TimeZone::get(&body.time_zone).is_err() {
        return Err(ApiError::invalid(format!(
            "unknown time zone {:?}: use an IANA name such as Asia/Kolkata",
            body.time_zone
        )));
    }
    let mut shifts = Vec::with_capacity(body.shifts.len());
    for s in &body.shifts {
        let weekday = Weekday::from_monday_one_offset(s.weekday)
            .map_err(|_| ApiError::invalid("shift weekday must be 1 (Monday) to 7 (Sunday)"))?;
        let start: Time = s
            .start
            .parse()
            .map_err(|_| ApiError::invalid("shift start must be HH:MM"))?;
        if !(1..=24 * 60).contains(&s.minutes) {
            return Err(ApiError::invalid(
                "shift minutes must be between 1 and 1440",
            ));
        }
        shifts.push(ShiftBlock {
            weekday,
            start,
            length: SignedDuration::from_mins(s.minutes),
        });
    }
    let excluded_clients = body
        .excluded_clients
        .iter()
        .map(|c| parse_id::<ClientId>(c))
        .collect::<ApiResult<Vec<_>>>()?;
    if body.channel_caps.len() > LIST_LEN_MAX
        || body.attributes.len() > LIST_LEN_MAX
        || body.breaks.len() > LIST_LEN_MAX
    {
        return Err(ApiError::invalid(format!(
            "channel_caps, attributes and breaks take at most {LIST_LEN_MAX} entries each"
        )));
    }
    let mut channel_caps: Vec<ChannelCap> = Vec::with_capacity(body.channel_caps.len());
    for cap in &body.channel_caps {
        let channel = check_text("channel", &cap.channel, TEXT_LEN_MAX)?;
        if channel_caps.iter().any(|c| c.channel == channel) {
            return Err(ApiError::invalid(format!(
                "channel {channel:?} is capped twice"
            )));
        }
        channel_caps.push(ChannelCap {
            channel: channel.to_string(),
            units_max: cap.units_max,
        });
    }
    let mut attributes = Vec::with_capacity(body.attributes.len());
    for (key, value) in &body.attributes {
        let key = check_text("attribute name", key, TEXT_LEN_MAX)?;
        let value = check_text("attribute value", value, TEXT_LEN_MAX)?;
        attributes.push((key.to_string(), value.to_string()));
    }
    let mut breaks = Vec::with_capacity(body.breaks.len());
    for b in &body.breaks {
        if !(0..24 * 60).contains(&b.after_minutes) || !(1..=BREAK_MINUTES_MAX).contains(&b.minutes)
        {
            return Err(ApiError::invalid(format!(
                "a break starts 0 to 1439 minutes into the shift and lasts 1 to {BREAK_MINUTES_MAX} minutes"
            )));
        }
        breaks.push(ShiftBreak {
            after: SignedDuration::from_mins(b.after_minutes),
            length: SignedDuration::from_mins(b.minutes),
        });
    }
    let routing = WorkerRouting {
        languages: body.languages,
        time_zone: body.time_zone,
        shifts,
        capacity_units: body.capacity_units,
        excluded_clients,
    };
    let extras = WorkerRoutingExtras {
        channel_caps,
        attributes,
        breaks,
    };
    state
        .store
        .set_worker_profile(worker_id, &routing, &extras, state.now())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn set_presence(
    State(state): State<AppState>,
    Path(worker_id): Path<String>,
    Json(body): Json<PresenceDto>,
) -> ApiResult<StatusCode> {
    let worker_id: WorkerId = parse_id(&worker_id)?;
    let presence = Presence::parse(&body.presence)
        .ok_or_else(|| ApiError::invalid("presence must be available, busy, break or offline"))?;
    state
        .store
        .set_presence(worker_id, presence, state.now())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn add_qualification(
    State(state): State<AppState>,
    Path(worker_id): Path<String>,
    Json(body): Json<QualificationDto>,
) -> ApiResult<StatusCode> {
    let worker_id: WorkerId = parse_id(&worker_id)?;
    let q = Qualification {
        kind: check_text("kind", &body.kind, TEXT_LEN_MAX)?.to_string(),
        field: body
            .field
            .as_deref()
            .map(|f| check_text("field", f, TEXT_LEN_MAX).map(str::to_string))
            .transpose()?,
        issuer: check_text("issuer", &body.issuer, TEXT_LEN_MAX)?.to_string(),
        valid_from: timestamp("valid_from", &body.valid_from)?,
        valid_until: body
            .valid_until
            .as_deref()
            .map(|t| timestamp("valid_until", t))
            .transpose()?,
    };
    state
        .store
        .add_qualification(worker_id, state.new_id(), &q, state.now())
        .await?;
    Ok(StatusCode::CREATED)
}

async fn set_skill(
    State(state): State<AppState>,
    Path((worker_id, skill)): Path<(String, String)>,
    Json(body): Json<SkillDto>,
) -> ApiResult<StatusCode> {
    let worker_id: WorkerId = parse_id(&worker_id)?;
    let name = check_text("skill", &skill, TEXT_LEN_MAX)?.to_string();
    if !(1..=SKILL_LEVEL_MAX).contains(&body.level) {
        return Err(ApiError::invalid(format!(
            "level must be between 1 and {SKILL_LEVEL_MAX}"
        )));
    }
    let growing = match body.growing {
        true => GrowthFlag::Growing,
        false => GrowthFlag::Settled,
    };
    state
        .store
        .set_skill(
            worker_id,
            &Skill {
                name,
                level: body.level,
            },
            growing,
            state.now(),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A task *Get next* gave a worker, with why.
pub(crate) struct NextTask {
    pub task: karya_core::model::Task,
    pub assignment_id: AssignmentId,
    /// Why this task went to this worker, as shown over the API.
    pub explanation: Value,
}

/// *Get next*: assigns the best ready task for the worker, or answers 204 when none suits.
async fn get_next(
    State(state): State<AppState>,
    Path(worker_id): Path<String>,
) -> ApiResult<Response> {
    let worker_id: WorkerId = parse_id(&worker_id)?;
    match next_task(&state, worker_id).await? {
        Some(next) => Ok(axum::Json(json!({
            "task_id": next.task.id.to_string(),
            "client_id": next.task.client_id.to_string(),
            "work_item_id": next.task.work_item_id.to_string(),
            "step": next.task.step,
            "state": next.task.state.code(),
            "assignment_id": next.assignment_id.to_string(),
            "explanation": next.explanation,
        }))
        .into_response()),
        None => Ok(StatusCode::NO_CONTENT.into_response()),
    }
}

/// Ranks the ready tasks for the worker and claims the best one still free, storing the
/// explanation of the assignment; `None` when no task suits. The API and the web UI share it.
pub(crate) async fn next_task(
    state: &AppState,
    worker_id: WorkerId,
) -> ApiResult<Option<NextTask>> {
    let now = state.now();
    let held = state.store.worker_holdings(worker_id).await?;
    // What the router already offered this worker is theirs to take first: pressing *Get
    // next* accepts the oldest open offer (the offer's explanation stands for the assignment).
    // The holdings count the open offers, so they are read only when there are some.
    let offers = match held.open_offers {
        0 => Vec::new(),
        _ => state.store.open_offers(worker_id).await?,
    };
    for offer in offers {
        if offer.expires_at <= now {
            continue;
        }
        let assignment_id = AssignmentId::from_uuid(state.new_id());
        match state
            .store
            .accept_offer(worker_id, offer.id, assignment_id, now)
            .await
        {
            Ok(task) => {
                let stored = state
                    .store
                    .tenant(task.client_id)
                    .explanations(task.id)
                    .await?;
                let explanation = stored
                    .last()
                    .and_then(|e| serde_json::from_str::<Value>(&e.explanation).ok())
                    .unwrap_or(Value::Null);
                return Ok(Some(NextTask {
                    task,
                    assignment_id,
                    explanation,
                }));
            }
            // Expired or ended meanwhile: rank the ready work instead.
            Err(
                karya_store::StoreError::Conflict { .. } | karya_store::StoreError::Rejected { .. },
            ) => continue,
            Err(err) => return Err(err.into()),
        }
    }
    // Load.
    let routed = state.store.routed_worker(worker_id).await?;
    let routable = state.store.routable_tasks().await?;
    let queries: Vec<CaseQuery> = routable
        .iter()
        .map(|r| CaseQuery {
            task_id: r.task.id,
            work_item_id: r.task.work_item_id,
            step: r.task.step.clone(),
        })
        .collect();
    let (mut cases, barred) = state.store.worker_cases(worker_id, &queries).await?;
    let load = WorkerLoad {
        presence: routed.presence,
        units_used: held.units.used,
        channel_units: held.channels,
        last_assigned_at: None,
        working_since: Some(routed.presence_since),
    };
    let standard = Arc::new(RoutingWorkflow::standard());
    let default_req = Arc::new(Requirements::any("default", 1, DEFAULT_HANDLING));
    let open: Vec<(OpenTask, Arc<RoutingWorkflow>)> = routable
        .iter()
        .map(|r| {
            let (req, flow) = r
                .routing
                .clone()
                .unwrap_or_else(|| (default_req.clone(), standard.clone()));
            let case = cases.remove(&r.task.id).unwrap_or_default();
            let mut excluded_workers = case.excluded_workers;
            if barred.contains(&r.task.id) {
                excluded_workers.push(worker_id);
            }
            let task = OpenTask {
                id: r.task.id,
                client_id: r.task.client_id,
                engagement_id: r.engagement_id,
                priority: r.task.priority,
                created_at: r.task.created_at,
                due_at: r.sla_due_at,
                requirements: req,
                preferred_worker: case.preferred_worker,
                excluded_workers,
                attributes: Vec::new(),
                step: r.task.step.clone(),
                service_line: Some(r.service_line),
            };
            (task, flow)
        })
        .collect();
    let waiting: Vec<Waiting<'_>> = open
        .iter()
        .map(|(task, flow)| {
            let (step_idx, _) = flow.step_at(now.duration_since(task.created_at));
            Waiting {
                task,
                step_idx,
                step: &flow.steps[step_idx],
            }
        })
        .collect();
    // Decide.
    let candidate = Candidate {
        profile: &routed.profile,
        load: &load,
        shift: routed.profile.shift.window_at(now),
    };
    let roll = (state.new_id().as_u128() % 1000) as u16;
    let ranked = rank_for_worker(candidate, &waiting, now, &RoutingConfig::default(), roll);
    // Apply: one transaction claims the best task of the ranking still ready, so workers who
    // ranked the same backlog alike do not queue up failing on its head. The load read above
    // only ranks: the claim re-checks capacity under the worker's row lock, so concurrent
    // *Get next* calls (on any node) cannot overfill the worker.
    let ranked: Vec<_> = ranked
        .into_iter()
        .take(karya_store::RANKED_CLAIM_MAX)
        .map(|(idx, explanation)| (waiting[idx].task, explanation, state.new_id()))
        .collect();
    let offered: Vec<karya_store::RankedTask<'_>> = ranked
        .iter()
        .map(|(task, explanation, id)| karya_store::RankedTask {
            client_id: task.client_id,
            task_id: task.id,
            explanation,
            explanation_id: *id,
        })
        .collect();
    let assignment_id = AssignmentId::from_uuid(state.new_id());
    let (idx, claim) = state
        .store
        .claim_ranked(worker_id, &offered, assignment_id, now)
        .await?;
    match claim {
        Claim::Assigned(task) => Ok(Some(NextTask {
            task,
            assignment_id,
            explanation: explanation_json(&ranked[idx].1),
        })),
        Claim::Taken | Claim::Excluded | Claim::AtCapacity { .. } => Ok(None),
    }
}
