//! `longrun-surface`: what every front door of a longrun server shares.
//!
//! The HTTP API, the MCP server and the A2A server each speak their own wire, but they agree
//! on who is calling and on what a task may be started with:
//!
//! - [`Auth`] turns an `Authorization: Bearer` header into a [`Principal`], the owner of the
//!   tasks it starts. A principal sees and touches only its own tasks, whatever door it used.
//! - [`Principal::session`] scopes a session name (an HTTP session, an A2A `contextId`, an MCP
//!   session) to its principal, so two principals never share one ([`scope`], [`unscope`]).
//! - [`InputSchemas`] checks a task's input against its kind's JSON schema before the task is
//!   created, and says which parts are wrong.
//!
//! - [`OAuth`] checks bearer JWTs of an OAuth 2.1 authorization server, for deployments
//!   beyond one machine, and says how clients get one (RFC 9728 metadata): see [`oauth`].
//!
//! Each door maps [`AuthError`], [`OAuthError`] and [`InputError`] to its own protocol's error
//! shape.

mod auth;
mod input;
pub mod oauth;

pub use auth::{Auth, AuthError, Principal, scope, unscope};
pub use input::{InputError, InputSchemas};
pub use oauth::{OAuth, OAuthConfig, OAuthConfigError, OAuthError};
