//! The agent inboxes of every session.
//!
//! # Invariants
//!
//! - Positions come from one counter for the whole store, so they never restart, even when a
//!   session's inbox empties and its entry is removed: an agent that acknowledged through `p`
//!   can never see a later item at a position `<= p`.
//! - Each session's items are in position order, and a session with no items has no entry, so
//!   memory returns to its baseline once everything is acknowledged.

use std::collections::{HashMap, VecDeque};

use longrun_core::{InboxEntry, InboxItem, Session, TaskId, Timestamp, store::NewInboxItem};

/// An item as kept: its session is the key it is filed under, so it is not kept twice.
#[derive(Debug)]
struct Stored {
    position: u64,
    task: TaskId,
    at: Timestamp,
    entry: InboxEntry,
}

/// Every session's inbox.
#[derive(Debug, Default)]
pub(crate) struct Inboxes {
    sessions: HashMap<Session, VecDeque<Stored>>,
    /// The last position handed out; 0 before the first, so "after 0" means from the start.
    last_position: u64,
}

impl Inboxes {
    /// Places `item` at the end of its session's inbox.
    pub(crate) fn push(&mut self, item: NewInboxItem) {
        self.last_position += 1;
        let NewInboxItem {
            session,
            task,
            at,
            entry,
        } = item;
        let stored = Stored {
            position: self.last_position,
            task,
            at,
            entry,
        };
        match self.sessions.get_mut(&session) {
            Some(items) => items.push_back(stored),
            None => {
                self.sessions.insert(session, VecDeque::from([stored]));
            }
        }
    }

    /// Items of `session` above position `after`, in order, at most `limit`.
    pub(crate) fn peek(&self, session: &Session, after: u64, limit: usize) -> Vec<InboxItem> {
        let Some(items) = self.sessions.get(session) else {
            return Vec::new();
        };
        let start = items.partition_point(|item| item.position <= after);
        items
            .range(start..)
            .take(limit)
            .map(|item| InboxItem {
                session: session.clone(),
                position: item.position,
                task: item.task,
                at: item.at,
                entry: item.entry.clone(),
            })
            .collect()
    }

    /// Removes the items of `session` up to and including `through`; returns how many.
    pub(crate) fn acknowledge(&mut self, session: &Session, through: u64) -> usize {
        let Some(items) = self.sessions.get_mut(session) else {
            return 0;
        };
        let count = items.partition_point(|item| item.position <= through);
        items.drain(..count);
        if items.is_empty() {
            self.sessions.remove(session);
            if self.sessions.capacity() > 4 * self.sessions.len() + 64 {
                self.sessions.shrink_to(2 * self.sessions.len());
            }
        } else if items.capacity() > 4 * items.len() + 64 {
            items.shrink_to(2 * items.len());
        }
        count
    }

    /// How many sessions have items, to check empty inboxes are dropped.
    #[cfg(test)]
    pub(crate) fn sessions(&self) -> usize {
        self.sessions.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(session: &str) -> NewInboxItem {
        NewInboxItem {
            session: Session::new(session),
            task: TaskId::random(),
            at: Timestamp::from_millis(1),
            entry: InboxEntry::Message {
                message: "hi".into(),
                trigger: false,
            },
        }
    }

    #[test]
    fn positions_never_restart_after_an_inbox_empties() {
        let mut inboxes = Inboxes::default();
        let a = Session::new("a");
        inboxes.push(item("a"));
        inboxes.push(item("a"));
        assert_eq!(inboxes.acknowledge(&a, 2), 2);
        assert_eq!(inboxes.sessions(), 0, "an empty inbox keeps no entry");

        inboxes.push(item("a"));
        let items = inboxes.peek(&a, 0, 10);
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].position, 3);
        assert_eq!(items[0].session, a);
    }
}
