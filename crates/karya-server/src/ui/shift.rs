//! A worker's offers and own shift: the router's open offers (shown in the inbox) with accept
//! and decline, and the shift page (this week's shifts in the site's zone, leave, presence with
//! a toggle between available, break and offline).

use axum::extract::State;
use axum::http::Method;
use axum::routing::{get, post};
use jiff::civil::{Date, Weekday};
use jiff::{SignedDuration, Span};
use karya_core::id::{AssignmentId, OfferId, WorkerId};
use karya_core::workforce::{Presence, ShiftPattern};
use karya_store::StoreError;

use super::forms::FormData;
use super::work::{own_worker, HOLDERS};
use super::{
    htmx_redirect, layout, page, relative, Action, Block, Button, Cell, Form, Heading, Stat, Table,
    UiError, UiResult, TABLE_ROWS_MAX,
};
use crate::api::Api;
use crate::auth::Access;
use crate::extract::{parse_id, Caller, Path};
use crate::progress;
use crate::AppState;

/// Presence a worker sets themselves; `busy` is the router's to set.
const TOGGLES: [(Presence, &str); 3] = [
    (Presence::Available, "Available"),
    (Presence::Break, "On a break"),
    (Presence::Offline, "Offline"),
];

pub fn api() -> Api {
    Api::new()
        .route(
            "/ui/offers/{offer_id}/accept",
            post(accept),
            &[(Method::POST, Access::Firm(HOLDERS))],
        )
        .route(
            "/ui/offers/{offer_id}/decline",
            post(decline),
            &[(Method::POST, Access::Firm(HOLDERS))],
        )
        .route(
            "/ui/shift",
            get(shift_page),
            &[(Method::GET, Access::Firm(HOLDERS))],
        )
        .route(
            "/ui/shift/presence",
            post(set_presence),
            &[(Method::POST, Access::Firm(HOLDERS))],
        )
}

/// The open offers of a worker, for the inbox: what the task is, until when, accept, decline.
pub async fn offers_blocks(state: &AppState, worker_id: WorkerId) -> Result<Vec<Block>, UiError> {
    let now = state.now();
    let offers = state.store.open_offers(worker_id).await?;
    let mut table = Table::new(
        "offers",
        &["Offered task", "Work item", "Priority", "Expires", ""],
        "No offers waiting",
        "The router offers you tasks that suit your skills and shift; they appear here.",
    );
    for offer in offers.iter().filter(|o| o.expires_at > now) {
        let tenant = state.store.tenant(offer.client_id);
        let task = tenant.task(offer.task_id).await?;
        let item = tenant.work_item(task.work_item_id).await?;
        table.rows.push(vec![
            Cell::text(progress::step_title(state, &task).await?),
            Cell::text(&item.title),
            Cell::text(task.priority.code()),
            Cell::text(relative(offer.expires_at, now)),
            Cell::actions(vec![
                Action::post(
                    &format!("accept-{}", offer.id),
                    "Accept",
                    format!("/ui/offers/{}/accept", offer.id),
                ),
                Action {
                    primary: false,
                    ..Action::post(
                        &format!("decline-{}", offer.id),
                        "Decline",
                        format!("/ui/offers/{}/decline", offer.id),
                    )
                },
            ]),
        ]);
    }
    Ok(vec![
        Block::Section("Offers for you".into()),
        Block::Table(table),
    ])
}

async fn accept(
    State(state): State<AppState>,
    Path(offer_id): Path<String>,
    Caller(caller): Caller,
) -> UiResult {
    let worker_id = own_worker(&caller)?;
    let offer_id: OfferId = parse_id(&offer_id)?;
    let assignment_id = AssignmentId::from_uuid(state.new_id());
    match state
        .store
        .accept_offer(worker_id, offer_id, assignment_id, state.now())
        .await
    {
        Ok(task) => Ok(htmx_redirect(&super::work::task_href(&task))),
        Err(StoreError::Conflict { .. }) => Ok(super::flash(
            "warn",
            "This offer has ended or expired; it went back to the queue.",
        )),
        Err(err) => Err(err.into()),
    }
}

async fn decline(
    State(state): State<AppState>,
    Path(offer_id): Path<String>,
    Caller(caller): Caller,
) -> UiResult {
    let worker_id = own_worker(&caller)?;
    let offer_id: OfferId = parse_id(&offer_id)?;
    match state
        .store
        .decline_offer(worker_id, offer_id, state.now())
        .await
    {
        Ok(_) => Ok(htmx_redirect("/ui/inbox")),
        Err(StoreError::Conflict { .. }) => Ok(super::flash(
            "warn",
            "This offer has ended already; it went back to the queue.",
        )),
        Err(err) => Err(err.into()),
    }
}

/// The shift blocks in force on a local date: that date's exceptions if any (a zero length is a
/// day off), else the weekly blocks of its weekday.
fn blocks_on(shift: &ShiftPattern, date: Date) -> Vec<(jiff::civil::Time, SignedDuration)> {
    let exceptions: Vec<_> = shift
        .exceptions
        .iter()
        .filter(|e| e.date == date)
        .map(|e| (e.start, e.length))
        .collect();
    if !exceptions.is_empty() {
        return exceptions
            .into_iter()
            .filter(|(_, length)| !length.is_zero())
            .collect();
    }
    let mut blocks: Vec<_> = shift
        .weekly
        .iter()
        .filter(|b| b.weekday == date.weekday())
        .map(|b| (b.start, b.length))
        .collect();
    blocks.sort_by_key(|(start, _)| *start);
    blocks
}

/// `09:00–17:30`, or `22:00–07:00 (next day)`, or `all day`.
fn block_text(start: jiff::civil::Time, length: SignedDuration) -> String {
    if length.as_mins() >= 24 * 60 {
        return "all day".into();
    }
    let end = start.wrapping_add(length);
    let overnight = end <= start;
    format!(
        "{}–{}{}",
        start.strftime("%H:%M"),
        end.strftime("%H:%M"),
        match overnight {
            true => " (next day)",
            false => "",
        }
    )
}

/// A presence as a sentence says it.
fn presence_words(presence: Presence) -> &'static str {
    match presence {
        Presence::Available => "available",
        Presence::Busy => "busy",
        Presence::Break => "on a break",
        Presence::Offline => "offline",
    }
}

async fn shift_page(State(state): State<AppState>, Caller(caller): Caller) -> UiResult {
    let layout = layout(&caller, "My shift", "/ui/shift");
    let heading = |sub: String| {
        Block::Heading(Heading {
            title: "My shift".into(),
            sub,
            actions: vec![Action::link("inbox", "Inbox", "/ui/inbox".into())],
        })
    };
    let Some(worker_id) = caller.worker_id() else {
        return Ok(page(
            &layout,
            &[
                heading(String::new()),
                Block::Notice("info", "This account is not linked to a worker.".into()),
            ],
        ));
    };
    let routed = match state.store.routed_worker(worker_id).await {
        Ok(routed) => routed,
        Err(StoreError::NotFound { .. }) => {
            return Ok(page(
                &layout,
                &[
                    heading(String::new()),
                    Block::Notice(
                        "info",
                        "You have no shifts yet: your lead sets your languages, shifts and \
                         capacity in your routing profile."
                            .into(),
                    ),
                ],
            ))
        }
        Err(err) => return Err(err.into()),
    };
    let now = state.now();
    let shift = &routed.profile.shift;
    let zone = shift.time_zone.clone();
    let zone_name = zone.iana_name().unwrap_or("UTC").to_string();
    let site = match routed.profile.site_id {
        Some(site_id) => match state.store.site(site_id).await {
            Ok(site) => Some(site),
            Err(StoreError::NotFound { .. }) => None,
            Err(err) => return Err(err.into()),
        },
        None => None,
    };
    let today = now.to_zoned(zone.clone()).date();
    let monday = today
        .checked_sub(Span::new().days(i64::from(today.weekday().to_monday_zero_offset())))
        .unwrap_or(today);
    let mut week = Table::new(
        "my-week",
        &["Day", "Date", "Shift", ""],
        "No shifts this week",
        "Your lead sets your weekly shifts in your routing profile.",
    );
    let mut any = false;
    for offset in 0..7 {
        let Ok(date) = monday.checked_add(Span::new().days(offset)) else {
            continue;
        };
        let blocks = blocks_on(shift, date);
        any |= !blocks.is_empty();
        // Leave that overlaps the local day at all marks it.
        let day = |d: Date| d.to_zoned(zone.clone()).map(|z| z.timestamp()).ok();
        let (start, end) = (day(date), date.tomorrow().ok().and_then(day));
        let on_leave = shift.leave.iter().any(|l| match (start, end) {
            (Some(start), Some(end)) => l.from < end && start < l.until,
            _ => false,
        });
        let text = match (on_leave, blocks.is_empty()) {
            (true, _) => Cell::pill("on leave", "warn"),
            (false, true) => Cell::text("off"),
            (false, false) => Cell::text(
                blocks
                    .iter()
                    .map(|(start, length)| block_text(*start, *length))
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
        };
        week.rows.push(vec![
            Cell::text(weekday_name(date.weekday())),
            Cell::text(date.strftime("%d %b")),
            text,
            match date == today {
                true => Cell::pill("today", "info"),
                false => Cell::text(""),
            },
        ]);
    }
    if !any {
        week.rows.clear();
    }
    let mut leave = Table::new(
        "my-leave",
        &["From", "Until", "Note"],
        "No leave booked",
        "Leave your lead books for you shows here; no shift counts while you are away.",
    );
    for stored in state.store.leave_of(worker_id, now).await? {
        let local = |t: jiff::Timestamp| {
            t.to_zoned(zone.clone())
                .strftime("%a %d %b %H:%M")
                .to_string()
        };
        leave.rows.push(vec![
            Cell::text(local(stored.leave.from)),
            Cell::text(local(stored.leave.until)),
            Cell::text(&stored.note),
        ]);
    }
    let on_shift = match shift.shift_end_at(now) {
        Some(end) => {
            // Blocks that meet make one shift; a round-the-clock pattern has no end in sight.
            let ahead = end.duration_since(now);
            let until = match ahead {
                a if a >= SignedDuration::from_hours(24 * 7) => "with no end this week".to_string(),
                a if a >= SignedDuration::from_hours(20) => format!(
                    "until {} ({})",
                    end.to_zoned(zone.clone()).strftime("%a %d %b %H:%M"),
                    zone_name
                ),
                _ => format!(
                    "until {} ({})",
                    end.to_zoned(zone.clone()).strftime("%H:%M"),
                    zone_name
                ),
            };
            Stat::new("On shift", "yes", until).tone("ok")
        }
        None => Stat::new("On shift", "no", "the router offers you nothing now"),
    };
    let units = state.store.worker_capacity(worker_id).await?;
    let held = state
        .store
        .worker_tasks(worker_id, TABLE_ROWS_MAX)
        .await?
        .len();
    let mut presence = Form::new("presence-form", "/ui/shift/presence".into(), "Available");
    presence.buttons = TOGGLES
        .iter()
        .map(|(p, label)| Button {
            name: "presence".into(),
            value: p.code().into(),
            label: label.to_string(),
            primary: *p == routed.presence,
        })
        .collect();
    presence.note = format!(
        "You have been {} for {}. Only while available does the router offer you work. \
         Breaks and the end of your shift come on time: a task in hand at a break waits for \
         you; a task you have not submitted when your shift ends goes back to the queue with \
         the work you saved, for whoever is on shift next.",
        presence_words(routed.presence),
        super::elapsed(routed.presence_since, now)
    );
    let sub = match &site {
        Some(site) => format!("{} · times in {}", site.name, zone_name),
        None => format!("Times in {zone_name}"),
    };
    Ok(page(
        &layout,
        &[
            heading(sub),
            Block::Stats(vec![
                Stat::new("Presence", routed.presence.code(), "").tone(match routed.presence {
                    Presence::Available => "ok",
                    Presence::Break => "warn",
                    _ => "plain",
                }),
                on_shift,
                Stat::new(
                    "Capacity",
                    format!("{} / {}", units.used, units.max),
                    "units held or offered",
                ),
                Stat::new("Tasks held", held, ""),
            ]),
            Block::Section("Presence".into()),
            Block::Form(presence),
            Block::Section(format!("This week ({})", when_week(monday))),
            Block::Table(week),
            Block::Section("Leave".into()),
            Block::Table(leave),
        ],
    ))
}

fn when_week(monday: Date) -> String {
    format!("week of {}", monday.strftime("%d %b %Y"))
}

fn weekday_name(day: Weekday) -> &'static str {
    match day {
        Weekday::Monday => "Monday",
        Weekday::Tuesday => "Tuesday",
        Weekday::Wednesday => "Wednesday",
        Weekday::Thursday => "Thursday",
        Weekday::Friday => "Friday",
        Weekday::Saturday => "Saturday",
        Weekday::Sunday => "Sunday",
    }
}

async fn set_presence(
    State(state): State<AppState>,
    Caller(caller): Caller,
    form: FormData,
) -> UiResult {
    let worker_id = own_worker(&caller)?;
    let wanted = form.get("presence");
    let Some((presence, _)) = TOGGLES.iter().find(|(p, _)| p.code() == wanted) else {
        return Ok(super::flash(
            "bad",
            "Choose available, on a break or offline.",
        ));
    };
    match state
        .store
        .set_presence(worker_id, *presence, state.now())
        .await
    {
        Ok(()) => Ok(htmx_redirect("/ui/shift")),
        Err(StoreError::NotFound { .. }) => Ok(super::flash(
            "warn",
            "You have no routing profile yet; ask your lead to set your shifts.",
        )),
        Err(err) => Err(err.into()),
    }
}
