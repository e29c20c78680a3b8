//! The web UI: server-rendered pages (askama templates in `templates/`) with htmx for actions,
//! and the assets embedded in the binary. No front-end build is needed to run it.
//!
//! Pages are registered in the same [`Api`] registry as the REST API, with the same access
//! rules: a client's user sees only its client, a worker only work routed to them, and another
//! client's id renders exactly the page a missing id does. Handlers call the store directly,
//! like the API handlers, and describe each page as a list of [`Block`]s that one template
//! renders, so every page shares the layout, the tables, the forms and the empty states.
//!
//! Unsafe actions are htmx requests, which carry the session's CSRF token in `x-csrf-token`
//! (set once on `<body hx-headers>`); the sign-in form is the one plain form post.
//!
//! # Layout
//! - `session`: sign-in, sign-out, the start page per role, assets.
//! - `work`: the knowledge worker's inbox, *Get next*, the task page, own quality.
//! - `shift`: offers in the inbox (accept, decline) and the worker's own shift and presence.
//! - `leave`: a lead books a worker's leave.
//! - `review`: the review queue and the review page.
//! - `ops`: the live board (server-sent events) per service line and site, SLA risk,
//!   workforce on shift by site, QA board, routing explanations.
//! - `reassign`: moving an at-risk task to the best eligible or a named worker.
//! - `client`: a client's items, intake, item detail, SLA report, invoices and policies.
//! - `reports`: the firm's SLA report per service line, site, team and worker.
//! - `bulk`: a client's bulk upload (CSV, JSON Lines, XLSX) with progress and a row report.
//! - `admin`: clients, engagements, workers, users and API tokens.
//! - `sites`: sites with their time zones, and each client's business calendars.
//! - `packs`: the service packs, read-only.
//! - `audit`: a client's event trail with the chain's verify result.
//! - `forms`: forms generated from a pack's JSON Schema; `charts`: SVG charts.

mod admin;
mod audit;
mod bulk;
pub(crate) mod charts;
mod client;
pub(crate) mod documents;
pub(crate) mod forms;
mod leave;
mod ops;
mod packs;
mod reassign;
mod reports;
mod review;
mod session;
mod shift;
mod sites;
mod work;

use askama::Template;
use axum::http::header::{CONTENT_TYPE, LOCATION};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use karya_core::lifecycle::{TaskState, WorkItemState};
use karya_core::model::Role;

use crate::api::Api;
use crate::auth::{Credential, Principal};
use crate::error::{ApiError, ErrorCode};

pub use session::login_redirect;

/// Rows shown in one table of a page; longer lists are cut with a note.
pub const TABLE_ROWS_MAX: u32 = 200;

/// Every page and action of the web UI.
pub fn api() -> Api {
    Api::new()
        .merge(session::api())
        .merge(work::api())
        .merge(review::api())
        .merge(ops::api())
        .merge(reports::api())
        .merge(client::api())
        .merge(documents::api())
        .merge(admin::api())
        .merge(audit::api())
        .merge(bulk::api())
        .merge(shift::api())
        .merge(reassign::api())
        .merge(sites::api())
        .merge(packs::api())
        .merge(leave::api())
}

/// Whether a path is a page of the web UI (rather than the API or metrics): such paths answer
/// anonymous callers with a redirect to the sign-in page and errors with an HTML page.
pub fn is_page(path: &str) -> bool {
    !(path.starts_with("/api/") || path == "/metrics" || path == "/healthz")
}

/// What one page shows, top to bottom.
pub enum Block {
    Heading(Heading),
    Section(String),
    Stats(Vec<Stat>),
    Table(Table),
    Form(Form),
    Chart(Chart),
    Text(String),
    /// A tone (`ok`, `warn`, `bad`, `info`) and a sentence.
    Notice(&'static str, String),
    Pre(String),
    Facts(Vec<(String, Cell)>),
    /// Two columns side by side (top level only).
    Split(Vec<Block>, Vec<Block>),
    /// Blocks replaced by the server-sent events of the URL (top level only).
    Live(String, Vec<Block>),
    /// A file upload sent by the browser straight to an API route, with its progress and the
    /// answer shown in place (see `assets/app.js`).
    Upload(Upload),
}

/// A file upload form: the file goes to `url` with `{choice}` replaced by the chosen option.
pub struct Upload {
    pub id: String,
    pub url: String,
    pub choice_label: String,
    /// Value and label of each option (e.g. the client's engagements).
    pub choices: Vec<(String, String)>,
    /// File name extensions accepted, with their media type.
    pub accept: Vec<(&'static str, &'static str)>,
    pub help: String,
    /// Where the "see them" link of a successful upload points.
    pub done_href: String,
}

pub struct Heading {
    pub title: String,
    pub sub: String,
    pub actions: Vec<Action>,
}

/// A link, or a button that posts with htmx and shows the answer in the page's flash area.
#[derive(Clone)]
pub struct Action {
    pub id: String,
    pub label: String,
    pub href: Option<String>,
    pub post: Option<String>,
    pub primary: bool,
}

impl Action {
    pub fn link(id: &str, label: &str, href: String) -> Action {
        Action {
            id: id.into(),
            label: label.into(),
            href: Some(href),
            post: None,
            primary: false,
        }
    }

    pub fn post(id: &str, label: &str, url: String) -> Action {
        Action {
            id: id.into(),
            label: label.into(),
            href: None,
            post: Some(url),
            primary: true,
        }
    }
}

pub struct Stat {
    pub label: String,
    pub value: String,
    pub note: String,
    /// `ok`, `warn`, `bad` or `plain`.
    pub tone: &'static str,
}

impl Stat {
    pub fn new(label: &str, value: impl ToString, note: impl Into<String>) -> Stat {
        Stat {
            label: label.into(),
            value: value.to_string(),
            note: note.into(),
            tone: "plain",
        }
    }

    pub fn tone(mut self, tone: &'static str) -> Stat {
        self.tone = tone;
        self
    }
}

pub struct Table {
    pub id: String,
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Cell>>,
    pub empty_title: String,
    pub empty_hint: String,
}

impl Table {
    pub fn new(id: &str, columns: &[&str], empty_title: &str, empty_hint: &str) -> Table {
        Table {
            id: id.into(),
            columns: columns.iter().map(|c| c.to_string()).collect(),
            rows: Vec::new(),
            empty_title: empty_title.into(),
            empty_hint: empty_hint.into(),
        }
    }
}

#[derive(Clone, Default)]
pub struct Cell {
    pub text: String,
    pub href: Option<String>,
    /// A status pill of this tone.
    pub pill: Option<&'static str>,
    pub mono: bool,
    /// Kept on one line (times).
    pub nowrap: bool,
    /// Buttons and links shown after the text (a row's actions).
    pub actions: Vec<Action>,
}

impl Cell {
    pub fn text(text: impl ToString) -> Cell {
        Cell {
            text: text.to_string(),
            ..Cell::default()
        }
    }

    pub fn link(text: impl ToString, href: String) -> Cell {
        Cell {
            text: text.to_string(),
            href: Some(href),
            ..Cell::default()
        }
    }

    pub fn mono(text: impl ToString) -> Cell {
        Cell {
            text: text.to_string(),
            mono: true,
            ..Cell::default()
        }
    }

    /// A time as people read it, on one line.
    pub fn time(ts: Timestamp) -> Cell {
        Cell {
            text: when(ts),
            nowrap: true,
            ..Cell::default()
        }
    }

    pub fn pill(text: impl ToString, tone: &'static str) -> Cell {
        Cell {
            text: text.to_string(),
            pill: Some(tone),
            ..Cell::default()
        }
    }

    /// A row's buttons and links.
    pub fn actions(actions: Vec<Action>) -> Cell {
        Cell {
            actions,
            ..Cell::default()
        }
    }
}

pub struct Chart {
    pub title: String,
    /// SVG markup made by [`charts`], from numbers and escaped labels only.
    pub svg: String,
    pub caption: String,
}

pub struct Form {
    pub id: String,
    /// Where the form posts (with htmx).
    pub action: String,
    pub fields: Vec<Field>,
    pub buttons: Vec<Button>,
    pub error: Option<String>,
    pub note: String,
}

impl Form {
    pub fn new(id: &str, action: String, submit: &str) -> Form {
        Form {
            id: id.into(),
            action,
            fields: Vec::new(),
            buttons: vec![Button::submit(submit)],
            error: None,
            note: String::new(),
        }
    }
}

pub struct Button {
    pub name: String,
    pub value: String,
    pub label: String,
    pub primary: bool,
}

impl Button {
    pub fn submit(label: &str) -> Button {
        Button {
            name: String::new(),
            value: String::new(),
            label: label.into(),
            primary: true,
        }
    }
}

#[derive(Clone, Default)]
pub struct Field {
    pub name: String,
    pub label: String,
    /// An input type (`text`, `number`, `email`, `password`, `date`, `hidden`), `select` or
    /// `textarea`.
    pub kind: &'static str,
    pub value: String,
    /// Value and label of each choice of a `select`.
    pub options: Vec<(String, String)>,
    pub required: bool,
    pub error: Option<String>,
    pub help: String,
    pub rows: u32,
}

impl Field {
    pub fn new(name: &str, label: &str, kind: &'static str) -> Field {
        Field {
            name: name.into(),
            label: label.into(),
            kind,
            rows: 6,
            ..Field::default()
        }
    }

    pub fn value(mut self, value: impl Into<String>) -> Field {
        self.value = value.into();
        self
    }

    pub fn required(mut self) -> Field {
        self.required = true;
        self
    }

    pub fn help(mut self, help: &str) -> Field {
        self.help = help.into();
        self
    }

    pub fn options(mut self, options: Vec<(String, String)>) -> Field {
        self.options = options;
        self
    }
}

/// The frame around every page: who is signed in and where they can go.
pub struct Layout {
    pub title: String,
    pub user_name: String,
    pub role: String,
    pub csrf: String,
    pub nav: Vec<NavLink>,
}

pub struct NavLink {
    pub href: String,
    pub label: String,
    pub current: bool,
}

#[derive(Template)]
#[template(path = "page.html")]
struct PageTemplate<'a> {
    layout: &'a Layout,
    blocks: &'a [Block],
}

#[derive(Template)]
#[template(path = "fragment.html")]
struct FragmentTemplate<'a> {
    blocks: &'a [Block],
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorTemplate<'a> {
    title: &'a str,
    message: &'a str,
}

/// The links of the left navigation for a role.
pub fn nav_for(principal: &Principal) -> Vec<(String, &'static str)> {
    let mut links: Vec<(String, &'static str)> = Vec::new();
    match (principal.role(), principal.client_id()) {
        (Role::ClientAdmin | Role::ClientUser, Some(client)) => {
            let base = format!("/ui/clients/{client}");
            links.push((format!("{base}/items"), "Work items"));
            links.push((format!("{base}/items/new"), "Submit work"));
            links.push((format!("{base}/bulk"), "Bulk upload"));
            links.push((format!("{base}/report"), "SLA & accuracy"));
            if principal.role() == Role::ClientAdmin {
                links.push((format!("{base}/invoices"), "Invoices"));
                links.push((format!("{base}/audit"), "Event trail"));
            }
            links.push((format!("{base}/policies"), "Policies"));
        }
        (Role::Worker, _) => {
            links.push(("/ui/inbox".into(), "Inbox"));
            links.push(("/ui/shift".into(), "My shift"));
            links.push(("/ui/quality".into(), "My quality"));
        }
        (Role::Reviewer, _) => {
            links.push(("/ui/reviews".into(), "Review queue"));
            links.push(("/ui/shift".into(), "My shift"));
            links.push(("/ui/quality".into(), "My quality"));
        }
        (Role::Auditor, _) => {
            links.push(("/ui/clients".into(), "Clients"));
            links.push(("/ui/reports/sla".into(), "SLA reports"));
            links.push(("/ui/workforce".into(), "Workforce"));
            links.push(("/ui/qa".into(), "QA board"));
            links.push(("/ui/packs".into(), "Service packs"));
        }
        (Role::Admin | Role::Manager | Role::Lead, _) => {
            links.push(("/ui/board".into(), "Live board"));
            links.push(("/ui/sla-risk".into(), "SLA risk"));
            links.push(("/ui/workforce".into(), "Workforce"));
            links.push(("/ui/qa".into(), "QA board"));
            links.push(("/ui/reports/sla".into(), "SLA reports"));
            links.push(("/ui/reviews".into(), "Review queue"));
            links.push(("/ui/clients".into(), "Clients"));
            links.push(("/ui/packs".into(), "Service packs"));
            if principal.role() == Role::Lead {
                links.push(("/ui/shift".into(), "My shift"));
            }
            if matches!(principal.role(), Role::Admin | Role::Manager) {
                links.push(("/ui/admin/clients".into(), "Admin: clients"));
                links.push(("/ui/admin/workers".into(), "Admin: workers"));
                links.push(("/ui/admin/sites".into(), "Admin: sites & calendars"));
            }
            if principal.role() == Role::Admin {
                links.push(("/ui/admin/users".into(), "Admin: users"));
            }
        }
        (Role::ClientAdmin | Role::ClientUser, None) => {}
    }
    links.push(("/ui/tokens".into(), "API tokens"));
    links
}

/// The layout of a page for the caller; `current` is the path of the navigation entry to mark.
pub fn layout(principal: &Principal, title: &str, current: &str) -> Layout {
    let csrf = match &principal.credential {
        Credential::Session { csrf, .. } => csrf.clone(),
        Credential::ApiToken => String::new(),
    };
    Layout {
        title: title.into(),
        user_name: principal.user.name.clone(),
        role: role_label(principal.role()).into(),
        csrf,
        nav: nav_for(principal)
            .into_iter()
            .map(|(href, label)| NavLink {
                current: href == current,
                href,
                label: label.into(),
            })
            .collect(),
    }
}

pub fn role_label(role: Role) -> &'static str {
    match role {
        Role::Admin => "Administrator",
        Role::Manager => "Operations manager",
        Role::Lead => "Team lead",
        Role::Worker => "Knowledge worker",
        Role::Reviewer => "Reviewer",
        Role::ClientAdmin => "Client administrator",
        Role::ClientUser => "Client user",
        Role::Auditor => "Auditor",
    }
}

/// A whole page.
pub fn page(layout: &Layout, blocks: &[Block]) -> Response {
    html(StatusCode::OK, PageTemplate { layout, blocks }.render())
}

/// Blocks alone, for htmx swaps and server-sent events.
pub fn fragment_text(blocks: &[Block]) -> String {
    FragmentTemplate { blocks }.render().unwrap_or_else(|err| {
        tracing::error!(error = %err, "fragment does not render");
        String::new()
    })
}

/// Blocks alone as a response with a status (422 for a form with errors).
pub fn fragment(status: StatusCode, blocks: &[Block]) -> Response {
    html(status, FragmentTemplate { blocks }.render())
}

/// A form re-rendered with its errors, in place.
pub fn form_with_errors(form: Form) -> Response {
    fragment(StatusCode::UNPROCESSABLE_ENTITY, &[Block::Form(form)])
}

/// Tells htmx to load another page after an action succeeded.
pub fn htmx_redirect(to: &str) -> Response {
    let mut response = StatusCode::OK.into_response();
    if let Ok(value) = HeaderValue::from_str(to) {
        response.headers_mut().insert("hx-redirect", value);
    }
    response
}

/// A short message in the page's flash area, after an action.
pub fn flash(tone: &'static str, text: impl Into<String>) -> Response {
    fragment(StatusCode::OK, &[Block::Notice(tone, text.into())])
}

/// A plain redirect for a browser (sign-in, sign-out, start page).
pub fn see_other(to: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(to) {
        response.headers_mut().insert(LOCATION, value);
    }
    response
}

fn html(status: StatusCode, rendered: askama::Result<String>) -> Response {
    match rendered {
        Ok(body) => {
            let mut response = (status, body).into_response();
            response.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            response
        }
        Err(err) => UiError(ApiError::internal(&err)).into_response(),
    }
}

/// An error of a page, rendered as an HTML page with the API error's status. A missing
/// object and another client's object give the very same page.
#[derive(Debug)]
pub struct UiError(pub ApiError);

pub type UiResult = Result<Response, UiError>;

impl<E: Into<ApiError>> From<E> for UiError {
    fn from(err: E) -> UiError {
        UiError(err.into())
    }
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        error_page(self.0)
    }
}

/// The HTML page of an error.
pub fn error_page(err: ApiError) -> Response {
    let status = err.code.status();
    let (title, message) = match err.code {
        ErrorCode::NotFound | ErrorCode::NoRoute => (
            "Not found",
            "There is nothing here, or it is not yours to see.".to_string(),
        ),
        ErrorCode::Forbidden => (
            "Not allowed",
            "Your role does not give access to this page.".to_string(),
        ),
        ErrorCode::Internal | ErrorCode::Unavailable => (
            "Something went wrong",
            "The error has been logged; try again in a moment.".to_string(),
        ),
        _ => ("Request refused", err.message.clone()),
    };
    let rendered = ErrorTemplate {
        title,
        message: &message,
    }
    .render()
    .unwrap_or_else(|_| message.clone());
    let mut response = (status, rendered).into_response();
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
}

/// A time as people read it: `2026-11-27 14:05 UTC`.
pub fn when(ts: Timestamp) -> String {
    ts.strftime("%Y-%m-%d %H:%M UTC").to_string()
}

/// A time relative to now: `in 3 h`, `12 min ago`.
pub fn relative(ts: Timestamp, now: Timestamp) -> String {
    let secs = ts.as_second() - now.as_second();
    let (amount, future) = (secs.unsigned_abs(), secs >= 0);
    let text = match amount {
        0..=59 => format!("{amount} s"),
        60..=3_599 => format!("{} min", amount / 60),
        3_600..=172_799 => format!("{} h", amount / 3_600),
        _ => format!("{} d", amount / 86_400),
    };
    match future {
        true => format!("in {text}"),
        false => format!("{text} ago"),
    }
}

/// How long since `since`, never negative: `42 min`.
pub fn elapsed(since: Timestamp, now: Timestamp) -> String {
    let secs = (now.as_second() - since.as_second()).max(0);
    match secs {
        0..=59 => format!("{secs} s"),
        60..=3_599 => format!("{} min", secs / 60),
        3_600..=172_799 => format!("{} h {} min", secs / 3_600, secs % 3_600 / 60),
        _ => format!("{} d", secs / 86_400),
    }
}

pub fn task_pill(state: TaskState) -> Cell {
    let tone = match state {
        TaskState::Done | TaskState::Accepted => "ok",
        TaskState::Rework | TaskState::Escalated | TaskState::Cancelled => "bad",
        TaskState::InReview | TaskState::Submitted | TaskState::OnHold => "warn",
        TaskState::Assigned | TaskState::InProgress | TaskState::Offered => "info",
        TaskState::Ready => "plain",
    };
    Cell::pill(state.code().replace('_', " "), tone)
}

pub fn item_pill(state: WorkItemState) -> Cell {
    let tone = match state {
        WorkItemState::Delivered | WorkItemState::Closed => "ok",
        WorkItemState::Cancelled => "bad",
        WorkItemState::OnHold => "warn",
        WorkItemState::InProgress => "info",
        WorkItemState::Received => "plain",
    };
    Cell::pill(state.code().replace('_', " "), tone)
}

/// A ratio as a percentage with one decimal, or a dash without data.
pub fn percent(ratio: Option<f64>) -> String {
    match ratio {
        Some(r) if r.is_finite() => format!("{:.1} %", r * 100.0),
        _ => "–".into(),
    }
}
