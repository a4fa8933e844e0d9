//! A2A 0.3 over JSON-RPC: requests without an `A2A-Version` header (or with `0.3`) use the
//! slash methods and get `kind`-tagged, kebab-case answers.

#![allow(
    clippy::disallowed_methods,
    clippy::disallowed_macros,
    reason = "test code may spawn, print, sleep and read real time: the test's end stops all of it"
)]

mod common;

use common::{ALICE, Server};
use serde_json::{Value, json};

fn message(skill: &str, text: &str, task: Option<&str>) -> Value {
    let mut message = json!({
        "kind": "message",
        "messageId": format!("v03-{text}"),
        "role": "user",
        "parts": [{"kind": "text", "text": text}],
        "metadata": {"skill": skill},
    });
    if let Some(task) = task {
        message["taskId"] = json!(task);
    }
    message
}

#[tokio::test]
async fn message_send_and_the_task_methods() {
    let server = Server::start().await;
    for version in [None, Some("0.3")] {
        let sent = server
            .rpc_as(
                ALICE,
                version,
                "message/send",
                json!({"message": message("echo", "hi", None)}),
            )
            .await;
        let task = &sent["result"];
        assert_eq!(task["kind"], "task", "{sent}");
        assert_eq!(task["status"]["state"], "completed");
        assert_eq!(task["status"]["message"]["kind"], "message");
        assert_eq!(task["status"]["message"]["role"], "agent");
        assert_eq!(
            task["status"]["message"]["parts"],
            json!([{"kind": "text", "text": "hi"}])
        );
        assert_eq!(task["history"][0]["parts"][0]["kind"], "text");
        let got = server
            .rpc_as(
                ALICE,
                version,
                "tasks/get",
                json!({"id": task["id"], "historyLength": 0}),
            )
            .await;
        assert_eq!(got["result"]["kind"], "task");
        assert_eq!(got["result"].get("history"), None);
    }

    // blocking: false returns at once; the input-required state is spelt 0.3's way.
    let asked = server
        .rpc_as(
            ALICE,
            None,
            "message/send",
            json!({"message": message("ask", "q", None), "configuration": {"blocking": false}}),
        )
        .await;
    let id = asked["result"]["id"].as_str().unwrap().to_owned();
    let deadline = tokio::time::Instant::now() + common::PATIENCE;
    loop {
        let got = server
            .rpc_as(ALICE, None, "tasks/get", json!({"id": id}))
            .await;
        if got["result"]["status"]["state"] == "input-required" {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{got}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let answered = server
        .rpc_as(
            ALICE,
            None,
            "message/send",
            json!({"message": message("ask", "yes", Some(&id))}),
        )
        .await;
    assert_eq!(answered["result"]["status"]["state"], "completed");

    let cancelled = server
        .rpc_as(ALICE, None, "tasks/cancel", json!({"id": id}))
        .await;
    assert_eq!(cancelled["error"]["code"], -32002);
    // 0.3 errors carry no ErrorInfo details.
    assert_eq!(cancelled["error"].get("data"), None);
    let unknown = server
        .rpc_as(
            ALICE,
            None,
            "tasks/get",
            json!({"id": "task_00000000000000000000000000000000"}),
        )
        .await;
    assert_eq!(unknown["error"]["code"], -32001);
    let wrong = server.rpc_as(ALICE, None, "tasks/list", json!({})).await;
    assert_eq!(wrong["error"]["code"], -32601);
    let new_name = server
        .rpc_as(ALICE, Some("1.0"), "message/send", json!({}))
        .await;
    assert_eq!(new_name["error"]["code"], -32601);
}

#[tokio::test]
async fn message_stream_marks_the_last_event_final() {
    let server = Server::start().await;
    let events = server
        .rpc_stream(
            ALICE,
            None,
            "message/stream",
            json!({"message": message("gated", "go", None)}),
        )
        .await;
    assert_eq!(events[0]["result"]["kind"], "task", "{events:#?}");
    let last = &events.last().unwrap()["result"];
    let id = events[0]["result"]["id"].as_str().unwrap().to_owned();
    assert_eq!(events[0]["result"]["status"]["state"], "submitted");
    assert_eq!(last["kind"], "status-update");
    assert_eq!(last["status"]["state"], "input-required");
    assert_eq!(last["final"], true);
    for event in &events[..events.len() - 1] {
        if event["result"]["kind"] == "status-update" {
            assert_eq!(event["result"]["final"], false);
        }
    }

    let (opened, open) = tokio::sync::oneshot::channel();
    let body =
        json!({"jsonrpc": "2.0", "id": 3, "method": "tasks/resubscribe", "params": {"id": id}});
    let response = server.post_rpc(ALICE, None, body.to_string()).await;
    let resubscribed = tokio::spawn(common::sse_with(response, Some(opened)));
    open.await.unwrap();
    server
        .rpc_as(
            ALICE,
            None,
            "message/send",
            json!({"message": message("gated", "go", Some(&id))}),
        )
        .await;
    let events = resubscribed.await.unwrap();
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["result"]["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds[0], "task");
    assert_eq!(
        kinds.iter().filter(|k| **k == "artifact-update").count(),
        3,
        "{events:#?}"
    );
    let last = &events.last().unwrap()["result"];
    assert_eq!(last["status"]["state"], "completed");
    assert_eq!(last["final"], true);
    let chunk = events
        .iter()
        .find(|e| e["result"]["kind"] == "artifact-update")
        .unwrap();
    assert_eq!(chunk["result"]["artifact"]["parts"][0]["kind"], "text");
}

#[tokio::test]
async fn push_config_methods() {
    let server = Server::start().await;
    let sent = server
        .rpc_as(
            ALICE,
            None,
            "message/send",
            json!({"message": message("sleep", "z", None), "configuration": {"blocking": false}}),
        )
        .await;
    let id = sent["result"]["id"].as_str().unwrap().to_owned();
    let set = server
        .rpc_as(
            ALICE,
            None,
            "tasks/pushNotificationConfig/set",
            json!({"taskId": id, "pushNotificationConfig": {
                "url": "https://example.com/hook",
                "authentication": {"schemes": ["Bearer"], "credentials": "c"},
            }}),
        )
        .await;
    assert_eq!(set["result"]["taskId"], id, "{set}");
    // Without an id, a config's id is the task's.
    assert_eq!(set["result"]["pushNotificationConfig"]["id"], id);
    let got = server
        .rpc_as(
            ALICE,
            None,
            "tasks/pushNotificationConfig/get",
            json!({"id": id}),
        )
        .await;
    assert_eq!(
        got["result"]["pushNotificationConfig"]["authentication"]["schemes"],
        json!(["Bearer"])
    );
    let listed = server
        .rpc_as(
            ALICE,
            None,
            "tasks/pushNotificationConfig/list",
            json!({"id": id}),
        )
        .await;
    assert_eq!(listed["result"].as_array().unwrap().len(), 1);
    let deleted = server
        .rpc_as(
            ALICE,
            None,
            "tasks/pushNotificationConfig/delete",
            json!({"id": id, "pushNotificationConfigId": id}),
        )
        .await;
    assert_eq!(deleted["result"], Value::Null);
    assert!(deleted.get("error").is_none());
    server
        .rpc_as(ALICE, None, "tasks/cancel", json!({"id": id}))
        .await;
}
