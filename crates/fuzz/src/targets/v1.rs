//! `/v1`: bodies, paths and query strings of the HTTP API, on a runtime with a few kinds and
//! two live tasks of `alice` (one ended, one waiting for an answer).

use std::{sync::Arc, time::Duration};

use axum::Router;
use futures_util::{FutureExt, future::BoxFuture};
use longrun::{Context, KindSpec, Options, Runtime, TaskError};
use longrun_http::{Api, Limits, Surface};
use serde_json::{Value, json};

use super::{ALICE, BOB, auth, fill, task_id};
use crate::{
    case::{HttpCase, Input},
    engine::Door,
    exchange,
    mutate::Mutator,
    request::{self, Seed},
    shape,
};

pub(crate) struct V1 {
    runtime: Runtime,
    api: Api,
    router: Router,
    seeds: Vec<Seed>,
    ids: Vec<(&'static str, String)>,
}

pub(crate) async fn open() -> Arc<dyn Door> {
    let runtime = kinds();
    let limits = Limits {
        max_wait: Duration::from_millis(200),
        ..Limits::default()
    };
    let api = Api::new(Surface::new(runtime.clone(), auth(), limits));
    let router = longrun_http::router(api.clone());
    let mut door = V1 {
        runtime,
        api,
        router,
        seeds: seeds(),
        ids: Vec::new(),
    };
    let ended = door
        .start(json!({"kind": "complete", "input": {"n": 1}, "wait_ms": 200}))
        .await;
    let asking = door
        .start(json!({"kind": "ask", "input": null, "session": "chat"}))
        .await;
    door.ids = vec![("{task}", ended), ("{asking}", asking)];
    Arc::new(door)
}

impl V1 {
    /// Starts a task as `alice` through the door; its id.
    async fn start(&self, body: Value) -> String {
        let case = HttpCase {
            method: "POST".into(),
            uri: "/v1/tasks".into(),
            headers: vec![
                ("authorization".into(), format!("Bearer {ALICE}")),
                ("content-type".into(), "application/json".into()),
            ],
            body: body.to_string().into_bytes(),
        };
        let reply = exchange::send(&self.router, &case, str::to_owned).await;
        reply
            .ok()
            .flatten()
            .and_then(|reply| serde_json::from_slice(&reply.body).ok())
            .and_then(|body: Value| task_id(&body))
            .unwrap_or_else(|| "task_00000000000000000000000000000001".into())
    }
}

impl Door for V1 {
    fn dictionary(&self) -> Vec<Value> {
        request::dictionary(&self.seeds)
    }

    fn generate(&self, mutator: &mut Mutator) -> Input {
        Input::http(request::generate(&self.seeds, mutator, |_, _, _| {}))
    }

    fn run(self: Arc<Self>, input: Input) -> BoxFuture<'static, Result<(), String>> {
        async move {
            let Input::Http(case) = input else {
                return Ok(());
            };
            let reply = exchange::send(&self.router, &case, |text| fill(text, &self.ids)).await?;
            reply.map_or(Ok(()), |reply| shape::v1(&reply))
        }
        .boxed()
    }

    fn close(&self) -> BoxFuture<'static, ()> {
        let (runtime, api) = (self.runtime.clone(), self.api.clone());
        async move {
            api.surface().shutdown();
            runtime.shutdown().await;
        }
        .boxed()
    }
}

/// A runtime with kinds that end by themselves: quickly, by a question's time-out or by their
/// deadline.
fn kinds() -> Runtime {
    let runtime = Runtime::new(Options::default());
    let mut complete = KindSpec::new("complete").description("Doubles n.");
    complete.input_schema = json!({
        "type": "object",
        "properties": {"n": {"type": "integer", "minimum": 0}},
        "required": ["n"],
        "additionalProperties": false,
    });
    let registered =
        [
            runtime.register(complete, |_ctx: Context, input: Value| async move {
                let n = input["n"].as_u64().ok_or("n is not a number")?;
                Ok::<_, TaskError>(json!(n.saturating_mul(2)))
            }),
            runtime.register(KindSpec::new("ask"), |ctx: Context, _: Value| async move {
                let question = json!({"question": "go ahead?"});
                Ok::<_, TaskError>(ctx.ask("approve", question, Duration::from_secs(5)).await?)
            }),
            runtime.register(
                KindSpec::new("fail"),
                |_ctx: Context, _: Value| async move {
                    Err::<(), _>(TaskError::new("boom", "it broke"))
                },
            ),
            runtime.register(
                KindSpec::new("sleep")
                    .deadline(Duration::from_millis(500))
                    .cancel_grace(Duration::from_millis(100)),
                |ctx: Context, _: Value| async move {
                    ctx.progress(None, "sleeping").await?;
                    ctx.cancelled().await;
                    Err::<(), _>(TaskError::new("stopped", "saw the cancellation"))
                },
            ),
            runtime.register(
                KindSpec::new("notify"),
                |ctx: Context, _: Value| async move {
                    ctx.notify_agent("hello, agent", true).await?;
                    Ok::<_, TaskError>(json!("notified"))
                },
            ),
        ];
    for result in registered {
        result.expect("the fuzz kinds have distinct names");
    }
    runtime
}

/// The API's requests, as its tests send them.
fn seeds() -> Vec<Seed> {
    let alice = format!("Bearer {ALICE}");
    let bob = format!("Bearer {BOB}");
    let as_alice = |seed: Seed| seed.header("authorization", alice.clone());
    let create = |body: Value| as_alice(Seed::new("POST", "/v1/tasks").body(body));
    vec![
        create(json!({"kind": "complete", "input": {"n": 21}, "wait_ms": 100})),
        create(json!({"kind": "complete", "input": {"n": 2}})),
        create(json!({"kind": "fail", "input": {}, "wait_ms": 100})),
        create(json!({"kind": "sleep", "input": null, "wait_ms": 20, "deadline_ms": 50})),
        create(json!({"kind": "ask", "input": null, "session": "chat", "ttl_ms": 60000})),
        create(json!({"kind": "notify", "input": {}, "session": "chat",
                      "labels": {"env": "prod", "team": "a"}})),
        as_alice(Seed::new("GET", "/v1/tasks/{task}")),
        as_alice(Seed::new("GET", "/v1/tasks/{asking}")),
        Seed::new("GET", "/v1/tasks/{task}").header("authorization", bob),
        Seed::new("GET", "/v1/tasks/{task}"),
        as_alice(Seed::new("GET", "/v1/tasks/not-a-task")),
        as_alice(Seed::new("POST", "/v1/tasks/task_123/cancel")),
        as_alice(Seed::new("POST", "/v1/tasks/{asking}/cancel")),
        as_alice(Seed::new("POST", "/v1/tasks/{task}/cancel")),
        as_alice(Seed::new("POST", "/v1/tasks/{asking}/answers/approve").body(json!(true))),
        as_alice(Seed::new("POST", "/v1/tasks/{asking}/answers/later").body(json!(1))),
        as_alice(Seed::new("POST", "/v1/tasks/{task}/answers/go").body(json!({"a": [1]}))),
        as_alice(Seed::new("GET", "/v1/tasks/{task}/events")),
        as_alice(Seed::new("GET", "/v1/tasks/{task}/events?after=1")),
        as_alice(Seed::new("GET", "/v1/tasks/{asking}/events").header("last-event-id", "1")),
        as_alice(Seed::new("GET", "/v1/events?kind=fail")),
        as_alice(Seed::new("GET", "/v1/events?session=s2")),
        as_alice(Seed::new("GET", "/v1/tasks?limit=2")),
        as_alice(Seed::new("GET", "/v1/tasks?limit=2&after=AAAA")),
        as_alice(Seed::new("GET", "/v1/tasks?label=env:prod&label=team:a")),
        as_alice(Seed::new("GET", "/v1/tasks?session=s1")),
        as_alice(Seed::new(
            "GET",
            "/v1/tasks?status=failed,completed&kind=complete",
        )),
        as_alice(Seed::new("GET", "/v1/tasks?status=failed&status=working")),
        as_alice(Seed::new("POST", "/v1/sessions/chat/inbox:drain")),
        as_alice(
            Seed::new("POST", "/v1/sessions/chat/inbox:drain")
                .body(json!({"ack": 2, "max": 1, "wait_ms": 10})),
        ),
        as_alice(Seed::new("GET", "/v1/kinds")),
        Seed::new("GET", "/healthz"),
        Seed::new("GET", "/metrics"),
    ]
}
