//! The issuer's signing keys: the JWKS last fetched, fetched again when a token names a key
//! it lacks or once it is older than `keys_max_age`.
//!
//! Invariants:
//! - At most one fetch runs at a time (single flight): a caller that needs the keys fetched
//!   takes the `refresh` lock, and if the keys changed while it waited, it uses them instead of
//!   fetching again.
//! - Fetches start at most once per `refetch_interval`, whatever the tokens say, so a flood of
//!   made-up key ids costs the issuer one request per interval.
//! - The key set is replaced whole, never edited: a reader holds an `Arc` of one fetch's set.
//! - Lock order: `refresh` (async, held across the fetch) before `current` (sync, never held
//!   across an await).
//! - Only keys for asymmetric algorithms are kept: an `oct` (HMAC) key in the JWKS is skipped,
//!   so a public key can never be used as an HMAC secret.

use std::{sync::Arc, time::Duration};

use jsonwebtoken::{
    Algorithm, AlgorithmFamily, DecodingKey,
    jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyOperations, PublicKeyUse},
};
use longrun_core::{Clock, Timestamp};
use parking_lot::RwLock;
use reqwest::Url;
use serde_json::Value;

use super::{
    error::{Invalid, OAuthError},
    fetch::{FetchError, Fetcher},
};

/// One verification key from the JWKS.
pub(crate) struct Key {
    kid: Option<String>,
    /// The key's own `alg`, when the JWKS gives one: then only that algorithm is accepted.
    alg: Option<Algorithm>,
    family: AlgorithmFamily,
    curve: Option<EllipticCurve>,
    pub(crate) decoding: DecodingKey,
}

impl Key {
    /// A key from one JWKS entry, or `None` for an entry that is not a usable signature
    /// verification key (an encryption key, a symmetric key, a curve or type not known here).
    fn from_jwk(value: &Value) -> Option<Self> {
        let jwk: Jwk = serde_json::from_value(value.clone()).ok()?;
        if jwk
            .common
            .public_key_use
            .as_ref()
            .is_some_and(|usage| *usage != PublicKeyUse::Signature)
        {
            return None;
        }
        if jwk
            .common
            .key_operations
            .as_ref()
            .is_some_and(|ops| !ops.contains(&KeyOperations::Verify))
        {
            return None;
        }
        let (family, curve) = match &jwk.algorithm {
            AlgorithmParameters::RSA(_) => (AlgorithmFamily::Rsa, None),
            AlgorithmParameters::EllipticCurve(params) => {
                (AlgorithmFamily::Ec, Some(params.curve.clone()))
            }
            AlgorithmParameters::OctetKeyPair(params) => {
                (AlgorithmFamily::Ed, Some(params.curve.clone()))
            }
            // Never an HMAC secret: see the module's invariants.
            _ => return None,
        };
        let alg = match jwk.common.key_algorithm {
            Some(alg) => Some(Algorithm::try_from(alg).ok()?),
            None => None,
        };
        let decoding = DecodingKey::from_jwk(&jwk).ok()?;
        Some(Self {
            kid: jwk.common.key_id,
            alg,
            family,
            curve,
            decoding,
        })
    }

    /// Whether a signature by `alg` may be checked with this key: the same key type, the
    /// key's own `alg` if it has one, and the curve the algorithm is defined on.
    fn accepts(&self, alg: Algorithm) -> bool {
        let curve = match alg {
            Algorithm::ES256 => Some(EllipticCurve::P256),
            Algorithm::ES384 => Some(EllipticCurve::P384),
            Algorithm::EdDSA => Some(EllipticCurve::Ed25519),
            _ => None,
        };
        alg.family() == self.family
            && self.alg.is_none_or(|own| own == alg)
            && (curve.is_none() || curve == self.curve)
    }
}

/// The keys of one fetch.
#[derive(Default)]
struct KeySet {
    keys: Vec<Arc<Key>>,
    /// When they were fetched; `None` before the first fetch.
    fetched_at: Option<Timestamp>,
    /// How many fetches have succeeded: a caller compares it to tell whether another caller
    /// fetched while it waited.
    generation: u64,
}

/// Which key checks a token.
enum Select {
    Found(Arc<Key>),
    /// Keys with the token's `kid` exist, but none is for its algorithm.
    WrongAlgorithm,
    Missing,
}

impl KeySet {
    /// The key for a token with `kid` signed by `alg`. A token without a `kid` is checked only
    /// when exactly one key is for its algorithm.
    fn select(&self, kid: Option<&str>, alg: Algorithm) -> Select {
        match kid {
            Some(kid) => {
                let mut named = self
                    .keys
                    .iter()
                    .filter(|key| key.kid.as_deref() == Some(kid))
                    .peekable();
                if named.peek().is_none() {
                    return Select::Missing;
                }
                named
                    .find(|key| key.accepts(alg))
                    .map_or(Select::WrongAlgorithm, |key| Select::Found(key.clone()))
            }
            None => {
                let mut usable = self.keys.iter().filter(|key| key.accepts(alg));
                match (usable.next(), usable.next()) {
                    (Some(key), None) => Select::Found(key.clone()),
                    _ => Select::Missing,
                }
            }
        }
    }

    fn is_fresh(&self, now: Timestamp, max_age: Duration) -> bool {
        self.fetched_at
            .is_some_and(|at| now.saturating_since(at) < max_age)
    }
}

/// The state of fetching, behind the single-flight lock.
#[derive(Default)]
struct Refresh {
    /// The JWKS URL, once configured or discovered. Forgotten when a fetch from it fails, so
    /// that an issuer that moved its keys is discovered again.
    jwks_url: Option<Url>,
    /// When the last fetch started.
    last_attempt: Option<Timestamp>,
    /// Whether the last fetch failed.
    last_failed: bool,
}

impl Refresh {
    /// Whether a fetch may start at `now`: the first one may, then one per `interval`.
    fn may_fetch(&self, now: Timestamp, interval: Duration) -> bool {
        self.last_attempt
            .is_none_or(|last| now.saturating_since(last) >= interval)
    }
}

/// How the keys are fetched and for how long they are used.
pub(crate) struct Timing {
    pub(crate) fetch_timeout: Duration,
    pub(crate) refetch_interval: Duration,
    pub(crate) max_age: Duration,
}

/// The cached keys of one issuer and the one way they are refreshed.
pub(crate) struct Keys {
    current: RwLock<Arc<KeySet>>,
    refresh: tokio::sync::Mutex<Refresh>,
    /// The configured JWKS URL; `None`: discover it.
    configured_jwks_url: Option<Url>,
    fetcher: Fetcher,
    timing: Timing,
    clock: Arc<dyn Clock>,
}

impl Keys {
    pub(crate) fn new(
        fetcher: Fetcher,
        jwks_url: Option<Url>,
        timing: Timing,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            current: RwLock::default(),
            refresh: tokio::sync::Mutex::new(Refresh {
                jwks_url: jwks_url.clone(),
                ..Refresh::default()
            }),
            configured_jwks_url: jwks_url,
            fetcher,
            timing,
            clock,
        }
    }

    /// The key that checks a token with `kid` signed by `alg`, fetching the keys first when
    /// they lack it or are stale, as the module's invariants allow.
    pub(crate) async fn key(
        &self,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<Arc<Key>, OAuthError> {
        let seen = self.current.read().clone();
        let held = seen.select(kid, alg);
        if seen.is_fresh(self.clock.now(), self.timing.max_age) {
            match held {
                Select::Found(key) => return Ok(key),
                Select::WrongAlgorithm => return Err(Invalid::Algorithm.into()),
                Select::Missing => {}
            }
        }

        let mut refresh = match (self.refresh.try_lock(), held) {
            (Ok(refresh), _) => refresh,
            // Stale keys are refreshed by whoever comes first; the others keep using them
            // meanwhile rather than wait for the issuer.
            (Err(_), Select::Found(key)) => return Ok(key),
            (Err(_), _) => self.refresh.lock().await,
        };
        let latest = self.current.read().clone();
        if latest.generation != seen.generation {
            // Another caller fetched while this one waited: its keys are as new as they get.
            return found(latest.select(kid, alg), false);
        }
        let now = self.clock.now();
        if !refresh.may_fetch(now, self.timing.refetch_interval) {
            // The keys held are all there is until the interval has passed; if they were
            // never fetched, or the last fetch failed, the token cannot be judged.
            let unjudged = refresh.last_failed || latest.fetched_at.is_none();
            return found(latest.select(kid, alg), unjudged);
        }
        refresh.last_attempt = Some(now);
        // Counted as failed until it succeeds: if this caller goes away mid-fetch (its client
        // hung up), the callers after it within the interval are told the keys could not be
        // had, not that their key is unknown.
        refresh.last_failed = true;
        let fetched =
            tokio::time::timeout(self.timing.fetch_timeout, self.fetch(&mut refresh)).await;
        match fetched {
            Ok(Ok(keys)) => {
                refresh.last_failed = false;
                let set = Arc::new(KeySet {
                    keys,
                    fetched_at: Some(now),
                    generation: latest.generation + 1,
                });
                *self.current.write() = set.clone();
                found(set.select(kid, alg), false)
            }
            Ok(Err(error)) => {
                tracing::warn!(%error, "cannot fetch the OAuth issuer's keys");
                self.failed(&mut refresh);
                // Keys already held stay good while the issuer is away.
                found(latest.select(kid, alg), true)
            }
            Err(_) => {
                tracing::warn!(
                    timeout = ?self.timing.fetch_timeout,
                    "cannot fetch the OAuth issuer's keys: no answer in time"
                );
                self.failed(&mut refresh);
                found(latest.select(kid, alg), true)
            }
        }
    }

    fn failed(&self, refresh: &mut Refresh) {
        refresh.last_failed = true;
        if self.configured_jwks_url.is_none() {
            refresh.jwks_url = None;
        }
    }

    async fn fetch(&self, refresh: &mut Refresh) -> Result<Vec<Arc<Key>>, FetchError> {
        let url = match &refresh.jwks_url {
            Some(url) => url.clone(),
            None => {
                let url = self.fetcher.discover().await?;
                refresh.jwks_url = Some(url.clone());
                url
            }
        };
        let set = self.fetcher.jwks(&url).await?;
        let keys: Vec<Arc<Key>> = set
            .keys
            .iter()
            .filter_map(Key::from_jwk)
            .map(Arc::new)
            .collect();
        tracing::info!(
            %url,
            published = set.keys.len(),
            usable = keys.len(),
            "fetched the OAuth issuer's keys"
        );
        Ok(keys)
    }
}

/// The result of a selection: a missing key is an unknown key, unless the keys could not be
/// had (`unjudged`), in which case nothing can be said but that the issuer is unreachable.
fn found(select: Select, unjudged: bool) -> Result<Arc<Key>, OAuthError> {
    match select {
        Select::Found(key) => Ok(key),
        Select::WrongAlgorithm => Err(Invalid::Algorithm.into()),
        Select::Missing if unjudged => Err(OAuthError::IssuerUnreachable),
        Select::Missing => Err(Invalid::UnknownKey.into()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn fetches_start_at_most_once_per_interval() {
        let interval = 10 * SECOND;
        let at = |s: u64| Timestamp::from_millis(s * 1000);
        let mut refresh = Refresh::default();
        assert!(refresh.may_fetch(at(100), interval), "the first fetch");
        refresh.last_attempt = Some(at(100));
        for (now, may) in [
            (100, false),
            (105, false),
            (109, false),
            (110, true),
            (500, true),
            // A clock that went back never opens the gate early.
            (50, false),
        ] {
            assert_eq!(refresh.may_fetch(at(now), interval), may, "at {now}");
        }
    }

    /// A P-256 public key (from the tests' `ec-a.pem`).
    fn ec(extra: Value) -> Value {
        let mut jwk = json!({
            "kty": "EC",
            "crv": "P-256",
            "x": "lxn_HYS3qnRfuglJECMFG8NqCXH4z5hMnfJNXDX1768",
            "y": "eSSLw_16Z9fVc7TG-bqVCARwQThZ0EikC6qZtHWBB08",
        });
        jwk.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        jwk
    }

    #[test]
    fn only_signature_keys_of_asymmetric_types_are_kept() {
        let keep = |jwk: Value| Key::from_jwk(&jwk).is_some();
        assert!(keep(ec(json!({"kid": "a"}))));
        assert!(keep(ec(json!({"use": "sig", "alg": "ES256"}))));
        assert!(keep(ec(json!({"key_ops": ["verify"]}))));
        assert!(!keep(ec(json!({"use": "enc"}))), "an encryption key");
        assert!(!keep(ec(json!({"key_ops": ["encrypt"]}))));
        assert!(
            !keep(ec(json!({"alg": "ECDH-ES"}))),
            "an algorithm not for JWS"
        );
        assert!(
            !keep(json!({"kty": "oct", "k": "c2VjcmV0", "alg": "HS256"})),
            "an HMAC secret"
        );
        assert!(!keep(json!({"kty": "RSA"})), "no modulus");
        assert!(!keep(json!({"kty": "XYZ", "x": "y"})), "an unknown type");
    }

    #[test]
    fn a_key_checks_only_its_own_algorithms() {
        let key = |extra| Key::from_jwk(&ec(extra)).unwrap();
        let any = key(json!({}));
        assert!(any.accepts(Algorithm::ES256));
        assert!(!any.accepts(Algorithm::ES384), "another curve");
        assert!(!any.accepts(Algorithm::RS256), "another type");
        assert!(!any.accepts(Algorithm::HS256), "never HMAC");
        let pinned = key(json!({"alg": "ES384"}));
        assert!(!pinned.accepts(Algorithm::ES256), "the key's own alg rules");
    }

    #[test]
    fn keys_are_selected_by_kid_or_as_the_only_one() {
        let set = KeySet {
            keys: [json!({"kid": "a"}), json!({"kid": "b", "alg": "ES256"})]
                .into_iter()
                .map(|extra| Arc::new(Key::from_jwk(&ec(extra)).unwrap()))
                .collect(),
            fetched_at: None,
            generation: 1,
        };
        let kid_of = |select| match select {
            Select::Found(key) => key.kid.clone().unwrap(),
            Select::WrongAlgorithm => "wrong algorithm".to_owned(),
            Select::Missing => "missing".to_owned(),
        };
        assert_eq!(kid_of(set.select(Some("a"), Algorithm::ES256)), "a");
        assert_eq!(kid_of(set.select(Some("b"), Algorithm::ES256)), "b");
        assert_eq!(kid_of(set.select(Some("c"), Algorithm::ES256)), "missing");
        assert_eq!(
            kid_of(set.select(Some("a"), Algorithm::RS256)),
            "wrong algorithm"
        );
        // Without a kid, two keys for ES256 are ambiguous.
        assert_eq!(kid_of(set.select(None, Algorithm::ES256)), "missing");
        let one = KeySet {
            keys: vec![set.keys[0].clone()],
            ..KeySet::default()
        };
        assert_eq!(kid_of(one.select(None, Algorithm::ES256)), "a");
    }
}
