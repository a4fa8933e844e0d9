//! The payload of the one `NOTIFY` a commit may send: every notice of the batch, aggregated.
//!
//! A transaction with a pending `NOTIFY` takes a database-wide lock at commit, which serialises
//! every such commit in the database; so the writer sends at most one per commit, and only when
//! the batch has something to say. The payload is a line of space-separated words, short enough
//! for PostgreSQL's 8,000-byte limit for about 180 tasks:
//!
//! - `c`: claimable tasks may exist;
//! - `s<32 hex digits>`: a signal waits for that task;
//! - `a<32 hex digits>:<seq>`: that task's events through `seq` are durable;
//! - `A`: more tasks' events were written than fit: watchers re-read what they watch (claims
//!   and signals, which come first, are still listed);
//! - `m`: notices were left out (too many for one payload): re-read everything.

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt::Write as _,
};

use longrun_core::{Notice, Seq, TaskId};

/// The largest payload sent; a larger one is replaced by `m`.
pub(crate) const MAX_PAYLOAD: usize = 7_500;

/// What one commit has to tell the other nodes.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Notices {
    pub(crate) claimable: bool,
    pub(crate) signalled: BTreeSet<TaskId>,
    pub(crate) appended: BTreeMap<TaskId, Seq>,
}

impl Notices {
    pub(crate) fn is_empty(&self) -> bool {
        !self.claimable && self.signalled.is_empty() && self.appended.is_empty()
    }

    /// Notes that `task`'s events through `seq` are written.
    pub(crate) fn appended(&mut self, task: TaskId, seq: Seq) {
        let latest = self.appended.entry(task).or_insert(seq);
        *latest = (*latest).max(seq);
    }

    /// The payload; `m` alone if the notices do not fit.
    pub(crate) fn payload(&self) -> String {
        let mut payload = String::new();
        if self.claimable {
            payload.push('c');
        }
        for task in &self.signalled {
            let _ = write!(payload, " s{:032x}", task.as_u128());
            if payload.len() > MAX_PAYLOAD {
                return "m".to_owned();
            }
        }
        for (task, seq) in &self.appended {
            let before = payload.len();
            let _ = write!(payload, " a{:032x}:{seq}", task.as_u128());
            if payload.len() > MAX_PAYLOAD {
                // A big batch: say that much was written, and keep what must not be lost.
                payload.truncate(before);
                payload.push_str(" A");
                break;
            }
        }
        payload.trim_start().to_owned()
    }
}

/// The notices in a payload. A word this version does not know gives `Missed`, so a newer node
/// never leaves an older one waiting for a wake-up it could not read.
pub(crate) fn decode(payload: &str) -> Vec<Notice> {
    let mut notices = Vec::new();
    for word in payload.split_ascii_whitespace() {
        let notice = match word.split_at_checked(1) {
            Some(("c", "")) => Some(Notice::Claimable),
            Some(("A", "")) => Some(Notice::AppendedMany),
            Some(("s", hex)) => task(hex).map(|task| Notice::Signalled { task }),
            Some(("a", rest)) => rest.split_once(':').and_then(|(hex, seq)| {
                Some(Notice::Appended {
                    task: task(hex)?,
                    seq: Seq::from_u64(seq.parse().ok()?),
                })
            }),
            _ => None,
        };
        match notice {
            Some(notice) => notices.push(notice),
            None => {
                notices.push(Notice::Missed);
                break;
            }
        }
    }
    notices
}

fn task(hex: &str) -> Option<TaskId> {
    if hex.len() != 32 {
        return None;
    }
    u128::from_str_radix(hex, 16).ok().map(TaskId::from_u128)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_round_trip() {
        let (a, b) = (TaskId::random(), TaskId::random());
        let mut notices = Notices {
            claimable: true,
            ..Notices::default()
        };
        notices.signalled.insert(b);
        notices.appended(a, Seq::from_u64(3));
        notices.appended(a, Seq::from_u64(7));
        notices.appended(a, Seq::from_u64(5));
        let decoded = decode(&notices.payload());
        assert_eq!(
            decoded,
            [
                Notice::Claimable,
                Notice::Signalled { task: b },
                Notice::Appended {
                    task: a,
                    seq: Seq::from_u64(7)
                },
            ]
        );
    }

    #[test]
    fn too_many_appends_keep_claims_and_signals() {
        let signalled = TaskId::random();
        let mut notices = Notices {
            claimable: true,
            ..Notices::default()
        };
        notices.signalled.insert(signalled);
        for _ in 0..1_000 {
            notices.appended(TaskId::random(), Seq::FIRST);
        }
        let payload = notices.payload();
        assert!(payload.len() <= MAX_PAYLOAD + 2);
        let decoded = decode(&payload);
        assert_eq!(
            decoded[..2],
            [Notice::Claimable, Notice::Signalled { task: signalled }]
        );
        assert_eq!(decoded.last(), Some(&Notice::AppendedMany));
    }

    #[test]
    fn too_many_signals_become_missed() {
        let mut notices = Notices::default();
        for _ in 0..1_000 {
            notices.signalled.insert(TaskId::random());
        }
        assert_eq!(notices.payload(), "m");
        assert_eq!(decode("m"), [Notice::Missed]);
    }

    #[test]
    fn unknown_words_become_missed() {
        assert_eq!(decode("c x"), [Notice::Claimable, Notice::Missed]);
        assert_eq!(decode("snothex"), [Notice::Missed]);
        assert_eq!(decode(""), []);
    }
}
