//! Webhooks on `/v1`: a task started with a `webhook` has its events POSTed to a real receiver
//! on a socket, signed with the Standard Webhooks headers (checked here by an implementation
//! independent of the server's), under a `webhook-id` that a retry keeps; `events: "end"` sends
//! only the last event; a kind's default applies; private targets are refused with 422; and a
//! delivery pending when the server stops is finished by the next one over the same store.

#![allow(
    clippy::disallowed_methods,
    reason = "the receiver is spawned and checks timestamps against real time, as a real one does; the test's end stops it"
)]

mod common;

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use axum::{
    Router,
    http::{HeaderMap, StatusCode},
    routing::post,
};
use base64::{Engine, engine::general_purpose::STANDARD};
use common::{ALICE, App, auth, runtime};
use hmac::{Hmac, KeyInit, Mac};
use longrun::Runtime;
use longrun_http::{
    Api, Limits, Surface, WebhookConfig, WebhookRetry, Webhooks,
    model::{Webhook, WebhookEvents},
};
use parking_lot::Mutex;
use serde_json::{Value, json};
use sha2::Sha256;

/// 32 bytes, base64: what a client would generate.
const SECRET: &str = "whsec_dGhpcnR5LXR3by1ieXRlcy1vZi13ZWJob29rLWtleSE=";

/// How long any one wait may take before the test fails (generous: CI is slow).
const PATIENCE: Duration = Duration::from_secs(20);

/// Retries quick enough for a test.
fn fast() -> WebhookRetry {
    WebhookRetry {
        first: Duration::from_millis(50),
        max: Duration::from_millis(200),
        give_up: Duration::from_secs(60),
        timeout: Duration::from_secs(5),
    }
}

fn loopback() -> WebhookConfig {
    WebhookConfig {
        allow_loopback: true,
        ..WebhookConfig::default()
    }
}

/// The API over `runtime` with webhooks as `config` and `defaults` say.
fn app_on(runtime: Runtime, config: &WebhookConfig, defaults: HashMap<String, Webhook>) -> App {
    let surface = Surface::new(runtime.clone(), auth(), Limits::default());
    let webhooks = Webhooks::with_retry(&surface, config, defaults, fast()).unwrap();
    let api = Api::new(surface).with_webhooks(webhooks);
    let router = longrun_http::router(api.clone());
    App {
        runtime,
        api,
        router,
    }
}

fn app(config: &WebhookConfig) -> App {
    app_on(runtime(Default::default()), config, HashMap::new())
}

/// One POST the receiver got.
#[derive(Debug, Clone)]
struct Delivery {
    headers: HeaderMap,
    body: String,
}

impl Delivery {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap()
    }

    fn id(&self) -> String {
        self.headers["webhook-id"].to_str().unwrap().to_owned()
    }
}

/// A webhook receiver on 127.0.0.1 that answers 500 to its first `fail_first` POSTs.
struct Receiver {
    url: String,
    received: Arc<Mutex<Vec<Delivery>>>,
}

impl Receiver {
    async fn start(fail_first: usize) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let received: Arc<Mutex<Vec<Delivery>>> = Arc::default();
        let attempts = Arc::new(AtomicUsize::new(0));
        let kept = received.clone();
        let app = Router::new().route(
            "/hook",
            post(move |headers: HeaderMap, body: String| {
                let (received, attempts) = (kept.clone(), attempts.clone());
                async move {
                    received.lock().push(Delivery { headers, body });
                    if attempts.fetch_add(1, Ordering::SeqCst) < fail_first {
                        StatusCode::INTERNAL_SERVER_ERROR
                    } else {
                        StatusCode::NO_CONTENT
                    }
                }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { url, received }
    }

    fn all(&self) -> Vec<Delivery> {
        self.received.lock().clone()
    }

    /// Waits until a delivered body shows the task ended; every POST so far.
    async fn wait_for_end(&self) -> Vec<Delivery> {
        tokio::time::timeout(PATIENCE, async {
            loop {
                let all = self.all();
                if all.iter().any(|d| ended(&d.json())) {
                    return all;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("the webhook never got the task's end")
    }
}

fn ended(event: &Value) -> bool {
    matches!(
        event["status"].as_str(),
        Some("completed" | "failed" | "cancelled" | "rejected")
    )
}

/// The Standard Webhooks check, written from the spec rather than from the server's code:
/// HMAC-SHA256 under the base64-decoded secret of `"{id}.{timestamp}.{body}"`, base64, matched
/// against one of the space-separated `v1,` signatures; the timestamp within five minutes.
fn verify(secret: &str, delivery: &Delivery) -> Result<(), String> {
    let header = |name: &str| {
        delivery
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .ok_or(format!("no {name} header"))
    };
    let (id, timestamp, signatures) = (
        header("webhook-id")?,
        header("webhook-timestamp")?,
        header("webhook-signature")?,
    );
    let sent: u64 = timestamp.parse().map_err(|_| "bad timestamp")?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    if now.abs_diff(sent) > 300 {
        return Err(format!("timestamp {sent} is too far from {now}"));
    }
    let key = STANDARD
        .decode(secret.trim_start_matches("whsec_"))
        .map_err(|e| e.to_string())?;
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{timestamp}.{}", delivery.body).as_bytes());
    let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    if signatures.split(' ').any(|s| s == expected) {
        Ok(())
    } else {
        Err(format!(
            "no signature matches: got {signatures}, expected {expected}"
        ))
    }
}

/// The deliveries with one per `webhook-id` (the first), as a de-duplicating receiver keeps.
fn distinct(deliveries: &[Delivery]) -> Vec<Delivery> {
    let mut seen = std::collections::HashSet::new();
    deliveries
        .iter()
        .filter(|d| seen.insert(d.id()))
        .cloned()
        .collect()
}

fn seqs(deliveries: &[Delivery]) -> Vec<u64> {
    deliveries
        .iter()
        .map(|d| d.json()["seq"].as_u64().unwrap())
        .collect()
}

#[tokio::test]
async fn every_event_is_posted_signed_and_a_retry_keeps_its_id() {
    let app = app(&loopback());
    let receiver = Receiver::start(1).await;
    let id = app
        .start(
            ALICE,
            json!({"kind": "complete", "input": {"n": 2},
                   "webhook": {"url": receiver.url, "secret": SECRET}}),
        )
        .await;
    let task = app.wait(&id).await;
    let all = receiver.wait_for_end().await;
    for delivery in &all {
        verify(SECRET, delivery).unwrap();
        assert_eq!(delivery.json()["task"], id);
    }
    // The first POST was answered 500 and sent again under the same id.
    assert_eq!(all[0].id(), all[1].id(), "{all:?}");
    assert_eq!(all[0].body, all[1].body);
    // Once de-duplicated: every event, in order, each id naming its event.
    let events = distinct(&all);
    let last = task.last_seq().as_u64();
    assert_eq!(seqs(&events), (1..=last).collect::<Vec<_>>());
    for event in &events {
        assert_eq!(event.id(), format!("{id}_{}", event.json()["seq"]));
    }
    assert_eq!(events.last().unwrap().json()["status"], "completed");
    // A signature under another secret does not verify.
    let other = "whsec_b3RoZXItdGhpcnR5LXR3by1ieXRlcy1vZi1rZXktIQ==";
    assert!(verify(other, &all[0]).is_err());
}

/// A start whose webhook was never stored (the server crashed after creating the task, before
/// storing the webhook, and answered nothing) is retried by the client with its idempotency
/// key: the retry attaches the webhook to the task that exists, and every event is delivered.
/// A retry while the webhook is stored keeps it: no second one.
#[tokio::test]
async fn a_retried_start_attaches_a_webhook_the_first_start_never_stored() {
    let app = app(&loopback());
    let start = |key: &'static str, webhook: Option<String>| {
        let mut body = json!({"kind": "complete", "input": {"n": 2}});
        if let Some(url) = webhook {
            body["webhook"] = json!({"url": url, "secret": SECRET});
        }
        let request = axum::http::Request::builder()
            .method("POST")
            .uri("/v1/tasks")
            .header("authorization", format!("Bearer {ALICE}"))
            .header("content-type", "application/json")
            .header("idempotency-key", key)
            .body(axum::body::Body::from(body.to_string()))
            .unwrap();
        app.raw(request)
    };
    // The first start, as the crash left it: the task, and no webhook.
    let first = start("order-17", None).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    let id = first.json["id"].as_str().unwrap().to_owned();
    let task = app.wait(&id).await;

    let receiver = Receiver::start(0).await;
    let retried = start("order-17", Some(receiver.url.clone())).await;
    assert_eq!(retried.status, StatusCode::OK, "{}", retried.text);
    assert_eq!(retried.json["id"], id);
    let events = distinct(&receiver.wait_for_end().await);
    assert_eq!(
        seqs(&events),
        (1..=task.last_seq().as_u64()).collect::<Vec<_>>()
    );

    // A webhook still pending (its receiver keeps failing) is kept by a retry: the retry's
    // webhook gets nothing.
    let failing = Receiver::start(usize::MAX).await;
    let created = start("order-18", Some(failing.url.clone())).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    app.wait(created.json["id"].as_str().unwrap()).await;
    let other = Receiver::start(0).await;
    let repeated = start("order-18", Some(other.url.clone())).await;
    assert_eq!(repeated.status, StatusCode::OK, "{}", repeated.text);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!failing.all().is_empty(), "the first webhook was not tried");
    assert!(
        other.all().is_empty(),
        "a retry added a second webhook: {:?}",
        other.all()
    );
}

#[tokio::test]
async fn events_end_posts_only_the_last_event() {
    let app = app(&loopback());
    let receiver = Receiver::start(0).await;
    let id = app
        .start(
            ALICE,
            json!({"kind": "fail", "input": null,
                   "webhook": {"url": receiver.url, "events": "end", "secret": SECRET}}),
        )
        .await;
    let task = app.wait(&id).await;
    let all = receiver.wait_for_end().await;
    // Nothing more comes after the end.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let all_after = receiver.all();
    assert_eq!(all_after.len(), 1, "{all_after:?}");
    let only = &all[0];
    verify(SECRET, only).unwrap();
    assert_eq!(only.json()["status"], "failed");
    assert_eq!(only.json()["seq"], task.last_seq().as_u64());
}

#[tokio::test]
async fn a_kind_default_webhook_signed_with_the_server_secret() {
    let receiver = Receiver::start(0).await;
    let config = WebhookConfig {
        secret: Some(SECRET.to_owned()),
        ..loopback()
    };
    let defaults = HashMap::from([(
        "complete".to_owned(),
        Webhook {
            url: receiver.url.clone(),
            events: WebhookEvents::End,
            secret: None,
        },
    )]);
    let app = app_on(runtime(Default::default()), &config, defaults);
    let id = app
        .start(ALICE, json!({"kind": "complete", "input": {"n": 1}}))
        .await;
    let all = receiver.wait_for_end().await;
    assert_eq!(all.len(), 1, "{all:?}");
    verify(SECRET, &all[0]).unwrap();
    assert_eq!(all[0].json()["task"], id);
    // Another kind has no default: nothing is sent for it.
    let other = app
        .start(ALICE, json!({"kind": "fail", "input": null}))
        .await;
    app.wait(&other).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.all().len(), 1);
}

#[tokio::test]
async fn private_targets_bad_secrets_and_servers_without_webhooks_are_refused() {
    let strict = app(&WebhookConfig::default());
    let receiver = Receiver::start(0).await;
    for url in [
        receiver.url.as_str(),
        "http://localhost:9/hook",
        "http://10.1.2.3/hook",
        "http://[fd00::1]/hook",
        "http://169.254.169.254/latest/meta-data",
        "ftp://example.com/hook",
    ] {
        let reply = strict
            .send(
                "POST",
                "/v1/tasks",
                Some(ALICE),
                Some(json!({"kind": "complete", "input": {"n": 1},
                            "webhook": {"url": url, "secret": SECRET}})),
            )
            .await;
        reply.assert_error(422, "invalid_request");
        assert!(
            reply.json["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("webhook: "),
            "{}",
            reply.text
        );
    }
    let refused = strict
        .send(
            "POST",
            "/v1/tasks",
            Some(ALICE),
            Some(json!({"kind": "complete", "input": {"n": 1},
                        "webhook": {"url": "http://10.0.0.1/"}})),
        )
        .await;
    assert!(
        refused.text.contains("server-side request forgery"),
        "{}",
        refused.text
    );
    // A public URL without a secret (none on the server either), or with a short one.
    for webhook in [
        json!({"url": "https://example.com/hook"}),
        json!({"url": "https://example.com/hook", "secret": "whsec_c2hvcnQ="}),
    ] {
        strict
            .send(
                "POST",
                "/v1/tasks",
                Some(ALICE),
                Some(json!({"kind": "complete", "input": {"n": 1}, "webhook": webhook})),
            )
            .await
            .assert_error(422, "invalid_request");
    }
    // Refused before anything started.
    let listed = strict.send("GET", "/v1/tasks", Some(ALICE), None).await;
    assert_eq!(listed.json["tasks"], json!([]));
    assert!(receiver.all().is_empty());

    // A server without webhooks set up refuses them too.
    let plain = App::new();
    plain
        .send(
            "POST",
            "/v1/tasks",
            Some(ALICE),
            Some(json!({"kind": "complete", "input": {"n": 1},
                        "webhook": {"url": "https://example.com/hook", "secret": SECRET}})),
        )
        .await
        .assert_error(422, "invalid_request");
}

#[tokio::test]
async fn a_pending_delivery_is_finished_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let config = WebhookConfig {
        store: Some(dir.path().join("webhooks.sqlite")),
        ..loopback()
    };
    let runtime = runtime(Default::default());
    let first = app_on(runtime.clone(), &config, HashMap::new());
    let receiver = Receiver::start(0).await;
    let id = first
        .start(
            ALICE,
            json!({"kind": "ask", "input": null,
                   "webhook": {"url": receiver.url, "secret": SECRET}}),
        )
        .await;
    // Delivered up to the question.
    tokio::time::timeout(PATIENCE, async {
        while !receiver
            .all()
            .iter()
            .any(|d| d.json()["status"] == "input_required")
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the question was not delivered");

    // The server stops (its deliveries with it); the task moves on meanwhile.
    first.api.surface().shutdown();
    let task_id: longrun::TaskId = id.parse().unwrap();
    runtime
        .answer(task_id, "approve", json!("yes"))
        .await
        .unwrap();
    let task = first.wait(&id).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = receiver.all();
    assert!(
        !before.iter().any(|d| ended(&d.json())),
        "delivered while stopped: {before:?}"
    );

    // The next server over the same store finishes the delivery.
    let _second = app_on(runtime, &config, HashMap::new());
    let all = receiver.wait_for_end().await;
    for delivery in &all {
        verify(SECRET, delivery).unwrap();
    }
    let events = distinct(&all);
    assert_eq!(
        seqs(&events),
        (1..=task.last_seq().as_u64()).collect::<Vec<_>>()
    );
}
