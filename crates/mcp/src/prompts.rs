//! Prompts from `[[mcp.prompts]]` (`prompts/list`, `prompts/get`) and `completion/complete`
//! for prompt arguments and resource-template variables.
//!
//! A prompt's arguments, and the fields of its questions' accepted answers, are substituted as
//! `{name}` into its messages. A prompt with questions (`asks`) answers a 2026-07-28 call
//! without their answers with an `InputRequiredResult`; the retry carries them in
//! `inputResponses`.

use base64::Engine as _;
use longrun_surface::Principal;
use serde_json::{Map, Value, json};

use crate::{
    config::{Prompt, PromptMessage},
    error::Error,
    resources,
    server::{Server, string_param},
};

/// How many completion values one answer holds (the spec's limit).
const MAX_VALUES: usize = 100;

/// `prompts/list`: every configured prompt.
pub(crate) fn list(server: &Server) -> Vec<Value> {
    server
        .config
        .prompts
        .iter()
        .map(|prompt| {
            let arguments: Vec<Value> = prompt
                .arguments
                .iter()
                .map(|argument| {
                    let mut listed = json!({"name": argument.name, "required": argument.required});
                    if let Some(description) = &argument.description {
                        listed["description"] = json!(description);
                    }
                    listed
                })
                .collect();
            let mut listed = json!({
                "name": prompt.name,
                "description": prompt.description,
                "arguments": arguments,
            });
            if let Some(title) = &prompt.title {
                listed["title"] = json!(title);
            }
            listed
        })
        .collect()
}

/// What a `prompts/get` comes to.
pub(crate) enum Got {
    /// The `GetPromptResult`.
    Messages(Map<String, Value>),
    /// The questions to answer first (key → `{method, params}`).
    Questions(Map<String, Value>),
}

/// `prompts/get`: the prompt's messages with its arguments substituted, or its questions while
/// `inputResponses` lacks their answers (`None`: a client that cannot be asked).
pub(crate) fn get(
    server: &Server,
    params: &Map<String, Value>,
    can_elicit: Option<bool>,
) -> Result<Got, Error> {
    let name = string_param(params, "name")?;
    let prompt = server
        .config
        .prompts
        .iter()
        .find(|prompt| prompt.name == name)
        .ok_or_else(|| {
            Error::InvalidParams(format!("unknown prompt `{name}`: prompts/list names them"))
        })?;
    let mut values = match params.get("arguments") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(arguments)) => arguments.clone(),
        Some(_) => return Err(Error::InvalidParams("`arguments` must be an object".into())),
    };
    if let Some(missing) = prompt
        .arguments
        .iter()
        .find(|argument| argument.required && !values.contains_key(&argument.name))
    {
        return Err(Error::InvalidParams(format!(
            "prompt `{name}` needs the argument `{}`",
            missing.name
        )));
    }
    if !prompt.asks.is_empty() {
        let responses = params.get("inputResponses").and_then(Value::as_object);
        let mut open = Map::new();
        for (key, request) in &prompt.asks {
            match responses.and_then(|responses| responses.get(key)) {
                Some(answer) => {
                    if let Some(content) = answer.get("content").and_then(Value::as_object) {
                        values.extend(content.clone());
                    }
                }
                None => {
                    open.insert(
                        key.clone(),
                        json!({"method": "elicitation/create", "params": request}),
                    );
                }
            }
        }
        if !open.is_empty() {
            return match can_elicit {
                Some(true) => Ok(Got::Questions(open)),
                Some(false) => Err(Error::MissingCapability(json!({"elicitation": {}}))),
                None => Err(Error::InvalidParams(format!(
                    "prompt `{name}` asks questions first, which only protocol 2026-07-28 can \
                     (an InputRequiredResult)"
                ))),
            };
        }
    }
    let messages = prompt
        .messages
        .iter()
        .map(|message| message_of(prompt, message, &values))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Got::Messages(Map::from_iter([
        ("description".to_owned(), json!(prompt.description)),
        ("messages".to_owned(), json!(messages)),
    ])))
}

fn message_of(
    prompt: &Prompt,
    message: &PromptMessage,
    values: &Map<String, Value>,
) -> Result<Value, Error> {
    let content = match (&message.text, &message.image, &message.resource) {
        (Some(text), None, None) => {
            json!({"type": "text", "text": resources::substitute(text, values)})
        }
        (None, Some(image), None) => {
            let data = match (&image.data, &image.file) {
                (Some(data), _) => data.clone(),
                (None, Some(file)) => {
                    let bytes = std::fs::read(file).map_err(|error| {
                        tracing::warn!(path = %file.display(), %error, "a prompt's image cannot be read");
                        Error::Internal(format!("prompt `{}` cannot be read", prompt.name))
                    })?;
                    base64::engine::general_purpose::STANDARD.encode(bytes)
                }
                (None, None) => String::new(),
            };
            json!({"type": "image", "data": data, "mimeType": image.mime_type})
        }
        (None, None, Some(resource)) => json!({"type": "resource", "resource": {
            "uri": resources::substitute(&resource.uri, values),
            "mimeType": resource.mime_type.as_deref().unwrap_or("text/plain"),
            "text": resources::substitute(&resource.text, values),
        }}),
        _ => {
            return Err(Error::Internal(format!(
                "a message of prompt `{}` must have exactly one of text, image or resource",
                prompt.name
            )));
        }
    };
    Ok(json!({"role": message.role, "content": content}))
}

/// `completion/complete`: values for a prompt argument or a template variable that start with
/// what was typed. The artifact template completes the caller's task ids and, given the id,
/// the task's artifact ids.
pub(crate) async fn complete(
    server: &Server,
    principal: &Principal,
    params: &Map<String, Value>,
) -> Result<Value, Error> {
    let reference = params
        .get("ref")
        .and_then(Value::as_object)
        .ok_or_else(|| Error::InvalidParams("`ref` must be an object".into()))?;
    let argument = params
        .get("argument")
        .and_then(Value::as_object)
        .ok_or_else(|| Error::InvalidParams("`argument` must be an object".into()))?;
    let name = string_param(argument, "name")?;
    let typed = argument.get("value").and_then(Value::as_str).unwrap_or("");
    let context = params
        .get("context")
        .and_then(|context| context.get("arguments"))
        .and_then(Value::as_object);
    let candidates: Vec<String> = match reference.get("type").and_then(Value::as_str) {
        Some("ref/prompt") => {
            let prompt_name = string_param(reference, "name")?;
            let prompt = server
                .config
                .prompts
                .iter()
                .find(|prompt| prompt.name == prompt_name)
                .ok_or_else(|| Error::InvalidParams(format!("unknown prompt `{prompt_name}`")))?;
            prompt
                .arguments
                .iter()
                .find(|argument| argument.name == name)
                .map(|argument| argument.values.clone())
                .unwrap_or_default()
        }
        Some("ref/resource") => {
            let uri = string_param(reference, "uri")?;
            if uri == resources::ARTIFACT_TEMPLATE {
                artifact_candidates(server, principal, name, context).await?
            } else {
                server
                    .config
                    .resource_templates
                    .iter()
                    .find(|template| template.uri_template == uri)
                    .and_then(|template| template.values.get(name).cloned())
                    .unwrap_or_default()
            }
        }
        _ => {
            return Err(Error::InvalidParams(
                "`ref.type` must be \"ref/prompt\" or \"ref/resource\"".into(),
            ));
        }
    };
    let matching: Vec<String> = candidates
        .into_iter()
        .filter(|candidate| candidate.starts_with(typed))
        .collect();
    let total = matching.len();
    let values: Vec<String> = matching.into_iter().take(MAX_VALUES).collect();
    Ok(json!({"completion": {
        "values": values,
        "total": total,
        "hasMore": total > MAX_VALUES,
    }}))
}

/// The caller's task ids (newest first), or the artifact ids of the task in `context.id`.
async fn artifact_candidates(
    server: &Server,
    principal: &Principal,
    variable: &str,
    context: Option<&Map<String, Value>>,
) -> Result<Vec<String>, Error> {
    match variable {
        "id" => {
            let filter = longrun::task::Filter {
                owner: Some(principal.owner()),
                ..longrun::task::Filter::default()
            };
            let page = server.runtime().list(filter, None, MAX_VALUES).await?;
            Ok(page.tasks.iter().map(|task| task.id.to_string()).collect())
        }
        "artifact" => {
            let Some(id) = context
                .and_then(|context| context.get("id"))
                .and_then(Value::as_str)
            else {
                return Ok(Vec::new());
            };
            Ok(match server.owned(principal, id).await {
                Ok(task) => task
                    .artifacts()
                    .iter()
                    .map(|artifact| artifact.id.clone())
                    .collect(),
                Err(_) => Vec::new(),
            })
        }
        _ => Ok(Vec::new()),
    }
}
