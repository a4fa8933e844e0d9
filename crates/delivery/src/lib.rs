//! `longrun-delivery`: webhook delivery, shared by the doors that POST to their clients.
//!
//! A door (A2A's push notifications, `/v1`'s webhooks) decides *what* to send and when; this
//! crate holds what does not depend on any door's wire:
//!
//! - [`Store`]: the durable record of each delivery and how far it got (the sequence number of
//!   the last event delivered), in one SQLite file or in memory, so a restarted server goes on
//!   from the first event not yet delivered;
//! - [`Sender`]: POSTs a body until the receiver takes it (2xx), retrying with exponential
//!   backoff and giving up after a while, through an HTTP client that follows no redirect, uses
//!   no proxy and resolves names through the SSRF guard;
//! - [`Policy`]: the SSRF guard, where webhooks may point (public addresses only, loopback when
//!   the server allows it);
//! - [`SigningSecret`]: Standard Webhooks signatures (`webhook-id`, `webhook-timestamp`,
//!   `webhook-signature`).
//!
//! It depends on no door and no task store: a door hands it URLs, bodies and headers.

mod retry;
mod sign;
mod ssrf;
mod store;

pub use retry::{Headers, Label, Retry, Sender};
pub use sign::{SigningSecret, WEBHOOK_ID, WEBHOOK_SIGNATURE, WEBHOOK_TIMESTAMP};
pub use ssrf::Policy;
pub use store::{Record, Store, StoreError};
