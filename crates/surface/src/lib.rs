//! `longrun-surface`: the one layer every front door of a longrun server shares.
//!
//! The HTTP API, the MCP server, the A2A server and the dashboard each speak their own wire and
//! nothing else; everything they must agree on is decided here, once, on a [`Surface`] that
//! every door of a server holds:
//!
//! - **the gate** ([`Surface::admit`]): the server is not stopping; a server without tokens is
//!   reached only under a name of this machine (the DNS-rebinding guard, [`is_loopback`]);
//!   the credentials prove a [`Principal`], the owner of the tasks it starts: a static token
//!   ([`Auth`]) or an OAuth 2.1 bearer JWT ([`OAuth`], with its RFC 9728 metadata);
//! - **the limits** ([`Limits`]): the body limit, the wait cap, page sizes, and the open
//!   streams a principal may hold on all doors together ([`Surface::stream_permit`]);
//! - **the caller**: [`Surface::owned`] (another principal's task is "not found", word for
//!   word as a missing one), [`Surface::start`] (schema check, owner, per-principal session
//!   ([`scope`]), `door` label, capped wait);
//! - **one refusal** ([`Refusal`]), with one conversion from the runtime's and the store's
//!   errors that keeps internal detail in the log under a correlation id. Each door turns it
//!   into its protocol's error shape with one exhaustive `match`;
//! - **one SSE recipe** ([`Surface::sse`]) and one way to follow a task ([`Surface::follow`]);
//! - **`Retry-After` on every 503** ([`with_retry_after`], on each door's router).

mod auth;
mod caller;
mod gate;
mod host;
mod input;
mod limits;
pub mod oauth;
mod refusal;
mod retry_after;
mod sse;
mod streams;

pub use auth::{Auth, AuthError, Principal, scope, unscope};
pub use caller::{Start, StartRequest};
pub use gate::Surface;
pub use host::is_loopback;
pub use input::{InputError, InputSchemas};
pub use limits::Limits;
pub use oauth::{OAuth, OAuthConfig, OAuthConfigError, OAuthError};
pub use refusal::{Correlation, Refusal, quote};
pub use retry_after::{RETRY_AFTER_SECONDS, with_retry_after};
pub use streams::StreamPermit;
