//! OAuth 2.1 resource server: a bearer JWT proves a principal when its signature verifies
//! with one of the issuer's published keys (JWKS) and it was issued by the configured issuer,
//! for this server's resource (RFC 8707 audience), and has not expired.
//!
//! - [`OAuthConfig`]: the issuer, the audience, where the keys are, which claim names the
//!   principal; checked by [`OAuthConfig::check`] before the server starts.
//! - [`OAuth::verify`]: a token → a [`Principal`], or an [`OAuthError`] that says whether it
//!   is expired, invalid, or could not be judged because the issuer is unreachable (a 503,
//!   not a 401).
//! - [`OAuth::resource_metadata`] and [`OAuth::www_authenticate`]: the RFC 9728 document
//!   served at [`RESOURCE_METADATA_PATH`], and the challenge of a 401 that points to it.
//!
//! The keys are fetched when first needed and cached (see `keys.rs` for when they are
//! fetched again). Nothing a token says is fetched: its `jku`, `x5u` and `jwk` headers are
//! ignored, and only the configured issuer's keys are used.

mod claims;
mod config;
mod error;
mod fetch;
mod keys;
mod metadata;

use std::{fmt, sync::Arc, time::Duration};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, Validation, crypto::CryptoProvider};
use longrun_core::Clock;
use serde::Deserialize;
use serde_json::Value;

pub use config::{DEFAULT_ALGORITHMS, OAuthConfig, OAuthConfigError};
pub use error::{Invalid, OAuthError};
pub use metadata::{Challenge, RESOURCE_METADATA_PATH, ResourceMetadata, resource_metadata_url};

use crate::Principal;
use claims::Claims;
use fetch::Fetcher;
use keys::{Keys, Timing};

/// The longest token looked at: real access tokens are a few kilobytes, and anything longer
/// is refused before any work is done on it.
const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// Checks bearer JWTs of one issuer for this server. A cheap handle: clones share the keys.
///
/// ```no_run
/// use longrun_surface::{OAuth, OAuthConfig};
///
/// # async fn example(token: &str) -> Result<(), Box<dyn std::error::Error>> {
/// let oauth = OAuth::new(OAuthConfig::new(
///     "https://login.example.com",
///     "https://tasks.example.com",
/// ))?;
/// let principal = oauth.verify(token).await?;
/// println!("{principal} is calling");
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct OAuth(Arc<Inner>);

struct Inner {
    issuer: String,
    audience: String,
    principal_claim: String,
    algorithms: Vec<Algorithm>,
    leeway: Duration,
    scopes: Vec<String>,
    keys: Keys,
    clock: Arc<dyn Clock>,
}

impl OAuth {
    /// A verifier for `config`, or why the configuration is refused. Fetches nothing yet.
    pub fn new(config: OAuthConfig) -> Result<Self, OAuthConfigError> {
        let checked = config.checked()?;
        // `jsonwebtoken` picks its crypto backend from its features; should another crate in
        // the build ever enable a second one, it would pick none, so this one is installed.
        if CryptoProvider::try_get_default().is_none() {
            // An error means another thread installed one first, which serves as well.
            let _ = jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER.install_default();
        }
        let fetcher = Fetcher::new(config.issuer.clone(), checked.issuer, config.fetch_timeout)
            .map_err(|error| OAuthConfigError::HttpClient {
                reason: error.to_string(),
            })?;
        let clock: Arc<dyn Clock> = config
            .clock
            .unwrap_or_else(|| Arc::new(longrun::time::TokioClock::new()));
        let keys = Keys::new(
            fetcher,
            checked.jwks_url,
            Timing {
                fetch_timeout: config.fetch_timeout,
                refetch_interval: config.refetch_interval,
                max_age: config.keys_max_age,
            },
            clock.clone(),
        );
        Ok(Self(Arc::new(Inner {
            issuer: config.issuer,
            audience: config.audience,
            principal_claim: config.principal_claim,
            algorithms: checked.algorithms,
            leeway: config.leeway,
            scopes: config.scopes,
            keys,
            clock,
        })))
    }

    /// The principal `token` (the text after `Bearer `) proves, or why it proves none.
    ///
    /// Checked, in order: the token's form and algorithm (`none` and `HS*` never pass), its
    /// key (fetched again if the issuer's keys lack it, at most once per refetch interval),
    /// the signature, `iss`, `aud` (a string or an array naming this server's resource),
    /// `exp` and `nbf` with the leeway, and the principal claim.
    pub async fn verify(&self, token: &str) -> Result<Principal, OAuthError> {
        let inner = &*self.0;
        if token.len() > MAX_TOKEN_BYTES {
            return Err(Invalid::Malformed.into());
        }
        let header = Header::read(token)?;
        let alg: Algorithm = header.alg.parse().map_err(|_| Invalid::Algorithm)?;
        if !inner.algorithms.contains(&alg) {
            return Err(Invalid::Algorithm.into());
        }
        let key = inner.keys.key(header.kid.as_deref(), alg).await?;

        let mut validation = Validation::new(alg);
        validation.set_issuer(&[&inner.issuer]);
        validation.set_audience(&[&inner.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        // Times are checked against the injected clock below, not the system's.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        let claims = jsonwebtoken::decode::<Claims>(token, &key.decoding, &validation)
            .map_err(|error| error::from_jwt(&error))?
            .claims;
        claims::check_times(&claims, inner.clock.now(), inner.leeway)?;
        claims::principal(&claims, &inner.principal_claim)
    }

    /// The issuer whose tokens are accepted, as configured.
    pub fn issuer(&self) -> &str {
        &self.0.issuer
    }

    /// This server's resource identifier, as configured: what a token's `aud` must name.
    pub fn audience(&self) -> &str {
        &self.0.audience
    }

    /// The RFC 9728 document to serve at [`RESOURCE_METADATA_PATH`].
    ///
    /// ```
    /// use longrun_surface::{OAuth, OAuthConfig};
    ///
    /// let mut config = OAuthConfig::new("https://login.example.com", "https://tasks.example.com");
    /// config.scopes = vec!["tasks".to_owned()];
    /// let oauth = OAuth::new(config).unwrap();
    /// assert_eq!(
    ///     oauth.resource_metadata().to_json(),
    ///     serde_json::json!({
    ///         "resource": "https://tasks.example.com",
    ///         "authorization_servers": ["https://login.example.com"],
    ///         "bearer_methods_supported": ["header"],
    ///         "scopes_supported": ["tasks"],
    ///     })
    /// );
    /// ```
    pub fn resource_metadata(&self) -> ResourceMetadata {
        ResourceMetadata {
            resource: self.0.audience.clone(),
            authorization_servers: vec![self.0.issuer.clone()],
            bearer_methods_supported: vec!["header".to_owned()],
            scopes_supported: self.0.scopes.clone(),
        }
    }

    /// The `WWW-Authenticate` value of a 401 from this server, reached at `public_url`.
    ///
    /// ```
    /// use longrun_surface::{OAuth, OAuthConfig, oauth::Challenge};
    ///
    /// let oauth = OAuth::new(OAuthConfig::new(
    ///     "https://login.example.com",
    ///     "https://tasks.example.com",
    /// ))
    /// .unwrap();
    /// assert_eq!(
    ///     oauth.www_authenticate("https://tasks.example.com", Challenge::InvalidToken),
    ///     "Bearer realm=\"longrun\", \
    ///      resource_metadata=\"https://tasks.example.com/.well-known/oauth-protected-resource\", \
    ///      error=\"invalid_token\""
    /// );
    /// ```
    pub fn www_authenticate(&self, public_url: &str, challenge: Challenge) -> String {
        metadata::www_authenticate(public_url, &self.0.scopes, challenge)
    }
}

impl fmt::Debug for OAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuth")
            .field("issuer", &self.0.issuer)
            .field("audience", &self.0.audience)
            .field("principal_claim", &self.0.principal_claim)
            .finish_non_exhaustive()
    }
}

/// The JOSE header of a compact JWS, read before any key is chosen.
#[derive(Deserialize)]
struct Header {
    alg: String,
    kid: Option<String>,
    /// RFC 7515 §4.1.11: extensions the recipient must understand. This server understands
    /// none, so a token that lists any is refused.
    crit: Option<Value>,
}

impl Header {
    fn read(token: &str) -> Result<Self, OAuthError> {
        let mut parts = token.split('.');
        let (Some(header), Some(_), Some(_), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(Invalid::Malformed.into());
        };
        let json = URL_SAFE_NO_PAD
            .decode(header)
            .map_err(|_| Invalid::Malformed)?;
        let header: Self = serde_json::from_slice(&json).map_err(|_| Invalid::Malformed)?;
        if header.crit.is_some() {
            return Err(Invalid::Malformed.into());
        }
        Ok(header)
    }
}
