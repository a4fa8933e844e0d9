//! A task's journal: what earlier attempts already did, read from its event log once per
//! attempt, so that a re-run or a retry skips finished steps, waits only for what remains of a
//! durable sleep, and does not ask a question twice.

use std::collections::HashMap;

use longrun_core::{
    Change, Seq, TaskId, Timestamp,
    store::{Error as StoreError, EventLog},
};
use serde_json::Value;

use crate::live::{AskSlot, Live};

/// Events read per page.
const PAGE: usize = 512;

/// Saved steps and started timers, by key.
#[derive(Debug, Default)]
pub(crate) struct Journal {
    pub(crate) steps: HashMap<String, Value>,
    pub(crate) timers: HashMap<String, Timestamp>,
}

/// Everything an attempt replays: the journal and the answers already given.
#[derive(Debug, Default)]
pub(crate) struct Replay {
    pub(crate) journal: Journal,
    pub(crate) answers: Vec<(String, Value)>,
}

impl Replay {
    /// Reads the whole log of `id`.
    pub(crate) async fn read(log: &dyn EventLog, id: TaskId) -> Result<Self, StoreError> {
        let mut replay = Self::default();
        let mut after = Seq::ZERO;
        loop {
            let events = log.read(id, after, PAGE).await?;
            let Some(last) = events.last() else {
                return Ok(replay);
            };
            after = last.seq;
            for event in events {
                match &event.change {
                    Change::InputAnswered { key, value } => {
                        replay.answers.push((key.clone(), value.clone()));
                    }
                    Change::StepSaved { key, value } => {
                        replay.journal.steps.insert(key.clone(), value.clone());
                    }
                    Change::TimerStarted { key, until } => {
                        // The first start of a timer is the one that counts: a later attempt
                        // resumes it and records nothing new.
                        replay.journal.timers.entry(key.clone()).or_insert(*until);
                    }
                    _ => {}
                }
            }
        }
    }

    /// Hands the replay to the task's next attempt. Answers that arrived while no attempt ran
    /// are kept; what the last attempt left of its questions is replaced by what the log says.
    pub(crate) fn install(self, live: &Live) {
        let mut state = live.state.lock();
        state
            .asks
            .retain(|_, slot| matches!(slot, AskSlot::Early(_)));
        for (key, value) in self.answers {
            state.asks.entry(key).or_insert(AskSlot::Early(value));
        }
        state.journal = self.journal;
    }
}
