//! The agent inbox: per session, what tasks have to tell the agent at its next turn.

use serde::{Deserialize, Serialize};

use crate::{
    id::TaskId,
    task::{Outcome, Session},
    time::Timestamp,
};

/// What a task leaves for the agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum InboxEntry {
    /// A message from a running task (`notify_agent`).
    Message {
        /// The message.
        message: String,
        /// Whether it asks for a new agent turn.
        trigger: bool,
    },
    /// A background or detached task ended.
    Outcome {
        /// The task's kind.
        kind: String,
        /// How it ended.
        outcome: Outcome,
    },
}

/// One item in a session's inbox, with its position. Positions grow within a session; an
/// acknowledgement through position `p` removes every item up to and including `p`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InboxItem {
    /// The session whose inbox holds it.
    pub session: Session,
    /// Its position in that inbox.
    pub position: u64,
    /// The task it is about.
    pub task: TaskId,
    /// When it was placed.
    pub at: Timestamp,
    /// What it says.
    pub entry: InboxEntry,
}

impl InboxItem {
    /// Whether the item asks for a new agent turn (outcomes always do).
    pub fn triggers(&self) -> bool {
        match &self.entry {
            InboxEntry::Message { trigger, .. } => *trigger,
            InboxEntry::Outcome { .. } => true,
        }
    }
}
