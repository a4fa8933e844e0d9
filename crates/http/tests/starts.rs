//! `POST /v1/tasks` with an `Idempotency-Key` (201 once, then 200 with the same task; 422 for
//! another kind or input) and with a start time (`delay_ms`, `start_at_ms`).

mod common;

use std::time::Duration;

use axum::{
    body::Body,
    http::{Request, StatusCode},
};
use common::{ALICE, App, BOB, Reply};
use longrun::task::Status;
use serde_json::{Value, json};

/// `POST /v1/tasks` as `token`, with `key` as the `Idempotency-Key` when given.
async fn create(app: &App, token: &str, key: Option<&str>, body: Value) -> Reply {
    let mut request = Request::builder()
        .method("POST")
        .uri("/v1/tasks")
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json");
    if let Some(key) = key {
        request = request.header("idempotency-key", key);
    }
    app.raw(request.body(Body::from(body.to_string())).unwrap())
        .await
}

#[tokio::test]
async fn a_repeated_key_answers_200_with_the_first_task() {
    let app = App::new();
    let body = json!({"kind": "complete", "input": {"n": 21}, "wait_ms": 30000});
    let first = create(&app, ALICE, Some("order-7"), body.clone()).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    assert_eq!(first.json["idempotency_key"], "order-7");
    let id = first.json["id"].as_str().unwrap();

    let again = create(&app, ALICE, Some("order-7"), body.clone()).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text);
    assert_eq!(again.json["id"], id);
    assert_eq!(again.json["status"], "completed");
    assert_eq!(again.json["output"], 42);
    assert_eq!(
        again.headers["location"].to_str().unwrap(),
        format!("/v1/tasks/{id}")
    );

    // Keys are the principal's own: bob's start with the same key is a new task.
    let theirs = create(&app, BOB, Some("order-7"), body.clone()).await;
    assert_eq!(theirs.status, StatusCode::CREATED, "{}", theirs.text);
    assert_ne!(theirs.json["id"], id);

    // Without the header every request starts a task.
    let plain = create(&app, ALICE, None, body).await;
    assert_eq!(plain.status, StatusCode::CREATED);
    assert_ne!(plain.json["id"], id);
}

#[tokio::test]
async fn a_key_reused_for_another_start_answers_422() {
    let app = App::new();
    let first = create(
        &app,
        ALICE,
        Some("k"),
        json!({"kind": "complete", "input": {"n": 1}}),
    )
    .await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    for body in [
        json!({"kind": "complete", "input": {"n": 2}}),
        json!({"kind": "fail", "input": {"n": 1}}),
    ] {
        let reply = create(&app, ALICE, Some("k"), body).await;
        assert_eq!(
            reply.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            reply.text
        );
        assert_eq!(reply.json["error"]["code"], "idempotency_key_reused");
        let message = reply.json["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(first.json["id"].as_str().unwrap()),
            "{message}"
        );
    }
    let empty = create(
        &app,
        ALICE,
        Some(""),
        json!({"kind": "complete", "input": {"n": 1}}),
    )
    .await;
    assert_eq!(empty.status, StatusCode::BAD_REQUEST, "{}", empty.text);
    let long = "k".repeat(256);
    let long = create(
        &app,
        ALICE,
        Some(&long),
        json!({"kind": "complete", "input": {"n": 1}}),
    )
    .await;
    assert_eq!(long.status, StatusCode::BAD_REQUEST, "{}", long.text);
}

#[tokio::test(start_paused = true)]
async fn a_delayed_start_stays_submitted_until_its_time() {
    let app = App::new();
    let reply = create(
        &app,
        ALICE,
        None,
        json!({"kind": "complete", "input": {"n": 2}, "delay_ms": 60000}),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    assert_eq!(reply.json["status"], "submitted");
    let created = reply.json["created_at_ms"].as_u64().unwrap();
    let start_at = reply.json["start_at_ms"].as_u64().unwrap();
    assert_eq!(start_at, created + 60_000);
    let id = reply.json["id"].as_str().unwrap();

    tokio::time::sleep(Duration::from_secs(59)).await;
    let task = app.runtime.get(id.parse().unwrap()).await.unwrap();
    assert_eq!(task.status(), Status::Submitted);
    let task = app.wait(id).await;
    assert_eq!(task.status(), Status::Completed);
    assert_eq!(task.started_at().map(|at| at.as_millis()), Some(start_at));

    // `start_at_ms` names the time itself.
    let at = created + 120_000;
    let reply = create(
        &app,
        ALICE,
        None,
        json!({"kind": "complete", "input": {"n": 3}, "start_at_ms": at}),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    assert_eq!(reply.json["start_at_ms"], at);
}

#[tokio::test]
async fn delay_and_start_time_together_answer_422() {
    let app = App::new();
    let reply = create(
        &app,
        ALICE,
        None,
        json!({"kind": "complete", "input": {"n": 2}, "delay_ms": 10, "start_at_ms": 10}),
    )
    .await;
    assert_eq!(
        reply.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        reply.text
    );
    assert_eq!(reply.json["error"]["code"], "invalid_request");
    assert!(reply.text.contains("delay_ms"), "{}", reply.text);
}
