//! The entities of the firm, as plain data.
//!
//! These are the shapes the rules work on. They carry no behaviour beyond small, pure helpers;
//! the store maps them to rows and the server to JSON, each by hand, so the wire and database
//! formats can evolve without touching the domain.

use jiff::Timestamp;

use crate::id::{
    AssignmentId, ClientId, DeliverableId, EngagementId, OfferId, ReviewId, SiteId, TaskId,
    WorkItemId, WorkerId,
};
use crate::lifecycle::{TaskState, WorkItemState};
use crate::money::Currency;
use crate::service_line::ServiceLine;

/// A delivery centre ("same country or offshore").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    pub id: SiteId,
    pub name: String,
    /// IANA time zone name, e.g. `Asia/Kolkata`.
    pub time_zone: String,
    pub country: String,
}

/// A tenant: a company that hands work to the firm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    pub id: ClientId,
    pub name: String,
    /// The currency the client is billed in.
    pub currency: Currency,
    pub created_at: Timestamp,
}

/// How urgent a work item is; SLA terms are set per priority.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Priority {
    Low,
    Normal,
    High,
    Urgent,
}

impl Priority {
    pub const ALL: [Priority; 4] = [
        Priority::Low,
        Priority::Normal,
        Priority::High,
        Priority::Urgent,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Priority::Low => "low",
            Priority::Normal => "normal",
            Priority::High => "high",
            Priority::Urgent => "urgent",
        }
    }

    pub fn parse(text: &str) -> Option<Priority> {
        Priority::ALL.into_iter().find(|p| p.code() == text)
    }
}

/// A client's contract for one service line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Engagement {
    pub id: EngagementId,
    pub client_id: ClientId,
    pub name: String,
    pub service_line: ServiceLine,
    pub created_at: Timestamp,
}

/// One thing a client asked for: a prior-art search, an insurance claim, a batch of forms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkItem {
    pub id: WorkItemId,
    pub client_id: ClientId,
    pub engagement_id: EngagementId,
    /// The client's own reference (claim number, docket number), unique within the engagement
    /// when given, so that a resubmitted item is recognised.
    pub external_ref: Option<String>,
    pub title: String,
    pub priority: Priority,
    pub state: WorkItemState,
    /// The item's input as submitted, JSON text validated against the pack's input form.
    pub input: String,
    pub received_at: Timestamp,
    pub updated_at: Timestamp,
    /// Number of changes so far; a client may send it back to refuse a stale update.
    pub version: u64,
}

/// One step of a work item, done by one worker or one processor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    pub id: TaskId,
    pub client_id: ClientId,
    pub work_item_id: WorkItemId,
    /// The pack step this task performs.
    pub step: String,
    pub priority: Priority,
    pub state: TaskState,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// The holding of a task by a worker. At most one assignment of a task is active at a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    pub id: AssignmentId,
    pub task_id: TaskId,
    pub worker_id: WorkerId,
    pub assigned_at: Timestamp,
    pub released_at: Option<Timestamp>,
}

/// Rank on the firm's career ladder; it sets a worker's authority.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Designation {
    Analyst,
    SeniorAnalyst,
    TeamLead,
    Manager,
}

impl Designation {
    pub fn code(self) -> &'static str {
        match self {
            Designation::Analyst => "analyst",
            Designation::SeniorAnalyst => "senior_analyst",
            Designation::TeamLead => "team_lead",
            Designation::Manager => "manager",
        }
    }
}

/// A person who does tasks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Worker {
    pub id: WorkerId,
    pub name: String,
    pub site_id: Option<SiteId>,
    pub designation: Designation,
    pub created_at: Timestamp,
}

/// How an offer ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OfferOutcome {
    Accepted,
    Declined,
    TimedOut,
    Withdrawn,
}

/// The router proposing a task to a worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    pub id: OfferId,
    pub task_id: TaskId,
    pub worker_id: WorkerId,
    pub offered_at: Timestamp,
    pub expires_at: Timestamp,
    pub outcome: Option<OfferOutcome>,
}

/// How bad a defect is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Minor,
    Major,
    Critical,
}

/// One fault a reviewer found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Defect {
    /// A category the pack declares, e.g. `missed_reference` or `wrong_code`.
    pub category: String,
    pub severity: Severity,
    /// The output field it concerns, if any.
    pub field: Option<String>,
    pub comment: String,
}

/// Quality check of a finished task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Review {
    pub id: ReviewId,
    pub task_id: TaskId,
    pub reviewer_id: WorkerId,
    pub passed: bool,
    pub defects: Vec<Defect>,
    pub reviewed_at: Timestamp,
}

/// What goes back to the client: a document stored by content hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deliverable {
    pub id: DeliverableId,
    pub client_id: ClientId,
    pub work_item_id: WorkItemId,
    pub file_name: String,
    pub media_type: String,
    /// SHA-256 of the content, hex.
    pub sha256: String,
    pub size_bytes: u64,
    pub delivered_at: Timestamp,
}

// The pack model lives in its own module; these names stay reachable from here.
pub use crate::pack::{Pack, Step, StepKind};

/// What a person signing in may do. Firm roles see every client; client roles see only
/// their own client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Sets up the firm: clients, engagements, workers, users, firm policies.
    Admin,
    /// Runs operations across clients.
    Manager,
    /// Leads a team: rebalances, approves escalations and decisions within authority.
    Lead,
    /// Does tasks routed to them.
    Worker,
    /// Checks sampled work.
    Reviewer,
    /// A client's administrator: its users, policies, submissions.
    ClientAdmin,
    /// A client's user: submits and follows work.
    ClientUser,
    /// Reads the event trail and its verification, nothing else.
    Auditor,
}

impl Role {
    pub const ALL: [Role; 8] = [
        Role::Admin,
        Role::Manager,
        Role::Lead,
        Role::Worker,
        Role::Reviewer,
        Role::ClientAdmin,
        Role::ClientUser,
        Role::Auditor,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Manager => "manager",
            Role::Lead => "lead",
            Role::Worker => "worker",
            Role::Reviewer => "reviewer",
            Role::ClientAdmin => "client_admin",
            Role::ClientUser => "client_user",
            Role::Auditor => "auditor",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|role| role.code() == text)
    }

    /// Whether the role belongs to a client (and must name one).
    pub fn is_client_role(self) -> bool {
        matches!(self, Role::ClientAdmin | Role::ClientUser)
    }

    /// Whether the role works tasks (and must name a worker record).
    pub fn needs_worker(self) -> bool {
        matches!(self, Role::Worker | Role::Reviewer)
    }
}
