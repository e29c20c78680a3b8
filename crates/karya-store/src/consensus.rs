//! Consensus records (double keying): a group per (work item, step) whose k keying tasks are
//! done blind by distinct workers, the answers they gave, the comparison when the last answer
//! is in, and the settlement: by agreement, or by an adjudicator's ruling on the disputed
//! fields. Each settlement records, per keyer, whether the final answer proved them right;
//! those results are the consensus evidence of the engagement's accuracy.
//!
//! The rules are `karya_core::qa::consensus` (comparison, adjudication) and
//! `karya_core::qa::duty` (the adjudicator is none of the keyers and holds the designation and
//! qualification the engagement asks of checkers). Every change is written with its event in
//! the client's chain in one transaction. That no worker takes two parts of one group is
//! enforced where tasks are claimed (see `bars`), and again by the schema for answers.

use jiff::Timestamp;
use karya_core::event::EventKind;
use karya_core::id::{ConsensusGroupId, EngagementId, TaskId, WorkItemId, WorkerId};
use karya_core::lifecycle::TaskState;
use karya_core::model::Task;
use karya_core::qa::accuracy::Evidence;
use karya_core::qa::consensus::{
    adjudicate, compare, Answer, Comparison, KeyerResult, FIELDS_MAX, KEYERS_MAX,
};
use karya_core::qa::duty::{check_checker, Checker};
use karya_core::qa::Fields;
use serde_json::json;
use sqlx::any::AnyRow;
use sqlx::AnyConnection;

use crate::clients::parse_designation;
use crate::events::append;
use crate::qa::{
    fields_json, from_ppm, load_policy, load_task, maker_of, move_task, ppm, rejected,
};
use crate::rows::{get, is_unique_violation, parse, timestamp, us};
use crate::work::{priority_rank, stored, TASK_COLUMNS};
use crate::{Engine, Result, StoreError, Tenant};

/// Suffix of the step of an adjudication task: `key_invoice` is adjudicated as
/// `key_invoice.adjudication`, so routing and pauses can tell the two kinds of work apart.
pub const ADJUDICATION_STEP_SUFFIX: &str = ".adjudication";

/// Where a consensus group stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsensusState {
    /// Waiting for keyers' answers.
    Keying,
    /// The answers disagree; an adjudication task is open.
    Adjudicating,
    /// The answer is final.
    Settled,
}

impl ConsensusState {
    pub fn code(self) -> &'static str {
        match self {
            ConsensusState::Keying => "keying",
            ConsensusState::Adjudicating => "adjudicating",
            ConsensusState::Settled => "settled",
        }
    }

    fn parse(text: &str) -> Option<ConsensusState> {
        [
            ConsensusState::Keying,
            ConsensusState::Adjudicating,
            ConsensusState::Settled,
        ]
        .into_iter()
        .find(|s| s.code() == text)
    }
}

/// What it takes to open a group: its id and the ids of its k keying tasks.
#[derive(Debug, Clone)]
pub struct NewConsensusGroup {
    pub id: ConsensusGroupId,
    pub work_item_id: WorkItemId,
    pub step: String,
    /// One per keyer; between 2 and [`KEYERS_MAX`].
    pub task_ids: Vec<TaskId>,
}

/// A group as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct ConsensusGroup {
    pub id: ConsensusGroupId,
    pub engagement_id: EngagementId,
    pub work_item_id: WorkItemId,
    pub step: String,
    pub keyers: u32,
    pub state: ConsensusState,
    pub keying_task_ids: Vec<TaskId>,
    pub adjudication_task_id: Option<TaskId>,
    pub adjudicator_id: Option<WorkerId>,
    /// Share of fields every keyer agreed on, once all answers are in.
    pub field_agreement: Option<f64>,
    /// Share of (keyer pair, field) combinations that agree, once all answers are in.
    pub pairwise_agreement: Option<f64>,
    /// The settled answer.
    pub answer: Option<Fields>,
    pub created_at: Timestamp,
    pub settled_at: Option<Timestamp>,
}

/// One keyer's answer to one part of a group.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyedAnswer {
    pub task_id: TaskId,
    pub answer: Answer,
    pub keyed_at: Timestamp,
}

/// Everything about a group: for staff and the adjudicator, never for a keyer.
#[derive(Debug, Clone)]
pub struct ConsensusDetail {
    pub group: ConsensusGroup,
    /// In keying order.
    pub answers: Vec<KeyedAnswer>,
    /// Once all answers are in.
    pub comparison: Option<Comparison>,
    /// Once settled: who was right.
    pub results: Vec<KeyerResult>,
}

/// What a keyer's answer did.
#[derive(Debug, Clone)]
pub enum KeyingOutcome {
    /// Other keyers have yet to answer.
    Waiting { task: Task, keyed: u32, keyers: u32 },
    /// The last answer agreed with all others: the group is settled.
    Settled { task: Task, group: ConsensusGroup },
    /// The last answer is in and the answers disagree: an adjudication task is open.
    Adjudicating {
        task: Task,
        group: ConsensusGroup,
        adjudication_task_id: TaskId,
    },
}

const GROUP_COLUMNS: &str = "id, engagement_id, work_item_id, step, keyers, state, field_agreement_ppm,
    pairwise_agreement_ppm, adjudication_task_id, adjudicator_id, answer, created_at_us, settled_at_us";

fn fields_of(text: &str) -> Result<Fields> {
    serde_json::from_str(text).map_err(|err| anyhow::anyhow!("stored fields: {err}").into())
}

fn names_json(names: &[String]) -> String {
    serde_json::to_string(names).expect("a list of strings serializes")
}

fn group_row(row: &AnyRow, keying_task_ids: Vec<TaskId>) -> Result<ConsensusGroup> {
    let state: String = get(row, "state")?;
    let answer: Option<String> = get(row, "answer")?;
    let settled_at_us: Option<i64> = get(row, "settled_at_us")?;
    let adjudication: Option<String> = get(row, "adjudication_task_id")?;
    let adjudicator: Option<String> = get(row, "adjudicator_id")?;
    Ok(ConsensusGroup {
        id: parse(row, "id")?,
        engagement_id: parse(row, "engagement_id")?,
        work_item_id: parse(row, "work_item_id")?,
        step: get(row, "step")?,
        keyers: get::<i64>(row, "keyers")? as u32,
        state: ConsensusState::parse(&state)
            .ok_or_else(|| anyhow::anyhow!("stored consensus state {state:?} unknown"))?,
        keying_task_ids,
        adjudication_task_id: adjudication
            .map(|t| t.parse())
            .transpose()
            .map_err(|err| anyhow::anyhow!("stored adjudication task: {err}"))?,
        adjudicator_id: adjudicator
            .map(|w| w.parse())
            .transpose()
            .map_err(|err| anyhow::anyhow!("stored adjudicator: {err}"))?,
        field_agreement: get::<Option<i64>>(row, "field_agreement_ppm")?.map(from_ppm),
        pairwise_agreement: get::<Option<i64>>(row, "pairwise_agreement_ppm")?.map(from_ppm),
        answer: answer.as_deref().map(fields_of).transpose()?,
        created_at: timestamp(row, "created_at_us")?,
        settled_at: settled_at_us
            .map(|t| Timestamp::from_microsecond(t).map(stored))
            .transpose()
            .map_err(|err| anyhow::anyhow!("stored settlement time: {err}"))?,
    })
}

async fn load_group(
    conn: &mut AnyConnection,
    tenant: &Tenant,
    group_id: ConsensusGroupId,
) -> Result<ConsensusGroup> {
    let row = sqlx::query(&format!(
        "SELECT {GROUP_COLUMNS} FROM consensus_groups WHERE client_id = $1 AND id = $2"
    ))
    .bind(tenant.client_id.to_string())
    .bind(group_id.to_string())
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| StoreError::not_found("consensus group", group_id))?;
    let parts = sqlx::query(
        "SELECT p.task_id FROM consensus_parts p JOIN tasks t ON t.id = p.task_id
         WHERE p.group_id = $1 AND p.role = 'keying' ORDER BY t.created_at_us, t.id",
    )
    .bind(group_id.to_string())
    .fetch_all(&mut *conn)
    .await?;
    let keying = parts
        .iter()
        .map(|r| parse(r, "task_id"))
        .collect::<Result<Vec<TaskId>>>()?;
    group_row(&row, keying)
}

/// The answers of a group in keying order (the order the comparison lists keyers in).
async fn load_answers(
    conn: &mut AnyConnection,
    group_id: ConsensusGroupId,
) -> Result<Vec<KeyedAnswer>> {
    let rows = sqlx::query(
        "SELECT task_id, worker_id, fields, keyed_at_us FROM consensus_answers
         WHERE group_id = $1 ORDER BY keyed_at_us, task_id",
    )
    .bind(group_id.to_string())
    .fetch_all(&mut *conn)
    .await?;
    let mut answers = Vec::with_capacity(rows.len());
    for row in &rows {
        let fields: String = get(row, "fields")?;
        answers.push(KeyedAnswer {
            task_id: parse(row, "task_id")?,
            answer: Answer {
                worker_id: parse(row, "worker_id")?,
                fields: fields_of(&fields)?,
            },
            keyed_at: timestamp(row, "keyed_at_us")?,
        });
    }
    Ok(answers)
}

async fn load_results(
    conn: &mut AnyConnection,
    group_id: ConsensusGroupId,
    answers: &[KeyedAnswer],
) -> Result<Vec<KeyerResult>> {
    let rows = sqlx::query(
        "SELECT worker_id, fields_right, fields_wrong FROM consensus_results WHERE group_id = $1",
    )
    .bind(group_id.to_string())
    .fetch_all(&mut *conn)
    .await?;
    let mut results = Vec::with_capacity(rows.len());
    for row in &rows {
        let names = |column: &str| -> Result<Vec<String>> {
            let text: String = get(row, column)?;
            serde_json::from_str(&text)
                .map_err(|err| anyhow::anyhow!("stored field names: {err}").into())
        };
        results.push(KeyerResult {
            worker_id: parse(row, "worker_id")?,
            right: names("fields_right")?,
            wrong: names("fields_wrong")?,
        });
    }
    // In keying order, like the answers.
    results.sort_by_key(|r| {
        answers
            .iter()
            .position(|a| a.answer.worker_id == r.worker_id)
    });
    Ok(results)
}

/// The group a task is part of, and its role there (`keying` or `adjudication`).
pub(crate) async fn part_of(
    conn: &mut AnyConnection,
    tenant: &Tenant,
    task_id: TaskId,
) -> Result<Option<(ConsensusGroupId, String)>> {
    let row = sqlx::query(
        "SELECT group_id, role FROM consensus_parts WHERE client_id = $1 AND task_id = $2",
    )
    .bind(tenant.client_id.to_string())
    .bind(task_id.to_string())
    .fetch_optional(&mut *conn)
    .await?;
    row.map(|row| Ok((parse(&row, "group_id")?, get(&row, "role")?)))
        .transpose()
}

/// Records who was right, one check per keyer, inside the caller's transaction.
async fn insert_results(
    conn: &mut AnyConnection,
    tenant: &Tenant,
    group: &ConsensusGroup,
    keyers: &[KeyerResult],
    now: Timestamp,
) -> Result<()> {
    for keyer in keyers {
        sqlx::query(
            "INSERT INTO consensus_results (group_id, worker_id, client_id, engagement_id, correct,
                fields_right, fields_wrong, decided_at_us)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(group.id.to_string())
        .bind(keyer.worker_id.to_string())
        .bind(tenant.client_id.to_string())
        .bind(group.engagement_id.to_string())
        .bind(i64::from(keyer.correct()))
        .bind(names_json(&keyer.right))
        .bind(names_json(&keyer.wrong))
        .bind(us(now))
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

fn keyers_json(keyers: &[KeyerResult]) -> serde_json::Value {
    keyers
        .iter()
        .map(|k| {
            json!({
                "worker_id": k.worker_id.to_string(),
                "correct": k.correct(),
                "right": k.right,
                "wrong": k.wrong,
            })
        })
        .collect()
}

impl Tenant {
    /// Opens a consensus group on one step of a work item: k keying tasks, ready for k
    /// different workers. One group per (work item, step).
    pub async fn open_consensus_group(
        &self,
        new: &NewConsensusGroup,
        now: Timestamp,
    ) -> Result<ConsensusGroup> {
        let keyers = new.task_ids.len();
        if !(2..=KEYERS_MAX).contains(&keyers) {
            return Err(rejected(format!(
                "consensus needs between 2 and {KEYERS_MAX} keyers, got {keyers}"
            )));
        }
        if new.step.ends_with(ADJUDICATION_STEP_SUFFIX) {
            return Err(rejected(format!(
                "step {:?} names an adjudication; key the step it adjudicates",
                new.step
            )));
        }
        let item = self.work_item(new.work_item_id).await?;
        let mut tx = crate::tx::Tx::begin(&self.store).await?;
        let inserted = sqlx::query(
            "INSERT INTO consensus_groups (id, client_id, engagement_id, work_item_id, step, keyers, state, created_at_us)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(new.id.to_string())
        .bind(self.client_id.to_string())
        .bind(item.engagement_id.to_string())
        .bind(new.work_item_id.to_string())
        .bind(&new.step)
        .bind(keyers as i64)
        .bind(ConsensusState::Keying.code())
        .bind(us(now))
        .execute(&mut *tx)
        .await;
        match inserted {
            Err(err) if is_unique_violation(&err) => {
                return Err(StoreError::Conflict {
                    message: format!(
                        "work item {} has a consensus group on step {:?} already",
                        new.work_item_id, new.step
                    ),
                })
            }
            other => other?,
        };
        append(
            &mut tx,
            self.client_id,
            EventKind::ConsensusGroupOpened,
            &new.id.to_string(),
            &json!({
                "work_item_id": new.work_item_id.to_string(),
                "engagement_id": item.engagement_id.to_string(),
                "step": new.step,
                "keyers": keyers,
                "task_ids": new.task_ids.iter().map(|t| t.to_string()).collect::<Vec<_>>(),
            }),
            now,
        )
        .await?;
        for task_id in &new.task_ids {
            insert_task(
                &mut tx,
                self,
                *task_id,
                new.work_item_id,
                &new.step,
                item.priority,
                now,
            )
            .await?;
            insert_part(&mut tx, self, *task_id, new.id, "keying").await?;
        }
        let group = load_group(&mut tx, self, new.id).await?;
        tx.commit().await?;
        Ok(group)
    }

    /// A keyer's answer to their part of a group (`in_progress → submitted → done`). When it
    /// is the last one, the answers are compared: unanimous answers settle the group, and
    /// otherwise an adjudication task (`adjudication_task_id`) is opened on the disputed fields.
    pub async fn key_task(
        &self,
        task_id: TaskId,
        output: &Fields,
        adjudication_task_id: TaskId,
        now: Timestamp,
    ) -> Result<KeyingOutcome> {
        if output.len() > FIELDS_MAX {
            return Err(rejected(format!(
                "an answer has {} fields; the limit is {FIELDS_MAX}",
                output.len()
            )));
        }
        let mut tx = crate::tx::Tx::begin(&self.store).await?;
        let (mut task, _) = load_task(&mut tx, self, task_id).await?;
        let group_id = match part_of(&mut tx, self, task_id).await? {
            Some((group_id, role)) if role == "keying" => group_id,
            _ => {
                return Err(rejected(format!(
                    "task {task_id} is not a consensus keying"
                )))
            }
        };
        task.state
            .transition(TaskState::Submitted)
            .map_err(rejected)?;
        let keyer = maker_of(&mut tx, task_id).await?;
        if self.store.engine == Engine::Postgres {
            // The last two keyers answering at once must not each count the other's answer
            // missing and leave the group unsettled: answers to one group go one at a time.
            // (SQLite's single writer already serialises them.)
            sqlx::query("SELECT id FROM consensus_groups WHERE id = $1 FOR UPDATE")
                .bind(group_id.to_string())
                .execute(&mut *tx)
                .await?;
        }
        let inserted = sqlx::query(
            "INSERT INTO consensus_answers (task_id, group_id, client_id, worker_id, fields, keyed_at_us)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(task_id.to_string())
        .bind(group_id.to_string())
        .bind(self.client_id.to_string())
        .bind(keyer.to_string())
        .bind(fields_json(output))
        .bind(us(now))
        .execute(&mut *tx)
        .await;
        match inserted {
            Err(err) if is_unique_violation(&err) => {
                return Err(rejected(format!(
                    "worker {keyer} keyed another part of consensus group {group_id}; keyers must be distinct"
                )))
            }
            other => other?,
        };
        append(
            &mut tx,
            self.client_id,
            EventKind::TaskKeyed,
            &task_id.to_string(),
            &json!({
                "group_id": group_id.to_string(),
                "worker_id": keyer.to_string(),
                "fields": output,
            }),
            now,
        )
        .await?;
        move_task(&mut tx, &mut task, TaskState::Submitted, now).await?;
        move_task(&mut tx, &mut task, TaskState::Done, now).await?;

        let group = load_group(&mut tx, self, group_id).await?;
        let answers = load_answers(&mut tx, group_id).await?;
        if (answers.len() as u32) < group.keyers {
            tx.commit().await?;
            return Ok(KeyingOutcome::Waiting {
                task,
                keyed: answers.len() as u32,
                keyers: group.keyers,
            });
        }
        let answers: Vec<Answer> = answers.into_iter().map(|a| a.answer).collect();
        let comparison = compare(&answers).map_err(rejected)?;
        let disputed: Vec<&str> = comparison.disputed().map(|f| f.field.as_str()).collect();
        append(
            &mut tx,
            self.client_id,
            EventKind::ConsensusCompared,
            &group_id.to_string(),
            &json!({
                "field_agreement": comparison.field_agreement,
                "pairwise_agreement": comparison.pairwise_agreement,
                "fields": comparison.fields.len(),
                "disputed": disputed,
            }),
            now,
        )
        .await?;
        if comparison.is_unanimous() {
            let settled = adjudicate(&comparison, &Fields::new()).map_err(rejected)?;
            insert_results(&mut tx, self, &group, &settled.keyers, now).await?;
            sqlx::query(
                "UPDATE consensus_groups SET state = $1, field_agreement_ppm = $2, pairwise_agreement_ppm = $3,
                    answer = $4, settled_at_us = $5 WHERE client_id = $6 AND id = $7 AND state = $8",
            )
            .bind(ConsensusState::Settled.code())
            .bind(ppm(comparison.field_agreement))
            .bind(ppm(comparison.pairwise_agreement))
            .bind(fields_json(&settled.fields))
            .bind(us(now))
            .bind(self.client_id.to_string())
            .bind(group_id.to_string())
            .bind(ConsensusState::Keying.code())
            .execute(&mut *tx)
            .await?;
            append(
                &mut tx,
                self.client_id,
                EventKind::ConsensusSettled,
                &group_id.to_string(),
                &json!({
                    "via": "agreement",
                    "answer": settled.fields,
                    "keyers": keyers_json(&settled.keyers),
                }),
                now,
            )
            .await?;
            let group = load_group(&mut tx, self, group_id).await?;
            tx.commit().await?;
            return Ok(KeyingOutcome::Settled { task, group });
        }
        let step = format!("{}{ADJUDICATION_STEP_SUFFIX}", group.step);
        insert_task(
            &mut tx,
            self,
            adjudication_task_id,
            group.work_item_id,
            &step,
            task.priority,
            now,
        )
        .await?;
        insert_part(
            &mut tx,
            self,
            adjudication_task_id,
            group_id,
            "adjudication",
        )
        .await?;
        sqlx::query(
            "UPDATE consensus_groups SET state = $1, field_agreement_ppm = $2, pairwise_agreement_ppm = $3,
                adjudication_task_id = $4 WHERE client_id = $5 AND id = $6 AND state = $7",
        )
        .bind(ConsensusState::Adjudicating.code())
        .bind(ppm(comparison.field_agreement))
        .bind(ppm(comparison.pairwise_agreement))
        .bind(adjudication_task_id.to_string())
        .bind(self.client_id.to_string())
        .bind(group_id.to_string())
        .bind(ConsensusState::Keying.code())
        .execute(&mut *tx)
        .await?;
        let group = load_group(&mut tx, self, group_id).await?;
        tx.commit().await?;
        Ok(KeyingOutcome::Adjudicating {
            task,
            group,
            adjudication_task_id,
        })
    }

    /// The adjudicator's ruling on the disputed fields of a group (`in_progress → submitted →
    /// done` for the adjudication task). The adjudicator is the worker holding the task; they
    /// must be none of the keyers and meet the engagement's requirements of checkers. The
    /// ruling settles the group and records, per keyer, who was right.
    pub async fn adjudicate(
        &self,
        task_id: TaskId,
        ruling: &Fields,
        now: Timestamp,
    ) -> Result<(ConsensusGroup, Vec<KeyerResult>)> {
        let mut tx = crate::tx::Tx::begin(&self.store).await?;
        let (mut task, engagement_id) = load_task(&mut tx, self, task_id).await?;
        let group_id = match part_of(&mut tx, self, task_id).await? {
            Some((group_id, role)) if role == "adjudication" => group_id,
            _ => {
                return Err(rejected(format!(
                    "task {task_id} is not a consensus adjudication"
                )))
            }
        };
        task.state
            .transition(TaskState::Submitted)
            .map_err(rejected)?;
        let adjudicator = maker_of(&mut tx, task_id).await?;
        let group = load_group(&mut tx, self, group_id).await?;
        if group.state != ConsensusState::Adjudicating {
            return Err(rejected(format!(
                "consensus group {group_id} is {}, not adjudicating",
                group.state.code()
            )));
        }
        let answers: Vec<Answer> = load_answers(&mut tx, group_id)
            .await?
            .into_iter()
            .map(|a| a.answer)
            .collect();
        let keyers: Vec<WorkerId> = answers.iter().map(|a| a.worker_id).collect();
        let policy = load_policy(&mut tx, self, engagement_id).await?;
        let row = sqlx::query("SELECT designation FROM workers WHERE id = $1")
            .bind(adjudicator.to_string())
            .fetch_one(&mut *tx)
            .await?;
        let designation: String = get(&row, "designation")?;
        let designation = parse_designation(&designation)
            .ok_or_else(|| anyhow::anyhow!("stored designation {designation:?} unknown"))?;
        let qualification_rows =
            sqlx::query("SELECT qualification FROM reviewer_qualifications WHERE worker_id = $1")
                .bind(adjudicator.to_string())
                .fetch_all(&mut *tx)
                .await?;
        let qualifications = qualification_rows
            .iter()
            .map(|row| get::<String>(row, "qualification"))
            .collect::<Result<Vec<_>>>()?;
        let checker = Checker {
            worker_id: adjudicator,
            designation,
            qualifications: &qualifications,
        };
        check_checker(&checker, &keyers, &policy.reviewers).map_err(rejected)?;
        let comparison = compare(&answers).map_err(rejected)?;
        let settled = adjudicate(&comparison, ruling).map_err(rejected)?;

        insert_results(&mut tx, self, &group, &settled.keyers, now).await?;
        let updated = sqlx::query(
            "UPDATE consensus_groups SET state = $1, adjudicator_id = $2, answer = $3, settled_at_us = $4
             WHERE client_id = $5 AND id = $6 AND state = $7",
        )
        .bind(ConsensusState::Settled.code())
        .bind(adjudicator.to_string())
        .bind(fields_json(&settled.fields))
        .bind(us(now))
        .bind(self.client_id.to_string())
        .bind(group_id.to_string())
        .bind(ConsensusState::Adjudicating.code())
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() != 1 {
            return Err(StoreError::Conflict {
                message: format!(
                    "consensus group {group_id} changed concurrently: reload and retry"
                ),
            });
        }
        move_task(&mut tx, &mut task, TaskState::Submitted, now).await?;
        move_task(&mut tx, &mut task, TaskState::Done, now).await?;
        append(
            &mut tx,
            self.client_id,
            EventKind::ConsensusSettled,
            &group_id.to_string(),
            &json!({
                "via": "ruling",
                "adjudication_task_id": task_id.to_string(),
                "adjudicator_id": adjudicator.to_string(),
                "ruling": ruling,
                "answer": settled.fields,
                "keyers": keyers_json(&settled.keyers),
            }),
            now,
        )
        .await?;
        let group = load_group(&mut tx, self, group_id).await?;
        tx.commit().await?;
        Ok((group, settled.keyers))
    }

    /// A group with every answer, the comparison and the results.
    pub async fn consensus_group(&self, group_id: ConsensusGroupId) -> Result<ConsensusDetail> {
        let mut conn = self.store.reader.acquire().await?;
        let group = load_group(&mut conn, self, group_id).await?;
        let answers = load_answers(&mut conn, group_id).await?;
        let comparison = match answers.len() as u32 == group.keyers {
            true => {
                let plain: Vec<Answer> = answers.iter().map(|a| a.answer.clone()).collect();
                Some(compare(&plain).map_err(rejected)?)
            }
            false => None,
        };
        let results = load_results(&mut conn, group_id, &answers).await?;
        Ok(ConsensusDetail {
            group,
            answers,
            comparison,
            results,
        })
    }

    /// The group an adjudication task settles, for the adjudicator.
    pub async fn dispute_of(&self, task_id: TaskId) -> Result<ConsensusDetail> {
        self.task(task_id).await?;
        let mut conn = self.store.reader.acquire().await?;
        let group_id = match part_of(&mut conn, self, task_id).await? {
            Some((group_id, role)) if role == "adjudication" => group_id,
            _ => {
                return Err(rejected(format!(
                    "task {task_id} is not a consensus adjudication"
                )))
            }
        };
        drop(conn);
        self.consensus_group(group_id).await
    }
}

async fn insert_task(
    conn: &mut crate::tx::Tx,
    tenant: &Tenant,
    task_id: TaskId,
    work_item_id: WorkItemId,
    step: &str,
    priority: karya_core::model::Priority,
    now: Timestamp,
) -> Result<()> {
    let inserted = sqlx::query(&format!(
        "INSERT INTO tasks ({TASK_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $7)"
    ))
    .bind(task_id.to_string())
    .bind(tenant.client_id.to_string())
    .bind(work_item_id.to_string())
    .bind(step)
    .bind(priority_rank(priority))
    .bind(TaskState::Ready.code())
    .bind(us(now))
    .execute(&mut *conn)
    .await;
    match inserted {
        Err(err) if is_unique_violation(&err) => {
            return Err(StoreError::Conflict {
                message: format!("task {task_id} exists already"),
            })
        }
        other => other?,
    };
    append(
        conn,
        tenant.client_id,
        EventKind::TaskCreated,
        &task_id.to_string(),
        &json!({"work_item_id": work_item_id.to_string(), "step": step}),
        now,
    )
    .await?;
    Ok(())
}

async fn insert_part(
    conn: &mut AnyConnection,
    tenant: &Tenant,
    task_id: TaskId,
    group_id: ConsensusGroupId,
    role: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO consensus_parts (task_id, group_id, client_id, role) VALUES ($1, $2, $3, $4)",
    )
    .bind(task_id.to_string())
    .bind(group_id.to_string())
    .bind(tenant.client_id.to_string())
    .bind(role)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Consensus evidence of an engagement over `[from, to)`: per keyer, the parts keyed (their
/// weight as tasks) and the settled groups' checks of them.
pub(crate) async fn evidence(
    tenant: &Tenant,
    engagement_id: EngagementId,
    from: Timestamp,
    to: Timestamp,
) -> Result<Vec<(WorkerId, u64, Evidence)>> {
    let rows = sqlx::query(
        "SELECT worker_id, COUNT(*) AS checks, SUM(CASE WHEN correct = 1 THEN 1 ELSE 0 END) AS correct
         FROM consensus_results WHERE client_id = $1 AND engagement_id = $2
           AND decided_at_us >= $3 AND decided_at_us < $4 GROUP BY worker_id",
    )
    .bind(tenant.client_id.to_string())
    .bind(engagement_id.to_string())
    .bind(us(from))
    .bind(us(to))
    .fetch_all(&tenant.store.reader)
    .await?;
    let mut out: Vec<(WorkerId, u64, Evidence)> = Vec::with_capacity(rows.len());
    for row in &rows {
        out.push((
            parse(row, "worker_id")?,
            0,
            Evidence {
                checks: get::<i64>(row, "checks")? as u64,
                correct: get::<i64>(row, "correct")? as u64,
            },
        ));
    }
    let keyed = sqlx::query(
        "SELECT a.worker_id, COUNT(*) AS tasks FROM consensus_answers a
         JOIN consensus_groups g ON g.id = a.group_id
         WHERE a.client_id = $1 AND g.engagement_id = $2 AND a.keyed_at_us >= $3 AND a.keyed_at_us < $4
         GROUP BY a.worker_id",
    )
    .bind(tenant.client_id.to_string())
    .bind(engagement_id.to_string())
    .bind(us(from))
    .bind(us(to))
    .fetch_all(&tenant.store.reader)
    .await?;
    for row in &keyed {
        let worker_id: WorkerId = parse(row, "worker_id")?;
        let tasks = get::<i64>(row, "tasks")? as u64;
        match out.iter_mut().find(|(w, _, _)| *w == worker_id) {
            Some(entry) => entry.1 = tasks,
            None => out.push((worker_id, tasks, Evidence::default())),
        }
    }
    Ok(out)
}
