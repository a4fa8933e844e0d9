//! Who is calling: bearer tokens, principals, and the per-principal scoping of sessions.

use std::{collections::HashMap, fmt, sync::Arc};

use http::{HeaderMap, header};
use longrun::task::{Owner, Session};

use crate::{OAuth, OAuthError};

/// A caller, as the API knows it: the owner of the tasks it starts.
///
/// ```
/// use longrun_surface::Principal;
///
/// let alice = Principal::from("alice");
/// assert_eq!(alice.to_string(), "alice");
/// assert_eq!(alice.as_str(), "alice");
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Principal(Arc<str>);

impl Principal {
    /// The principal every caller is under [`Auth::Anonymous`].
    pub const ANONYMOUS: &str = "anonymous";

    /// The principal's name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The runtime owner of this principal's tasks.
    pub fn owner(&self) -> Owner {
        Owner::new(self.as_str())
    }

    /// The runtime session behind the session `name` this principal uses: see [`scope`].
    pub fn session(&self, name: &str) -> Session {
        Session::new(scope(self.as_str(), name))
    }
}

impl From<&str> for Principal {
    fn from(name: &str) -> Self {
        Self(name.into())
    }
}

impl From<String> for Principal {
    fn from(name: String) -> Self {
        Self(name.into())
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

/// How callers prove who they are.
///
/// ```
/// use std::collections::HashMap;
/// use longrun_surface::{Auth, Principal};
///
/// let auth = Auth::Tokens(HashMap::from([
///     ("s3cret-a".to_owned(), Principal::from("alice")),
///     ("s3cret-b".to_owned(), Principal::from("bob")),
/// ]));
/// // Tokens never show in logs.
/// assert!(!format!("{auth:?}").contains("s3cret"));
/// ```
#[derive(Clone)]
pub enum Auth {
    /// No token needed: every caller is the principal `anonymous`. Only for a server that
    /// listens on a loopback address, where every caller is a local user anyway.
    Anonymous,
    /// `Authorization: Bearer <token>` is required; the token names the principal. A missing or
    /// unknown token is 401.
    Tokens(HashMap<String, Principal>),
    /// `Authorization: Bearer <token>` is required: a static token (`tokens`), or else an
    /// OAuth 2.1 bearer JWT checked by `oauth` ([`crate::Surface::admit`] does the latter).
    OAuth {
        /// Static tokens, for local use beside the authorization server's.
        tokens: HashMap<String, Principal>,
        /// The JWT check.
        oauth: OAuth,
        /// Where clients reach this server: the `resource_metadata` URL of a 401 is under it.
        public_url: String,
    },
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Anonymous => f.write_str("Anonymous"),
            // The tokens are secrets: show only whom they belong to.
            Self::Tokens(tokens) => f
                .debug_struct("Tokens")
                .field("principals", &principals(tokens))
                .finish(),
            Self::OAuth { tokens, oauth, .. } => f
                .debug_struct("OAuth")
                .field("principals", &principals(tokens))
                .field("oauth", oauth)
                .finish(),
        }
    }
}

fn principals(tokens: &HashMap<String, Principal>) -> Vec<&str> {
    let mut principals: Vec<&str> = tokens.values().map(Principal::as_str).collect();
    principals.sort_unstable();
    principals
}

/// Why a request's headers prove no principal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization: Bearer <token>` header, or an empty token.
    #[error("this server needs a bearer token: send `Authorization: Bearer <token>`")]
    MissingToken,
    /// A token this server does not know.
    #[error("the bearer token is not one this server knows")]
    WrongToken,
    /// A bearer JWT the OAuth check refused (expired, not for this server, …).
    #[error("{0}")]
    Jwt(OAuthError),
}

impl Auth {
    /// Whether callers must present a token (false only for [`Auth::Anonymous`]).
    pub fn requires_token(&self) -> bool {
        matches!(self, Self::Tokens(_))
    }

    /// The principal the request's headers prove, or why they prove none.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<Principal, AuthError> {
        let tokens = match self {
            Self::Anonymous => return Ok(Principal::from(Principal::ANONYMOUS)),
            Self::Tokens(tokens) | Self::OAuth { tokens, .. } => tokens,
        };
        let presented = bearer(headers).ok_or(AuthError::MissingToken)?;
        // Compare against every token in constant time per token, so the time taken says
        // nothing about how close a guess was. Token lists are short.
        let mut found = None;
        for (token, principal) in tokens {
            if !token.is_empty() && constant_time_eq(token.as_bytes(), presented.as_bytes()) {
                found = Some(principal);
            }
        }
        found.cloned().ok_or(AuthError::WrongToken)
    }
}

/// The token of an `Authorization: Bearer <token>` header (the scheme is case-insensitive).
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|token| !token.is_empty())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The runtime session for the session `name` of `principal`: the principal's name (with `%`
/// and `/` percent-encoded, so the first `/` always ends it), `/`, then `name`. Two principals
/// can therefore never share a session, whatever names they pick.
pub fn scope(principal: &str, name: &str) -> String {
    let mut scoped = escape(principal);
    scoped.push('/');
    scoped.push_str(name);
    scoped
}

/// The session name a client used, from the runtime session of a task owned by `owner`; a
/// session some other adapter gave, without the prefix, is shown as it is.
pub fn unscope<'a>(owner: &str, session: &'a str) -> &'a str {
    let prefix = escape(owner);
    session
        .strip_prefix(prefix.as_str())
        .and_then(|rest| rest.strip_prefix('/'))
        .unwrap_or(session)
}

fn escape(principal: &str) -> String {
    principal.replace('%', "%25").replace('/', "%2F")
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn headers(authorization: Option<&str>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Some(value) = authorization {
            headers.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    #[test]
    fn tokens_name_principals() {
        let auth = Auth::Tokens(HashMap::from([
            ("ta".to_owned(), Principal::from("alice")),
            ("tb".to_owned(), Principal::from("bob")),
            (String::new(), Principal::from("nobody")),
        ]));
        let who = |value| auth.authenticate(&headers(value));
        assert_eq!(who(Some("Bearer ta")).unwrap(), Principal::from("alice"));
        assert_eq!(who(Some("bearer  tb ")).unwrap(), Principal::from("bob"));
        assert!(matches!(who(None), Err(AuthError::MissingToken)));
        assert!(matches!(who(Some("Bearer")), Err(AuthError::MissingToken)));
        assert!(matches!(who(Some("Bearer ")), Err(AuthError::MissingToken)));
        assert!(matches!(
            who(Some("Basic ta")),
            Err(AuthError::MissingToken)
        ));
        assert!(matches!(who(Some("Bearer tc")), Err(AuthError::WrongToken)));
        assert!(matches!(who(Some("Bearer t")), Err(AuthError::WrongToken)));
    }

    #[test]
    fn anonymous_is_one_principal() {
        let principal = Auth::Anonymous.authenticate(&headers(None)).unwrap();
        assert_eq!(principal.as_str(), "anonymous");
    }

    #[test]
    fn sessions_are_scoped_per_principal() {
        assert_eq!(scope("alice", "chat"), "alice/chat");
        assert_eq!(unscope("alice", "alice/chat"), "chat");
        assert_eq!(unscope("alice", "alice/a/b"), "a/b");
        // A principal with a slash cannot reach into another's sessions.
        assert_ne!(scope("a/b", "c"), scope("a", "b/c"));
        assert_eq!(unscope("a/b", &scope("a/b", "c")), "c");
        assert_eq!(unscope("a", &scope("a", "b/c")), "b/c");
        // Sessions made elsewhere are shown as they are.
        assert_eq!(unscope("alice", "bob/chat"), "bob/chat");
        assert_eq!(unscope("alice", "alicechat"), "alicechat");
    }
}
