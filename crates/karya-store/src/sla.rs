//! SLA persistence: calendars (a client's own, and each delivery site's), an engagement's SLA
//! terms and pricing, the derived SLA state of each work item, and the loads that metrics and
//! invoices are computed from.
//!
//! An engagement's clocks run on the calendar it names: one of its client's calendars, or the
//! calendar of a delivery site (firm data, shared by every client served from that site). A
//! change of a site's calendar recomputes the open items of every engagement clocked on it,
//! each client's recompute recorded in that client's chain.
//!
//! The SLA state of an item is derived data: [`karya_core::sla::evaluate`] over the item's
//! events, with the terms of its engagement and priority on the engagement's calendar. The
//! work item changes in `work.rs` call [`refresh_item`] in their own transaction; a change of
//! terms or calendar recomputes every open item of the engagements concerned in one
//! transaction, in batches of [`RECOMPUTE_BATCH`] items (one read of their events and one
//! write per batch), and records the reason as one event.

use std::collections::HashMap;
use std::fmt::Write as _;

use jiff::civil::{Date, Time};
use jiff::{SignedDuration, Timestamp};
use karya_core::billing::{
    self, AccuracyEvidence, BillableItem, CreditRule, EngagementBilling, Invoice, ItemRate, Pricing,
};
use karya_core::calendar::{Calendar, Shift};
use karya_core::event::{EntityType, EventKind};
use karya_core::id::{CalendarId, ClientId, EngagementId, SiteId, TaskId, WorkItemId};
use karya_core::lifecycle::{TaskState, WorkItemState};
use karya_core::metrics::{self, ItemFacts, Performance, TaskFacts};
use karya_core::model::Priority;
use karya_core::money::{Currency, Money};
use karya_core::sla::{self, ClockEvent, ClockRecord, ClockState, SlaStatus, SlaTerms};
use serde_json::{json, Value};
use sqlx::any::AnyRow;
use sqlx::AnyConnection;

use crate::events::{append, event_rows};
use crate::rows::{get, is_foreign_key_violation, parse, timestamp, us};
use crate::tx::{PendingEvent, Tx};
use crate::{Result, Store, StoreError, Tenant};

/// Items recomputed per round trip: one events read and one write each. 200 items bind about
/// 3 400 values per insert, well under SQLite's and PostgreSQL's limits on parameters.
pub const RECOMPUTE_BATCH: usize = 200;

/// Most open items one recompute takes on, so a single change of terms cannot hold the writer
/// for minutes; beyond it the change is refused and must be split (e.g. per engagement).
pub const RECOMPUTE_ITEMS_MAX: usize = 100_000;

/// Most items a metrics or invoice computation loads; a month of a large engagement fits.
pub const REPORT_ITEMS_MAX: i64 = 200_000;

/// Upper bounds, in business seconds, of the response and turnaround histograms.
pub const HISTOGRAM_BUCKETS_S: [i64; 8] = [
    900,
    3_600,
    4 * 3_600,
    8 * 3_600,
    16 * 3_600,
    40 * 3_600,
    80 * 3_600,
    160 * 3_600,
];

/// A calendar as stored: the zone by name, resolved when the calendar is used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalendarSpec {
    pub id: CalendarId,
    pub name: String,
    /// IANA time zone name, e.g. `Asia/Kolkata`.
    pub time_zone: String,
    /// Shifts per weekday, Monday first.
    pub week: [Vec<Shift>; 7],
    pub holidays: Vec<Date>,
    pub exceptions: Vec<(Date, Vec<Shift>)>,
}

impl CalendarSpec {
    /// The calendar with its zone looked up in the time zone database.
    pub fn to_calendar(&self) -> Result<Calendar> {
        let zone =
            jiff::tz::TimeZone::get(&self.time_zone).map_err(|err| StoreError::Rejected {
                message: format!("unknown time zone {:?}: {err}", self.time_zone),
            })?;
        Ok(Calendar {
            zone,
            week: self.week.clone(),
            holidays: self.holidays.iter().copied().collect(),
            exceptions: self.exceptions.iter().cloned().collect(),
        })
    }
}

/// The calendar an engagement's clocks run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CalendarRef {
    /// One of the client's own calendars.
    Client(CalendarId),
    /// The calendar of a delivery site.
    Site(SiteId),
}

impl From<CalendarId> for CalendarRef {
    fn from(id: CalendarId) -> CalendarRef {
        CalendarRef::Client(id)
    }
}

/// How an engagement's SLA is measured and billed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngagementSla {
    pub calendar: CalendarRef,
    pub terms: Vec<(Priority, SlaTerms)>,
    pub pricing: Pricing,
    /// What missing the on-time target costs.
    pub credit_rule: Option<CreditRule>,
    /// What missing the accuracy target (of the terms) costs.
    pub accuracy_credit_rule: Option<CreditRule>,
}

/// One milestone of a stored SLA state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MilestoneState {
    pub target: SignedDuration,
    pub elapsed: SignedDuration,
    pub due_at: Option<Timestamp>,
    pub met_at: Option<Timestamp>,
    pub breached: bool,
}

/// The SLA state of a work item as last computed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlaState {
    pub work_item_id: WorkItemId,
    pub engagement_id: EngagementId,
    pub clock: ClockState,
    pub started_at: Timestamp,
    pub response: MilestoneState,
    pub resolution: MilestoneState,
    /// When the resolution crosses the warning threshold.
    pub warn_at: Option<Timestamp>,
    pub computed_at: Timestamp,
}

/// What a recompute did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RecomputeReport {
    pub items: u64,
    pub breached: u64,
}

/// Firm-wide SLA figures for the metrics endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SlaMetrics {
    /// Work items per current state.
    pub items_by_state: Vec<(String, i64)>,
    /// Work items ever received.
    pub items_received: i64,
    /// Items past their resolution target, open or delivered.
    pub breached: i64,
    /// Cumulative counts per [`HISTOGRAM_BUCKETS_S`] bound, then the count and sum (seconds).
    pub response: (Vec<i64>, i64, i64),
    pub turnaround: (Vec<i64>, i64, i64),
}

const STATE_COLUMNS: &str = "work_item_id, engagement_id, clock_state, started_at_us, \
    response_target_s, response_elapsed_s, response_due_at_us, response_met_at_us, response_breached, \
    resolution_target_s, resolution_elapsed_s, resolution_due_at_us, resolution_warn_at_us, \
    resolution_met_at_us, resolution_breached, computed_at_us";
const STATE_COLUMN_COUNT: usize = 16;

/// Recomputes the SLA state of one item inside the caller's transaction. Does nothing when the
/// engagement has no SLA terms for the item's priority.
pub(crate) async fn refresh_item(
    conn: &mut Tx,
    client_id: ClientId,
    work_item_id: WorkItemId,
    engagement_id: EngagementId,
    priority: Priority,
    now: Timestamp,
) -> Result<()> {
    let Some(config) = load_config(conn, client_id, engagement_id).await? else {
        return Ok(());
    };
    let Some(terms) = config.terms_for(priority) else {
        return Ok(());
    };
    let pending = conn.pending_where(|e| is_work_item_event_of(e, client_id));
    let records = load_clock_records(conn, client_id, &[work_item_id], &pending).await?;
    let status = evaluate(&config.calendar, &terms, records.get(&work_item_id), now)?;
    write_states(
        conn,
        client_id,
        &[(work_item_id, engagement_id, status)],
        now,
    )
    .await
}

/// An engagement's configuration, ready for the core.
pub(crate) struct Config {
    pub(crate) calendar: Calendar,
    terms: Vec<(Priority, SlaTerms)>,
}

impl Config {
    pub(crate) fn terms_for(&self, priority: Priority) -> Option<SlaTerms> {
        self.terms
            .iter()
            .find(|(p, _)| *p == priority)
            .map(|(_, t)| *t)
    }
}

pub(crate) fn evaluate(
    calendar: &Calendar,
    terms: &SlaTerms,
    records: Option<&Vec<ClockRecord>>,
    now: Timestamp,
) -> Result<SlaStatus> {
    let records = records.map(Vec::as_slice).unwrap_or_default();
    sla::evaluate(calendar, terms, records, now)
        .map_err(|err| anyhow::anyhow!("sla evaluation failed: {err}").into())
}

pub(crate) async fn load_config(
    conn: &mut AnyConnection,
    client_id: ClientId,
    engagement_id: EngagementId,
) -> Result<Option<Config>> {
    // One of the two joins matches: the engagement names exactly one calendar.
    let row = sqlx::query(
        "SELECT COALESCE(c.id, sc.site_id) AS id, COALESCE(c.name, sc.name) AS name,
                COALESCE(c.time_zone, sc.time_zone) AS time_zone, COALESCE(c.week, sc.week) AS week,
                COALESCE(c.holidays, sc.holidays) AS holidays,
                COALESCE(c.exceptions, sc.exceptions) AS exceptions
         FROM engagement_sla s
         LEFT JOIN calendars c ON c.id = s.calendar_id AND c.client_id = s.client_id
         LEFT JOIN site_calendars sc ON sc.site_id = s.calendar_site_id
         WHERE s.client_id = $1 AND s.engagement_id = $2",
    )
    .bind(client_id.to_string())
    .bind(engagement_id.to_string())
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let calendar = calendar_row(&row)?.to_calendar()?;
    let terms = load_terms(conn, client_id, engagement_id).await?;
    Ok(Some(Config { calendar, terms }))
}

async fn load_terms(
    conn: &mut AnyConnection,
    client_id: ClientId,
    engagement_id: EngagementId,
) -> Result<Vec<(Priority, SlaTerms)>> {
    let rows = sqlx::query(
        "SELECT priority, first_response_s, resolution_s, warning_pct, on_time_target_bp, accuracy_target_bp
         FROM sla_terms WHERE client_id = $1 AND engagement_id = $2 ORDER BY priority",
    )
    .bind(client_id.to_string())
    .bind(engagement_id.to_string())
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|row| {
            let rank: i64 = get(row, "priority")?;
            let priority = usize::try_from(rank)
                .ok()
                .and_then(|idx| Priority::ALL.get(idx).copied())
                .ok_or_else(|| anyhow::anyhow!("stored priority {rank} unknown"))?;
            Ok((
                priority,
                SlaTerms {
                    first_response: SignedDuration::from_secs(get(row, "first_response_s")?),
                    resolution: SignedDuration::from_secs(get(row, "resolution_s")?),
                    warning_pct: get::<i64>(row, "warning_pct")?.clamp(0, 100) as u8,
                    on_time_target_bp: get::<i64>(row, "on_time_target_bp")? as u32,
                    accuracy_target_bp: get::<i64>(row, "accuracy_target_bp")? as u32,
                },
            ))
        })
        .collect()
}

/// Whether `event` is about a work item of `client_id` (the events a clock is derived from).
pub(crate) fn is_work_item_event_of(event: &PendingEvent, client_id: ClientId) -> bool {
    event.client_id == client_id && event.kind.entity_type() == EntityType::WorkItem
}

/// The clock records of the given items, from their events, in event order: the stored ones,
/// then `pending` (the events of the caller's transaction not yet linked, which come after
/// every stored one).
pub(crate) async fn load_clock_records(
    conn: &mut AnyConnection,
    client_id: ClientId,
    ids: &[WorkItemId],
    pending: &[PendingEvent],
) -> Result<HashMap<WorkItemId, Vec<ClockRecord>>> {
    let mut records: HashMap<WorkItemId, Vec<ClockRecord>> = HashMap::new();
    if ids.is_empty() {
        return Ok(records);
    }
    let sql = format!(
        "SELECT entity_id, kind, payload, at_us FROM {} AS events
         WHERE client_id = $1 AND entity_type = 'work_item' AND entity_id IN ({})
         ORDER BY seq",
        event_rows(conn),
        placeholders(2, ids.len())
    );
    let mut query = sqlx::query(&sql).bind(client_id.to_string());
    for id in ids {
        query = query.bind(id.to_string());
    }
    for row in query.fetch_all(&mut *conn).await? {
        let kind: String = get(&row, "kind")?;
        let Some(event) = clock_event(&kind, || get(&row, "payload"))? else {
            continue;
        };
        let id: WorkItemId = parse(&row, "entity_id")?;
        records.entry(id).or_default().push(ClockRecord {
            at: timestamp(&row, "at_us")?,
            event,
        });
    }
    for event in pending {
        if !is_work_item_event_of(event, client_id) {
            continue;
        }
        let Some(id) = ids.iter().find(|id| id.to_string() == event.entity_id) else {
            continue;
        };
        let Some(clock) = clock_event(event.kind.code(), || Ok(event.payload.clone()))? else {
            continue;
        };
        records.entry(*id).or_default().push(ClockRecord {
            at: event.at,
            event: clock,
        });
    }
    Ok(records)
}

/// What a work item's event means to its SLA clock, if anything; `payload` gives the event's
/// JSON text when the kind needs it.
fn clock_event(kind: &str, payload: impl FnOnce() -> Result<String>) -> Result<Option<ClockEvent>> {
    Ok(Some(match kind {
        "work_item.created" => ClockEvent::Created,
        "work_item.sla_reset" => ClockEvent::Reset,
        "work_item.transitioned" => {
            let payload: Value = serde_json::from_str(&payload()?)
                .map_err(|err| anyhow::anyhow!("stored event payload is not json: {err}"))?;
            let to = payload["to"].as_str().unwrap_or_default();
            let to: WorkItemState = to
                .parse()
                .map_err(|err| anyhow::anyhow!("stored transition: {err}"))?;
            ClockEvent::Transitioned(to)
        }
        _ => return Ok(None),
    }))
}

/// Items whose clocks one statement of [`start_clocks`] starts: their ids travel as one JSON
/// array (about 40 bytes each), so a statement binds 17 values whatever its size.
pub const CLOCK_START_BATCH: usize = 1_000;

/// Starts the clocks of items just taken in, all at `now`, inside the caller's transaction:
/// what [`refresh_item`] computes for each from its single `work_item.created` event, for a
/// whole import at once. Items of one priority share their state, so it is evaluated once per
/// priority and written with one statement per [`CLOCK_START_BATCH`] items, the ids passed as
/// a JSON array the database unpacks (`json_each` on SQLite, `json_array_elements_text` on
/// PostgreSQL). The items are new in this transaction, so there is no stored state to replace.
pub(crate) async fn start_clocks(
    conn: &mut AnyConnection,
    client_id: ClientId,
    engagement_id: EngagementId,
    items: &[(WorkItemId, Priority)],
    now: Timestamp,
) -> Result<()> {
    let Some(config) = load_config(conn, client_id, engagement_id).await? else {
        return Ok(());
    };
    let created = vec![ClockRecord {
        at: now,
        event: ClockEvent::Created,
    }];
    let ids_from = match conn.backend_name() == "PostgreSQL" {
        true => "json_array_elements_text($17::json) AS ids",
        false => "json_each($17) AS ids",
    };
    let sql = format!(
        "INSERT INTO sla_states (client_id, {STATE_COLUMNS}) \
         SELECT $1, ids.value, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16 \
         FROM {ids_from}"
    );
    let client = client_id.to_string();
    let engagement = engagement_id.to_string();
    for priority in Priority::ALL {
        let Some(terms) = config.terms_for(priority) else {
            continue;
        };
        let status = evaluate(&config.calendar, &terms, Some(&created), now)?;
        let ids: Vec<&WorkItemId> = items
            .iter()
            .filter(|(_, p)| *p == priority)
            .map(|(id, _)| id)
            .collect();
        for batch in ids.chunks(CLOCK_START_BATCH) {
            let mut array = String::with_capacity(2 + batch.len() * 39);
            array.push('[');
            for (idx, id) in batch.iter().enumerate() {
                let sep = if idx == 0 { "" } else { "," };
                // A UUID's text needs no escaping.
                write!(array, "{sep}\"{id}\"").expect("writing to a string cannot fail");
            }
            array.push(']');
            let query = sqlx::query(&sql)
                .bind(client.as_str())
                .bind(engagement.as_str());
            bind_status(query, &status)
                .bind(us(now))
                .bind(array)
                .execute(&mut *conn)
                .await?;
        }
    }
    Ok(())
}

/// Replaces the stored states of the given items: one delete and one insert.
async fn write_states(
    conn: &mut AnyConnection,
    client_id: ClientId,
    states: &[(WorkItemId, EngagementId, SlaStatus)],
    now: Timestamp,
) -> Result<()> {
    if states.is_empty() {
        return Ok(());
    }
    debug_assert!(states.len() <= RECOMPUTE_BATCH);
    let sql = format!(
        "DELETE FROM sla_states WHERE client_id = $1 AND work_item_id IN ({})",
        placeholders(2, states.len())
    );
    let mut delete = sqlx::query(&sql).bind(client_id.to_string());
    for (id, _, _) in states {
        delete = delete.bind(id.to_string());
    }
    delete.execute(&mut *conn).await?;

    let width = STATE_COLUMN_COUNT + 1;
    let rows: Vec<String> = (0..states.len())
        .map(|idx| format!("({})", placeholders(1 + idx * width, width)))
        .collect();
    let sql = format!(
        "INSERT INTO sla_states (client_id, {STATE_COLUMNS}) VALUES {}",
        rows.join(", ")
    );
    let mut insert = sqlx::query(&sql);
    for (id, engagement_id, status) in states {
        insert = insert
            .bind(client_id.to_string())
            .bind(id.to_string())
            .bind(engagement_id.to_string());
        insert = bind_status(insert, status).bind(us(now));
    }
    insert.execute(&mut *conn).await?;
    Ok(())
}

/// Binds a status's columns, `clock_state` to `resolution_breached` in [`STATE_COLUMNS`] order.
fn bind_status<'q>(
    query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    status: &SlaStatus,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    let micros = |t: Option<Timestamp>| t.map(us);
    query
        .bind(status.state.code())
        .bind(us(status.started_at))
        .bind(status.response.target.as_secs())
        .bind(status.response.elapsed.as_secs())
        .bind(micros(status.response.due_at))
        .bind(micros(status.response.met_at))
        .bind(i64::from(status.response.breached))
        .bind(status.resolution.target.as_secs())
        .bind(status.resolution.elapsed.as_secs())
        .bind(micros(status.resolution.due_at))
        .bind(micros(status.resolution.warn_at))
        .bind(micros(status.resolution.met_at))
        .bind(i64::from(status.resolution.breached))
}

/// Recomputes every open item of an engagement in batches, then records why, as one event.
async fn recompute(
    conn: &mut crate::tx::Tx,
    client_id: ClientId,
    engagement_id: EngagementId,
    reason: &str,
    now: Timestamp,
) -> Result<RecomputeReport> {
    let mut report = RecomputeReport::default();
    let Some(config) = load_config(conn, client_id, engagement_id).await? else {
        return Ok(report);
    };
    let rows = sqlx::query(
        "SELECT id, priority FROM work_items
         WHERE client_id = $1 AND engagement_id = $2 AND state NOT IN ('closed', 'cancelled')
         ORDER BY id LIMIT $3",
    )
    .bind(client_id.to_string())
    .bind(engagement_id.to_string())
    .bind(RECOMPUTE_ITEMS_MAX as i64 + 1)
    .fetch_all(&mut *conn)
    .await?;
    if rows.len() > RECOMPUTE_ITEMS_MAX {
        return Err(StoreError::Rejected {
            message: format!(
                "engagement {engagement_id} has more than {RECOMPUTE_ITEMS_MAX} open items to recompute in one change"
            ),
        });
    }
    let mut items = Vec::with_capacity(rows.len());
    for row in &rows {
        let id: WorkItemId = parse(row, "id")?;
        let rank: i64 = get(row, "priority")?;
        let priority = Priority::ALL
            .get(usize::try_from(rank).unwrap_or(usize::MAX))
            .copied()
            .ok_or_else(|| anyhow::anyhow!("stored priority {rank} unknown"))?;
        items.push((id, priority));
    }
    let mut without_terms = Vec::new();
    for batch in items.chunks(RECOMPUTE_BATCH) {
        let ids: Vec<WorkItemId> = batch.iter().map(|(id, _)| *id).collect();
        let pending = conn.pending_where(|e| is_work_item_event_of(e, client_id));
        let records = load_clock_records(conn, client_id, &ids, &pending).await?;
        let mut states = Vec::with_capacity(batch.len());
        for (id, priority) in batch {
            let Some(terms) = config.terms_for(*priority) else {
                without_terms.push(*id);
                continue;
            };
            let status = evaluate(&config.calendar, &terms, records.get(id), now)?;
            report.breached += u64::from(status.resolution.breached);
            states.push((*id, engagement_id, status));
        }
        report.items += states.len() as u64;
        write_states(conn, client_id, &states, now).await?;
    }
    // Items whose priority lost its terms no longer have an SLA.
    for batch in without_terms.chunks(RECOMPUTE_BATCH) {
        let sql = format!(
            "DELETE FROM sla_states WHERE client_id = $1 AND work_item_id IN ({})",
            placeholders(2, batch.len())
        );
        let mut delete = sqlx::query(&sql).bind(client_id.to_string());
        for id in batch {
            delete = delete.bind(id.to_string());
        }
        delete.execute(&mut *conn).await?;
    }
    append(
        conn,
        client_id,
        EventKind::SlaRecomputed,
        &engagement_id.to_string(),
        &json!({"reason": reason, "items": report.items, "breached": report.breached}),
        now,
    )
    .await?;
    Ok(report)
}

fn placeholders(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|n| format!("${n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn shift_json(shift: &Shift) -> Value {
    json!([
        shift.start.strftime("%H:%M").to_string(),
        shift.end.strftime("%H:%M").to_string()
    ])
}

fn shifts_of(value: &Value) -> Result<Vec<Shift>> {
    let malformed = || anyhow::anyhow!("stored shifts are malformed: {value}");
    let mut shifts = Vec::new();
    for pair in value.as_array().ok_or_else(malformed)? {
        let start: Time = pair[0]
            .as_str()
            .and_then(|t| t.parse().ok())
            .ok_or_else(malformed)?;
        let end: Time = pair[1]
            .as_str()
            .and_then(|t| t.parse().ok())
            .ok_or_else(malformed)?;
        shifts.push(Shift::new(start, end));
    }
    Ok(shifts)
}

pub(crate) fn calendar_row(row: &AnyRow) -> Result<CalendarSpec> {
    let json_of = |column: &str| -> Result<Value> {
        let text: String = get(row, column)?;
        serde_json::from_str(&text)
            .map_err(|err| anyhow::anyhow!("stored calendar {column} is not json: {err}").into())
    };
    let week_json = json_of("week")?;
    let mut week: [Vec<Shift>; 7] = Default::default();
    for (idx, day) in week.iter_mut().enumerate() {
        *day = shifts_of(&week_json[idx])?;
    }
    let holidays = json_of("holidays")?
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| {
            d.as_str()
                .and_then(|d| d.parse().ok())
                .ok_or_else(|| anyhow::anyhow!("stored holiday {d} is malformed").into())
        })
        .collect::<Result<Vec<Date>>>()?;
    let mut exceptions = Vec::new();
    if let Value::Object(map) = json_of("exceptions")? {
        for (date, shifts) in &map {
            let date: Date = date
                .parse()
                .map_err(|err| anyhow::anyhow!("stored exception date {date}: {err}"))?;
            exceptions.push((date, shifts_of(shifts)?));
        }
    }
    Ok(CalendarSpec {
        id: parse(row, "id")?,
        name: get(row, "name")?,
        time_zone: get(row, "time_zone")?,
        week,
        holidays,
        exceptions,
    })
}

fn pricing_json(pricing: &Pricing) -> Value {
    match pricing {
        Pricing::PerItem { rates } => json!({
            "kind": "per_item",
            "rates": rates.iter().map(|r| json!({
                "priority": r.priority.code(), "band": r.band, "price_minor": r.price.minor
            })).collect::<Vec<_>>(),
        }),
        Pricing::PerHour { rate } => json!({"kind": "per_hour", "rate_minor": rate.minor}),
        Pricing::PerFteMonth { rate, fte_milli } => {
            json!({"kind": "per_fte_month", "rate_minor": rate.minor, "fte_milli": fte_milli})
        }
    }
}

fn pricing_of(value: &Value, currency: Currency) -> Result<Pricing> {
    let malformed = || anyhow::anyhow!("stored pricing is malformed: {value}");
    let minor = |v: &Value| {
        v.as_i64()
            .map(|m| Money::new(m, currency))
            .ok_or_else(malformed)
    };
    Ok(match value["kind"].as_str() {
        Some("per_item") => {
            let mut rates = Vec::new();
            for rate in value["rates"].as_array().ok_or_else(malformed)? {
                rates.push(ItemRate {
                    priority: rate["priority"]
                        .as_str()
                        .and_then(Priority::parse)
                        .ok_or_else(malformed)?,
                    band: rate["band"].as_str().map(str::to_string),
                    price: minor(&rate["price_minor"])?,
                });
            }
            Pricing::PerItem { rates }
        }
        Some("per_hour") => Pricing::PerHour {
            rate: minor(&value["rate_minor"])?,
        },
        Some("per_fte_month") => Pricing::PerFteMonth {
            rate: minor(&value["rate_minor"])?,
            fte_milli: value["fte_milli"].as_u64().ok_or_else(malformed)? as u32,
        },
        _ => return Err(malformed().into()),
    })
}

fn state_row(row: &AnyRow) -> Result<SlaState> {
    let at = |column: &str| -> Result<Option<Timestamp>> {
        get::<Option<i64>>(row, column)?
            .map(|v| {
                Timestamp::from_microsecond(v)
                    .map_err(|err| anyhow::anyhow!("stored {column} out of range: {err}").into())
            })
            .transpose()
    };
    let secs = |column: &str| -> Result<SignedDuration> {
        Ok(SignedDuration::from_secs(get(row, column)?))
    };
    let clock_code: String = get(row, "clock_state")?;
    let clock = [
        ClockState::Running,
        ClockState::Paused,
        ClockState::Stopped,
        ClockState::Cancelled,
    ]
    .into_iter()
    .find(|c| c.code() == clock_code)
    .ok_or_else(|| anyhow::anyhow!("stored clock state {clock_code:?} unknown"))?;
    Ok(SlaState {
        work_item_id: parse(row, "work_item_id")?,
        engagement_id: parse(row, "engagement_id")?,
        clock,
        started_at: timestamp(row, "started_at_us")?,
        response: MilestoneState {
            target: secs("response_target_s")?,
            elapsed: secs("response_elapsed_s")?,
            due_at: at("response_due_at_us")?,
            met_at: at("response_met_at_us")?,
            breached: get::<i64>(row, "response_breached")? != 0,
        },
        resolution: MilestoneState {
            target: secs("resolution_target_s")?,
            elapsed: secs("resolution_elapsed_s")?,
            due_at: at("resolution_due_at_us")?,
            met_at: at("resolution_met_at_us")?,
            breached: get::<i64>(row, "resolution_breached")? != 0,
        },
        warn_at: at("resolution_warn_at_us")?,
        computed_at: timestamp(row, "computed_at_us")?,
    })
}

/// Task histories of the tasks of the given work items, keyed by task, in event order.
async fn load_task_histories(
    conn: &mut AnyConnection,
    client_id: ClientId,
    ids: &[WorkItemId],
) -> Result<HashMap<TaskId, (WorkItemId, Vec<(Timestamp, TaskState)>)>> {
    let mut histories: HashMap<TaskId, (WorkItemId, Vec<(Timestamp, TaskState)>)> = HashMap::new();
    for batch in ids.chunks(RECOMPUTE_BATCH) {
        let sql = format!(
            "SELECT t.id AS task_id, t.work_item_id, e.kind, e.payload, e.at_us
             FROM tasks t JOIN {} e
               ON e.client_id = t.client_id AND e.entity_type = 'task' AND e.entity_id = t.id
             WHERE t.client_id = $1 AND t.work_item_id IN ({})
             ORDER BY e.seq",
            event_rows(conn),
            placeholders(2, batch.len())
        );
        let mut query = sqlx::query(&sql).bind(client_id.to_string());
        for id in batch {
            query = query.bind(id.to_string());
        }
        for row in query.fetch_all(&mut *conn).await? {
            let kind: String = get(&row, "kind")?;
            let state = match kind.as_str() {
                "task.created" => TaskState::Ready,
                "task.claimed" => TaskState::Assigned,
                "task.transitioned" => {
                    let payload: String = get(&row, "payload")?;
                    let payload: Value = serde_json::from_str(&payload)
                        .map_err(|err| anyhow::anyhow!("stored task payload: {err}"))?;
                    payload["to"]
                        .as_str()
                        .unwrap_or_default()
                        .parse()
                        .map_err(|err| anyhow::anyhow!("stored task transition: {err}"))?
                }
                _ => continue,
            };
            let task_id: TaskId = parse(&row, "task_id")?;
            let work_item_id: WorkItemId = parse(&row, "work_item_id")?;
            histories
                .entry(task_id)
                .or_insert_with(|| (work_item_id, Vec::new()))
                .1
                .push((timestamp(&row, "at_us")?, state));
        }
    }
    Ok(histories)
}

impl Tenant {
    /// Creates or replaces one of the client's calendars, and recomputes the open items of
    /// every engagement whose clocks run on it.
    pub async fn put_calendar(
        &self,
        spec: &CalendarSpec,
        reason: &str,
        now: Timestamp,
    ) -> Result<RecomputeReport> {
        spec.to_calendar()?;
        let (week, holidays, exceptions) = calendar_json(spec);
        let mut tx = crate::tx::Tx::begin(&self.store).await?;
        let written = sqlx::query(
            "INSERT INTO calendars (id, client_id, name, time_zone, week, holidays, exceptions, updated_at_us)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, time_zone = excluded.time_zone,
               week = excluded.week, holidays = excluded.holidays, exceptions = excluded.exceptions,
               updated_at_us = excluded.updated_at_us
             WHERE calendars.client_id = excluded.client_id",
        )
        .bind(spec.id.to_string())
        .bind(self.client_id.to_string())
        .bind(&spec.name)
        .bind(&spec.time_zone)
        .bind(week)
        .bind(holidays)
        .bind(exceptions)
        .bind(us(now))
        .execute(&mut *tx)
        .await;
        let written = match written {
            Err(err) if crate::rows::is_unique_violation(&err) => {
                return Err(StoreError::Conflict {
                    message: format!("this client has a calendar named {:?} already", spec.name),
                })
            }
            Err(err) if is_foreign_key_violation(&err) => {
                return Err(StoreError::not_found("client", self.client_id))
            }
            other => other?,
        };
        if written.rows_affected() != 1 {
            // The id is another client's calendar: answer as if it did not exist.
            return Err(StoreError::not_found("calendar", spec.id));
        }
        append(
            &mut tx,
            self.client_id,
            EventKind::CalendarSet,
            &self.client_id.to_string(),
            &json!({"calendar_id": spec.id.to_string(), "name": spec.name, "time_zone": spec.time_zone,
                    "holidays": spec.holidays.len(), "reason": reason}),
            now,
        )
        .await?;
        let engagements = sqlx::query(
            "SELECT engagement_id FROM engagement_sla WHERE client_id = $1 AND calendar_id = $2 ORDER BY engagement_id",
        )
        .bind(self.client_id.to_string())
        .bind(spec.id.to_string())
        .fetch_all(&mut *tx)
        .await?;
        let mut report = RecomputeReport::default();
        for row in &engagements {
            let engagement_id: EngagementId = parse(row, "engagement_id")?;
            let one = recompute(&mut tx, self.client_id, engagement_id, reason, now).await?;
            report.items += one.items;
            report.breached += one.breached;
        }
        tx.commit().await?;
        Ok(report)
    }

    pub async fn calendar(&self, id: CalendarId) -> Result<CalendarSpec> {
        let row = sqlx::query(
            "SELECT id, name, time_zone, week, holidays, exceptions FROM calendars WHERE client_id = $1 AND id = $2",
        )
        .bind(self.client_id.to_string())
        .bind(id.to_string())
        .fetch_optional(&self.store.reader)
        .await?
        .ok_or_else(|| StoreError::not_found("calendar", id))?;
        calendar_row(&row)
    }

    /// Sets an engagement's SLA terms, calendar and pricing, and recomputes its open items in
    /// the same transaction; `reason` is recorded with the change.
    pub async fn set_engagement_sla(
        &self,
        engagement_id: EngagementId,
        sla: &EngagementSla,
        reason: &str,
        now: Timestamp,
    ) -> Result<RecomputeReport> {
        self.engagement(engagement_id).await?;
        let (calendar_id, calendar_site_id) = match sla.calendar {
            CalendarRef::Client(id) => (Some(self.calendar(id).await?.id), None),
            CalendarRef::Site(site_id) => (None, Some(self.store.site_calendar(site_id).await?.id)),
        };
        let client = self.store.client(self.client_id).await?;
        if let Some(currency) = sla.pricing.currency().filter(|c| *c != client.currency) {
            return Err(StoreError::Rejected {
                message: format!(
                    "pricing is in {currency}, the client is billed in {}",
                    client.currency
                ),
            });
        }
        let mut tx = crate::tx::Tx::begin(&self.store).await?;
        sqlx::query(
            "INSERT INTO engagement_sla (engagement_id, client_id, calendar_id, calendar_site_id, pricing,
                credit_per_point_bp, credit_cap_bp, accuracy_credit_per_point_bp, accuracy_credit_cap_bp,
                updated_at_us)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
             ON CONFLICT (engagement_id) DO UPDATE SET calendar_id = excluded.calendar_id,
               calendar_site_id = excluded.calendar_site_id,
               pricing = excluded.pricing, credit_per_point_bp = excluded.credit_per_point_bp,
               credit_cap_bp = excluded.credit_cap_bp,
               accuracy_credit_per_point_bp = excluded.accuracy_credit_per_point_bp,
               accuracy_credit_cap_bp = excluded.accuracy_credit_cap_bp,
               updated_at_us = excluded.updated_at_us",
        )
        .bind(engagement_id.to_string())
        .bind(self.client_id.to_string())
        .bind(calendar_id.map(|id| id.to_string()))
        .bind(calendar_site_id.map(|id| id.to_string()))
        .bind(pricing_json(&sla.pricing).to_string())
        .bind(sla.credit_rule.map(|r| i64::from(r.per_point_bp)))
        .bind(sla.credit_rule.map(|r| i64::from(r.cap_bp)))
        .bind(sla.accuracy_credit_rule.map(|r| i64::from(r.per_point_bp)))
        .bind(sla.accuracy_credit_rule.map(|r| i64::from(r.cap_bp)))
        .bind(us(now))
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM sla_terms WHERE client_id = $1 AND engagement_id = $2")
            .bind(self.client_id.to_string())
            .bind(engagement_id.to_string())
            .execute(&mut *tx)
            .await?;
        for (priority, terms) in &sla.terms {
            sqlx::query(
                "INSERT INTO sla_terms (engagement_id, client_id, priority, first_response_s, resolution_s, warning_pct, on_time_target_bp, accuracy_target_bp)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(engagement_id.to_string())
            .bind(self.client_id.to_string())
            .bind(priority_rank(*priority))
            .bind(terms.first_response.as_secs())
            .bind(terms.resolution.as_secs())
            .bind(i64::from(terms.warning_pct))
            .bind(i64::from(terms.on_time_target_bp))
            .bind(i64::from(terms.accuracy_target_bp))
            .execute(&mut *tx)
            .await
            .map_err(|err| match crate::rows::is_unique_violation(&err) {
                true => StoreError::Rejected {
                    message: format!("terms for priority {} given twice", priority.code()),
                },
                false => err.into(),
            })?;
        }
        let terms_json: Vec<Value> = sla
            .terms
            .iter()
            .map(|(p, t)| {
                json!({"priority": p.code(), "first_response_s": t.first_response.as_secs(),
                       "resolution_s": t.resolution.as_secs(), "warning_pct": t.warning_pct,
                       "on_time_target_bp": t.on_time_target_bp,
                       "accuracy_target_bp": t.accuracy_target_bp})
            })
            .collect();
        append(
            &mut tx,
            self.client_id,
            EventKind::EngagementSlaSet,
            &engagement_id.to_string(),
            &json!({"calendar_id": calendar_id.map(|id| id.to_string()),
                    "calendar_site_id": calendar_site_id.map(|id| id.to_string()),
                    "terms": terms_json, "pricing": pricing_json(&sla.pricing),
                    "credit": sla.credit_rule.map(|r| json!({"per_point_bp": r.per_point_bp, "cap_bp": r.cap_bp})),
                    "accuracy_credit": sla.accuracy_credit_rule.map(|r| json!({"per_point_bp": r.per_point_bp, "cap_bp": r.cap_bp})),
                    "reason": reason}),
            now,
        )
        .await?;
        let report = recompute(&mut tx, self.client_id, engagement_id, reason, now).await?;
        tx.commit().await?;
        Ok(report)
    }

    /// The engagement's SLA configuration, if it has one.
    pub async fn engagement_sla(
        &self,
        engagement_id: EngagementId,
    ) -> Result<Option<EngagementSla>> {
        let client = self.store.client(self.client_id).await?;
        let mut conn = self.store.reader.acquire().await?;
        let row = sqlx::query(
            "SELECT calendar_id, calendar_site_id, pricing, credit_per_point_bp, credit_cap_bp,
                    accuracy_credit_per_point_bp, accuracy_credit_cap_bp
             FROM engagement_sla WHERE client_id = $1 AND engagement_id = $2",
        )
        .bind(self.client_id.to_string())
        .bind(engagement_id.to_string())
        .fetch_optional(&mut *conn)
        .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(
            engagement_sla_row(
                &mut conn,
                self.client_id,
                engagement_id,
                &row,
                client.currency,
            )
            .await?,
        ))
    }

    /// Recomputes the SLA state of every open item of an engagement.
    pub async fn recompute_sla(
        &self,
        engagement_id: EngagementId,
        reason: &str,
        now: Timestamp,
    ) -> Result<RecomputeReport> {
        self.engagement(engagement_id).await?;
        let mut tx = crate::tx::Tx::begin(&self.store).await?;
        let report = recompute(&mut tx, self.client_id, engagement_id, reason, now).await?;
        tx.commit().await?;
        Ok(report)
    }

    /// Restarts both SLA clocks of an item (e.g. the client replaced its input).
    pub async fn reset_sla(
        &self,
        work_item_id: WorkItemId,
        reason: &str,
        now: Timestamp,
    ) -> Result<()> {
        let item = self.work_item(work_item_id).await?;
        let mut tx = crate::tx::Tx::begin(&self.store).await?;
        append(
            &mut tx,
            self.client_id,
            EventKind::WorkItemSlaReset,
            &work_item_id.to_string(),
            &json!({"reason": reason}),
            now,
        )
        .await?;
        refresh_item(
            &mut tx,
            self.client_id,
            item.id,
            item.engagement_id,
            item.priority,
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The item's SLA state as last computed; `None` when its engagement has no SLA terms.
    pub async fn sla_state(&self, work_item_id: WorkItemId) -> Result<Option<SlaState>> {
        let row = sqlx::query(&format!(
            "SELECT {STATE_COLUMNS} FROM sla_states WHERE client_id = $1 AND work_item_id = $2"
        ))
        .bind(self.client_id.to_string())
        .bind(work_item_id.to_string())
        .fetch_optional(&self.store.reader)
        .await?;
        row.as_ref().map(state_row).transpose()
    }

    /// The SLA states of an engagement's items, in work item id order.
    pub async fn sla_states(&self, engagement_id: EngagementId) -> Result<Vec<SlaState>> {
        let rows = sqlx::query(&format!(
            "SELECT {STATE_COLUMNS} FROM sla_states WHERE client_id = $1 AND engagement_id = $2
             ORDER BY work_item_id LIMIT $3"
        ))
        .bind(self.client_id.to_string())
        .bind(engagement_id.to_string())
        .bind(REPORT_ITEMS_MAX)
        .fetch_all(&self.store.reader)
        .await?;
        rows.iter().map(state_row).collect()
    }

    /// Performance criteria over the items received in `[from, to)`, of one engagement or all.
    pub async fn performance(
        &self,
        engagement_id: Option<EngagementId>,
        from: Timestamp,
        to: Timestamp,
        now: Timestamp,
    ) -> Result<Performance> {
        let mut conn = self.store.reader.acquire().await?;
        let rows = sqlx::query(
            "SELECT w.id, w.state, w.received_at_us, s.response_elapsed_s, s.response_met_at_us,
                    s.resolution_elapsed_s, s.resolution_met_at_us, s.resolution_breached
             FROM work_items w LEFT JOIN sla_states s ON s.work_item_id = w.id
             WHERE w.client_id = $1 AND ($2 = '' OR w.engagement_id = $2)
               AND w.received_at_us >= $3 AND w.received_at_us < $4 AND w.state <> 'cancelled'
             ORDER BY w.id LIMIT $5",
        )
        .bind(self.client_id.to_string())
        .bind(engagement_id.map(|e| e.to_string()).unwrap_or_default())
        .bind(us(from))
        .bind(us(to))
        .bind(REPORT_ITEMS_MAX)
        .fetch_all(&mut *conn)
        .await?;
        let mut items = Vec::with_capacity(rows.len());
        let mut ids = Vec::with_capacity(rows.len());
        for row in &rows {
            let state: WorkItemState = parse(row, "state")?;
            let met = |column: &str, elapsed: &str| -> Result<Option<SignedDuration>> {
                Ok(match get::<Option<i64>>(row, column)? {
                    Some(_) => get::<Option<i64>>(row, elapsed)?.map(SignedDuration::from_secs),
                    None => None,
                })
            };
            ids.push(parse::<WorkItemId>(row, "id")?);
            items.push(ItemFacts {
                received_at: timestamp(row, "received_at_us")?,
                open: !matches!(
                    state,
                    WorkItemState::Delivered | WorkItemState::Closed | WorkItemState::Cancelled
                ),
                response: met("response_met_at_us", "response_elapsed_s")?,
                turnaround: met("resolution_met_at_us", "resolution_elapsed_s")?,
                breached: get::<Option<i64>>(row, "resolution_breached")?.unwrap_or(0) != 0,
            });
        }
        let histories = load_task_histories(&mut conn, self.client_id, &ids).await?;
        let tasks: Vec<TaskFacts> = histories
            .values()
            .map(|(_, history)| task_facts(history))
            .collect();
        // Available working time comes from worker rosters, which this store does not hold
        // yet; utilisation is reported when it does.
        Ok(metrics::performance(
            &items,
            &tasks,
            SignedDuration::ZERO,
            now,
        ))
    }

    /// The client's invoice for the items delivered in `[from, to)`.
    pub async fn invoice(&self, from: Timestamp, to: Timestamp) -> Result<Invoice> {
        let client = self.store.client(self.client_id).await?;
        let mut conn = self.store.reader.acquire().await?;
        let rows = sqlx::query(
            "SELECT s.engagement_id, e.name, s.pricing, s.credit_per_point_bp, s.credit_cap_bp,
                    s.accuracy_credit_per_point_bp, s.accuracy_credit_cap_bp, s.calendar_id, s.calendar_site_id
             FROM engagement_sla s JOIN engagements e ON e.id = s.engagement_id
             WHERE s.client_id = $1 ORDER BY e.name, s.engagement_id",
        )
        .bind(self.client_id.to_string())
        .fetch_all(&mut *conn)
        .await?;
        let mut engagements = Vec::with_capacity(rows.len());
        for row in &rows {
            let engagement_id: EngagementId = parse(row, "engagement_id")?;
            let sla = engagement_sla_row(
                &mut conn,
                self.client_id,
                engagement_id,
                row,
                client.currency,
            )
            .await?;
            let target_bp = sla
                .terms
                .iter()
                .map(|(_, t)| t.on_time_target_bp)
                .max()
                .unwrap_or(0);
            let item_rows = sqlx::query(
                "SELECT w.id, w.title, w.priority, s.resolution_met_at_us, s.resolution_due_at_us,
                        s.resolution_elapsed_s, s.resolution_target_s
                 FROM sla_states s JOIN work_items w ON w.id = s.work_item_id
                 WHERE s.client_id = $1 AND s.engagement_id = $2
                   AND s.resolution_met_at_us >= $3 AND s.resolution_met_at_us < $4
                 ORDER BY s.resolution_met_at_us, w.id LIMIT $5",
            )
            .bind(self.client_id.to_string())
            .bind(engagement_id.to_string())
            .bind(us(from))
            .bind(us(to))
            .bind(REPORT_ITEMS_MAX)
            .fetch_all(&mut *conn)
            .await?;
            let mut items = Vec::with_capacity(item_rows.len());
            for row in &item_rows {
                let rank: i64 = get(row, "priority")?;
                let elapsed: i64 = get(row, "resolution_elapsed_s")?;
                let target: i64 = get(row, "resolution_target_s")?;
                items.push(BillableItem {
                    work_item_id: parse(row, "id")?,
                    title: get(row, "title")?,
                    priority: Priority::ALL
                        .get(usize::try_from(rank).unwrap_or(usize::MAX))
                        .copied()
                        .ok_or_else(|| anyhow::anyhow!("stored priority {rank} unknown"))?,
                    band: None,
                    delivered_at: timestamp(row, "resolution_met_at_us")?,
                    worked: SignedDuration::ZERO,
                    due_at: get::<Option<i64>>(row, "resolution_due_at_us")?
                        .and_then(|v| Timestamp::from_microsecond(v).ok()),
                    late_by: SignedDuration::from_secs((elapsed - target).max(0)),
                });
            }
            let ids: Vec<WorkItemId> = items.iter().map(|i| i.work_item_id).collect();
            let mut worked: HashMap<WorkItemId, SignedDuration> = HashMap::new();
            for (work_item_id, history) in load_task_histories(&mut conn, self.client_id, &ids)
                .await?
                .into_values()
            {
                *worked.entry(work_item_id).or_default() += billing::task_time(&history);
            }
            for item in &mut items {
                item.worked = worked.get(&item.work_item_id).copied().unwrap_or_default();
            }
            let name: String = get(row, "name")?;
            let accuracy_target_bp = sla
                .terms
                .iter()
                .map(|(_, t)| t.accuracy_target_bp)
                .max()
                .unwrap_or(0);
            let accuracy = match sla.accuracy_credit_rule {
                Some(_) => self.accuracy_evidence(engagement_id, from, to).await?,
                None => AccuracyEvidence::default(),
            };
            engagements.push(EngagementBilling {
                engagement_id,
                name,
                pricing: sla.pricing,
                credit_rule: sla.credit_rule,
                on_time_target_bp: target_bp,
                items,
                accuracy_credit_rule: sla.accuracy_credit_rule,
                accuracy_target_bp,
                accuracy,
            });
        }
        billing::invoice(client.currency, &engagements).map_err(|err| StoreError::Rejected {
            message: err.to_string(),
        })
    }
}

impl Tenant {
    /// The engagement's quality checks in `[from, to)`, pooled for billing: reviews (pass or
    /// fail, with the defects of the failures), adjudicated consensus answers and gold tasks,
    /// at the confidence of the engagement's QA policy.
    pub async fn accuracy_evidence(
        &self,
        engagement_id: EngagementId,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<AccuracyEvidence> {
        let policy = self.qa_policy(engagement_id).await?;
        let client = self.client_id.to_string();
        let engagement = engagement_id.to_string();
        let mut evidence = AccuracyEvidence {
            confidence_ppm: (policy.sampling.confidence * f64::from(billing::PPM_WHOLE)).round()
                as u32,
            ..AccuracyEvidence::default()
        };
        let reviews = sqlx::query(
            "SELECT COUNT(*) AS checks, COALESCE(SUM(CASE WHEN verdict = 'pass' THEN 1 ELSE 0 END), 0) AS correct
             FROM reviews WHERE client_id = $1 AND engagement_id = $2
               AND reviewed_at_us >= $3 AND reviewed_at_us < $4",
        );
        let gold = sqlx::query(
            "SELECT COUNT(*) AS checks, COALESCE(SUM(CASE WHEN correct = 1 THEN 1 ELSE 0 END), 0) AS correct
             FROM gold_results WHERE client_id = $1 AND engagement_id = $2
               AND scored_at_us >= $3 AND scored_at_us < $4",
        );
        for query in [reviews, gold] {
            let row = query
                .bind(&client)
                .bind(&engagement)
                .bind(us(from))
                .bind(us(to))
                .fetch_one(&self.store.reader)
                .await?;
            evidence.checks += get::<i64>(&row, "checks")?.max(0) as u64;
            evidence.correct += get::<i64>(&row, "correct")?.max(0) as u64;
        }
        let (defects,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM review_defects d JOIN reviews r ON r.id = d.review_id
             WHERE r.client_id = $1 AND r.engagement_id = $2 AND r.verdict <> 'pass'
               AND r.reviewed_at_us >= $3 AND r.reviewed_at_us < $4",
        )
        .bind(&client)
        .bind(&engagement)
        .bind(us(from))
        .bind(us(to))
        .fetch_one(&self.store.reader)
        .await?;
        evidence.defects = defects.max(0) as u64;
        for (_, _, keyed) in crate::consensus::evidence(self, engagement_id, from, to).await? {
            evidence.checks += keyed.checks;
            evidence.correct += keyed.correct;
        }
        Ok(evidence)
    }
}

impl Store {
    /// Creates or replaces a delivery site's calendar, and recomputes the open items of every
    /// engagement (of any client) whose clocks run on it, in one transaction. The calendar's
    /// id is the site's.
    pub async fn put_site_calendar(
        &self,
        site_id: SiteId,
        spec: &CalendarSpec,
        reason: &str,
        now: Timestamp,
    ) -> Result<RecomputeReport> {
        spec.to_calendar()?;
        let (week, holidays, exceptions) = calendar_json(spec);
        let mut tx = crate::tx::Tx::begin(self).await?;
        crate::clients::ensure_firm_chain(&mut tx).await?;
        let written = sqlx::query(
            "INSERT INTO site_calendars (site_id, name, time_zone, week, holidays, exceptions, updated_at_us)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (site_id) DO UPDATE SET name = excluded.name, time_zone = excluded.time_zone,
               week = excluded.week, holidays = excluded.holidays, exceptions = excluded.exceptions,
               updated_at_us = excluded.updated_at_us",
        )
        .bind(site_id.to_string())
        .bind(&spec.name)
        .bind(&spec.time_zone)
        .bind(week)
        .bind(holidays)
        .bind(exceptions)
        .bind(us(now))
        .execute(&mut *tx)
        .await;
        match written {
            Err(err) if is_foreign_key_violation(&err) => {
                return Err(StoreError::not_found("site", site_id))
            }
            other => other?,
        };
        append(
            &mut tx,
            crate::events::FIRM_CHAIN,
            EventKind::SiteCalendarSet,
            &site_id.to_string(),
            &json!({"name": spec.name, "time_zone": spec.time_zone,
                    "holidays": spec.holidays.len(), "reason": reason}),
            now,
        )
        .await?;
        let engagements = sqlx::query(
            "SELECT client_id, engagement_id FROM engagement_sla WHERE calendar_site_id = $1
             ORDER BY client_id, engagement_id",
        )
        .bind(site_id.to_string())
        .fetch_all(&mut *tx)
        .await?;
        let mut report = RecomputeReport::default();
        for row in &engagements {
            let client_id: ClientId = parse(row, "client_id")?;
            let engagement_id: EngagementId = parse(row, "engagement_id")?;
            let one = recompute(&mut tx, client_id, engagement_id, reason, now).await?;
            report.items += one.items;
            report.breached += one.breached;
        }
        tx.commit().await?;
        Ok(report)
    }

    /// A site's calendar; not found when the site has none (or does not exist).
    pub async fn site_calendar(&self, site_id: SiteId) -> Result<CalendarSpec> {
        let row = sqlx::query(
            "SELECT site_id AS id, name, time_zone, week, holidays, exceptions
             FROM site_calendars WHERE site_id = $1",
        )
        .bind(site_id.to_string())
        .fetch_optional(&self.reader)
        .await?
        .ok_or_else(|| StoreError::not_found("site calendar", site_id))?;
        calendar_row(&row)
    }
}

/// The `week`, `holidays` and `exceptions` JSON documents of a calendar, as stored.
fn calendar_json(spec: &CalendarSpec) -> (String, String, String) {
    let week: Vec<Value> = spec
        .week
        .iter()
        .map(|day| Value::Array(day.iter().map(shift_json).collect()))
        .collect();
    let holidays: Vec<String> = spec.holidays.iter().map(|d| d.to_string()).collect();
    let exceptions: serde_json::Map<String, Value> = spec
        .exceptions
        .iter()
        .map(|(d, shifts)| {
            (
                d.to_string(),
                Value::Array(shifts.iter().map(shift_json).collect()),
            )
        })
        .collect();
    (
        Value::Array(week).to_string(),
        json!(holidays).to_string(),
        Value::Object(exceptions).to_string(),
    )
}

impl Store {
    /// Firm-wide SLA figures for the metrics endpoint; aggregates only, no per-item rows.
    pub async fn sla_metrics(&self) -> Result<SlaMetrics> {
        let mut metrics = SlaMetrics::default();
        let rows = sqlx::query(
            "SELECT state, COUNT(*) AS n FROM work_items GROUP BY state ORDER BY state",
        )
        .fetch_all(&self.reader)
        .await?;
        for row in &rows {
            metrics
                .items_by_state
                .push((get(row, "state")?, get(row, "n")?));
        }
        metrics.items_received = metrics.items_by_state.iter().map(|(_, n)| n).sum();
        let (breached,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM sla_states WHERE resolution_breached = 1")
                .fetch_one(&self.reader)
                .await?;
        metrics.breached = breached;
        metrics.response = self.histogram("response").await?;
        metrics.turnaround = self.histogram("resolution").await?;
        Ok(metrics)
    }

    /// One histogram over a milestone's business durations, counted by the database.
    async fn histogram(&self, milestone: &'static str) -> Result<(Vec<i64>, i64, i64)> {
        let buckets: Vec<String> = HISTOGRAM_BUCKETS_S
            .iter()
            .map(|bound| {
                format!("CAST(COALESCE(SUM(CASE WHEN {milestone}_elapsed_s <= {bound} THEN 1 ELSE 0 END), 0) AS BIGINT)")
            })
            .collect();
        let row = sqlx::query(&format!(
            "SELECT {}, COUNT(*) AS n, CAST(COALESCE(SUM({milestone}_elapsed_s), 0) AS BIGINT) AS total
             FROM sla_states WHERE {milestone}_met_at_us IS NOT NULL",
            buckets
                .iter()
                .enumerate()
                .map(|(idx, sql)| format!("{sql} AS b{idx}"))
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .fetch_one(&self.reader)
        .await?;
        let mut counts = Vec::with_capacity(HISTOGRAM_BUCKETS_S.len());
        for idx in 0..HISTOGRAM_BUCKETS_S.len() {
            counts.push(get::<i64>(&row, &format!("b{idx}"))?);
        }
        Ok((counts, get(&row, "n")?, get(&row, "total")?))
    }
}

async fn engagement_sla_row(
    conn: &mut AnyConnection,
    client_id: ClientId,
    engagement_id: EngagementId,
    row: &AnyRow,
    currency: Currency,
) -> Result<EngagementSla> {
    let pricing: String = get(row, "pricing")?;
    let pricing: Value = serde_json::from_str(&pricing)
        .map_err(|err| anyhow::anyhow!("stored pricing is not json: {err}"))?;
    let rule = |per_point: &str, cap: &str| -> Result<Option<CreditRule>> {
        let per_point: Option<i64> = get(row, per_point)?;
        let cap: Option<i64> = get(row, cap)?;
        Ok(per_point.zip(cap).map(|(per_point, cap)| CreditRule {
            per_point_bp: per_point as u32,
            cap_bp: cap as u32,
        }))
    };
    let calendar_id: Option<String> = get(row, "calendar_id")?;
    let calendar = match calendar_id {
        Some(_) => CalendarRef::Client(parse(row, "calendar_id")?),
        None => CalendarRef::Site(parse(row, "calendar_site_id")?),
    };
    Ok(EngagementSla {
        calendar,
        terms: load_terms(conn, client_id, engagement_id).await?,
        pricing: pricing_of(&pricing, currency)?,
        credit_rule: rule("credit_per_point_bp", "credit_cap_bp")?,
        accuracy_credit_rule: rule("accuracy_credit_per_point_bp", "accuracy_credit_cap_bp")?,
    })
}

fn task_facts(history: &[(Timestamp, TaskState)]) -> TaskFacts {
    let states: Vec<TaskState> = history.iter().map(|(_, s)| *s).collect();
    let first_review = states.iter().position(|s| *s == TaskState::InReview);
    let worked = billing::task_time(history);
    TaskFacts {
        worked,
        handled: worked,
        submitted: states.contains(&TaskState::Submitted),
        reviewed: first_review.is_some(),
        passed_first_review: first_review
            .and_then(|idx| states.get(idx + 1))
            .is_some_and(|s| *s == TaskState::Accepted),
    }
}

fn priority_rank(priority: Priority) -> i64 {
    Priority::ALL
        .iter()
        .position(|p| *p == priority)
        .expect("every priority is listed") as i64
}
