//! The JSON-RPC binding of A2A 1.0 over a real socket: send (blocking and not), streams,
//! follow-ups answering input-required, history, list, cancel, principal isolation, errors.

#![allow(
    clippy::disallowed_methods,
    clippy::disallowed_macros,
    reason = "test code may spawn, print, sleep and read real time: the test's end stops all of it"
)]

mod common;

use std::time::Duration;

use common::{ALICE, BOB, Server, data, reply, text};
use serde_json::{Value, json};

fn states(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|event| {
            let result = &event["result"];
            if let Some(task) = result.get("task") {
                format!("task:{}", task["status"]["state"].as_str().unwrap_or("?"))
            } else if let Some(update) = result.get("statusUpdate") {
                format!(
                    "status:{}",
                    update["status"]["state"].as_str().unwrap_or("?")
                )
            } else if let Some(update) = result.get("artifactUpdate") {
                format!(
                    "artifact:{}{}",
                    update["artifact"]["parts"][0]["text"]
                        .as_str()
                        .unwrap_or("?"),
                    if update["lastChunk"] == true {
                        ":last"
                    } else {
                        ""
                    }
                )
            } else {
                format!("other:{event}")
            }
        })
        .collect()
}

#[tokio::test]
async fn a_blocking_send_returns_the_completed_task_with_its_history() {
    let server = Server::start().await;
    let message = data("double", json!({"n": 21}));
    let result = server.send(ALICE, message.clone(), json!({})).await;
    let task = &result["task"];
    assert_eq!(task["status"]["state"], "TASK_STATE_COMPLETED");
    assert_eq!(task["status"]["message"]["role"], "ROLE_AGENT");
    assert_eq!(task["status"]["message"]["parts"], json!([{"data": 42}]));
    assert!(task["id"].as_str().unwrap().starts_with("task_"));
    let context = task["contextId"].as_str().unwrap();
    assert!(!context.is_empty());
    assert_eq!(task["metadata"]["longrun"]["kind"], "double");
    let history = task["history"].as_array().unwrap();
    assert_eq!(history.len(), 2, "{history:#?}");
    assert_eq!(history[0]["messageId"], message["messageId"]);
    assert_eq!(history[0]["role"], "ROLE_USER");
    assert_eq!(history[0]["parts"], json!([{"data": {"n": 21}}]));
    assert_eq!(history[0]["contextId"], context);
    assert_eq!(history[1]["role"], "ROLE_AGENT");

    // historyLength: 0 is none, n the last n.
    let id = task["id"].as_str().unwrap();
    let none = server
        .rpc(ALICE, "GetTask", json!({"id": id, "historyLength": 0}))
        .await;
    assert_eq!(none["result"].get("history"), None);
    let last = server
        .rpc(ALICE, "GetTask", json!({"id": id, "historyLength": 1}))
        .await;
    assert_eq!(last["result"]["history"].as_array().unwrap().len(), 1);
    assert_eq!(last["result"]["history"][0]["role"], "ROLE_AGENT");
    let negative = server
        .rpc(ALICE, "GetTask", json!({"id": id, "historyLength": -1}))
        .await;
    assert_eq!(negative["error"]["code"], -32602);
}

#[tokio::test]
async fn return_immediately_detaches_and_the_context_is_kept() {
    let server = Server::start().await;
    let mut message = text("sleep", "zzz");
    message["contextId"] = json!("chat-1");
    let result = server
        .send(ALICE, message, json!({"returnImmediately": true}))
        .await;
    let task = &result["task"];
    let state = task["status"]["state"].as_str().unwrap();
    assert!(
        state == "TASK_STATE_SUBMITTED" || state == "TASK_STATE_WORKING",
        "{state}"
    );
    assert_eq!(task["contextId"], "chat-1");
    let id = task["id"].as_str().unwrap();
    server.wait_for(id, "TASK_STATE_WORKING").await;

    // A second message in the same context starts a second task there.
    let mut second = text("echo", "again");
    second["contextId"] = json!("chat-1");
    server.send(ALICE, second, json!({})).await;
    let listed = server
        .rpc(ALICE, "ListTasks", json!({"contextId": "chat-1"}))
        .await;
    assert_eq!(listed["result"]["tasks"].as_array().unwrap().len(), 2);
    assert_eq!(listed["result"]["totalSize"], 2);

    let cancelled = server.rpc(ALICE, "CancelTask", json!({"id": id})).await;
    assert_eq!(
        cancelled["result"]["status"]["state"],
        "TASK_STATE_CANCELED"
    );
}

/// A blocking send is its caller's wait: an outcome the caller received goes to no inbox; one
/// it did not receive (the send returned at a question, or at once) goes to the context's.
#[tokio::test]
async fn only_outcomes_nobody_received_go_to_the_contexts_inbox() {
    let server = Server::start().await;
    let in_context = |mut message: Value| {
        message["contextId"] = json!("chat-inbox");
        message
    };
    let done = server
        .send(
            ALICE,
            in_context(data("double", json!({"n": 1}))),
            json!({}),
        )
        .await;
    assert_eq!(done["task"]["status"]["state"], "TASK_STATE_COMPLETED");
    let asked = server
        .send(ALICE, in_context(text("ask", "please")), json!({}))
        .await;
    assert_eq!(
        asked["task"]["status"]["state"],
        "TASK_STATE_INPUT_REQUIRED"
    );
    let asked = asked["task"]["id"].as_str().unwrap().to_owned();
    let answered = server.send(ALICE, reply(&asked, "yes"), json!({})).await;
    assert_eq!(answered["task"]["status"]["state"], "TASK_STATE_COMPLETED");
    let background = server
        .send(
            ALICE,
            in_context(text("echo", "later")),
            json!({"returnImmediately": true}),
        )
        .await;
    let background = background["task"]["id"].as_str().unwrap().to_owned();
    server.wait_for(&background, "TASK_STATE_COMPLETED").await;

    let session = longrun_surface::Principal::from("alice").session("chat-inbox");
    let drained = server.runtime.inbox(session).drain(10).await.unwrap();
    let mut tasks: Vec<String> = drained
        .items()
        .iter()
        .map(|item| item.task.to_string())
        .collect();
    tasks.sort();
    let mut expected = vec![asked, background];
    expected.sort();
    assert_eq!(
        tasks, expected,
        "not the task whose outcome the send answered with"
    );
}

/// A client that goes away from a blocking send leaves its task detached: its outcome goes to
/// the context's inbox, since nobody received it.
#[tokio::test]
async fn a_blocking_send_whose_client_left_detaches_its_task() {
    let server = Server::start().await;
    let mut message = text("sleep", "zzz");
    message["contextId"] = json!("chat-left");
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "SendMessage",
        "params": {"message": message, "configuration": {}}});
    let sent = server
        .client
        .post(format!("{}/a2a", server.base))
        .header("A2A-Version", "1.0")
        .bearer_auth(ALICE)
        .json(&body)
        .timeout(Duration::from_millis(500))
        .send()
        .await;
    assert!(sent.is_err(), "the sleep outlasts the client's patience");

    let listed = server
        .rpc(ALICE, "ListTasks", json!({"contextId": "chat-left"}))
        .await;
    let id: longrun::TaskId = listed["result"]["tasks"][0]["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    tokio::time::timeout(common::PATIENCE, async {
        while !server.runtime.get(id).await.unwrap().is_detached() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("detached once the client went away");
    server
        .rpc(ALICE, "CancelTask", json!({"id": id.to_string()}))
        .await;
    let session = longrun_surface::Principal::from("alice").session("chat-left");
    let drained = server.runtime.inbox(session).drain(10).await.unwrap();
    let tasks: Vec<_> = drained.items().iter().map(|item| item.task).collect();
    assert_eq!(tasks, [id]);
}

#[tokio::test]
async fn a_repeated_message_answers_with_the_same_task() {
    let server = Server::start().await;
    let mut message = data("double", json!({"n": 4}));
    message["contextId"] = json!("chat-retry");
    let first = server.send(ALICE, message.clone(), json!({})).await;
    let id = first["task"]["id"].as_str().unwrap().to_owned();
    assert_eq!(first["task"]["status"]["state"], "TASK_STATE_COMPLETED");

    // The client retries the same message: the same task, nothing started.
    let again = server.send(ALICE, message.clone(), json!({})).await;
    assert_eq!(again["task"]["id"], id.as_str());
    assert_eq!(again["task"]["status"]["state"], "TASK_STATE_COMPLETED");
    let listed = server
        .rpc(ALICE, "ListTasks", json!({"contextId": "chat-retry"}))
        .await;
    assert_eq!(listed["result"]["totalSize"], 1, "{listed}");

    // Another principal, another context, or another message id is another task.
    let theirs = server.send(BOB, message.clone(), json!({})).await;
    assert_ne!(theirs["task"]["id"], id.as_str());
    let mut elsewhere = message.clone();
    elsewhere["contextId"] = json!("chat-other");
    let elsewhere = server.send(ALICE, elsewhere, json!({})).await;
    assert_ne!(elsewhere["task"]["id"], id.as_str());
    let mut fresh = data("double", json!({"n": 4}));
    fresh["contextId"] = json!("chat-retry");
    let fresh = server.send(ALICE, fresh, json!({})).await;
    assert_ne!(fresh["task"]["id"], id.as_str());

    // The same message id with other content in the same context is refused.
    let mut changed = message;
    changed["parts"] = json!([{"data": {"n": 5}}]);
    let refused = server
        .rpc(
            ALICE,
            "SendMessage",
            json!({"message": changed, "configuration": {}}),
        )
        .await;
    assert_eq!(refused["error"]["code"], -32602, "{refused}");
}

#[tokio::test]
async fn a_follow_up_message_answers_input_required() {
    let server = Server::start().await;
    let asked = server.send(ALICE, text("ask", "please"), json!({})).await;
    let task = &asked["task"];
    assert_eq!(task["status"]["state"], "TASK_STATE_INPUT_REQUIRED");
    let question = &task["status"]["message"]["parts"];
    assert_eq!(question[0]["text"], "Go?");
    assert_eq!(question[0]["metadata"]["longrun"]["question"], "approve");
    let id = task["id"].as_str().unwrap();

    // A follow-up with a context that is not the task's is refused.
    let mut wrong = reply(id, "yes");
    wrong["contextId"] = json!("elsewhere");
    let refused = server
        .rpc(ALICE, "SendMessage", json!({"message": wrong}))
        .await;
    assert_eq!(refused["error"]["code"], -32602);

    let answered = server.send(ALICE, reply(id, "yes"), json!({})).await;
    let task = &answered["task"];
    assert_eq!(task["status"]["state"], "TASK_STATE_COMPLETED");
    assert_eq!(task["status"]["message"]["parts"], json!([{"text": "yes"}]));
    let roles: Vec<&str> = task["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(
        roles,
        ["ROLE_USER", "ROLE_AGENT", "ROLE_USER", "ROLE_AGENT"]
    );

    // The task has ended: another message to it is refused with UnsupportedOperationError.
    let late = server
        .rpc(ALICE, "SendMessage", json!({"message": reply(id, "again")}))
        .await;
    assert_eq!(late["error"]["code"], -32004);
    assert_eq!(late["error"]["data"][0]["reason"], "UNSUPPORTED_OPERATION");

    // A message to a running task that asks nothing has nothing to answer.
    let sleeping = server
        .send(
            ALICE,
            text("sleep", "z"),
            json!({"returnImmediately": true}),
        )
        .await;
    let sleeping = sleeping["task"]["id"].as_str().unwrap();
    server.wait_for(sleeping, "TASK_STATE_WORKING").await;
    let nothing = server
        .rpc(
            ALICE,
            "SendMessage",
            json!({"message": reply(sleeping, "hi")}),
        )
        .await;
    assert_eq!(nothing["error"]["code"], -32004);
    server
        .rpc(ALICE, "CancelTask", json!({"id": sleeping}))
        .await;
}

#[tokio::test]
async fn a_stream_starts_with_the_task_and_closes_when_it_asks_or_ends() {
    let server = Server::start().await;
    let first = server
        .rpc_stream(
            ALICE,
            Some("1.0"),
            "SendStreamingMessage",
            json!({"message": text("gated", "go")}),
        )
        .await;
    // A new task's stream starts from the task as created, so it shows every change, and
    // closes where the task asks.
    assert_eq!(
        states(&first),
        [
            "task:TASK_STATE_SUBMITTED",
            "status:TASK_STATE_WORKING",
            "status:TASK_STATE_INPUT_REQUIRED",
        ]
    );
    assert_eq!(
        first[0]["result"]["task"]["history"][0]["role"],
        "ROLE_USER"
    );
    for event in &first {
        assert_eq!(event["id"], "s1");
        assert_eq!(event["jsonrpc"], "2.0");
    }
    let id = first[0]["result"]["task"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let second = server
        .rpc_stream(
            ALICE,
            Some("1.0"),
            "SendStreamingMessage",
            json!({"message": reply(&id, "go")}),
        )
        .await;
    let seen = states(&second);
    assert!(seen[0].starts_with("task:"), "{seen:?}");
    assert_eq!(
        seen.last().unwrap(),
        "status:TASK_STATE_COMPLETED",
        "{seen:?}"
    );
    // The handler runs on as soon as it is answered, so the snapshot may already hold some
    // chunks; the snapshot and the events together hold each chunk once, in order.
    let snapshot = &second[0]["result"]["task"];
    let mut texts: Vec<String> = snapshot["artifacts"]
        .as_array()
        .map(|artifacts| artifacts[0]["parts"].as_array().unwrap().clone())
        .unwrap_or_default()
        .iter()
        .map(|part| part["text"].as_str().unwrap().to_owned())
        .collect();
    let chunks: Vec<&Value> = second
        .iter()
        .filter_map(|e| e["result"].get("artifactUpdate"))
        .collect();
    for chunk in &chunks {
        assert_eq!(chunk["artifact"]["artifactId"], "out");
        texts.push(
            chunk["artifact"]["parts"][0]["text"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    assert_eq!(texts, ["chunk-0", "chunk-1", "chunk-2"], "{second:#?}");
    assert_eq!(chunks.last().unwrap()["lastChunk"], true);
    assert_eq!(chunks.last().unwrap()["append"], true);

    // GetTask folds the chunks into one artifact.
    let task = server.rpc(ALICE, "GetTask", json!({"id": id})).await;
    let artifacts = task["result"]["artifacts"].as_array().unwrap();
    assert_eq!(artifacts.len(), 1);
    assert_eq!(
        artifacts[0]["parts"],
        json!([{"text": "chunk-0"}, {"text": "chunk-1"}, {"text": "chunk-2"}])
    );
    assert_eq!(artifacts[0]["name"], "output");

    // Subscribing to an ended task is refused.
    let ended = server
        .rpc_stream(ALICE, Some("1.0"), "SubscribeToTask", json!({"id": id}))
        .await;
    assert_eq!(ended[0]["error"]["code"], -32004);
}

#[tokio::test]
async fn two_subscribers_get_the_same_events_in_the_same_order() {
    let server = Server::start().await;
    let result = server
        .send(
            ALICE,
            text("gated", "go"),
            json!({"returnImmediately": true}),
        )
        .await;
    let id = result["task"]["id"].as_str().unwrap().to_owned();
    server.wait_for(&id, "TASK_STATE_INPUT_REQUIRED").await;

    let subscribe = || {
        let (server, id) = (server.clone(), id.clone());
        let (opened, first) = tokio::sync::oneshot::channel();
        let events = tokio::spawn(async move {
            let body = json!({"jsonrpc": "2.0", "id": "s1", "method": "SubscribeToTask", "params": {"id": id}});
            let response = server.post_rpc(ALICE, Some("1.0"), body.to_string()).await;
            common::sse_with(response, Some(opened)).await
        });
        (events, first)
    };
    let ((a, a_open), (b, b_open)) = (subscribe(), subscribe());
    // Both streams have their snapshot (so are open) before the answer goes in.
    a_open.await.unwrap();
    b_open.await.unwrap();
    let answered = server.send(ALICE, reply(&id, "go"), json!({})).await;
    assert_eq!(answered["task"]["status"]["state"], "TASK_STATE_COMPLETED");
    let (a, b) = (a.await.unwrap(), b.await.unwrap());
    let expected = [
        "task:TASK_STATE_INPUT_REQUIRED",
        "status:TASK_STATE_WORKING",
        "artifact:chunk-0",
        "artifact:chunk-1",
        "artifact:chunk-2:last",
        "status:TASK_STATE_COMPLETED",
    ];
    assert_eq!(states(&a), expected);
    assert_eq!(states(&b), expected);
}

#[tokio::test]
async fn cancel_ends_a_task_once() {
    let server = Server::start().await;
    let result = server
        .send(
            ALICE,
            text("sleep", "z"),
            json!({"returnImmediately": true}),
        )
        .await;
    let id = result["task"]["id"].as_str().unwrap();
    server.wait_for(id, "TASK_STATE_WORKING").await;
    let cancelled = server.rpc(ALICE, "CancelTask", json!({"id": id})).await;
    assert_eq!(
        cancelled["result"]["status"]["state"],
        "TASK_STATE_CANCELED"
    );
    let again = server.rpc(ALICE, "CancelTask", json!({"id": id})).await;
    assert_eq!(again["error"]["code"], -32002);
    assert_eq!(again["error"]["data"][0]["reason"], "TASK_NOT_CANCELABLE");
    assert_eq!(again["error"]["data"][0]["domain"], "a2a-protocol.org");

    let finished = server.send(ALICE, text("echo", "x"), json!({})).await;
    let finished = finished["task"]["id"].as_str().unwrap();
    let refused = server
        .rpc(ALICE, "CancelTask", json!({"id": finished}))
        .await;
    assert_eq!(refused["error"]["code"], -32002);

    let failed = server.send(ALICE, text("fail", "x"), json!({})).await;
    assert_eq!(failed["task"]["status"]["state"], "TASK_STATE_FAILED");
    assert_eq!(
        failed["task"]["status"]["message"]["parts"][0]["text"],
        "it broke"
    );
}

#[tokio::test]
async fn another_principals_task_looks_unknown() {
    let server = Server::start().await;
    let mine = server
        .send(
            ALICE,
            text("sleep", "z"),
            json!({"returnImmediately": true}),
        )
        .await;
    let id = mine["task"]["id"].as_str().unwrap();
    let unknown = "task_00000000000000000000000000000000";

    let as_bob = server.rpc(BOB, "GetTask", json!({"id": id})).await;
    let nowhere = server.rpc(BOB, "GetTask", json!({"id": unknown})).await;
    assert_eq!(as_bob["error"]["code"], -32001);
    assert_eq!(
        as_bob["error"]["message"]
            .as_str()
            .unwrap()
            .replace(id, "ID"),
        nowhere["error"]["message"]
            .as_str()
            .unwrap()
            .replace(unknown, "ID")
    );
    for (method, params) in [
        ("CancelTask", json!({"id": id})),
        ("SubscribeToTask", json!({"id": id})),
        ("SendMessage", json!({"message": reply(id, "hi")})),
        (
            "CreateTaskPushNotificationConfig",
            json!({"taskId": id, "url": "https://example.com/hook"}),
        ),
        ("ListTaskPushNotificationConfigs", json!({"taskId": id})),
    ] {
        let refused = server.rpc(BOB, method, params).await;
        assert_eq!(refused["error"]["code"], -32001, "{method}: {refused}");
    }
    let bobs = server.rpc(BOB, "ListTasks", json!({})).await;
    assert_eq!(bobs["result"]["tasks"], json!([]));
    assert_eq!(bobs["result"]["totalSize"], 0);
    // Contexts are per principal too: bob's "c" is not alice's "c".
    let alices = server.rpc(ALICE, "ListTasks", json!({})).await;
    assert_eq!(alices["result"]["tasks"].as_array().unwrap().len(), 1);
    server.rpc(ALICE, "CancelTask", json!({"id": id})).await;
}

#[tokio::test]
async fn list_pages_and_filters() {
    let server = Server::start().await;
    for n in 0..5 {
        server
            .send(ALICE, data("double", json!({"n": n})), json!({}))
            .await;
    }
    let failed = server.send(ALICE, text("fail", "x"), json!({})).await;
    let first = server
        .rpc(
            ALICE,
            "ListTasks",
            json!({"pageSize": 4, "historyLength": 0}),
        )
        .await;
    let page = &first["result"];
    assert_eq!(page["tasks"].as_array().unwrap().len(), 4);
    assert_eq!(page["totalSize"], 6);
    assert_eq!(page["pageSize"], 4);
    // Newest first; artifacts are left out unless asked for.
    assert_eq!(page["tasks"][0]["id"], failed["task"]["id"]);
    let token = page["nextPageToken"].as_str().unwrap();
    assert!(!token.is_empty());
    let second = server
        .rpc(
            ALICE,
            "ListTasks",
            json!({"pageSize": 4, "pageToken": token}),
        )
        .await;
    assert_eq!(second["result"]["tasks"].as_array().unwrap().len(), 2);
    let failed_only = server
        .rpc(ALICE, "ListTasks", json!({"status": "TASK_STATE_FAILED"}))
        .await;
    assert_eq!(failed_only["result"]["tasks"].as_array().unwrap().len(), 1);
    for bad in [
        json!({"pageSize": 0}),
        json!({"pageSize": 101}),
        json!({"pageToken": "x"}),
    ] {
        let refused = server.rpc(ALICE, "ListTasks", bad.clone()).await;
        assert_eq!(refused["error"]["code"], -32602, "{bad}");
    }
    let future = server
        .rpc(
            ALICE,
            "ListTasks",
            json!({"statusTimestampAfter": "2999-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(future["result"]["tasks"], json!([]));
}

#[tokio::test]
async fn skills_and_inputs_are_checked_before_a_task_starts() {
    let server = Server::start().await;
    let unnamed = server
        .rpc(
            ALICE,
            "SendMessage",
            json!({"message": {"messageId": "m", "role": "ROLE_USER", "parts": [{"text": "x"}]}}),
        )
        .await;
    assert_eq!(unnamed["error"]["code"], -32602);
    assert!(
        unnamed["error"]["message"]
            .as_str()
            .unwrap()
            .contains("double")
    );
    let unknown = server
        .rpc(ALICE, "SendMessage", json!({"message": text("nope", "x")}))
        .await;
    assert_eq!(unknown["error"]["code"], -32602);
    let invalid = server
        .rpc(
            ALICE,
            "SendMessage",
            json!({"message": data("double", json!({"n": "x"}))}),
        )
        .await;
    assert_eq!(invalid["error"]["code"], -32602);
    assert!(
        invalid["error"]["data"][0]["metadata"]["violations"]
            .as_str()
            .unwrap()
            .contains("/n"),
        "{invalid}"
    );
    let file_only = server
        .rpc(
            ALICE,
            "SendMessage",
            json!({"message": {"messageId": "m", "role": "ROLE_USER", "parts": [{"url": "https://e.com/f"}], "metadata": {"skill": "echo"}}}),
        )
        .await;
    assert_eq!(file_only["error"]["code"], -32005);
    let no_id = server
        .rpc(
            ALICE,
            "SendMessage",
            json!({"message": {"role": "ROLE_USER", "parts": [{"text": "x"}], "metadata": {"skill": "echo"}}}),
        )
        .await;
    assert_eq!(no_id["error"]["code"], -32602);
    // Nothing was started by any of these.
    let listed = server.rpc(ALICE, "ListTasks", json!({})).await;
    assert_eq!(listed["result"]["tasks"], json!([]));
}

#[tokio::test]
async fn malformed_requests_get_json_rpc_errors() {
    let server = Server::start().await;
    let cases = [
        ("{not json", -32700),
        ("[1, 2]", -32600),
        (r#"{"jsonrpc": "2.0", "id": 1}"#, -32600),
        (
            r#"{"jsonrpc": "1.0", "id": 1, "method": "GetTask"}"#,
            -32600,
        ),
        (
            r#"{"jsonrpc": "2.0", "id": {}, "method": "GetTask"}"#,
            -32600,
        ),
        (r#"{"jsonrpc": "2.0", "id": 1, "method": "Nope"}"#, -32601),
        (
            r#"{"jsonrpc": "2.0", "id": 1, "method": "GetTask", "params": [1]}"#,
            -32602,
        ),
        (
            r#"{"jsonrpc": "2.0", "id": 1, "method": "GetTask", "params": {"historyLength": "x"}}"#,
            -32602,
        ),
        (
            r#"{"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": {}}"#,
            -32602,
        ),
        (
            r#"{"jsonrpc": "2.0", "id": 1, "method": "GetExtendedAgentCard"}"#,
            -32007,
        ),
    ];
    for (body, code) in cases {
        let response = server.post_rpc(ALICE, Some("1.0"), body.to_owned()).await;
        assert_eq!(response.status(), 200, "{body}");
        let reply: Value = response.json().await.unwrap();
        assert_eq!(reply["error"]["code"], code, "{body}: {reply}");
        assert!(reply["error"]["data"][0]["reason"].is_string(), "{reply}");
    }
    // A body that says it is not JSON.
    let text = server
        .client
        .post(format!("{}/a2a", server.base))
        .bearer_auth(ALICE)
        .header("A2A-Version", "1.0")
        .header("content-type", "text/plain")
        .body(r#"{"jsonrpc":"2.0","id":1,"method":"ListTasks"}"#)
        .send()
        .await
        .unwrap();
    let text: Value = text.json().await.unwrap();
    assert_eq!(text["error"]["code"], -32005, "{text}");
    // The interface URL with a trailing slash is the same endpoint.
    let slash = server
        .client
        .post(format!("{}/a2a/", server.base))
        .bearer_auth(ALICE)
        .header("A2A-Version", "1.0")
        .header("content-type", "application/json")
        .body(r#"{"jsonrpc":"2.0","id":1,"method":"ListTasks"}"#)
        .send()
        .await
        .unwrap();
    let slash: Value = slash.json().await.unwrap();
    assert_eq!(slash["result"]["tasks"], json!([]), "{slash}");
    // An unsupported version, whatever the method.
    let future = server
        .rpc_as(ALICE, Some("2.0"), "GetTask", json!({"id": "x"}))
        .await;
    assert_eq!(future["error"]["code"], -32009);
    assert_eq!(
        future["error"]["data"][0]["reason"],
        "VERSION_NOT_SUPPORTED"
    );
    // No header is 0.3, which has no `SendMessage`.
    let legacy = server.rpc_as(ALICE, None, "SendMessage", json!({})).await;
    assert_eq!(legacy["error"]["code"], -32601);
    assert!(
        legacy["error"]["message"]
            .as_str()
            .unwrap()
            .contains("A2A-Version: 1.0")
    );
    // No token, a wrong token: 401.
    for token in ["", "wrong"] {
        let response = server
            .post_rpc(
                token,
                Some("1.0"),
                r#"{"jsonrpc":"2.0","id":1,"method":"ListTasks"}"#.into(),
            )
            .await;
        assert_eq!(response.status(), 401);
        // The same challenge as every door (a wrong token adds `error="invalid_token"`).
        assert!(
            response.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with(r#"Bearer realm="longrun""#)
        );
    }
    // GET is not the binding.
    let get = server
        .client
        .get(format!("{}/a2a", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), 405);
}

#[tokio::test]
async fn the_agent_card_lists_kinds_bindings_and_auth() {
    let server = Server::start().await;
    let url = format!("{}/.well-known/agent-card.json", server.base);
    let response = server.client.get(&url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "public, max-age=300");
    let etag = response.headers()["etag"].to_str().unwrap().to_owned();
    let card: Value = response.json().await.unwrap();
    let skills: Vec<&str> = card["skills"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(skills, ["ask", "double", "echo", "fail", "gated", "sleep"]);
    assert_eq!(card["capabilities"]["streaming"], true);
    assert_eq!(card["capabilities"]["pushNotifications"], true);
    let a2a = format!("{}/a2a", server.base);
    assert_eq!(
        card["supportedInterfaces"],
        json!([
            {"url": a2a, "protocolBinding": "JSONRPC", "protocolVersion": "1.0"},
            {"url": a2a, "protocolBinding": "HTTP+JSON", "protocolVersion": "1.0"},
            {"url": a2a, "protocolBinding": "JSONRPC", "protocolVersion": "0.3"},
        ])
    );
    assert_eq!(
        card["securitySchemes"]["bearer"]["httpAuthSecurityScheme"]["scheme"],
        "Bearer"
    );
    assert_eq!(
        card["securityRequirements"],
        json!([{"schemes": {"bearer": {"list": []}}}])
    );
    assert_eq!(
        card["capabilities"]["extensions"][0]["params"]["skills"]["double"]["required"],
        json!(["n"])
    );
    let cached = server
        .client
        .get(&url)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(cached.status(), 304);

    // The card is 1.0's (whose schema allows no other fields); asked as 0.3, it has 0.3's
    // fields too, for 0.3 clients.
    for legacy in ["url", "protocolVersion", "preferredTransport", "security"] {
        assert_eq!(card.get(legacy), None, "{legacy}");
    }
    assert_eq!(
        card["securitySchemes"]["bearer"].as_object().unwrap().len(),
        1
    );
    let response = server
        .client
        .get(&url)
        .header("A2A-Version", "0.3")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["vary"], "A2A-Version");
    assert!(response.headers().contains_key("last-modified"));
    let legacy: Value = response.json().await.unwrap();
    assert_eq!(legacy["url"], a2a);
    assert_eq!(legacy["protocolVersion"], "0.3.0");
    assert_eq!(legacy["security"], json!([{"bearer": []}]));
    assert_eq!(legacy["securitySchemes"]["bearer"]["type"], "http");
    assert_eq!(legacy["skills"], card["skills"]);
}

#[tokio::test]
async fn open_streams_end_when_the_server_stops() {
    let server = Server::start().await;
    let sent = server
        .send(
            ALICE,
            text("sleep", "z"),
            json!({"returnImmediately": true}),
        )
        .await;
    let id = sent["task"]["id"].as_str().unwrap().to_owned();
    server.wait_for(&id, "TASK_STATE_WORKING").await;
    let (opened, open) = tokio::sync::oneshot::channel();
    let body =
        json!({"jsonrpc": "2.0", "id": 1, "method": "SubscribeToTask", "params": {"id": id}});
    let response = server.post_rpc(ALICE, Some("1.0"), body.to_string()).await;
    let events = tokio::spawn(common::sse_with(response, Some(opened)));
    open.await.unwrap();
    server.shutdown.cancel();
    // The stream ends (within the reader's patience) with the snapshot only; the task runs on.
    let events = events.await.unwrap();
    assert_eq!(events.len(), 1, "{events:#?}");
    assert!(
        !server
            .runtime
            .get(id.parse().unwrap())
            .await
            .unwrap()
            .status()
            .is_terminal()
    );
}

#[tokio::test]
async fn an_oversize_body_gets_a_json_rpc_error_in_both_bindings() {
    let server = Server::start().await;
    // Over axum's default 2 MiB body limit.
    let padding = "x".repeat(3 << 20);
    let body =
        format!(r#"{{"jsonrpc":"2.0","id":1,"method":"GetTask","params":{{"id":"{padding}"}}}}"#);
    let response = server
        .client
        .post(format!("{}/a2a", server.base))
        .header("authorization", format!("Bearer {ALICE}"))
        .header("content-type", "application/json")
        .header("a2a-version", "1.0")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    let answer: Value = response.json().await.expect("a JSON-RPC error body");
    assert_eq!(answer["error"]["code"], -32600, "{answer}");

    // HTTP+JSON: the binding's own error shape.
    let response = server
        .client
        .post(format!("{}/a2a/message:send", server.base))
        .header("authorization", format!("Bearer {ALICE}"))
        .header("content-type", "application/json")
        .header("a2a-version", "1.0")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    let answer: Value = response.json().await.expect("an error body");
    assert!(answer["error"]["message"].is_string(), "{answer}");
}

#[tokio::test]
async fn a_saved_step_is_a_status_message_on_the_stream() {
    let runtime = common::runtime();
    runtime
        .register(
            longrun::KindSpec::new("stepper"),
            |ctx: longrun::Context, _: Value| async move {
                let first: String = ctx
                    .step("first", async {
                        Ok::<_, longrun::TaskError>("one".to_owned())
                    })
                    .await?;
                let second: String = ctx
                    .step("second", async {
                        Ok::<_, longrun::TaskError>("two".to_owned())
                    })
                    .await?;
                Ok::<_, longrun::TaskError>(json!([first, second]))
            },
        )
        .unwrap();
    let server = Server::on(runtime, longrun_a2a::Config::default()).await;
    let events = server
        .rpc_stream(
            ALICE,
            Some("1.0"),
            "SendStreamingMessage",
            json!({"message": text("stepper", "go")}),
        )
        .await;
    // A new task's stream shows every change from the start: each step is a working status
    // update whose message says which step was saved.
    let messages: Vec<(&str, &str)> = events
        .iter()
        .filter_map(|event| event["result"].get("statusUpdate"))
        .filter_map(|update| {
            let state = update["status"]["state"].as_str()?;
            let text = update["status"]["message"]["parts"][0]["text"].as_str()?;
            Some((state, text))
        })
        .filter(|(_, text)| text.starts_with("step "))
        .collect();
    assert_eq!(
        messages,
        [
            ("TASK_STATE_WORKING", "step `first` done"),
            ("TASK_STATE_WORKING", "step `second` done"),
        ],
        "{events:#?}"
    );
    assert_eq!(
        states(&events).last().map(String::as_str),
        Some("status:TASK_STATE_COMPLETED")
    );
}
