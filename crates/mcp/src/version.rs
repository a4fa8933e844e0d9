//! Protocol versions and the `_meta` keys of the two MCP generations this door speaks.
//!
//! A request is served by one generation, chosen as SEP-2663's compatibility table prescribes:
//! a request that names protocol 2026-07-28 (in its `MCP-Protocol-Version` header or its
//! `_meta`) gets the stateless 2026-07-28 surface and the tasks *extension*; anything else
//! belongs to a session opened by `initialize`, which gets the experimental core tasks of
//! 2025-11-25 when that is the version negotiated. The extension is never granted on a
//! 2025-11-25 session, and the core tasks never on a 2026-07-28 request.

/// The stateless generation (SEP-2575), with the tasks extension (SEP-2663).
pub(crate) const MODERN: &str = "2026-07-28";

/// The session generation whose core protocol has experimental tasks (SEP-1686).
pub(crate) const TASKS_LEGACY: &str = "2025-11-25";

/// The session-based versions `initialize` accepts, newest first. Only 2025-11-25 has tasks.
pub(crate) const LEGACY: [&str; 4] = ["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"];

/// The tasks extension's identifier.
pub(crate) const TASKS_EXTENSION: &str = "io.modelcontextprotocol/tasks";

/// `_meta` key: the request's protocol version (2026-07-28).
pub(crate) const META_PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
/// `_meta` key: the client's capabilities for this request (2026-07-28).
pub(crate) const META_CLIENT_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
/// `_meta` key: the log level the client wants for this request (2026-07-28).
pub(crate) const META_LOG_LEVEL: &str = "io.modelcontextprotocol/logLevel";
/// `_meta` key: who answers, on every 2026-07-28 result.
pub(crate) const META_SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";
/// `_meta` key: the task a message belongs to (2025-11-25).
pub(crate) const META_RELATED_TASK: &str = "io.modelcontextprotocol/related-task";

/// The server's name and version, as `serverInfo` says them.
pub(crate) fn server_info() -> serde_json::Value {
    serde_json::json!({"name": "longrun", "version": env!("CARGO_PKG_VERSION")})
}
