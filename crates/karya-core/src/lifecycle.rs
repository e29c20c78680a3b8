//! The state machines of work items and tasks.
//!
//! Each machine is one transition table: a list of `(from, to, action)` rows, and nothing else
//! decides whether a move is legal. An illegal move is an error that names both states and the
//! moves that *are* possible from where the thing stands, never a panic.

use std::fmt;
use std::str::FromStr;

/// A move the state machine does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a {machine} cannot go from {from} to {to}; from {from} it can go to: {allowed}")]
pub struct IllegalTransition {
    pub machine: &'static str,
    pub from: &'static str,
    pub to: &'static str,
    /// The states reachable from `from`, comma-separated (or "nothing, it is final").
    pub allowed: String,
}

/// A state name that is not a state of the machine.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {machine} state {text:?}; states are: {known}")]
pub struct UnknownState {
    pub machine: &'static str,
    pub text: String,
    pub known: String,
}

macro_rules! state_machine {
    (
        $(#[$doc:meta])*
        $machine:ident, $label:literal {
            states: { $($state:ident = $code:literal),* $(,)? }
            transitions: { $($from:ident -> $to:ident : $action:literal),* $(,)? }
        }
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $machine { $($state),* }

        impl $machine {
            pub const ALL: &'static [$machine] = &[$($machine::$state),*];

            /// The transition table: every legal move, with the name of the action that makes it.
            pub const TRANSITIONS: &'static [($machine, $machine, &'static str)] =
                &[$(($machine::$from, $machine::$to, $action)),*];

            pub fn code(self) -> &'static str {
                match self { $($machine::$state => $code),* }
            }

            /// Whether no move leaves this state.
            pub fn is_final(self) -> bool {
                !Self::TRANSITIONS.iter().any(|(from, _, _)| *from == self)
            }

            /// The states one move away.
            pub fn successors(self) -> impl Iterator<Item = $machine> {
                Self::TRANSITIONS.iter().filter(move |(from, _, _)| *from == self).map(|(_, to, _)| *to)
            }

            /// Checks a move against the table and returns the action's name.
            pub fn transition(self, to: $machine) -> Result<&'static str, IllegalTransition> {
                match Self::TRANSITIONS.iter().find(|(from, target, _)| *from == self && *target == to) {
                    Some((_, _, action)) => Ok(action),
                    None => {
                        let allowed: Vec<&str> = self.successors().map($machine::code).collect();
                        let allowed = if allowed.is_empty() {
                            "nothing, it is final".to_string()
                        } else {
                            allowed.join(", ")
                        };
                        Err(IllegalTransition { machine: $label, from: self.code(), to: to.code(), allowed })
                    }
                }
            }
        }

        impl FromStr for $machine {
            type Err = UnknownState;
            fn from_str(text: &str) -> Result<Self, Self::Err> {
                match text {
                    $($code => Ok($machine::$state),)*
                    _ => Err(UnknownState {
                        machine: $label,
                        text: text.chars().take(64).collect(),
                        known: Self::ALL.iter().map(|s| s.code()).collect::<Vec<_>>().join(", "),
                    }),
                }
            }
        }

        impl fmt::Display for $machine {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.code())
            }
        }
    };
}

state_machine! {
    /// Where a work item stands, from intake to delivery.
    ///
    /// `on_hold` means waiting on the client (the SLA clock pauses); `delivered` may go back to
    /// `in_progress` when the client asks for rework or a decision inside it is undone.
    WorkItemState, "work item" {
        states: {
            Received = "received",
            InProgress = "in_progress",
            OnHold = "on_hold",
            Delivered = "delivered",
            Closed = "closed",
            Cancelled = "cancelled",
        }
        transitions: {
            Received -> InProgress: "start",
            Received -> OnHold: "hold",
            Received -> Cancelled: "cancel",
            InProgress -> OnHold: "hold",
            InProgress -> Delivered: "deliver",
            InProgress -> Cancelled: "cancel",
            OnHold -> InProgress: "resume",
            OnHold -> Cancelled: "cancel",
            Delivered -> InProgress: "reopen",
            Delivered -> Closed: "close",
        }
    }
}

state_machine! {
    /// Where a task stands, from being ready for a worker to done.
    ///
    /// The happy path is `ready → offered → assigned → in_progress → submitted → done`, with
    /// `submitted → in_review → accepted | rework` when quality assurance samples the task. A
    /// worker pulling work (*Get next*) goes `ready → assigned` directly. `on_hold` waits on the
    /// client, `escalated` waits on a lead.
    TaskState, "task" {
        states: {
            Ready = "ready",
            Offered = "offered",
            Assigned = "assigned",
            InProgress = "in_progress",
            Submitted = "submitted",
            InReview = "in_review",
            Accepted = "accepted",
            Rework = "rework",
            Done = "done",
            OnHold = "on_hold",
            Escalated = "escalated",
            Cancelled = "cancelled",
        }
        transitions: {
            Ready -> Offered: "offer",
            Ready -> Assigned: "claim",
            Ready -> OnHold: "hold",
            Ready -> Escalated: "escalate",
            Ready -> Cancelled: "cancel",
            Offered -> Assigned: "accept",
            Offered -> Ready: "decline",
            Offered -> Escalated: "escalate",
            Offered -> Cancelled: "cancel",
            Assigned -> InProgress: "start",
            Assigned -> Ready: "release",
            Assigned -> OnHold: "hold",
            Assigned -> Escalated: "escalate",
            Assigned -> Cancelled: "cancel",
            InProgress -> Submitted: "submit",
            InProgress -> Ready: "release",
            InProgress -> OnHold: "hold",
            InProgress -> Escalated: "escalate",
            InProgress -> Cancelled: "cancel",
            Submitted -> InReview: "sample",
            Submitted -> Done: "complete",
            Submitted -> Cancelled: "cancel",
            InReview -> Accepted: "pass",
            InReview -> Rework: "fail",
            Accepted -> Done: "complete",
            Rework -> InProgress: "start",
            Rework -> Ready: "release",
            Rework -> Cancelled: "cancel",
            OnHold -> Ready: "resume",
            OnHold -> Cancelled: "cancel",
            Escalated -> Ready: "reroute",
            Escalated -> Assigned: "claim",
            Escalated -> Cancelled: "cancel",
        }
    }
}

impl TaskState {
    /// Whether a worker holds the task in this state (it has an active assignment).
    pub fn is_held(self) -> bool {
        matches!(
            self,
            TaskState::Assigned
                | TaskState::InProgress
                | TaskState::Submitted
                | TaskState::InReview
                | TaskState::Accepted
                | TaskState::Rework
        )
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn check_task(from: TaskState, to: TaskState, expected: &str) {
        let actual = match from.transition(to) {
            Ok(action) => action.to_string(),
            Err(err) => err.to_string(),
        };
        assert_eq!(actual, expected);
    }

    #[test]
    fn task_transitions() {
        use TaskState::*;
        check_task(Ready, Offered, "offer");
        check_task(Ready, Assigned, "claim");
        check_task(Offered, Ready, "decline");
        check_task(Submitted, InReview, "sample");
        check_task(InReview, Rework, "fail");
        check_task(
            Ready,
            Done,
            "a task cannot go from ready to done; from ready it can go to: offered, assigned, on_hold, escalated, cancelled",
        );
        check_task(
            Done,
            Ready,
            "a task cannot go from done to ready; from done it can go to: nothing, it is final",
        );
    }

    #[test]
    fn work_item_transitions() {
        use WorkItemState::*;
        assert_eq!(Received.transition(InProgress), Ok("start"));
        assert_eq!(OnHold.transition(InProgress), Ok("resume"));
        let err = Closed.transition(InProgress).unwrap_err();
        assert_eq!(err.to_string(), "a work item cannot go from closed to in_progress; from closed it can go to: nothing, it is final");
        assert!(Closed.is_final() && Cancelled.is_final() && !Delivered.is_final());
    }

    #[test]
    fn tables_are_well_formed() {
        // No duplicate rows, no self-loops, every state reachable from the initial state, and
        // every non-final state can still reach a final one.
        fn check<S: Copy + Eq + std::hash::Hash + std::fmt::Debug>(
            all: &[S],
            transitions: &[(S, S, &str)],
            initial: S,
        ) {
            let rows: HashSet<(S, S)> = transitions.iter().map(|(a, b, _)| (*a, *b)).collect();
            assert_eq!(rows.len(), transitions.len(), "duplicate rows");
            assert!(transitions.iter().all(|(a, b, _)| a != b), "self-loop");
            let mut reached = HashSet::from([initial]);
            let mut frontier = vec![initial];
            while let Some(state) = frontier.pop() {
                for (_, to, _) in transitions.iter().filter(|(from, _, _)| *from == state) {
                    if reached.insert(*to) {
                        frontier.push(*to);
                    }
                }
            }
            assert_eq!(reached.len(), all.len(), "unreachable states");
        }
        check(
            WorkItemState::ALL,
            WorkItemState::TRANSITIONS,
            WorkItemState::Received,
        );
        check(TaskState::ALL, TaskState::TRANSITIONS, TaskState::Ready);
    }

    #[test]
    fn state_names_parse_back() {
        for state in TaskState::ALL {
            assert_eq!(state.code().parse::<TaskState>(), Ok(*state));
        }
        for state in WorkItemState::ALL {
            assert_eq!(state.code().parse::<WorkItemState>(), Ok(*state));
        }
        let err = "open".parse::<WorkItemState>().unwrap_err();
        assert!(err.to_string().contains("received, in_progress"), "{err}");
    }
}
