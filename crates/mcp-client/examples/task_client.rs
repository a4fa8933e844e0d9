//! The Neva seed's task client example, on longrun's client: call a tool as a task, with a TTL
//! that cancels it, with arguments, list the tasks, and answer the task's elicitation and
//! sampling requests with registered handlers.
//!
//! Run it against the reference server (`@modelcontextprotocol/server-everything`, which speaks
//! 2025-11-25 tasks) or against `longrun serve` (2026-07-28 and 2025-11-25):
//!
//! ```text
//! cargo run -p longrun-mcp-client --example task_client -- http://127.0.0.1:3001/mcp
//! ```
//!
//! Optional second and third arguments name the task tool and its arguments (JSON); the default
//! is server-everything's `simulate-research-query`.

#![allow(
    clippy::disallowed_methods,
    clippy::disallowed_macros,
    reason = "an example prints what it shows and plays the user's side on tasks of its own"
)]
#![allow(deprecated)] // rmcp marks sampling deprecated (SEP-2577); MCP Tasks still carry it.

use longrun_mcp_client::{
    Client, Error, Target, Update,
    model::{
        CreateMessageRequestParams, CreateMessageResult, ElicitRequestParams, ElicitResult,
        ElicitationAction, SamplingMessage,
    },
};
use serde_json::{Value, json};

/// The elicitation handler (Neva's `#[elicitation]`): accept form requests with the first
/// choice of each field, decline URL requests.
async fn elicitation_handler(params: ElicitRequestParams) -> ElicitResult {
    match params {
        ElicitRequestParams::FormElicitationParams {
            message,
            requested_schema,
            ..
        } => {
            println!("  the server asks: {message}");
            let schema = serde_json::to_value(&requested_schema).unwrap_or_default();
            let mut content = serde_json::Map::new();
            if let Some(fields) = schema.get("properties").and_then(Value::as_object) {
                for (name, field) in fields {
                    content.insert(name.clone(), first_choice(field));
                }
            }
            println!("  answering {}", Value::Object(content.clone()));
            ElicitResult::new(ElicitationAction::Accept).with_content(Value::Object(content))
        }
        _ => ElicitResult::new(ElicitationAction::Decline),
    }
}

/// A plausible value for one form field: its first choice, or something of its type.
fn first_choice(field: &Value) -> Value {
    if let Some(choice) = field
        .pointer("/oneOf/0/const")
        .or_else(|| field.pointer("/enum/0"))
    {
        return choice.clone();
    }
    match field.get("type").and_then(Value::as_str) {
        Some("boolean") => json!(true),
        Some("number" | "integer") => json!(1),
        _ => json!("yes"),
    }
}

/// The sampling handler (Neva's `#[sampling]`): a fixed model answer.
async fn sampling_handler(
    _params: CreateMessageRequestParams,
) -> Result<CreateMessageResult, longrun_mcp_client::RpcError> {
    Ok(CreateMessageResult::new(
        SamplingMessage::assistant_text("Response text"),
        "gpt-5".to_owned(),
    )
    .with_stop_reason(CreateMessageResult::STOP_REASON_END_TURN))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "http://127.0.0.1:3001/mcp".to_owned());
    let tool = args
        .next()
        .unwrap_or_else(|| "simulate-research-query".to_owned());
    let arguments: Value = match args.next() {
        Some(text) => serde_json::from_str(&text)?,
        None => json!({"topic": "python", "ambiguous": true}),
    };

    let client = Client::builder(Target::http(url))
        .elicitation(elicitation_handler)
        .sampling(sampling_handler)
        .connect()
        .await?;
    println!("connected, protocol {}", client.protocol_version());

    // Calling a tool as a task, with a TTL, with arguments; progress as it comes.
    let result = client
        .task()
        .with_ttl(60_000)
        .on_update(|update| match update {
            Update::Created(task) | Update::Status(task) => println!(
                "  task {} {}: {}",
                task.id,
                task.status,
                task.status_message.unwrap_or_default()
            ),
            Update::Progress {
                progress,
                total,
                message,
            } => {
                println!(
                    "  progress {progress}/{total:?} {}",
                    message.unwrap_or_default()
                );
            }
            _ => {}
        })
        .call_tool(&tool, arguments.clone())
        .await?;
    let text = serde_json::to_value(&result.content)?;
    println!(
        "result: {}",
        text.pointer("/0/text")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .lines()
            .next()
            .unwrap_or_default()
    );

    // With a TTL too short: the task is cancelled and the error says so.
    match client
        .task()
        .with_ttl(500)
        .call_tool(&tool, json!({"topic": "rust"}))
        .await
    {
        Err(Error::TtlExpired { task_id, ttl }) => {
            println!(
                "TTL of {} ms expired; task {task_id} cancelled",
                ttl.as_millis()
            );
        }
        other => println!("expected the TTL to expire, got {other:?}"),
    }

    // Listing tasks (2025-11-25 servers; 2026-07-28 removed tasks/list).
    match client.list_tasks(None).await {
        Ok(page) => {
            for task in page.tasks {
                println!("listed: {} {}", task.id, task.status);
            }
        }
        Err(error) => println!("list: {error}"),
    }

    client.close().await;
    Ok(())
}
