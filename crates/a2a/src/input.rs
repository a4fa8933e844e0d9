//! From an A2A message to a task: which kind (skill) it starts, what input the handler gets,
//! and, for a follow-up message, which question it answers and with what.
//!
//! - **Skill**: `metadata.skill` of the message (or of the request) names the kind; without it,
//!   the configured `default_skill`; without that, the only kind, if there is one.
//! - **Input**: for a kind listed in `message_input`, the whole message
//!   (`{"messageId", "contextId", "text", "parts", "metadata"}`); otherwise the first `data`
//!   part's value, else the text parts joined by newlines, as a JSON string.
//! - **Answer**: the question named by `metadata.question`, else the only open one; the value
//!   is the first `data` part's, else the text.

use std::collections::BTreeMap;

use longrun::Task;
use serde_json::{Map, Value, json};

use crate::{
    Config,
    error::{Error, Kind},
    map,
    wire::{Content, Message, Object, Part, Role},
};

/// The label holding the client's `messageId` of the message that started the task.
pub(crate) const MESSAGE_ID_LABEL: &str = "a2a.message_id";
/// The label saying how that message became the input: `message`, `data` or `text`.
pub(crate) const INPUT_LABEL: &str = "a2a.input";
/// The metadata key naming the skill.
pub(crate) const SKILL_KEY: &str = "skill";
/// The metadata key naming the question a follow-up message answers.
pub(crate) const QUESTION_KEY: &str = "question";
/// The metadata key carrying the caller's W3C `traceparent`.
pub(crate) const TRACEPARENT_KEY: &str = "traceparent";
/// The metadata key carrying the caller's W3C `tracestate`.
pub(crate) const TRACESTATE_KEY: &str = "tracestate";
/// The longest `messageId` kept as a label; longer ones are cut.
const MAX_MESSAGE_ID: usize = 256;

/// A message's checks before anything else: an id and at least one part.
pub(crate) fn check(message: &Message) -> Result<(), Error> {
    if message.message_id.trim().is_empty() {
        return Err(Error::invalid_params("the message has no `messageId`"));
    }
    if message.parts.is_empty() {
        return Err(Error::invalid_params("the message has no `parts`"));
    }
    if message.role == Role::Agent {
        return Err(Error::invalid_params(
            "the message's role is ROLE_AGENT; a client sends ROLE_USER messages",
        ));
    }
    Ok(())
}

/// A trace context value (`key` is [`TRACEPARENT_KEY`] or [`TRACESTATE_KEY`]) from the
/// message's metadata, else the request's, as the skill is found. Not a string: ignored, as an
/// invalid trace context is.
pub(crate) fn trace_text(message: &Message, request: Option<&Object>, key: &str) -> Option<String> {
    [message.metadata.as_ref(), request]
        .into_iter()
        .flatten()
        .find_map(|metadata| metadata.get(key))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// The kind a new message starts.
pub(crate) fn skill(
    config: &Config,
    kinds: &[String],
    message: &Message,
    request: Option<&Object>,
) -> Result<String, Error> {
    let named = [message.metadata.as_ref(), request]
        .into_iter()
        .flatten()
        .find_map(|metadata| metadata.get(SKILL_KEY));
    let name = match named {
        Some(Value::String(name)) => name.clone(),
        Some(other) => {
            return Err(Error::invalid_params(format!(
                "metadata `{SKILL_KEY}` must name a skill (a string), not {other}"
            )));
        }
        None => match (&config.default_skill, kinds) {
            (Some(default), _) => default.clone(),
            (None, [only]) => only.clone(),
            (None, _) => {
                return Err(Error::invalid_params(format!(
                    "this agent has several skills: name one in the message's metadata, e.g. \
                     {{\"{SKILL_KEY}\": \"{}\"}}; the skills are {}",
                    kinds.first().map_or("", String::as_str),
                    kinds.join(", ")
                ))
                .with("skills", kinds.join(",")));
            }
        },
    };
    if !kinds.contains(&name) {
        return Err(Error::invalid_params(format!(
            "unknown skill `{}`; the skills are {}",
            crate::error::short(&name),
            kinds.join(", ")
        ))
        .with("skills", kinds.join(",")));
    }
    Ok(name)
}

/// The handler's input from a new message, and how it was made (the [`INPUT_LABEL`]).
pub(crate) fn input(
    message: &Message,
    context_id: &str,
    whole: bool,
) -> Result<(Value, &'static str), Error> {
    let text = text(message);
    if whole {
        let mut input = Map::new();
        input.insert("messageId".into(), json!(message.message_id));
        input.insert("contextId".into(), json!(context_id));
        input.insert("text".into(), json!(text.unwrap_or_default()));
        input.insert("parts".into(), json!(message.parts));
        if let Some(metadata) = &message.metadata {
            input.insert("metadata".into(), Value::Object(metadata.clone()));
        }
        return Ok((Value::Object(input), "message"));
    }
    if let Some(data) = first_data(message) {
        return Ok((data.clone(), "data"));
    }
    match text {
        Some(text) => Ok((Value::String(text), "text")),
        None => Err(Error::new(
            Kind::ContentTypeNotSupported,
            "this skill takes its input as a `data` part or as text; the message has neither",
        )),
    }
}

/// Labels for a task started by `message`.
pub(crate) fn labels(message: &Message, mode: &str) -> [(&'static str, String); 2] {
    let id: String = message.message_id.chars().take(MAX_MESSAGE_ID).collect();
    [(MESSAGE_ID_LABEL, id), (INPUT_LABEL, mode.to_owned())]
}

/// Which open question a follow-up message answers.
pub(crate) fn question(
    message: &Message,
    pending: &BTreeMap<String, Value>,
) -> Result<String, Error> {
    let named = message
        .metadata
        .as_ref()
        .and_then(|metadata| metadata.get(QUESTION_KEY));
    match named {
        Some(Value::String(key)) => Ok(key.clone()),
        Some(other) => Err(Error::invalid_params(format!(
            "metadata `{QUESTION_KEY}` must name a question (a string), not {other}"
        ))),
        None => {
            let mut keys = pending.keys();
            match (keys.next(), keys.next()) {
                (Some(only), None) => Ok(only.clone()),
                (None, _) => Err(Error::unsupported(
                    "the task is not waiting for input; a message to a running task answers its \
                     question, and it has none open (name one in metadata `question` to answer \
                     it before it is asked)",
                )),
                (Some(_), Some(_)) => {
                    let keys: Vec<&str> = pending.keys().map(String::as_str).collect();
                    Err(Error::invalid_params(format!(
                        "the task has several open questions; name one in the message's \
                         metadata `{QUESTION_KEY}`: {}",
                        keys.join(", ")
                    ))
                    .with("questions", keys.join(",")))
                }
            }
        }
    }
}

/// The answer a follow-up message carries: its first `data` part's value, else its text.
pub(crate) fn answer(message: &Message) -> Result<Value, Error> {
    if let Some(data) = first_data(message) {
        return Ok(data.clone());
    }
    text(message).map(Value::String).ok_or_else(|| {
        Error::new(
            Kind::ContentTypeNotSupported,
            "an answer is a `data` part or text; the message has neither",
        )
    })
}

fn first_data(message: &Message) -> Option<&Value> {
    message.parts.iter().find_map(|part| match &part.content {
        Content::Data(data) => Some(data),
        _ => None,
    })
}

fn text(message: &Message) -> Option<String> {
    let texts: Vec<&str> = message
        .parts
        .iter()
        .filter_map(|part| match &part.content {
            Content::Text(text) => Some(text.as_str()),
            _ => None,
        })
        .collect();
    (!texts.is_empty()).then(|| texts.join("\n"))
}

/// The message that started `task`, as far as it can be told from the task: its id and parts
/// (exact for `message` input, the input itself otherwise).
pub(crate) fn original(task: &Task) -> Message {
    let input = &task.input;
    let label = |key: &str| task.labels.get(key).map(String::as_str);
    let (parts, metadata) = match label(INPUT_LABEL) {
        Some("message") => (
            input
                .get("parts")
                .and_then(|parts| serde_json::from_value::<Vec<Part>>(parts.clone()).ok())
                .unwrap_or_default(),
            input.get("metadata").and_then(Value::as_object).cloned(),
        ),
        Some("data") => (vec![Part::data(input.clone())], None),
        _ => (map::value_parts(input), None),
    };
    Message {
        message_id: label(MESSAGE_ID_LABEL).map_or_else(|| format!("{}-1", task.id), str::to_owned),
        role: Role::User,
        parts,
        metadata,
        ..Message::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(parts: Value, metadata: Option<Value>) -> Message {
        let mut message = json!({"messageId": "m1", "role": "ROLE_USER", "parts": parts});
        if let Some(metadata) = metadata {
            message["metadata"] = metadata;
        }
        serde_json::from_value(message).unwrap()
    }

    fn config(default: Option<&str>) -> Config {
        Config {
            default_skill: default.map(str::to_owned),
            ..Config::default()
        }
    }

    #[test]
    fn the_skill_comes_from_metadata_default_or_the_only_kind() {
        let kinds = vec!["a".to_owned(), "b".to_owned()];
        let plain = message(json!([{"text": "x"}]), None);
        let named = message(json!([{"text": "x"}]), Some(json!({"skill": "b"})));
        assert_eq!(skill(&config(None), &kinds, &named, None).unwrap(), "b");
        assert_eq!(
            skill(&config(Some("a")), &kinds, &plain, None).unwrap(),
            "a"
        );
        assert_eq!(
            skill(&config(None), &["a".to_owned()], &plain, None).unwrap(),
            "a"
        );
        let request = Map::from_iter([("skill".to_owned(), json!("a"))]);
        assert_eq!(
            skill(&config(None), &kinds, &plain, Some(&request)).unwrap(),
            "a"
        );
        let error = skill(&config(None), &kinds, &plain, None).unwrap_err();
        assert_eq!(error.kind, Kind::InvalidParams);
        assert!(error.message.contains("a, b"), "{}", error.message);
        let unknown = message(json!([{"text": "x"}]), Some(json!({"skill": "zzz"})));
        assert_eq!(
            skill(&config(None), &kinds, &unknown, None)
                .unwrap_err()
                .kind,
            Kind::InvalidParams
        );
    }

    #[test]
    fn the_input_is_data_else_text_else_the_whole_message() {
        let both = message(json!([{"text": "hi"}, {"data": {"n": 1}}]), None);
        assert_eq!(input(&both, "c", false).unwrap(), (json!({"n": 1}), "data"));
        let texts = message(json!([{"text": "a"}, {"text": "b"}]), None);
        assert_eq!(input(&texts, "c", false).unwrap(), (json!("a\nb"), "text"));
        let file = message(json!([{"url": "https://e.com/f"}]), None);
        assert_eq!(
            input(&file, "c", false).unwrap_err().kind,
            Kind::ContentTypeNotSupported
        );
        let (whole, mode) = input(&texts, "ctx", true).unwrap();
        assert_eq!(mode, "message");
        assert_eq!(whole["messageId"], "m1");
        assert_eq!(whole["contextId"], "ctx");
        assert_eq!(whole["text"], "a\nb");
        assert_eq!(whole["parts"], json!([{"text": "a"}, {"text": "b"}]));
    }

    #[test]
    fn a_follow_up_answers_the_only_or_the_named_question() {
        let one = BTreeMap::from([("q".to_owned(), json!({}))]);
        let two = BTreeMap::from([("q".to_owned(), json!({})), ("r".to_owned(), json!({}))]);
        let plain = message(json!([{"text": "yes"}]), None);
        let named = message(json!([{"text": "yes"}]), Some(json!({"question": "r"})));
        assert_eq!(question(&plain, &one).unwrap(), "q");
        assert_eq!(question(&named, &two).unwrap(), "r");
        assert_eq!(
            question(&plain, &two).unwrap_err().kind,
            Kind::InvalidParams
        );
        assert_eq!(
            question(&plain, &BTreeMap::new()).unwrap_err().kind,
            Kind::UnsupportedOperation
        );
        assert_eq!(answer(&plain).unwrap(), json!("yes"));
    }

    #[test]
    fn messages_need_an_id_and_parts() {
        assert!(check(&message(json!([{"text": "x"}]), None)).is_ok());
        assert!(check(&message(json!([]), None)).is_err());
        let mut anonymous = message(json!([{"text": "x"}]), None);
        anonymous.message_id.clear();
        assert!(check(&anonymous).is_err());
    }
}
