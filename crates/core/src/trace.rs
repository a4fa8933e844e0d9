//! [`TraceContext`]: the W3C trace context (`traceparent`, `tracestate`) a task was started
//! under, kept on the task so every attempt, also one after a restart, joins the caller's trace.
//!
//! Only the text format is known here (validated at the edge, as the W3C Trace Context
//! recommendation says: an invalid `traceparent` is ignored, and a new trace begins); turning
//! it into spans is the runtime's job.

use serde::{Deserialize, Serialize};

/// A W3C trace context, as received in a `traceparent` header (and `tracestate`, if any).
///
/// ```
/// use longrun_core::TraceContext;
///
/// let trace = TraceContext::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", None)
///     .expect("a valid traceparent");
/// assert_eq!(trace.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
/// assert_eq!(trace.parent_id(), "00f067aa0ba902b7");
/// assert!(trace.sampled());
/// assert!(TraceContext::parse("00-00000000000000000000000000000000-00f067aa0ba902b7-01", None).is_none());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceContext {
    traceparent: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tracestate: Option<String>,
}

/// The longest `tracestate` kept: 32 members of at most 256 characters each, with commas
/// (W3C Trace Context §3.3.1.1). A longer one is dropped rather than stored.
const MAX_TRACESTATE: usize = 32 * 257;

impl TraceContext {
    /// The context in `traceparent` (version `00`, or a later version read as `00` as the
    /// recommendation asks) with `tracestate`, or `None` if `traceparent` is not valid: wrong
    /// shape, upper-case hex, or an all-zero trace or parent id.
    pub fn parse(traceparent: &str, tracestate: Option<&str>) -> Option<Self> {
        let traceparent = traceparent.trim();
        let mut parts = traceparent.split('-');
        let version = parts.next()?;
        let trace_id = parts.next()?;
        let parent_id = parts.next()?;
        let flags = parts.next()?;
        let rest = parts.next();
        let hex = |text: &str, len: usize| {
            text.len() == len && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        };
        let valid = hex(version, 2)
            && version != "ff"
            // Version 00 has exactly four fields; a later version may add more.
            && (rest.is_none() || version != "00")
            && hex(trace_id, 32)
            && trace_id.bytes().any(|b| b != b'0')
            && hex(parent_id, 16)
            && parent_id.bytes().any(|b| b != b'0')
            && hex(flags, 2);
        if !valid {
            return None;
        }
        let tracestate = tracestate
            .map(str::trim)
            .filter(|state| !state.is_empty() && state.len() <= MAX_TRACESTATE)
            .map(str::to_owned);
        Some(Self {
            traceparent: format!("00-{trace_id}-{parent_id}-{flags}"),
            tracestate,
        })
    }

    /// The `traceparent` value, always in version `00` form.
    pub fn traceparent(&self) -> &str {
        &self.traceparent
    }

    /// The `tracestate` value, if one came with it.
    pub fn tracestate(&self) -> Option<&str> {
        self.tracestate.as_deref()
    }

    /// The trace id: 32 lower-case hex digits.
    pub fn trace_id(&self) -> &str {
        &self.traceparent[3..35]
    }

    /// The caller's span id (the parent of the task's spans): 16 lower-case hex digits.
    pub fn parent_id(&self) -> &str {
        &self.traceparent[36..52]
    }

    /// The trace flags byte.
    pub fn flags(&self) -> u8 {
        u8::from_str_radix(&self.traceparent[53..55], 16).unwrap_or(0)
    }

    /// Whether the caller sampled the trace (flag bit 0).
    pub fn sampled(&self) -> bool {
        self.flags() & 1 == 1
    }
}

#[cfg(test)]
mod tests {
    use super::TraceContext;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn valid_contexts_parse_and_keep_their_state() {
        let trace = TraceContext::parse(VALID, Some(" vendor=x ")).expect("valid");
        assert_eq!(trace.traceparent(), VALID);
        assert_eq!(trace.tracestate(), Some("vendor=x"));
        assert_eq!(trace.flags(), 1);
        let unsampled = TraceContext::parse(&VALID.replace("-01", "-00"), Some("")).expect("valid");
        assert!(!unsampled.sampled());
        assert_eq!(unsampled.tracestate(), None);
        // A later version is read as 00, its extra fields dropped.
        let later = TraceContext::parse(&format!("{}-extra", VALID.replacen("00", "01", 1)), None)
            .expect("a later version parses");
        assert_eq!(later.traceparent(), VALID);
    }

    #[test]
    fn invalid_contexts_are_refused() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
        ] {
            assert!(TraceContext::parse(bad, None).is_none(), "{bad:?}");
        }
    }
}
