//! A2A 0.3's JSON shapes, converted to and from the 1.0 ones in [`crate::wire`].
//!
//! 0.3 differs in its spelling, not in its meaning: objects carry a `kind` (`task`, `message`,
//! `status-update`, `artifact-update`; parts `text`, `file`, `data`), states are kebab-case
//! (`input-required`), roles `user` / `agent`, a file part nests `{name, mimeType, bytes | uri}`,
//! a `data` part holds an object, a status update says whether it is the stream's `final` event,
//! `blocking` stands for `!returnImmediately`, and a push config is nested in
//! `{taskId, pushNotificationConfig}` with a list of auth `schemes`.

use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::wire::{
    self, Authentication, Content, Message, Object, Part, PushConfig, Role, SendConfiguration,
    SendRequest, StreamResponse,
};

/// A 1.0 task in 0.3's shape.
pub(crate) fn task(task: &wire::Task) -> Value {
    let mut out = Map::new();
    out.insert("kind".into(), json!("task"));
    out.insert("id".into(), json!(task.id));
    out.insert("contextId".into(), json!(task.context_id));
    out.insert("status".into(), status(&task.status));
    if !task.artifacts.is_empty() {
        out.insert(
            "artifacts".into(),
            task.artifacts.iter().map(artifact).collect(),
        );
    }
    if !task.history.is_empty() {
        out.insert("history".into(), task.history.iter().map(message).collect());
    }
    if let Some(metadata) = &task.metadata {
        out.insert("metadata".into(), Value::Object(metadata.clone()));
    }
    Value::Object(out)
}

fn status(status: &wire::TaskStatus) -> Value {
    let mut out = Map::new();
    out.insert("state".into(), json!(status.state.name_v03()));
    if let Some(message) = &status.message {
        out.insert("message".into(), self::message(message));
    }
    if let Some(timestamp) = &status.timestamp {
        out.insert("timestamp".into(), json!(timestamp));
    }
    Value::Object(out)
}

/// A 1.0 message in 0.3's shape.
pub(crate) fn message(message: &Message) -> Value {
    let mut out = Map::new();
    out.insert("kind".into(), json!("message"));
    out.insert("messageId".into(), json!(message.message_id));
    let role = match message.role {
        Role::Agent => "agent",
        Role::User | Role::Unspecified => "user",
    };
    out.insert("role".into(), json!(role));
    out.insert("parts".into(), message.parts.iter().map(part).collect());
    if !message.context_id.is_empty() {
        out.insert("contextId".into(), json!(message.context_id));
    }
    if !message.task_id.is_empty() {
        out.insert("taskId".into(), json!(message.task_id));
    }
    if let Some(metadata) = &message.metadata {
        out.insert("metadata".into(), Value::Object(metadata.clone()));
    }
    Value::Object(out)
}

fn part(part: &Part) -> Value {
    let mut out = match &part.content {
        Content::Text(text) => json!({"kind": "text", "text": text}),
        Content::Raw(raw) => json!({"kind": "file", "file": file(part, "bytes", raw)}),
        Content::Url(url) => json!({"kind": "file", "file": file(part, "uri", url)}),
        // 0.3's data parts hold objects; anything else is wrapped.
        Content::Data(Value::Object(data)) => json!({"kind": "data", "data": data}),
        Content::Data(other) => json!({"kind": "data", "data": {"value": other}}),
    };
    if let Some(metadata) = &part.metadata {
        out["metadata"] = Value::Object(metadata.clone());
    }
    out
}

fn file(part: &Part, key: &str, content: &str) -> Value {
    let mut file = Map::new();
    file.insert(key.into(), json!(content));
    if let Some(name) = &part.filename {
        file.insert("name".into(), json!(name));
    }
    if let Some(media_type) = &part.media_type {
        file.insert("mimeType".into(), json!(media_type));
    }
    Value::Object(file)
}

fn artifact(artifact: &wire::Artifact) -> Value {
    let mut out = Map::new();
    out.insert("artifactId".into(), json!(artifact.artifact_id));
    if let Some(name) = &artifact.name {
        out.insert("name".into(), json!(name));
    }
    out.insert("parts".into(), artifact.parts.iter().map(part).collect());
    Value::Object(out)
}

/// One stream event in 0.3's shape; `last` marks the status update that ends the stream.
pub(crate) fn frame(response: &StreamResponse, last: bool) -> Value {
    match response {
        StreamResponse::Task(task) => self::task(task),
        StreamResponse::StatusUpdate(update) => {
            let mut out = json!({
                "kind": "status-update",
                "taskId": update.task_id,
                "contextId": update.context_id,
                "status": status(&update.status),
                "final": last,
            });
            if let Some(metadata) = &update.metadata {
                out["metadata"] = Value::Object(metadata.clone());
            }
            out
        }
        StreamResponse::ArtifactUpdate(update) => json!({
            "kind": "artifact-update",
            "taskId": update.task_id,
            "contextId": update.context_id,
            "artifact": artifact(&update.artifact),
            "append": update.append,
            "lastChunk": update.last_chunk,
        }),
    }
}

/// A push config in 0.3's `TaskPushNotificationConfig` shape.
pub(crate) fn push_config(config: &PushConfig) -> Value {
    let mut inner = Map::new();
    inner.insert("id".into(), json!(config.id));
    inner.insert("url".into(), json!(config.url));
    if !config.token.is_empty() {
        inner.insert("token".into(), json!(config.token));
    }
    if let Some(auth) = &config.authentication {
        let mut authentication = json!({"schemes": [auth.scheme]});
        if !auth.credentials.is_empty() {
            authentication["credentials"] = json!(auth.credentials);
        }
        inner.insert("authentication".into(), authentication);
    }
    json!({"taskId": config.task_id, "pushNotificationConfig": inner})
}

/// 0.3's `Message`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Message03 {
    #[serde(default)]
    message_id: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    parts: Vec<Part03>,
    #[serde(default)]
    context_id: Option<String>,
    #[serde(default)]
    task_id: Option<String>,
    #[serde(default)]
    metadata: Option<Object>,
    #[serde(default)]
    extensions: Vec<String>,
    #[serde(default)]
    reference_task_ids: Vec<String>,
}

#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
enum Part03 {
    Text {
        text: String,
        #[serde(default)]
        metadata: Option<Object>,
    },
    File {
        file: File03,
        #[serde(default)]
        metadata: Option<Object>,
    },
    Data {
        data: Value,
        #[serde(default)]
        metadata: Option<Object>,
    },
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct File03 {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    mime_type: Option<String>,
    #[serde(default)]
    bytes: Option<String>,
    #[serde(default)]
    uri: Option<String>,
}

impl TryFrom<Message03> for Message {
    type Error = String;

    fn try_from(message: Message03) -> Result<Self, String> {
        let role = match message.role.as_str() {
            "user" => Role::User,
            "agent" => Role::Agent,
            other => {
                return Err(format!(
                    "unknown role `{other}`: expected `user` or `agent`"
                ));
            }
        };
        let parts = message
            .parts
            .into_iter()
            .map(|part| match part {
                Part03::Text { text, metadata } => Ok(Part {
                    metadata,
                    ..Part::text(text)
                }),
                Part03::Data { data, metadata } => Ok(Part {
                    metadata,
                    ..Part::data(data)
                }),
                Part03::File { file, metadata } => {
                    let content = match (file.bytes, file.uri) {
                        (Some(bytes), None) => Content::Raw(bytes),
                        (None, Some(uri)) => Content::Url(uri),
                        _ => {
                            return Err(
                                "a file part holds exactly one of `bytes` or `uri`".to_owned()
                            );
                        }
                    };
                    Ok(Part {
                        content,
                        metadata,
                        filename: file.name,
                        media_type: file.mime_type,
                    })
                }
            })
            .collect::<Result<_, String>>()?;
        Ok(Self {
            message_id: message.message_id,
            context_id: message.context_id.unwrap_or_default(),
            task_id: message.task_id.unwrap_or_default(),
            role,
            parts,
            metadata: message.metadata,
            extensions: message.extensions,
            reference_task_ids: message.reference_task_ids,
        })
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PushConfig03 {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    url: String,
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    authentication: Option<Auth03>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Auth03 {
    #[serde(default)]
    schemes: Vec<String>,
    #[serde(default)]
    credentials: Option<String>,
}

impl PushConfig03 {
    fn into_wire(self, task_id: String) -> PushConfig {
        PushConfig {
            tenant: String::new(),
            id: self.id.unwrap_or_default(),
            task_id,
            url: self.url,
            token: self.token.unwrap_or_default(),
            authentication: self.authentication.map(|auth| Authentication {
                scheme: auth.schemes.into_iter().next().unwrap_or_default(),
                credentials: auth.credentials.unwrap_or_default(),
            }),
        }
    }
}

fn parse<T: for<'de> Deserialize<'de>>(params: Value) -> Result<T, String> {
    serde_json::from_value(params).map_err(|error| error.to_string())
}

/// `message/send` and `message/stream` params (`MessageSendParams`).
pub(crate) fn send_request(params: Value) -> Result<SendRequest, String> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Params {
        #[serde(default)]
        message: Option<Message03>,
        #[serde(default)]
        configuration: Option<Configuration>,
        #[serde(default)]
        metadata: Option<Object>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Configuration {
        #[serde(default)]
        accepted_output_modes: Vec<String>,
        #[serde(default)]
        blocking: Option<bool>,
        #[serde(default)]
        history_length: Option<i64>,
        #[serde(default)]
        push_notification_config: Option<PushConfig03>,
    }
    let params: Params = parse(params)?;
    let message = params.message.map(Message::try_from).transpose()?;
    let task_id = message
        .as_ref()
        .map(|m| m.task_id.clone())
        .unwrap_or_default();
    Ok(SendRequest {
        message,
        configuration: params.configuration.map(|config| SendConfiguration {
            accepted_output_modes: config.accepted_output_modes,
            task_push_notification_config: config
                .push_notification_config
                .map(|push| push.into_wire(task_id)),
            history_length: config.history_length,
            // 0.3 blocks unless told not to, as 1.0 does.
            return_immediately: config.blocking == Some(false),
        }),
        metadata: params.metadata,
    })
}

/// `tasks/get` params (`TaskQueryParams`).
pub(crate) fn get_request(params: Value) -> Result<wire::GetTaskRequest, String> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Params {
        #[serde(default)]
        id: String,
        #[serde(default)]
        history_length: Option<i64>,
    }
    let params: Params = parse(params)?;
    Ok(wire::GetTaskRequest {
        id: params.id,
        history_length: params.history_length,
    })
}

/// `tasks/cancel`, `tasks/resubscribe` and `tasks/pushNotificationConfig/list` params: an `id`.
pub(crate) fn id_request(params: Value) -> Result<wire::TaskIdRequest, String> {
    parse(params)
}

/// `tasks/pushNotificationConfig/set` params.
pub(crate) fn set_push_request(params: Value) -> Result<PushConfig, String> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Params {
        #[serde(default)]
        task_id: String,
        push_notification_config: PushConfig03,
    }
    let params: Params = parse(params)?;
    Ok(params.push_notification_config.into_wire(params.task_id))
}

/// `tasks/pushNotificationConfig/get` and `…/delete` params: the task's `id` and the config's
/// `pushNotificationConfigId` (which defaults to the task id, as a config made without an id
/// gets it).
pub(crate) fn push_request(params: Value) -> Result<wire::PushConfigRequest, String> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Params {
        #[serde(default)]
        id: String,
        #[serde(default)]
        push_notification_config_id: Option<String>,
    }
    let params: Params = parse(params)?;
    Ok(wire::PushConfigRequest {
        id: params
            .push_notification_config_id
            .unwrap_or_else(|| params.id.clone()),
        task_id: params.id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{StatusUpdate, TaskState, TaskStatus};

    #[test]
    fn messages_convert_both_ways() {
        let request = send_request(json!({
            "message": {"kind": "message", "messageId": "m", "role": "user", "parts": [
                {"kind": "text", "text": "hi"},
                {"kind": "file", "file": {"uri": "https://e.com/f", "mimeType": "text/plain", "name": "f"}},
                {"kind": "data", "data": {"n": 1}},
            ]},
            "configuration": {"blocking": false, "historyLength": 2},
        }))
        .unwrap();
        let message = request.message.unwrap();
        assert_eq!(message.role, Role::User);
        assert_eq!(
            message.parts[1].content,
            Content::Url("https://e.com/f".into())
        );
        assert_eq!(message.parts[1].filename.as_deref(), Some("f"));
        let config = request.configuration.unwrap();
        assert!(config.return_immediately);
        assert_eq!(config.history_length, Some(2));
        let back = super::message(&message);
        assert_eq!(back["parts"][1]["file"]["mimeType"], "text/plain");
        assert_eq!(back["parts"][2], json!({"kind": "data", "data": {"n": 1}}));
        assert!(send_request(json!({"message": {"role": "robot", "parts": []}})).is_err());
        assert!(
            send_request(json!({"message": {"role": "user", "parts": [{"text": "no kind"}]}}))
                .is_err()
        );
    }

    #[test]
    fn status_updates_say_final() {
        let update = StreamResponse::StatusUpdate(StatusUpdate {
            task_id: "t".into(),
            context_id: "c".into(),
            status: TaskStatus {
                state: TaskState::InputRequired,
                message: None,
                timestamp: None,
            },
            metadata: None,
        });
        let frame = frame(&update, true);
        assert_eq!(frame["kind"], "status-update");
        assert_eq!(frame["status"]["state"], "input-required");
        assert_eq!(frame["final"], true);
    }

    #[test]
    fn push_configs_nest() {
        let config = set_push_request(json!({"taskId": "t", "pushNotificationConfig": {
            "url": "https://e.com/hook", "token": "tok",
            "authentication": {"schemes": ["Bearer"], "credentials": "secret"},
        }}))
        .unwrap();
        assert_eq!(config.task_id, "t");
        assert_eq!(config.authentication.as_ref().unwrap().scheme, "Bearer");
        let back = push_config(&PushConfig {
            id: "p".into(),
            ..config
        });
        assert_eq!(
            back["pushNotificationConfig"]["authentication"]["schemes"],
            json!(["Bearer"])
        );
        let request = push_request(json!({"id": "t"})).unwrap();
        assert_eq!((request.task_id.as_str(), request.id.as_str()), ("t", "t"));
    }
}
