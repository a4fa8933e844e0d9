//! Request/response tests of every endpoint and every error, through `Router::oneshot`.

mod common;

use std::{collections::HashSet, time::Duration};

use axum::{body::Body, http::Request};
use common::{ALICE, App, BOB, SseReader, seqs};
use longrun::Options;
use longrun_http::Limits;
use serde_json::{Value, json};

#[tokio::test]
async fn create_without_wait_answers_at_once() {
    let app = App::new();
    let reply = app
        .send(
            "POST",
            "/v1/tasks",
            Some(ALICE),
            Some(json!({
                "kind": "sleep",
                "input": null,
                "session": "chat-1",
                "labels": {"team": "infra"},
                "ttl_ms": 60000,
                "deadline_ms": 3600000,
            })),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let task = &reply.json;
    let id = task["id"].as_str().unwrap();
    assert!(id.starts_with("task_"));
    assert_eq!(
        reply.headers["location"].to_str().unwrap(),
        format!("/v1/tasks/{id}")
    );
    assert_eq!(task["kind"], "sleep");
    assert_eq!(task["status"], "working");
    // The session is shown as the client named it, not as the runtime scopes it.
    assert_eq!(task["session"], "chat-1");
    // The door that started it is a label too, as on every door.
    assert_eq!(task["labels"], json!({"team": "infra", "door": "http"}));
    assert_eq!(task["ttl_ms"], 60000);
    assert_eq!(task["attempt"], 1);
    assert_eq!(task["questions"], json!({}));
    let created = task["created_at_ms"].as_u64().unwrap();
    assert_eq!(
        task["deadline_at_ms"].as_u64().unwrap(),
        created + 3_600_000
    );
    assert!(task.get("output").is_none() && task.get("finished_at_ms").is_none());

    // The runtime keeps the owner and the scoped session.
    let stored = app.runtime.get(id.parse().unwrap()).await.unwrap();
    assert_eq!(stored.owner.as_str(), "alice");
    assert_eq!(stored.session.unwrap().as_str(), "alice/chat-1");
    app.runtime.cancel(id.parse().unwrap()).await.unwrap();
}

#[tokio::test]
async fn create_with_wait_answers_with_the_outcome() {
    let app = App::new();
    let reply = app
        .send(
            "POST",
            "/v1/tasks",
            Some(ALICE),
            Some(json!({"kind": "complete", "input": {"n": 21}, "wait_ms": 30000})),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    assert_eq!(reply.json["status"], "completed");
    assert_eq!(reply.json["output"], 42);
    assert_eq!(reply.json["status_message"], "completed");
    assert!(reply.json["finished_at_ms"].is_u64());
    assert!(reply.json["expires_at_ms"].is_u64());

    let reply = app
        .send(
            "POST",
            "/v1/tasks",
            Some(ALICE),
            Some(json!({"kind": "fail", "input": {}, "wait_ms": 30000})),
        )
        .await;
    assert_eq!(reply.json["status"], "failed");
    assert_eq!(
        reply.json["error"],
        json!({"code": "boom", "message": "it broke"})
    );
}

#[tokio::test]
async fn a_wait_that_runs_out_detaches_the_task() {
    let app = App::new();
    let reply = app
        .send(
            "POST",
            "/v1/tasks",
            Some(ALICE),
            Some(json!({"kind": "sleep", "input": null, "wait_ms": 20})),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    assert_eq!(reply.json["status"], "working");
    assert_eq!(reply.json["detached"], true);
    let id = reply.json["id"].as_str().unwrap();
    app.runtime.cancel(id.parse().unwrap()).await.unwrap();
}

#[tokio::test]
async fn get_returns_the_task_to_its_owner_only() {
    let app = App::new();
    let id = app
        .start(
            ALICE,
            json!({"kind": "complete", "input": {"n": 1}, "wait_ms": 30000}),
        )
        .await;
    let reply = app
        .send("GET", &format!("/v1/tasks/{id}"), Some(ALICE), None)
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json["id"], json!(id));
    assert_eq!(reply.json["output"], 2);
    assert_eq!(reply.json["input"], json!({"n": 1}));

    // Bob is told exactly what he would be told of a task that does not exist.
    let theirs = app
        .send("GET", &format!("/v1/tasks/{id}"), Some(BOB), None)
        .await;
    theirs.assert_error(404, "not_found");
    let unknown_id = "task_0123456789abcdef0123456789abcdef";
    let unknown = app
        .send("GET", &format!("/v1/tasks/{unknown_id}"), Some(BOB), None)
        .await;
    unknown.assert_error(404, "not_found");
    assert_eq!(
        theirs.text.replace(&id, "ID"),
        unknown.text.replace(unknown_id, "ID")
    );
}

#[tokio::test]
async fn list_filters_and_pages() {
    let app = App::new();
    let mut mine = HashSet::new();
    for n in 0..5u64 {
        let mut body = json!({"kind": "complete", "input": {"n": n}, "wait_ms": 30000});
        if n % 2 == 0 {
            body["labels"] = json!({"env": "prod", "team": "a"});
            body["session"] = json!("s1");
        }
        mine.insert(app.start(ALICE, body).await);
    }
    let failing = app
        .start(
            ALICE,
            json!({"kind": "fail", "input": {}, "wait_ms": 30000}),
        )
        .await;
    mine.insert(failing.clone());
    app.start(
        BOB,
        json!({"kind": "complete", "input": {"n": 9}, "wait_ms": 30000}),
    )
    .await;

    // Pages of two, newest first, until `next` is null.
    let mut seen = Vec::new();
    let mut uri = "/v1/tasks?limit=2".to_owned();
    loop {
        let reply = app.send("GET", &uri, Some(ALICE), None).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        let tasks = reply.json["tasks"].as_array().unwrap();
        assert!(tasks.len() <= 2);
        seen.extend(tasks.iter().map(|t| {
            (
                t["created_at_ms"].as_u64().unwrap(),
                t["id"].as_str().unwrap().to_owned(),
            )
        }));
        match reply.json["next"].as_str() {
            Some(next) => uri = format!("/v1/tasks?limit=2&after={next}"),
            None => {
                assert!(reply.json.get("next").is_some(), "next is always present");
                break;
            }
        }
    }
    assert_eq!(seen.len(), mine.len(), "each task once: {seen:?}");
    assert_eq!(
        seen.iter()
            .map(|(_, id)| id.clone())
            .collect::<HashSet<_>>(),
        mine
    );
    assert!(
        seen.windows(2).all(|w| w[0].0 >= w[1].0),
        "newest first: {seen:?}"
    );

    let ids = |reply: &common::Reply| -> HashSet<String> {
        reply.json["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let prod = app
        .send(
            "GET",
            "/v1/tasks?label=env:prod&label=team:a",
            Some(ALICE),
            None,
        )
        .await;
    assert_eq!(ids(&prod).len(), 3);
    let session = app
        .send("GET", "/v1/tasks?session=s1", Some(ALICE), None)
        .await;
    assert_eq!(ids(&session), ids(&prod));
    let failed = app
        .send("GET", "/v1/tasks?status=failed", Some(ALICE), None)
        .await;
    assert_eq!(ids(&failed), HashSet::from([failing]));
    let either = app
        .send(
            "GET",
            "/v1/tasks?status=failed,completed&kind=complete",
            Some(ALICE),
            None,
        )
        .await;
    assert_eq!(ids(&either).len(), 5);
    let repeated = app
        .send(
            "GET",
            "/v1/tasks?status=failed&status=working",
            Some(ALICE),
            None,
        )
        .await;
    assert_eq!(ids(&repeated).len(), 1);

    // Bob sees his own task only; alice's session name means nothing to him.
    let bobs = app.send("GET", "/v1/tasks", Some(BOB), None).await;
    assert_eq!(ids(&bobs).len(), 1);
    let bobs = app
        .send("GET", "/v1/tasks?session=s1", Some(BOB), None)
        .await;
    assert!(ids(&bobs).is_empty());
}

#[tokio::test]
async fn list_refuses_bad_parameters() {
    let app = App::new();
    for query in [
        "status=bogus",
        "limit=0",
        "limit=many",
        "label=nocolon",
        "after=junk",
        "colour=blue",
    ] {
        app.send("GET", &format!("/v1/tasks?{query}"), Some(ALICE), None)
            .await
            .assert_error(400, "bad_request");
    }
}

#[tokio::test]
async fn cancel_ends_the_task_once() {
    let app = App::new();
    let id = app
        .start(ALICE, json!({"kind": "sleep", "input": null}))
        .await;
    app.send("POST", &format!("/v1/tasks/{id}/cancel"), Some(BOB), None)
        .await
        .assert_error(404, "not_found");

    let reply = app
        .send("POST", &format!("/v1/tasks/{id}/cancel"), Some(ALICE), None)
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json["status"], "cancelled");
    assert_eq!(
        reply.json["cancellation"],
        json!({"reason": "requested", "by": "alice"})
    );

    app.send("POST", &format!("/v1/tasks/{id}/cancel"), Some(ALICE), None)
        .await
        .assert_error(409, "already_ended");
}

#[tokio::test]
async fn answers_reach_the_question() {
    let app = App::new();
    let id = app
        .start(ALICE, json!({"kind": "ask", "input": null}))
        .await;
    let answer = format!("/v1/tasks/{id}/answers/approve");

    app.send("POST", &answer, Some(BOB), Some(json!(true)))
        .await
        .assert_error(404, "not_found");
    let reply = app
        .send("POST", &answer, Some(ALICE), Some(json!({"ok": true})))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json["id"], json!(id));

    let task = app.wait(&id).await;
    assert_eq!(
        task.outcome(),
        Some(&longrun::Outcome::Completed {
            output: json!({"ok": true})
        })
    );
    // The task has ended: a second answer changes nothing.
    app.send("POST", &answer, Some(ALICE), Some(json!(false)))
        .await
        .assert_error(409, "already_ended");
}

#[tokio::test]
async fn a_question_takes_one_answer() {
    let app = App::new();
    // `steps` asks `go`; an answer may come before the question, and a second one is refused.
    let id = app
        .start(
            ALICE,
            json!({"kind": "steps", "input": {"before": 0, "after": 0}}),
        )
        .await;
    let answer = format!("/v1/tasks/{id}/answers/later");
    let first = app.send("POST", &answer, Some(ALICE), Some(json!(1))).await;
    assert_eq!(first.status, 200, "{}", first.text);
    app.send("POST", &answer, Some(ALICE), Some(json!(2)))
        .await
        .assert_error(409, "already_answered");
    app.send(
        "POST",
        &format!("/v1/tasks/{id}/answers/go"),
        Some(ALICE),
        Some(json!(true)),
    )
    .await;
    app.wait(&id).await;
}

#[tokio::test]
async fn questions_show_on_the_task() {
    let app = App::new();
    let id = app
        .start(ALICE, json!({"kind": "ask", "input": null}))
        .await;
    // Follow the task's events until it asks.
    let mut events = app
        .runtime
        .subscribe(id.parse().unwrap(), longrun::event::Seq::ZERO)
        .await
        .unwrap();
    while let Some(notice) = events.next().await.unwrap() {
        if let longrun::event::Notice::Event(event) = notice
            && event.status == longrun::task::Status::InputRequired
        {
            break;
        }
    }
    let reply = app
        .send("GET", &format!("/v1/tasks/{id}"), Some(ALICE), None)
        .await;
    assert_eq!(reply.json["status"], "input_required");
    assert_eq!(
        reply.json["questions"],
        json!({"approve": {"question": "go ahead?"}})
    );
    app.runtime.cancel(id.parse().unwrap()).await.unwrap();
}

#[tokio::test]
async fn events_of_an_ended_task_replay_and_end() {
    let app = App::new();
    let id = app
        .start(
            ALICE,
            json!({"kind": "complete", "input": {"n": 2}, "wait_ms": 30000}),
        )
        .await;
    let uri = format!("/v1/tasks/{id}/events");
    let reply = app.send("GET", &uri, Some(ALICE), None).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert!(
        reply.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let messages = read_sse(&reply.text).await;
    let all = seqs(&messages);
    assert_eq!(all, (1..=all.len() as u64).collect::<Vec<_>>());
    let last = messages.last().unwrap().json();
    assert_eq!(last["change"], json!({"type": "ended", "output": 4}));
    assert_eq!(last["status"], "completed");
    for message in &messages {
        assert_eq!(
            message.id.as_deref(),
            Some(&*message.json()["seq"].to_string())
        );
        assert_eq!(message.json()["task"], json!(id));
    }

    // Resuming with `?after=` or `Last-Event-ID` skips what was seen.
    let after = app
        .send("GET", &format!("{uri}?after=1"), Some(ALICE), None)
        .await;
    assert_eq!(seqs(&read_sse(&after.text).await), all[1..].to_vec());
    let request = Request::get(&uri)
        .header("authorization", format!("Bearer {ALICE}"))
        .header("last-event-id", "2")
        .body(Body::empty())
        .unwrap();
    let resumed = app.raw(request).await;
    assert_eq!(seqs(&read_sse(&resumed.text).await), all[2..].to_vec());

    // Nothing after the end: 204, which also stops an EventSource from reconnecting.
    let done = app
        .send(
            "GET",
            &format!("{uri}?after={}", all.len()),
            Some(ALICE),
            None,
        )
        .await;
    assert_eq!(done.status, 204);

    app.send("GET", &uri, Some(BOB), None)
        .await
        .assert_error(404, "not_found");
    app.send("GET", &format!("{uri}?after=x"), Some(ALICE), None)
        .await
        .assert_error(400, "bad_request");
    let request = Request::get(&uri)
        .header("authorization", format!("Bearer {ALICE}"))
        .header("last-event-id", "soon")
        .body(Body::empty())
        .unwrap();
    app.raw(request).await.assert_error(400, "bad_request");
}

async fn read_sse(text: &str) -> Vec<common::Message> {
    let chunks = vec![Ok::<_, std::convert::Infallible>(text.as_bytes().to_vec())];
    SseReader::new(futures_util::stream::iter(chunks))
        .rest()
        .await
}

#[tokio::test]
async fn the_inbox_drains_with_acknowledgement() {
    let app = App::new();
    let done = app
        .start(
            ALICE,
            json!({"kind": "complete", "input": {"n": 5}, "session": "chat"}),
        )
        .await;
    app.wait(&done).await;
    let notify = app
        .start(
            ALICE,
            json!({"kind": "notify", "input": null, "session": "chat"}),
        )
        .await;
    app.wait(&notify).await;
    let drain = "/v1/sessions/chat/inbox:drain";

    // Without acknowledgement, the same items come again.
    let first = app.send("POST", drain, Some(ALICE), None).await;
    assert_eq!(first.status, 200, "{}", first.text);
    let items = first.json["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 3, "{}", first.text);
    assert_eq!(items[0]["task"], json!(done));
    assert_eq!(
        items[0]["entry"],
        json!({"type": "outcome", "kind": "complete", "status": "completed", "output": 10})
    );
    assert_eq!(
        items[1]["entry"],
        json!({"type": "message", "message": "hello, agent", "trigger": true})
    );
    assert_eq!(items[2]["entry"]["kind"], "notify");
    assert_eq!(first.json["acknowledged"], 0);
    let through = first.json["through"].as_u64().unwrap();
    assert_eq!(through, items[2]["position"].as_u64().unwrap());
    let again = app.send("POST", drain, Some(ALICE), Some(json!({}))).await;
    assert_eq!(again.json["items"], json!(items));

    // Bob's session of the same name is another inbox.
    let bobs = app.send("POST", drain, Some(BOB), None).await;
    assert_eq!(bobs.json["items"], json!([]));
    assert_eq!(bobs.json["through"], Value::Null);

    // Acknowledging part of them leaves the rest.
    let first_position = items[0]["position"].as_u64().unwrap();
    let partial = app
        .send(
            "POST",
            drain,
            Some(ALICE),
            Some(json!({"ack": first_position, "max": 1})),
        )
        .await;
    assert_eq!(partial.json["acknowledged"], 1, "{}", partial.text);
    assert_eq!(partial.json["items"], json!([items[1].clone()]));
    let rest = app
        .send("POST", drain, Some(ALICE), Some(json!({"ack": through})))
        .await;
    assert_eq!(rest.json["acknowledged"], 2, "{}", rest.text);
    assert_eq!(rest.json["items"], json!([]));

    // An empty inbox can be waited on.
    let waiting = app
        .send("POST", drain, Some(ALICE), Some(json!({"wait_ms": 10})))
        .await;
    assert_eq!(waiting.json["items"], json!([]));

    app.send(
        "POST",
        drain,
        Some(ALICE),
        Some(json!({"acknowledge": through})),
    )
    .await
    .assert_error(422, "invalid_request");
    let request = Request::post(drain)
        .header("authorization", format!("Bearer {ALICE}"))
        .header("content-type", "text/plain")
        .body(Body::from("{}"))
        .unwrap();
    app.raw(request)
        .await
        .assert_error(415, "unsupported_media_type");
}

#[tokio::test]
async fn kinds_are_listed_with_their_schemas() {
    let app = App::new();
    let reply = app.send("GET", "/v1/kinds", Some(ALICE), None).await;
    assert_eq!(reply.status, 200);
    let kinds = reply.json["kinds"].as_array().unwrap();
    let names: Vec<&str> = kinds.iter().map(|k| k["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["ask", "complete", "fail", "notify", "sleep", "steps"]
    );
    let complete = &kinds[1];
    assert_eq!(complete["description"], "Doubles n.");
    assert_eq!(complete["input_schema"]["required"], json!(["n"]));
    assert_eq!(complete["restart"], "fail");
    assert_eq!(complete["ttl_ms"], 3_600_000);
    app.send("GET", "/v1/kinds", None, None)
        .await
        .assert_error(401, "unauthorized");
}

#[tokio::test]
async fn health_metrics_and_the_document_need_no_token() {
    let app = App::new();
    let health = app.send("GET", "/healthz", None, None).await;
    assert_eq!(health.status, 200);
    assert_eq!(health.json, json!({"status": "ok"}));

    let document = app.send("GET", "/openapi.json", None, None).await;
    assert_eq!(document.status, 200);
    assert_eq!(document.json, longrun_http::openapi());

    let id = app
        .start(
            ALICE,
            json!({"kind": "complete", "input": {"n": 1}, "wait_ms": 30000}),
        )
        .await;
    app.wait(&id).await;
    // The collector follows the event stream on its own task: look until it has caught up.
    let wanted = r#"longrun_tasks_ended_total{kind="complete",status="completed"} 1"#;
    let mut text = String::new();
    for _ in 0..500 {
        let metrics = app.send("GET", "/metrics", None, None).await;
        assert_eq!(metrics.status, 200);
        assert!(
            metrics.headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/plain; version=0.0.4")
        );
        text = metrics.text;
        if text.lines().any(|line| line == wanted) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for line in [
        wanted,
        r#"longrun_tasks_created_total{kind="complete"} 1"#,
        r#"longrun_tasks_created_total{kind="sleep"} 0"#,
        r#"longrun_tasks{kind="complete",status="working"} 0"#,
        r#"longrun_task_duration_seconds_count{kind="complete",status="completed"} 1"#,
        "longrun_queue_depth 0",
        "longrun_sse_subscribers 0",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing `{line}` in:\n{text}"
        );
    }
}

#[tokio::test]
async fn malformed_json_is_400() {
    let app = App::new();
    let request = Request::post("/v1/tasks")
        .header("authorization", format!("Bearer {ALICE}"))
        .header("content-type", "application/json")
        .body(Body::from(r#"{"kind": "complete", "input": "#))
        .unwrap();
    app.raw(request).await.assert_error(400, "malformed_json");
}

#[tokio::test]
async fn a_body_that_is_not_json_is_415() {
    let app = App::new();
    let request = Request::post("/v1/tasks")
        .header("authorization", format!("Bearer {ALICE}"))
        .header("content-type", "text/plain")
        .body(Body::from(r#"{"kind": "complete", "input": {"n": 1}}"#))
        .unwrap();
    app.raw(request)
        .await
        .assert_error(415, "unsupported_media_type");
}

#[tokio::test]
async fn bad_paths_are_400() {
    let app = App::new();
    app.send("GET", "/v1/tasks/not-a-task", Some(ALICE), None)
        .await
        .assert_error(400, "bad_request");
    app.send("POST", "/v1/tasks/task_123/cancel", Some(ALICE), None)
        .await
        .assert_error(400, "bad_request");
    let reply = app
        .send(
            "POST",
            "/v1/tasks",
            Some(ALICE),
            Some(json!({"kind": "complete", "input": {"n": 1}, "labels": {"a:b": "c"}})),
        )
        .await;
    reply.assert_error(400, "bad_request");
}

#[tokio::test]
async fn missing_or_wrong_tokens_are_401_with_a_challenge() {
    let app = App::new();
    let missing = app.send("GET", "/v1/tasks", None, None).await;
    missing.assert_error(401, "unauthorized");
    assert!(
        missing.headers["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    let wrong = app
        .send("GET", "/v1/tasks", Some("token-mallory"), None)
        .await;
    wrong.assert_error(401, "unauthorized");
    assert!(
        wrong.headers["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );
    // Authentication comes before anything else is looked at.
    app.send(
        "POST",
        "/v1/tasks",
        None,
        Some(json!({"kind": "nope", "input": 1})),
    )
    .await
    .assert_error(401, "unauthorized");
    app.send(
        "GET",
        "/v1/tasks/task_0123456789abcdef0123456789abcdef/events",
        None,
        None,
    )
    .await
    .assert_error(401, "unauthorized");
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_in_the_error_shape() {
    let app = App::new();
    app.send("GET", "/v2/tasks", Some(ALICE), None)
        .await
        .assert_error(404, "not_found");
    app.send("DELETE", "/v1/tasks", Some(ALICE), None)
        .await
        .assert_error(405, "method_not_allowed");
}

#[tokio::test]
async fn bodies_above_the_limit_are_413() {
    let limits = Limits {
        body_bytes: 1024,
        ..Limits::default()
    };
    let app = App::with(Options::default(), limits);
    let big = "x".repeat(4096);
    app.send(
        "POST",
        "/v1/tasks",
        Some(ALICE),
        Some(json!({"kind": "complete", "input": big})),
    )
    .await
    .assert_error(413, "too_large");

    // The runtime's own bounds are 413 too.
    let options = Options {
        bounds: longrun::limits::Bounds {
            input_bytes: 100,
            ..longrun::limits::Bounds::default()
        },
        ..Options::default()
    };
    let app = App::with(options, Limits::default());
    let reply = app
        .send(
            "POST",
            "/v1/tasks",
            Some(ALICE),
            Some(json!({"kind": "ask", "input": "y".repeat(200)})),
        )
        .await;
    reply.assert_error(413, "too_large");
    assert!(
        reply.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("input")
    );
}

#[tokio::test]
async fn bad_tasks_are_422_with_what_is_wrong() {
    let app = App::new();
    let start = |body: Value| app.send("POST", "/v1/tasks", Some(ALICE), Some(body));

    let unknown = start(json!({"kind": "nope", "input": {}})).await;
    unknown.assert_error(422, "unknown_kind");
    assert!(unknown.text.contains("nope"));

    let schema = start(json!({"kind": "complete", "input": {"n": "ten"}})).await;
    schema.assert_error(422, "invalid_input");
    let message = schema.json["error"]["message"].as_str().unwrap();
    assert!(message.contains("/n"), "{message}");
    assert!(message.contains("integer"), "{message}");
    start(json!({"kind": "complete", "input": {"n": 1, "m": 2}}))
        .await
        .assert_error(422, "invalid_input");

    let field = start(json!({"kind": "complete", "input": {"n": 1}, "priority": 9})).await;
    field.assert_error(422, "invalid_request");
    assert!(field.text.contains("priority"), "{}", field.text);
    start(json!({"kind": "complete"}))
        .await
        .assert_error(422, "invalid_request");
    start(json!({"kind": "complete", "input": {"n": 1}, "wait_ms": "soon"}))
        .await
        .assert_error(422, "invalid_request");
    // None of them made a task.
    let list = app.send("GET", "/v1/tasks", Some(ALICE), None).await;
    assert_eq!(list.json["tasks"], json!([]));
}

#[tokio::test]
async fn open_streams_are_bounded_per_principal() {
    let limits = Limits {
        streams_per_principal: 1,
        ..Limits::default()
    };
    let app = App::with(Options::default(), limits);
    let open = |token| {
        let request = Request::get("/v1/events")
            .header("authorization", format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap();
        tower::ServiceExt::oneshot(app.router.clone(), request)
    };
    // The stream lives in the response body: holding the response holds the stream.
    let first = open(ALICE).await.unwrap();
    assert_eq!(first.status(), 200);
    let second = app.send("GET", "/v1/events", Some(ALICE), None).await;
    second.assert_error(429, "too_many_streams");
    let id = app
        .start(ALICE, json!({"kind": "sleep", "input": null}))
        .await;
    app.send("GET", &format!("/v1/tasks/{id}/events"), Some(ALICE), None)
        .await
        .assert_error(429, "too_many_streams");
    // Another principal has its own allowance.
    let bobs = open(BOB).await.unwrap();
    assert_eq!(bobs.status(), 200);
    drop(first);
    let again = open(ALICE).await.unwrap();
    assert_eq!(again.status(), 200);
    app.runtime.cancel(id.parse().unwrap()).await.unwrap();
}

#[tokio::test]
async fn after_shutdown_requests_are_503() {
    let app = App::new();
    app.api.surface().shutdown();
    app.send(
        "POST",
        "/v1/tasks",
        Some(ALICE),
        Some(json!({"kind": "complete", "input": {"n": 1}})),
    )
    .await
    .assert_error(503, "shutting_down");
    app.send("GET", "/healthz", None, None)
        .await
        .assert_error(503, "shutting_down");

    // A runtime that shuts down refuses new tasks the same way.
    let app = App::new();
    app.runtime.shutdown().await;
    app.send(
        "POST",
        "/v1/tasks",
        Some(ALICE),
        Some(json!({"kind": "complete", "input": {"n": 1}})),
    )
    .await
    .assert_error(503, "shutting_down");
}

#[tokio::test]
async fn two_principals_cannot_see_each_other() {
    let app = App::new();
    let id = app
        .start(ALICE, json!({"kind": "ask", "input": null}))
        .await;
    let task = format!("/v1/tasks/{id}");
    app.send("GET", &task, Some(BOB), None)
        .await
        .assert_error(404, "not_found");
    app.send("GET", &format!("{task}/events"), Some(BOB), None)
        .await
        .assert_error(404, "not_found");
    app.send("POST", &format!("{task}/cancel"), Some(BOB), None)
        .await
        .assert_error(404, "not_found");
    app.send(
        "POST",
        &format!("{task}/answers/approve"),
        Some(BOB),
        Some(json!(true)),
    )
    .await
    .assert_error(404, "not_found");
    let list = app.send("GET", "/v1/tasks", Some(BOB), None).await;
    assert_eq!(list.json, json!({"tasks": [], "next": null}));
    // And nothing bob did touched it.
    let mine = app.send("GET", &task, Some(ALICE), None).await;
    assert_ne!(mine.json["status"], "cancelled");
    app.runtime.cancel(id.parse().unwrap()).await.unwrap();
}

#[tokio::test]
async fn anonymous_auth_makes_one_principal() {
    let runtime = common::runtime(Options::default());
    let api = longrun_http::Api::new(longrun_http::Surface::new(
        runtime.clone(),
        longrun_http::Auth::Anonymous,
        Limits::default(),
    ));
    let app = App {
        router: longrun_http::router(api.clone()),
        runtime,
        api,
    };
    let id = app
        .start(
            "ignored",
            json!({"kind": "complete", "input": {"n": 3}, "wait_ms": 30000}),
        )
        .await;
    let reply = app
        .send("GET", &format!("/v1/tasks/{id}"), None, None)
        .await;
    assert_eq!(reply.json["output"], 6);
    let stored = app.runtime.get(id.parse().unwrap()).await.unwrap();
    assert_eq!(stored.owner.as_str(), "anonymous");
}
