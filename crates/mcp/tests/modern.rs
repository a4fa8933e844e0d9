//! Protocol 2026-07-28 over HTTP, with raw JSON-RPC: discovery, plain calls, the tasks
//! extension, questions (`inputRequests`, `tasks/update`, `InputRequiredResult` rounds), and
//! every error the specification names.

mod common;

use common::{ALICE, BOB, Client, MODERN, config, runtime, serve};
use serde_json::{Value, json};

async fn door() -> Client {
    Client::new(&serve(runtime(), config()).await, Some(ALICE))
}

#[tokio::test(flavor = "multi_thread")]
async fn discovery_lists_the_extension_and_tools_without_task_support() {
    let alice = door().await;
    let discovered = alice.modern_ok("server/discover", json!({}), false).await;
    assert_eq!(discovered["supportedVersions"], json!([MODERN]));
    assert!(discovered["capabilities"]["extensions"]["io.modelcontextprotocol/tasks"].is_object());
    assert!(discovered["capabilities"].get("tasks").is_none());
    assert_eq!(discovered["resultType"], "complete");
    assert_eq!(
        discovered["_meta"]["io.modelcontextprotocol/serverInfo"]["name"],
        "longrun"
    );

    let listed = alice.modern_ok("tools/list", json!({}), true).await;
    let tools = listed["tools"].as_array().unwrap();
    assert!(tools.iter().any(|tool| tool["name"] == "echo"));
    assert!(tools.iter().all(|tool| tool.get("execution").is_none()));
    assert!(
        tools
            .iter()
            .all(|tool| tool["inputSchema"]["type"] == "object")
    );
    assert!(listed["ttlMs"].is_u64());
    assert_eq!(listed["cacheScope"], "public");
}

#[tokio::test(flavor = "multi_thread")]
async fn plain_calls_answer_with_the_result() {
    let alice = door().await;
    let result = alice
        .modern_ok(
            "tools/call",
            json!({"name": "echo", "arguments": {"text": "hi"}}),
            true,
        )
        .await;
    assert_eq!(result["resultType"], "complete");
    assert_eq!(result["content"][0]["text"], "hi");
    assert!(result.get("taskId").is_none());

    // Without the extension, a tool that allows tasks runs within the call.
    let result = alice
        .modern_ok(
            "tools/call",
            json!({"name": "work", "arguments": {"ms": 10}}),
            false,
        )
        .await;
    assert_eq!(result["structuredContent"], json!({"slept_ms": 10}));

    // A tool error is a result, not a protocol error.
    let result = alice
        .modern_ok("tools/call", json!({"name": "tool_error"}), false)
        .await;
    assert_eq!(result["isError"], true);

    // So is an input that breaks the tool's schema.
    let result = alice
        .modern_ok(
            "tools/call",
            json!({"name": "echo", "arguments": {"text": 5}}),
            false,
        )
        .await;
    assert_eq!(result["isError"], true);
    assert!(
        result["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("input schema")
    );

    // A failed task is the JSON-RPC error it failed with.
    let response = alice
        .modern(2, "tools/call", json!({"name": "fail"}), false)
        .await
        .response()
        .await;
    assert_eq!(response["error"]["code"], -32603);
    assert_eq!(response["error"]["message"], "it broke on purpose");
    assert_eq!(response["error"]["data"]["code"], "broken");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_task_runs_to_completion_behind_its_handle() {
    let alice = door().await;
    let created = alice
        .modern_ok(
            "tools/call",
            json!({"name": "work", "arguments": {"ms": 50}}),
            true,
        )
        .await;
    assert_eq!(created["resultType"], "task");
    assert!(created.get("task").is_none(), "the handle is flat");
    assert!(created.get("ttl").is_none() && created["ttlMs"].is_u64());
    assert!(created.get("result").is_none());
    let id = created["taskId"].as_str().unwrap().to_owned();

    // Durable before the handle was returned: readable at once.
    let got = alice
        .modern_ok("tasks/get", json!({"taskId": id}), true)
        .await;
    assert_eq!(got["taskId"], id.as_str());
    assert_eq!(got["resultType"], "complete");

    let done = alice.wait_for(&id, &["completed"]).await;
    assert_eq!(done["result"]["structuredContent"], json!({"slept_ms": 50}));
    assert_eq!(done["result"]["resultType"], "complete");
    assert!(done["result"].get("_meta").is_none());
    assert!(done.get("error").is_none());

    // Cancelling an ended task is the same empty ack.
    let ack = alice
        .modern_ok("tasks/cancel", json!({"taskId": id}), true)
        .await;
    assert_eq!(ack["resultType"], "complete");
    assert!(ack.get("status").is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn outcomes_map_onto_task_states() {
    let alice = door().await;
    let call = |name: &'static str| {
        let alice = alice.clone();
        async move {
            let created = alice
                .modern_ok("tools/call", json!({"name": name}), true)
                .await;
            created["taskId"].as_str().unwrap().to_owned()
        }
    };
    let tool_error = alice
        .wait_for(&call("tool_error").await, &["completed"])
        .await;
    assert_eq!(tool_error["result"]["isError"], true);

    let failed = alice.wait_for(&call("fail").await, &["failed"]).await;
    assert_eq!(failed["error"]["code"], -32603);
    assert!(failed.get("result").is_none());

    let created = alice
        .modern_ok(
            "tools/call",
            json!({"name": "work", "arguments": {"ms": 60_000}}),
            true,
        )
        .await;
    let id = created["taskId"].as_str().unwrap();
    let ack = alice
        .modern_ok("tasks/cancel", json!({"taskId": id}), true)
        .await;
    assert_eq!(
        ack,
        json!({"resultType": "complete", "_meta": ack["_meta"]})
    );
    let cancelled = alice.wait_for(id, &["cancelled"]).await;
    assert!(cancelled.get("result").is_none() && cancelled.get("error").is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn questions_are_inlined_and_answered_with_tasks_update() {
    let alice = door().await;
    let created = alice
        .modern_ok("tools/call", json!({"name": "two_questions"}), true)
        .await;
    let id = created["taskId"].as_str().unwrap().to_owned();
    let mut asked = alice.wait_for(&id, &["input_required"]).await;
    while asked["inputRequests"].as_object().unwrap().len() < 2 {
        asked = alice.wait_for(&id, &["input_required"]).await;
    }
    let first = &asked["inputRequests"]["first"];
    assert_eq!(first["method"], "elicitation/create");
    assert_eq!(first["params"]["message"], "First?");

    // A partial answer, plus an unknown key that is ignored.
    let answers = json!({
        "first": {"action": "accept", "content": {"value": "one"}},
        "nobody-asked": {"action": "accept", "content": {}},
    });
    let ack = alice
        .modern_ok(
            "tasks/update",
            json!({"taskId": id, "inputResponses": answers}),
            true,
        )
        .await;
    assert_eq!(ack["resultType"], "complete");
    let after = alice
        .modern_ok("tasks/get", json!({"taskId": id}), true)
        .await;
    assert_eq!(after["status"], "input_required");
    assert_eq!(
        after["inputRequests"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["second"]
    );

    // Answering `first` again changes nothing; answering `second` ends the task.
    let answers = json!({
        "first": {"action": "accept", "content": {"value": "again"}},
        "second": {"action": "accept", "content": {"value": "two"}},
    });
    alice
        .modern_ok(
            "tasks/update",
            json!({"taskId": id, "inputResponses": answers}),
            true,
        )
        .await;
    let done = alice.wait_for(&id, &["completed"]).await;
    assert_eq!(done["result"]["content"][0]["text"], "\"one\" \"two\"");

    // A malformed answer to an open question is invalid params.
    let created = alice
        .modern_ok("tools/call", json!({"name": "ask"}), true)
        .await;
    let id = created["taskId"].as_str().unwrap().to_owned();
    alice.wait_for(&id, &["input_required"]).await;
    let bad = json!({"taskId": id, "inputResponses": {"go": {"action": "perhaps"}}});
    let response = alice
        .modern(3, "tasks/update", bad, true)
        .await
        .response()
        .await;
    assert_eq!(response["error"]["code"], -32602);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plain_call_that_asks_answers_with_input_required_rounds() {
    let alice = door().await;
    let first = alice
        .modern_ok("tools/call", json!({"name": "ask"}), false)
        .await;
    assert_eq!(first["resultType"], "input_required");
    let request = &first["inputRequests"]["go"];
    assert_eq!(request["method"], "elicitation/create");
    assert_eq!(
        request["params"]["requestedSchema"]["properties"]["value"]["type"],
        "boolean"
    );
    let state = first["requestState"].as_str().unwrap().to_owned();

    // A tampered state is refused.
    let tampered = json!({"name": "ask", "requestState": format!("{state}x"),
                          "inputResponses": {"go": {"action": "accept", "content": {"value": true}}}});
    let response = alice
        .modern(2, "tools/call", tampered, false)
        .await
        .response()
        .await;
    assert_eq!(response["error"]["code"], -32602);

    // Another principal cannot resume it either.
    let bob = Client::new(&alice.url, Some(BOB));
    let stolen = json!({"name": "ask", "requestState": state,
                        "inputResponses": {"go": {"action": "accept", "content": {"value": true}}}});
    let response = bob
        .modern(3, "tools/call", stolen.clone(), false)
        .await
        .response()
        .await;
    assert_eq!(response["error"]["code"], -32602);

    let done = alice.modern_ok("tools/call", stolen, false).await;
    assert_eq!(done["resultType"], "complete");
    assert_eq!(done["content"][0]["text"], "go = true");

    // Answers brought with a fresh call are used as the questions come.
    let ready = json!({"name": "ask", "inputResponses": {"go": {"action": "decline"}}});
    let done = alice.modern_ok("tools/call", ready, false).await;
    assert_eq!(done["content"][0]["text"], "go = null");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_question_the_client_cannot_be_sent_is_a_missing_capability() {
    let alice = door().await;
    let mut params = json!({"name": "sample", "_meta": {
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientCapabilities": {"elicitation": {}},
    }});
    let body = json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": params.take()});
    let headers = [
        ("mcp-protocol-version", MODERN),
        ("mcp-method", "tools/call"),
        ("mcp-name", "sample"),
    ];
    let mut answer = alice.post(&body, &headers).await;
    assert_eq!(answer.status, 400);
    let response = answer.response().await;
    assert_eq!(response["id"], 9);
    assert_eq!(response["error"]["code"], -32021);
    assert_eq!(
        response["error"]["data"]["requiredCapabilities"],
        json!({"sampling": {}})
    );

    // With the capability the question goes back to the client.
    let asked = alice
        .modern_ok("tools/call", json!({"name": "sample"}), false)
        .await;
    assert_eq!(
        asked["inputRequests"]["llm"]["method"],
        "sampling/createMessage"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_extension_is_required_where_the_spec_says() {
    let alice = door().await;
    let response = alice
        .modern(1, "tools/call", json!({"name": "only_task"}), false)
        .await;
    assert_eq!(response.status, 400);
    let mut response = response;
    let response = response.response().await;
    assert_eq!(response["error"]["code"], -32021);
    assert!(response["error"]["data"]["requiredCapabilities"]["extensions"]["io.modelcontextprotocol/tasks"].is_object());
    for method in ["tasks/get", "tasks/update", "tasks/cancel"] {
        let params =
            json!({"taskId": "task_00000000000000000000000000000000", "inputResponses": {}});
        let response = alice
            .modern(2, method, params, false)
            .await
            .response()
            .await;
        assert_eq!(response["error"]["code"], -32021, "{method}");
    }
    // A legacy `task` param neither errs nor makes a plain tool a task.
    let legacy = json!({"name": "echo", "arguments": {"text": "x"}, "task": {"ttl": 1000}});
    let result = alice.modern_ok("tools/call", legacy, true).await;
    assert_eq!(result["resultType"], "complete");
}

#[tokio::test(flavor = "multi_thread")]
async fn removed_and_unknown_methods_are_not_found() {
    let alice = door().await;
    for method in [
        "tasks/result",
        "tasks/list",
        "initialize",
        "ping",
        "nope/nothing",
    ] {
        let mut answer = alice.modern(1, method, json!({"taskId": "x"}), true).await;
        assert_eq!(answer.status, 404, "{method}");
        assert_eq!(answer.response().await["error"]["code"], -32601, "{method}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_and_foreign_tasks_read_the_same() {
    let alice = door().await;
    let created = alice
        .modern_ok(
            "tools/call",
            json!({"name": "work", "arguments": {"ms": 60_000}}),
            true,
        )
        .await;
    let id = created["taskId"].as_str().unwrap();
    let bob = Client::new(&alice.url, Some(BOB));
    let mut messages = Vec::new();
    for (client, task) in [
        (&bob, id),
        (&alice, "task_0123456789abcdef0123456789abcdef"),
        (&alice, "nope"),
    ] {
        for method in ["tasks/get", "tasks/cancel", "tasks/update"] {
            let params = json!({"taskId": task, "inputResponses": {}});
            let response = client
                .modern(1, method, params, true)
                .await
                .response()
                .await;
            assert_eq!(response["error"]["code"], -32602, "{method} {task}");
            let message = response["error"]["message"]
                .as_str()
                .unwrap()
                .replace(task, "<id>");
            messages.push(message);
        }
    }
    messages.dedup();
    assert_eq!(messages.len(), 1, "{messages:?}");
    // Bob's cancel did not touch alice's task.
    let got = alice
        .modern_ok("tasks/get", json!({"taskId": id}), true)
        .await;
    assert_eq!(got["status"], "working");
    alice
        .modern_ok("tasks/cancel", json!({"taskId": id}), true)
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn headers_must_match_the_body() {
    let alice = door().await;
    let meta = json!({
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientCapabilities": {},
    });
    let call = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
                      "params": {"name": "echo", "arguments": {"text": "x"}, "_meta": meta}});
    let cases: Vec<(Vec<(&str, &str)>, i64)> = vec![
        (
            vec![
                ("mcp-protocol-version", MODERN),
                ("mcp-method", "tools/list"),
                ("mcp-name", "echo"),
            ],
            -32020,
        ),
        (
            vec![("mcp-protocol-version", MODERN), ("mcp-name", "echo")],
            -32020,
        ),
        (
            vec![
                ("mcp-protocol-version", MODERN),
                ("mcp-method", "tools/call"),
                ("mcp-name", "other"),
            ],
            -32020,
        ),
        (
            vec![
                ("mcp-protocol-version", MODERN),
                ("mcp-method", "tools/call"),
            ],
            -32020,
        ),
        (
            vec![("mcp-method", "tools/call"), ("mcp-name", "echo")],
            -32020,
        ),
        (
            vec![
                ("mcp-protocol-version", "2025-11-25"),
                ("mcp-method", "tools/call"),
                ("mcp-name", "echo"),
            ],
            -32020,
        ),
    ];
    for (headers, code) in cases {
        let mut answer = alice.post(&call, &headers).await;
        assert_eq!(answer.status, 400, "{headers:?}");
        let response = answer.response().await;
        assert_eq!(response["error"]["code"], code, "{headers:?}");
        assert_eq!(response["id"], 7);
    }
    // Whitespace around a value is not part of it; base64 names are decoded.
    let ok = [
        ("mcp-protocol-version", MODERN),
        ("mcp-method", " tools/call "),
        ("mcp-name", "=?base64?ZWNobw==?="),
    ];
    let response = alice.post(&call, &ok).await.response().await;
    assert_eq!(response["result"]["content"][0]["text"], "x");

    // An unknown version is -32022, naming what is supported.
    let mut old = call.clone();
    old["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"] = json!("2099-01-01");
    let headers = [
        ("mcp-protocol-version", "2099-01-01"),
        ("mcp-method", "tools/call"),
        ("mcp-name", "echo"),
    ];
    let mut answer = alice.post(&old, &headers).await;
    assert_eq!(answer.status, 400);
    let response = answer.response().await;
    assert_eq!(response["error"]["code"], -32022);
    assert_eq!(
        response["error"]["data"],
        json!({"supported": [MODERN], "requested": "2099-01-01"})
    );

    // A 2026-07-28 request without its `_meta` is invalid params.
    let bare = json!({"jsonrpc": "2.0", "id": 8, "method": "tools/list", "params": {}});
    let mut answer = alice
        .post(
            &bare,
            &[
                ("mcp-protocol-version", MODERN),
                ("mcp-method", "tools/list"),
            ],
        )
        .await;
    assert_eq!(answer.status, 400);
    assert_eq!(answer.response().await["error"]["code"], -32602);
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_messages_and_missing_tokens_are_refused() {
    let url = serve(runtime(), config()).await;
    let anonymous = Client::new(&url, None);
    let answer = anonymous.modern(1, "tools/list", json!({}), false).await;
    assert_eq!(answer.status, 401);
    assert!(
        answer.headers["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    let wrong = Client::new(&url, Some("guess"));
    assert_eq!(
        wrong.modern(1, "tools/list", json!({}), false).await.status,
        401
    );

    let alice = Client::new(&url, Some(ALICE));
    let http = reqwest::Client::new();
    let response = http
        .post(&url)
        .header("authorization", format!("Bearer {ALICE}"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    assert_eq!(body["error"]["code"], -32700);
    assert_eq!(body["id"], Value::Null);

    for (body, id) in [
        (
            json!([{"jsonrpc": "2.0", "id": 1, "method": "ping"}]),
            Value::Null,
        ),
        (
            json!({"jsonrpc": "2.0", "id": 4, "method": "tools/list", "params": [1]}),
            json!(4),
        ),
        (json!({"id": 5, "method": "tools/list"}), json!(5)),
    ] {
        let mut answer = alice.post(&body, &[]).await;
        assert_eq!(answer.status, 400, "{body}");
        let response = answer.response().await;
        assert_eq!(response["error"]["code"], -32600, "{body}");
        assert_eq!(response["id"], id, "{body}");
    }
    // Unknown tools and malformed params are invalid params.
    for params in [
        json!({"name": "nope"}),
        json!({}),
        json!({"name": "echo", "arguments": [1]}),
    ] {
        let response = alice
            .modern(1, "tools/call", params.clone(), true)
            .await
            .response()
            .await;
        assert_eq!(response["error"]["code"], -32602, "{params}");
    }
    // Stateless: no GET stream, no sessions to delete.
    let response = http
        .get(&url)
        .header("authorization", format!("Bearer {ALICE}"))
        .header("mcp-protocol-version", MODERN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
}

#[tokio::test(flavor = "multi_thread")]
async fn progress_travels_on_the_calls_stream_when_asked_for() {
    let alice = door().await;
    // modern() sets `_meta` itself, so this request is built by hand.
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
        "name": "work", "arguments": {"ms": 1200},
        "_meta": {
            "progressToken": "p1",
            "io.modelcontextprotocol/protocolVersion": MODERN,
            "io.modelcontextprotocol/clientCapabilities": {},
        }
    }});
    let headers = [
        ("mcp-protocol-version", MODERN),
        ("mcp-method", "tools/call"),
        ("mcp-name", "work"),
    ];
    let messages = alice.post(&body, &headers).await.all().await;
    let progress: Vec<&Value> = messages
        .iter()
        .filter(|message| message["method"] == "notifications/progress")
        .collect();
    assert!(!progress.is_empty(), "{messages:?}");
    assert!(
        progress
            .iter()
            .all(|note| note["params"]["progressToken"] == "p1")
    );
    let last = messages.last().unwrap();
    assert_eq!(
        last["result"]["structuredContent"],
        json!({"slept_ms": 1200})
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_oversize_body_gets_a_json_rpc_error_not_plain_text() {
    let url = serve(runtime(), config()).await;
    // Over axum's default 2 MiB body limit.
    let padding = "x".repeat(3 << 20);
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{{"pad":"{padding}"}}}}"#
    );
    let response = reqwest::Client::new()
        .post(&url)
        .header("authorization", format!("Bearer {ALICE}"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    let answer: Value = response.json().await.expect("a JSON-RPC error body");
    assert_eq!(answer["jsonrpc"], "2.0");
    assert_eq!(answer["error"]["code"], -32600, "{answer}");
    assert!(answer["id"].is_null(), "{answer}");
}
