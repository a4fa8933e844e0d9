//! Typed, unguessable task ids.
//!
//! A [`TaskId`] is 122 random bits (a version-4 UUID) written as `task_` followed by 32 lowercase
//! hex digits. The prefix makes ids readable in logs and lets the edge reject an id of the wrong
//! kind before it reaches a store.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

const PREFIX: &str = "task_";

/// The id of one task: random, unguessable, and never reused.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TaskId(Uuid);

impl TaskId {
    /// A fresh id with 122 random bits.
    pub fn random() -> Self {
        Self(Uuid::new_v4())
    }

    /// The id's 128 bits, for stores that keep ids as integers or blobs.
    pub fn as_u128(&self) -> u128 {
        self.0.as_u128()
    }

    /// Rebuilds an id from the bits [`TaskId::as_u128`] gave.
    pub fn from_u128(bits: u128) -> Self {
        Self(Uuid::from_u128(bits))
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut text = [0u8; 32];
        let hex = self.0.simple().encode_lower(&mut text);
        f.pad(&format!("{PREFIX}{hex}"))
    }
}

impl fmt::Debug for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Why a string is not a task id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{input}` is not a task id: expected `task_` followed by 32 hex digits")]
pub struct ParseIdError {
    input: String,
}

impl FromStr for TaskId {
    type Err = ParseIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let error = || ParseIdError {
            // Ids come from untrusted input: keep the echo short.
            input: s.chars().take(64).collect(),
        };
        let hex = s.strip_prefix(PREFIX).ok_or_else(error)?;
        if hex.len() != 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(error());
        }
        Uuid::parse_str(hex).map(Self).map_err(|_| error())
    }
}

impl Serialize for TaskId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for TaskId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_its_text() {
        let id = TaskId::random();
        let text = id.to_string();
        assert!(text.starts_with("task_"));
        assert_eq!(text.len(), 37);
        assert_eq!(text.parse::<TaskId>().unwrap(), id);
        assert_eq!(TaskId::from_u128(id.as_u128()), id);
    }

    #[test]
    fn ids_are_distinct() {
        let ids: std::collections::HashSet<_> = (0..10_000).map(|_| TaskId::random()).collect();
        assert_eq!(ids.len(), 10_000);
    }

    #[test]
    fn rejects_malformed_ids() {
        for bad in [
            "",
            "task_",
            "job_0123456789abcdef0123456789abcdef",
            "task_0123456789abcdef0123456789abcde",
            "task_0123456789abcdef0123456789abcdeg",
            "task_0123456789abcdef-0123456789abcde",
        ] {
            assert!(bad.parse::<TaskId>().is_err(), "{bad} parsed");
        }
    }
}
