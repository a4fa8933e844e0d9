//! [`Surface`], the one object every door of a server shares, and its gate: the checks every
//! request of every door passes first (the server is not stopping, a server without tokens is
//! reached only from this machine, the caller proves a principal), and what a principal may take
//! once admitted (the limits, its open streams).

use std::sync::Arc;

use http::HeaderMap;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

use longrun::Runtime;

use crate::{
    Auth, AuthError, InputSchemas, Limits, OAuthError, Principal, host,
    oauth::Challenge,
    refusal::Refusal,
    streams::{StreamPermit, Streams},
};

/// What every door of a server shares: the runtime, who may call and the limits, the open
/// streams, the compiled input schemas, and the server's stopping. Cloning is cheap; every door
/// of a server holds a clone of one, so a guard, a limit or a principal's stream allowance is
/// the same on all of them.
///
/// ```
/// use http::{HeaderMap, HeaderValue, header};
/// use longrun::Runtime;
/// use longrun_surface::{Auth, Limits, Refusal, Surface};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let gate = Surface::new(Runtime::new(Default::default()), Auth::Anonymous, Limits::default());
/// let mut headers = HeaderMap::new();
/// headers.insert(header::HOST, HeaderValue::from_static("127.0.0.1:7700"));
/// assert_eq!(gate.admit(&headers).await.unwrap().as_str(), "anonymous");
///
/// // A page that reached this server under another name (DNS rebinding) is refused.
/// headers.insert(header::HOST, HeaderValue::from_static("evil.example"));
/// assert_eq!(gate.admit(&headers).await, Err(Refusal::ForeignHost));
///
/// gate.shutdown();
/// assert_eq!(gate.admit(&HeaderMap::new()).await, Err(Refusal::ShuttingDown));
/// # }
/// ```
#[derive(Clone)]
pub struct Surface {
    pub(crate) shared: Arc<Shared>,
}

pub(crate) struct Shared {
    pub(crate) runtime: Runtime,
    pub(crate) schemas: InputSchemas,
    auth: Auth,
    limits: Limits,
    streams: Arc<Streams>,
    shutdown: CancellationToken,
}

impl std::fmt::Debug for Surface {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Surface")
            .field("auth", &self.shared.auth)
            .field("limits", &self.shared.limits)
            .finish_non_exhaustive()
    }
}

impl Surface {
    /// The doors' surface over `runtime`, admitting callers by `auth` and holding them to
    /// `limits`.
    pub fn new(runtime: Runtime, auth: Auth, limits: Limits) -> Self {
        Self {
            shared: Arc::new(Shared {
                runtime,
                schemas: InputSchemas::default(),
                auth,
                limits,
                streams: Arc::default(),
                shutdown: CancellationToken::new(),
            }),
        }
    }

    /// The principal a request's headers prove, or why the request is refused: in this order,
    /// the server is stopping; on a server without tokens, `Host` or `Origin` names another
    /// machine; the credentials prove nobody.
    pub async fn admit(&self, headers: &HeaderMap) -> Result<Principal, Refusal> {
        if self.is_shut_down() {
            return Err(Refusal::ShuttingDown);
        }
        self.check_host(headers)?;
        let refuse = |error: AuthError| Refusal::Unauthenticated {
            error,
            challenge: self.challenge(error),
        };
        match (self.shared.auth.authenticate(headers), &self.shared.auth) {
            (Ok(principal), _) => Ok(principal),
            // A token that is no static one may be a JWT of the authorization server.
            (Err(AuthError::WrongToken), Auth::OAuth { oauth, .. }) => {
                let token = crate::auth::bearer(headers).unwrap_or_default();
                match oauth.verify(token).await {
                    Ok(principal) => Ok(principal),
                    Err(OAuthError::IssuerUnreachable) => Err(Refusal::AuthUnavailable),
                    Err(error) => Err(refuse(AuthError::Jwt(error))),
                }
            }
            (Err(error), _) => Err(refuse(error)),
        }
    }

    /// The `WWW-Authenticate` value of a 401 for `error`: with OAuth, it names the RFC 9728
    /// metadata (`resource_metadata`), as MCP's authorization spec requires of every door.
    fn challenge(&self, error: AuthError) -> String {
        let refused = !matches!(error, AuthError::MissingToken);
        match &self.shared.auth {
            Auth::OAuth {
                oauth, public_url, ..
            } => oauth.www_authenticate(
                public_url,
                if refused {
                    Challenge::InvalidToken
                } else {
                    Challenge::MissingToken
                },
            ),
            Auth::Anonymous | Auth::Tokens(_) if refused => {
                r#"Bearer realm="longrun", error="invalid_token""#.to_owned()
            }
            Auth::Anonymous | Auth::Tokens(_) => r#"Bearer realm="longrun""#.to_owned(),
        }
    }

    /// The RFC 9728 protected-resource metadata, served unauthenticated at
    /// [`crate::oauth::RESOURCE_METADATA_PATH`] when OAuth is configured.
    pub fn resource_metadata(&self) -> Option<serde_json::Value> {
        match &self.shared.auth {
            Auth::OAuth { oauth, .. } => Some(oauth.resource_metadata().to_json()),
            Auth::Anonymous | Auth::Tokens(_) => None,
        }
    }

    /// The DNS-rebinding guard alone, for what serves no principal's data (the dashboard's
    /// page, the agent card): on a server without tokens, refuses a request whose `Host` or
    /// `Origin` names another machine.
    pub fn check_host(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        if !self.shared.auth.requires_token() && host::foreign(headers) {
            return Err(Refusal::ForeignHost);
        }
        Ok(())
    }

    /// One more open stream for `principal`, unless it holds as many as the limits allow; the
    /// stream counts as open while the permit lives (keep it inside the stream's body).
    pub fn stream_permit(&self, principal: &Principal) -> Result<StreamPermit, Refusal> {
        self.shared
            .streams
            .open(principal, self.shared.limits.streams_per_principal)
    }

    /// Streams open now on every door, all principals together.
    pub fn open_streams(&self) -> usize {
        self.shared.streams.total()
    }

    /// The runtime behind every door.
    pub fn runtime(&self) -> &Runtime {
        &self.shared.runtime
    }

    /// The limits callers are held to.
    pub fn limits(&self) -> &Limits {
        &self.shared.limits
    }

    /// How callers prove who they are.
    pub fn auth(&self) -> &Auth {
        &self.shared.auth
    }

    /// Stops the doors: every later request is refused with [`Refusal::ShuttingDown`], and
    /// every open stream ends (each stream ends on [`Surface::stopping`]).
    pub fn shutdown(&self) {
        self.shared.shutdown.cancel();
    }

    /// Whether [`Surface::shutdown`] was called.
    pub fn is_shut_down(&self) -> bool {
        self.shared.shutdown.is_cancelled()
    }

    /// Resolves when the doors stop; a stream selects on it to end with the server.
    pub fn stopping(&self) -> WaitForCancellationFutureOwned {
        self.shared.shutdown.clone().cancelled_owned()
    }

    /// The token [`Surface::shutdown`] cancels, for what must stop with the doors (push
    /// deliveries, sessions).
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shared.shutdown.clone()
    }
}
