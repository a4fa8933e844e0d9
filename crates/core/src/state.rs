//! The status state machine: the one place that decides which changes are legal.
//!
//! ```text
//! submitted ──start──▶ working ◀──answer / time out── input_required
//!     ▲                  │  └──request input──────────▶   │
//!     └──schedule retry──┴────────────────────────────────┘
//!     ├─cancel─▶ cancelled ◀─cancel──────────────────────┤
//!     └─reject─▶ rejected   working | input_required ─complete / fail─▶ completed | failed
//! ```
//!
//! Saving a step and starting a timer change no status: they journal what a handler did, so
//! that its next attempt can skip it. A retry takes a running task back to `submitted`, where it
//! waits for its next attempt.
//!
//! Terminal states (completed, failed, cancelled, rejected) are final: every later change is
//! refused with [`RefusalReason::Terminal`]. Stores and adapters never decide legality; they
//! call [`State::after`] (through [`crate::Task::apply`]).

use std::{collections::BTreeMap, fmt};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{event::Change, task::Outcome};

/// A task's status, without its data: what filters, metrics and protocol mappings use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Created, not yet running (queued at a limit, or not yet picked up).
    Submitted,
    /// The handler is running.
    Working,
    /// The handler waits for an answer to a question.
    InputRequired,
    /// Ended with a result.
    Completed,
    /// Ended with an error.
    Failed,
    /// Ended by cancellation.
    Cancelled,
    /// Refused before it started.
    Rejected,
}

impl Status {
    /// Every status, in lifecycle order.
    pub const ALL: [Self; 7] = [
        Self::Submitted,
        Self::Working,
        Self::InputRequired,
        Self::Completed,
        Self::Failed,
        Self::Cancelled,
        Self::Rejected,
    ];

    /// Whether the task has ended.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::Completed | Self::Failed | Self::Cancelled | Self::Rejected
        )
    }

    /// The snake_case name, as used in filters and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Submitted => "submitted",
            Self::Working => "working",
            Self::InputRequired => "input_required",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::Rejected => "rejected",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl std::str::FromStr for Status {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown status `{s}`: expected one of submitted, working, input_required, \
                     completed, failed, cancelled, rejected"
                )
            })
    }
}

/// A task's state, with the data that belongs to it.
///
/// As JSON it is one object tagged by `status`; an ended state is its [`Outcome`] itself
/// (`{"status": "completed", "output": …}`), not an outcome nested in an `ended` tag, which would
/// repeat the `status` key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(into = "StateRepr", from = "StateRepr")]
pub enum State {
    /// Created, not yet running.
    Submitted,
    /// The handler is running.
    Working,
    /// The handler waits for answers to these questions (key → request).
    InputRequired {
        /// The open questions.
        pending: BTreeMap<String, Value>,
    },
    /// Ended; the outcome says how.
    Ended(Outcome),
}

/// [`State`]'s JSON shape: an outcome, or one of the open states.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum StateRepr {
    Ended(Outcome),
    Open(OpenState),
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
enum OpenState {
    Submitted,
    Working,
    InputRequired { pending: BTreeMap<String, Value> },
}

impl From<State> for StateRepr {
    fn from(state: State) -> Self {
        match state {
            State::Submitted => Self::Open(OpenState::Submitted),
            State::Working => Self::Open(OpenState::Working),
            State::InputRequired { pending } => Self::Open(OpenState::InputRequired { pending }),
            State::Ended(outcome) => Self::Ended(outcome),
        }
    }
}

impl From<StateRepr> for State {
    fn from(repr: StateRepr) -> Self {
        match repr {
            StateRepr::Open(OpenState::Submitted) => Self::Submitted,
            StateRepr::Open(OpenState::Working) => Self::Working,
            StateRepr::Open(OpenState::InputRequired { pending }) => {
                Self::InputRequired { pending }
            }
            StateRepr::Ended(outcome) => Self::Ended(outcome),
        }
    }
}

impl State {
    /// The status, without data.
    pub fn status(&self) -> Status {
        match self {
            Self::Submitted => Status::Submitted,
            Self::Working => Status::Working,
            Self::InputRequired { .. } => Status::InputRequired,
            Self::Ended(outcome) => outcome.status(),
        }
    }

    /// The open questions, if the task waits for input.
    pub fn pending_input(&self) -> Option<&BTreeMap<String, Value>> {
        match self {
            Self::InputRequired { pending } => Some(pending),
            _ => None,
        }
    }

    /// The state after `change`, or why `change` is not allowed now.
    pub fn after(&self, change: &Change) -> Result<State, Refusal> {
        let status = self.status();
        let refuse = |reason| Err(Refusal::new(status, change.action(), reason));
        if status.is_terminal() {
            return refuse(RefusalReason::Terminal);
        }
        match (self, change) {
            (_, Change::Submitted) => refuse(RefusalReason::NotAllowed),

            // A re-run after a crash starts a working or waiting task again; its open
            // questions are asked anew by the handler.
            (_, Change::Started { .. }) => Ok(Self::Working),

            (
                Self::Submitted,
                Change::Ended(Outcome::Cancelled { .. } | Outcome::Rejected { .. }),
            ) => Ok(Self::Ended(outcome_of(change))),
            (Self::Submitted, Change::InputAnswered { .. } | Change::Detached) => Ok(self.clone()),
            (Self::Submitted, _) => refuse(RefusalReason::NotAllowed),

            (_, Change::Ended(Outcome::Rejected { .. })) => refuse(RefusalReason::NotAllowed),
            // Only a running attempt can fail into a retry, and it waits in `submitted`.
            (_, Change::RetryScheduled { .. }) => Ok(Self::Submitted),
            (_, Change::Ended(_)) => Ok(Self::Ended(outcome_of(change))),

            (_, Change::InputRequested { key, request }) => {
                let mut pending = self.pending_input().cloned().unwrap_or_default();
                if pending.contains_key(key) {
                    return refuse(RefusalReason::KeyPending);
                }
                pending.insert(key.clone(), request.clone());
                Ok(Self::InputRequired { pending })
            }
            (_, Change::InputAnswered { key, .. } | Change::InputTimedOut { key }) => {
                let Some(pending) = self.pending_input() else {
                    // An answer before its question is kept by the runtime, and changes
                    // nothing yet; a time-out needs a question.
                    return match change {
                        Change::InputAnswered { .. } => Ok(Self::Working),
                        _ => refuse(RefusalReason::UnknownKey),
                    };
                };
                if !pending.contains_key(key) {
                    return match change {
                        Change::InputAnswered { .. } => Ok(self.clone()),
                        _ => refuse(RefusalReason::UnknownKey),
                    };
                }
                let mut pending = pending.clone();
                pending.remove(key);
                Ok(if pending.is_empty() {
                    Self::Working
                } else {
                    Self::InputRequired { pending }
                })
            }
            (
                _,
                Change::Progress(_)
                | Change::Artifact(_)
                | Change::AgentMessage { .. }
                | Change::Detached
                | Change::CancelRequested { .. }
                | Change::StepSaved { .. }
                | Change::TimerStarted { .. },
            ) => Ok(self.clone()),
        }
    }
}

fn outcome_of(change: &Change) -> Outcome {
    match change {
        Change::Ended(outcome) => outcome.clone(),
        _ => unreachable!("only called for Ended changes"),
    }
}

/// The kinds of change, by name: what a [`Refusal`] says was attempted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Create the task.
    Submit,
    /// Start (or re-run) the handler.
    Start,
    /// Report progress.
    Progress,
    /// Emit an artifact.
    Artifact,
    /// Ask a question.
    RequestInput,
    /// Answer a question.
    Answer,
    /// Give up waiting for an answer.
    TimeOutInput,
    /// Message the agent.
    MessageAgent,
    /// Detach from the foreground caller.
    Detach,
    /// Ask the task to stop.
    RequestCancel,
    /// Journal a completed step.
    SaveStep,
    /// Journal the start of a durable sleep.
    StartTimer,
    /// Schedule the next attempt after a retryable failure.
    ScheduleRetry,
    /// End with a result.
    Complete,
    /// End with an error.
    Fail,
    /// End by cancellation.
    Cancel,
    /// Refuse before starting.
    Reject,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Submit => "submit",
            Self::Start => "start",
            Self::Progress => "report progress",
            Self::Artifact => "emit an artifact",
            Self::RequestInput => "request input",
            Self::Answer => "answer",
            Self::TimeOutInput => "time out a question",
            Self::MessageAgent => "message the agent",
            Self::Detach => "detach",
            Self::RequestCancel => "request cancellation",
            Self::SaveStep => "save a step",
            Self::StartTimer => "start a timer",
            Self::ScheduleRetry => "schedule a retry",
            Self::Complete => "complete",
            Self::Fail => "fail",
            Self::Cancel => "cancel",
            Self::Reject => "reject",
        })
    }
}

/// Why a change was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalReason {
    /// The task has already ended; terminal states are final.
    Terminal,
    /// The change is not allowed in this state.
    NotAllowed,
    /// A question with this key is already open.
    KeyPending,
    /// No open question has this key.
    UnknownKey,
    /// The event's sequence number does not follow the task's last one.
    OutOfSequence,
    /// The event names another task, or a status its change does not lead to.
    Inconsistent,
}

/// A change the state machine refused, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot {action} a task that is {status}: {}", self.explain())]
pub struct Refusal {
    /// The task's status when the change was attempted.
    pub status: Status,
    /// What was attempted.
    pub action: Action,
    /// Why it was refused.
    pub reason: RefusalReason,
}

impl Refusal {
    fn new(status: Status, action: Action, reason: RefusalReason) -> Self {
        Self {
            status,
            action,
            reason,
        }
    }

    pub(crate) fn out_of_sequence(status: Status, change: &Change) -> Self {
        Self::new(status, change.action(), RefusalReason::OutOfSequence)
    }

    pub(crate) fn inconsistent(status: Status, change: &Change) -> Self {
        Self::new(status, change.action(), RefusalReason::Inconsistent)
    }

    fn explain(&self) -> &'static str {
        match self.reason {
            RefusalReason::Terminal => "the task has ended and its state is final",
            RefusalReason::NotAllowed => "the state machine does not allow this move",
            RefusalReason::KeyPending => "a question with this key is already open",
            RefusalReason::UnknownKey => "no open question has this key",
            RefusalReason::OutOfSequence => "the event does not follow the task's last event",
            RefusalReason::Inconsistent => {
                "the event names another task or a status its change does not lead to"
            }
        }
    }
}

#[cfg(test)]
mod tests {
    //! Every (state, change) pair, and what the machine says of it.

    use serde_json::json;

    use super::{RefusalReason::*, Status::*, *};
    use crate::task::{CancelReason, Progress, TaskError};

    fn state(status: Status) -> State {
        match status {
            Submitted => State::Submitted,
            Working => State::Working,
            InputRequired => State::InputRequired {
                pending: BTreeMap::from([("q".to_owned(), json!("?"))]),
            },
            Completed => State::Ended(Outcome::Completed { output: json!(1) }),
            Failed => State::Ended(Outcome::Failed {
                error: TaskError::new("e", "boom"),
            }),
            Cancelled => State::Ended(Outcome::Cancelled {
                reason: CancelReason::DeadlineExceeded,
            }),
            Rejected => State::Ended(Outcome::Rejected {
                error: TaskError::new("limit_reached", "full"),
            }),
        }
    }

    fn change(action: Action) -> Change {
        match action {
            Action::Submit => Change::Submitted,
            Action::Start => Change::Started { attempt: 1 },
            Action::Progress => Change::Progress(Progress::default()),
            Action::Artifact => Change::Artifact(crate::task::ArtifactChunk {
                id: "a".into(),
                name: None,
                parts: vec![],
                append: false,
                last_chunk: true,
            }),
            // The key "new" is never pending; "q" is pending in the InputRequired fixture.
            Action::RequestInput => Change::InputRequested {
                key: "new".into(),
                request: json!({}),
            },
            Action::Answer => Change::InputAnswered {
                key: "q".into(),
                value: json!(true),
            },
            Action::TimeOutInput => Change::InputTimedOut { key: "q".into() },
            Action::MessageAgent => Change::AgentMessage {
                message: "hi".into(),
                trigger: true,
            },
            Action::Detach => Change::Detached,
            Action::RequestCancel => Change::CancelRequested {
                reason: CancelReason::Requested { by: None },
            },
            Action::SaveStep => Change::StepSaved {
                key: "s".into(),
                value: json!(1),
            },
            Action::StartTimer => Change::TimerStarted {
                key: "t".into(),
                until: crate::Timestamp::from_millis(5),
            },
            Action::ScheduleRetry => Change::RetryScheduled {
                attempt: 1,
                error: TaskError::new("e", "later"),
                at: crate::Timestamp::from_millis(5),
            },
            Action::Complete => Change::Ended(Outcome::Completed { output: json!(2) }),
            Action::Fail => Change::Ended(Outcome::Failed {
                error: TaskError::new("e", "x"),
            }),
            Action::Cancel => Change::Ended(Outcome::Cancelled {
                reason: CancelReason::Requested { by: None },
            }),
            Action::Reject => Change::Ended(Outcome::Rejected {
                error: TaskError::new("limit_reached", "full"),
            }),
        }
    }

    type Row = (Status, Action, Result<Status, RefusalReason>);

    /// The whole machine. Every status × every action appears exactly once.
    const TABLE: &[Row] = &[
        (Submitted, Action::Submit, Err(NotAllowed)),
        (Submitted, Action::Start, Ok(Working)),
        (Submitted, Action::Progress, Err(NotAllowed)),
        (Submitted, Action::Artifact, Err(NotAllowed)),
        (Submitted, Action::RequestInput, Err(NotAllowed)),
        (Submitted, Action::Answer, Ok(Submitted)),
        (Submitted, Action::TimeOutInput, Err(NotAllowed)),
        (Submitted, Action::MessageAgent, Err(NotAllowed)),
        (Submitted, Action::Detach, Ok(Submitted)),
        (Submitted, Action::RequestCancel, Err(NotAllowed)),
        (Submitted, Action::SaveStep, Err(NotAllowed)),
        (Submitted, Action::StartTimer, Err(NotAllowed)),
        (Submitted, Action::ScheduleRetry, Err(NotAllowed)),
        (Submitted, Action::Complete, Err(NotAllowed)),
        (Submitted, Action::Fail, Err(NotAllowed)),
        (Submitted, Action::Cancel, Ok(Cancelled)),
        (Submitted, Action::Reject, Ok(Rejected)),
        (Working, Action::Submit, Err(NotAllowed)),
        (Working, Action::Start, Ok(Working)),
        (Working, Action::Progress, Ok(Working)),
        (Working, Action::Artifact, Ok(Working)),
        (Working, Action::RequestInput, Ok(InputRequired)),
        (Working, Action::Answer, Ok(Working)),
        (Working, Action::TimeOutInput, Err(UnknownKey)),
        (Working, Action::MessageAgent, Ok(Working)),
        (Working, Action::Detach, Ok(Working)),
        (Working, Action::RequestCancel, Ok(Working)),
        (Working, Action::SaveStep, Ok(Working)),
        (Working, Action::StartTimer, Ok(Working)),
        (Working, Action::ScheduleRetry, Ok(Submitted)),
        (Working, Action::Complete, Ok(Completed)),
        (Working, Action::Fail, Ok(Failed)),
        (Working, Action::Cancel, Ok(Cancelled)),
        (Working, Action::Reject, Err(NotAllowed)),
        (InputRequired, Action::Submit, Err(NotAllowed)),
        (InputRequired, Action::Start, Ok(Working)),
        (InputRequired, Action::Progress, Ok(InputRequired)),
        (InputRequired, Action::Artifact, Ok(InputRequired)),
        (InputRequired, Action::RequestInput, Ok(InputRequired)),
        (InputRequired, Action::Answer, Ok(Working)),
        (InputRequired, Action::TimeOutInput, Ok(Working)),
        (InputRequired, Action::MessageAgent, Ok(InputRequired)),
        (InputRequired, Action::Detach, Ok(InputRequired)),
        (InputRequired, Action::RequestCancel, Ok(InputRequired)),
        (InputRequired, Action::SaveStep, Ok(InputRequired)),
        (InputRequired, Action::StartTimer, Ok(InputRequired)),
        (InputRequired, Action::ScheduleRetry, Ok(Submitted)),
        (InputRequired, Action::Complete, Ok(Completed)),
        (InputRequired, Action::Fail, Ok(Failed)),
        (InputRequired, Action::Cancel, Ok(Cancelled)),
        (InputRequired, Action::Reject, Err(NotAllowed)),
    ];

    const ACTIONS: [Action; 17] = [
        Action::Submit,
        Action::Start,
        Action::Progress,
        Action::Artifact,
        Action::RequestInput,
        Action::Answer,
        Action::TimeOutInput,
        Action::MessageAgent,
        Action::Detach,
        Action::RequestCancel,
        Action::SaveStep,
        Action::StartTimer,
        Action::ScheduleRetry,
        Action::Complete,
        Action::Fail,
        Action::Cancel,
        Action::Reject,
    ];

    #[test]
    fn every_transition_and_refusal() {
        for status in Status::ALL {
            for action in ACTIONS {
                let expected = if status.is_terminal() {
                    Err(Terminal)
                } else {
                    TABLE
                        .iter()
                        .find(|(s, a, _)| *s == status && *a == action)
                        .unwrap_or_else(|| panic!("no row for {status} × {action}"))
                        .2
                };
                let got = state(status)
                    .after(&change(action))
                    .map(|next| next.status())
                    .map_err(|refusal| {
                        assert_eq!((refusal.status, refusal.action), (status, action));
                        refusal.reason
                    });
                assert_eq!(got, expected, "{status} × {action}");
            }
        }
        assert_eq!(
            TABLE.len(),
            3 * ACTIONS.len(),
            "the table has a duplicate row"
        );
    }

    #[test]
    fn input_keys_are_tracked() {
        let waiting = State::Working
            .after(&Change::InputRequested {
                key: "a".into(),
                request: json!(1),
            })
            .unwrap()
            .after(&Change::InputRequested {
                key: "b".into(),
                request: json!(2),
            })
            .unwrap();
        assert_eq!(waiting.pending_input().unwrap().len(), 2);

        let twice = waiting.after(&Change::InputRequested {
            key: "a".into(),
            request: json!(3),
        });
        assert_eq!(twice.unwrap_err().reason, KeyPending);

        let one_left = waiting
            .after(&Change::InputAnswered {
                key: "a".into(),
                value: json!(true),
            })
            .unwrap();
        assert_eq!(one_left.status(), InputRequired);
        // An answer for a key nobody asked yet keeps the state as it is.
        assert_eq!(
            one_left
                .after(&Change::InputAnswered {
                    key: "zzz".into(),
                    value: json!(0),
                })
                .unwrap(),
            one_left
        );
        let unknown = one_left.after(&Change::InputTimedOut { key: "a".into() });
        assert_eq!(unknown.unwrap_err().reason, UnknownKey);
        let resumed = one_left
            .after(&Change::InputTimedOut { key: "b".into() })
            .unwrap();
        assert_eq!(resumed, State::Working);
    }

    #[test]
    fn refusals_explain_themselves() {
        let refusal = state(Completed).after(&change(Action::Cancel)).unwrap_err();
        assert_eq!(
            refusal.to_string(),
            "cannot cancel a task that is completed: the task has ended and its state is final"
        );
    }

    #[test]
    fn status_names_round_trip() {
        for status in Status::ALL {
            assert_eq!(status.as_str().parse::<Status>().unwrap(), status);
        }
        assert!("done".parse::<Status>().is_err());
    }
}
