//! Newtype ids, one per entity, so that a `TaskId` can never be passed where a `WorkerId` is due.
//!
//! Ids are UUIDs (version 7 when the shell mints them, so they sort by creation time and index
//! well). This module only parses and prints them: minting is the caller's business, because the
//! core never draws randomness or reads the clock itself.

use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

/// The text given was not an id of the expected form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "malformed {kind} id {text:?}: expected a UUID such as 0192f0e4-5b1c-7d3e-9a41-2f6c8e1d0a7b"
)]
pub struct ParseIdError {
    pub kind: &'static str,
    pub text: String,
}

macro_rules! ids {
    ($($(#[$doc:meta])* $name:ident => $kind:literal;)*) => {$(
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(Uuid);

        impl $name {
            /// What this id names, for error messages.
            pub const KIND: &'static str = $kind;

            pub const fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            pub const fn as_uuid(&self) -> &Uuid {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = ParseIdError;
            fn from_str(text: &str) -> Result<Self, Self::Err> {
                match Uuid::try_parse(text) {
                    Ok(uuid) => Ok(Self(uuid)),
                    Err(_) => Err(ParseIdError { kind: $kind, text: text.chars().take(64).collect() }),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0.hyphenated())
            }
        }
    )*};
}

ids! {
    /// A delivery centre.
    SiteId => "site";
    /// A tenant of the firm.
    ClientId => "client";
    /// A client's contract for one service line.
    EngagementId => "engagement";
    /// One thing a client asked for.
    WorkItemId => "work item";
    /// One step of a work item.
    TaskId => "task";
    /// A person who does tasks.
    WorkerId => "worker";
    /// A proposal of a task to a worker.
    OfferId => "offer";
    /// The holding of a task by a worker, from assignment to release.
    AssignmentId => "assignment";
    /// A quality check of a finished task.
    ReviewId => "review";
    /// A business decision taken inside a task.
    DecisionId => "decision";
    /// A client's rule over decisions.
    PolicyId => "policy";
    /// What goes back to the client.
    DeliverableId => "deliverable";
    /// A working calendar of a client or a site.
    CalendarId => "calendar";
    /// A client's endpoint that receives its events.
    WebhookId => "webhook";
    /// The k blind keyings of one step of a work item, compared and settled together.
    ConsensusGroupId => "consensus group";
    /// A file attached to a work item.
    DocumentId => "document";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_name_their_kind_on_error() {
        let text = "0192f0e4-5b1c-7d3e-9a41-2f6c8e1d0a7b";
        let id: TaskId = text.parse().unwrap();
        assert_eq!(id.to_string(), text);

        let err = "42".parse::<WorkItemId>().unwrap_err();
        assert_eq!(err.kind, "work item");
        assert!(err.to_string().starts_with("malformed work item id \"42\""));
    }
}
