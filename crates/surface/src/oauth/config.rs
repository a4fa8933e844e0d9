//! What an OAuth resource server is configured with, and the checks that refuse a bad setting
//! before the server starts.

use std::{fmt, net::IpAddr, str::FromStr, sync::Arc, time::Duration};

use jsonwebtoken::{Algorithm, AlgorithmFamily};
use longrun_core::Clock;
use reqwest::Url;

/// The signature algorithms accepted when the configuration names none: every asymmetric one
/// the verifier knows. A key is only ever used with algorithms of its own type (an RSA key
/// for `RS*`/`PS*`, a P-256 key for `ES256`, …), so accepting all of them opens no confusion
/// between keys; HMAC (`HS*`) and `none` are never accepted.
pub const DEFAULT_ALGORITHMS: &[&str] = &[
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
];

/// How `longrun serve` checks OAuth bearer tokens: whose tokens, for which resource, and how
/// the issuer's keys are fetched.
///
/// ```
/// use longrun_surface::OAuthConfig;
///
/// let mut config = OAuthConfig::new("https://login.example.com", "https://tasks.example.com");
/// config.principal_claim = "email".to_owned();
/// assert!(config.check().is_ok());
///
/// config.algorithms = vec!["HS256".to_owned()];
/// assert!(config.check().is_err(), "HMAC is never accepted");
/// ```
#[derive(Clone)]
pub struct OAuthConfig {
    /// The authorization server's issuer identifier: exactly the `iss` of its tokens, and where
    /// its metadata is discovered. `https`, or `http` on a loopback host only.
    pub issuer: String,
    /// This server's resource identifier (RFC 8707), normally its public URL: a token is
    /// accepted only when its `aud` (a string or an array) names it. Also the `resource` of the
    /// protected-resource metadata (RFC 9728).
    pub audience: String,
    /// Where the issuer's JWKS is. `None` (the default): discovered from the issuer's
    /// `/.well-known/oauth-authorization-server` (RFC 8414), then
    /// `/.well-known/openid-configuration`.
    pub jwks_url: Option<String>,
    /// The claim whose string value names the principal. Default `sub`.
    pub principal_claim: String,
    /// The JWS algorithms accepted (`RS256`, `ES256`, …). Default [`DEFAULT_ALGORITHMS`].
    pub algorithms: Vec<String>,
    /// How far `exp` and `nbf` may be off, for clocks that disagree a little. Default 30 s.
    pub leeway: Duration,
    /// The scopes this server's metadata advertises (`scopes_supported`) and its challenges
    /// name. Default none.
    pub scopes: Vec<String>,
    /// The longest one refresh of the keys may take (discovery and JWKS together). Default 5 s.
    pub fetch_timeout: Duration,
    /// The shortest time between two fetches of the keys, so that tokens with made-up key ids
    /// cannot make this server hammer the issuer. Default 10 s.
    pub refetch_interval: Duration,
    /// How long fetched keys are used before they are fetched again, so that a key the issuer
    /// withdrew stops being accepted. If the issuer cannot be reached then, the keys already
    /// held are kept. Default 10 minutes.
    pub keys_max_age: Duration,
    /// The clock token times are compared with. Default: the system clock, advanced by
    /// tokio's clock ([`longrun::time::TokioClock`]).
    pub clock: Option<Arc<dyn Clock>>,
}

impl OAuthConfig {
    /// The defaults, for tokens of `issuer` meant for `audience`.
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into(),
            audience: audience.into(),
            jwks_url: None,
            principal_claim: "sub".to_owned(),
            algorithms: DEFAULT_ALGORITHMS
                .iter()
                .map(|&alg| alg.to_owned())
                .collect(),
            leeway: Duration::from_secs(30),
            scopes: Vec::new(),
            fetch_timeout: Duration::from_secs(5),
            refetch_interval: Duration::from_secs(10),
            keys_max_age: Duration::from_secs(600),
            clock: None,
        }
    }

    /// Refuses what could never work or would not be safe: URLs that do not parse or would
    /// travel in clear text, an empty principal claim, and algorithms that are unknown,
    /// symmetric (`HS*`) or `none`.
    pub fn check(&self) -> Result<(), OAuthConfigError> {
        self.checked().map(|_| ())
    }

    /// [`OAuthConfig::check`], keeping what it parsed.
    pub(crate) fn checked(&self) -> Result<Checked, OAuthConfigError> {
        let issuer = fetchable("issuer", &self.issuer)?;
        let jwks_url = self
            .jwks_url
            .as_deref()
            .map(|url| fetchable("jwks_url", url))
            .transpose()?;
        let audience = Url::parse(&self.audience).map_err(|error| OAuthConfigError::Url {
            field: "audience",
            url: self.audience.clone(),
            reason: error.to_string(),
        })?;
        if audience.fragment().is_some() {
            return Err(OAuthConfigError::Url {
                field: "audience",
                url: self.audience.clone(),
                reason: "a resource identifier has no fragment (RFC 8707)".to_owned(),
            });
        }
        if self.principal_claim.trim().is_empty() {
            return Err(OAuthConfigError::PrincipalClaim);
        }
        if self.algorithms.is_empty() {
            return Err(OAuthConfigError::NoAlgorithms);
        }
        let algorithms = self
            .algorithms
            .iter()
            .map(|name| algorithm(name))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Checked {
            issuer,
            jwks_url,
            algorithms,
        })
    }
}

impl fmt::Debug for OAuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthConfig")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("jwks_url", &self.jwks_url)
            .field("principal_claim", &self.principal_claim)
            .field("algorithms", &self.algorithms)
            .field("leeway", &self.leeway)
            .field("scopes", &self.scopes)
            .field("fetch_timeout", &self.fetch_timeout)
            .field("refetch_interval", &self.refetch_interval)
            .field("keys_max_age", &self.keys_max_age)
            .field("clock", &self.clock.as_ref().map(|_| "custom"))
            .finish()
    }
}

/// What [`OAuthConfig::checked`] parsed.
pub(crate) struct Checked {
    pub(crate) issuer: Url,
    pub(crate) jwks_url: Option<Url>,
    pub(crate) algorithms: Vec<Algorithm>,
}

/// Why an [`OAuthConfig`] is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OAuthConfigError {
    /// A URL does not parse, or is not one keys may be fetched from.
    #[error("oauth `{field}` = \"{url}\" cannot be used: {reason}")]
    Url {
        /// The setting (`issuer`, `audience`, `jwks_url`).
        field: &'static str,
        /// Its value.
        url: String,
        /// Why, and what to write instead.
        reason: String,
    },
    /// An algorithm that is unknown, symmetric or `none`.
    #[error("oauth algorithm `{name}` is not accepted: {reason}")]
    Algorithm {
        /// The name as written.
        name: String,
        /// Why.
        reason: &'static str,
    },
    /// An empty list of algorithms.
    #[error(
        "oauth `algorithms` is empty, so no token could ever be accepted; remove it to accept \
             every asymmetric algorithm, or name the issuer's (e.g. [\"RS256\"])"
    )]
    NoAlgorithms,
    /// The HTTP client that fetches the keys could not be built.
    #[error("cannot build the HTTP client that fetches the OAuth issuer's keys: {reason}")]
    HttpClient {
        /// What failed.
        reason: String,
    },
    /// An empty principal claim.
    #[error(
        "oauth `principal_claim` is empty; name the claim that identifies the caller \
             (default `sub`)"
    )]
    PrincipalClaim,
}

/// An `https` URL, or an `http` one on a loopback host (a local issuer, the tests'): keys
/// fetched in clear text over a network could be replaced by anyone on the path.
fn fetchable(field: &'static str, url: &str) -> Result<Url, OAuthConfigError> {
    let refuse = |reason: String| OAuthConfigError::Url {
        field,
        url: url.to_owned(),
        reason,
    };
    let parsed = Url::parse(url).map_err(|error| refuse(error.to_string()))?;
    match parsed.scheme() {
        "https" => {}
        "http" if is_loopback(&parsed) => {}
        "http" => {
            return Err(refuse(
                "keys fetched over plain http could be replaced on the way; use https \
                 (http is allowed only on a loopback host)"
                    .to_owned(),
            ));
        }
        other => return Err(refuse(format!("`{other}` is not http or https"))),
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(refuse("it must have no query and no fragment".to_owned()));
    }
    Ok(parsed)
}

fn is_loopback(url: &Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.parse::<IpAddr>().map_or_else(
        |_| host.eq_ignore_ascii_case("localhost"),
        |ip| ip.is_loopback(),
    )
}

fn algorithm(name: &str) -> Result<Algorithm, OAuthConfigError> {
    let refuse = |reason| OAuthConfigError::Algorithm {
        name: name.to_owned(),
        reason,
    };
    if name.eq_ignore_ascii_case("none") {
        return Err(refuse("an unsigned token proves nothing"));
    }
    let algorithm = Algorithm::from_str(name).map_err(|_| {
        refuse("not a JWS algorithm this server knows (RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA)")
    })?;
    if algorithm.family() == AlgorithmFamily::Hmac {
        return Err(refuse(
            "HMAC needs a secret shared with the issuer, and a resource server checks tokens \
             with the issuer's public keys",
        ));
    }
    Ok(algorithm)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> OAuthConfig {
        OAuthConfig::new("https://login.example.com", "https://tasks.example.com")
    }

    #[test]
    fn the_defaults_are_accepted() {
        let checked = config().checked().unwrap();
        assert_eq!(checked.algorithms.len(), DEFAULT_ALGORITHMS.len());
        assert!(
            checked
                .algorithms
                .iter()
                .all(|alg| alg.family() != AlgorithmFamily::Hmac)
        );
        assert_eq!(checked.issuer.as_str(), "https://login.example.com/");
        assert!(checked.jwks_url.is_none());
    }

    #[test]
    fn urls_that_would_travel_in_clear_text_or_do_not_parse_are_refused() {
        let cases: &[(&str, Option<&str>, bool)] = &[
            ("https://login.example.com/tenant", None, true),
            ("http://127.0.0.1:9000", None, true),
            ("http://localhost:9000", None, true),
            ("http://[::1]:9000", None, true),
            ("http://login.example.com", None, false),
            ("ftp://login.example.com", None, false),
            ("login.example.com", None, false),
            ("https://login.example.com?x=1", None, false),
            (
                "https://login.example.com",
                Some("https://keys.example.com/jwks.json"),
                true,
            ),
            (
                "https://login.example.com",
                Some("http://keys.example.com/jwks.json"),
                false,
            ),
        ];
        for &(issuer, jwks_url, ok) in cases {
            let mut config = config();
            config.issuer = issuer.to_owned();
            config.jwks_url = jwks_url.map(str::to_owned);
            assert_eq!(config.check().is_ok(), ok, "{issuer} {jwks_url:?}");
        }
        let mut config = config();
        config.audience = "https://tasks.example.com/#frag".to_owned();
        assert!(matches!(
            config.check(),
            Err(OAuthConfigError::Url {
                field: "audience",
                ..
            })
        ));
    }

    #[test]
    fn only_asymmetric_algorithms_are_accepted() {
        for (name, ok) in [
            ("RS256", true),
            ("PS512", true),
            ("ES256", true),
            ("EdDSA", true),
            ("none", false),
            ("None", false),
            ("HS256", false),
            ("HS512", false),
            ("ES512", false),
            ("rs256", false),
        ] {
            let mut config = config();
            config.algorithms = vec![name.to_owned()];
            assert_eq!(config.check().is_ok(), ok, "{name}");
        }
        let mut config = config();
        config.algorithms.clear();
        assert_eq!(config.check(), Err(OAuthConfigError::NoAlgorithms));
        let mut config = super::tests::config();
        config.principal_claim = " ".to_owned();
        assert_eq!(config.check(), Err(OAuthConfigError::PrincipalClaim));
    }
}
