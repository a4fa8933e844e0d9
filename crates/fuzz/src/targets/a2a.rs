//! The A2A door: JSON-RPC with `A2A-Version: 1.0`, the HTTP+JSON binding of 1.0 under
//! `/a2a/…`, JSON-RPC 0.3 (no version header), and the agent card, beside a task that waits
//! for an answer and one that has ended.

use std::{sync::Arc, time::Duration};

use axum::Router;
use futures_util::{FutureExt, future::BoxFuture};
use longrun::{Context, KindSpec, Runtime, TaskError};
use longrun_surface::{Limits, Surface};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::{ALICE, BOB, auth, fill, task_id};
use crate::{
    case::{HttpCase, Input},
    engine::Door,
    exchange,
    mutate::Mutator,
    request::{self, Seed},
    shape,
};

pub(crate) struct A2a {
    runtime: Runtime,
    shutdown: CancellationToken,
    router: Router,
    seeds: Vec<Seed>,
    ids: Vec<(&'static str, String)>,
}

pub(crate) async fn open() -> Arc<dyn Door> {
    let runtime = kinds();
    let surface = Surface::new(runtime.clone(), auth(), Limits::default());
    let shutdown = surface.shutdown_token();
    let config = longrun_a2a::Config {
        max_blocking_ms: Some(200),
        ..longrun_a2a::Config::default()
    };
    let router = longrun_a2a::router(surface, config, "http://127.0.0.1:7700".into())
        .expect("the A2A door opens without a push store file");
    let mut door = A2a {
        runtime,
        shutdown,
        router,
        seeds: seeds(),
        ids: Vec::new(),
    };
    let asking = door
        .start(
            json!({"message": message("ask", "q"), "configuration": {"returnImmediately": true}}),
        )
        .await;
    let ended = door.start(json!({"message": message("echo", "hi")})).await;
    door.ids = vec![("{asking}", asking), ("{task}", ended)];
    Arc::new(door)
}

impl A2a {
    /// Sends a message with `SendMessage` as `alice`; the task's id.
    async fn start(&self, params: Value) -> String {
        let case = HttpCase {
            method: "POST".into(),
            uri: "/a2a".into(),
            headers: headers(Some("1.0")),
            body: rpc(1, "SendMessage", params).to_string().into_bytes(),
        };
        exchange::send(&self.router, &case, str::to_owned)
            .await
            .ok()
            .flatten()
            .and_then(|reply| serde_json::from_slice(&reply.body).ok())
            .and_then(|body: Value| task_id(&body))
            .unwrap_or_else(|| "task_00000000000000000000000000000003".into())
    }
}

impl Door for A2a {
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
            let Some(reply) = reply else {
                return Ok(());
            };
            let uri = fill(&case.uri, &self.ids);
            let path = uri.split(['?', '#']).next().unwrap_or("");
            if path == "/a2a" || path == "/a2a/" {
                shape::jsonrpc(
                    &reply,
                    fill(&String::from_utf8_lossy(&case.body), &self.ids).as_bytes(),
                    false,
                )
            } else if path.starts_with("/a2a/") {
                shape::a2a_rest(&reply)
            } else if reply.status < 400 && reply.is_json() {
                shape::json(&reply.body).map(drop)
            } else {
                // Outside the door (an unknown path): the server's own fallback answers.
                Ok(())
            }
        }
        .boxed()
    }

    fn close(&self) -> BoxFuture<'static, ()> {
        let (runtime, shutdown) = (self.runtime.clone(), self.shutdown.clone());
        async move {
            shutdown.cancel();
            runtime.shutdown().await;
        }
        .boxed()
    }
}

fn headers(version: Option<&str>) -> Vec<(String, String)> {
    let mut headers = vec![
        ("authorization".to_owned(), format!("Bearer {ALICE}")),
        ("content-type".to_owned(), "application/json".to_owned()),
    ];
    if let Some(version) = version {
        headers.push(("a2a-version".into(), version.into()));
    }
    headers
}

fn rpc(id: u64, method: &str, params: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
}

/// A 1.0 message to `skill`.
fn message(skill: &str, text: &str) -> Value {
    json!({
        "messageId": format!("m-{text}"),
        "role": "ROLE_USER",
        "parts": [{"text": text}],
        "metadata": {"skill": skill},
    })
}

/// A 0.3 message to `skill`.
fn message_03(skill: &str, text: &str) -> Value {
    json!({
        "kind": "message",
        "messageId": format!("v03-{text}"),
        "role": "user",
        "parts": [{"kind": "text", "text": text}],
        "metadata": {"skill": skill},
    })
}

/// The door's requests, as its tests and the A2A documents send them.
fn seeds() -> Vec<Seed> {
    let with = |version: Option<&str>, method: &'static str, uri: &str, body: Option<Value>| {
        let mut seed = Seed::new(method, uri);
        for (name, value) in headers(version) {
            seed = seed.header(&name, value);
        }
        seed.body = body;
        seed
    };
    let v10 = |method: &str, params: Value| {
        with(Some("1.0"), "POST", "/a2a", Some(rpc(7, method, params)))
    };
    let v03 =
        |method: &str, params: Value| with(None, "POST", "/a2a", Some(rpc(7, method, params)));
    let rest = |method: &'static str, path: &str, body: Option<Value>| {
        with(Some("1.0"), method, &format!("/a2a{path}"), body)
    };
    let reply = json!({"messageId": "m-r", "role": "ROLE_USER", "taskId": "{asking}",
                       "parts": [{"text": "yes"}]});
    let hook = json!({"taskId": "{asking}", "id": "hook", "url": "https://127.0.0.1:9/hook",
                      "token": "tok-123", "authentication": {"scheme": "Bearer", "credentials": "c"}});
    vec![
        v10("SendMessage", json!({"message": message("echo", "hi")})),
        v10(
            "SendMessage",
            json!({"message": {"messageId": "m1", "role": "ROLE_USER",
                                              "parts": [{"data": {"n": 2}}], "metadata": {"skill": "double"}}}),
        ),
        v10(
            "SendMessage",
            json!({"message": message("ask", "q"),
                                  "configuration": {"returnImmediately": true, "historyLength": 1}}),
        ),
        v10("SendMessage", json!({"message": reply.clone()})),
        v10("SendMessage", json!({})),
        v10(
            "SendStreamingMessage",
            json!({"message": message("echo", "s")}),
        ),
        v10("GetTask", json!({"id": "{task}", "historyLength": 1})),
        v10("GetTask", json!({"id": "{asking}", "historyLength": -1})),
        v10("GetTask", json!({"id": "x"})),
        v10("ListTasks", json!({"contextId": "chat-1", "pageSize": 2})),
        v10("ListTasks", json!({"status": "TASK_STATE_FAILED"})),
        v10("CancelTask", json!({"id": "{asking}"})),
        v10("CancelTask", json!({"id": "{task}"})),
        v10("SubscribeToTask", json!({"id": "{asking}"})),
        v10("CreateTaskPushNotificationConfig", hook.clone()),
        v10(
            "GetTaskPushNotificationConfig",
            json!({"taskId": "{asking}", "id": "hook"}),
        ),
        v10(
            "ListTaskPushNotificationConfigs",
            json!({"taskId": "{asking}"}),
        ),
        v10(
            "DeleteTaskPushNotificationConfig",
            json!({"taskId": "{asking}", "id": "hook"}),
        ),
        v10("GetExtendedAgentCard", json!({})),
        with(
            Some("1.0"),
            "POST",
            "/a2a",
            Some(json!([rpc(1, "GetTask", json!({"id": "{task}"}))])),
        ),
        with(
            Some("9.9"),
            "POST",
            "/a2a",
            Some(rpc(1, "GetTask", json!({"id": "{task}"}))),
        ),
        v03("message/send", json!({"message": message_03("echo", "hi")})),
        v03(
            "message/send",
            json!({"message": message_03("ask", "q"), "configuration": {"blocking": false}}),
        ),
        v03(
            "message/stream",
            json!({"message": message_03("echo", "s")}),
        ),
        v03("tasks/get", json!({"id": "{task}", "historyLength": 0})),
        v03("tasks/cancel", json!({"id": "{asking}"})),
        v03("tasks/resubscribe", json!({"id": "{asking}"})),
        v03(
            "tasks/pushNotificationConfig/set",
            json!({"taskId": "{asking}", "pushNotificationConfig": {
            "url": "https://127.0.0.1:9/hook", "authentication": {"schemes": ["Bearer"], "credentials": "c"}}}),
        ),
        v03(
            "tasks/pushNotificationConfig/get",
            json!({"id": "{asking}"}),
        ),
        v03(
            "tasks/pushNotificationConfig/list",
            json!({"id": "{asking}"}),
        ),
        v03(
            "tasks/pushNotificationConfig/delete",
            json!({"id": "{asking}", "pushNotificationConfigId": "x"}),
        ),
        v03("agent/getAuthenticatedExtendedCard", json!({})),
        rest(
            "POST",
            "/message:send",
            Some(json!({"message": message("echo", "hi")})),
        ),
        rest(
            "POST",
            "/message:stream",
            Some(json!({"message": message("echo", "s")})),
        ),
        rest("GET", "/tasks?pageSize=2&status=TASK_STATE_COMPLETED", None),
        rest("GET", "/tasks/{task}?historyLength=1", None),
        rest("POST", "/tasks/{asking}:cancel", None),
        rest("GET", "/tasks/{asking}:subscribe", None),
        rest(
            "POST",
            "/tasks/{asking}/pushNotificationConfigs",
            Some(hook),
        ),
        rest("GET", "/tasks/{asking}/pushNotificationConfigs", None),
        rest("GET", "/tasks/{asking}/pushNotificationConfigs/hook", None),
        rest(
            "DELETE",
            "/tasks/{asking}/pushNotificationConfigs/hook",
            None,
        ),
        rest("GET", "/extendedAgentCard", None),
        rest("GET", "/nothing/here", None),
        with(None, "GET", "/a2a/tasks/{task}", None),
        Seed::new("GET", "/.well-known/agent-card.json"),
        Seed::new("GET", "/.well-known/agent-card.json").header("a2a-version", "0.3"),
        with(
            Some("1.0"),
            "POST",
            "/a2a",
            Some(rpc(1, "GetTask", json!({"id": "{task}"}))),
        )
        .header("authorization", format!("Bearer {BOB}")),
    ]
}

/// The door tests' kinds, each ending by itself: questions time out, `sleep` has a deadline.
fn kinds() -> Runtime {
    let runtime = Runtime::new(Default::default());
    let mut double = KindSpec::new("double").description("Doubles n.");
    double.input_schema = json!({
        "type": "object",
        "properties": {"n": {"type": "integer"}},
        "required": ["n"],
    });
    let registered =
        [
            runtime.register(
                KindSpec::new("echo").description("Echoes its input."),
                |_ctx: Context, input: Value| async move { Ok::<_, TaskError>(input) },
            ),
            runtime.register(double, |_ctx: Context, input: Value| async move {
                let n = input["n"].as_i64().ok_or("n is not a number")?;
                Ok::<_, TaskError>(json!(n.saturating_mul(2)))
            }),
            runtime.register(KindSpec::new("ask"), |ctx: Context, _: Value| async move {
                let question = json!({"message": "Go?"});
                Ok::<_, TaskError>(ctx.ask("approve", question, Duration::from_secs(5)).await?)
            }),
            runtime.register(
                KindSpec::new("sleep")
                    .deadline(Duration::from_millis(500))
                    .cancel_grace(Duration::from_millis(100)),
                |ctx: Context, _: Value| async move {
                    ctx.cancelled().await;
                    Err::<(), _>(TaskError::new("stopped", "saw the cancellation"))
                },
            ),
            runtime.register(
                KindSpec::new("fail"),
                |_ctx: Context, _: Value| async move {
                    Err::<(), _>(TaskError::new("boom", "it broke"))
                },
            ),
        ];
    for result in registered {
        result.expect("the fuzz kinds have distinct names");
    }
    runtime
}
