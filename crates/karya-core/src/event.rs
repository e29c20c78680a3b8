//! What an event records: which kind of thing changed and how.
//!
//! Every state change in karya is written as an event in the same transaction as the change
//! itself. The event names the entity it is about and the kind of change; its payload (JSON
//! text, composed by the store) carries the details. Events are the audit trail and the source
//! from which SLA clocks and metrics are recomputed.

use std::fmt;

/// The kind of entity an event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntityType {
    Client,
    Site,
    Engagement,
    WorkItem,
    Task,
    Worker,
    Offer,
    Review,
    Decision,
    Policy,
    Deliverable,
    User,
    Webhook,
    ConsensusGroup,
    Document,
}

impl EntityType {
    pub fn code(self) -> &'static str {
        match self {
            EntityType::Client => "client",
            EntityType::Site => "site",
            EntityType::Engagement => "engagement",
            EntityType::WorkItem => "work_item",
            EntityType::Task => "task",
            EntityType::Worker => "worker",
            EntityType::Offer => "offer",
            EntityType::Review => "review",
            EntityType::Decision => "decision",
            EntityType::Policy => "policy",
            EntityType::Deliverable => "deliverable",
            EntityType::User => "user",
            EntityType::Webhook => "webhook",
            EntityType::ConsensusGroup => "consensus_group",
            EntityType::Document => "document",
        }
    }
}

impl fmt::Display for EntityType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// The kind of change. The code is `<entity>.<verb>`, stable across versions: auditors and
/// webhooks match on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    ClientCreated,
    SiteCreated,
    WorkerCreated,
    EngagementCreated,
    WorkItemCreated,
    WorkItemTransitioned,
    TaskCreated,
    TaskTransitioned,
    TaskClaimed,
    TaskReleased,
    TaskReassigned,
    DecisionTypeRegistered,
    PolicyPublished,
    DecisionTaken,
    DecisionApproved,
    DecisionRejected,
    DecisionUndone,
    DecisionFlagged,
    UserCreated,
    UserDisabled,
    TokenCreated,
    TokenRevoked,
    QaPolicySet,
    ReviewerQualificationGranted,
    TaskSampled,
    GoldScored,
    ReviewRecorded,
    WorkerPausedOnStep,
    CalendarSet,
    SiteCalendarSet,
    WorkerLeaveRecorded,
    EngagementSlaSet,
    SlaRecomputed,
    WorkItemSlaReset,
    WorkItemSlaWarning,
    WorkerProfileChanged,
    WorkerPresenceChanged,
    EngagementRoutingSet,
    WebhookRegistered,
    WebhookRemoved,
    WebhookSuspended,
    WebhookResumed,
    ConsensusGroupOpened,
    TaskKeyed,
    ConsensusCompared,
    ConsensusSettled,
    WorkerPauseLifted,
    TaskOutputRecorded,
    EngagementPackApplied,
    JobQueued,
    JobClaimed,
    JobCompleted,
    JobAttemptFailed,
    JobFailed,
    DeliverableCreated,
    DocumentAttached,
}

impl EventKind {
    pub fn code(self) -> &'static str {
        match self {
            EventKind::ClientCreated => "client.created",
            EventKind::SiteCreated => "site.created",
            EventKind::WorkerCreated => "worker.created",
            EventKind::EngagementCreated => "engagement.created",
            EventKind::WorkItemCreated => "work_item.created",
            EventKind::WorkItemTransitioned => "work_item.transitioned",
            EventKind::TaskCreated => "task.created",
            EventKind::TaskTransitioned => "task.transitioned",
            EventKind::TaskClaimed => "task.claimed",
            EventKind::TaskReleased => "task.released",
            EventKind::TaskReassigned => "task.reassigned",
            EventKind::DecisionTypeRegistered => "decision_type.registered",
            EventKind::PolicyPublished => "policy.published",
            EventKind::DecisionTaken => "decision.taken",
            EventKind::DecisionApproved => "decision.approved",
            EventKind::DecisionRejected => "decision.rejected",
            EventKind::DecisionUndone => "decision.undone",
            EventKind::DecisionFlagged => "decision.flagged",
            EventKind::UserCreated => "user.created",
            EventKind::UserDisabled => "user.disabled",
            EventKind::TokenCreated => "api_token.created",
            EventKind::TokenRevoked => "api_token.revoked",
            EventKind::QaPolicySet => "engagement.qa_policy_set",
            EventKind::ReviewerQualificationGranted => "worker.reviewer_qualification_granted",
            EventKind::TaskSampled => "task.sampled",
            EventKind::GoldScored => "task.gold_scored",
            EventKind::ReviewRecorded => "review.recorded",
            EventKind::WorkerPausedOnStep => "worker.paused_on_step",
            EventKind::CalendarSet => "client.calendar_set",
            EventKind::SiteCalendarSet => "site.calendar_set",
            EventKind::WorkerLeaveRecorded => "worker.leave_recorded",
            EventKind::EngagementSlaSet => "engagement.sla_set",
            EventKind::SlaRecomputed => "engagement.sla_recomputed",
            EventKind::WorkItemSlaReset => "work_item.sla_reset",
            EventKind::WorkItemSlaWarning => "work_item.sla_warning",
            EventKind::WorkerProfileChanged => "worker.profile_changed",
            EventKind::WorkerPresenceChanged => "worker.presence_changed",
            EventKind::EngagementRoutingSet => "engagement.routing_set",
            EventKind::WebhookRegistered => "webhook.registered",
            EventKind::WebhookRemoved => "webhook.removed",
            EventKind::WebhookSuspended => "webhook.suspended",
            EventKind::WebhookResumed => "webhook.resumed",
            EventKind::ConsensusGroupOpened => "consensus_group.opened",
            EventKind::TaskKeyed => "task.keyed",
            EventKind::ConsensusCompared => "consensus_group.compared",
            EventKind::ConsensusSettled => "consensus_group.settled",
            EventKind::WorkerPauseLifted => "worker.pause_lifted",
            EventKind::TaskOutputRecorded => "task.output_recorded",
            EventKind::EngagementPackApplied => "engagement.pack_applied",
            EventKind::JobQueued => "job.queued",
            EventKind::JobClaimed => "job.claimed",
            EventKind::JobCompleted => "job.completed",
            EventKind::JobAttemptFailed => "job.attempt_failed",
            EventKind::JobFailed => "job.failed",
            EventKind::DeliverableCreated => "deliverable.created",
            EventKind::DocumentAttached => "document.attached",
        }
    }

    pub fn entity_type(self) -> EntityType {
        match self {
            EventKind::ClientCreated => EntityType::Client,
            EventKind::SiteCreated => EntityType::Site,
            EventKind::WorkerCreated
            | EventKind::WorkerProfileChanged
            | EventKind::WorkerPresenceChanged => EntityType::Worker,
            EventKind::EngagementRoutingSet => EntityType::Engagement,
            EventKind::EngagementCreated => EntityType::Engagement,
            EventKind::WorkItemCreated | EventKind::WorkItemTransitioned => EntityType::WorkItem,
            EventKind::CalendarSet => EntityType::Client,
            EventKind::SiteCalendarSet => EntityType::Site,
            EventKind::WorkerLeaveRecorded => EntityType::Worker,
            EventKind::EngagementSlaSet | EventKind::SlaRecomputed => EntityType::Engagement,
            EventKind::WorkItemSlaReset | EventKind::WorkItemSlaWarning => EntityType::WorkItem,
            EventKind::TaskCreated
            | EventKind::TaskTransitioned
            | EventKind::TaskClaimed
            | EventKind::TaskReleased
            | EventKind::TaskReassigned => EntityType::Task,
            EventKind::DecisionTypeRegistered => EntityType::Engagement,
            EventKind::PolicyPublished => EntityType::Policy,
            EventKind::DecisionTaken
            | EventKind::DecisionApproved
            | EventKind::DecisionRejected
            | EventKind::DecisionUndone
            | EventKind::DecisionFlagged => EntityType::Decision,
            EventKind::UserCreated
            | EventKind::UserDisabled
            | EventKind::TokenCreated
            | EventKind::TokenRevoked => EntityType::User,
            EventKind::QaPolicySet => EntityType::Engagement,
            EventKind::ReviewerQualificationGranted | EventKind::WorkerPausedOnStep => {
                EntityType::Worker
            }
            EventKind::TaskSampled | EventKind::GoldScored => EntityType::Task,
            EventKind::ReviewRecorded => EntityType::Review,
            EventKind::WebhookRegistered
            | EventKind::WebhookRemoved
            | EventKind::WebhookSuspended
            | EventKind::WebhookResumed => EntityType::Webhook,
            EventKind::ConsensusGroupOpened
            | EventKind::ConsensusCompared
            | EventKind::ConsensusSettled => EntityType::ConsensusGroup,
            EventKind::TaskKeyed => EntityType::Task,
            EventKind::WorkerPauseLifted => EntityType::Worker,
            EventKind::EngagementPackApplied => EntityType::Engagement,
            // A job is the task of a processor step.
            EventKind::TaskOutputRecorded
            | EventKind::JobQueued
            | EventKind::JobClaimed
            | EventKind::JobCompleted
            | EventKind::JobAttemptFailed
            | EventKind::JobFailed => EntityType::Task,
            EventKind::DeliverableCreated => EntityType::Deliverable,
            EventKind::DocumentAttached => EntityType::Document,
        }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}
