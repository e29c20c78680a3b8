//! Work flowing through its pack: engagements set up from a pack, work items started at
//! intake, the next step's task or job created when a step finishes, processor jobs claimed
//! and completed, and the deliverable assembled after the last step.
//!
//! `karya_core::flow` decides what follows a step; this module applies it inside the caller's
//! transaction, so a finished task and the work that follows it commit together or not at all.
//! An engagement without a pack (set up by hand) is left alone: its tasks are created by whoever
//! manages it.

use jiff::Timestamp;
use karya_core::event::EventKind;
use karya_core::flow::{self, JobFailure, Next, PlanStep};
use karya_core::id::{ClientId, EngagementId, TaskId, WorkItemId};
use karya_core::lifecycle::{TaskState, WorkItemState};
use karya_core::model::{Engagement, Task, WorkItem};
use karya_core::pack::Pack;
use karya_core::qa::review::ReworkPolicy;
use karya_core::qa::Fields;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use sqlx::any::AnyRow;
use sqlx::AnyConnection;

use crate::events::append;
use crate::qa::QaPolicy;
use crate::routing::requirements_json;
use crate::rows::{get, parse, timestamp, us};
use crate::work::{priority_rank, stored, work_item_row, NewEngagement, WORK_ITEM_COLUMNS};
use crate::{Engine, Result, Store, StoreError, Tenant};

pub use karya_core::flow::JOB_ATTEMPTS_MAX;

/// How long a claim on a job holds. A processor that has not completed or failed its job by
/// then is presumed dead, and the next claimer takes the job over; the slowest processor step
/// (OCR of a large scan) finishes well inside it.
pub const JOB_LEASE: jiff::SignedDuration = jiff::SignedDuration::from_secs(15 * 60);

/// Rung when this process queues a processor job, so that its job runner need not wait for its
/// next poll. A hint only: the job is durable once its transaction commits, and runners on other
/// nodes (or a runner woken before the commit) find it by polling.
pub fn jobs_queued() -> &'static tokio::sync::Notify {
    static QUEUED: std::sync::OnceLock<tokio::sync::Notify> = std::sync::OnceLock::new();
    QUEUED.get_or_init(tokio::sync::Notify::new)
}
/// Largest task output or job output stored, in bytes; documents travel as blobs, and the
/// output holds the data the deliverable is made of.
pub const OUTPUT_BYTES_MAX: usize = 1024 * 1024;
/// Longest failure reason kept with a job and its events: enough for an error chain, not for
/// a processor's whole log.
pub const REASON_LEN_MAX: usize = 2_000;

/// A submission of a task's work.
#[derive(Debug, Clone)]
pub struct Submission<'a> {
    /// The output's values field by field, for gold scoring and consensus.
    pub fields: &'a Fields,
    /// The whole output as a JSON document, stored with the task.
    pub document: Option<&'a str>,
    /// The id of what follows when the task is done: the next step's task or job, or the
    /// deliverable.
    pub next_id: uuid::Uuid,
}

/// A processor step's durable job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub id: uuid::Uuid,
    pub client_id: ClientId,
    pub work_item_id: WorkItemId,
    pub step: String,
    pub processor: String,
    /// `queued`, `running`, `done` or `failed`.
    pub state: String,
    pub attempts: u32,
    /// The input of the work item, JSON text, for the processor to work from.
    pub input: String,
    /// Why the last attempt failed, if one did.
    pub last_error: Option<String>,
}

/// What became of a job after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobFailed {
    /// Queued again; not claimed before `at`.
    Retry { at: Timestamp },
    /// Every attempt is used: the job is `failed` and its step is a person's task now (none
    /// when the item no longer moves, being held, cancelled or delivered).
    HandedOff { task_id: Option<TaskId> },
}

/// What went back to the client for a work item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deliverable {
    pub id: uuid::Uuid,
    pub work_item_id: WorkItemId,
    pub name: String,
    pub media_type: String,
    /// The JSON document.
    pub content: String,
    /// Lower-case hex SHA-256 of `content`.
    pub sha256: String,
    pub bytes: u64,
    pub created_at: Timestamp,
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn plan_json(plan: &[PlanStep]) -> Value {
    Value::Array(
        plan.iter()
            .map(|step| json!({"name": step.name, "processor": step.processor}))
            .collect(),
    )
}

fn plan_of(text: &str) -> Result<Vec<PlanStep>> {
    let value: Value = serde_json::from_str(text)
        .map_err(|err| anyhow::anyhow!("stored pack steps do not parse: {err}"))?;
    let steps = value
        .as_array()
        .ok_or_else(|| anyhow::anyhow!("stored pack steps are not a list"))?;
    steps
        .iter()
        .map(|step| {
            Ok(PlanStep {
                name: step["name"]
                    .as_str()
                    .ok_or_else(|| anyhow::anyhow!("stored pack step has no name"))?
                    .to_string(),
                processor: step["processor"].as_str().map(str::to_string),
            })
        })
        .collect()
}

impl Tenant {
    /// Opens an engagement that runs on `pack`, in one transaction: the engagement, the pack id
    /// and version with its step plan and deliverable shape, routing requirements per human
    /// step, the default SLA terms per priority, the QA policy, and the decision types. The
    /// client may override terms and policies later.
    pub async fn create_engagement_from_pack(
        &self,
        new: &NewEngagement,
        pack: &Pack,
        now: Timestamp,
    ) -> Result<Engagement> {
        if pack.service_line != new.service_line {
            return Err(StoreError::Rejected {
                message: format!(
                    "pack {} is for {}, not {}",
                    pack.id,
                    pack.service_line.code(),
                    new.service_line.code()
                ),
            });
        }
        let (sampling, reviewers) = flow::qa_settings(pack);
        let qa = QaPolicy {
            sampling,
            reviewers,
            rework: ReworkPolicy::SameMaker,
            defect_categories: pack.defects.iter().map(|d| d.name.clone()).collect(),
            gold: Default::default(),
        };
        qa.sampling.check().map_err(|err| StoreError::Rejected {
            message: format!("pack {} QA policy: {err}", pack.id),
        })?;
        let mut tx = crate::tx::Tx::begin(&self.store).await?;
        crate::work::insert_engagement(&mut tx, self.client_id, new, now).await?;
        let plan = plan_json(&flow::plan_of(pack));
        let deliverable = json!({
            "files": pack.deliverable.files.iter().map(|f| json!({
                "name": f.name, "media_type": f.media_type,
                "description": f.description, "required": f.required,
            })).collect::<Vec<_>>(),
            "fields": pack.deliverable.fields,
        });
        sqlx::query(
            "INSERT INTO engagement_packs (engagement_id, client_id, pack_id, pack_version, steps, deliverable, applied_at_us)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(new.id.to_string())
        .bind(self.client_id.to_string())
        .bind(&pack.id)
        .bind(i64::from(pack.version))
        .bind(plan.to_string())
        .bind(deliverable.to_string())
        .bind(us(now))
        .execute(&mut *tx)
        .await?;
        let mut routed = Vec::new();
        // Processor steps get their requirements too: a job that fails every attempt becomes a
        // person's task of the same step.
        for step in &pack.steps {
            let requirements = requirements_json(&flow::step_requirements(step));
            sqlx::query(
                "INSERT INTO step_routing (engagement_id, step, client_id, requirements) VALUES ($1, $2, $3, $4)",
            )
            .bind(new.id.to_string())
            .bind(&step.name)
            .bind(self.client_id.to_string())
            .bind(requirements.to_string())
            .execute(&mut *tx)
            .await?;
            routed.push(json!({"step": step.name, "requirements": requirements}));
        }
        let terms = flow::sla_terms(pack);
        for (priority, terms) in &terms {
            sqlx::query(
                "INSERT INTO sla_terms (engagement_id, client_id, priority, first_response_s, resolution_s, warning_pct, on_time_target_bp, accuracy_target_bp)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(new.id.to_string())
            .bind(self.client_id.to_string())
            .bind(priority_rank(*priority))
            .bind(terms.first_response.as_secs())
            .bind(terms.resolution.as_secs())
            .bind(i64::from(terms.warning_pct))
            .bind(i64::from(terms.on_time_target_bp))
            .bind(i64::from(terms.accuracy_target_bp))
            .execute(&mut *tx)
            .await?;
        }
        crate::qa::write_qa_policy(&mut tx, self, new.id, &qa, now).await?;
        for decision in &pack.decisions {
            crate::decisions::write_decision_type(
                &mut tx,
                self.client_id,
                new.id,
                &flow::decision_type(decision),
                now,
            )
            .await?;
        }
        let terms_json: Vec<Value> = terms
            .iter()
            .map(|(p, t)| {
                json!({"priority": p.code(), "first_response_s": t.first_response.as_secs(),
                       "resolution_s": t.resolution.as_secs(), "warning_pct": t.warning_pct,
                       "accuracy_target_bp": t.accuracy_target_bp})
            })
            .collect();
        append(
            &mut tx,
            self.client_id,
            EventKind::EngagementPackApplied,
            &new.id.to_string(),
            &json!({
                "pack_id": pack.id,
                "pack_version": pack.version,
                "steps": plan,
                "routing": routed,
                "sla_terms": terms_json,
                "decision_types": pack.decisions.iter().map(|d| &d.name).collect::<Vec<_>>(),
            }),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(Engagement {
            id: new.id,
            client_id: self.client_id,
            name: new.name.clone(),
            service_line: new.service_line,
            created_at: stored(now),
        })
    }

    /// The pack an engagement runs on, as (pack id, version), or `None` for one set up by hand.
    pub async fn engagement_pack(
        &self,
        engagement_id: EngagementId,
    ) -> Result<Option<(String, u32)>> {
        let plan = match cached_plan(self.client_id, engagement_id) {
            Some(cached) => cached,
            None => {
                let mut conn = self.store.reader.acquire().await?;
                stored_plan(&mut conn, self.client_id, engagement_id).await?
            }
        };
        Ok(plan.map(|plan| (plan.pack_id.clone(), plan.pack_version as u32)))
    }

    /// The routing requirements of one step of an engagement's pack, as stored (JSON text).
    pub async fn step_routing(
        &self,
        engagement_id: EngagementId,
        step: &str,
    ) -> Result<Option<String>> {
        let row = sqlx::query(
            "SELECT requirements FROM step_routing WHERE client_id = $1 AND engagement_id = $2 AND step = $3",
        )
        .bind(self.client_id.to_string())
        .bind(engagement_id.to_string())
        .bind(step)
        .fetch_optional(&self.store.reader)
        .await?;
        row.map(|row| get(&row, "requirements")).transpose()
    }

    /// The last output submitted for a task (JSON text), if any.
    pub async fn task_output(&self, task_id: TaskId) -> Result<Option<String>> {
        let row = sqlx::query(
            "SELECT output FROM task_outputs WHERE client_id = $1 AND task_id = $2
             ORDER BY submission DESC LIMIT 1",
        )
        .bind(self.client_id.to_string())
        .bind(task_id.to_string())
        .fetch_optional(&self.store.reader)
        .await?;
        row.map(|row| get(&row, "output")).transpose()
    }

    /// The jobs of a work item's processor steps, oldest first.
    pub async fn jobs_of(&self, work_item_id: WorkItemId) -> Result<Vec<Job>> {
        let rows = sqlx::query(&format!(
            "SELECT {JOB_COLUMNS} FROM jobs j JOIN work_items w ON w.id = j.work_item_id
             WHERE j.client_id = $1 AND j.work_item_id = $2 ORDER BY j.created_at_us, j.id"
        ))
        .bind(self.client_id.to_string())
        .bind(work_item_id.to_string())
        .fetch_all(&self.store.reader)
        .await?;
        rows.iter().map(job_row).collect()
    }

    /// The deliverables of a work item, oldest first.
    pub async fn deliverables(&self, work_item_id: WorkItemId) -> Result<Vec<Deliverable>> {
        self.work_item(work_item_id).await?;
        let rows = sqlx::query(&format!(
            "SELECT {DELIVERABLE_COLUMNS} FROM deliverables WHERE client_id = $1 AND work_item_id = $2
             ORDER BY created_at_us, id"
        ))
        .bind(self.client_id.to_string())
        .bind(work_item_id.to_string())
        .fetch_all(&self.store.reader)
        .await?;
        rows.iter().map(deliverable_row).collect()
    }

    /// One deliverable of a work item.
    pub async fn deliverable(
        &self,
        work_item_id: WorkItemId,
        id: uuid::Uuid,
    ) -> Result<Deliverable> {
        let row = sqlx::query(&format!(
            "SELECT {DELIVERABLE_COLUMNS} FROM deliverables WHERE client_id = $1 AND work_item_id = $2 AND id = $3"
        ))
        .bind(self.client_id.to_string())
        .bind(work_item_id.to_string())
        .bind(id.to_string())
        .fetch_optional(&self.store.reader)
        .await?
        .ok_or_else(|| StoreError::not_found("deliverable", id))?;
        deliverable_row(&row)
    }
}

const JOB_COLUMNS: &str =
    "j.id, j.client_id, j.work_item_id, j.step, j.processor, j.state, j.attempts, j.last_error, w.input";
/// Jobs whose lease expired after their last attempt, failed over in one claim call before it
/// gives up: each is handed to a person on the way.
const EXHAUSTED_PER_CLAIM_MAX: usize = 16;
const DELIVERABLE_COLUMNS: &str =
    "id, work_item_id, name, media_type, content, sha256, bytes, created_at_us";

fn job_row(row: &AnyRow) -> Result<Job> {
    Ok(Job {
        id: parse(row, "id")?,
        client_id: parse(row, "client_id")?,
        work_item_id: parse(row, "work_item_id")?,
        step: get(row, "step")?,
        processor: get(row, "processor")?,
        state: get(row, "state")?,
        attempts: get::<i64>(row, "attempts")? as u32,
        input: get(row, "input")?,
        last_error: get(row, "last_error")?,
    })
}

fn deliverable_row(row: &AnyRow) -> Result<Deliverable> {
    Ok(Deliverable {
        id: parse(row, "id")?,
        work_item_id: parse(row, "work_item_id")?,
        name: get(row, "name")?,
        media_type: get(row, "media_type")?,
        content: get(row, "content")?,
        sha256: get(row, "sha256")?,
        bytes: get::<i64>(row, "bytes")? as u64,
        created_at: timestamp(row, "created_at_us")?,
    })
}

impl Store {
    /// Claims the oldest waiting job for `claimed_by` (a processor runner), or `None` when
    /// nothing waits. A job waits when it is queued and its backoff has passed, or running
    /// under a claim older than [`JOB_LEASE`] (its runner is presumed dead). A job taken over
    /// after its last attempt is not run again: it is handed to a person. Exactly-once under
    /// concurrent claimers: `FOR UPDATE SKIP LOCKED` on PostgreSQL, the single writer on
    /// SQLite, and the update is conditional on the job still waiting.
    pub async fn claim_job(&self, claimed_by: &str, now: Timestamp) -> Result<Option<Job>> {
        let lock = match self.engine {
            Engine::Postgres => " FOR UPDATE OF j SKIP LOCKED",
            Engine::Sqlite => "",
        };
        let expired = us(now - JOB_LEASE);
        for _ in 0..EXHAUSTED_PER_CLAIM_MAX {
            let mut tx = crate::tx::Tx::begin(self).await?;
            let row = sqlx::query(&format!(
                "SELECT {JOB_COLUMNS} FROM jobs j JOIN work_items w ON w.id = j.work_item_id
                 WHERE (j.state = 'queued' AND j.run_after_us <= $1)
                    OR (j.state = 'running' AND j.claimed_at_us <= $2)
                 ORDER BY j.created_at_us, j.id LIMIT 1{lock}"
            ))
            .bind(us(now))
            .bind(expired)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(row) = row else { return Ok(None) };
            let mut job = job_row(&row)?;
            let taken_over = job.state == "running";
            if taken_over && job.attempts >= JOB_ATTEMPTS_MAX {
                let reason = "the runner of the last attempt stopped answering";
                hand_off(&mut tx, &job, reason, uuid::Uuid::now_v7(), now).await?;
                tx.commit().await?;
                continue;
            }
            let updated = sqlx::query(
                "UPDATE jobs SET state = 'running', attempts = attempts + 1, claimed_by = $1, claimed_at_us = $2
                 WHERE id = $3 AND ((state = 'queued' AND run_after_us <= $2)
                    OR (state = 'running' AND claimed_at_us <= $4))",
            )
            .bind(claimed_by)
            .bind(us(now))
            .bind(job.id.to_string())
            .bind(expired)
            .execute(&mut *tx)
            .await?;
            if updated.rows_affected() != 1 {
                return Err(StoreError::Conflict {
                    message: format!("job {} was claimed concurrently", job.id),
                });
            }
            job.state = "running".to_string();
            job.attempts += 1;
            append(
                &mut tx,
                job.client_id,
                EventKind::JobClaimed,
                &job.id.to_string(),
                &json!({"step": job.step, "processor": job.processor, "claimed_by": claimed_by,
                        "attempt": job.attempts, "lease_expired": taken_over}),
                now,
            )
            .await?;
            tx.commit().await?;
            return Ok(Some(job));
        }
        Ok(None)
    }

    /// Records a failed attempt of a running job held by `claimed_by`: the job is queued again
    /// after a backoff, or, once [`JOB_ATTEMPTS_MAX`] attempts have failed, `failed` and its
    /// step handed to a person as a task (id `handoff_id`) in the same transaction. A runner
    /// whose claim was taken over gets a conflict.
    pub async fn fail_job(
        &self,
        job_id: uuid::Uuid,
        claimed_by: &str,
        reason: &str,
        handoff_id: uuid::Uuid,
        now: Timestamp,
    ) -> Result<JobFailed> {
        let reason = clip(reason);
        let mut tx = crate::tx::Tx::begin(self).await?;
        held_job(&mut tx, job_id, claimed_by).await?;
        let row = sqlx::query(&format!(
            "SELECT {JOB_COLUMNS} FROM jobs j JOIN work_items w ON w.id = j.work_item_id WHERE j.id = $1"
        ))
        .bind(job_id.to_string())
        .fetch_one(&mut *tx)
        .await?;
        let job = job_row(&row)?;
        let failed = match flow::after_failure(job.attempts) {
            JobFailure::Retry { after } => {
                let at = now + after;
                sqlx::query(
                    "UPDATE jobs SET state = 'queued', claimed_by = NULL, claimed_at_us = NULL,
                        run_after_us = $1, last_error = $2 WHERE id = $3",
                )
                .bind(us(at))
                .bind(reason)
                .bind(job_id.to_string())
                .execute(&mut *tx)
                .await?;
                append(
                    &mut tx,
                    job.client_id,
                    EventKind::JobAttemptFailed,
                    &job_id.to_string(),
                    &json!({"step": job.step, "processor": job.processor, "attempt": job.attempts,
                            "reason": reason, "retry_at": at.to_string()}),
                    now,
                )
                .await?;
                JobFailed::Retry { at }
            }
            JobFailure::HandOff => {
                let task_id = hand_off(&mut tx, &job, reason, handoff_id, now).await?;
                JobFailed::HandedOff { task_id }
            }
        };
        tx.commit().await?;
        Ok(failed)
    }

    /// Hands a running job held by `claimed_by` to a person at once, whatever attempts are
    /// left: for a failure that trying again cannot mend (the processor is not installed on
    /// this node). The job is `failed` with `reason` and its step becomes a task (id
    /// `handoff_id`) while the item is in progress.
    pub async fn hand_off_job(
        &self,
        job_id: uuid::Uuid,
        claimed_by: &str,
        reason: &str,
        handoff_id: uuid::Uuid,
        now: Timestamp,
    ) -> Result<Option<TaskId>> {
        let reason = clip(reason);
        let mut tx = crate::tx::Tx::begin(self).await?;
        held_job(&mut tx, job_id, claimed_by).await?;
        let row = sqlx::query(&format!(
            "SELECT {JOB_COLUMNS} FROM jobs j JOIN work_items w ON w.id = j.work_item_id WHERE j.id = $1"
        ))
        .bind(job_id.to_string())
        .fetch_one(&mut *tx)
        .await?;
        let task_id = hand_off(&mut tx, &job_row(&row)?, reason, handoff_id, now).await?;
        tx.commit().await?;
        Ok(task_id)
    }

    /// What a processor works from, as the runner hands it over: `{"item": <the work item's
    /// input>, "outputs": {<step>: <output>} of the steps before the job's, "documents": [...]}`.
    /// The documents are described (`id`, `name`, `media_type`, `sha256`), not carried: the
    /// runner fetches the bytes of those its processor reads.
    pub async fn job_input(&self, job: &Job) -> Result<Value> {
        let mut conn = self.reader.acquire().await?;
        let item: Value = serde_json::from_str(&job.input)
            .map_err(|err| anyhow::anyhow!("stored work item input does not parse: {err}"))?;
        let row =
            sqlx::query("SELECT engagement_id FROM work_items WHERE client_id = $1 AND id = $2")
                .bind(job.client_id.to_string())
                .bind(job.work_item_id.to_string())
                .fetch_one(&mut *conn)
                .await?;
        let engagement_id: EngagementId = parse(&row, "engagement_id")?;
        let plan = match load_plan(&mut conn, job.client_id, engagement_id).await? {
            Some((plan, _)) => plan,
            None => Vec::new(),
        };
        let mut outputs = Map::new();
        for step in plan.iter().take_while(|step| step.name != job.step) {
            let output =
                step_output(&mut conn, job.client_id, job.work_item_id, &step.name).await?;
            if let Some(output) = output {
                outputs.insert(step.name.clone(), output);
            }
        }
        let documents: Vec<Value> = self
            .tenant(job.client_id)
            .documents(job.work_item_id)
            .await?
            .iter()
            .map(|doc| {
                json!({"id": doc.id.to_string(), "name": doc.name,
                       "media_type": doc.media_type, "sha256": doc.sha256})
            })
            .collect();
        Ok(json!({"item": item, "outputs": outputs, "documents": documents}))
    }

    /// Completes a running job held by `claimed_by` with its output (a JSON object), and in
    /// the same transaction moves the work item on: the next step's task or job (id
    /// `next_id`), or the deliverable. A processor whose claim was taken over gets a conflict,
    /// so a job is completed once even when a presumed-dead processor comes back.
    pub async fn complete_job(
        &self,
        job_id: uuid::Uuid,
        claimed_by: &str,
        output: &str,
        next_id: uuid::Uuid,
        now: Timestamp,
    ) -> Result<()> {
        check_output(output)?;
        let mut tx = crate::tx::Tx::begin(self).await?;
        let client_id = held_job(&mut tx, job_id, claimed_by).await?;
        let row = sqlx::query("SELECT work_item_id, step FROM jobs WHERE id = $1")
            .bind(job_id.to_string())
            .fetch_one(&mut *tx)
            .await?;
        let work_item_id: WorkItemId = parse(&row, "work_item_id")?;
        let step: String = get(&row, "step")?;
        let updated = sqlx::query(
            "UPDATE jobs SET state = 'done', output = $1, finished_at_us = $2
             WHERE id = $3 AND state = 'running' AND claimed_by = $4",
        )
        .bind(output)
        .bind(us(now))
        .bind(job_id.to_string())
        .bind(claimed_by)
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() != 1 {
            return Err(StoreError::Conflict {
                message: format!("job {job_id} changed concurrently"),
            });
        }
        append(
            &mut tx,
            client_id,
            EventKind::JobCompleted,
            &job_id.to_string(),
            &json!({"outcome": "done", "work_item_id": work_item_id.to_string(), "step": step,
                    "output_sha256": sha256_hex(output.as_bytes())}),
            now,
        )
        .await?;
        advance(&mut tx, client_id, work_item_id, &step, next_id, now).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// The client of a job that is running under `claimed_by`'s claim: not found when there is
/// no such job, a conflict when the job is no longer running under that claim.
async fn held_job(
    conn: &mut AnyConnection,
    job_id: uuid::Uuid,
    claimed_by: &str,
) -> Result<ClientId> {
    let row = sqlx::query("SELECT client_id, state, claimed_by FROM jobs WHERE id = $1")
        .bind(job_id.to_string())
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| StoreError::not_found("job", job_id))?;
    let state: String = get(&row, "state")?;
    let holder: Option<String> = get(&row, "claimed_by")?;
    if state != "running" || holder.as_deref() != Some(claimed_by) {
        return Err(StoreError::Conflict {
            message: format!("job {job_id} is not running under the claim of {claimed_by}"),
        });
    }
    parse(&row, "client_id")
}

fn check_output(output: &str) -> Result<()> {
    if output.len() > OUTPUT_BYTES_MAX {
        return Err(StoreError::Rejected {
            message: format!(
                "output is {} bytes; the limit is {OUTPUT_BYTES_MAX}",
                output.len()
            ),
        });
    }
    match serde_json::from_str::<Value>(output) {
        Ok(Value::Object(_)) => Ok(()),
        _ => Err(StoreError::Rejected {
            message: "output must be a JSON object".to_string(),
        }),
    }
}

/// Stores a task's output document as its next output (numbered from one per task, so a
/// submission's output follows any saved before it).
pub(crate) async fn record_output(
    conn: &mut crate::tx::Tx,
    client_id: ClientId,
    task_id: TaskId,
    document: &str,
    now: Timestamp,
) -> Result<()> {
    check_output(document)?;
    let sha256 = sha256_hex(document.as_bytes());
    // Numbered and stored in one statement: the write transaction orders it after any other.
    let row = sqlx::query(
        "INSERT INTO task_outputs (task_id, submission, client_id, output, sha256, recorded_at_us)
         SELECT $1, COALESCE(MAX(submission), 0) + 1, $2, $3, $4, $5
         FROM task_outputs WHERE client_id = $2 AND task_id = $1
         RETURNING submission",
    )
    .bind(task_id.to_string())
    .bind(client_id.to_string())
    .bind(document)
    .bind(&sha256)
    .bind(us(now))
    .fetch_one(&mut *conn)
    .await?;
    let submission: i64 = get(&row, "submission")?;
    append(
        conn,
        client_id,
        EventKind::TaskOutputRecorded,
        &task_id.to_string(),
        &json!({"submission": submission, "sha256": sha256, "bytes": document.len()}),
        now,
    )
    .await
    .map(|_| ())
}

/// The steps a new work item of the engagement starts on, when the engagement runs on a pack.
pub(crate) async fn intake_plan(
    conn: &mut crate::tx::Tx,
    client_id: ClientId,
    engagement_id: EngagementId,
) -> Result<Option<Vec<PlanStep>>> {
    Ok(load_plan(conn, client_id, engagement_id)
        .await?
        .map(|(steps, _)| steps))
}

/// Queues the first step of a new work item of a pack engagement, stored `in_progress` with
/// its `received → in_progress` event by the caller.
pub(crate) async fn start_item(
    conn: &mut crate::tx::Tx,
    item: &mut WorkItem,
    plan: &[PlanStep],
    first_id: uuid::Uuid,
    now: Timestamp,
) -> Result<()> {
    debug_assert_eq!(item.state, WorkItemState::InProgress);
    enqueue(conn, item, flow::first(plan), first_id, now).await
}

/// Moves the work item of a task that just became `done` to its next step.
pub(crate) async fn task_done(
    conn: &mut crate::tx::Tx,
    client_id: ClientId,
    task: &Task,
    next_id: uuid::Uuid,
    now: Timestamp,
) -> Result<()> {
    debug_assert_eq!(task.state, TaskState::Done);
    advance(conn, client_id, task.work_item_id, &task.step, next_id, now).await
}

async fn advance(
    conn: &mut crate::tx::Tx,
    client_id: ClientId,
    work_item_id: WorkItemId,
    finished: &str,
    next_id: uuid::Uuid,
    now: Timestamp,
) -> Result<()> {
    let row = sqlx::query(&format!(
        "SELECT {WORK_ITEM_COLUMNS} FROM work_items WHERE client_id = $1 AND id = $2"
    ))
    .bind(client_id.to_string())
    .bind(work_item_id.to_string())
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| StoreError::not_found("work item", work_item_id))?;
    let mut item = work_item_row(&row)?;
    let Some((plan, _)) = load_plan(conn, client_id, item.engagement_id).await? else {
        return Ok(());
    };
    // An item held or cancelled meanwhile does not move on by itself; a step that is not in
    // the plan (a task added by hand) does not move it either.
    if item.state != WorkItemState::InProgress {
        return Ok(());
    }
    let Ok(next) = flow::after(&plan, finished) else {
        return Ok(());
    };
    enqueue(conn, &mut item, next, next_id, now).await
}

/// An engagement's plan as its pack left it: the steps, the deliverable's shape and the pack.
#[derive(Debug)]
struct StoredPlan {
    client_id: ClientId,
    steps: Vec<PlanStep>,
    deliverable: Value,
    pack_id: String,
    pack_version: i64,
}

/// Most plans kept parsed; past it the cache starts over.
const PLANS_CACHED_MAX: usize = 4_096;

/// Plans already read, by engagement. An engagement's row in `engagement_packs` is written once,
/// with the engagement, and never changed, so a plan read once stays true; only plans found are
/// kept (an engagement without a pack is asked again each time). The flow reads its plan in
/// every transaction that moves an item on; this spares the read and the parse.
static PLANS: std::sync::LazyLock<
    std::sync::Mutex<std::collections::HashMap<EngagementId, std::sync::Arc<StoredPlan>>>,
> = std::sync::LazyLock::new(Default::default);

/// The plan from the cache: `Some(found)` when the engagement's plan is cached, `None` when it
/// must be read. Tenant scope holds for the cache as for the table: another client's engagement
/// reads as one without a plan.
fn cached_plan(
    client_id: ClientId,
    engagement_id: EngagementId,
) -> Option<Option<std::sync::Arc<StoredPlan>>> {
    let plans = PLANS.lock().unwrap_or_else(|e| e.into_inner());
    let plan = plans.get(&engagement_id)?;
    Some((plan.client_id == client_id).then(|| plan.clone()))
}

async fn stored_plan(
    conn: &mut AnyConnection,
    client_id: ClientId,
    engagement_id: EngagementId,
) -> Result<Option<std::sync::Arc<StoredPlan>>> {
    if let Some(cached) = cached_plan(client_id, engagement_id) {
        return Ok(cached);
    }
    let row = sqlx::query(
        "SELECT pack_id, pack_version, steps, deliverable FROM engagement_packs
         WHERE client_id = $1 AND engagement_id = $2",
    )
    .bind(client_id.to_string())
    .bind(engagement_id.to_string())
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let steps: String = get(&row, "steps")?;
    let deliverable: String = get(&row, "deliverable")?;
    let deliverable: Value = serde_json::from_str(&deliverable)
        .map_err(|err| anyhow::anyhow!("stored deliverable shape does not parse: {err}"))?;
    let plan = std::sync::Arc::new(StoredPlan {
        client_id,
        steps: plan_of(&steps)?,
        deliverable,
        pack_id: get(&row, "pack_id")?,
        pack_version: get(&row, "pack_version")?,
    });
    let mut plans = PLANS.lock().unwrap_or_else(|e| e.into_inner());
    if plans.len() >= PLANS_CACHED_MAX {
        plans.clear();
    }
    plans.insert(engagement_id, plan.clone());
    Ok(Some(plan))
}

async fn load_plan(
    conn: &mut AnyConnection,
    client_id: ClientId,
    engagement_id: EngagementId,
) -> Result<Option<(Vec<PlanStep>, Value)>> {
    Ok(stored_plan(conn, client_id, engagement_id)
        .await?
        .map(|plan| (plan.steps.clone(), plan.deliverable.clone())))
}

async fn move_item(
    conn: &mut crate::tx::Tx,
    item: &mut WorkItem,
    to: WorkItemState,
    reason: &str,
    now: Timestamp,
) -> Result<()> {
    *item = crate::work::move_work_item(conn, item.clone(), to, Some(reason), now).await?;
    Ok(())
}

async fn enqueue(
    conn: &mut crate::tx::Tx,
    item: &mut WorkItem,
    next: Next<'_>,
    id: uuid::Uuid,
    now: Timestamp,
) -> Result<()> {
    match next {
        Next::Task(step) => {
            let task_id = TaskId::from_uuid(id);
            // Every caller commits next: the new task is written with the commit.
            conn.write_at_commit(
                crate::tx::Write::new(
                    "INSERT INTO tasks (id, client_id, work_item_id, step, priority, state, created_at_us, updated_at_us)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
                )
                .bind(task_id.to_string())
                .bind(item.client_id.to_string())
                .bind(item.id.to_string())
                .bind(step.name.as_str())
                .bind(priority_rank(item.priority))
                .bind(TaskState::Ready.code())
                .bind(us(now)),
            )
            .await?;
            append(
                conn,
                item.client_id,
                EventKind::TaskCreated,
                &task_id.to_string(),
                &json!({"work_item_id": item.id.to_string(), "step": step.name}),
                now,
            )
            .await?;
        }
        Next::Job(step) => {
            let processor = step.processor.clone().unwrap_or_default();
            sqlx::query(
                "INSERT INTO jobs (id, client_id, work_item_id, step, processor, state, attempts, run_after_us, created_at_us)
                 VALUES ($1, $2, $3, $4, $5, 'queued', 0, $6, $6)",
            )
            .bind(id.to_string())
            .bind(item.client_id.to_string())
            .bind(item.id.to_string())
            .bind(&step.name)
            .bind(&processor)
            .bind(us(now))
            .execute(&mut *conn)
            .await?;
            jobs_queued().notify_one();
            append(
                conn,
                item.client_id,
                EventKind::JobQueued,
                &id.to_string(),
                &json!({"work_item_id": item.id.to_string(), "step": step.name, "processor": processor}),
                now,
            )
            .await?;
        }
        Next::Deliver => deliver(conn, item, id, now).await?,
    }
    Ok(())
}

/// The latest output of one step of a work item: its job's output, or the output submitted
/// for its task (a person's step, or a processor step handed to a person), whichever is later.
async fn step_output(
    conn: &mut AnyConnection,
    client_id: ClientId,
    work_item_id: WorkItemId,
    step: &str,
) -> Result<Option<Value>> {
    let task = sqlx::query(
        "SELECT o.output, o.recorded_at_us AS at_us FROM task_outputs o JOIN tasks t ON t.id = o.task_id
         WHERE t.client_id = $1 AND t.work_item_id = $2 AND t.step = $3
         ORDER BY o.recorded_at_us DESC, o.submission DESC LIMIT 1",
    )
    .bind(client_id.to_string())
    .bind(work_item_id.to_string())
    .bind(step)
    .fetch_optional(&mut *conn)
    .await?;
    let job = sqlx::query(
        "SELECT output, finished_at_us AS at_us FROM jobs WHERE client_id = $1 AND work_item_id = $2
           AND step = $3 AND state = 'done' ORDER BY finished_at_us DESC LIMIT 1",
    )
    .bind(client_id.to_string())
    .bind(work_item_id.to_string())
    .bind(step)
    .fetch_optional(&mut *conn)
    .await?;
    let mut latest: Option<(i64, String)> = None;
    for row in task.iter().chain(job.iter()) {
        let at_us: i64 = get(row, "at_us")?;
        let output: Option<String> = get(row, "output")?;
        if let Some(output) = output {
            if latest.as_ref().is_none_or(|(seen, _)| at_us >= *seen) {
                latest = Some((at_us, output));
            }
        }
    }
    latest
        .map(|(_, text)| {
            serde_json::from_str(&text)
                .map_err(|err| anyhow::anyhow!("stored output does not parse: {err}").into())
        })
        .transpose()
}

/// Gives a job that used every attempt to a person: the job becomes `failed` with its reason,
/// and, while its item is in progress, a task of the same step (id `task_id`) is created, so
/// the item waits in a person's queue instead of silently. The task's output moves the item on
/// like the job's would have.
async fn hand_off(
    conn: &mut crate::tx::Tx,
    job: &Job,
    reason: &str,
    task_id: uuid::Uuid,
    now: Timestamp,
) -> Result<Option<TaskId>> {
    sqlx::query(
        "UPDATE jobs SET state = 'failed', claimed_by = NULL, claimed_at_us = NULL, last_error = $1,
            finished_at_us = $2 WHERE id = $3",
    )
    .bind(reason)
    .bind(us(now))
    .bind(job.id.to_string())
    .execute(&mut *conn)
    .await?;
    let row = sqlx::query(&format!(
        "SELECT {WORK_ITEM_COLUMNS} FROM work_items WHERE client_id = $1 AND id = $2"
    ))
    .bind(job.client_id.to_string())
    .bind(job.work_item_id.to_string())
    .fetch_one(&mut *conn)
    .await?;
    let item = work_item_row(&row)?;
    let task_id = match item.state {
        WorkItemState::InProgress => Some(TaskId::from_uuid(task_id)),
        _ => None,
    };
    append(
        conn,
        job.client_id,
        EventKind::JobFailed,
        &job.id.to_string(),
        &json!({"work_item_id": job.work_item_id.to_string(), "step": job.step,
                "processor": job.processor, "attempts": job.attempts, "reason": reason,
                "handed_to_task": task_id.map(|t| t.to_string())}),
        now,
    )
    .await?;
    let Some(task_id) = task_id else {
        return Ok(None);
    };
    sqlx::query(
        "INSERT INTO tasks (id, client_id, work_item_id, step, priority, state, created_at_us, updated_at_us)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
    )
    .bind(task_id.to_string())
    .bind(job.client_id.to_string())
    .bind(job.work_item_id.to_string())
    .bind(&job.step)
    .bind(priority_rank(item.priority))
    .bind(TaskState::Ready.code())
    .bind(us(now))
    .execute(&mut *conn)
    .await?;
    append(
        conn,
        job.client_id,
        EventKind::TaskCreated,
        &task_id.to_string(),
        &json!({"work_item_id": job.work_item_id.to_string(), "step": job.step,
                "handed_off_from_job": job.id.to_string(), "reason": reason}),
        now,
    )
    .await?;
    Ok(Some(task_id))
}

/// A failure reason as stored: at most [`REASON_LEN_MAX`] bytes, cut at a character boundary.
fn clip(reason: &str) -> &str {
    let mut end = reason.len().min(REASON_LEN_MAX);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    &reason[..end]
}

/// Assembles the deliverable from the latest output of every step, in step order (a later
/// step's field replaces an earlier one's), keeps the fields the pack delivers, stores it and
/// moves the item to `delivered`.
async fn deliver(
    conn: &mut crate::tx::Tx,
    item: &mut WorkItem,
    id: uuid::Uuid,
    now: Timestamp,
) -> Result<()> {
    let (plan, shape) = load_plan(conn, item.client_id, item.engagement_id)
        .await?
        .expect("only a pack engagement delivers");
    let mut merged = Map::new();
    let mut steps = Vec::with_capacity(plan.len());
    for step in &plan {
        let output = step_output(conn, item.client_id, item.id, &step.name)
            .await?
            .unwrap_or(Value::Null);
        if let Value::Object(fields) = &output {
            merged.extend(fields.clone());
        }
        steps.push(json!({"step": step.name, "output": output}));
    }
    let wanted: Vec<&str> = shape["fields"]
        .as_array()
        .map(|fields| fields.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let data: Map<String, Value> = match wanted.is_empty() {
        true => merged,
        false => merged
            .into_iter()
            .filter(|(name, _)| wanted.contains(&name.as_str()))
            .collect(),
    };
    let work_item_id = item.id.to_string();
    let files: Vec<Value> = shape["files"]
        .as_array()
        .map(|files| {
            files
                .iter()
                .map(|file| {
                    json!({
                        "name": flow::file_name(file["name"].as_str().unwrap_or_default(),
                            item.external_ref.as_deref(), &work_item_id),
                        "media_type": file["media_type"],
                        "description": file["description"],
                        "required": file["required"],
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let pack = stored_plan(conn, item.client_id, item.engagement_id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("engagement {} has no pack", item.engagement_id))?;
    let content = json!({
        "pack_id": pack.pack_id,
        "pack_version": pack.pack_version,
        "work_item_id": work_item_id,
        "external_ref": item.external_ref,
        "title": item.title,
        "data": data,
        "files": files,
        "steps": steps,
    })
    .to_string();
    let sha256 = sha256_hex(content.as_bytes());
    let name = flow::file_name(
        "{external_ref}-deliverable.json",
        item.external_ref.as_deref(),
        &work_item_id,
    );
    // Read by later changes only: written with the commit.
    let bytes = content.len();
    conn.write_at_commit(
        crate::tx::Write::new(
            "INSERT INTO deliverables (id, client_id, work_item_id, name, media_type, content, sha256, bytes, created_at_us)
             VALUES ($1, $2, $3, $4, 'application/json', $5, $6, $7, $8)",
        )
        .bind(id.to_string())
        .bind(item.client_id.to_string())
        .bind(work_item_id.as_str())
        .bind(name.as_str())
        .bind(content)
        .bind(sha256.as_str())
        .bind(bytes as i64)
        .bind(us(now)),
    )
    .await?;
    append(
        conn,
        item.client_id,
        EventKind::DeliverableCreated,
        &id.to_string(),
        &json!({"work_item_id": work_item_id, "name": name, "sha256": sha256, "bytes": bytes}),
        now,
    )
    .await?;
    move_item(conn, item, WorkItemState::Delivered, "last step done", now).await
}
