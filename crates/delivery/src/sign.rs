//! Standard Webhooks signatures (<https://www.standardwebhooks.com>): every POST carries
//!
//! ```text
//! webhook-id: <the message's id, the same on every retry>
//! webhook-timestamp: <unix seconds of this attempt>
//! webhook-signature: v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>" under the secret>
//! ```
//!
//! The secret is written `whsec_<base64 of the key bytes>`; the HMAC key is the decoded bytes.
//! A receiver de-duplicates on `webhook-id` and refuses timestamps outside its tolerance.

use std::{
    fmt,
    time::{SystemTime, UNIX_EPOCH},
};

use base64::{Engine, engine::general_purpose::STANDARD};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The header naming the message (stable across retries).
pub const WEBHOOK_ID: &str = "webhook-id";
/// The header with the attempt's time, in Unix seconds.
pub const WEBHOOK_TIMESTAMP: &str = "webhook-timestamp";
/// The header with the signature(s).
pub const WEBHOOK_SIGNATURE: &str = "webhook-signature";

/// The prefix of a written secret.
const PREFIX: &str = "whsec_";
/// The shortest key taken, in bytes: the Standard Webhooks spec asks for 24 to 64.
const MIN_KEY: usize = 24;
/// The longest key taken, in bytes.
const MAX_KEY: usize = 64;

/// A Standard Webhooks signing secret. Its `Debug` hides it, so a logged config shows none.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningSecret {
    key: Vec<u8>,
}

impl SigningSecret {
    /// Reads `whsec_<base64>` (the prefix may be left out); the key must be 24 to 64 bytes.
    pub fn parse(text: &str) -> Result<Self, String> {
        let encoded = text.strip_prefix(PREFIX).unwrap_or(text);
        let key = STANDARD.decode(encoded).map_err(|_| {
            "a webhook secret must be `whsec_` followed by base64 (standard alphabet, padded)"
                .to_owned()
        })?;
        if !(MIN_KEY..=MAX_KEY).contains(&key.len()) {
            return Err(format!(
                "a webhook secret's key must be {MIN_KEY} to {MAX_KEY} bytes; this one is {}",
                key.len()
            ));
        }
        Ok(Self { key })
    }

    /// The secret as written: `whsec_<base64>`.
    pub fn to_text(&self) -> String {
        format!("{PREFIX}{}", STANDARD.encode(&self.key))
    }

    /// The three headers for `body` sent as message `id`, signed now.
    pub fn headers(&self, id: &str, body: &[u8]) -> Vec<(&'static str, String)> {
        #[expect(
            clippy::disallowed_methods,
            reason = "the signature's time is checked by the receiver against its own wall clock, so it must be real time"
        )]
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_secs());
        vec![
            (WEBHOOK_ID, id.to_owned()),
            (WEBHOOK_TIMESTAMP, now.to_string()),
            (WEBHOOK_SIGNATURE, self.signature(id, now, body)),
        ]
    }

    /// `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`.
    pub fn signature(&self, id: &str, timestamp: u64, body: &[u8]) -> String {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }
}

impl fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningSecret(<hidden>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_standard_webhooks_reference_vector() {
        // The test vector of the Standard Webhooks reference libraries
        // (standard-webhooks/libraries, `python/tests`): this id, time, body and secret sign to
        // exactly this.
        let secret = SigningSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let signature = secret.signature(
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn refuses_secrets_that_are_not_base64_or_too_short() {
        assert!(SigningSecret::parse("whsec_not base64!").is_err());
        assert!(SigningSecret::parse("whsec_c2hvcnQ=").is_err());
        let secret = SigningSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(secret.to_text(), "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        assert!(!format!("{secret:?}").contains("MfKQ"));
    }
}
