//! The HTTP+JSON binding of A2A 1.0: its paths, bodies, streams and `google.rpc.Status` errors.

#![allow(
    clippy::disallowed_methods,
    clippy::disallowed_macros,
    reason = "test code may spawn, print, sleep and read real time: the test's end stops all of it"
)]

mod common;

use common::{ALICE, BOB, Server, data, reply, sse, text};
use reqwest::Method;
use serde_json::{Value, json};

async fn body(response: reqwest::Response) -> (u16, String, Value) {
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, content_type, response.json().await.unwrap())
}

#[tokio::test]
async fn send_get_list_and_cancel_over_http() {
    let server = Server::start().await;
    let (status, content_type, sent) = body(
        server
            .rest(
                ALICE,
                Method::POST,
                "/message:send",
                Some(json!({"message": data("double", json!({"n": 4}))})),
            )
            .await,
    )
    .await;
    assert_eq!((status, content_type.as_str()), (200, "application/json"));
    let task = &sent["task"];
    assert_eq!(task["status"]["state"], "TASK_STATE_COMPLETED");
    assert_eq!(task["status"]["message"]["parts"], json!([{"data": 8}]));
    let id = task["id"].as_str().unwrap();

    // A client that asks for A2A's own media type gets it.
    let response = server
        .client
        .get(format!("{}/a2a/tasks/{id}?historyLength=1", server.base))
        .bearer_auth(ALICE)
        .header("accept", "application/a2a+json")
        .send()
        .await
        .unwrap();
    let (status, content_type, got) = body(response).await;
    assert_eq!(
        (status, content_type.as_str()),
        (200, "application/a2a+json")
    );
    assert_eq!(got["history"].as_array().unwrap().len(), 1);

    let (_, _, listed) = body(
        server
            .rest(
                ALICE,
                Method::GET,
                "/tasks?pageSize=10&includeArtifacts=true",
                None,
            )
            .await,
    )
    .await;
    assert_eq!(listed["tasks"][0]["id"], id);
    assert_eq!(listed["nextPageToken"], "");

    let (_, _, sleeping) = body(
        server
            .rest(
                ALICE,
                Method::POST,
                "/message:send",
                Some(json!({"message": text("sleep", "z"), "configuration": {"returnImmediately": true}})),
            )
            .await,
    )
    .await;
    let sleeping = sleeping["task"]["id"].as_str().unwrap();
    server.wait_for(sleeping, "TASK_STATE_WORKING").await;
    let (status, _, cancelled) = body(
        server
            .rest(
                ALICE,
                Method::POST,
                &format!("/tasks/{sleeping}:cancel"),
                None,
            )
            .await,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(cancelled["status"]["state"], "TASK_STATE_CANCELED");
    let (status, content_type, again) = body(
        server
            .rest(
                ALICE,
                Method::POST,
                &format!("/tasks/{sleeping}:cancel"),
                Some(json!({})),
            )
            .await,
    )
    .await;
    assert_eq!((status, content_type.as_str()), (400, "application/json"));
    assert_eq!(again["error"]["status"], "FAILED_PRECONDITION");
    assert_eq!(
        again["error"]["details"][0]["reason"],
        "TASK_NOT_CANCELABLE"
    );
}

#[tokio::test]
async fn streams_over_http_carry_bare_stream_responses() {
    let server = Server::start().await;
    let first = sse(server
        .rest(
            ALICE,
            Method::POST,
            "/message:stream",
            Some(json!({"message": text("ask", "x")})),
        )
        .await)
    .await;
    assert!(first[0].get("task").is_some(), "{first:#?}");
    assert_eq!(first[0]["task"]["status"]["state"], "TASK_STATE_SUBMITTED");
    let last = first.last().unwrap();
    assert_eq!(
        last["statusUpdate"]["status"]["state"], "TASK_STATE_INPUT_REQUIRED",
        "{first:#?}"
    );
    let id = first[0]["task"]["id"].as_str().unwrap().to_owned();

    // Subscribing works by GET and by POST; both start with the snapshot.
    for method in [Method::GET, Method::POST] {
        let (opened, open) = tokio::sync::oneshot::channel();
        let response = server
            .rest(
                ALICE,
                method.clone(),
                &format!("/tasks/{id}:subscribe"),
                None,
            )
            .await;
        let reader = tokio::spawn(common::sse_with(response, Some(opened)));
        open.await.unwrap();
        // Close the subscription by ending the server's side: cancel the task.
        if method == Method::POST {
            let (status, _, _) = body(
                server
                    .rest(ALICE, Method::POST, &format!("/tasks/{id}:cancel"), None)
                    .await,
            )
            .await;
            assert_eq!(status, 200);
            let events = reader.await.unwrap();
            assert_eq!(
                events[0]["task"]["status"]["state"],
                "TASK_STATE_INPUT_REQUIRED"
            );
            assert_eq!(
                events.last().unwrap()["statusUpdate"]["status"]["state"],
                "TASK_STATE_CANCELED"
            );
        } else {
            reader.abort();
        }
    }

    // A follow-up over HTTP+JSON to the cancelled task is refused.
    let (status, _, refused) = body(
        server
            .rest(
                ALICE,
                Method::POST,
                "/message:send",
                Some(json!({"message": reply(&id, "yes")})),
            )
            .await,
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        refused["error"]["details"][0]["reason"],
        "UNSUPPORTED_OPERATION"
    );
}

#[tokio::test]
async fn errors_are_google_rpc_statuses() {
    let server = Server::start().await;
    let (status, content_type, missing) = body(
        server
            .rest(
                ALICE,
                Method::GET,
                "/tasks/task_00000000000000000000000000000000",
                None,
            )
            .await,
    )
    .await;
    assert_eq!((status, content_type.as_str()), (404, "application/json"));
    assert_eq!(missing["error"]["code"], 404);
    assert_eq!(missing["error"]["status"], "NOT_FOUND");
    assert_eq!(
        missing["error"]["details"][0],
        json!({
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "TASK_NOT_FOUND",
            "domain": "a2a-protocol.org",
            "metadata": {},
        })
    );

    let mine = server
        .rest(
            ALICE,
            Method::POST,
            "/message:send",
            Some(json!({"message": text("echo", "x")})),
        )
        .await;
    let (_, _, mine) = body(mine).await;
    let id = mine["task"]["id"].as_str().unwrap();
    let (status, _, _) = body(
        server
            .rest(BOB, Method::GET, &format!("/tasks/{id}"), None)
            .await,
    )
    .await;
    assert_eq!(status, 404);

    let (status, _, unknown) =
        body(server.rest(ALICE, Method::GET, "/nothing/here", None).await).await;
    assert_eq!(status, 404);
    assert_eq!(unknown["error"]["details"][0]["reason"], "METHOD_NOT_FOUND");
    let (status, _, bad) = body(
        server
            .client
            .post(format!("{}/a2a/message:send", server.base))
            .bearer_auth(ALICE)
            .body("{oops")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(bad["error"]["details"][0]["reason"], "JSON_PARSE");
    let (status, _, media) = body(
        server
            .client
            .post(format!("{}/a2a/message:send", server.base))
            .bearer_auth(ALICE)
            .header("content-type", "text/plain")
            .body("hello")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 415);
    assert_eq!(
        media["error"]["details"][0]["reason"],
        "CONTENT_TYPE_NOT_SUPPORTED"
    );
    let (status, _, _) = body(server.rest("", Method::GET, "/tasks", None).await).await;
    assert_eq!(status, 401);
    let legacy = server
        .client
        .get(format!("{}/a2a/tasks", server.base))
        .bearer_auth(ALICE)
        .header("A2A-Version", "0.3")
        .send()
        .await
        .unwrap();
    let (status, _, legacy) = body(legacy).await;
    assert_eq!(status, 400);
    assert_eq!(
        legacy["error"]["details"][0]["reason"],
        "VERSION_NOT_SUPPORTED"
    );
    let (status, _, card) = body(
        server
            .rest(ALICE, Method::GET, "/extendedAgentCard", None)
            .await,
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        card["error"]["details"][0]["reason"],
        "EXTENDED_AGENT_CARD_NOT_CONFIGURED"
    );
}

#[tokio::test]
async fn push_configs_over_http() {
    let server = Server::start().await;
    let (_, _, sent) = body(
        server
            .rest(
                ALICE,
                Method::POST,
                "/message:send",
                Some(json!({"message": text("sleep", "z"), "configuration": {"returnImmediately": true}})),
            )
            .await,
    )
    .await;
    let id = sent["task"]["id"].as_str().unwrap();
    let path = format!("/tasks/{id}/pushNotificationConfigs");
    let (status, _, created) = body(
        server
            .rest(
                ALICE,
                Method::POST,
                &path,
                Some(
                    json!({"id": "p1", "url": "https://example.com/hook", "token": "t",
                            "authentication": {"scheme": "Bearer", "credentials": "c"}}),
                ),
            )
            .await,
    )
    .await;
    assert_eq!(status, 200, "{created}");
    assert_eq!(created["taskId"], id);
    assert_eq!(created["id"], "p1");
    let (_, _, listed) = body(server.rest(ALICE, Method::GET, &path, None).await).await;
    assert_eq!(listed["configs"].as_array().unwrap().len(), 1);
    let (status, _, got) = body(
        server
            .rest(ALICE, Method::GET, &format!("{path}/p1"), None)
            .await,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(got["authentication"]["scheme"], "Bearer");
    let (status, _, _) = body(
        server
            .rest(ALICE, Method::DELETE, &format!("{path}/p1"), None)
            .await,
    )
    .await;
    assert_eq!(status, 200);
    // Deleting is idempotent.
    let (status, _, _) = body(
        server
            .rest(ALICE, Method::DELETE, &format!("{path}/p1"), None)
            .await,
    )
    .await;
    assert_eq!(status, 200);
    let (status, _, gone) = body(
        server
            .rest(ALICE, Method::GET, &format!("{path}/p1"), None)
            .await,
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(gone["error"]["details"][0]["reason"], "TASK_NOT_FOUND");
    let (status, _, refused) = body(
        server
            .rest(
                ALICE,
                Method::POST,
                &path,
                Some(json!({"url": "http://169.254.169.254/latest"})),
            )
            .await,
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(refused["error"]["details"][0]["reason"], "INVALID_PARAMS");
    server
        .rest(ALICE, Method::POST, &format!("/tasks/{id}:cancel"), None)
        .await;
}
