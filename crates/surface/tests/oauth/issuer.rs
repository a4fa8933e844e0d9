//! A small authorization server for the OAuth tests: its discovery documents and its JWKS on
//! 127.0.0.1:0, with the test-only keys in `keys/`. It counts the fetches, and can rotate its
//! keys, answer with errors, or go away.

#![allow(
    clippy::disallowed_methods,
    clippy::disallowed_macros,
    reason = "test code may spawn, print, sleep and read real time: the test's end stops all of it"
)]

use std::{
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use axum::{
    Json, Router,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::get,
};
use jsonwebtoken::{Algorithm, EncodingKey, Header, jwk::Jwk};
use longrun_core::{Clock, Timestamp};
use parking_lot::Mutex;
use serde_json::{Value, json};
use tokio::{
    net::TcpListener,
    sync::{Notify, oneshot},
    task::JoinHandle,
};

/// Which discovery documents the issuer serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Discovery {
    /// RFC 8414 and OpenID Connect.
    Both,
    /// OpenID Connect only: RFC 8414's document is 404.
    OpenIdOnly,
    /// Both, but naming another issuer.
    WrongIssuer,
}

#[derive(Default)]
struct Served {
    url: String,
    discovery: Option<Discovery>,
    published: Vec<Value>,
    jwks_fetches: usize,
    discovery_fetches: usize,
    failing: bool,
    /// While set, the next JWKS request says it `arrived`, then waits for `release`.
    held: Option<Hold>,
}

/// A JWKS request held until the test releases it.
#[derive(Clone, Default)]
pub(crate) struct Hold {
    /// Notified when a held request has arrived.
    pub(crate) arrived: Arc<Notify>,
    /// Notify to let it be answered.
    pub(crate) release: Arc<Notify>,
}

type Shared = Arc<Mutex<Served>>;

/// A running issuer.
pub(crate) struct Issuer {
    /// Its issuer identifier, `http://127.0.0.1:<port>`: the `iss` of its tokens.
    pub(crate) url: String,
    served: Shared,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Issuer {
    /// Starts serving `discovery` and a JWKS of `keys`.
    pub(crate) async fn start(discovery: Discovery, keys: &[&TestKey]) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let served = Arc::new(Mutex::new(Served {
            url: url.clone(),
            discovery: Some(discovery),
            ..Served::default()
        }));
        let app = Router::new()
            .route(
                "/.well-known/oauth-authorization-server",
                get(oauth_metadata),
            )
            .route("/.well-known/openid-configuration", get(openid_metadata))
            .route("/jwks", get(jwks))
            .route("/hang", get(std::future::pending::<()>))
            .with_state(served.clone());
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        let issuer = Self {
            url,
            served,
            stop: Some(stop),
            task: Some(task),
        };
        issuer.publish(keys);
        issuer
    }

    /// Its JWKS from now on holds exactly `keys`.
    pub(crate) fn publish(&self, keys: &[&TestKey]) {
        self.served.lock().published = keys.iter().map(|key| key.jwk.clone()).collect();
    }

    /// How many times its JWKS was fetched.
    pub(crate) fn jwks_fetches(&self) -> usize {
        self.served.lock().jwks_fetches
    }

    /// How many times a discovery document was fetched.
    pub(crate) fn discovery_fetches(&self) -> usize {
        self.served.lock().discovery_fetches
    }

    /// From now on every request is answered 503 (`true`), or served again (`false`).
    pub(crate) fn fail(&self, failing: bool) {
        self.served.lock().failing = failing;
    }

    /// The next JWKS request is held: see [`Hold`].
    pub(crate) fn hold(&self) -> Hold {
        let hold = Hold::default();
        self.served.lock().held = Some(hold.clone());
        hold
    }

    /// Stops listening: its address refuses connections from now on.
    pub(crate) async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap();
        }
    }
}

fn metadata(served: &mut Served, kind: &str) -> Response {
    served.discovery_fetches += 1;
    if served.failing {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let issuer = match served.discovery {
        Some(Discovery::OpenIdOnly) if kind == "oauth" => {
            return StatusCode::NOT_FOUND.into_response();
        }
        Some(Discovery::WrongIssuer) => "https://someone-else.example".to_owned(),
        _ => served.url.clone(),
    };
    Json(json!({
        "issuer": issuer,
        "jwks_uri": format!("{}/jwks", served.url),
        "response_types_supported": ["code"],
    }))
    .into_response()
}

async fn oauth_metadata(State(served): State<Shared>) -> Response {
    metadata(&mut served.lock(), "oauth")
}

async fn openid_metadata(State(served): State<Shared>) -> Response {
    metadata(&mut served.lock(), "openid")
}

async fn jwks(State(served): State<Shared>) -> Response {
    let held = served.lock().held.take();
    if let Some(hold) = held {
        hold.arrived.notify_one();
        hold.release.notified().await;
    }
    let mut served = served.lock();
    served.jwks_fetches += 1;
    if served.failing {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    Json(json!({ "keys": served.published })).into_response()
}

/// A test-only signing key and its public JWK.
pub(crate) struct TestKey {
    /// Its key id.
    pub kid: String,
    alg: Algorithm,
    encoding: EncodingKey,
    jwk: Value,
}

impl TestKey {
    /// The RSA key in `keys/<file>`, for RS256, published as `kid`.
    pub(crate) fn rsa(kid: &str, file: &str) -> Self {
        Self::new(
            kid,
            Algorithm::RS256,
            EncodingKey::from_rsa_pem(&pem(file)).unwrap(),
        )
    }

    /// The P-256 key in `keys/<file>`, for ES256, published as `kid`.
    pub(crate) fn ec(kid: &str, file: &str) -> Self {
        Self::new(
            kid,
            Algorithm::ES256,
            EncodingKey::from_ec_pem(&pem(file)).unwrap(),
        )
    }

    fn new(kid: &str, alg: Algorithm, encoding: EncodingKey) -> Self {
        let mut jwk = Jwk::from_encoding_key(&encoding, alg).unwrap();
        jwk.common.key_id = Some(kid.to_owned());
        let jwk = serde_json::to_value(jwk).unwrap();
        Self {
            kid: kid.to_owned(),
            alg,
            encoding,
            jwk,
        }
    }

    /// The public JWK the issuer publishes for this key.
    pub(crate) fn public_jwk(&self) -> &Value {
        &self.jwk
    }

    /// A token of `claims`, signed by this key and naming it.
    pub(crate) fn sign(&self, claims: &Value) -> String {
        self.sign_as(Some(&self.kid), claims)
    }

    /// A token of `claims`, signed by this key but naming `kid`.
    pub(crate) fn sign_as(&self, kid: Option<&str>, claims: &Value) -> String {
        let mut header = Header::new(self.alg);
        header.kid = kid.map(str::to_owned);
        jsonwebtoken::encode(&header, claims, &self.encoding).unwrap()
    }
}

/// The bytes of `keys/<file>`.
pub(crate) fn pem(file: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/oauth/keys")
        .join(file);
    std::fs::read(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

/// A clock the tests move by hand.
#[derive(Clone)]
pub(crate) struct ManualClock(Arc<AtomicU64>);

impl ManualClock {
    /// A clock showing `seconds` since the epoch.
    pub(crate) fn at(seconds: u64) -> Self {
        Self(Arc::new(AtomicU64::new(seconds * 1000)))
    }

    /// Moves the clock forward.
    pub(crate) fn advance(&self, by: Duration) {
        let millis = u64::try_from(by.as_millis()).unwrap();
        self.0.fetch_add(millis, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_millis(self.0.load(Ordering::SeqCst))
    }
}
