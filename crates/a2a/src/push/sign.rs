//! Signed push notifications: with `[a2a] webhook_secret` set, every POST carries
//!
//! ```text
//! Longrun-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" under the secret>
//! ```
//!
//! so a receiver that knows the secret can tell the body came from this server unchanged, and
//! refuse replays older than its tolerance (the time is inside the signed text). A2A's own
//! notification token travels beside it in clear, so it proves nothing once seen; the secret
//! never leaves the server.

use std::{
    fmt,
    time::{SystemTime, UNIX_EPOCH},
};

use ring::hmac;
use serde::Deserialize;

/// The header the signature travels in.
pub(crate) const SIGNATURE_HEADER: &str = "longrun-signature";

/// The secret push notifications are signed with. Its `Debug` hides it, so a logged config
/// shows no secret.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct WebhookSecret(String);

impl WebhookSecret {
    /// A secret; share it with the webhooks' owners out of band.
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(<hidden>)")
    }
}

/// Signs bodies with a [`WebhookSecret`].
pub(crate) struct Signer(hmac::Key);

impl Signer {
    pub(crate) fn new(secret: &WebhookSecret) -> Self {
        Self(hmac::Key::new(hmac::HMAC_SHA256, secret.0.as_bytes()))
    }

    /// The `Longrun-Signature` value for `body`, signed now.
    pub(crate) fn header(&self, body: &[u8]) -> String {
        #[expect(
            clippy::disallowed_methods,
            reason = "the signature's time is checked by the receiver against its own wall clock, so it must be real time"
        )]
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_secs());
        self.header_at(now, body)
    }

    fn header_at(&self, unix_seconds: u64, body: &[u8]) -> String {
        let mut context = hmac::Context::with_key(&self.0);
        context.update(unix_seconds.to_string().as_bytes());
        context.update(b".");
        context.update(body);
        let tag = context.sign();
        let hex: String = tag
            .as_ref()
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        format!("t={unix_seconds},v1={hex}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_of_time_dot_body() {
        // RFC 4231 test case 2's key and data, as "<t>.<body>" = "what do ya want " + "for nothing?"
        // cannot be split on a dot; so check against ring's one-shot HMAC of the same text.
        let signer = Signer::new(&WebhookSecret::new("Jefe"));
        let header = signer.header_at(1_700_000_000, b"{\"a\":1}");
        let key = hmac::Key::new(hmac::HMAC_SHA256, b"Jefe");
        let expected = hmac::sign(&key, b"1700000000.{\"a\":1}");
        let hex: String = expected
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(header, format!("t=1700000000,v1={hex}"));
        assert_eq!(hex.len(), 64);
    }

    #[test]
    fn the_secret_is_not_shown() {
        assert!(!format!("{:?}", WebhookSecret::new("s3cret")).contains("s3cret"));
    }
}
