//! The A2A 1.0 JSON shapes (the ProtoJSON of `lf.a2a.v1`): what the door reads and writes.
//!
//! Only this module and [`crate::v03`] know A2A's JSON. Field names are camelCase, enums their
//! proto names (`TASK_STATE_WORKING`), a `Part` is told apart by which content member it has,
//! and a `StreamResponse` by its one key. Reading is lenient the way ProtoJSON parsers are:
//! unknown fields are ignored, absent fields take their defaults, enums may also come as
//! numbers, and integers as numeric strings; what is required is checked by the operations,
//! which say which field is missing.

use serde::{Deserialize, Deserializer, Serialize, Serializer, de};
use serde_json::{Map, Value};

/// A JSON object: `google.protobuf.Struct`.
pub(crate) type Object = Map<String, Value>;

/// `Role`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Role {
    #[default]
    Unspecified,
    User,
    Agent,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Self::Unspecified => "ROLE_UNSPECIFIED",
            Self::User => "ROLE_USER",
            Self::Agent => "ROLE_AGENT",
        }
    }
}

impl Serialize for Role {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Role {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match Value::deserialize(deserializer)? {
            Value::String(name) => match name.as_str() {
                "ROLE_UNSPECIFIED" => Ok(Self::Unspecified),
                "ROLE_USER" => Ok(Self::User),
                "ROLE_AGENT" => Ok(Self::Agent),
                other => Err(de::Error::custom(format!(
                    "unknown role `{other}`: expected ROLE_USER or ROLE_AGENT"
                ))),
            },
            Value::Number(n) => match n.as_u64() {
                Some(0) => Ok(Self::Unspecified),
                Some(1) => Ok(Self::User),
                Some(2) => Ok(Self::Agent),
                _ => Err(de::Error::custom(format!("unknown role number {n}"))),
            },
            Value::Null => Ok(Self::Unspecified),
            other => Err(de::Error::custom(format!(
                "a role is a string such as ROLE_USER, not {other}"
            ))),
        }
    }
}

/// `TaskState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TaskState {
    Unspecified,
    Submitted,
    Working,
    Completed,
    Failed,
    Canceled,
    InputRequired,
    Rejected,
    AuthRequired,
}

impl TaskState {
    const ALL: [(Self, &'static str, &'static str); 9] = [
        (Self::Unspecified, "TASK_STATE_UNSPECIFIED", "unknown"),
        (Self::Submitted, "TASK_STATE_SUBMITTED", "submitted"),
        (Self::Working, "TASK_STATE_WORKING", "working"),
        (Self::Completed, "TASK_STATE_COMPLETED", "completed"),
        (Self::Failed, "TASK_STATE_FAILED", "failed"),
        (Self::Canceled, "TASK_STATE_CANCELED", "canceled"),
        (
            Self::InputRequired,
            "TASK_STATE_INPUT_REQUIRED",
            "input-required",
        ),
        (Self::Rejected, "TASK_STATE_REJECTED", "rejected"),
        (
            Self::AuthRequired,
            "TASK_STATE_AUTH_REQUIRED",
            "auth-required",
        ),
    ];

    /// The 1.0 spelling (`TASK_STATE_INPUT_REQUIRED`).
    pub(crate) fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(state, _, _)| *state == self)
            .map_or("TASK_STATE_UNSPECIFIED", |(_, name, _)| name)
    }

    /// The 0.3 spelling (`input-required`).
    pub(crate) fn name_v03(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(state, _, _)| *state == self)
            .map_or("unknown", |(_, _, name)| name)
    }

    /// The state named in either version's spelling, or by its proto number.
    pub(crate) fn parse(text: &str) -> Option<Self> {
        Self::ALL
            .iter()
            .find(|(_, v10, v03)| *v10 == text || *v03 == text)
            .map(|(state, _, _)| *state)
            .or_else(|| {
                let n: usize = text.parse().ok()?;
                Self::ALL.get(n).map(|(state, _, _)| *state)
            })
    }
}

impl Serialize for TaskState {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for TaskState {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = match Value::deserialize(deserializer)? {
            Value::String(text) => text,
            Value::Number(n) => n.to_string(),
            other => {
                return Err(de::Error::custom(format!(
                    "a task state is a string such as TASK_STATE_WORKING, not {other}"
                )));
            }
        };
        Self::parse(&text).ok_or_else(|| de::Error::custom(format!("unknown task state `{text}`")))
    }
}

/// What a `Part` holds: exactly one of these.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Content {
    Text(String),
    /// Base64, as ProtoJSON writes `bytes`; passed through as given.
    Raw(String),
    Url(String),
    Data(Value),
}

/// `Part`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Part {
    pub(crate) content: Content,
    pub(crate) metadata: Option<Object>,
    pub(crate) filename: Option<String>,
    pub(crate) media_type: Option<String>,
}

impl Part {
    pub(crate) fn text(text: impl Into<String>) -> Self {
        Self::of(Content::Text(text.into()))
    }

    pub(crate) fn data(data: Value) -> Self {
        Self::of(Content::Data(data))
    }

    pub(crate) fn of(content: Content) -> Self {
        Self {
            content,
            metadata: None,
            filename: None,
            media_type: None,
        }
    }
}

#[derive(Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct PartRepr {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    raw: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    url: Option<String>,
    // `Option<Value>` would read `"data": null` as absent; a null data part is still data.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    data: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    metadata: Option<Object>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    filename: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(alias = "media_type")]
    media_type: Option<String>,
}

fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(deserializer).map(Some)
}

impl Serialize for Part {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut repr = PartRepr {
            metadata: self.metadata.clone(),
            filename: self.filename.clone(),
            media_type: self.media_type.clone(),
            ..PartRepr::default()
        };
        match &self.content {
            Content::Text(text) => repr.text = Some(text.clone()),
            Content::Raw(raw) => repr.raw = Some(raw.clone()),
            Content::Url(url) => repr.url = Some(url.clone()),
            Content::Data(data) => repr.data = Some(data.clone()),
        }
        repr.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Part {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let repr = PartRepr::deserialize(deserializer)?;
        let mut contents = Vec::new();
        if let Some(text) = repr.text {
            contents.push(Content::Text(text));
        }
        if let Some(raw) = repr.raw {
            contents.push(Content::Raw(raw));
        }
        if let Some(url) = repr.url {
            contents.push(Content::Url(url));
        }
        if let Some(data) = repr.data {
            contents.push(Content::Data(data));
        }
        if contents.len() != 1 {
            return Err(de::Error::custom(
                "a part holds exactly one of `text`, `raw`, `url` or `data`",
            ));
        }
        Ok(Self {
            content: contents.remove(0),
            metadata: repr.metadata,
            filename: repr.filename,
            media_type: repr.media_type,
        })
    }
}

/// `Message`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Message {
    #[serde(default)]
    #[serde(alias = "message_id")]
    pub(crate) message_id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[serde(alias = "context_id")]
    pub(crate) context_id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[serde(alias = "task_id")]
    pub(crate) task_id: String,
    #[serde(default)]
    pub(crate) role: Role,
    #[serde(default)]
    pub(crate) parts: Vec<Part>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) metadata: Option<Object>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) extensions: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[serde(alias = "reference_task_ids")]
    pub(crate) reference_task_ids: Vec<String>,
}

/// `TaskStatus`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TaskStatus {
    pub(crate) state: TaskState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) message: Option<Message>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) timestamp: Option<String>,
}

/// `Artifact`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Artifact {
    pub(crate) artifact_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) name: Option<String>,
    pub(crate) parts: Vec<Part>,
}

/// `Task`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Task {
    pub(crate) id: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub(crate) context_id: String,
    pub(crate) status: TaskStatus,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) artifacts: Vec<Artifact>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) history: Vec<Message>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) metadata: Option<Object>,
}

/// `TaskStatusUpdateEvent`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct StatusUpdate {
    pub(crate) task_id: String,
    pub(crate) context_id: String,
    pub(crate) status: TaskStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) metadata: Option<Object>,
}

/// `TaskArtifactUpdateEvent`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ArtifactUpdate {
    pub(crate) task_id: String,
    pub(crate) context_id: String,
    pub(crate) artifact: Artifact,
    #[serde(skip_serializing_if = "is_false")]
    pub(crate) append: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub(crate) last_chunk: bool,
}

fn is_false(value: &bool) -> bool {
    !value
}

/// `StreamResponse`. The door's streams are task streams, so they never carry its `message`
/// member (a `SendMessage` that answers with a message writes `{"message": …}` itself).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) enum StreamResponse {
    Task(Task),
    StatusUpdate(StatusUpdate),
    ArtifactUpdate(ArtifactUpdate),
}

/// `AuthenticationInfo`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Authentication {
    #[serde(default)]
    pub(crate) scheme: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(crate) credentials: String,
}

/// `TaskPushNotificationConfig`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PushConfig {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(crate) tenant: String,
    #[serde(default)]
    pub(crate) id: String,
    #[serde(default)]
    #[serde(alias = "task_id")]
    pub(crate) task_id: String,
    #[serde(default)]
    pub(crate) url: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(crate) token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) authentication: Option<Authentication>,
}

/// `SendMessageConfiguration`.
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SendConfiguration {
    #[serde(default)]
    #[serde(alias = "accepted_output_modes")]
    pub(crate) accepted_output_modes: Vec<String>,
    #[serde(default)]
    #[serde(alias = "task_push_notification_config")]
    pub(crate) task_push_notification_config: Option<PushConfig>,
    #[serde(default, deserialize_with = "lenient_int")]
    #[serde(alias = "history_length")]
    pub(crate) history_length: Option<i64>,
    #[serde(default)]
    #[serde(alias = "return_immediately")]
    pub(crate) return_immediately: bool,
}

/// `SendMessageRequest`.
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SendRequest {
    #[serde(default)]
    pub(crate) message: Option<Message>,
    #[serde(default)]
    pub(crate) configuration: Option<SendConfiguration>,
    #[serde(default)]
    pub(crate) metadata: Option<Object>,
}

/// `GetTaskRequest`.
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(crate) struct GetTaskRequest {
    #[serde(default)]
    pub(crate) id: String,
    #[serde(default, deserialize_with = "lenient_int")]
    #[serde(alias = "history_length")]
    pub(crate) history_length: Option<i64>,
}

/// `CancelTaskRequest` and `SubscribeToTaskRequest`: a task id.
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TaskIdRequest {
    #[serde(default)]
    pub(crate) id: String,
}

/// `ListTasksRequest`.
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ListTasksRequest {
    #[serde(default)]
    #[serde(alias = "context_id")]
    pub(crate) context_id: String,
    #[serde(default)]
    pub(crate) status: Option<TaskState>,
    #[serde(default, deserialize_with = "lenient_int")]
    #[serde(alias = "page_size")]
    pub(crate) page_size: Option<i64>,
    #[serde(default)]
    #[serde(alias = "page_token")]
    pub(crate) page_token: String,
    #[serde(default, deserialize_with = "lenient_int")]
    #[serde(alias = "history_length")]
    pub(crate) history_length: Option<i64>,
    #[serde(default)]
    #[serde(alias = "status_timestamp_after")]
    pub(crate) status_timestamp_after: Option<String>,
    #[serde(default)]
    #[serde(alias = "include_artifacts")]
    pub(crate) include_artifacts: Option<bool>,
}

/// `ListTasksResponse`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ListTasksResponse {
    pub(crate) tasks: Vec<Task>,
    pub(crate) next_page_token: String,
    pub(crate) page_size: i64,
    pub(crate) total_size: i64,
}

/// `GetTaskPushNotificationConfigRequest` and `DeleteTaskPushNotificationConfigRequest`.
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PushConfigRequest {
    #[serde(default)]
    #[serde(alias = "task_id")]
    pub(crate) task_id: String,
    #[serde(default)]
    pub(crate) id: String,
}

/// `ListTaskPushNotificationConfigsRequest`.
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ListPushConfigsRequest {
    #[serde(default)]
    #[serde(alias = "task_id")]
    pub(crate) task_id: String,
}

/// `ListTaskPushNotificationConfigsResponse`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ListPushConfigsResponse {
    pub(crate) configs: Vec<PushConfig>,
    pub(crate) next_page_token: String,
}

/// An integer as ProtoJSON allows it: a number, or a string holding one.
fn lenient_int<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<i64>, D::Error> {
    match Value::deserialize(deserializer)? {
        Value::Null => Ok(None),
        Value::Number(n) => n
            .as_i64()
            .map(Some)
            .ok_or_else(|| de::Error::custom(format!("{n} is not an integer"))),
        Value::String(text) => text
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| de::Error::custom(format!("`{text}` is not an integer"))),
        other => Err(de::Error::custom(format!("{other} is not an integer"))),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn parts_are_told_apart_by_their_member() {
        let parts: Vec<Part> = serde_json::from_value(json!([
            {"text": "hi"},
            {"raw": "dGNr", "mediaType": "text/plain", "filename": "a.txt"},
            {"url": "https://example.com/x"},
            {"data": {"k": 1}},
            {"data": null},
        ]))
        .unwrap();
        assert_eq!(parts[0].content, Content::Text("hi".into()));
        assert_eq!(parts[1].content, Content::Raw("dGNr".into()));
        assert_eq!(parts[1].filename.as_deref(), Some("a.txt"));
        assert_eq!(
            parts[2].content,
            Content::Url("https://example.com/x".into())
        );
        assert_eq!(parts[3].content, Content::Data(json!({"k": 1})));
        assert_eq!(parts[4].content, Content::Data(Value::Null));
        assert_eq!(
            serde_json::to_value(&parts[1]).unwrap(),
            json!({"raw": "dGNr", "mediaType": "text/plain", "filename": "a.txt"})
        );
        assert!(serde_json::from_value::<Part>(json!({"text": "a", "url": "b"})).is_err());
        assert!(serde_json::from_value::<Part>(json!({"kind": "text"})).is_err());
    }

    #[test]
    fn enums_read_names_and_numbers() {
        let state: TaskState = serde_json::from_value(json!("TASK_STATE_WORKING")).unwrap();
        assert_eq!(state, TaskState::Working);
        let state: TaskState = serde_json::from_value(json!(6)).unwrap();
        assert_eq!(state, TaskState::InputRequired);
        assert_eq!(
            TaskState::parse("input-required"),
            Some(TaskState::InputRequired)
        );
        assert_eq!(TaskState::Canceled.name_v03(), "canceled");
        let role: Role = serde_json::from_value(json!("ROLE_USER")).unwrap();
        assert_eq!(role, Role::User);
        assert!(serde_json::from_value::<Role>(json!("user")).is_err());
    }

    #[test]
    fn proto_field_names_are_read_too() {
        let request: GetTaskRequest =
            serde_json::from_value(json!({"id": "t", "history_length": 1})).unwrap();
        assert_eq!(request.history_length, Some(1));
        let config: PushConfig =
            serde_json::from_value(json!({"task_id": "t", "url": "u"})).unwrap();
        assert_eq!(config.task_id, "t");
        let message: Message = serde_json::from_value(
            json!({"message_id": "m", "context_id": "c", "role": "ROLE_USER", "parts": []}),
        )
        .unwrap();
        assert_eq!(
            (message.message_id.as_str(), message.context_id.as_str()),
            ("m", "c")
        );
    }

    #[test]
    fn integers_may_be_strings() {
        let request: GetTaskRequest =
            serde_json::from_value(json!({"id": "t", "historyLength": "3"})).unwrap();
        assert_eq!(request.history_length, Some(3));
        assert!(serde_json::from_value::<GetTaskRequest>(json!({"historyLength": "x"})).is_err());
    }

    #[test]
    fn stream_responses_have_one_key() {
        let update = StatusUpdate {
            task_id: "t".into(),
            context_id: "c".into(),
            status: TaskStatus {
                state: TaskState::Working,
                message: None,
                timestamp: None,
            },
            metadata: None,
        };
        assert_eq!(
            serde_json::to_value(StreamResponse::StatusUpdate(update)).unwrap(),
            json!({"statusUpdate": {"taskId": "t", "contextId": "c", "status": {"state": "TASK_STATE_WORKING"}}})
        );
    }
}
