//! What tells a client how to get a token: the RFC 9728 protected-resource metadata document,
//! and the `WWW-Authenticate` challenge of a 401 that points to it (RFC 6750 §3, RFC 9728
//! §5.1), which MCP's authorization spec requires.

use serde::Serialize;

/// Where the protected-resource metadata is served, relative to the server's root.
pub const RESOURCE_METADATA_PATH: &str = "/.well-known/oauth-protected-resource";

/// The realm every challenge names.
const REALM: &str = "longrun";

/// The RFC 9728 §2 metadata document, as far as this server fills it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResourceMetadata {
    /// This server's resource identifier: the configured audience.
    pub resource: String,
    /// The issuers whose tokens are accepted.
    pub authorization_servers: Vec<String>,
    /// How a token is sent: only in the `Authorization` header.
    pub bearer_methods_supported: Vec<String>,
    /// The configured scopes, when there are any.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub scopes_supported: Vec<String>,
}

impl ResourceMetadata {
    /// The document as JSON, to serve with `Content-Type: application/json`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("the metadata is plain strings")
    }
}

/// The absolute URL of the metadata of a server reached at `public_url`.
///
/// ```
/// use longrun_surface::oauth::resource_metadata_url;
///
/// assert_eq!(
///     resource_metadata_url("https://tasks.example.com/"),
///     "https://tasks.example.com/.well-known/oauth-protected-resource"
/// );
/// ```
pub fn resource_metadata_url(public_url: &str) -> String {
    format!(
        "{}{RESOURCE_METADATA_PATH}",
        public_url.trim_end_matches('/')
    )
}

/// Why a request gets a 401.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Challenge {
    /// No token was presented: the challenge names no error (RFC 6750 §3.1).
    MissingToken,
    /// A token was presented and refused (unknown, expired, not for this server):
    /// `error="invalid_token"`.
    InvalidToken,
}

/// The `WWW-Authenticate` value of a 401 from a server reached at `public_url`:
/// `Bearer realm="longrun", resource_metadata="…"`, then `scope="…"` when scopes are
/// configured, then `error="invalid_token"` when a token was refused.
pub(crate) fn www_authenticate(
    public_url: &str,
    scopes: &[String],
    challenge: Challenge,
) -> String {
    let mut value = format!(
        "Bearer realm=\"{REALM}\", resource_metadata=\"{}\"",
        quoted(&resource_metadata_url(public_url))
    );
    if !scopes.is_empty() {
        value.push_str(&format!(", scope=\"{}\"", quoted(&scopes.join(" "))));
    }
    if challenge == Challenge::InvalidToken {
        value.push_str(", error=\"invalid_token\"");
    }
    value
}

/// The inside of an RFC 9110 quoted-string: `"` and `\` escaped.
fn quoted(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_point_to_the_metadata() {
        let url = "https://tasks.example.com";
        let metadata =
            "resource_metadata=\"https://tasks.example.com/.well-known/oauth-protected-resource\"";
        assert_eq!(
            www_authenticate(url, &[], Challenge::MissingToken),
            format!("Bearer realm=\"longrun\", {metadata}")
        );
        assert_eq!(
            www_authenticate(&format!("{url}/"), &[], Challenge::InvalidToken),
            format!("Bearer realm=\"longrun\", {metadata}, error=\"invalid_token\"")
        );
        let scopes = ["tasks:read".to_owned(), "tasks:write".to_owned()];
        assert_eq!(
            www_authenticate(url, &scopes, Challenge::InvalidToken),
            format!(
                "Bearer realm=\"longrun\", {metadata}, scope=\"tasks:read tasks:write\", \
                 error=\"invalid_token\""
            )
        );
        assert_eq!(
            www_authenticate("https://x.example/a\"b", &[], Challenge::MissingToken),
            "Bearer realm=\"longrun\", resource_metadata=\"https://x.example/a\\\"b/.well-known/\
             oauth-protected-resource\""
        );
    }

    #[test]
    fn scopes_are_listed_only_when_configured() {
        let mut metadata = ResourceMetadata {
            resource: "https://tasks.example.com".to_owned(),
            authorization_servers: vec!["https://login.example.com".to_owned()],
            bearer_methods_supported: vec!["header".to_owned()],
            scopes_supported: Vec::new(),
        };
        assert_eq!(
            metadata.to_json(),
            serde_json::json!({
                "resource": "https://tasks.example.com",
                "authorization_servers": ["https://login.example.com"],
                "bearer_methods_supported": ["header"],
            })
        );
        metadata.scopes_supported = vec!["tasks".to_owned()];
        assert_eq!(
            metadata.to_json()["scopes_supported"],
            serde_json::json!(["tasks"])
        );
    }
}
