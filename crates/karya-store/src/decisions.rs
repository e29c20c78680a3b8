//! Decisions under client policy: decision types per engagement, policy versions, the decision
//! ledger, and what a policy change does to past decisions.
//!
//! The rulings come from `karya_core::decision`; this module loads what they need, records the
//! outcome and its event in one transaction, and can hand the whole log back
//! ([`Tenant::decision_log`]) for a replay that must reach the same outcomes.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use karya_core::decision::attr::Attr;
use karya_core::decision::authority::{DecisionType, Inverse};
use karya_core::decision::ledger::{
    self, Decider, DecisionRecord, DecisionStatus, LedgerEntry, Resolution,
};
use karya_core::decision::policy::{
    Constraint, DecisionInput, DecisionScope, Layer, OnFail, Policy, PolicyBook, PolicyDraft, Scope,
};
use karya_core::event::EventKind;
use karya_core::id::{ClientId, DecisionId, EngagementId, TaskId, WorkItemId, WorkerId};
use karya_core::lifecycle::WorkItemState;
use karya_core::model::Designation;
use serde_json::{json, Value};
use sqlx::any::AnyRow;
use sqlx::AnyConnection;

use crate::attrs::{parse_text, to_json};
use crate::clients::{ensure_firm_chain, page_of, parse_designation};
use crate::events::{append, event_rows, FIRM_CHAIN};
use crate::rows::{get, is_unique_violation, parse, timestamp, us};
use crate::{Engine, Page, PageRequest, Result, Store, StoreError, Tenant};

/// A decision as a worker takes it.
#[derive(Debug, Clone)]
pub struct NewDecision {
    pub id: DecisionId,
    pub work_item_id: WorkItemId,
    pub task_id: Option<TaskId>,
    pub decision_type: String,
    pub payload: Attr,
    pub team: Option<String>,
    pub decided_by: WorkerId,
}

/// A stored decision: the ledger record and where it was taken.
#[derive(Debug, Clone)]
pub struct StoredDecision {
    pub record: DecisionRecord,
    pub work_item_id: WorkItemId,
    pub task_id: Option<TaskId>,
    pub decided_by: WorkerId,
    pub updated_at: Timestamp,
}

/// What publishing a policy did.
#[derive(Debug, Clone)]
pub struct PolicyReport {
    pub policy: Policy,
    /// Per affected decision (with its client): undone, flagged or kept, and why.
    pub resolutions: Vec<(ClientId, Resolution)>,
}

const DECISION_COLUMNS: &str = "id, client_id, engagement_id, work_item_id, task_id, decision_type, team, payload, item, \
     context, decided_by, designation, qualifications, decided_at_us, status, applied, trace, updated_at_us";

const POLICY_COLUMNS: &str =
    "client_id, layer, engagement_id, team, policy_key, version, decision_type, constraint_kind, \
     field, limit_value, expression, on_fail, is_default, reason, effective_from_us";

fn strings_json(items: &[String]) -> String {
    Value::from(items.to_vec()).to_string()
}

fn parse_strings(text: &str) -> Result<Vec<String>> {
    serde_json::from_str(text)
        .map_err(|err| anyhow::anyhow!("stored list does not parse: {err}").into())
}

fn decision_row(row: &AnyRow) -> Result<StoredDecision> {
    let designation: String = get(row, "designation")?;
    let status: String = get(row, "status")?;
    let task_id: Option<String> = get(row, "task_id")?;
    let record = DecisionRecord {
        id: parse(row, "id")?,
        input: DecisionInput {
            decision_type: get(row, "decision_type")?,
            payload: parse_text(&get::<String>(row, "payload")?)?,
            item: parse_text(&get::<String>(row, "item")?)?,
            context: parse_text(&get::<String>(row, "context")?)?,
            scope: DecisionScope {
                client_id: parse(row, "client_id")?,
                engagement_id: parse(row, "engagement_id")?,
                team: get(row, "team")?,
            },
        },
        decider: Decider {
            designation: parse_designation(&designation)
                .ok_or_else(|| anyhow::anyhow!("stored designation {designation:?} unknown"))?,
            qualifications: parse_strings(&get::<String>(row, "qualifications")?)?,
        },
        decided_at: timestamp(row, "decided_at_us")?,
        status: DecisionStatus::parse(&status)
            .ok_or_else(|| anyhow::anyhow!("stored status {status:?} unknown"))?,
        applied: parse_strings(&get::<String>(row, "applied")?)?,
        trace: parse_strings(&get::<String>(row, "trace")?)?,
    };
    Ok(StoredDecision {
        record,
        work_item_id: parse(row, "work_item_id")?,
        task_id: task_id
            .map(|t| t.parse())
            .transpose()
            .map_err(|e| anyhow::anyhow!("stored task id: {e}"))?,
        decided_by: parse(row, "decided_by")?,
        updated_at: timestamp(row, "updated_at_us")?,
    })
}

fn policy_row(row: &AnyRow) -> Result<Policy> {
    let layer_text: String = get(row, "layer")?;
    let layer = Layer::parse(&layer_text)
        .ok_or_else(|| anyhow::anyhow!("stored layer {layer_text:?} unknown"))?;
    let client_id: Option<String> = get(row, "client_id")?;
    let engagement_id: Option<String> = get(row, "engagement_id")?;
    let kind: String = get(row, "constraint_kind")?;
    let field: Option<String> = get(row, "field")?;
    let limit: Option<i64> = get(row, "limit_value")?;
    let constraint = match (kind.as_str(), field, limit) {
        ("rule", _, _) => Constraint::Rule {
            expression: get::<Option<String>>(row, "expression")?.unwrap_or_default(),
        },
        ("at_most", Some(field), Some(limit)) => Constraint::AtMost { field, limit },
        ("at_least", Some(field), Some(limit)) => Constraint::AtLeast { field, limit },
        _ => return Err(anyhow::anyhow!("stored constraint {kind:?} incomplete").into()),
    };
    let on_fail_text: String = get(row, "on_fail")?;
    Ok(Policy {
        key: get(row, "policy_key")?,
        scope: Scope {
            layer,
            client_id: client_id
                .map(|c| c.parse())
                .transpose()
                .map_err(|e| anyhow::anyhow!("stored client id: {e}"))?,
            engagement_id: engagement_id
                .map(|e| e.parse())
                .transpose()
                .map_err(|e| anyhow::anyhow!("stored engagement id: {e}"))?,
            team: get(row, "team")?,
        },
        decision_type: get(row, "decision_type")?,
        constraint,
        on_fail: OnFail::parse(&on_fail_text)
            .ok_or_else(|| anyhow::anyhow!("stored on_fail {on_fail_text:?} unknown"))?,
        default: get::<i64>(row, "is_default")? != 0,
        reason: get(row, "reason")?,
        version: get::<i64>(row, "version")? as u32,
        effective_from: timestamp(row, "effective_from_us")?,
    })
}

/// A policy as event payload: everything needed to rebuild it.
fn policy_json(policy: &Policy, lookback: SignedDuration) -> Value {
    let (kind, field, limit, expression) = constraint_columns(&policy.constraint);
    json!({
        "key": policy.key,
        "layer": policy.scope.layer.code(),
        "client_id": policy.scope.client_id.map(|c| c.to_string()),
        "engagement_id": policy.scope.engagement_id.map(|e| e.to_string()),
        "team": policy.scope.team,
        "version": policy.version,
        "decision_type": policy.decision_type,
        "constraint_kind": kind,
        "field": field,
        "limit_value": limit,
        "expression": expression,
        "on_fail": policy.on_fail.code(),
        "is_default": policy.default,
        "reason": policy.reason,
        "effective_from_us": us(policy.effective_from),
        "lookback_hours": lookback.as_hours(),
    })
}

fn constraint_columns(
    constraint: &Constraint,
) -> (&'static str, Option<String>, Option<i64>, Option<String>) {
    match constraint {
        Constraint::Rule { expression } => ("rule", None, None, Some(expression.clone())),
        Constraint::AtMost { field, limit } => ("at_most", Some(field.clone()), Some(*limit), None),
        Constraint::AtLeast { field, limit } => {
            ("at_least", Some(field.clone()), Some(*limit), None)
        }
    }
}

fn policy_from_json(value: &Value) -> Result<(Policy, SignedDuration)> {
    let text = |key: &str| value[key].as_str().map(str::to_string);
    let bad =
        |what: &str| StoreError::Other(anyhow::anyhow!("policy event without a valid {what}"));
    let layer =
        Layer::parse(value["layer"].as_str().unwrap_or_default()).ok_or_else(|| bad("layer"))?;
    let constraint = match value["constraint_kind"].as_str() {
        Some("rule") => Constraint::Rule {
            expression: text("expression").ok_or_else(|| bad("expression"))?,
        },
        Some("at_most") => Constraint::AtMost {
            field: text("field").ok_or_else(|| bad("field"))?,
            limit: value["limit_value"].as_i64().ok_or_else(|| bad("limit"))?,
        },
        Some("at_least") => Constraint::AtLeast {
            field: text("field").ok_or_else(|| bad("field"))?,
            limit: value["limit_value"].as_i64().ok_or_else(|| bad("limit"))?,
        },
        _ => return Err(bad("constraint")),
    };
    let policy = Policy {
        key: text("key").ok_or_else(|| bad("key"))?,
        scope: Scope {
            layer,
            client_id: text("client_id")
                .map(|c| c.parse())
                .transpose()
                .map_err(|_| bad("client id"))?,
            engagement_id: text("engagement_id")
                .map(|e| e.parse())
                .transpose()
                .map_err(|_| bad("engagement id"))?,
            team: text("team"),
        },
        decision_type: text("decision_type"),
        constraint,
        on_fail: OnFail::parse(value["on_fail"].as_str().unwrap_or_default())
            .ok_or_else(|| bad("on_fail"))?,
        default: value["is_default"].as_bool().unwrap_or(false),
        reason: text("reason"),
        version: value["version"].as_u64().ok_or_else(|| bad("version"))? as u32,
        effective_from: Timestamp::from_microsecond(
            value["effective_from_us"]
                .as_i64()
                .ok_or_else(|| bad("time"))?,
        )
        .map_err(|_| bad("time"))?,
    };
    let lookback = SignedDuration::from_hours(
        value["lookback_hours"]
            .as_i64()
            .ok_or_else(|| bad("lookback"))?,
    );
    Ok((policy, lookback))
}

/// Every policy version a client's decisions are under (the firm's and its own), in the order
/// they were published.
async fn load_book(conn: &mut AnyConnection, client_id: Option<ClientId>) -> Result<PolicyBook> {
    let rows = sqlx::query(&format!(
        "SELECT {POLICY_COLUMNS} FROM policies WHERE client_id IS NULL OR client_id = $1 ORDER BY seq"
    ))
    .bind(client_id.map(|c| c.to_string()).unwrap_or_default())
    .fetch_all(conn)
    .await?;
    let mut book = PolicyBook::new();
    for row in &rows {
        book.insert(policy_row(row)?)
            .map_err(|err| anyhow::anyhow!("stored policy: {err}"))?;
    }
    Ok(book)
}

async fn load_types(
    conn: &mut AnyConnection,
    client_id: ClientId,
) -> Result<BTreeMap<String, DecisionType>> {
    let rows = sqlx::query(
        "SELECT name, amount_field, limits, required_qualifications, inverse_action, undo_window_hours, reopen_on_undo
         FROM decision_types WHERE client_id = $1 ORDER BY created_at_us",
    )
    .bind(client_id.to_string())
    .fetch_all(conn)
    .await?;
    let mut types = BTreeMap::new();
    for row in &rows {
        let decision_type = decision_type_row(row)?;
        types.insert(decision_type.name.clone(), decision_type);
    }
    Ok(types)
}

fn decision_type_row(row: &AnyRow) -> Result<DecisionType> {
    let limits: Vec<(String, i64)> = serde_json::from_str(&get::<String>(row, "limits")?)
        .map_err(|err| anyhow::anyhow!("stored limits do not parse: {err}"))?;
    let limits = limits
        .into_iter()
        .map(|(d, limit)| {
            parse_designation(&d)
                .map(|d| (d, limit))
                .ok_or_else(|| anyhow::anyhow!("stored designation {d:?} unknown"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let inverse: Option<String> = get(row, "inverse_action")?;
    Ok(DecisionType {
        name: get(row, "name")?,
        amount_field: get(row, "amount_field")?,
        limits,
        required_qualifications: parse_strings(&get::<String>(row, "required_qualifications")?)?,
        inverse: match inverse {
            Some(action) => Inverse::Compensate { action },
            None => Inverse::Irreversible,
        },
        undo_window_hours: get::<i64>(row, "undo_window_hours")? as u32,
        reopen_on_undo: get::<i64>(row, "reopen_on_undo")? != 0,
    })
}

/// Serialises policy publication against decisions on PostgreSQL: a decision takes the firm
/// chain head in share mode and its client's for update; publishing takes the chain it writes
/// to for update. On SQLite the single writer already serialises them.
async fn lock_chains(
    conn: &mut AnyConnection,
    engine: Engine,
    client_id: Option<ClientId>,
    firm: &str,
) -> Result<()> {
    if engine != Engine::Postgres {
        return Ok(());
    }
    sqlx::query(&format!(
        "SELECT seq FROM chain_heads WHERE client_id = $1 FOR {firm}"
    ))
    .bind(FIRM_CHAIN.to_string())
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(client_id) = client_id {
        sqlx::query("SELECT seq FROM chain_heads WHERE client_id = $1 FOR UPDATE")
            .bind(client_id.to_string())
            .fetch_optional(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Writes a decision type and its event inside the caller's transaction.
pub(crate) async fn write_decision_type(
    conn: &mut crate::tx::Tx,
    client_id: karya_core::id::ClientId,
    engagement_id: EngagementId,
    decision_type: &DecisionType,
    now: Timestamp,
) -> Result<()> {
    let limits: Vec<(String, i64)> = decision_type
        .limits
        .iter()
        .map(|(d, limit)| (d.code().to_string(), *limit))
        .collect();
    let inverse = match &decision_type.inverse {
        Inverse::Compensate { action } => Some(action.clone()),
        Inverse::Irreversible => None,
    };
    let inserted = sqlx::query(
        "INSERT INTO decision_types (client_id, engagement_id, name, amount_field, limits, required_qualifications,
             inverse_action, undo_window_hours, reopen_on_undo, created_at_us)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(client_id.to_string())
    .bind(engagement_id.to_string())
    .bind(&decision_type.name)
    .bind(decision_type.amount_field.clone())
    .bind(json!(limits).to_string())
    .bind(strings_json(&decision_type.required_qualifications))
    .bind(inverse.clone())
    .bind(i64::from(decision_type.undo_window_hours))
    .bind(i64::from(decision_type.reopen_on_undo))
    .bind(us(now))
    .execute(&mut *conn)
    .await;
    match inserted {
        Err(err) if is_unique_violation(&err) => {
            return Err(StoreError::Conflict {
                message: format!(
                    "the engagement has a decision type {:?} already",
                    decision_type.name
                ),
            })
        }
        other => other?,
    };
    append(
        conn,
        client_id,
        EventKind::DecisionTypeRegistered,
        &engagement_id.to_string(),
        &json!({
            "name": decision_type.name,
            "amount_field": decision_type.amount_field,
            "limits": limits,
            "required_qualifications": decision_type.required_qualifications,
            "inverse_action": inverse,
            "undo_window_hours": decision_type.undo_window_hours,
            "reopen_on_undo": decision_type.reopen_on_undo,
        }),
        now,
    )
    .await?;
    Ok(())
}

fn status_event(status: DecisionStatus) -> Option<EventKind> {
    match status {
        DecisionStatus::Undone => Some(EventKind::DecisionUndone),
        DecisionStatus::Flagged => Some(EventKind::DecisionFlagged),
        _ => None,
    }
}

impl Tenant {
    /// Declares a decision type for an engagement (from its pack, or by an administrator).
    pub async fn register_decision_type(
        &self,
        engagement_id: EngagementId,
        decision_type: &DecisionType,
        now: Timestamp,
    ) -> Result<()> {
        self.engagement(engagement_id).await?;
        let mut tx = crate::tx::Tx::begin(&self.store).await?;
        write_decision_type(&mut tx, self.client_id, engagement_id, decision_type, now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The decision types of one engagement.
    pub async fn decision_types(&self, engagement_id: EngagementId) -> Result<Vec<DecisionType>> {
        self.engagement(engagement_id).await?;
        let rows = sqlx::query(
            "SELECT name, amount_field, limits, required_qualifications, inverse_action, undo_window_hours, reopen_on_undo
             FROM decision_types WHERE client_id = $1 AND engagement_id = $2 ORDER BY name",
        )
        .bind(self.client_id.to_string())
        .bind(engagement_id.to_string())
        .fetch_all(&self.store.reader)
        .await?;
        rows.iter().map(decision_type_row).collect()
    }

    /// Takes a decision: rules on it (authority, then every policy in force) and records it
    /// with its ruling, whatever the ruling is.
    pub async fn take_decision(&self, new: &NewDecision, now: Timestamp) -> Result<StoredDecision> {
        let item = self.work_item(new.work_item_id).await?;
        let engagement = self.engagement(item.engagement_id).await?;
        if let Some(task_id) = new.task_id {
            let task = self.task(task_id).await?;
            if task.work_item_id != item.id {
                return Err(StoreError::Rejected {
                    message: format!("task {task_id} is not a task of work item {}", item.id),
                });
            }
        }
        let worker = self.store.worker(new.decided_by).await?;
        let mut tx = crate::tx::Tx::begin(&self.store).await?;
        lock_chains(&mut tx, self.store.engine, Some(self.client_id), "SHARE").await?;
        let row = sqlx::query(
            "SELECT name, amount_field, limits, required_qualifications, inverse_action, undo_window_hours, reopen_on_undo
             FROM decision_types WHERE client_id = $1 AND engagement_id = $2 AND name = $3",
        )
        .bind(self.client_id.to_string())
        .bind(engagement.id.to_string())
        .bind(&new.decision_type)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| StoreError::not_found("decision type", &new.decision_type))?;
        let decision_type = decision_type_row(&row)?;
        let book = load_book(&mut tx, Some(self.client_id)).await?;

        let input_attr = parse_text(&item.input).unwrap_or(Attr::Null);
        let item_attr = Attr::map()
            .with("title", item.title.as_str())
            .with("priority", item.priority.code())
            .with("state", item.state.code())
            .with("service_line", engagement.service_line.code())
            .with("input", input_attr);
        let decider = Decider {
            designation: worker.designation,
            qualifications: Vec::new(),
        };
        let context = Attr::map()
            .with("designation", worker.designation.code())
            .with("qualifications", decider.qualifications.clone())
            .with("worker_id", worker.id.to_string())
            .with(
                "team",
                new.team.clone().map(Attr::Text).unwrap_or(Attr::Null),
            );
        let input = DecisionInput {
            decision_type: new.decision_type.clone(),
            payload: new.payload.clone(),
            item: item_attr,
            context,
            scope: DecisionScope {
                client_id: self.client_id,
                engagement_id: engagement.id,
                team: new.team.clone(),
            },
        };
        let ruling = ledger::rule(&book, &decision_type, &input, &decider);
        let record = DecisionRecord {
            id: new.id,
            input,
            decider,
            decided_at: Timestamp::from_microsecond(us(now)).unwrap_or(now),
            status: ruling.status,
            applied: ruling.applied,
            trace: ruling.trace,
        };
        sqlx::query(&format!(
            "INSERT INTO decisions ({DECISION_COLUMNS})
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $14)"
        ))
        .bind(new.id.to_string())
        .bind(self.client_id.to_string())
        .bind(engagement.id.to_string())
        .bind(item.id.to_string())
        .bind(new.task_id.map(|t| t.to_string()))
        .bind(&new.decision_type)
        .bind(new.team.clone())
        .bind(to_json(&record.input.payload).to_string())
        .bind(to_json(&record.input.item).to_string())
        .bind(to_json(&record.input.context).to_string())
        .bind(worker.id.to_string())
        .bind(worker.designation.code())
        .bind(strings_json(&record.decider.qualifications))
        .bind(us(now))
        .bind(record.status.code())
        .bind(strings_json(&record.applied))
        .bind(strings_json(&record.trace))
        .execute(&mut *tx)
        .await?;
        append(
            &mut tx,
            self.client_id,
            EventKind::DecisionTaken,
            &new.id.to_string(),
            &json!({
                "decision_type": new.decision_type,
                "engagement_id": engagement.id.to_string(),
                "work_item_id": item.id.to_string(),
                "task_id": new.task_id.map(|t| t.to_string()),
                "team": new.team,
                "payload": to_json(&record.input.payload),
                "item": to_json(&record.input.item),
                "context": to_json(&record.input.context),
                "decided_by": worker.id.to_string(),
                "designation": worker.designation.code(),
                "qualifications": record.decider.qualifications,
                "status": record.status.code(),
                "applied": record.applied,
                "trace": record.trace,
            }),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(StoredDecision {
            record,
            work_item_id: item.id,
            task_id: new.task_id,
            decided_by: worker.id,
            updated_at: Timestamp::from_microsecond(us(now)).unwrap_or(now),
        })
    }

    pub async fn decision(&self, id: DecisionId) -> Result<StoredDecision> {
        let row = sqlx::query(&format!(
            "SELECT {DECISION_COLUMNS} FROM decisions WHERE client_id = $1 AND id = $2"
        ))
        .bind(self.client_id.to_string())
        .bind(id.to_string())
        .fetch_optional(&self.store.reader)
        .await?
        .ok_or_else(|| StoreError::not_found("decision", id))?;
        decision_row(&row)
    }

    pub async fn list_decisions(&self, page: &PageRequest) -> Result<Page<StoredDecision>> {
        let limit = page.limit();
        let rows = sqlx::query(&format!(
            "SELECT {DECISION_COLUMNS} FROM decisions WHERE client_id = $1 AND id > $2 ORDER BY id LIMIT $3"
        ))
        .bind(self.client_id.to_string())
        .bind(page.after.clone().unwrap_or_default())
        .bind(limit)
        .fetch_all(&self.store.reader)
        .await?;
        let items = rows.iter().map(decision_row).collect::<Result<Vec<_>>>()?;
        Ok(page_of(items, limit, |d| d.record.id.to_string()))
    }

    /// Approves (into force) or rejects a decision waiting for approval.
    pub async fn settle_approval(
        &self,
        id: DecisionId,
        approve: bool,
        now: Timestamp,
    ) -> Result<StoredDecision> {
        let mut decision = self.decision(id).await?;
        let DecisionStatus::PendingApproval(_) = decision.record.status else {
            return Err(StoreError::Rejected {
                message: format!(
                    "decision {id} is {}, not pending approval",
                    decision.record.status.code()
                ),
            });
        };
        let (status, kind) = match approve {
            true => (DecisionStatus::InForce, EventKind::DecisionApproved),
            false => (DecisionStatus::Rejected, EventKind::DecisionRejected),
        };
        let mut tx = crate::tx::Tx::begin(&self.store).await?;
        update_status(&mut tx, self.client_id, &decision.record, status, None, now).await?;
        append(
            &mut tx,
            self.client_id,
            kind,
            &id.to_string(),
            &json!({"from": decision.record.status.code()}),
            now,
        )
        .await?;
        tx.commit().await?;
        decision.record.status = status;
        Ok(decision)
    }

    /// Undoes a decision on request: refused when its type is irreversible or its window closed.
    pub async fn undo_decision(&self, id: DecisionId, now: Timestamp) -> Result<StoredDecision> {
        let mut decision = self.decision(id).await?;
        let mut tx = crate::tx::Tx::begin(&self.store).await?;
        let types = load_types(&mut tx, self.client_id).await?;
        let decision_type = types
            .get(&decision.record.input.decision_type)
            .ok_or_else(|| {
                StoreError::not_found("decision type", &decision.record.input.decision_type)
            })?;
        let compensation = ledger::undo(&decision.record, decision_type, now).map_err(|err| {
            StoreError::Rejected {
                message: format!("decision {id} cannot be undone: {err}"),
            }
        })?;
        let trace = format!("decision {id} undone on request: {compensation}");
        update_status(
            &mut tx,
            self.client_id,
            &decision.record,
            DecisionStatus::Undone,
            Some(&trace),
            now,
        )
        .await?;
        append(
            &mut tx,
            self.client_id,
            EventKind::DecisionUndone,
            &id.to_string(),
            &json!({"requested": true, "compensation": compensation, "trace": trace}),
            now,
        )
        .await?;
        if decision_type.reopen_on_undo {
            reopen(&mut tx, self.client_id, decision.work_item_id, &trace, now).await?;
        }
        tx.commit().await?;
        decision.record.status = DecisionStatus::Undone;
        decision.record.trace.push(trace);
        Ok(decision)
    }

    /// Every policy version this client's decisions are under: the firm's and its own.
    pub async fn policies(&self) -> Result<Vec<Policy>> {
        let mut conn = self.store.reader.acquire().await?;
        let book = load_book(&mut conn, Some(self.client_id)).await?;
        let in_force: Vec<Policy> = book.in_force().cloned().collect();
        Ok(in_force)
    }

    /// The client's decision log, as the ledger replays it: policy versions (the firm's and the
    /// client's), decisions taken, approvals and requested undos, in the order they happened.
    pub async fn decision_log(&self) -> Result<(BTreeMap<String, DecisionType>, Vec<LedgerEntry>)> {
        let mut conn = self.store.reader.acquire().await?;
        let types = load_types(&mut conn, self.client_id).await?;
        let sql = format!(
            "SELECT client_id, seq, at_us, kind, entity_id, payload FROM {} AS events
             WHERE (client_id = $1 AND kind IN ('policy.published', 'decision.taken', 'decision.approved',
                                                'decision.rejected', 'decision.undone'))
                OR (client_id = $2 AND kind = 'policy.published')
             ORDER BY at_us, seq",
            event_rows(&conn)
        );
        let rows = sqlx::query(&sql)
            .bind(self.client_id.to_string())
            .bind(FIRM_CHAIN.to_string())
            .fetch_all(&mut *conn)
            .await?;
        let mut entries = Vec::new();
        for row in &rows {
            let kind: String = get(row, "kind")?;
            let at = timestamp(row, "at_us")?;
            let payload: Value = serde_json::from_str(&get::<String>(row, "payload")?)
                .map_err(|err| anyhow::anyhow!("stored event payload: {err}"))?;
            let id = || -> Result<DecisionId> { parse(row, "entity_id") };
            let entry = match kind.as_str() {
                "policy.published" => {
                    let (policy, lookback) = policy_from_json(&payload)?;
                    LedgerEntry::PolicyPublished {
                        policy,
                        at,
                        lookback,
                    }
                }
                "decision.taken" => LedgerEntry::DecisionTaken {
                    id: id()?,
                    input: input_from_event(self.client_id, &payload)?,
                    decider: decider_from_event(&payload)?,
                    at,
                },
                "decision.approved" => LedgerEntry::Approved { id: id()?, at },
                "decision.rejected" => LedgerEntry::Rejected { id: id()?, at },
                // Undos a policy change caused are the ledger's to derive; only requests are input.
                "decision.undone" if payload["requested"] == true => {
                    LedgerEntry::UndoRequested { id: id()?, at }
                }
                _ => continue,
            };
            entries.push(entry);
        }
        Ok((types, entries))
    }
}

fn input_from_event(client_id: ClientId, payload: &Value) -> Result<DecisionInput> {
    let attr = |key: &str| {
        crate::attrs::from_json(&payload[key]).map_err(|e| StoreError::Other(anyhow::anyhow!(e)))
    };
    Ok(DecisionInput {
        decision_type: payload["decision_type"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        payload: attr("payload")?,
        item: attr("item")?,
        context: attr("context")?,
        scope: DecisionScope {
            client_id,
            engagement_id: payload["engagement_id"]
                .as_str()
                .unwrap_or_default()
                .parse()
                .map_err(|e| anyhow::anyhow!("decision event engagement id: {e}"))?,
            team: payload["team"].as_str().map(str::to_string),
        },
    })
}

fn decider_from_event(payload: &Value) -> Result<Decider> {
    let designation = payload["designation"].as_str().unwrap_or_default();
    Ok(Decider {
        designation: parse_designation(designation)
            .ok_or_else(|| anyhow::anyhow!("decision event designation {designation:?} unknown"))?,
        qualifications: payload["qualifications"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|q| q.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default(),
    })
}

async fn update_status(
    conn: &mut AnyConnection,
    client_id: ClientId,
    record: &DecisionRecord,
    status: DecisionStatus,
    trace_line: Option<&str>,
    now: Timestamp,
) -> Result<()> {
    let mut trace = record.trace.clone();
    trace.extend(trace_line.map(str::to_string));
    let updated = sqlx::query(
        "UPDATE decisions SET status = $1, trace = $2, updated_at_us = $3 WHERE client_id = $4 AND id = $5 AND status = $6",
    )
    .bind(status.code())
    .bind(strings_json(&trace))
    .bind(us(now))
    .bind(client_id.to_string())
    .bind(record.id.to_string())
    .bind(record.status.code())
    .execute(conn)
    .await?;
    if updated.rows_affected() != 1 {
        return Err(StoreError::Conflict {
            message: format!(
                "decision {} changed concurrently: reload and retry",
                record.id
            ),
        });
    }
    Ok(())
}

/// Sends a delivered work item back to work because a decision in it was undone; its SLA
/// clock runs again.
async fn reopen(
    conn: &mut crate::tx::Tx,
    client_id: ClientId,
    work_item_id: WorkItemId,
    reason: &str,
    now: Timestamp,
) -> Result<()> {
    let row = sqlx::query(&format!(
        "SELECT {} FROM work_items WHERE client_id = $1 AND id = $2",
        crate::work::WORK_ITEM_COLUMNS
    ))
    .bind(client_id.to_string())
    .bind(work_item_id.to_string())
    .fetch_one(&mut *conn)
    .await?;
    let item = crate::work::work_item_row(&row)?;
    if item.state != WorkItemState::Delivered {
        return Ok(());
    }
    crate::work::move_work_item(conn, item, WorkItemState::InProgress, Some(reason), now).await?;
    Ok(())
}

impl Store {
    /// Publishes a policy version, then finds the decisions of the last `lookback` that now
    /// conflict with the policies in force: undoes the reversible ones inside their window
    /// (reopening their work items where the type says so), flags the rest, and reports all
    /// of it. A draft that would loosen a higher layer is refused with the explanation.
    pub async fn publish_policy(
        &self,
        draft: PolicyDraft,
        lookback: SignedDuration,
        now: Timestamp,
    ) -> Result<PolicyReport> {
        let client_id = draft.scope.client_id;
        if let Some(client_id) = client_id {
            self.client(client_id).await?;
        }
        if let Some(engagement_id) = draft.scope.engagement_id {
            self.tenant(client_id.unwrap_or(FIRM_CHAIN))
                .engagement(engagement_id)
                .await?;
        }
        let mut tx = crate::tx::Tx::begin(self).await?;
        if client_id.is_none() {
            ensure_firm_chain(&mut tx).await?;
        }
        lock_chains(&mut tx, self.engine, client_id, "UPDATE").await?;
        let mut book = load_book(&mut tx, client_id).await?;
        let policy = book
            .publish(draft, Timestamp::from_microsecond(us(now)).unwrap_or(now))
            .map_err(|err| StoreError::Rejected {
                message: err.to_string(),
            })?;
        let (kind, field, limit, expression) = constraint_columns(&policy.constraint);
        sqlx::query(&format!(
            "INSERT INTO policies (id, {POLICY_COLUMNS}, seq)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16,
                     (SELECT COALESCE(MAX(seq), 0) + 1 FROM policies))"
        ))
        .bind(uuid::Uuid::now_v7().to_string())
        .bind(client_id.map(|c| c.to_string()))
        .bind(policy.scope.layer.code())
        .bind(policy.scope.engagement_id.map(|e| e.to_string()))
        .bind(policy.scope.team.clone())
        .bind(&policy.key)
        .bind(i64::from(policy.version))
        .bind(policy.decision_type.clone())
        .bind(kind)
        .bind(field)
        .bind(limit)
        .bind(expression)
        .bind(policy.on_fail.code())
        .bind(i64::from(policy.default))
        .bind(policy.reason.clone())
        .bind(us(policy.effective_from))
        .execute(&mut *tx)
        .await?;
        let label = policy.label();
        append(
            &mut tx,
            client_id.unwrap_or(FIRM_CHAIN),
            EventKind::PolicyPublished,
            &label,
            &policy_json(&policy, lookback),
            now,
        )
        .await?;

        let since = us(now.checked_sub(lookback).unwrap_or(Timestamp::MIN));
        let affected: Vec<ClientId> = match client_id {
            Some(client_id) => vec![client_id],
            None => {
                let rows = sqlx::query(
                    "SELECT DISTINCT client_id FROM decisions WHERE status = 'in_force' AND decided_at_us >= $1 ORDER BY client_id",
                )
                .bind(since)
                .fetch_all(&mut *tx)
                .await?;
                rows.iter()
                    .map(|row| parse(row, "client_id"))
                    .collect::<Result<_>>()?
            }
        };
        let mut report = Vec::new();
        for affected_client in affected {
            let book = load_book(&mut tx, Some(affected_client)).await?;
            let types = load_types(&mut tx, affected_client).await?;
            let rows = sqlx::query(&format!(
                "SELECT {DECISION_COLUMNS} FROM decisions
                 WHERE client_id = $1 AND status = 'in_force' AND decided_at_us >= $2 ORDER BY decided_at_us, id"
            ))
            .bind(affected_client.to_string())
            .bind(since)
            .fetch_all(&mut *tx)
            .await?;
            let decisions = rows.iter().map(decision_row).collect::<Result<Vec<_>>>()?;
            let records: Vec<DecisionRecord> = decisions.iter().map(|d| d.record.clone()).collect();
            for resolution in
                ledger::resolve_change(&book, &types, &records, &policy, now, lookback)
            {
                let decision = decisions
                    .iter()
                    .find(|d| d.record.id == resolution.id())
                    .expect("resolutions name loaded decisions");
                let status = match &resolution {
                    Resolution::Undone { .. } => DecisionStatus::Undone,
                    Resolution::Flagged { .. } => DecisionStatus::Flagged,
                    Resolution::Kept { .. } => {
                        report.push((affected_client, resolution));
                        continue;
                    }
                };
                update_status(
                    &mut tx,
                    affected_client,
                    &decision.record,
                    status,
                    Some(resolution.trace()),
                    now,
                )
                .await?;
                let mut payload =
                    json!({"requested": false, "policy": label, "trace": resolution.trace()});
                if let Resolution::Undone { compensation, .. } = &resolution {
                    payload["compensation"] = json!(compensation);
                }
                let kind = status_event(status).expect("undone and flagged have events");
                append(
                    &mut tx,
                    affected_client,
                    kind,
                    &decision.record.id.to_string(),
                    &payload,
                    now,
                )
                .await?;
                if let Resolution::Undone {
                    reopen: true,
                    trace,
                    ..
                } = &resolution
                {
                    reopen(&mut tx, affected_client, decision.work_item_id, trace, now).await?;
                }
                report.push((affected_client, resolution));
            }
        }
        tx.commit().await?;
        Ok(PolicyReport {
            policy,
            resolutions: report,
        })
    }
}

/// The designation codes, for validating input at the edge.
pub fn designation_from_code(code: &str) -> Option<Designation> {
    parse_designation(code)
}
