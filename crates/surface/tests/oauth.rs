//! `OAuth::verify` against an issuer the tests run themselves (`oauth/issuer.rs`): tokens
//! signed with its test-only keys, its JWKS fetched over a real socket, time from a clock the
//! tests move by hand.

#![allow(
    clippy::disallowed_methods,
    clippy::disallowed_macros,
    reason = "test code may spawn, print, sleep and read real time: the test's end stops all of it"
)]

#[path = "oauth/issuer.rs"]
mod issuer;

use std::{sync::Arc, time::Duration};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use http::StatusCode;
use issuer::{Discovery, Issuer, ManualClock, TestKey, pem};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use longrun_surface::{OAuth, OAuthConfig, OAuthConfigError, OAuthError, oauth::Invalid};
use serde_json::{Value, json};
use tokio::task::JoinSet;

/// What the tests' clock shows at the start.
const NOW: u64 = 1_800_000_000;
/// This server's resource identifier.
const AUDIENCE: &str = "https://tasks.example.com";

const REFETCH_INTERVAL: Duration = Duration::from_secs(10);
const KEYS_MAX_AGE: Duration = Duration::from_secs(600);

fn rsa_a() -> TestKey {
    TestKey::rsa("rsa-a", "rsa-a.pem")
}

fn ec_a() -> TestKey {
    TestKey::ec("ec-a", "ec-a.pem")
}

fn ec_b() -> TestKey {
    TestKey::ec("ec-b", "ec-b.pem")
}

/// A verifier for `issuer`'s tokens, on `clock`.
fn oauth(issuer: &Issuer, clock: &ManualClock, change: impl FnOnce(&mut OAuthConfig)) -> OAuth {
    let mut config = OAuthConfig::new(&issuer.url, AUDIENCE);
    config.refetch_interval = REFETCH_INTERVAL;
    config.keys_max_age = KEYS_MAX_AGE;
    config.clock = Some(Arc::new(clock.clone()));
    change(&mut config);
    OAuth::new(config).unwrap()
}

/// Claims `issuer` would put in a token for alice, good for an hour.
fn claims(issuer: &Issuer) -> Value {
    json!({
        "iss": issuer.url,
        "aud": AUDIENCE,
        "sub": "alice",
        "email": "alice@example.com",
        "iat": NOW,
        "exp": NOW + 3600,
    })
}

fn with(mut claims: Value, changes: Value) -> Value {
    for (name, value) in changes.as_object().unwrap() {
        if value.is_null() {
            claims.as_object_mut().unwrap().remove(name);
        } else {
            claims[name] = value.clone();
        }
    }
    claims
}

fn invalid(why: Invalid) -> Result<String, OAuthError> {
    Err(OAuthError::Invalid(why))
}

async fn verify(oauth: &OAuth, token: &str) -> Result<String, OAuthError> {
    oauth
        .verify(token)
        .await
        .map(|principal| principal.as_str().to_owned())
}

#[tokio::test]
async fn a_valid_token_names_its_principal_from_sub() {
    let (rsa, ec) = (rsa_a(), ec_a());
    let issuer = Issuer::start(Discovery::Both, &[&rsa, &ec]).await;
    let clock = ManualClock::at(NOW);
    let oauth = oauth(&issuer, &clock, |_| {});

    assert_eq!(
        verify(&oauth, &rsa.sign(&claims(&issuer))).await,
        Ok("alice".into())
    );
    let bob = with(claims(&issuer), json!({"sub": "bob"}));
    assert_eq!(verify(&oauth, &ec.sign(&bob)).await, Ok("bob".into()));
    // `aud` may be an array that names this server among others.
    let many = with(
        claims(&issuer),
        json!({"aud": ["https://other.example", AUDIENCE]}),
    );
    assert_eq!(verify(&oauth, &ec.sign(&many)).await, Ok("alice".into()));
    // The only key for its algorithm checks a token without a kid.
    let no_kid = rsa.sign_as(None, &claims(&issuer));
    assert_eq!(verify(&oauth, &no_kid).await, Ok("alice".into()));

    assert_eq!(issuer.discovery_fetches(), 1, "discovered once");
    assert_eq!(issuer.jwks_fetches(), 1, "the keys are cached");
}

#[tokio::test]
async fn the_principal_can_come_from_another_claim() {
    let key = ec_a();
    let issuer = Issuer::start(Discovery::Both, &[&key]).await;
    let clock = ManualClock::at(NOW);
    let oauth = oauth(&issuer, &clock, |config| {
        config.principal_claim = "email".into()
    });

    let token = key.sign(&claims(&issuer));
    assert_eq!(verify(&oauth, &token).await, Ok("alice@example.com".into()));
    let without = key.sign(&with(claims(&issuer), json!({"email": null})));
    assert_eq!(verify(&oauth, &without).await, invalid(Invalid::Principal));
    let not_text = key.sign(&with(claims(&issuer), json!({"email": 42})));
    assert_eq!(verify(&oauth, &not_text).await, invalid(Invalid::Principal));
}

#[tokio::test]
async fn an_expired_token_is_refused() {
    let key = ec_a();
    let issuer = Issuer::start(Discovery::Both, &[&key]).await;
    let clock = ManualClock::at(NOW);
    let oauth = oauth(&issuer, &clock, |config| {
        config.leeway = Duration::from_secs(30)
    });

    let expired = key.sign(&with(claims(&issuer), json!({"exp": NOW - 3600})));
    assert_eq!(verify(&oauth, &expired).await, Err(OAuthError::Expired));
    assert_eq!(OAuthError::Expired.status(), StatusCode::UNAUTHORIZED);
    let within_leeway = key.sign(&with(claims(&issuer), json!({"exp": NOW - 10})));
    assert_eq!(verify(&oauth, &within_leeway).await, Ok("alice".into()));
    let no_exp = key.sign(&with(claims(&issuer), json!({"exp": null})));
    assert_eq!(
        verify(&oauth, &no_exp).await,
        invalid(Invalid::MissingClaim("exp"))
    );
    let early = key.sign(&with(claims(&issuer), json!({"nbf": NOW + 600})));
    assert_eq!(verify(&oauth, &early).await, invalid(Invalid::NotYetValid));

    // A token good now expires as the clock moves on.
    let good = key.sign(&claims(&issuer));
    assert_eq!(verify(&oauth, &good).await, Ok("alice".into()));
    clock.advance(Duration::from_secs(3600 + 30));
    assert_eq!(verify(&oauth, &good).await, Err(OAuthError::Expired));
}

#[tokio::test]
async fn a_token_for_another_audience_is_refused() {
    let key = ec_a();
    let issuer = Issuer::start(Discovery::Both, &[&key]).await;
    let clock = ManualClock::at(NOW);
    let oauth = oauth(&issuer, &clock, |_| {});

    for aud in [
        json!("https://elsewhere.example"),
        json!([]),
        json!(["https://elsewhere.example", "https://tasks.example.com/v1"]),
        json!(format!("{AUDIENCE}/")),
    ] {
        let token = key.sign(&with(claims(&issuer), json!({ "aud": aud })));
        assert_eq!(
            verify(&oauth, &token).await,
            invalid(Invalid::Audience),
            "{aud}"
        );
    }
    let no_aud = key.sign(&with(claims(&issuer), json!({"aud": null})));
    assert_eq!(
        verify(&oauth, &no_aud).await,
        invalid(Invalid::MissingClaim("aud"))
    );
}

#[tokio::test]
async fn a_token_from_another_issuer_is_refused() {
    let key = ec_a();
    let issuer = Issuer::start(Discovery::Both, &[&key]).await;
    let clock = ManualClock::at(NOW);
    let oauth = oauth(&issuer, &clock, |_| {});

    let other = key.sign(&with(
        claims(&issuer),
        json!({"iss": "https://login.evil.example"}),
    ));
    assert_eq!(verify(&oauth, &other).await, invalid(Invalid::Issuer));
    let slash = key.sign(&with(
        claims(&issuer),
        json!({"iss": format!("{}/", issuer.url)}),
    ));
    assert_eq!(
        verify(&oauth, &slash).await,
        invalid(Invalid::Issuer),
        "exact match only"
    );
    let no_iss = key.sign(&with(claims(&issuer), json!({"iss": null})));
    assert_eq!(
        verify(&oauth, &no_iss).await,
        invalid(Invalid::MissingClaim("iss"))
    );
}

#[tokio::test]
async fn a_token_signed_with_a_key_the_issuer_does_not_publish_is_refused() {
    let key = ec_a();
    let stranger = TestKey::ec("stranger", "ec-stranger.pem");
    let issuer = Issuer::start(Discovery::Both, &[&key]).await;
    let clock = ManualClock::at(NOW);
    let oauth = oauth(&issuer, &clock, |_| {});

    let unknown = stranger.sign(&claims(&issuer));
    assert_eq!(verify(&oauth, &unknown).await, invalid(Invalid::UnknownKey));
    // Signed by the stranger, but naming the issuer's key.
    let forged = stranger.sign_as(Some(&key.kid), &claims(&issuer));
    assert_eq!(verify(&oauth, &forged).await, invalid(Invalid::Signature));
    // The issuer's signature over other claims.
    let good = key.sign(&claims(&issuer));
    let bob = key.sign(&with(claims(&issuer), json!({"sub": "bob"})));
    let (head, _, signature) = split(&good);
    let (_, bob_claims, _) = split(&bob);
    let tampered = format!("{head}.{bob_claims}.{signature}");
    assert_eq!(verify(&oauth, &tampered).await, invalid(Invalid::Signature));
    assert_eq!(verify(&oauth, &good).await, Ok("alice".into()));

    for garbage in [
        "",
        "abc",
        "a.b",
        "a.b.c.d",
        "!!.e30.e30",
        &"x".repeat(20_000),
    ] {
        assert_eq!(
            verify(&oauth, garbage).await,
            invalid(Invalid::Malformed),
            "{garbage:.20}"
        );
    }
}

fn split(token: &str) -> (&str, &str, &str) {
    let mut parts = token.split('.');
    (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    )
}

#[tokio::test]
async fn rotated_keys_are_fetched_once_and_withdrawn_keys_refused() {
    let (old, new) = (ec_a(), ec_b());
    let issuer = Issuer::start(Discovery::Both, &[&old]).await;
    let clock = ManualClock::at(NOW);
    let oauth = oauth(&issuer, &clock, |_| {});
    let old_token = old.sign(&claims(&issuer));
    let new_token = new.sign(&claims(&issuer));

    assert_eq!(verify(&oauth, &old_token).await, Ok("alice".into()));
    assert_eq!(issuer.jwks_fetches(), 1);

    // The issuer rotates: the new key is published beside the old one.
    issuer.publish(&[&old, &new]);
    clock.advance(REFETCH_INTERVAL);
    assert_eq!(verify(&oauth, &new_token).await, Ok("alice".into()));
    assert_eq!(issuer.jwks_fetches(), 2, "one refetch for the unknown kid");
    assert_eq!(verify(&oauth, &new_token).await, Ok("alice".into()));
    assert_eq!(verify(&oauth, &old_token).await, Ok("alice".into()));
    assert_eq!(issuer.jwks_fetches(), 2, "both keys are now cached");

    // Then it withdraws the old key: once the cached keys are too old, they are fetched
    // again, and the old key's tokens are refused.
    issuer.publish(&[&new]);
    clock.advance(KEYS_MAX_AGE);
    assert_eq!(
        verify(&oauth, &old_token).await,
        invalid(Invalid::UnknownKey)
    );
    assert_eq!(issuer.jwks_fetches(), 3);
    assert_eq!(verify(&oauth, &new_token).await, Ok("alice".into()));
    assert_eq!(
        verify(&oauth, &old_token).await,
        invalid(Invalid::UnknownKey)
    );
    assert_eq!(issuer.jwks_fetches(), 3, "refetches are rate-limited");
}

#[tokio::test]
async fn stale_keys_serve_while_a_refresh_is_under_way() {
    let key = ec_a();
    let issuer = Issuer::start(Discovery::Both, &[&key]).await;
    let clock = ManualClock::at(NOW);
    let oauth = oauth(&issuer, &clock, |_| {});
    let token = key.sign(&claims(&issuer));
    assert_eq!(verify(&oauth, &token).await, Ok("alice".into()));

    clock.advance(KEYS_MAX_AGE);
    let hold = issuer.hold();
    let refreshing = tokio::spawn({
        let (oauth, token) = (oauth.clone(), token.clone());
        async move { verify(&oauth, &token).await }
    });
    hold.arrived.notified().await;
    // The first caller is waiting for the issuer; the next one is not made to.
    let meanwhile = tokio::time::timeout(Duration::from_secs(60), verify(&oauth, &token))
        .await
        .expect("a stale key serves while the refresh is under way");
    assert_eq!(meanwhile, Ok("alice".into()));
    hold.release.notify_one();
    assert_eq!(refreshing.await.unwrap(), Ok("alice".into()));
    assert_eq!(issuer.jwks_fetches(), 2);
}

#[tokio::test]
async fn a_refetch_abandoned_by_its_caller_leaves_keys_unjudged_not_unknown() {
    let (old, new) = (ec_a(), ec_b());
    let issuer = Issuer::start(Discovery::Both, &[&old]).await;
    let clock = ManualClock::at(NOW);
    let oauth = oauth(&issuer, &clock, |_| {});
    assert_eq!(
        verify(&oauth, &old.sign(&claims(&issuer))).await,
        Ok("alice".into())
    );

    issuer.publish(&[&old, &new]);
    clock.advance(REFETCH_INTERVAL);
    let token = new.sign(&claims(&issuer));
    let hold = issuer.hold();
    let abandoned = tokio::spawn({
        let (oauth, token) = (oauth.clone(), token.clone());
        async move { verify(&oauth, &token).await }
    });
    hold.arrived.notified().await;
    abandoned.abort();
    assert!(abandoned.await.unwrap_err().is_cancelled());
    // The new key may well be good: the caller is told to try again, not that it is unknown.
    assert_eq!(
        verify(&oauth, &token).await,
        Err(OAuthError::IssuerUnreachable)
    );
    hold.release.notify_one();
    clock.advance(REFETCH_INTERVAL);
    assert_eq!(verify(&oauth, &token).await, Ok("alice".into()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_refetches_are_one_fetch() {
    let (old, new) = (ec_a(), ec_b());
    let issuer = Issuer::start(Discovery::Both, &[&old]).await;
    let clock = ManualClock::at(NOW);
    // No rate limit: what keeps this to one fetch is the single flight alone.
    let oauth = oauth(&issuer, &clock, |config| {
        config.refetch_interval = Duration::ZERO;
    });
    assert_eq!(
        verify(&oauth, &old.sign(&claims(&issuer))).await,
        Ok("alice".into())
    );

    issuer.publish(&[&old, &new]);
    let token = new.sign(&claims(&issuer));
    let hold = issuer.hold();
    let mut callers = JoinSet::new();
    for _ in 0..32 {
        let (oauth, token) = (oauth.clone(), token.clone());
        callers.spawn(async move { verify(&oauth, &token).await });
    }
    // One caller's fetch is held at the issuer; the pause lets the other 31 line up behind
    // it. (Correct code fetches once however they are scheduled: the pause only gives a
    // broken single flight the chance to show.)
    hold.arrived.notified().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    hold.release.notify_one();
    while let Some(result) = callers.join_next().await {
        assert_eq!(result.unwrap(), Ok("alice".into()));
    }
    assert_eq!(issuer.jwks_fetches(), 2, "32 callers, one refetch");
}

#[tokio::test]
async fn a_flood_of_unknown_kids_fetches_once_per_interval() {
    let key = ec_a();
    let issuer = Issuer::start(Discovery::Both, &[&key]).await;
    let clock = ManualClock::at(NOW);
    let oauth = oauth(&issuer, &clock, |_| {});
    assert_eq!(
        verify(&oauth, &key.sign(&claims(&issuer))).await,
        Ok("alice".into())
    );
    assert_eq!(issuer.jwks_fetches(), 1);

    let flood = |round: usize| {
        (0..100)
            .map(|i| key.sign_as(Some(&format!("bogus-{round}-{i}")), &claims(&issuer)))
            .collect::<Vec<_>>()
    };
    for token in flood(0) {
        assert_eq!(verify(&oauth, &token).await, invalid(Invalid::UnknownKey));
    }
    assert_eq!(issuer.jwks_fetches(), 1, "no refetch within the interval");

    clock.advance(REFETCH_INTERVAL);
    for token in flood(1) {
        assert_eq!(verify(&oauth, &token).await, invalid(Invalid::UnknownKey));
    }
    assert_eq!(issuer.jwks_fetches(), 2, "one refetch per interval");
    // Known keys are served from the cache throughout.
    assert_eq!(
        verify(&oauth, &key.sign(&claims(&issuer))).await,
        Ok("alice".into())
    );
    assert_eq!(issuer.jwks_fetches(), 2);
}

/// `header.claims.` with no signature, as an attacker would send it.
fn unsigned(header: Value, claims: &Value) -> String {
    let encode = |value: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap());
    format!("{}.{}.", encode(&header), encode(claims))
}

#[tokio::test]
async fn alg_none_and_hmac_with_the_public_key_are_refused() {
    let rsa = rsa_a();
    let issuer = Issuer::start(Discovery::Both, &[&rsa]).await;
    let clock = ManualClock::at(NOW);
    let oauth = oauth(&issuer, &clock, |_| {});

    for alg in ["none", "None", "NONE"] {
        let token = unsigned(json!({"alg": alg, "kid": rsa.kid}), &claims(&issuer));
        assert_eq!(
            verify(&oauth, &token).await,
            invalid(Invalid::Algorithm),
            "{alg}"
        );
    }
    // The public key, as PEM and as DER, used as an HMAC secret: a server that let the token
    // choose the algorithm would verify this with the key it publishes.
    let public_pem = pem("rsa-a.pub.pem");
    let public_der: Vec<u8> = {
        let text = String::from_utf8(public_pem.clone()).unwrap();
        let body: String = text
            .lines()
            .filter(|line| !line.starts_with("-----"))
            .collect();
        base64::engine::general_purpose::STANDARD
            .decode(body)
            .unwrap()
    };
    for secret in [&public_pem, &public_der] {
        for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
            let mut header = Header::new(alg);
            header.kid = Some(rsa.kid.clone());
            let token = jsonwebtoken::encode(
                &header,
                &claims(&issuer),
                &EncodingKey::from_secret(secret).unwrap(),
            )
            .unwrap();
            assert_eq!(
                verify(&oauth, &token).await,
                invalid(Invalid::Algorithm),
                "{alg:?}"
            );
        }
    }
    assert_eq!(
        issuer.jwks_fetches(),
        0,
        "refused before any key is looked up"
    );

    // An RSA key does not check an ECDSA signature, whatever the header says.
    let ec_as_rsa = ec_a().sign_as(Some(&rsa.kid), &claims(&issuer));
    assert_eq!(
        verify(&oauth, &ec_as_rsa).await,
        invalid(Invalid::Algorithm)
    );
    // An algorithm left out of the configuration is refused.
    let es_only = self::oauth(&issuer, &clock, |config| {
        config.algorithms = vec!["ES256".into()]
    });
    assert_eq!(
        verify(&es_only, &rsa.sign(&claims(&issuer))).await,
        invalid(Invalid::Algorithm)
    );
    // Critical header extensions are not understood here.
    let crit = unsigned(
        json!({"alg": "RS256", "kid": rsa.kid, "crit": ["b64"]}),
        &claims(&issuer),
    );
    assert_eq!(verify(&oauth, &crit).await, invalid(Invalid::Malformed));

    // And neither can be configured.
    for alg in ["none", "HS256"] {
        let mut config = OAuthConfig::new(&issuer.url, AUDIENCE);
        config.algorithms = vec![alg.to_owned()];
        assert!(
            matches!(OAuth::new(config), Err(OAuthConfigError::Algorithm { .. })),
            "{alg}"
        );
    }
}

#[tokio::test]
async fn an_issuer_that_is_down_is_reported_as_unreachable() {
    let key = ec_a();
    let mut issuer = Issuer::start(Discovery::Both, &[&key]).await;
    let clock = ManualClock::at(NOW);
    let oauth = oauth(&issuer, &clock, |_| {});
    let token = key.sign(&claims(&issuer));

    // Answering errors.
    issuer.fail(true);
    assert_eq!(
        verify(&oauth, &token).await,
        Err(OAuthError::IssuerUnreachable)
    );
    assert_eq!(
        OAuthError::IssuerUnreachable.status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    // Within the interval, callers are answered without asking the issuer again.
    let fetches = issuer.discovery_fetches();
    assert_eq!(
        verify(&oauth, &token).await,
        Err(OAuthError::IssuerUnreachable)
    );
    assert_eq!(issuer.discovery_fetches(), fetches);

    // Back: the keys are fetched at the next interval.
    issuer.fail(false);
    clock.advance(REFETCH_INTERVAL);
    assert_eq!(verify(&oauth, &token).await, Ok("alice".into()));

    // Gone: the keys already held stay good, even once stale; an unknown kid cannot be judged.
    issuer.stop().await;
    clock.advance(KEYS_MAX_AGE);
    assert_eq!(verify(&oauth, &token).await, Ok("alice".into()));
    let unknown = key.sign_as(Some("rotated-in-meanwhile"), &claims(&issuer));
    assert_eq!(
        verify(&oauth, &unknown).await,
        Err(OAuthError::IssuerUnreachable)
    );

    // A fresh server whose issuer is gone can check nothing.
    let fresh = self::oauth(&issuer, &clock, |_| {});
    assert_eq!(
        verify(&fresh, &token).await,
        Err(OAuthError::IssuerUnreachable)
    );
}

#[tokio::test]
async fn an_issuer_that_does_not_answer_in_time_is_unreachable() {
    let key = ec_a();
    let issuer = Issuer::start(Discovery::Both, &[&key]).await;
    let clock = ManualClock::at(NOW);
    let oauth = oauth(&issuer, &clock, |config| {
        config.jwks_url = Some(format!("{}/hang", issuer.url));
        config.fetch_timeout = Duration::from_millis(200);
    });
    let token = key.sign(&claims(&issuer));
    assert_eq!(
        verify(&oauth, &token).await,
        Err(OAuthError::IssuerUnreachable)
    );
}

#[tokio::test]
async fn discovery_falls_back_to_openid_configuration() {
    let key = ec_a();
    let issuer = Issuer::start(Discovery::OpenIdOnly, &[&key]).await;
    let clock = ManualClock::at(NOW);
    let oauth = oauth(&issuer, &clock, |_| {});
    assert_eq!(
        verify(&oauth, &key.sign(&claims(&issuer))).await,
        Ok("alice".into())
    );
    assert_eq!(
        issuer.discovery_fetches(),
        2,
        "RFC 8414 first, then OpenID Connect"
    );
}

#[tokio::test]
async fn a_configured_jwks_url_needs_no_discovery() {
    let key = ec_a();
    let issuer = Issuer::start(Discovery::WrongIssuer, &[&key]).await;
    let clock = ManualClock::at(NOW);
    let oauth = oauth(&issuer, &clock, |config| {
        config.jwks_url = Some(format!("{}/jwks", issuer.url));
    });
    assert_eq!(
        verify(&oauth, &key.sign(&claims(&issuer))).await,
        Ok("alice".into())
    );
    assert_eq!(issuer.discovery_fetches(), 0);
}

#[tokio::test]
async fn metadata_that_names_another_issuer_is_not_trusted() {
    let key = ec_a();
    let issuer = Issuer::start(Discovery::WrongIssuer, &[&key]).await;
    let clock = ManualClock::at(NOW);
    let oauth = oauth(&issuer, &clock, |_| {});
    let token = key.sign(&claims(&issuer));
    assert_eq!(
        verify(&oauth, &token).await,
        Err(OAuthError::IssuerUnreachable)
    );
    assert_eq!(issuer.jwks_fetches(), 0, "its jwks_uri was not followed");
}

#[tokio::test]
async fn neither_errors_nor_debug_output_show_key_material() {
    let key = ec_a();
    let issuer = Issuer::start(Discovery::Both, &[&key]).await;
    let clock = ManualClock::at(NOW);
    let oauth = oauth(&issuer, &clock, |_| {});
    let token = key.sign(&claims(&issuer));
    assert_eq!(verify(&oauth, &token).await, Ok("alice".into()));
    let x = key.public_jwk()["x"].as_str().unwrap().to_owned();
    let (_, _, signature) = split(&token);

    let forged = TestKey::ec("ec-a", "ec-stranger.pem").sign(&claims(&issuer));
    let refused = verify(&oauth, &forged).await.unwrap_err();
    for text in [format!("{oauth:?}"), format!("{refused} {refused:?}")] {
        assert!(!text.contains(&x), "{text}");
        assert!(!text.contains(signature), "{text}");
        assert!(!text.contains("BEGIN"), "{text}");
    }
    assert!(format!("{oauth:?}").contains(&issuer.url));
}
