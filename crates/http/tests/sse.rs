//! Event streams over a real socket: resuming with `Last-Event-ID`, many subscribers, a slow
//! one, the all-tasks stream's filtering and lag notice, and shutdown.

#![allow(
    clippy::disallowed_methods,
    clippy::disallowed_macros,
    reason = "test code may spawn, print, sleep and read real time: the test's end stops all of it"
)]

mod common;

use std::{net::SocketAddr, pin::Pin, time::Duration};

use axum::body::Bytes;

use common::{ALICE, App, BOB, Message, SseReader, seqs};
use futures_util::Stream;
use longrun::Options;
use longrun_http::Limits;
use serde_json::{Value, json};
use tokio::task::JoinSet;

/// A response body, read in chunks.
type Body = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

/// Every test is bounded: a hang fails instead of stalling the suite. Not a speed assertion.
const HANG: Duration = Duration::from_secs(120);

struct Server {
    app: App,
    addr: SocketAddr,
    client: reqwest::Client,
}

impl Server {
    async fn start(options: Options, limits: Limits) -> Self {
        let app = App::with(options, limits);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(axum::serve(listener, app.router.clone()).into_future());
        Self {
            app,
            addr,
            client: reqwest::Client::new(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    async fn post(&self, token: &str, path: &str, body: Value) -> Value {
        let response = self
            .client
            .post(self.url(path))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "{}", response.status());
        serde_json::from_slice(&response.bytes().await.unwrap()).unwrap()
    }

    async fn start_task(&self, token: &str, body: Value) -> String {
        let task = self.post(token, "/v1/tasks", body).await;
        task["id"].as_str().unwrap().to_owned()
    }

    async fn answer(&self, id: &str, key: &str, value: Value) {
        self.post(ALICE, &format!("/v1/tasks/{id}/answers/{key}"), value)
            .await;
    }

    /// Opens an event stream; `last` sets `Last-Event-ID`.
    async fn stream(
        &self,
        token: &str,
        path: &str,
        last: Option<u64>,
    ) -> (reqwest::StatusCode, SseReader<Body>) {
        let mut request = self.client.get(self.url(path)).bearer_auth(token);
        if let Some(last) = last {
            request = request.header("last-event-id", last.to_string());
        }
        let response = request.send().await.unwrap();
        (
            response.status(),
            SseReader::new(Box::pin(response.bytes_stream())),
        )
    }
}

/// Reads messages until one satisfies `stop`; returns all read, that one included.
async fn read_until(reader: &mut SseReader<Body>, stop: impl Fn(&Message) -> bool) -> Vec<Message> {
    let mut messages = Vec::new();
    while let Some(message) = reader.next().await {
        let done = stop(&message);
        messages.push(message);
        if done {
            return messages;
        }
    }
    panic!("the stream ended early: {messages:?}");
}

fn asks(message: &Message) -> bool {
    message.json()["change"]["type"] == "input_requested"
}

fn is_contiguous_from(seqs: &[u64], first: u64) -> bool {
    seqs.iter().copied().eq(first..first + seqs.len() as u64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_event_id_resumes_without_gaps_or_repeats() {
    tokio::time::timeout(HANG, async {
        let server = Server::start(Options::default(), Limits::default()).await;
        let id = server
            .start_task(
                ALICE,
                json!({"kind": "steps", "input": {"before": 5, "after": 5}}),
            )
            .await;
        let path = format!("/v1/tasks/{id}/events");

        // Read up to the question, then hang up.
        let (status, mut reader) = server.stream(ALICE, &path, None).await;
        assert_eq!(status, 200);
        let first = read_until(&mut reader, asks).await;
        drop(reader);
        let last = first
            .last()
            .unwrap()
            .id
            .as_deref()
            .unwrap()
            .parse::<u64>()
            .unwrap();
        assert_eq!(seqs(&first), (1..=last).collect::<Vec<_>>());

        // Events happen while nobody listens.
        server.answer(&id, "go", json!(true)).await;
        server.app.wait(&id).await;

        let (status, mut reader) = server.stream(ALICE, &path, Some(last)).await;
        assert_eq!(status, 200);
        let rest = reader.rest().await;
        let rest_seqs = seqs(&rest);
        assert!(is_contiguous_from(&rest_seqs, last + 1), "{rest_seqs:?}");
        assert_eq!(rest.last().unwrap().json()["change"]["type"], "ended");
        let end = *rest_seqs.last().unwrap();

        // Resuming from the middle of what was already seen gives the same events again.
        let (_, mut reader) = server.stream(ALICE, &path, Some(2)).await;
        let again = reader.rest().await;
        assert_eq!(seqs(&again), (3..=end).collect::<Vec<_>>());
        assert_eq!(again[(last - 2) as usize..], rest[..]);

        // After the end: 204, no stream.
        let (status, mut reader) = server.stream(ALICE, &path, Some(end)).await;
        assert_eq!(status, 204);
        assert!(reader.next().await.is_none());
    })
    .await
    .expect("hung");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_subscribers_each_get_every_event() {
    tokio::time::timeout(HANG, async {
        let server = Server::start(Options::default(), Limits::default()).await;
        let id = server
            .start_task(
                ALICE,
                json!({"kind": "steps", "input": {"before": 3, "after": 20}}),
            )
            .await;
        let path = format!("/v1/tasks/{id}/events");
        let mut readers = JoinSet::new();
        let (ready, mut all_ready) = tokio::sync::mpsc::channel(50);
        for _ in 0..50 {
            let (status, mut reader) = server.stream(ALICE, &path, None).await;
            assert_eq!(status, 200);
            let ready = ready.clone();
            readers.spawn(async move {
                let mut messages = read_until(&mut reader, asks).await;
                ready.send(()).await.unwrap();
                messages.extend(reader.rest().await);
                messages
            });
        }
        // Every subscriber has seen the question: now let the task go on.
        for _ in 0..50 {
            all_ready.recv().await.unwrap();
        }
        server.answer(&id, "go", json!(true)).await;
        let ended = server.app.wait(&id).await;
        let last = ended.last_seq().as_u64();

        let mut received = Vec::new();
        while let Some(messages) = readers.join_next().await {
            received.push(messages.unwrap());
        }
        assert_eq!(received.len(), 50);
        for messages in &received {
            assert_eq!(seqs(messages), (1..=last).collect::<Vec<_>>());
            assert_eq!(messages, &received[0]);
        }
    })
    .await
    .expect("hung");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_subscriber_does_not_stall_the_others() {
    tokio::time::timeout(HANG, async {
        // Small live buffers, and far more event bytes than the socket buffers hold, so the slow
        // subscriber's server side really is blocked and really falls behind.
        let options = Options {
            subscriber_buffer: 8,
            ..Options::default()
        };
        let server = Server::start(options, Limits::default()).await;
        let id = server
            .start_task(
                ALICE,
                json!({"kind": "steps", "input": {"before": 0, "after": 6000, "size": 4000}}),
            )
            .await;
        let path = format!("/v1/tasks/{id}/events");

        let (_, mut slow) = server.stream(ALICE, &path, None).await;
        let slow_start = read_until(&mut slow, asks).await;

        let mut fast = JoinSet::new();
        for _ in 0..3 {
            let (_, mut reader) = server.stream(ALICE, &path, None).await;
            fast.spawn(async move { reader.rest().await });
        }
        server.answer(&id, "go", json!(true)).await;
        let last = server.app.wait(&id).await.last_seq().as_u64();

        // The fast ones finish while the slow one has not read a byte more.
        while let Some(messages) = fast.join_next().await {
            assert_eq!(seqs(&messages.unwrap()), (1..=last).collect::<Vec<_>>());
        }
        // The slow one then gets everything it missed, in order, once.
        let mut all = slow_start;
        all.extend(slow.rest().await);
        assert_eq!(seqs(&all), (1..=last).collect::<Vec<_>>());
    })
    .await
    .expect("hung");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_all_tasks_stream_shows_only_the_callers_tasks() {
    tokio::time::timeout(HANG, async {
        let server = Server::start(Options::default(), Limits::default()).await;
        let (status, mut bobs) = server.stream(BOB, "/v1/events", None).await;
        assert_eq!(status, 200);
        let (_, mut bobs_session) = server.stream(BOB, "/v1/events?session=s2", None).await;
        let (_, mut alices) = server.stream(ALICE, "/v1/events?kind=fail", None).await;

        let alice_task = server
            .start_task(
                ALICE,
                json!({"kind": "complete", "input": {"n": 1}, "wait_ms": 30000, "session": "s2"}),
            )
            .await;
        let alice_fail = server
            .start_task(
                ALICE,
                json!({"kind": "fail", "input": {}, "wait_ms": 30000}),
            )
            .await;
        let bob_task = server
            .start_task(
                BOB,
                json!({"kind": "complete", "input": {"n": 2}, "wait_ms": 30000}),
            )
            .await;
        let bob_session_task = server
            .start_task(
                BOB,
                json!({"kind": "complete", "input": {"n": 3}, "wait_ms": 30000, "session": "s2"}),
            )
            .await;

        let ends = |task: &str| {
            let task = task.to_owned();
            move |m: &Message| {
                m.json()["task"] == json!(task) && m.json()["change"]["type"] == "ended"
            }
        };
        let seen = read_until(&mut bobs, ends(&bob_session_task)).await;
        let tasks: Vec<Value> = seen.iter().map(|m| m.json()["task"].clone()).collect();
        assert!(
            tasks
                .iter()
                .all(|t| *t == json!(bob_task) || *t == json!(bob_session_task))
        );
        let bob_seqs: Vec<u64> = seen
            .iter()
            .filter(|m| m.json()["task"] == json!(bob_task))
            .map(|m| m.json()["seq"].as_u64().unwrap())
            .collect();
        assert!(is_contiguous_from(&bob_seqs, 1), "{bob_seqs:?}");
        assert!(seen.iter().all(|m| m.id.is_none() && m.event.is_none()));

        // Filtered by session: only bob's task in bob's `s2`, not alice's `s2`.
        let seen = read_until(&mut bobs_session, ends(&bob_session_task)).await;
        assert!(
            seen.iter()
                .all(|m| m.json()["task"] == json!(bob_session_task))
        );
        // Filtered by kind.
        let seen = read_until(&mut alices, ends(&alice_fail)).await;
        assert!(seen.iter().all(|m| m.json()["task"] == json!(alice_fail)));
        assert_ne!(alice_task, alice_fail);
    })
    .await
    .expect("hung");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_all_tasks_stream_says_when_it_lagged() {
    tokio::time::timeout(HANG, async {
        let options = Options {
            all_subscriber_buffer: 16,
            ..Options::default()
        };
        let server = Server::start(options, Limits::default()).await;
        let (_, mut reader) = server.stream(ALICE, "/v1/events", None).await;
        let id = server
            .start_task(
                ALICE,
                json!({"kind": "steps", "input": {"before": 0, "after": 6000, "size": 4000}}),
            )
            .await;
        // Not reading: the server side blocks on the socket and the stream falls behind.
        server.answer(&id, "go", json!(true)).await;
        server.app.wait(&id).await;

        let mut lagged = None;
        while let Some(message) = reader.next().await {
            if message.event.as_deref() == Some("lagged") {
                lagged = Some(message);
                break;
            }
        }
        let lagged = lagged.expect("a lagged message");
        assert!(lagged.json()["missed"].as_u64().unwrap() > 0);
        assert!(
            lagged.json()["message"]
                .as_str()
                .unwrap()
                .contains("re-read")
        );
    })
    .await
    .expect("hung");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_open_streams() {
    tokio::time::timeout(HANG, async {
        let server = Server::start(Options::default(), Limits::default()).await;
        let id = server
            .start_task(ALICE, json!({"kind": "sleep", "input": null}))
            .await;
        let (_, mut task) = server
            .stream(ALICE, &format!("/v1/tasks/{id}/events"), None)
            .await;
        let (_, mut all) = server.stream(ALICE, "/v1/events", None).await;
        assert_eq!(seqs(&read_until(&mut task, |_| true).await), [1]);
        server.app.api.surface().shutdown();
        // Both bodies end, though the task runs on.
        let _ = task.rest().await;
        let _ = all.rest().await;
        let health = server
            .client
            .get(server.url("/healthz"))
            .send()
            .await
            .unwrap();
        assert_eq!(health.status(), 503);
        server
            .app
            .runtime
            .cancel(id.parse().unwrap())
            .await
            .unwrap();
    })
    .await
    .expect("hung");
}
