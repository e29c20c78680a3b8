//! What routing keeps: workers' qualifications, skills, presence, shifts, capacity and
//! conflicts; each engagement's requirements and workflow; and the explanation of every
//! routing decision.
//!
//! Worker records belong to the firm and are written on the firm chain; engagement routing
//! and explanations belong to a client and are tenant-scoped. Small lists are stored as JSON
//! text whose shape this module writes and checks on reading; it maps them to `karya-core`
//! types by hand, as the rest of the store does.

use std::sync::Arc;

use jiff::civil::{Time, Weekday};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use karya_core::event::EventKind;
use karya_core::id::{AssignmentId, ClientId, EngagementId, SiteId, TaskId, WorkerId};
use karya_core::model::Task;
use karya_core::routing::expr;
use karya_core::routing::{
    Explanation, Requirements, RoutingWorkflow, SkillRequirement, WorkflowStep,
};
use karya_core::service_line::ServiceLine;
use karya_core::workforce::{
    Capacity, ChannelCap, Leave, Presence, PresenceSource, Qualification, ShiftBlock, ShiftBreak,
    ShiftPattern, Skill, WorkerProfile,
};
use serde_json::{json, Value};

use crate::clients::parse_designation;
use crate::events::{append, FIRM_CHAIN};
use crate::rows::{get, is_foreign_key_violation, parse, timestamp, us};
use crate::{Engine, Result, Store, StoreError, Tenant};

/// Most ready tasks one *Get next* ranks. The page is taken in queue order (priority, then
/// age), so the most urgent work is always among them; the bound keeps one request's work and
/// memory small whatever the backlog.
pub const ROUTABLE_PAGE_MAX: i64 = 200;

/// The scalar parts of a worker's routing profile.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerRouting {
    pub languages: Vec<String>,
    /// IANA time zone name of the worker's shifts.
    pub time_zone: String,
    pub shifts: Vec<ShiftBlock>,
    pub capacity_units: u32,
    pub excluded_clients: Vec<ClientId>,
}

/// The parts of a worker's routing profile beyond the scalars: per-channel capacity caps,
/// free attributes for target expressions, and the breaks of their shifts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WorkerRoutingExtras {
    pub channel_caps: Vec<ChannelCap>,
    pub attributes: Vec<(String, String)>,
    pub breaks: Vec<ShiftBreak>,
}

/// A worker as the router needs them, with presence.
#[derive(Debug, Clone, PartialEq)]
pub struct RoutedWorker {
    pub profile: WorkerProfile,
    pub presence: Presence,
    pub presence_since: Timestamp,
    /// Who set the presence last: the worker or their shift.
    pub presence_by: PresenceSource,
}

/// A ready task with its engagement's routing (if the engagement has any).
#[derive(Debug, Clone)]
pub struct RoutableTask {
    pub task: Task,
    pub engagement_id: EngagementId,
    pub routing: Option<EngagementRouting>,
    /// When the work item's resolution falls due, while its SLA clock runs: the router's
    /// urgency term is computed from it.
    pub sla_due_at: Option<Timestamp>,
    /// The engagement's service line (the router's pools and reports are per line).
    pub service_line: ServiceLine,
}

/// An engagement's requirements and workflow, shared by its tasks.
pub type EngagementRouting = (Arc<Requirements>, Arc<RoutingWorkflow>);

/// A stored explanation.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredExplanation {
    pub task_id: TaskId,
    pub worker_id: Option<WorkerId>,
    pub assignment_id: Option<AssignmentId>,
    pub path: String,
    pub rule: String,
    /// The whole explanation, JSON text.
    pub explanation: String,
    pub decided_at: Timestamp,
}

fn bad(what: &str, detail: impl std::fmt::Display) -> StoreError {
    anyhow::anyhow!("stored {what} does not parse: {detail}").into()
}

fn strings(value: &Value, what: &str) -> Result<Vec<String>> {
    value
        .as_array()
        .ok_or_else(|| bad(what, "not a list"))?
        .iter()
        .map(|v| {
            v.as_str()
                .map(str::to_string)
                .ok_or_else(|| bad(what, "not a string"))
        })
        .collect()
}

fn ids<T: std::str::FromStr>(value: &Value, what: &str) -> Result<Vec<T>>
where
    T::Err: std::fmt::Display,
{
    strings(value, what)?
        .iter()
        .map(|s| s.parse().map_err(|e| bad(what, e)))
        .collect()
}

/// `[[weekday 1-7, minute of day, minutes], ...]`.
fn shifts_json(shifts: &[ShiftBlock]) -> Value {
    Value::Array(
        shifts
            .iter()
            .map(|b| {
                json!([
                    b.weekday.to_monday_one_offset(),
                    i64::from(b.start.hour()) * 60 + i64::from(b.start.minute()),
                    b.length.as_mins()
                ])
            })
            .collect(),
    )
}

pub(crate) fn shifts_of(text: &str) -> Result<Vec<ShiftBlock>> {
    let value: Value = serde_json::from_str(text).map_err(|e| bad("shifts", e))?;
    let rows = value
        .as_array()
        .ok_or_else(|| bad("shifts", "not a list"))?;
    rows.iter()
        .map(|row| {
            let n = |i: usize| {
                row.get(i)
                    .and_then(Value::as_i64)
                    .ok_or_else(|| bad("shifts", "not [weekday, minute, length]"))
            };
            let weekday =
                Weekday::from_monday_one_offset(n(0)? as i8).map_err(|e| bad("shifts", e))?;
            let minute = n(1)?;
            let start = Time::new((minute / 60) as i8, (minute % 60) as i8, 0, 0)
                .map_err(|e| bad("shifts", e))?;
            Ok(ShiftBlock {
                weekday,
                start,
                length: SignedDuration::from_mins(n(2)?),
            })
        })
        .collect()
}

/// `[{"channel": .., "units_max": ..}, ...]`.
fn caps_json(caps: &[ChannelCap]) -> Value {
    Value::Array(
        caps.iter()
            .map(|c| json!({"channel": c.channel, "units_max": c.units_max}))
            .collect(),
    )
}

pub(crate) fn caps_of(text: &str) -> Result<Vec<ChannelCap>> {
    let value: Value = serde_json::from_str(text).map_err(|e| bad("channel_caps", e))?;
    value
        .as_array()
        .ok_or_else(|| bad("channel_caps", "not a list"))?
        .iter()
        .map(|c| {
            Ok(ChannelCap {
                channel: c["channel"]
                    .as_str()
                    .ok_or_else(|| bad("channel_caps", "channel"))?
                    .to_string(),
                units_max: c["units_max"]
                    .as_u64()
                    .ok_or_else(|| bad("channel_caps", "units_max"))?
                    as u32,
            })
        })
        .collect()
}

/// `{"key": "value", ...}`.
fn attributes_json(attributes: &[(String, String)]) -> Value {
    Value::Object(
        attributes
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect(),
    )
}

fn attributes_of(text: &str) -> Result<Vec<(String, String)>> {
    let value: Value = serde_json::from_str(text).map_err(|e| bad("attributes", e))?;
    value
        .as_object()
        .ok_or_else(|| bad("attributes", "not an object"))?
        .iter()
        .map(|(k, v)| {
            Ok((
                k.clone(),
                v.as_str()
                    .ok_or_else(|| bad("attributes", "not a string"))?
                    .to_string(),
            ))
        })
        .collect()
}

/// `[[minutes after the block's start, minutes], ...]`.
fn breaks_json(breaks: &[ShiftBreak]) -> Value {
    Value::Array(
        breaks
            .iter()
            .map(|b| json!([b.after.as_mins(), b.length.as_mins()]))
            .collect(),
    )
}

pub(crate) fn breaks_of(text: &str) -> Result<Vec<ShiftBreak>> {
    let value: Value = serde_json::from_str(text).map_err(|e| bad("breaks", e))?;
    value
        .as_array()
        .ok_or_else(|| bad("breaks", "not a list"))?
        .iter()
        .map(|b| {
            let n = |i: usize| {
                b.get(i)
                    .and_then(Value::as_i64)
                    .ok_or_else(|| bad("breaks", "not [after, length]"))
            };
            Ok(ShiftBreak {
                after: SignedDuration::from_mins(n(0)?),
                length: SignedDuration::from_mins(n(1)?),
            })
        })
        .collect()
}

/// The stored shape of requirements.
pub fn requirements_json(req: &Requirements) -> Value {
    json!({
        "qualifications": req.qualifications,
        "skills": req.skills.iter().map(|s| json!({"skill": s.skill, "level_min": s.level_min, "optional": s.optional})).collect::<Vec<_>>(),
        "languages": req.languages,
        "allowed_sites": req.allowed_sites.as_ref().map(|sites| sites.iter().map(|s| s.to_string()).collect::<Vec<_>>()),
        "home_sites": req.home_sites.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        "target": req.target.as_ref().map(|t| t.to_string()),
        "channel": req.channel,
        "weight": req.weight,
        "expected_handling_s": req.expected_handling.as_secs(),
    })
}

/// The joins that find a task's (`t`) routing: its work item (`w`), its engagement's routing
/// (`er`) and its pack step's (`sr`).
pub(crate) const TASK_ROUTING_JOINS: &str = "JOIN work_items w ON w.id = t.work_item_id
    LEFT JOIN engagement_routing er ON er.engagement_id = w.engagement_id
    LEFT JOIN step_routing sr ON sr.engagement_id = w.engagement_id AND sr.step = t.step";
/// The requirements a task (`t`, joined by [`TASK_ROUTING_JOINS`]) is routed and weighed by:
/// its pack step's own, else its engagement's.
pub(crate) const TASK_REQUIREMENTS: &str = "COALESCE(sr.requirements, er.requirements)";

/// Most distinct stored texts kept parsed; past it the cache starts over. Engagements and pack
/// steps hold a few hundred requirement sets at most, so a full cache is rare.
const PARSED_CACHE_MAX: usize = 4_096;

/// Parsed routing texts, keyed by the stored text. Parsing a requirement set compiles its CEL
/// target, which costs far more than the lookup; every *Get next* and capacity check reads the
/// same few texts over and over. The key is the whole text, so an edited requirement set is a
/// new entry and can never be served stale.
struct ParsedCache<T> {
    entries: std::sync::Mutex<std::collections::HashMap<String, Arc<T>>>,
}

impl<T> ParsedCache<T> {
    fn new() -> ParsedCache<T> {
        ParsedCache {
            entries: std::sync::Mutex::new(std::collections::HashMap::new()),
        }
    }

    fn get_or_parse(&self, text: &str, parse: impl FnOnce(&str) -> Result<T>) -> Result<Arc<T>> {
        if let Some(found) = self.lock().get(text) {
            return Ok(found.clone());
        }
        let parsed = Arc::new(parse(text)?);
        let mut entries = self.lock();
        if entries.len() >= PARSED_CACHE_MAX {
            entries.clear();
        }
        entries.insert(text.to_string(), parsed.clone());
        Ok(parsed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, Arc<T>>> {
        // A panic while holding the lock leaves only whole entries behind.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

static REQUIREMENTS_PARSED: std::sync::LazyLock<ParsedCache<Requirements>> =
    std::sync::LazyLock::new(ParsedCache::new);
static WORKFLOWS_PARSED: std::sync::LazyLock<ParsedCache<RoutingWorkflow>> =
    std::sync::LazyLock::new(ParsedCache::new);

/// [`requirements_of`] through the process-wide cache of parsed texts.
pub(crate) fn requirements_shared(text: &str) -> Result<Arc<Requirements>> {
    REQUIREMENTS_PARSED.get_or_parse(text, requirements_of)
}

/// [`workflow_of`] through the process-wide cache of parsed texts.
pub(crate) fn workflow_shared(text: &str) -> Result<Arc<RoutingWorkflow>> {
    WORKFLOWS_PARSED.get_or_parse(text, workflow_of)
}

pub(crate) fn requirements_of(text: &str) -> Result<Requirements> {
    let v: Value = serde_json::from_str(text).map_err(|e| bad("requirements", e))?;
    let what = "requirements";
    let skills = v["skills"]
        .as_array()
        .ok_or_else(|| bad(what, "skills not a list"))?
        .iter()
        .map(|s| {
            Ok(SkillRequirement {
                skill: s["skill"]
                    .as_str()
                    .ok_or_else(|| bad(what, "skill"))?
                    .to_string(),
                level_min: s["level_min"]
                    .as_u64()
                    .ok_or_else(|| bad(what, "level_min"))? as u8,
                optional: s["optional"].as_bool().unwrap_or(false),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let target = match v["target"].as_str() {
        None => None,
        Some(text) => Some(expr::parse(text).map_err(|e| bad(what, e))?),
    };
    Ok(Requirements {
        qualifications: strings(&v["qualifications"], what)?,
        skills,
        languages: strings(&v["languages"], what)?,
        allowed_sites: match &v["allowed_sites"] {
            Value::Null => None,
            sites => Some(ids::<SiteId>(sites, what)?),
        },
        home_sites: ids::<SiteId>(&v["home_sites"], what)?,
        target,
        channel: v["channel"]
            .as_str()
            .ok_or_else(|| bad(what, "channel"))?
            .to_string(),
        weight: v["weight"].as_u64().ok_or_else(|| bad(what, "weight"))? as u32,
        expected_handling: SignedDuration::from_secs(
            v["expected_handling_s"]
                .as_i64()
                .ok_or_else(|| bad(what, "expected_handling_s"))?,
        ),
    })
}

/// The stored shape of a workflow.
pub fn workflow_json(workflow: &RoutingWorkflow) -> Value {
    Value::Array(
        workflow
            .steps
            .iter()
            .map(|s| {
                json!({
                    "name": s.name,
                    "drop_optional_skills": s.drop_optional_skills,
                    "widen_sites": s.widen_sites,
                    "designation_min": s.designation_min.map(|d| d.code()),
                    "escalate": s.escalate,
                    "timeout_s": s.timeout.map(|t| t.as_secs()),
                })
            })
            .collect(),
    )
}

pub(crate) fn workflow_of(text: &str) -> Result<RoutingWorkflow> {
    let v: Value = serde_json::from_str(text).map_err(|e| bad("workflow", e))?;
    let steps = v
        .as_array()
        .ok_or_else(|| bad("workflow", "not a list"))?
        .iter()
        .map(|s| {
            let designation_min = match s["designation_min"].as_str() {
                None => None,
                Some(code) => Some(parse_designation(code).ok_or_else(|| bad("workflow", code))?),
            };
            Ok(WorkflowStep {
                name: s["name"].as_str().unwrap_or_default().to_string(),
                drop_optional_skills: s["drop_optional_skills"].as_bool().unwrap_or(false),
                widen_sites: s["widen_sites"].as_bool().unwrap_or(false),
                designation_min,
                escalate: s["escalate"].as_bool().unwrap_or(false),
                timeout: s["timeout_s"].as_i64().map(SignedDuration::from_secs),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(RoutingWorkflow { steps })
}

/// The stored shape of an explanation: every field, every score term by name.
pub fn explanation_json(e: &Explanation) -> Value {
    json!({
        "task_id": e.task_id.to_string(),
        "decided_at": e.decided_at.to_string(),
        "path": e.path.code(),
        "rule": e.rule.code(),
        "step": {"index": e.step_idx, "name": e.step_name},
        "candidates": e.candidates,
        "eligible": e.eligible,
        "rejected": e.rejected.iter().map(|(r, n)| json!({"reason": r.code(), "count": n})).collect::<Vec<_>>(),
        "winner": e.winner.map(|w| w.to_string()),
        "score": e.score.map(|s| json!({
            "total": s.total,
            "terms": s.terms.iter().map(|(t, p)| json!({"term": t.code(), "points": p})).collect::<Vec<_>>(),
        })),
        "runner_up_total": e.runner_up_total,
        "review_required": e.review_required,
        "truncated": e.truncated,
    })
}

impl Store {
    /// Sets the scalar parts of a worker's routing profile (languages, shifts, capacity,
    /// conflicts). A worker without a profile is offline and never routed to.
    pub async fn set_worker_routing(
        &self,
        worker_id: WorkerId,
        routing: &WorkerRouting,
        now: Timestamp,
    ) -> Result<()> {
        self.set_worker_profile(worker_id, routing, &WorkerRoutingExtras::default(), now)
            .await
    }

    /// Sets a worker's whole routing profile: the scalars, channel caps, attributes and
    /// breaks, in one transaction with its event.
    pub async fn set_worker_profile(
        &self,
        worker_id: WorkerId,
        routing: &WorkerRouting,
        extras: &WorkerRoutingExtras,
        now: Timestamp,
    ) -> Result<()> {
        TimeZone::get(&routing.time_zone).map_err(|_| StoreError::Rejected {
            message: format!("unknown time zone {:?}", routing.time_zone),
        })?;
        let mut tx = crate::tx::Tx::begin(self).await?;
        let languages = json!(routing.languages).to_string();
        let shifts = shifts_json(&routing.shifts).to_string();
        let excluded = json!(routing
            .excluded_clients
            .iter()
            .map(|c| c.to_string())
            .collect::<Vec<_>>())
        .to_string();
        let caps = caps_json(&extras.channel_caps);
        let attributes = attributes_json(&extras.attributes);
        let breaks = breaks_json(&extras.breaks);
        let updated = sqlx::query(
            "UPDATE worker_routing SET languages = $1, time_zone = $2, shifts = $3, capacity_units = $4,
             excluded_clients = $5, updated_at_us = $6 WHERE worker_id = $7",
        )
        .bind(&languages)
        .bind(&routing.time_zone)
        .bind(&shifts)
        .bind(i64::from(routing.capacity_units))
        .bind(&excluded)
        .bind(us(now))
        .bind(worker_id.to_string())
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() == 0 {
            let inserted = sqlx::query(
                "INSERT INTO worker_routing (worker_id, presence, presence_since_us, languages, time_zone, shifts,
                 capacity_units, excluded_clients, updated_at_us) VALUES ($1, 'offline', $2, $3, $4, $5, $6, $7, $2)",
            )
            .bind(worker_id.to_string())
            .bind(us(now))
            .bind(&languages)
            .bind(&routing.time_zone)
            .bind(&shifts)
            .bind(i64::from(routing.capacity_units))
            .bind(&excluded)
            .execute(&mut *tx)
            .await;
            match inserted {
                Err(err) if is_foreign_key_violation(&err) => {
                    return Err(StoreError::not_found("worker", worker_id))
                }
                other => other?,
            };
        }
        sqlx::query(
            "UPDATE worker_routing SET channel_caps = $1, attributes = $2, breaks = $3 WHERE worker_id = $4",
        )
        .bind(caps.to_string())
        .bind(attributes.to_string())
        .bind(breaks.to_string())
        .bind(worker_id.to_string())
        .execute(&mut *tx)
        .await?;
        append(
            &mut tx,
            FIRM_CHAIN,
            EventKind::WorkerProfileChanged,
            &worker_id.to_string(),
            &json!({"languages": routing.languages, "time_zone": routing.time_zone,
                    "shifts": serde_json::from_str::<Value>(&shifts).unwrap_or_default(),
                    "capacity_units": routing.capacity_units,
                    "excluded_clients": serde_json::from_str::<Value>(&excluded).unwrap_or_default(),
                    "channel_caps": caps, "attributes": attributes, "breaks": breaks}),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records a qualification of a worker.
    pub async fn add_qualification(
        &self,
        worker_id: WorkerId,
        id: uuid::Uuid,
        q: &Qualification,
        now: Timestamp,
    ) -> Result<()> {
        let mut tx = crate::tx::Tx::begin(self).await?;
        let inserted = sqlx::query(
            "INSERT INTO worker_qualifications (id, worker_id, kind, field, issuer, valid_from_us, valid_until_us)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(id.to_string())
        .bind(worker_id.to_string())
        .bind(&q.kind)
        .bind(q.field.clone())
        .bind(&q.issuer)
        .bind(us(q.valid_from))
        .bind(q.valid_until.map(us))
        .execute(&mut *tx)
        .await;
        match inserted {
            Err(err) if is_foreign_key_violation(&err) => {
                return Err(StoreError::not_found("worker", worker_id))
            }
            other => other?,
        };
        append(
            &mut tx,
            FIRM_CHAIN,
            EventKind::WorkerProfileChanged,
            &worker_id.to_string(),
            &json!({"qualification_added": {"id": id.to_string(), "kind": q.kind, "issuer": q.issuer,
                    "valid_from": q.valid_from.to_string(), "valid_until": q.valid_until.map(|t| t.to_string())}}),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Sets a worker's level in a skill (and whether they are building it).
    pub async fn set_skill(
        &self,
        worker_id: WorkerId,
        skill: &Skill,
        growing: GrowthFlag,
        now: Timestamp,
    ) -> Result<()> {
        let mut tx = crate::tx::Tx::begin(self).await?;
        sqlx::query("DELETE FROM worker_skills WHERE worker_id = $1 AND skill = $2")
            .bind(worker_id.to_string())
            .bind(&skill.name)
            .execute(&mut *tx)
            .await?;
        let inserted = sqlx::query(
            "INSERT INTO worker_skills (worker_id, skill, level, growing) VALUES ($1, $2, $3, $4)",
        )
        .bind(worker_id.to_string())
        .bind(&skill.name)
        .bind(i64::from(skill.level))
        .bind(i64::from(growing == GrowthFlag::Growing))
        .execute(&mut *tx)
        .await;
        match inserted {
            Err(err) if is_foreign_key_violation(&err) => {
                return Err(StoreError::not_found("worker", worker_id))
            }
            other => other?,
        };
        append(
            &mut tx,
            FIRM_CHAIN,
            EventKind::WorkerProfileChanged,
            &worker_id.to_string(),
            &json!({"skill": skill.name, "level": skill.level, "growing": growing == GrowthFlag::Growing}),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Changes a worker's presence, as the worker (or a lead for them). Needs a routing
    /// profile.
    pub async fn set_presence(
        &self,
        worker_id: WorkerId,
        presence: Presence,
        now: Timestamp,
    ) -> Result<()> {
        let mut tx = crate::tx::Tx::begin(self).await?;
        let updated = sqlx::query(
            "UPDATE worker_routing SET presence = $1, presence_since_us = $2, presence_by = 'worker'
             WHERE worker_id = $3",
        )
        .bind(presence.code())
        .bind(us(now))
        .bind(worker_id.to_string())
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() == 0 {
            return Err(StoreError::not_found("worker routing profile", worker_id));
        }
        append(
            &mut tx,
            FIRM_CHAIN,
            EventKind::WorkerPresenceChanged,
            &worker_id.to_string(),
            &json!({"presence": presence.code(), "by": PresenceSource::Worker.code()}),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// A worker's whole routing profile with presence.
    pub async fn routed_worker(&self, worker_id: WorkerId) -> Result<RoutedWorker> {
        // One statement: the worker, their routing row, and their qualifications, skills and
        // latest leave as JSON arrays (read on every routing decision and every *Get next*).
        let rows_of = |table_rows: &str, values: &str, order: &str| {
            match self.engine {
            Engine::Sqlite => format!(
                "(SELECT json_group_array(json_array({values})) FROM (SELECT * FROM ({table_rows}) ORDER BY {order}))"
            ),
            Engine::Postgres => format!(
                "(SELECT json_agg(json_build_array({values}) ORDER BY {order})::text FROM ({table_rows}) AS x)"
            ),
        }
        };
        let qualifications = rows_of(
            "SELECT id, kind, field, issuer, valid_from_us, valid_until_us FROM worker_qualifications WHERE worker_id = w.id",
            "kind, field, issuer, valid_from_us, valid_until_us",
            "id",
        );
        let skills = rows_of(
            "SELECT skill, level, growing FROM worker_skills WHERE worker_id = w.id",
            "skill, level, growing",
            "skill",
        );
        // Leave: the latest entries by end, which include every current and future absence.
        let leave = rows_of(
            "SELECT id, from_us, until_us FROM worker_leave WHERE worker_id = w.id ORDER BY until_us DESC, id LIMIT $2",
            "from_us, until_us",
            "until_us DESC, id",
        );
        let row = sqlx::query(&format!(
            "SELECT w.id, w.name, w.site_id, w.designation, w.created_at_us,
                    r.worker_id AS routed, r.presence, r.presence_since_us, r.presence_by, r.languages,
                    r.time_zone, r.shifts, r.capacity_units, r.excluded_clients, r.channel_caps,
                    r.attributes, r.breaks,
                    {qualifications} AS qualifications, {skills} AS skills, {leave} AS leave
             FROM workers w LEFT JOIN worker_routing r ON r.worker_id = w.id WHERE w.id = $1"
        ))
        .bind(worker_id.to_string())
        .bind(crate::leave::LEAVE_MAX)
        .fetch_optional(&self.reader)
        .await?
        .ok_or_else(|| StoreError::not_found("worker", worker_id))?;
        let worker = crate::clients::worker_row(&row)?;
        if get::<Option<String>>(&row, "routed")?.is_none() {
            return Err(StoreError::not_found("worker routing profile", worker_id));
        }
        let presence_text: String = get(&row, "presence")?;
        let presence =
            Presence::parse(&presence_text).ok_or_else(|| bad("presence", &presence_text))?;
        let time_zone: String = get(&row, "time_zone")?;
        let time_zone = TimeZone::get(&time_zone).map_err(|e| bad("time zone", e))?;
        let languages: String = get(&row, "languages")?;
        let languages = strings(
            &serde_json::from_str(&languages).map_err(|e| bad("languages", e))?,
            "languages",
        )?;
        let excluded: String = get(&row, "excluded_clients")?;
        let excluded_clients = ids::<ClientId>(
            &serde_json::from_str(&excluded).map_err(|e| bad("excluded_clients", e))?,
            "excluded_clients",
        )?;
        let shifts: String = get(&row, "shifts")?;
        let capacity_units: i64 = get(&row, "capacity_units")?;
        let presence_by: String = get(&row, "presence_by")?;
        let presence_by =
            PresenceSource::parse(&presence_by).ok_or_else(|| bad("presence_by", &presence_by))?;
        let channel_caps = caps_of(&get::<String>(&row, "channel_caps")?)?;
        let attributes = attributes_of(&get::<String>(&row, "attributes")?)?;
        let breaks = breaks_of(&get::<String>(&row, "breaks")?)?;

        let mut qualifications = Vec::new();
        for q in json_rows(&row, "qualifications")? {
            let text = |n: usize| q.get(n).and_then(Value::as_str).map(str::to_string);
            let micros = |n: usize| q.get(n).and_then(Value::as_i64);
            let from = micros(3).ok_or_else(|| bad("qualification", format!("{q:?}")))?;
            qualifications.push(Qualification {
                kind: text(0).ok_or_else(|| bad("qualification", format!("{q:?}")))?,
                field: text(1),
                issuer: text(2).ok_or_else(|| bad("qualification", format!("{q:?}")))?,
                valid_from: Timestamp::from_microsecond(from).map_err(|e| bad("valid_from", e))?,
                valid_until: micros(4)
                    .map(Timestamp::from_microsecond)
                    .transpose()
                    .map_err(|e| bad("valid_until", e))?,
            });
        }
        let mut skills = Vec::new();
        let mut growth_skills = Vec::new();
        for k in json_rows(&row, "skills")? {
            let name = k
                .first()
                .and_then(Value::as_str)
                .ok_or_else(|| bad("skill", format!("{k:?}")))?;
            let level = k
                .get(1)
                .and_then(Value::as_i64)
                .ok_or_else(|| bad("skill", format!("{k:?}")))?;
            if k.get(2).and_then(Value::as_i64).unwrap_or(0) != 0 {
                growth_skills.push(name.to_string());
            }
            skills.push(Skill {
                name: name.to_string(),
                level: level as u8,
            });
        }
        let mut leave = Vec::new();
        for l in json_rows(&row, "leave")? {
            let micros = |n: usize| {
                let us = l
                    .get(n)
                    .and_then(Value::as_i64)
                    .ok_or_else(|| bad("leave", format!("{l:?}")))?;
                Timestamp::from_microsecond(us).map_err(|e| bad("leave", e))
            };
            leave.push(Leave {
                from: micros(0)?,
                until: micros(1)?,
            });
        }
        leave.reverse();
        Ok(RoutedWorker {
            profile: WorkerProfile {
                id: worker.id,
                site_id: worker.site_id,
                designation: worker.designation,
                languages,
                qualifications,
                skills,
                growth_skills,
                shift: ShiftPattern {
                    weekly: shifts_of(&shifts)?,
                    breaks,
                    leave,
                    ..ShiftPattern::none(time_zone)
                },
                capacity: Capacity {
                    units_max: capacity_units as u32,
                    channels: channel_caps,
                },
                excluded_clients,
                attributes,
            },
            presence,
            presence_since: timestamp(&row, "presence_since_us")?,
            presence_by,
        })
    }

    /// Capacity units and units per channel a worker holds now (active assignments, weighed by
    /// their pack step's requirements, else their engagement's; a task without routing weighs
    /// 1 on `default`).
    pub async fn worker_units(&self, worker_id: WorkerId) -> Result<(u32, Vec<(String, u32)>)> {
        let rows = sqlx::query(&format!(
            "SELECT {TASK_REQUIREMENTS} AS requirements FROM assignments a
             JOIN tasks t ON t.id = a.task_id
             {TASK_ROUTING_JOINS}
             WHERE a.worker_id = $1 AND a.released_at_us IS NULL"
        ))
        .bind(worker_id.to_string())
        .fetch_all(&self.reader)
        .await?;
        let mut total = 0u32;
        let mut channels: Vec<(String, u32)> = Vec::new();
        for row in &rows {
            let text: Option<String> = get(row, "requirements")?;
            let (channel, weight) = match text {
                Some(text) => {
                    let req = requirements_shared(&text)?;
                    (req.channel.clone(), req.weight)
                }
                None => ("default".to_string(), 1),
            };
            total += weight;
            match channels.iter_mut().find(|(c, _)| *c == channel) {
                Some((_, units)) => *units += weight,
                None => channels.push((channel, weight)),
            }
        }
        Ok((total, channels))
    }

    /// Ready tasks across clients in queue order (highest priority, then oldest), at most
    /// [`ROUTABLE_PAGE_MAX`], each with its engagement's routing.
    pub async fn routable_tasks(&self) -> Result<Vec<RoutableTask>> {
        let rows = sqlx::query(&format!(
            "SELECT t.id, t.client_id, t.work_item_id, t.step, t.priority, t.state, t.created_at_us,
                    t.updated_at_us, w.engagement_id, er.requirements, er.workflow,
                    s.resolution_due_at_us, sr.requirements AS step_requirements, e.service_line
             FROM tasks t {TASK_ROUTING_JOINS}
             JOIN engagements e ON e.id = w.engagement_id
             LEFT JOIN sla_states s ON s.work_item_id = t.work_item_id AND s.clock_state = 'running'
             WHERE t.state = 'ready' ORDER BY t.priority DESC, t.created_at_us, t.id LIMIT $1"
        ))
        .bind(ROUTABLE_PAGE_MAX)
        .fetch_all(&self.reader)
        .await?;
        let mut cache: Vec<(EngagementId, Option<EngagementRouting>)> = Vec::new();
        let mut tasks = Vec::with_capacity(rows.len());
        for row in &rows {
            let engagement_id: EngagementId = parse(row, "engagement_id")?;
            // A pack step's own requirements come first, under the engagement's workflow.
            let step_req: Option<String> = get(row, "step_requirements")?;
            let routing = match (step_req, cache.iter().find(|(e, _)| *e == engagement_id)) {
                (Some(req), _) => {
                    let flow: Option<String> = get(row, "workflow")?;
                    let flow = match flow {
                        Some(flow) => workflow_shared(&flow)?,
                        None => Arc::new(RoutingWorkflow::standard()),
                    };
                    Some((requirements_shared(&req)?, flow))
                }
                (None, Some((_, routing))) => routing.clone(),
                (None, None) => {
                    let req: Option<String> = get(row, "requirements")?;
                    let flow: Option<String> = get(row, "workflow")?;
                    let routing = match (req, flow) {
                        (Some(req), Some(flow)) => {
                            Some((requirements_shared(&req)?, workflow_shared(&flow)?))
                        }
                        _ => None,
                    };
                    cache.push((engagement_id, routing.clone()));
                    routing
                }
            };
            let due_us: Option<i64> = get(row, "resolution_due_at_us")?;
            tasks.push(RoutableTask {
                task: crate::work::task_row(row)?,
                engagement_id,
                routing,
                sla_due_at: due_us.and_then(|us| Timestamp::from_microsecond(us).ok()),
                service_line: parse(row, "service_line")?,
            });
        }
        Ok(tasks)
    }
}

/// Whether a worker is building a skill (growth assignments may come to them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrowthFlag {
    Growing,
    Settled,
}

impl Tenant {
    /// Sets what an engagement's tasks require and the workflow that relaxes it.
    pub async fn set_engagement_routing(
        &self,
        engagement_id: EngagementId,
        requirements: &Requirements,
        workflow: &RoutingWorkflow,
        now: Timestamp,
    ) -> Result<()> {
        workflow.validate().map_err(|e| StoreError::Rejected {
            message: e.to_string(),
        })?;
        self.engagement(engagement_id).await?;
        let req = requirements_json(requirements);
        let flow = workflow_json(workflow);
        let mut tx = crate::tx::Tx::begin(&self.store).await?;
        sqlx::query("DELETE FROM engagement_routing WHERE client_id = $1 AND engagement_id = $2")
            .bind(self.client_id.to_string())
            .bind(engagement_id.to_string())
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO engagement_routing (engagement_id, client_id, requirements, workflow, updated_at_us)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(engagement_id.to_string())
        .bind(self.client_id.to_string())
        .bind(req.to_string())
        .bind(flow.to_string())
        .bind(us(now))
        .execute(&mut *tx)
        .await?;
        append(
            &mut tx,
            self.client_id,
            EventKind::EngagementRoutingSet,
            &engagement_id.to_string(),
            &json!({"requirements": req, "workflow": flow}),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// An engagement's routing, or `None` when it has none.
    pub async fn engagement_routing(
        &self,
        engagement_id: EngagementId,
    ) -> Result<Option<(Requirements, RoutingWorkflow)>> {
        self.engagement(engagement_id).await?;
        let row = sqlx::query(
            "SELECT requirements, workflow FROM engagement_routing WHERE client_id = $1 AND engagement_id = $2",
        )
        .bind(self.client_id.to_string())
        .bind(engagement_id.to_string())
        .fetch_optional(&self.store.reader)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let req: String = get(&row, "requirements")?;
        let flow: String = get(&row, "workflow")?;
        Ok(Some((requirements_of(&req)?, workflow_of(&flow)?)))
    }

    /// Stores the explanation of a routing decision about one of this client's tasks.
    pub async fn record_explanation(
        &self,
        id: uuid::Uuid,
        explanation: &Explanation,
        assignment_id: Option<AssignmentId>,
    ) -> Result<()> {
        let mut tx = crate::tx::Tx::begin(&self.store).await?;
        crate::offers::insert_explanation(&mut tx, id, self.client_id, explanation, assignment_id)
            .await?;
        tx.commit().await
    }

    /// The explanations of a task's routing decisions, oldest first.
    pub async fn explanations(&self, task_id: TaskId) -> Result<Vec<StoredExplanation>> {
        self.task(task_id).await?;
        let rows = sqlx::query(
            "SELECT task_id, worker_id, assignment_id, path, rule, explanation, decided_at_us
             FROM routing_explanations WHERE client_id = $1 AND task_id = $2 ORDER BY decided_at_us, id LIMIT $3",
        )
        .bind(self.client_id.to_string())
        .bind(task_id.to_string())
        .bind(i64::from(crate::PAGE_LIMIT_MAX))
        .fetch_all(&self.store.reader)
        .await?;
        rows.iter()
            .map(|row| {
                let worker: Option<String> = get(row, "worker_id")?;
                let assignment: Option<String> = get(row, "assignment_id")?;
                Ok(StoredExplanation {
                    task_id: parse(row, "task_id")?,
                    worker_id: worker
                        .map(|w| w.parse())
                        .transpose()
                        .map_err(|e| bad("worker_id", e))?,
                    assignment_id: assignment
                        .map(|a| a.parse())
                        .transpose()
                        .map_err(|e| bad("assignment_id", e))?,
                    path: get(row, "path")?,
                    rule: get(row, "rule")?,
                    explanation: get(row, "explanation")?,
                    decided_at: timestamp(row, "decided_at_us")?,
                })
            })
            .collect()
    }
}

/// The rows of a JSON array of arrays read into `column` (absent when there were none: SQL's
/// aggregate of no rows is NULL on PostgreSQL).
fn json_rows(row: &sqlx::any::AnyRow, column: &str) -> Result<Vec<Vec<Value>>> {
    let text: Option<String> = get(row, column)?;
    match text {
        None => Ok(Vec::new()),
        Some(text) => serde_json::from_str(&text).map_err(|e| bad(column, e)),
    }
}
