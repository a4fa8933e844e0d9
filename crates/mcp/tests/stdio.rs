//! The stdio transport over an in-memory duplex: both generations on one connection, a
//! question relayed as a request and answered on stdin, malformed lines, and the end of input.

#![allow(
    clippy::disallowed_methods,
    clippy::disallowed_macros,
    reason = "test code may spawn, print, sleep and read real time: the test's end stops all of it"
)]

mod common;

use std::time::Duration;

use longrun_surface::Principal;
use serde_json::{Value, json};
use tokio::io::{
    AsyncBufReadExt, AsyncWriteExt, BufReader, DuplexStream, Lines, ReadHalf, WriteHalf,
};

struct Peer {
    lines: Lines<BufReader<ReadHalf<DuplexStream>>>,
    input: WriteHalf<DuplexStream>,
}

impl Peer {
    async fn send(&mut self, message: &Value) {
        let line = format!("{message}\n");
        self.input.write_all(line.as_bytes()).await.unwrap();
    }

    async fn send_raw(&mut self, line: &str) {
        self.input
            .write_all(format!("{line}\n").as_bytes())
            .await
            .unwrap();
    }

    async fn receive(&mut self) -> Value {
        let line = tokio::time::timeout(Duration::from_secs(10), self.lines.next_line())
            .await
            .expect("no line in time")
            .unwrap()
            .expect("output ended");
        serde_json::from_str(&line).unwrap_or_else(|_| panic!("not JSON on stdout: {line}"))
    }

    /// The response to `id`, skipping notifications.
    async fn response(&mut self, id: u64) -> Value {
        loop {
            let message = self.receive().await;
            if message["id"] == id && message.get("method").is_none() {
                return message;
            }
        }
    }
}

fn start() -> (
    Peer,
    tokio::task::JoinHandle<std::io::Result<()>>,
    longrun::Runtime,
) {
    let (client, server) = tokio::io::duplex(1 << 16);
    let (server_in, server_out) = tokio::io::split(server);
    let runtime = common::runtime();
    let door = tokio::spawn(longrun_mcp::serve_stdio(
        runtime.clone(),
        Principal::from("local"),
        common::config(),
        server_in,
        server_out,
    ));
    let (output, input) = tokio::io::split(client);
    let peer = Peer {
        lines: BufReader::new(output).lines(),
        input,
    };
    (peer, door, runtime)
}

fn meta(tasks: bool) -> Value {
    let capabilities = if tasks {
        json!({"extensions": {"io.modelcontextprotocol/tasks": {}}})
    } else {
        json!({})
    };
    json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": capabilities,
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn both_generations_share_one_connection() {
    let (mut peer, door, _runtime) = start();
    peer.send(
        &json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
        "name": "echo", "arguments": {"text": "modern"}, "_meta": meta(false)}}),
    )
    .await;
    assert_eq!(
        peer.response(1).await["result"]["content"][0]["text"],
        "modern"
    );

    // Before initialize, only ping works in the session generation.
    peer.send(&json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}))
        .await;
    assert_eq!(peer.response(2).await["error"]["code"], -32600);
    peer.send(&json!({"jsonrpc": "2.0", "id": 3, "method": "ping"}))
        .await;
    assert_eq!(peer.response(3).await["result"], json!({}));

    peer.send(
        &json!({"jsonrpc": "2.0", "id": 4, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {"elicitation": {}},
        "clientInfo": {"name": "t", "version": "0"}}}),
    )
    .await;
    assert!(peer.response(4).await["result"]["capabilities"]["tasks"].is_object());
    peer.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
        .await;

    // A task with a question: the question arrives as a request while tasks/result waits.
    peer.send(&json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call",
                      "params": {"name": "ask", "task": {"ttl": 1000}}}))
        .await;
    let created = peer.response(5).await;
    let id = created["result"]["task"]["taskId"]
        .as_str()
        .unwrap()
        .to_owned();
    peer.send(
        &json!({"jsonrpc": "2.0", "id": 6, "method": "tasks/result", "params": {"taskId": id}}),
    )
    .await;
    let request = loop {
        let message = peer.receive().await;
        if message["method"] == "elicitation/create" {
            break message;
        }
    };
    assert_eq!(
        request["params"]["_meta"]["io.modelcontextprotocol/related-task"]["taskId"],
        id.as_str()
    );
    // Other requests are served while tasks/result waits.
    peer.send(&json!({"jsonrpc": "2.0", "id": 7, "method": "tasks/get", "params": {"taskId": id}}))
        .await;
    assert_eq!(peer.response(7).await["result"]["status"], "input_required");
    peer.send(&json!({"jsonrpc": "2.0", "id": request["id"],
                      "result": {"action": "accept", "content": {"value": false}}}))
        .await;
    let result = peer.response(6).await;
    assert_eq!(result["result"]["content"][0]["text"], "go = false");

    // The 2026-07-28 task surface on the same connection.
    peer.send(
        &json!({"jsonrpc": "2.0", "id": 8, "method": "tools/call", "params": {
        "name": "work", "arguments": {"ms": 10}, "_meta": meta(true)}}),
    )
    .await;
    let created = peer.response(8).await;
    assert_eq!(created["result"]["resultType"], "task");

    drop(peer);
    door.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_lines_get_errors_and_the_end_of_input_stops_the_door() {
    let (mut peer, door, runtime) = start();
    peer.send_raw("{this is not json").await;
    let error = peer.receive().await;
    assert_eq!(error["error"]["code"], -32700);
    assert_eq!(error["id"], Value::Null);
    peer.send_raw(r#"{"jsonrpc": "2.0", "id": 1, "method": 3}"#)
        .await;
    assert_eq!(peer.receive().await["error"]["code"], -32600);
    peer.send(
        &json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {
        "_meta": {"io.modelcontextprotocol/protocolVersion": "1999-01-01",
                  "io.modelcontextprotocol/clientCapabilities": {}}}}),
    )
    .await;
    assert_eq!(peer.response(2).await["error"]["code"], -32022);

    // A plain call still running when input ends is stopped with it.
    peer.send(
        &json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {
        "name": "work", "arguments": {"ms": 60_000}, "_meta": meta(false)}}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let Peer { lines, mut input } = peer;
    // A split half does not close the stream when dropped: shut the writing side down.
    input.shutdown().await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), door)
        .await
        .expect("the door did not stop")
        .unwrap()
        .unwrap();
    drop(lines);
    let filter = longrun::task::Filter {
        kind: Some("work".into()),
        ..Default::default()
    };
    for _ in 0..200 {
        let page = runtime.list(filter.clone(), None, 10).await.unwrap();
        if page
            .tasks
            .iter()
            .all(|task| task.status() == longrun::task::Status::Cancelled)
        {
            assert_eq!(page.tasks.len(), 1);
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the call's task was not cancelled when its client went away");
}
