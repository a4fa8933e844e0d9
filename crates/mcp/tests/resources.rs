//! Task artifacts as resources: the template `longrun://tasks/{id}/artifacts/{artifact}`,
//! `resources/read` for the caller's own tasks only, and `notifications/resources/updated`
//! while the artifact streams (a 2026-07-28 listen stream, a 2025-11-25 subscription).

mod common;

use common::{ALICE, BOB, Client, Session, config, runtime, serve};
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn artifacts_are_read_and_followed_by_their_owner_only() {
    let url = serve(runtime(), config()).await;
    let (alice, bob) = (Client::new(&url, Some(ALICE)), Client::new(&url, Some(BOB)));
    let templates = alice
        .modern_ok("resources/templates/list", json!({}), false)
        .await;
    assert_eq!(
        templates["resourceTemplates"][0]["uriTemplate"],
        "longrun://tasks/{id}/artifacts/{artifact}"
    );
    let created = alice
        .modern_ok(
            "tools/call",
            json!({"name": "report", "arguments": {}}),
            true,
        )
        .await;
    let id = created["taskId"].as_str().unwrap().to_owned();
    alice.wait_for(&id, &["input_required"]).await;
    let uri = format!("longrun://tasks/{id}/artifacts/report");

    let read = alice
        .modern_ok("resources/read", json!({"uri": uri}), false)
        .await;
    assert_eq!(
        read["contents"],
        json!([{"uri": uri, "mimeType": "text/plain", "text": "part one"}])
    );
    assert_eq!(read["cacheScope"], "private");
    // Another principal's artifact reads exactly like one that does not exist.
    for (client, uri) in [
        (&bob, uri.clone()),
        (&alice, format!("longrun://tasks/{id}/artifacts/nothing")),
    ] {
        let refused = client
            .modern(2, "resources/read", json!({"uri": uri}), false)
            .await
            .response()
            .await;
        assert_eq!(refused["error"]["code"], -32602, "{refused}");
        assert_eq!(refused["error"]["data"]["uri"], uri.as_str());
    }

    let mut stream = alice
        .modern(
            4,
            "subscriptions/listen",
            json!({"notifications": {"resourceSubscriptions": [uri, "test://elsewhere"]}}),
            false,
        )
        .await;
    let ack = stream.next().await.unwrap();
    assert_eq!(
        ack["params"]["notifications"],
        json!({"resourceSubscriptions": [uri]})
    );
    // Bob's subscription to it is not acknowledged.
    let mut foreign = bob
        .modern(
            4,
            "subscriptions/listen",
            json!({"notifications": {"resourceSubscriptions": [uri]}}),
            false,
        )
        .await;
    let ack = foreign.next().await.unwrap();
    assert_eq!(
        ack["params"]["notifications"],
        json!({"resourceSubscriptions": []})
    );

    alice
        .modern_ok(
            "tasks/update",
            json!({"taskId": id, "inputResponses": {"more": {"action": "accept", "content": {"value": true}}}}),
            true,
        )
        .await;
    let updated = stream.next().await.unwrap();
    assert_eq!(updated["method"], "notifications/resources/updated");
    assert_eq!(updated["params"]["uri"], uri.as_str());
    assert_eq!(
        updated["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"],
        4
    );
    alice.wait_for(&id, &["completed"]).await;
    let read = alice
        .modern_ok("resources/read", json!({"uri": uri}), false)
        .await;
    assert_eq!(read["contents"][1]["mimeType"], "application/json");
    assert_eq!(read["contents"][1]["text"], r#"{"rows":2}"#);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_session_subscription_notifies_on_its_get_stream() {
    let url = serve(runtime(), config()).await;
    let session = Session::open(&Client::new(&url, Some(ALICE)), json!({})).await;
    let created = session
        .ok(
            "tools/call",
            json!({"name": "report", "arguments": {}, "task": {}}),
        )
        .await;
    let id = created["task"]["taskId"].as_str().unwrap().to_owned();
    let uri = format!("longrun://tasks/{id}/artifacts/report");
    let mut stream = session
        .client
        .get(&[
            ("mcp-session-id", session.id.as_str()),
            ("mcp-protocol-version", "2025-11-25"),
        ])
        .await;
    assert_eq!(
        session.ok("resources/subscribe", json!({"uri": uri})).await,
        json!({})
    );
    // Any other URI is accepted too, and never notified.
    session
        .ok(
            "resources/subscribe",
            json!({"uri": "test://watched-resource"}),
        )
        .await;
    // Answering the question lets the second chunk come.
    for _ in 0..400 {
        let task = session.ok("tasks/get", json!({"taskId": id})).await;
        if task["status"] == "input_required" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    answer_more(&session.client, &id).await;
    loop {
        let message = stream.next().await.expect("notifications");
        if message["method"] == "notifications/resources/updated" {
            assert_eq!(message["params"]["uri"], uri.as_str());
            break;
        }
    }
    assert_eq!(
        session
            .ok("resources/unsubscribe", json!({"uri": uri}))
            .await,
        json!({})
    );
}

/// Answers the `report` task's question over 2026-07-28 (the same task, another door).
async fn answer_more(client: &Client, id: &str) {
    client
        .modern_ok(
            "tasks/update",
            json!({"taskId": id, "inputResponses": {"more": {"action": "accept", "content": {"value": true}}}}),
            true,
        )
        .await;
}
