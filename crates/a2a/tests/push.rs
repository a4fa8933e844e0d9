//! Push notifications: every event POSTed in order with the configured credentials, retried
//! when the webhook fails, resumed after a restart from the last event delivered, and refused
//! for addresses the SSRF policy does not allow.

mod common;

use std::sync::atomic::Ordering;

use common::{ALICE, Receiver, Server, reply, text};
use serde_json::{Value, json};

fn kind_of(body: &Value) -> String {
    if let Some(task) = body.get("task") {
        format!("task:{}", task["status"]["state"].as_str().unwrap())
    } else if let Some(update) = body.get("statusUpdate") {
        format!("status:{}", update["status"]["state"].as_str().unwrap())
    } else if let Some(update) = body.get("artifactUpdate") {
        format!(
            "artifact:{}",
            update["artifact"]["parts"][0]["text"].as_str().unwrap()
        )
    } else {
        format!("other:{body}")
    }
}

fn completed(body: &Value) -> bool {
    body["statusUpdate"]["status"]["state"] == "TASK_STATE_COMPLETED"
}

/// Whether a body shows the task completed: its status update, or a snapshot taken after it
/// (a blocking send of a fast task registers its config once the task has ended).
fn shows_completed(body: &Value) -> bool {
    completed(body) || body["task"]["status"]["state"] == "TASK_STATE_COMPLETED"
}

#[tokio::test]
async fn every_event_is_posted_in_order_and_failures_are_retried() {
    let server = Server::start().await;
    let receiver = Receiver::start(2).await;
    let sent = server
        .send(
            ALICE,
            text("gated", "go"),
            json!({
                "returnImmediately": true,
                "taskPushNotificationConfig": {
                    "url": receiver.url,
                    "token": "tok-123",
                    "authentication": {"scheme": "Bearer", "credentials": "secret-abc"},
                },
            }),
        )
        .await;
    let id = sent["task"]["id"].as_str().unwrap().to_owned();
    server.wait_for(&id, "TASK_STATE_INPUT_REQUIRED").await;
    server.send(ALICE, reply(&id, "go"), json!({})).await;

    let bodies = receiver.wait_until(completed).await;
    let kinds: Vec<String> = bodies.iter().map(kind_of).collect();
    // The snapshot comes first; whatever it already showed is not repeated; nothing after the
    // end.
    assert!(kinds[0].starts_with("task:"), "{kinds:?}");
    let asked = kinds
        .iter()
        .position(|k| k.ends_with("TASK_STATE_INPUT_REQUIRED"))
        .expect("the question was posted");
    assert_eq!(
        kinds[asked + 1..],
        [
            "status:TASK_STATE_WORKING",
            "artifact:chunk-0",
            "artifact:chunk-1",
            "artifact:chunk-2",
            "status:TASK_STATE_COMPLETED",
        ],
        "{kinds:?}"
    );
    // The first two attempts failed and were retried: the same events arrived, once each.
    assert_eq!(receiver.attempts.load(Ordering::SeqCst), bodies.len() + 2);
    for delivery in receiver.received.lock().iter() {
        assert_eq!(delivery.headers["authorization"], "Bearer secret-abc");
        assert_eq!(delivery.headers["x-a2a-notification-token"], "tok-123");
        assert_eq!(delivery.headers["content-type"], "application/json");
    }
    for body in &bodies[1..] {
        let update = body
            .get("statusUpdate")
            .or_else(|| body.get("artifactUpdate"))
            .unwrap();
        assert_eq!(update["taskId"], id);
    }

    // The config made inline is listed, with the task's id as its own.
    let listed = server
        .rpc(
            ALICE,
            "ListTaskPushNotificationConfigs",
            json!({"taskId": id}),
        )
        .await;
    assert_eq!(listed["result"]["configs"][0]["id"], id);
    assert_eq!(listed["result"]["configs"][0]["url"], receiver.url);
}

#[tokio::test]
async fn with_a_webhook_secret_every_post_is_signed() {
    let secret = "whsec-test-only";
    let server = Server::with(longrun_a2a::Config {
        allow_loopback_webhooks: true,
        webhook_secret: Some(longrun_a2a::WebhookSecret::new(secret)),
        ..longrun_a2a::Config::default()
    })
    .await;
    let receiver = Receiver::start(0).await;
    server
        .send(
            ALICE,
            text("echo", "signed"),
            json!({"taskPushNotificationConfig": {"url": receiver.url}}),
        )
        .await;
    receiver.wait_until(shows_completed).await;

    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let deliveries = receiver.received.lock();
    assert!(!deliveries.is_empty());
    for delivery in deliveries.iter() {
        let header = delivery.headers["longrun-signature"].to_str().unwrap();
        let (t, v1) = header
            .strip_prefix("t=")
            .and_then(|rest| rest.split_once(",v1="))
            .unwrap_or_else(|| panic!("malformed signature header: {header}"));
        let tag: Vec<u8> = (0..v1.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&v1[i..i + 2], 16).unwrap())
            .collect();
        let signed = format!("{t}.{}", delivery.raw);
        assert!(
            ring::hmac::verify(&key, signed.as_bytes(), &tag).is_ok(),
            "the signature does not verify: {header}"
        );
        // A changed body no longer verifies.
        let forged = format!("{t}.{} ", delivery.raw);
        assert!(ring::hmac::verify(&key, forged.as_bytes(), &tag).is_err());
    }
}

#[tokio::test]
async fn without_a_secret_nothing_is_signed() {
    let server = Server::start().await;
    let receiver = Receiver::start(0).await;
    server
        .send(
            ALICE,
            text("echo", "plain"),
            json!({"taskPushNotificationConfig": {"url": receiver.url}}),
        )
        .await;
    receiver.wait_until(shows_completed).await;
    for delivery in receiver.received.lock().iter() {
        assert!(delivery.headers.get("longrun-signature").is_none());
    }
}

#[tokio::test]
async fn deliveries_resume_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let config = longrun_a2a::Config {
        push_store: Some(dir.path().join("push.sqlite")),
        allow_loopback_webhooks: true,
        ..longrun_a2a::Config::default()
    };
    let first = Server::with(config.clone()).await;
    let receiver = Receiver::start(0).await;
    let sent = first
        .send(
            ALICE,
            text("gated", "go"),
            json!({"returnImmediately": true}),
        )
        .await;
    let id = sent["task"]["id"].as_str().unwrap().to_owned();
    first.wait_for(&id, "TASK_STATE_INPUT_REQUIRED").await;
    let created = first
        .rpc(
            ALICE,
            "CreateTaskPushNotificationConfig",
            json!({"taskId": id, "id": "hook", "url": receiver.url}),
        )
        .await;
    assert_eq!(created["result"]["id"], "hook", "{created}");
    receiver.wait_until(|body| body.get("task").is_some()).await;

    // The door stops (deliveries with it); the runtime goes on, and the task moves on.
    first.shutdown.cancel();
    let runtime = first.runtime.clone();
    let task_id: longrun::TaskId = id.parse().unwrap();
    runtime.answer(task_id, "go", json!("go")).await.unwrap();
    runtime.handle(task_id).wait().await.unwrap();
    let before = receiver.bodies().len();
    assert_eq!(before, 1, "nothing is delivered while the door is down");

    // A new door over the same push store picks the delivery up where it stopped.
    let second = Server::on(runtime, config).await;
    let bodies = receiver.wait_until(completed).await;
    let kinds: Vec<String> = bodies.iter().map(kind_of).collect();
    assert_eq!(
        kinds[1..],
        [
            "status:TASK_STATE_WORKING",
            "artifact:chunk-0",
            "artifact:chunk-1",
            "artifact:chunk-2",
            "status:TASK_STATE_COMPLETED",
        ],
        "{kinds:?}"
    );
    let got = second
        .rpc(
            ALICE,
            "GetTaskPushNotificationConfig",
            json!({"taskId": id, "id": "hook"}),
        )
        .await;
    assert_eq!(got["result"]["url"], receiver.url);
}

#[tokio::test]
async fn webhooks_to_private_addresses_are_refused() {
    let strict = Server::with(longrun_a2a::Config::default()).await;
    let receiver = Receiver::start(0).await;
    for url in [
        receiver.url.as_str(),
        "http://localhost:9/hook",
        "http://10.1.2.3/hook",
        "http://169.254.169.254/latest/meta-data",
        "ftp://example.com/hook",
    ] {
        let refused = strict
            .rpc(
                ALICE,
                "SendMessage",
                json!({"message": text("echo", "x"), "configuration": {"taskPushNotificationConfig": {"url": url}}}),
            )
            .await;
        assert_eq!(refused["error"]["code"], -32602, "{url}: {refused}");
    }
    // Refused before anything started.
    let listed = strict.rpc(ALICE, "ListTasks", json!({})).await;
    assert_eq!(listed["result"]["tasks"], json!([]));
    assert_eq!(receiver.attempts.load(Ordering::SeqCst), 0);
}
