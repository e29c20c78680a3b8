//! Quality assurance records: each engagement's QA policy, reviewer qualifications, sampling
//! decisions on submission, reviews with their defects, gold answers and scores, the evidence
//! per (engagement, worker, step), and the engagement's accuracy over a period.
//!
//! Every use case loads what the rule needs, asks `karya_core::qa` to decide, then writes the
//! change, the task transitions and their events in one transaction. A refused rule (a
//! reviewer who made the work, a fail without a defect) is [`StoreError::Rejected`] carrying
//! the core's message, and nothing is written.

use jiff::Timestamp;
use karya_core::event::EventKind;
use karya_core::id::{EngagementId, ReviewId, TaskId, WorkerId};
use karya_core::lifecycle::TaskState;
use karya_core::model::{Defect, Designation, Review, Severity, Task};
use karya_core::qa::accuracy::{self, AccuracyEstimate, Evidence, Sources, Stratum, TargetStatus};
use karya_core::qa::duty::{check_checker, Checker, ReviewerRequirements};
use karya_core::qa::gold::{self, GoldPolicy, GoldScore, GoldVerdict, GOLD_WINDOW_MAX};
use karya_core::qa::review::{check_review, rework, Rework, ReworkPolicy, Verdict};
use karya_core::qa::sampling::{self, SamplingDecision, SamplingPolicy, SamplingState};
use karya_core::qa::Fields;
use serde_json::json;
use sqlx::AnyConnection;

use crate::clients::parse_designation;
use crate::events::{append, FIRM_CHAIN};
use crate::rows::{get, is_foreign_key_violation, is_unique_violation, parse, us};
use crate::work::{stored, task_row, TASK_COLUMNS};
use crate::{Result, Store, StoreError, Tenant};

/// Most defect categories an engagement may declare.
pub const DEFECT_CATEGORIES_MAX: usize = 100;

/// Parts per million: how rates and probabilities are stored.
const PPM: f64 = 1_000_000.0;

/// An engagement's QA settings.
#[derive(Debug, Clone, PartialEq)]
pub struct QaPolicy {
    pub sampling: SamplingPolicy,
    pub reviewers: ReviewerRequirements,
    pub rework: ReworkPolicy,
    pub defect_categories: Vec<String>,
    pub gold: GoldPolicy,
}

impl Default for QaPolicy {
    /// What an engagement gets until it sets its own: 95% accuracy at 90% confidence, senior
    /// analysts and above review, rework to the maker.
    fn default() -> QaPolicy {
        QaPolicy {
            sampling: SamplingPolicy::default(),
            reviewers: ReviewerRequirements {
                min_designation: Designation::SeniorAnalyst,
                qualification: None,
            },
            rework: ReworkPolicy::SameMaker,
            defect_categories: ["wrong_value", "omission", "formatting", "other"]
                .into_iter()
                .map(str::to_string)
                .collect(),
            gold: GoldPolicy::default(),
        }
    }
}

/// A review as the reviewer submits it.
#[derive(Debug, Clone)]
pub struct NewReview {
    pub id: ReviewId,
    pub reviewer_id: WorkerId,
    pub verdict: Verdict,
    pub defects: Vec<Defect>,
}

/// What a review did.
#[derive(Debug, Clone)]
pub struct ReviewOutcome {
    pub review: Review,
    pub maker_id: WorkerId,
    /// The task after the review: `done` on a pass, `rework` or `ready` on a fail.
    pub task: Task,
    pub rework: Option<Rework>,
}

/// What a submission did.
#[derive(Debug, Clone)]
pub enum SubmitOutcome {
    /// An ordinary task, sampled for review (`in_review`) or not (`done`).
    Sampled {
        task: Task,
        submission: u32,
        decision: SamplingDecision,
    },
    /// A gold task, scored at once and `done`.
    Gold {
        task: Task,
        submission: u32,
        score: GoldScore,
        verdict: GoldVerdict,
    },
}

/// One worker's part in an engagement's accuracy.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerAccuracy {
    pub worker_id: WorkerId,
    /// Submissions (gold excluded) in the period: the worker's weight.
    pub tasks: u64,
    pub sources: Sources,
    pub estimate: AccuracyEstimate,
}

/// An engagement's accuracy over a period, as an SLA term.
#[derive(Debug, Clone, PartialEq)]
pub struct AccuracyReport {
    pub engagement_id: EngagementId,
    pub from: Timestamp,
    pub to: Timestamp,
    /// The accuracy the engagement promises.
    pub target: f64,
    pub sources: Sources,
    /// Stratified by worker, weighted by tasks.
    pub estimate: AccuracyEstimate,
    pub status: TargetStatus,
    pub workers: Vec<WorkerAccuracy>,
}

pub(crate) fn ppm(value: f64) -> i64 {
    (value * PPM).round() as i64
}

pub(crate) fn from_ppm(value: i64) -> f64 {
    value as f64 / PPM
}

pub(crate) fn fields_json(fields: &Fields) -> String {
    serde_json::to_string(fields).expect("a map of strings serializes")
}

pub(crate) fn rejected(message: impl ToString) -> StoreError {
    StoreError::Rejected {
        message: message.to_string(),
    }
}

/// Writes an engagement's QA policy and its event inside the caller's transaction. The caller
/// has checked the policy.
pub(crate) async fn write_qa_policy(
    conn: &mut crate::tx::Tx,
    tenant: &Tenant,
    engagement_id: EngagementId,
    policy: &QaPolicy,
    now: Timestamp,
) -> Result<()> {
    let threshold = policy.gold.accuracy_threshold;
    let categories =
        serde_json::to_string(&policy.defect_categories).expect("a list of strings serializes");
    sqlx::query(
        "INSERT INTO qa_policies (engagement_id, client_id, accuracy_target_ppm, confidence_ppm, min_checks,
            floor_rate_ppm, checks_after_failure, reviewer_min_designation, reviewer_qualification,
            rework_policy, defect_categories, gold_window, gold_min_scored, gold_threshold_ppm, updated_at_us)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
         ON CONFLICT (engagement_id) DO UPDATE SET
            accuracy_target_ppm = excluded.accuracy_target_ppm, confidence_ppm = excluded.confidence_ppm,
            min_checks = excluded.min_checks, floor_rate_ppm = excluded.floor_rate_ppm,
            checks_after_failure = excluded.checks_after_failure,
            reviewer_min_designation = excluded.reviewer_min_designation,
            reviewer_qualification = excluded.reviewer_qualification,
            rework_policy = excluded.rework_policy, defect_categories = excluded.defect_categories,
            gold_window = excluded.gold_window, gold_min_scored = excluded.gold_min_scored,
            gold_threshold_ppm = excluded.gold_threshold_ppm, updated_at_us = excluded.updated_at_us",
    )
    .bind(engagement_id.to_string())
    .bind(tenant.client_id.to_string())
    .bind(ppm(1.0 - policy.sampling.error_target))
    .bind(ppm(policy.sampling.confidence))
    .bind(i64::from(policy.sampling.min_checks))
    .bind(ppm(policy.sampling.floor_rate))
    .bind(i64::from(policy.sampling.checks_after_failure))
    .bind(policy.reviewers.min_designation.code())
    .bind(policy.reviewers.qualification.clone())
    .bind(policy.rework.code())
    .bind(&categories)
    .bind(i64::from(policy.gold.window))
    .bind(i64::from(policy.gold.min_scored))
    .bind(ppm(threshold))
    .bind(us(now))
    .execute(&mut *conn)
    .await?;
    append(
        conn,
        tenant.client_id,
        EventKind::QaPolicySet,
        &engagement_id.to_string(),
        &json!({
            "accuracy_target": 1.0 - policy.sampling.error_target,
            "confidence": policy.sampling.confidence,
            "min_checks": policy.sampling.min_checks,
            "floor_rate": policy.sampling.floor_rate,
            "checks_after_failure": policy.sampling.checks_after_failure,
            "reviewer_min_designation": policy.reviewers.min_designation.code(),
            "reviewer_qualification": policy.reviewers.qualification,
            "rework": policy.rework.code(),
            "defect_categories": policy.defect_categories,
            "gold_window": policy.gold.window,
            "gold_min_scored": policy.gold.min_scored,
            "gold_threshold": threshold,
        }),
        now,
    )
    .await?;
    Ok(())
}

/// A task with the engagement its work item belongs to.
pub(crate) async fn load_task(
    conn: &mut AnyConnection,
    tenant: &Tenant,
    task_id: TaskId,
) -> Result<(Task, EngagementId)> {
    let columns: Vec<String> = TASK_COLUMNS.split(", ").map(|c| format!("t.{c}")).collect();
    let row = sqlx::query(&format!(
        "SELECT {}, w.engagement_id FROM tasks t JOIN work_items w ON w.id = t.work_item_id
         WHERE t.client_id = $1 AND t.id = $2",
        columns.join(", ")
    ))
    .bind(tenant.client_id.to_string())
    .bind(task_id.to_string())
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| StoreError::not_found("task", task_id))?;
    Ok((task_row(&row)?, parse(&row, "engagement_id")?))
}

/// The columns of `qa_policies` a [`QaPolicy`] is read from.
const POLICY_COLUMNS: &str = "accuracy_target_ppm, confidence_ppm, min_checks, floor_rate_ppm, \
    checks_after_failure, reviewer_min_designation, reviewer_qualification, rework_policy, \
    defect_categories, gold_window, gold_min_scored, gold_threshold_ppm";

pub(crate) async fn load_policy(
    conn: &mut AnyConnection,
    tenant: &Tenant,
    engagement_id: EngagementId,
) -> Result<QaPolicy> {
    let row = sqlx::query(&format!(
        "SELECT {POLICY_COLUMNS} FROM qa_policies WHERE client_id = $1 AND engagement_id = $2"
    ))
    .bind(tenant.client_id.to_string())
    .bind(engagement_id.to_string())
    .fetch_optional(&mut *conn)
    .await?;
    match row {
        Some(row) => policy_row(&row),
        None => Ok(QaPolicy::default()),
    }
}

/// A policy from a row holding [`POLICY_COLUMNS`].
fn policy_row(row: &sqlx::any::AnyRow) -> Result<QaPolicy> {
    let designation: String = get(row, "reviewer_min_designation")?;
    let rework_text: String = get(row, "rework_policy")?;
    let categories: String = get(row, "defect_categories")?;
    Ok(QaPolicy {
        sampling: SamplingPolicy {
            // Subtracted in integers, so that 95% reads back as exactly 0.05.
            error_target: from_ppm(PPM as i64 - get::<i64>(row, "accuracy_target_ppm")?),
            confidence: from_ppm(get(row, "confidence_ppm")?),
            min_checks: get::<i64>(row, "min_checks")? as u32,
            floor_rate: from_ppm(get(row, "floor_rate_ppm")?),
            checks_after_failure: get::<i64>(row, "checks_after_failure")? as u32,
        },
        reviewers: ReviewerRequirements {
            min_designation: parse_designation(&designation)
                .ok_or_else(|| anyhow::anyhow!("stored designation {designation:?} unknown"))?,
            qualification: get(row, "reviewer_qualification")?,
        },
        rework: ReworkPolicy::parse(&rework_text)
            .ok_or_else(|| anyhow::anyhow!("stored rework policy {rework_text:?} unknown"))?,
        defect_categories: serde_json::from_str(&categories)
            .map_err(|err| anyhow::anyhow!("stored defect categories: {err}"))?,
        gold: GoldPolicy {
            window: get::<i64>(row, "gold_window")? as u32,
            min_scored: get::<i64>(row, "gold_min_scored")? as u32,
            accuracy_threshold: from_ppm(get(row, "gold_threshold_ppm")?),
        },
    })
}

/// What a submission is decided on, read in one statement: the task and its engagement, whether
/// it belongs to a consensus group, its maker, the engagement's QA policy, the maker's sampling
/// state on the step, the submissions before this one and the task's gold answer.
struct SubmitContext {
    task: Task,
    engagement_id: EngagementId,
    in_consensus: bool,
    maker: Option<WorkerId>,
    policy: QaPolicy,
    state: SamplingState,
    paused_at_us: Option<i64>,
    previous: i64,
    gold_expected: Option<String>,
}

async fn load_submit_context(
    conn: &mut AnyConnection,
    tenant: &Tenant,
    task_id: TaskId,
) -> Result<SubmitContext> {
    let task_columns: Vec<String> = TASK_COLUMNS.split(", ").map(|c| format!("t.{c}")).collect();
    let policy_columns: Vec<String> = POLICY_COLUMNS
        .split(", ")
        .map(|c| format!("p.{}", c.trim()))
        .collect();
    // A held task has one open assignment (a task is never held by two workers), so the
    // joins give at most one row.
    let row = sqlx::query(&format!(
        "SELECT {}, w.engagement_id,
                CASE WHEN EXISTS (SELECT 1 FROM consensus_parts cp
                                  WHERE cp.client_id = t.client_id AND cp.task_id = t.id)
                     THEN 1 ELSE 0 END AS in_consensus,
                a.worker_id AS maker,
                p.engagement_id AS policy_engagement_id, {},
                s.checks, s.errors, s.checks_since_error, s.paused_at_us,
                (SELECT COUNT(*) FROM qa_submissions q WHERE q.task_id = t.id) AS previous,
                (SELECT g.expected FROM gold_answers g WHERE g.client_id = t.client_id AND g.task_id = t.id)
                    AS gold_expected
         FROM tasks t
         JOIN work_items w ON w.id = t.work_item_id
         LEFT JOIN assignments a ON a.task_id = t.id AND a.released_at_us IS NULL
         LEFT JOIN qa_policies p ON p.client_id = t.client_id AND p.engagement_id = w.engagement_id
         LEFT JOIN sampling_states s
           ON s.engagement_id = w.engagement_id AND s.worker_id = a.worker_id AND s.step = t.step
         WHERE t.client_id = $1 AND t.id = $2",
        task_columns.join(", "),
        policy_columns.join(", "),
    ))
    .bind(tenant.client_id.to_string())
    .bind(task_id.to_string())
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| StoreError::not_found("task", task_id))?;
    let maker: Option<String> = get(&row, "maker")?;
    let maker = maker
        .map(|text| {
            text.parse()
                .map_err(|_| anyhow::anyhow!("stored worker id {text:?} is malformed"))
        })
        .transpose()?;
    let policy = match get::<Option<String>>(&row, "policy_engagement_id")? {
        Some(_) => policy_row(&row)?,
        None => QaPolicy::default(),
    };
    // The maker has no sampling state on the step yet when the join found none.
    let (state, paused_at_us) = match get::<Option<i64>>(&row, "checks")? {
        Some(_) => state_row(&row)?,
        None => (SamplingState::default(), None),
    };
    Ok(SubmitContext {
        task: task_row(&row)?,
        engagement_id: parse(&row, "engagement_id")?,
        in_consensus: get::<i64>(&row, "in_consensus")? != 0,
        maker,
        policy,
        state,
        paused_at_us,
        previous: get(&row, "previous")?,
        gold_expected: get(&row, "gold_expected")?,
    })
}

/// The worker holding the task: its maker.
pub(crate) async fn maker_of(conn: &mut AnyConnection, task_id: TaskId) -> Result<WorkerId> {
    let row = sqlx::query(
        "SELECT worker_id FROM assignments WHERE task_id = $1 AND released_at_us IS NULL",
    )
    .bind(task_id.to_string())
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| rejected(format!("task {task_id} is held by no worker")))?;
    parse(&row, "worker_id")
}

/// The sampling key: one worker on one step of one engagement.
struct Key<'a> {
    engagement_id: EngagementId,
    worker_id: WorkerId,
    step: &'a str,
}

async fn load_state(
    conn: &mut AnyConnection,
    key: &Key<'_>,
) -> Result<(SamplingState, Option<i64>)> {
    let row = sqlx::query(
        "SELECT checks, errors, checks_since_error, paused_at_us FROM sampling_states
         WHERE engagement_id = $1 AND worker_id = $2 AND step = $3",
    )
    .bind(key.engagement_id.to_string())
    .bind(key.worker_id.to_string())
    .bind(key.step)
    .fetch_optional(&mut *conn)
    .await?;
    match row {
        Some(row) => state_row(&row),
        None => Ok((SamplingState::default(), None)),
    }
}

/// A sampling state and when the worker was paused on the step, from a row holding
/// `checks, errors, checks_since_error, paused_at_us` of `sampling_states`.
fn state_row(row: &sqlx::any::AnyRow) -> Result<(SamplingState, Option<i64>)> {
    let since: Option<i64> = get(row, "checks_since_error")?;
    Ok((
        SamplingState {
            checks: get::<i64>(row, "checks")? as u64,
            errors: get::<i64>(row, "errors")? as u64,
            checks_since_error: since.map(|n| n as u64),
        },
        get(row, "paused_at_us")?,
    ))
}

async fn save_state(
    conn: &mut AnyConnection,
    tenant: &Tenant,
    key: &Key<'_>,
    state: &SamplingState,
    paused_at_us: Option<i64>,
    now: Timestamp,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO sampling_states
            (engagement_id, worker_id, step, client_id, checks, errors, checks_since_error, paused_at_us, updated_at_us)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (engagement_id, worker_id, step) DO UPDATE SET
            checks = excluded.checks, errors = excluded.errors,
            checks_since_error = excluded.checks_since_error,
            paused_at_us = excluded.paused_at_us, updated_at_us = excluded.updated_at_us",
    )
    .bind(key.engagement_id.to_string())
    .bind(key.worker_id.to_string())
    .bind(key.step)
    .bind(tenant.client_id.to_string())
    .bind(state.checks as i64)
    .bind(state.errors as i64)
    .bind(state.checks_since_error.map(|n| n as i64))
    .bind(paused_at_us)
    .bind(us(now))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Moves a task one step along its transition table inside the caller's transaction, with
/// its event; leaving the held states releases the assignment.
pub(crate) async fn move_task(
    conn: &mut crate::tx::Tx,
    task: &mut Task,
    to: TaskState,
    now: Timestamp,
) -> Result<()> {
    task.state.transition(to).map_err(rejected)?;
    set_task_state(conn, task, to, now).await?;
    record_transition(conn, task, to, now).await
}

/// Stores `to` as the state of a task still in `task.state` (a conflict if it moved
/// meanwhile). The caller checks the path there and records each hop with
/// [`record_transition`].
async fn set_task_state(
    conn: &mut crate::tx::Tx,
    task: &Task,
    to: TaskState,
    now: Timestamp,
) -> Result<()> {
    let updated = sqlx::query(SET_TASK_STATE)
        .bind(to.code())
        .bind(us(now))
        .bind(task.client_id.to_string())
        .bind(task.id.to_string())
        .bind(task.state.code())
        .execute(&mut *conn)
        .await?;
    if updated.rows_affected() != 1 {
        return Err(StoreError::Conflict {
            message: changed_concurrently(task.id),
        });
    }
    Ok(())
}

/// Stores a task's state `$1` (at `$2`) where it is still `$5` (client `$3`, task `$4`).
const SET_TASK_STATE: &str =
    "UPDATE tasks SET state = $1, updated_at_us = $2 WHERE client_id = $3 AND id = $4 AND state = $5";

fn changed_concurrently(task_id: TaskId) -> String {
    format!("task {task_id} changed concurrently: reload and retry")
}

/// Records one hop of a task (already stored by [`set_task_state`]): its event, and the
/// release of the assignment when it leaves the held states.
async fn record_transition(
    conn: &mut crate::tx::Tx,
    task: &mut Task,
    to: TaskState,
    now: Timestamp,
) -> Result<()> {
    let action = task.state.transition(to).map_err(rejected)?;
    append(
        conn,
        task.client_id,
        EventKind::TaskTransitioned,
        &task.id.to_string(),
        &json!({"from": task.state.code(), "to": to.code(), "action": action}),
        now,
    )
    .await?;
    if task.state.is_held() && !to.is_held() {
        sqlx::query(
            "UPDATE assignments SET released_at_us = $1 WHERE task_id = $2 AND released_at_us IS NULL",
        )
        .bind(us(now))
        .bind(task.id.to_string())
        .execute(&mut *conn)
        .await?;
        append(
            conn,
            task.client_id,
            EventKind::TaskReleased,
            &task.id.to_string(),
            &json!({"reason": action}),
            now,
        )
        .await?;
    }
    task.state = to;
    task.updated_at = stored(now);
    Ok(())
}

impl Store {
    /// Records that a worker is recognised as a reviewer holding `qualification`.
    pub async fn grant_reviewer_qualification(
        &self,
        worker_id: WorkerId,
        qualification: &str,
        now: Timestamp,
    ) -> Result<()> {
        let mut tx = crate::tx::Tx::begin(self).await?;
        let inserted = sqlx::query(
            "INSERT INTO reviewer_qualifications (worker_id, qualification, granted_at_us) VALUES ($1, $2, $3)",
        )
        .bind(worker_id.to_string())
        .bind(qualification)
        .bind(us(now))
        .execute(&mut *tx)
        .await;
        match inserted {
            Err(err) if is_foreign_key_violation(&err) => {
                return Err(StoreError::not_found("worker", worker_id))
            }
            Err(err) if is_unique_violation(&err) => {
                return Err(StoreError::Conflict {
                    message: format!(
                        "worker {worker_id} holds reviewer qualification {qualification:?} already"
                    ),
                })
            }
            other => other?,
        };
        append(
            &mut tx,
            FIRM_CHAIN,
            EventKind::ReviewerQualificationGranted,
            &worker_id.to_string(),
            &json!({"qualification": qualification}),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

impl Tenant {
    /// Sets an engagement's QA policy, replacing the previous one.
    pub async fn set_qa_policy(
        &self,
        engagement_id: EngagementId,
        policy: &QaPolicy,
        now: Timestamp,
    ) -> Result<QaPolicy> {
        self.engagement(engagement_id).await?;
        policy.sampling.check().map_err(rejected)?;
        if policy.defect_categories.is_empty()
            || policy.defect_categories.len() > DEFECT_CATEGORIES_MAX
        {
            return Err(rejected(format!(
                "an engagement declares between 1 and {DEFECT_CATEGORIES_MAX} defect categories"
            )));
        }
        let threshold = policy.gold.accuracy_threshold;
        if !(0.0..=1.0).contains(&threshold)
            || policy.gold.window == 0
            || policy.gold.window > GOLD_WINDOW_MAX
            || policy.gold.min_scored > policy.gold.window
        {
            return Err(rejected(format!(
                "gold settings: threshold in [0, 1], window in 1..={GOLD_WINDOW_MAX}, min_scored at most the window"
            )));
        }
        let mut tx = crate::tx::Tx::begin(&self.store).await?;
        write_qa_policy(&mut tx, self, engagement_id, policy, now).await?;
        let stored_policy = load_policy(&mut tx, self, engagement_id).await?;
        tx.commit().await?;
        Ok(stored_policy)
    }

    /// The engagement's QA policy (the default until one is set).
    pub async fn qa_policy(&self, engagement_id: EngagementId) -> Result<QaPolicy> {
        self.engagement(engagement_id).await?;
        let mut conn = self.store.reader.acquire().await?;
        load_policy(&mut conn, self, engagement_id).await
    }

    /// Marks a task as gold with its known answer. Nothing in the task itself changes, so the
    /// worker cannot tell.
    pub async fn set_gold_answer(
        &self,
        task_id: TaskId,
        expected: &Fields,
        now: Timestamp,
    ) -> Result<()> {
        let mut tx = crate::tx::Tx::begin(&self.store).await?;
        let (task, _) = load_task(&mut tx, self, task_id).await?;
        if !matches!(task.state, TaskState::Ready | TaskState::Offered) {
            return Err(rejected(format!(
                "task {task_id} is {}; a task becomes gold before anyone works on it",
                task.state
            )));
        }
        sqlx::query(
            "INSERT INTO gold_answers (task_id, client_id, expected, created_at_us) VALUES ($1, $2, $3, $4)
             ON CONFLICT (task_id) DO UPDATE SET expected = excluded.expected",
        )
        .bind(task_id.to_string())
        .bind(self.client_id.to_string())
        .bind(fields_json(expected))
        .bind(us(now))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// A worker submits a task (`in_progress → submitted`). A gold task is scored and done; any
    /// other task is sampled: `in_review` for a reviewer, or `done`. The decision and its reason
    /// are stored and written as an event.
    pub async fn submit_task(
        &self,
        task_id: TaskId,
        output: &Fields,
        now: Timestamp,
    ) -> Result<SubmitOutcome> {
        let submission = crate::flow::Submission {
            fields: output,
            document: None,
            next_id: uuid::Uuid::now_v7(),
        };
        self.submit_task_with_output(task_id, &submission, now)
            .await
    }

    /// [`submit_task`](Tenant::submit_task) with the task's whole output document, stored
    /// with the task, and the id for what follows a finished task (the next step's task or
    /// job, or the deliverable) when the engagement runs on a pack.
    pub async fn submit_task_with_output(
        &self,
        task_id: TaskId,
        submission_in: &crate::flow::Submission<'_>,
        now: Timestamp,
    ) -> Result<SubmitOutcome> {
        let output = submission_in.fields;
        let mut tx = crate::tx::Tx::begin(&self.store).await?;
        let SubmitContext {
            mut task,
            engagement_id,
            in_consensus,
            maker,
            policy,
            state,
            paused_at_us,
            previous,
            gold_expected,
        } = load_submit_context(&mut tx, self, task_id).await?;
        if in_consensus {
            return Err(rejected(format!(
                "task {task_id} is part of a consensus group: key it or adjudicate it instead"
            )));
        }
        task.state
            .transition(TaskState::Submitted)
            .map_err(rejected)?;
        let maker =
            maker.ok_or_else(|| rejected(format!("task {task_id} is held by no worker")))?;
        let step = task.step.clone();
        let key = Key {
            engagement_id,
            worker_id: maker,
            step: &step,
        };
        let submission = previous as u32 + 1;
        // Where the submission leaves the task is known before anything is written: one
        // update takes it there, and the events tell each hop in turn.
        let sampled = gold_expected.is_none().then(|| {
            let draw = sampling::draw(task_id, submission);
            (draw, sampling::decide(&policy.sampling, &state, draw))
        });
        let to = match &sampled {
            Some((_, decision)) if decision.review => TaskState::InReview,
            _ => TaskState::Done,
        };
        TaskState::Submitted.transition(to).map_err(rejected)?;
        // The task's row is written once, with the commit: what follows reads its step and
        // item, never its state.
        tx.write_at_commit(
            crate::tx::Write::new(SET_TASK_STATE)
                .bind(to.code())
                .bind(us(now))
                .bind(task.client_id.to_string())
                .bind(task.id.to_string())
                .bind(task.state.code())
                .expect_rows(1, changed_concurrently(task.id)),
        )
        .await?;
        record_transition(&mut tx, &mut task, TaskState::Submitted, now).await?;

        let outcome = match gold_expected {
            Some(expected) => {
                let expected: Fields = serde_json::from_str(&expected)
                    .map_err(|err| anyhow::anyhow!("stored gold answer: {err}"))?;
                let score = gold::score(&expected, output);
                let state = state.record(score.correct());
                sqlx::query(
                    "INSERT INTO gold_results (task_id, submission, client_id, engagement_id, step, worker_id,
                        correct, fields_wrong, scored_at_us)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .bind(task_id.to_string())
                .bind(i64::from(submission))
                .bind(self.client_id.to_string())
                .bind(engagement_id.to_string())
                .bind(&step)
                .bind(maker.to_string())
                .bind(i64::from(score.correct()))
                .bind(serde_json::to_string(&score.fields_wrong).expect("strings serialize"))
                .bind(us(now))
                .execute(&mut *tx)
                .await?;
                let recent = sqlx::query(
                    "SELECT correct FROM gold_results WHERE engagement_id = $1 AND worker_id = $2 AND step = $3
                     ORDER BY scored_at_us DESC, task_id DESC LIMIT $4",
                )
                .bind(engagement_id.to_string())
                .bind(maker.to_string())
                .bind(&step)
                .bind(i64::from(policy.gold.window.min(GOLD_WINDOW_MAX)))
                .fetch_all(&mut *tx)
                .await?;
                let mut results = recent
                    .iter()
                    .map(|row| get::<i64>(row, "correct").map(|c| c == 1))
                    .collect::<Result<Vec<bool>>>()?;
                results.reverse();
                let verdict = gold::verdict(&policy.gold, &results);
                let pause_now =
                    matches!(verdict, GoldVerdict::Pause { .. }) && paused_at_us.is_none();
                let paused_at_us = match pause_now {
                    true => Some(us(now)),
                    false => paused_at_us,
                };
                save_state(&mut tx, self, &key, &state, paused_at_us, now).await?;
                insert_submission(
                    &mut tx,
                    self,
                    &task,
                    engagement_id,
                    maker,
                    submission,
                    ("gold", 0, 0, "gold"),
                    now,
                )
                .await?;
                append(
                    &mut tx,
                    self.client_id,
                    EventKind::GoldScored,
                    &task_id.to_string(),
                    &json!({
                        "worker_id": maker.to_string(),
                        "submission": submission,
                        "correct": score.correct(),
                        "fields_checked": score.fields_checked,
                        "fields_wrong": score.fields_wrong,
                    }),
                    now,
                )
                .await?;
                if let (true, GoldVerdict::Pause { accuracy, scored }) = (pause_now, verdict) {
                    append(
                        &mut tx,
                        self.client_id,
                        EventKind::WorkerPausedOnStep,
                        &maker.to_string(),
                        &json!({
                            "engagement_id": engagement_id.to_string(),
                            "step": step,
                            "gold_accuracy": accuracy,
                            "gold_scored": scored,
                            "threshold": policy.gold.accuracy_threshold,
                            "notify": "team_lead",
                        }),
                        now,
                    )
                    .await?;
                }
                record_transition(&mut tx, &mut task, TaskState::Done, now).await?;
                SubmitOutcome::Gold {
                    task: task.clone(),
                    submission,
                    score,
                    verdict,
                }
            }
            None => {
                let (draw, decision) = sampled.expect("decided above when there is no gold");
                let code = decision.rate.reason.code();
                let outcome = if decision.review { "review" } else { "skip" };
                insert_submission(
                    &mut tx,
                    self,
                    &task,
                    engagement_id,
                    maker,
                    submission,
                    (outcome, ppm(decision.rate.rate), ppm(draw), code),
                    now,
                )
                .await?;
                append(
                    &mut tx,
                    self.client_id,
                    EventKind::TaskSampled,
                    &task_id.to_string(),
                    &json!({
                        "worker_id": maker.to_string(),
                        "engagement_id": engagement_id.to_string(),
                        "step": step,
                        "submission": submission,
                        "review": decision.review,
                        "rate": decision.rate.rate,
                        "draw": draw,
                        "reason": code,
                        "explanation": decision.rate.reason.describe(),
                        "error_mean": decision.rate.error_mean,
                        "checks": state.checks,
                        "errors": state.errors,
                    }),
                    now,
                )
                .await?;
                record_transition(&mut tx, &mut task, to, now).await?;
                SubmitOutcome::Sampled {
                    task: task.clone(),
                    submission,
                    decision,
                }
            }
        };
        if let Some(document) = submission_in.document {
            crate::flow::record_output(&mut tx, self.client_id, task_id, document, now).await?;
        }
        if task.state == TaskState::Done {
            crate::flow::task_done(&mut tx, self.client_id, &task, submission_in.next_id, now)
                .await?;
        }
        tx.commit().await?;
        Ok(outcome)
    }

    /// Records a review of a task in review. Separation of duties and the review rules are
    /// checked first; a pass completes the task (`accepted → done`), a fail sends it to rework,
    /// to the maker or back to the queue as the engagement says.
    pub async fn record_review(
        &self,
        task_id: TaskId,
        new: &NewReview,
        now: Timestamp,
    ) -> Result<ReviewOutcome> {
        self.record_review_then(task_id, new, uuid::Uuid::now_v7(), now)
            .await
    }

    /// [`record_review`](Tenant::record_review) with the id for what follows a passed task
    /// (the next step's task or job, or the deliverable) when the engagement runs on a pack.
    pub async fn record_review_then(
        &self,
        task_id: TaskId,
        new: &NewReview,
        next_id: uuid::Uuid,
        now: Timestamp,
    ) -> Result<ReviewOutcome> {
        let mut tx = crate::tx::Tx::begin(&self.store).await?;
        let (mut task, engagement_id) = load_task(&mut tx, self, task_id).await?;
        let next = match new.verdict {
            Verdict::Pass => TaskState::Accepted,
            Verdict::Fail => TaskState::Rework,
        };
        task.state.transition(next).map_err(rejected)?;
        let maker = maker_of(&mut tx, task_id).await?;
        let policy = load_policy(&mut tx, self, engagement_id).await?;
        let reviewer_row = sqlx::query("SELECT designation FROM workers WHERE id = $1")
            .bind(new.reviewer_id.to_string())
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::not_found("worker", new.reviewer_id))?;
        let designation: String = get(&reviewer_row, "designation")?;
        let designation = parse_designation(&designation)
            .ok_or_else(|| anyhow::anyhow!("stored designation {designation:?} unknown"))?;
        let qualification_rows =
            sqlx::query("SELECT qualification FROM reviewer_qualifications WHERE worker_id = $1")
                .bind(new.reviewer_id.to_string())
                .fetch_all(&mut *tx)
                .await?;
        let qualifications = qualification_rows
            .iter()
            .map(|row| get::<String>(row, "qualification"))
            .collect::<Result<Vec<_>>>()?;
        let checker = Checker {
            worker_id: new.reviewer_id,
            designation,
            qualifications: &qualifications,
        };
        check_checker(&checker, &[maker], &policy.reviewers).map_err(rejected)?;
        check_review(new.verdict, &new.defects, &policy.defect_categories).map_err(rejected)?;

        let rework = match new.verdict {
            Verdict::Pass => None,
            Verdict::Fail => Some(rework(policy.rework, maker)),
        };
        let excluded = match rework {
            Some(Rework::Reroute { excluded }) => Some(excluded.to_string()),
            _ => None,
        };
        sqlx::query(
            "INSERT INTO reviews (id, client_id, task_id, engagement_id, step, maker_id, reviewer_id, verdict,
                rework_excluded_id, reviewed_at_us)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(new.id.to_string())
        .bind(self.client_id.to_string())
        .bind(task_id.to_string())
        .bind(engagement_id.to_string())
        .bind(&task.step)
        .bind(maker.to_string())
        .bind(new.reviewer_id.to_string())
        .bind(new.verdict.code())
        .bind(excluded.clone())
        .bind(us(now))
        .execute(&mut *tx)
        .await?;
        for (idx, defect) in new.defects.iter().enumerate() {
            sqlx::query(
                "INSERT INTO review_defects (review_id, idx, category, severity, field, comment)
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(new.id.to_string())
            .bind(idx as i64)
            .bind(&defect.category)
            .bind(defect.severity.code())
            .bind(defect.field.clone())
            .bind(&defect.comment)
            .execute(&mut *tx)
            .await?;
        }
        let defects: Vec<_> = new
            .defects
            .iter()
            .map(|d| json!({"category": d.category, "severity": d.severity.code(), "field": d.field}))
            .collect();
        append(
            &mut tx,
            self.client_id,
            EventKind::ReviewRecorded,
            &new.id.to_string(),
            &json!({
                "task_id": task_id.to_string(),
                "maker_id": maker.to_string(),
                "reviewer_id": new.reviewer_id.to_string(),
                "verdict": new.verdict.code(),
                "defects": defects,
                "rework_excluded_id": excluded,
            }),
            now,
        )
        .await?;
        let key = Key {
            engagement_id,
            worker_id: maker,
            step: &task.step.clone(),
        };
        let (state, paused_at_us) = load_state(&mut tx, &key).await?;
        let state = state.record(new.verdict == Verdict::Pass);
        save_state(&mut tx, self, &key, &state, paused_at_us, now).await?;
        move_task(&mut tx, &mut task, next, now).await?;
        match rework {
            None => move_task(&mut tx, &mut task, TaskState::Done, now).await?,
            Some(Rework::Reroute { .. }) => {
                move_task(&mut tx, &mut task, TaskState::Ready, now).await?
            }
            Some(Rework::Maker(_)) => {}
        }
        if task.state == TaskState::Done {
            crate::flow::task_done(&mut tx, self.client_id, &task, next_id, now).await?;
        }
        tx.commit().await?;
        Ok(ReviewOutcome {
            review: Review {
                id: new.id,
                task_id,
                reviewer_id: new.reviewer_id,
                passed: new.verdict == Verdict::Pass,
                defects: new.defects.clone(),
                reviewed_at: stored(now),
            },
            maker_id: maker,
            task,
            rework,
        })
    }

    /// The reviews of a task, oldest first, with their defects.
    pub async fn reviews_of(&self, task_id: TaskId) -> Result<Vec<Review>> {
        let rows = sqlx::query(
            "SELECT id, reviewer_id, verdict, reviewed_at_us FROM reviews
             WHERE client_id = $1 AND task_id = $2 ORDER BY reviewed_at_us, id",
        )
        .bind(self.client_id.to_string())
        .bind(task_id.to_string())
        .fetch_all(&self.store.reader)
        .await?;
        let mut reviews = Vec::with_capacity(rows.len());
        for row in rows {
            let id: ReviewId = parse(&row, "id")?;
            let defect_rows = sqlx::query(
                "SELECT category, severity, field, comment FROM review_defects WHERE review_id = $1 ORDER BY idx",
            )
            .bind(id.to_string())
            .fetch_all(&self.store.reader)
            .await?;
            let mut defects = Vec::with_capacity(defect_rows.len());
            for d in &defect_rows {
                let severity: String = get(d, "severity")?;
                defects.push(Defect {
                    category: get(d, "category")?,
                    severity: Severity::parse(&severity)
                        .ok_or_else(|| anyhow::anyhow!("stored severity {severity:?} unknown"))?,
                    field: get(d, "field")?,
                    comment: get(d, "comment")?,
                });
            }
            let verdict: String = get(&row, "verdict")?;
            reviews.push(Review {
                id,
                task_id,
                reviewer_id: parse(&row, "reviewer_id")?,
                passed: verdict == Verdict::Pass.code(),
                defects,
                reviewed_at: crate::rows::timestamp(&row, "reviewed_at_us")?,
            });
        }
        Ok(reviews)
    }

    /// The evidence about a worker on a step, and whether gold results paused them there.
    pub async fn sampling_state(
        &self,
        engagement_id: EngagementId,
        worker_id: WorkerId,
        step: &str,
    ) -> Result<(SamplingState, bool)> {
        self.engagement(engagement_id).await?;
        let mut conn = self.store.reader.acquire().await?;
        let key = Key {
            engagement_id,
            worker_id,
            step,
        };
        let (state, paused) = load_state(&mut conn, &key).await?;
        Ok((state, paused.is_some()))
    }

    /// The engagement's accuracy over `[from, to)`: reviews, consensus and gold results per worker,
    /// stratified by the tasks each submitted, at the engagement's confidence.
    pub async fn accuracy(
        &self,
        engagement_id: EngagementId,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<AccuracyReport> {
        let policy = self.qa_policy(engagement_id).await?;
        let client = self.client_id.to_string();
        let engagement = engagement_id.to_string();
        let mut workers: std::collections::BTreeMap<WorkerId, (u64, Sources)> = Default::default();
        let reviews = sqlx::query(
            "SELECT maker_id AS worker_id, COUNT(*) AS checks,
                    SUM(CASE WHEN verdict = 'pass' THEN 1 ELSE 0 END) AS correct
             FROM reviews WHERE client_id = $1 AND engagement_id = $2
               AND reviewed_at_us >= $3 AND reviewed_at_us < $4 GROUP BY maker_id",
        );
        let gold = sqlx::query(
            "SELECT worker_id, COUNT(*) AS checks, SUM(CASE WHEN correct = 1 THEN 1 ELSE 0 END) AS correct
             FROM gold_results WHERE client_id = $1 AND engagement_id = $2
               AND scored_at_us >= $3 AND scored_at_us < $4 GROUP BY worker_id",
        );
        for (idx, query) in [reviews, gold].into_iter().enumerate() {
            let rows = query
                .bind(&client)
                .bind(&engagement)
                .bind(us(from))
                .bind(us(to))
                .fetch_all(&self.store.reader)
                .await?;
            for row in rows {
                let evidence = Evidence {
                    checks: get::<i64>(&row, "checks")? as u64,
                    correct: get::<i64>(&row, "correct")? as u64,
                };
                let entry = workers.entry(parse(&row, "worker_id")?).or_default();
                match idx {
                    0 => entry.1.reviews = evidence,
                    _ => entry.1.gold = evidence,
                }
            }
        }
        let tasks = sqlx::query(
            "SELECT worker_id, COUNT(*) AS tasks FROM qa_submissions
             WHERE client_id = $1 AND engagement_id = $2 AND outcome <> 'gold'
               AND submitted_at_us >= $3 AND submitted_at_us < $4 GROUP BY worker_id",
        )
        .bind(&client)
        .bind(&engagement)
        .bind(us(from))
        .bind(us(to))
        .fetch_all(&self.store.reader)
        .await?;
        for row in tasks {
            let entry = workers.entry(parse(&row, "worker_id")?).or_default();
            entry.0 = get::<i64>(&row, "tasks")? as u64;
        }
        for (worker_id, keyed, evidence) in
            crate::consensus::evidence(self, engagement_id, from, to).await?
        {
            let entry = workers.entry(worker_id).or_default();
            entry.0 += keyed;
            entry.1.consensus = evidence;
        }
        let confidence = policy.sampling.confidence;
        let mut total = Sources::default();
        let mut strata = Vec::with_capacity(workers.len());
        let mut per_worker = Vec::with_capacity(workers.len());
        for (worker_id, (tasks, sources)) in workers {
            total.reviews = total.reviews.plus(sources.reviews);
            total.consensus = total.consensus.plus(sources.consensus);
            total.gold = total.gold.plus(sources.gold);
            strata.push(Stratum {
                tasks,
                evidence: sources.total(),
            });
            per_worker.push(WorkerAccuracy {
                worker_id,
                tasks,
                sources,
                estimate: accuracy::estimate(sources.total(), confidence),
            });
        }
        let estimate = accuracy::stratified(&strata, confidence);
        let target = 1.0 - policy.sampling.error_target;
        Ok(AccuracyReport {
            engagement_id,
            from,
            to,
            target,
            sources: total,
            status: estimate.against(target),
            estimate,
            workers: per_worker,
        })
    }
}

#[allow(clippy::too_many_arguments)]
async fn insert_submission(
    tx: &mut crate::tx::Tx,
    tenant: &Tenant,
    task: &Task,
    engagement_id: EngagementId,
    worker_id: WorkerId,
    submission: u32,
    (outcome, rate_ppm, draw_ppm, reason): (&str, i64, i64, &str),
    now: Timestamp,
) -> Result<()> {
    // Read by later changes only (the next submission's number, reports): written with the
    // commit.
    tx.write_at_commit(
        crate::tx::Write::new(
            "INSERT INTO qa_submissions (task_id, submission, client_id, engagement_id, step, worker_id,
                outcome, rate_ppm, draw_ppm, reason, submitted_at_us)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(task.id.to_string())
        .bind(i64::from(submission))
        .bind(tenant.client_id.to_string())
        .bind(engagement_id.to_string())
        .bind(task.step.as_str())
        .bind(worker_id.to_string())
        .bind(outcome)
        .bind(rate_ppm)
        .bind(draw_ppm)
        .bind(reason)
        .bind(us(now)),
    )
    .await
}
