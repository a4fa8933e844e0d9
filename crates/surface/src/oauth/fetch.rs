//! Fetching from the issuer: its metadata (to discover the JWKS URL) and its JWKS. Every
//! fetch is size-bounded; the caller bounds their time. What goes wrong is logged by the
//! caller and reaches clients only as "issuer unreachable".

use std::time::Duration;

use reqwest::{Client, StatusCode, Url};
use serde::Deserialize;
use serde_json::Value;

/// The largest metadata document or JWKS read: real ones are a few kilobytes.
const MAX_BYTES: usize = 1 << 20;

/// The well-known suffix of RFC 8414 authorization server metadata.
const OAUTH_METADATA: &str = ".well-known/oauth-authorization-server";
/// The well-known suffix of OpenID Connect discovery.
const OPENID_METADATA: &str = ".well-known/openid-configuration";

/// Why a fetch from the issuer failed: for the log.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FetchError {
    /// No answer: refused, reset, timed out, TLS failure.
    #[error("GET {url}: {error}")]
    Transport {
        /// What was fetched.
        url: Url,
        /// What happened.
        error: reqwest::Error,
    },
    /// An answer other than 200.
    #[error("GET {url}: status {status}")]
    Status {
        /// What was fetched.
        url: Url,
        /// The status.
        status: StatusCode,
    },
    /// A body over [`MAX_BYTES`].
    #[error("GET {url}: the body is larger than {MAX_BYTES} bytes")]
    TooLarge {
        /// What was fetched.
        url: Url,
    },
    /// A body that is not the JSON expected.
    #[error("GET {url}: not the document expected: {error}")]
    Json {
        /// What was fetched.
        url: Url,
        /// What the parser said.
        error: serde_json::Error,
    },
    /// Metadata about another issuer (RFC 8414 §3.3 requires the exact issuer).
    #[error(
        "the metadata at {url} is for the issuer \"{found}\", not \"{expected}\": set oauth \
         `issuer` to exactly the `iss` of its tokens"
    )]
    IssuerMismatch {
        /// What was fetched.
        url: Url,
        /// The configured issuer.
        expected: String,
        /// The metadata's issuer.
        found: String,
    },
    /// A `jwks_uri` that does not parse.
    #[error("the metadata at {url} has a jwks_uri that is not a URL: {jwks_uri}")]
    JwksUri {
        /// What was fetched.
        url: Url,
        /// The value found.
        jwks_uri: String,
    },
    /// Neither discovery document could be had.
    #[error("no issuer metadata: {oauth}; then {openid}")]
    Discovery {
        /// Why RFC 8414 discovery failed.
        oauth: Box<FetchError>,
        /// Why OpenID Connect discovery failed.
        openid: Box<FetchError>,
    },
}

/// The issuer's metadata, as far as this server reads it.
#[derive(Deserialize)]
struct Metadata {
    issuer: String,
    jwks_uri: String,
}

/// A JWKS, each key left as JSON so that one key of a type this server cannot read (an
/// encryption key, a new curve) does not hide the others.
#[derive(Deserialize)]
pub(crate) struct JwkSet {
    pub(crate) keys: Vec<Value>,
}

/// Fetches from one issuer.
pub(crate) struct Fetcher {
    client: Client,
    /// The issuer as configured, compared exactly with the metadata's.
    issuer: String,
    /// The issuer, parsed, for building the discovery URLs.
    issuer_url: Url,
}

impl Fetcher {
    pub(crate) fn new(
        issuer: String,
        issuer_url: Url,
        timeout: Duration,
    ) -> Result<Self, reqwest::Error> {
        // The caller bounds a whole refresh; this bounds each request as well, so that no
        // connection outlives a refresh that gave up.
        let client = Client::builder().timeout(timeout).build()?;
        Ok(Self {
            client,
            issuer,
            issuer_url,
        })
    }

    /// The JWKS URL from the issuer's metadata: RFC 8414 first, then OpenID Connect.
    pub(crate) async fn discover(&self) -> Result<Url, FetchError> {
        let oauth = match self.metadata(oauth_metadata_url(&self.issuer_url)).await {
            Ok(url) => return Ok(url),
            Err(error) => error,
        };
        match self.metadata(openid_metadata_url(&self.issuer_url)).await {
            Ok(url) => Ok(url),
            Err(openid) => Err(FetchError::Discovery {
                oauth: Box::new(oauth),
                openid: Box::new(openid),
            }),
        }
    }

    async fn metadata(&self, url: Url) -> Result<Url, FetchError> {
        let metadata: Metadata = self.json(&url).await?;
        if metadata.issuer != self.issuer {
            return Err(FetchError::IssuerMismatch {
                url,
                expected: self.issuer.clone(),
                found: metadata.issuer,
            });
        }
        Url::parse(&metadata.jwks_uri).map_err(|_| FetchError::JwksUri {
            url,
            jwks_uri: metadata.jwks_uri,
        })
    }

    /// The JWKS at `url`.
    pub(crate) async fn jwks(&self, url: &Url) -> Result<JwkSet, FetchError> {
        self.json(url).await
    }

    async fn json<T: for<'de> Deserialize<'de>>(&self, url: &Url) -> Result<T, FetchError> {
        let transport = |error| FetchError::Transport {
            url: url.clone(),
            error,
        };
        let mut response = self
            .client
            .get(url.clone())
            .header(http::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(transport)?;
        if response.status() != StatusCode::OK {
            return Err(FetchError::Status {
                url: url.clone(),
                status: response.status(),
            });
        }
        let too_large = || FetchError::TooLarge { url: url.clone() };
        if response
            .content_length()
            .is_some_and(|length| length > MAX_BYTES as u64)
        {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(transport)? {
            if body.len() + chunk.len() > MAX_BYTES {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        serde_json::from_slice(&body).map_err(|error| FetchError::Json {
            url: url.clone(),
            error,
        })
    }
}

/// RFC 8414 §3.1: the well-known suffix goes between the host and the issuer's path, so
/// `https://a.example/tenant` has its metadata at
/// `https://a.example/.well-known/oauth-authorization-server/tenant`.
fn oauth_metadata_url(issuer: &Url) -> Url {
    let mut url = issuer.clone();
    let path = issuer.path().trim_end_matches('/');
    url.set_path(&format!("/{OAUTH_METADATA}{path}"));
    url
}

/// OpenID Connect Discovery §4: the suffix is appended to the issuer.
fn openid_metadata_url(issuer: &Url) -> Url {
    let mut url = issuer.clone();
    let path = issuer.path().trim_end_matches('/');
    url.set_path(&format!("{path}/{OPENID_METADATA}"));
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discovery_urls_follow_each_spec() {
        let cases = [
            (
                "https://a.example",
                "https://a.example/.well-known/oauth-authorization-server",
                "https://a.example/.well-known/openid-configuration",
            ),
            (
                "https://a.example/",
                "https://a.example/.well-known/oauth-authorization-server",
                "https://a.example/.well-known/openid-configuration",
            ),
            (
                "https://a.example/tenant/one",
                "https://a.example/.well-known/oauth-authorization-server/tenant/one",
                "https://a.example/tenant/one/.well-known/openid-configuration",
            ),
            (
                "http://127.0.0.1:8080/realms/x/",
                "http://127.0.0.1:8080/.well-known/oauth-authorization-server/realms/x",
                "http://127.0.0.1:8080/realms/x/.well-known/openid-configuration",
            ),
        ];
        for (issuer, oauth, openid) in cases {
            let issuer = Url::parse(issuer).unwrap();
            assert_eq!(oauth_metadata_url(&issuer).as_str(), oauth);
            assert_eq!(openid_metadata_url(&issuer).as_str(), openid);
        }
    }
}
