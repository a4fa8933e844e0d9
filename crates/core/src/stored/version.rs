//! The version a stored document carries (`"v": 1`), and the errors of encoding and decoding.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer, de::DeserializeOwned};

/// The version this build writes and reads.
const CURRENT: u64 = 1;

/// The `v` field of a version 1 document: written as `1`; read as absent (a document written
/// before the field existed) or `1`, and any other value refused, so that a document of a later
/// format is never read as this one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct V1;

impl Serialize for V1 {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(CURRENT)
    }
}

impl<'de> Deserialize<'de> for V1 {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let found = u64::deserialize(deserializer)?;
        if found == CURRENT {
            Ok(Self)
        } else {
            Err(serde::de::Error::custom(Newer(found)))
        }
    }
}

/// The message of a version this build does not read.
struct Newer(u64);

impl fmt::Display for Newer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the document is in stored format v{}, and this build reads only v{CURRENT}: it was \
             written by a newer longrun; run that version (or a later one) on this data",
            self.0
        )
    }
}

/// Why a stored document could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The value could not be turned into JSON.
    #[error("encoding a stored document: {0}")]
    Encode(#[source] serde_json::Error),
    /// The document is not JSON of the stored format.
    #[error("the stored document does not decode: {0}")]
    Decode(#[source] serde_json::Error),
    /// The document carries a version this build does not read.
    #[error("{}", Newer(*found))]
    Newer {
        /// The document's `v`.
        found: u64,
    },
    /// The document decodes, but says something the domain does not allow.
    #[error("the stored document is not valid: {0}")]
    Invalid(String),
}

/// A stored document of type `T` from its JSON text.
///
/// A failure is explained by the document's `v` when it has one this build does not read:
/// a later format may fail on a field before its `v` is seen, and "missing field" would then
/// hide the reason.
pub(super) fn decode<T: DeserializeOwned>(text: &str) -> Result<T, Error> {
    serde_json::from_str(text).map_err(|error| match version_of(text) {
        Some(found) if found != CURRENT => Error::Newer { found },
        _ => Error::Decode(error),
    })
}

/// The `v` of a JSON object, if it has a whole-number one.
fn version_of(text: &str) -> Option<u64> {
    #[derive(Deserialize)]
    struct Probe {
        #[serde(rename = "v")]
        v: Option<u64>,
    }
    serde_json::from_str::<Probe>(text).ok()?.v
}
