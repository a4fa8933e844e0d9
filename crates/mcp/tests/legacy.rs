//! Protocol 2025-11-25 over HTTP, with raw JSON-RPC: sessions, the experimental core tasks,
//! questions sent as requests on the stream of a pending `tasks/result`, and the errors.

mod common;

use std::time::Duration;

use common::{ALICE, BOB, Client, Session, config, runtime, serve};
use serde_json::{Value, json};

async fn session(capabilities: Value) -> Session {
    let url = serve(runtime(), config()).await;
    Session::open(&Client::new(&url, Some(ALICE)), capabilities).await
}

async fn wait_for(session: &Session, task: &str, status: &str) -> Value {
    for _ in 0..400 {
        let got = session.ok("tasks/get", json!({"taskId": task})).await;
        if got["status"] == status {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("task {task} never reached {status}");
}

#[tokio::test(flavor = "multi_thread")]
async fn initialize_offers_tasks_only_on_2025_11_25() {
    let url = serve(runtime(), config()).await;
    let alice = Client::new(&url, Some(ALICE));
    for (version, tasks) in [
        ("2025-11-25", true),
        ("2025-06-18", false),
        ("1999-01-01", true),
    ] {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": version, "capabilities": {
                // The 2026 extension means nothing here: never tasks because of it.
                "extensions": {"io.modelcontextprotocol/tasks": {}},
            },
            "clientInfo": {"name": "t", "version": "0"},
        }});
        let mut answer = alice.post(&body, &[]).await;
        let id = answer.headers["mcp-session-id"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(id.bytes().all(|b| (0x21..=0x7e).contains(&b)));
        let result = answer.response().await["result"].clone();
        let expected = if version == "1999-01-01" {
            "2025-11-25"
        } else {
            version
        };
        assert_eq!(result["protocolVersion"], expected);
        assert_eq!(result["serverInfo"]["name"], "longrun");
        assert_eq!(
            result["capabilities"].get("tasks").is_some(),
            tasks,
            "{version}"
        );
        assert!(result["capabilities"].get("extensions").is_none());
        if tasks {
            let capability = &result["capabilities"]["tasks"];
            assert!(capability["requests"]["tools"]["call"].is_object());
            assert!(capability["list"].is_object() && capability["cancel"].is_object());
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn tools_list_their_task_support() {
    let session = session(json!({})).await;
    let tools = session.ok("tools/list", json!({})).await;
    let support = |name: &str| {
        tools["tools"]
            .as_array()
            .unwrap()
            .iter()
            .find(|tool| tool["name"] == name)
            .map(|tool| tool["execution"]["taskSupport"].clone())
            .unwrap()
    };
    assert_eq!(support("echo"), "forbidden");
    assert_eq!(support("work"), "optional");
    assert_eq!(support("only_task"), "required");
    assert_eq!(session.ok("ping", json!({})).await, json!({}));
    assert_eq!(
        session
            .ok("logging/setLevel", json!({"level": "warning"}))
            .await,
        json!({})
    );
    assert_eq!(
        session
            .error("logging/setLevel", json!({"level": "loud"}))
            .await,
        -32602
    );
    assert_eq!(
        session.error("tools/list", json!({"cursor": "x"})).await,
        -32602
    );
    assert_eq!(session.error("prompts/list", json!({})).await, -32601);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_task_call_answers_with_the_task_and_finishes_behind_it() {
    let session = session(json!({})).await;
    let created = session
        .ok(
            "tools/call",
            json!({"name": "work", "arguments": {"ms": 50}, "task": {"ttl": 60_000}}),
        )
        .await;
    let task = &created["task"];
    assert_eq!(task["status"], "working");
    assert!(task["ttl"].is_u64() && task["pollInterval"].is_u64());
    assert!(task["createdAt"].as_str().unwrap().ends_with('Z'));
    let id = task["taskId"].as_str().unwrap().to_owned();

    let done = wait_for(&session, &id, "completed").await;
    assert!(done.get("ttlMs").is_none());
    let result = session.ok("tasks/result", json!({"taskId": id})).await;
    assert_eq!(result["structuredContent"], json!({"slept_ms": 50}));
    assert_eq!(
        result["_meta"]["io.modelcontextprotocol/related-task"]["taskId"],
        id.as_str()
    );

    let listed = session.ok("tasks/list", json!({})).await;
    assert!(
        listed["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|task| task["taskId"] == id.as_str())
    );
    assert_eq!(
        session
            .error("tasks/list", json!({"cursor": "garbage"}))
            .await,
        -32602
    );

    // An ended task cannot be cancelled.
    assert_eq!(
        session.error("tasks/cancel", json!({"taskId": id})).await,
        -32602
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn outcomes_map_as_2025_11_25_wants() {
    let session = session(json!({})).await;
    let start = |name: &'static str| {
        let session = &session;
        async move {
            let created = session
                .ok("tools/call", json!({"name": name, "task": {}}))
                .await;
            created["task"]["taskId"].as_str().unwrap().to_owned()
        }
    };
    // A tool error is `failed`, and tasks/result gives the tool's result.
    let id = start("tool_error").await;
    wait_for(&session, &id, "failed").await;
    assert_eq!(
        session.ok("tasks/result", json!({"taskId": id})).await["isError"],
        true
    );
    // A failed task's tasks/result is its JSON-RPC error.
    let id = start("fail").await;
    wait_for(&session, &id, "failed").await;
    assert_eq!(
        session.error("tasks/result", json!({"taskId": id})).await,
        -32603
    );

    // Cancelling answers with the task, already cancelled.
    let created = session
        .ok(
            "tools/call",
            json!({"name": "work", "arguments": {"ms": 60_000}, "task": {}}),
        )
        .await;
    let id = created["task"]["taskId"].as_str().unwrap();
    let cancelled = session.ok("tasks/cancel", json!({"taskId": id})).await;
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(
        session.error("tasks/result", json!({"taskId": id})).await,
        -32603
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn task_support_is_enforced_with_method_not_found() {
    let session = session(json!({})).await;
    let forbidden = json!({"name": "echo", "arguments": {"text": "x"}, "task": {}});
    assert_eq!(session.error("tools/call", forbidden).await, -32601);
    assert_eq!(
        session
            .error("tools/call", json!({"name": "only_task"}))
            .await,
        -32601
    );
    assert_eq!(
        session
            .error("tools/call", json!({"name": "work", "task": 5}))
            .await,
        -32602
    );
    // A plain call of a plain tool answers with the result.
    let result = session
        .ok(
            "tools/call",
            json!({"name": "echo", "arguments": {"text": "x"}}),
        )
        .await;
    assert_eq!(result["content"][0]["text"], "x");
}

#[tokio::test(flavor = "multi_thread")]
async fn questions_arrive_as_requests_on_the_tasks_result_stream() {
    let session = session(json!({"elicitation": {}})).await;
    let created = session
        .ok("tools/call", json!({"name": "ask", "task": {}}))
        .await;
    let id = created["task"]["taskId"].as_str().unwrap().to_owned();
    let waiting = wait_for(&session, &id, "input_required").await;
    assert_eq!(waiting["statusMessage"], "Go on?");

    let mut stream = session
        .request(5, "tasks/result", json!({"taskId": id}))
        .await;
    let request = stream.next().await.unwrap();
    assert_eq!(request["method"], "elicitation/create");
    assert_eq!(request["params"]["message"], "Go on?");
    assert_eq!(
        request["params"]["_meta"]["io.modelcontextprotocol/related-task"]["taskId"],
        id.as_str()
    );

    // The answer is its own POST, accepted with 202.
    let answer = json!({"jsonrpc": "2.0", "id": request["id"], "result": {
        "action": "accept", "content": {"value": true},
    }});
    assert_eq!(session.send(&answer).await.status, 202);
    let response = stream.response().await;
    assert_eq!(response["id"], 5);
    assert_eq!(response["result"]["content"][0]["text"], "go = true");
    assert_eq!(
        response["result"]["_meta"]["io.modelcontextprotocol/related-task"]["taskId"],
        id.as_str()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_question_is_asked_again_on_a_new_stream_when_the_first_closed() {
    // No resume window: a stream whose connection dropped is given up at once.
    let config = longrun_mcp::Config {
        resume_window_ms: 0,
        ..config()
    };
    let url = serve(runtime(), config).await;
    let session = Session::open(&Client::new(&url, Some(ALICE)), json!({"elicitation": {}})).await;
    let created = session
        .ok("tools/call", json!({"name": "ask", "task": {}}))
        .await;
    let id = created["task"]["taskId"].as_str().unwrap().to_owned();
    wait_for(&session, &id, "input_required").await;

    let mut first = session
        .request(5, "tasks/result", json!({"taskId": id}))
        .await;
    let asked = first.next().await.unwrap();
    // The second stream may open before the server noticed the first one closed: it is asked
    // as soon as the server does.
    drop(first);
    let mut second = session
        .request(6, "tasks/result", json!({"taskId": id}))
        .await;
    let again = second.next().await.unwrap();
    assert_eq!(again["method"], "elicitation/create");
    assert_ne!(again["id"], asked["id"]);
    // The late answer to the first request still lands, once.
    let answer = json!({"jsonrpc": "2.0", "id": asked["id"], "result": {"action": "decline"}});
    assert_eq!(session.send(&answer).await.status, 202);
    let messages = second.all().await;
    let cancelled = messages
        .iter()
        .find(|message| message["method"] == "notifications/cancelled");
    assert_eq!(cancelled.unwrap()["params"]["requestId"], again["id"]);
    assert_eq!(
        messages.last().unwrap()["result"]["content"][0]["text"],
        "go = null"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plain_call_streams_its_question_and_its_result() {
    let session = session(json!({"sampling": {}})).await;
    let mut stream = session
        .request(3, "tools/call", json!({"name": "sample"}))
        .await;
    let request = stream.next().await.unwrap();
    assert_eq!(request["method"], "sampling/createMessage");
    assert!(
        request["params"].get("_meta").is_none(),
        "a plain call's task is not the client's"
    );
    let answer = json!({"jsonrpc": "2.0", "id": request["id"], "result": {
        "role": "assistant", "model": "m", "content": {"type": "text", "text": "Paris"},
    }});
    assert_eq!(session.send(&answer).await.status, 202);
    assert_eq!(
        stream.response().await["result"]["content"][0]["text"],
        "Paris"
    );

    // Without the capability, the call fails with -32021 naming it.
    let plain = session_without_sampling(&session).await;
    let response = plain
        .request(4, "tools/call", json!({"name": "sample"}))
        .await
        .response()
        .await;
    assert_eq!(response["error"]["code"], -32021);
    assert_eq!(
        response["error"]["data"]["requiredCapabilities"],
        json!({"sampling": {}})
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn cancelling_a_plain_call_cancels_its_task_and_sends_no_response() {
    let session = session(json!({})).await;
    let mut stream = session
        .request(
            11,
            "tools/call",
            json!({"name": "work", "arguments": {"ms": 60_000}}),
        )
        .await;
    let cancel = json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
                        "params": {"requestId": 11, "reason": "changed my mind"}});
    assert_eq!(session.send(&cancel).await.status, 202);
    let messages = tokio::time::timeout(Duration::from_secs(10), stream.all())
        .await
        .expect("the call's stream did not end");
    assert!(
        messages.iter().all(|message| message.get("id").is_none()),
        "{messages:?}"
    );
    let listed = session.ok("tasks/list", json!({})).await;
    assert_eq!(listed["tasks"][0]["status"], "cancelled");
}

async fn session_without_sampling(other: &Session) -> Session {
    Session::open(&other.client, json!({"elicitation": {}})).await
}

#[tokio::test(flavor = "multi_thread")]
async fn progress_and_agent_messages_go_out_as_notifications() {
    let session = session(json!({})).await;
    let params = json!({"name": "work", "arguments": {"ms": 1200}, "_meta": {"progressToken": 7}});
    let messages = session.request(2, "tools/call", params).await.all().await;
    let progress: Vec<&Value> = messages
        .iter()
        .filter(|m| m["method"] == "notifications/progress")
        .collect();
    assert_eq!(progress.len(), 2, "{messages:?}");
    assert_eq!(
        progress[0]["params"],
        json!({"progressToken": 7, "progress": 10.0, "total": 100, "message": "started"})
    );
    assert_eq!(messages.last().unwrap()["id"], 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_belong_to_their_principal() {
    let url = serve(runtime(), config()).await;
    let alice = Session::open(&Client::new(&url, Some(ALICE)), json!({})).await;
    let created = alice
        .ok(
            "tools/call",
            json!({"name": "work", "arguments": {"ms": 60_000}, "task": {}}),
        )
        .await;
    let id = created["task"]["taskId"].as_str().unwrap().to_owned();

    // Bob cannot use alice's session…
    let bob_client = Client::new(&url, Some(BOB));
    let stolen = Session {
        client: bob_client.clone(),
        id: alice.id.clone(),
    };
    assert_eq!(stolen.request(1, "ping", json!({})).await.status, 404);
    // …and in his own, alice's task is unknown, like a task that never was.
    let bob = Session::open(&bob_client, json!({})).await;
    for method in ["tasks/get", "tasks/result", "tasks/cancel"] {
        assert_eq!(
            bob.error(method, json!({"taskId": id})).await,
            -32602,
            "{method}"
        );
        assert_eq!(
            bob.error(
                method,
                json!({"taskId": "task_0123456789abcdef0123456789abcdef"})
            )
            .await,
            -32602
        );
    }
    assert!(
        bob.ok("tasks/list", json!({})).await["tasks"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    // No session header, or an ended session, is refused.
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "ping"});
    assert_eq!(alice.client.post(&body, &[]).await.status, 400);
    let http = reqwest::Client::new();
    let deleted = http
        .delete(&url)
        .header("authorization", format!("Bearer {ALICE}"))
        .header("mcp-session-id", &alice.id)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 200);
    assert_eq!(alice.request(1, "ping", json!({})).await.status, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_get_stream_carries_task_status_notifications() {
    let url = serve(runtime(), config()).await;
    let client = Client::new(&url, Some(ALICE));
    let session = Session::open(&client, json!({})).await;
    let http = reqwest::Client::new();
    let mut stream = http
        .get(&url)
        .header("authorization", format!("Bearer {ALICE}"))
        .header("accept", "text/event-stream")
        .header("mcp-session-id", &session.id)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    let created = session
        .ok(
            "tools/call",
            json!({"name": "work", "arguments": {"ms": 30}, "task": {}}),
        )
        .await;
    let id = created["task"]["taskId"].as_str().unwrap().to_owned();
    let mut text = String::new();
    while !text.contains("\"completed\"") {
        let chunk = tokio::time::timeout(Duration::from_secs(10), stream.chunk())
            .await
            .expect("no status notification in time")
            .unwrap()
            .unwrap();
        text.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    assert!(text.contains("notifications/tasks/status"));
    assert!(text.contains(&id));
}
