//! Resumable streams on `/mcp`: every SSE event has an id, and a 2025-11-25 client that lost a
//! stream gets the rest of it with `GET` and `Last-Event-ID`.

mod common;

use common::{ALICE, Client, Session, config, runtime, serve};
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn a_dropped_call_stream_resumes_with_what_was_missed_then_live() {
    let url = serve(runtime(), config()).await;
    let session = Session::open(&Client::new(&url, Some(ALICE)), json!({"elicitation": {}})).await;
    let mut call = session
        .request(7, "tools/call", json!({"name": "ask", "arguments": {}}))
        .await;
    let asked = call.next().await.unwrap();
    assert_eq!(asked["method"], "elicitation/create");
    let seen = call.last_event_id.clone().expect("the events carry ids");
    // The connection drops; the call goes on. The answer arrives meanwhile.
    drop(call);
    let answer = json!({"jsonrpc": "2.0", "id": asked["id"],
        "result": {"action": "accept", "content": {"value": true}}});
    assert_eq!(session.send(&answer).await.status, 202);

    let mut resumed = session.resume(&seen).await;
    assert_eq!(resumed.status, 200);
    let messages = resumed.all().await;
    // Nothing already seen comes again, and the call's response comes last.
    assert!(
        messages
            .iter()
            .all(|message| message["method"] != "elicitation/create")
    );
    let last = messages.last().expect("the rest of the stream");
    assert_eq!(last["id"], 7);
    assert_eq!(last["result"]["content"][0]["text"], "go = true");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stream_the_server_closes_is_resumed_from_its_priming_event() {
    // The server closes call streams almost at once (SEP-1699 polling).
    let config = longrun_mcp::Config {
        stream_close_ms: 1,
        ..config()
    };
    let url = serve(runtime(), config).await;
    let session = Session::open(&Client::new(&url, Some(ALICE)), json!({})).await;
    let mut call = session
        .request(
            3,
            "tools/call",
            json!({"name": "work", "arguments": {"ms": 1500}}),
        )
        .await;
    let mut response = None;
    let mut last = None;
    // Follow the stream across as many closes as it takes, as a client would.
    for _ in 0..10_000 {
        while let Some(message) = call.next().await {
            if message["id"] == 3 {
                response = Some(message);
            }
        }
        last = call.last_event_id.clone().or(last);
        if response.is_some() {
            break;
        }
        let id = last.clone().expect("a closed stream has given an event id");
        call = session.resume(&id).await;
        assert_eq!(call.status, 200);
    }
    let response = response.expect("the response after resuming");
    assert_eq!(response["result"]["structuredContent"]["slept_ms"], 1500);
    // An id no stream has is not found.
    assert_eq!(session.resume("999-1").await.status, 404);
}
