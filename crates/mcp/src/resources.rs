//! Resources: every task's artifacts under the template
//! `longrun://tasks/{id}/artifacts/{artifact}` (the caller's own tasks only, like every other
//! read), and the static resources and templates of `[[mcp.resources]]` and
//! `[[mcp.resource_templates]]`.
//!
//! An artifact's parts become its contents: a string is text, `{"file": {"raw": …}}` a blob,
//! `{"file": {"url": …}}` a `text/uri-list`, anything else JSON text. Subscribing to an
//! artifact (`resources/subscribe` over 2025-11-25, `resourceSubscriptions` on a 2026-07-28
//! listen stream) sends `notifications/resources/updated` each time a chunk of it arrives.

use std::sync::Arc;

use base64::Engine as _;
use longrun::{
    TaskId,
    event::{Change, Notice, Seq},
};
use longrun_surface::Principal;
use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;

use crate::{config, error::Error, notify::Sink, server::Server};

/// The template every task's artifacts are read through.
pub(crate) const ARTIFACT_TEMPLATE: &str = "longrun://tasks/{id}/artifacts/{artifact}";

const ARTIFACT_PREFIX: &str = "longrun://tasks/";

/// `resources/list`: the configured static resources.
pub(crate) fn list(server: &Server) -> Vec<Value> {
    server
        .config
        .resources
        .iter()
        .map(|resource| {
            let mut listed = json!({"uri": resource.uri, "name": resource.name});
            for (key, value) in [
                ("title", &resource.title),
                ("description", &resource.description),
                ("mimeType", &Some(static_mime(resource).to_owned())),
            ] {
                if let Some(value) = value {
                    listed[key] = json!(value);
                }
            }
            listed
        })
        .collect()
}

/// `resources/templates/list`: the artifacts' template, then the configured ones.
pub(crate) fn templates(server: &Server) -> Vec<Value> {
    let mut templates = vec![json!({
        "uriTemplate": ARTIFACT_TEMPLATE,
        "name": "task-artifact",
        "title": "A task's artifact",
        "description": "An artifact of one of your tasks, as its handler emitted it so far.",
    })];
    templates.extend(server.config.resource_templates.iter().map(|template| {
        let mut listed = json!({
            "uriTemplate": template.uri_template,
            "name": template.name,
            "mimeType": template.mime_type.as_deref().unwrap_or("text/plain"),
        });
        if let Some(description) = &template.description {
            listed["description"] = json!(description);
        }
        listed
    }));
    templates
}

/// Whether a read of `uri` is the caller's own (an artifact) rather than public.
pub(crate) fn is_private(uri: &str) -> bool {
    uri.starts_with(ARTIFACT_PREFIX)
}

/// `resources/read`: the contents of `uri`, for `principal`.
pub(crate) async fn read(
    server: &Server,
    principal: &Principal,
    uri: &str,
) -> Result<Vec<Value>, Error> {
    let not_found = || Error::ResourceNotFound(uri.chars().take(200).collect());
    if let Some((task, artifact)) = parse_artifact(uri) {
        let task = server
            .owned(principal, &task)
            .await
            .map_err(|_| not_found())?;
        let artifact = task
            .artifacts()
            .iter()
            .find(|candidate| candidate.id == artifact)
            .ok_or_else(not_found)?;
        return Ok(artifact
            .parts
            .iter()
            .map(|part| part_contents(uri, part))
            .collect());
    }
    if let Some(resource) = server.config.resources.iter().find(|r| r.uri == uri) {
        return static_contents(resource).map(|contents| vec![contents]);
    }
    for template in &server.config.resource_templates {
        if let Some(values) = match_template(&template.uri_template, uri) {
            let text = substitute(&template.text, &values);
            let mime = template.mime_type.as_deref().unwrap_or("text/plain");
            return Ok(vec![json!({"uri": uri, "mimeType": mime, "text": text})]);
        }
    }
    Err(not_found())
}

/// One artifact part as resource contents.
fn part_contents(uri: &str, part: &Value) -> Value {
    if let Value::String(text) = part {
        return json!({"uri": uri, "mimeType": "text/plain", "text": text});
    }
    let file = part
        .get("file")
        .and_then(Value::as_object)
        .filter(|_| part.as_object().is_some_and(|object| object.len() == 1));
    if let Some(file) = file {
        let media = file.get("mediaType").and_then(Value::as_str);
        if let Some(raw) = file.get("raw").and_then(Value::as_str) {
            let mime = media.unwrap_or("application/octet-stream");
            return json!({"uri": uri, "mimeType": mime, "blob": raw});
        }
        if let Some(url) = file.get("url").and_then(Value::as_str) {
            return json!({"uri": uri, "mimeType": "text/uri-list", "text": url});
        }
    }
    json!({"uri": uri, "mimeType": "application/json", "text": part.to_string()})
}

fn static_mime(resource: &config::Resource) -> &str {
    match (&resource.mime_type, &resource.text) {
        (Some(mime), _) => mime,
        (None, Some(_)) => "text/plain",
        (None, None) => "application/octet-stream",
    }
}

/// A static resource's contents: its text, or its file (text when the MIME type is textual).
fn static_contents(resource: &config::Resource) -> Result<Value, Error> {
    let mime = static_mime(resource);
    let uri = &resource.uri;
    if let Some(text) = &resource.text {
        return Ok(json!({"uri": uri, "mimeType": mime, "text": text}));
    }
    let Some(path) = &resource.file else {
        return Ok(json!({"uri": uri, "mimeType": mime, "text": ""}));
    };
    let bytes = std::fs::read(path).map_err(|error| {
        tracing::warn!(path = %path.display(), %error, "a configured resource file cannot be read");
        Error::Internal(format!("the resource `{uri}` cannot be read"))
    })?;
    if is_textual(mime)
        && let Ok(text) = String::from_utf8(bytes.clone())
    {
        return Ok(json!({"uri": uri, "mimeType": mime, "text": text}));
    }
    let blob = base64::engine::general_purpose::STANDARD.encode(bytes);
    Ok(json!({"uri": uri, "mimeType": mime, "blob": blob}))
}

fn is_textual(mime: &str) -> bool {
    mime.starts_with("text/") || mime.ends_with("json") || mime.ends_with("xml")
}

/// `longrun://tasks/{id}/artifacts/{artifact}` → (task id, artifact id), the artifact id
/// percent-decoded.
pub(crate) fn parse_artifact(uri: &str) -> Option<(String, String)> {
    let rest = uri.strip_prefix(ARTIFACT_PREFIX)?;
    let (task, artifact) = rest.split_once("/artifacts/")?;
    if task.is_empty() || task.contains('/') || artifact.is_empty() {
        return None;
    }
    Some((task.to_owned(), percent_decode(artifact)?))
}

/// The URI of a task's artifact.
#[cfg(test)]
fn artifact_uri(task: TaskId, artifact: &str) -> String {
    let mut encoded = String::new();
    for byte in artifact.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    format!("{ARTIFACT_PREFIX}{task}/artifacts/{encoded}")
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        if bytes[at] == b'%' {
            let hex = text.get(at + 1..at + 3)?;
            decoded.push(u8::from_str_radix(hex, 16).ok()?);
            at += 3;
        } else {
            decoded.push(bytes[at]);
            at += 1;
        }
    }
    String::from_utf8(decoded).ok()
}

/// The variables of `uri` under `template` (`{name}` matches one non-empty path segment).
pub(crate) fn match_template(template: &str, uri: &str) -> Option<Map<String, Value>> {
    let mut values = Map::new();
    let mut rest = uri;
    let mut pieces = template.split('{');
    let head = pieces.next()?;
    rest = rest.strip_prefix(head)?;
    for piece in pieces {
        let (name, literal) = piece.split_once('}')?;
        let end = if literal.is_empty() {
            rest.find(['/', '?', '#']).unwrap_or(rest.len())
        } else {
            rest.find(literal)?
        };
        let value = &rest[..end];
        if value.is_empty() || value.contains('/') {
            return None;
        }
        values.insert(name.to_owned(), json!(value));
        rest = rest[end..].strip_prefix(literal)?;
    }
    rest.is_empty().then_some(values)
}

/// `text` with every `{name}` whose name is in `values` replaced by the value.
pub(crate) fn substitute(text: &str, values: &Map<String, Value>) -> String {
    let mut out = text.to_owned();
    for (name, value) in values {
        let value = match value {
            Value::String(text) => text.clone(),
            other => other.to_string(),
        };
        out = out.replace(&format!("{{{name}}}"), &value);
    }
    out
}

/// A subscription to one artifact.
#[derive(Debug, Clone)]
pub(crate) struct Watch {
    /// The URI subscribed to.
    pub(crate) uri: String,
    task: TaskId,
    artifact: String,
    after: Seq,
}

/// A subscription to `uri` if it names an artifact of one of `principal`'s tasks (which may
/// not exist yet); `None` for anything else.
pub(crate) async fn watch(server: &Server, principal: &Principal, uri: &str) -> Option<Watch> {
    let (task, artifact) = parse_artifact(uri)?;
    let task = server.owned(principal, &task).await.ok()?;
    Some(Watch {
        uri: uri.to_owned(),
        task: task.id,
        artifact,
        after: task.last_seq(),
    })
}

/// Sends `notifications/resources/updated` each time a chunk of the watched artifact arrives,
/// until the task ended, nobody listens, or `stop`.
pub(crate) async fn follow(server: Arc<Server>, watch: Watch, sink: Sink, stop: CancellationToken) {
    let Ok(mut events) = server.runtime().subscribe(watch.task, watch.after).await else {
        return;
    };
    loop {
        let notice = tokio::select! {
            notice = events.next() => notice,
            () = sink.closed() => return,
            () = stop.cancelled() => return,
            () = server.surface.stopping() => return,
        };
        let event = match notice {
            Ok(Some(Notice::Event(event))) => event,
            Ok(Some(Notice::Lagged { .. })) => continue,
            Ok(None) | Err(_) => return,
        };
        if let Change::Artifact(chunk) = &event.change
            && chunk.id == watch.artifact
        {
            let params = Map::from_iter([("uri".to_owned(), json!(watch.uri))]);
            if !sink.send("notifications/resources/updated", params).await {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_match_one_segment_per_variable() {
        let values = match_template("test://template/{id}/data", "test://template/123/data");
        assert_eq!(values.unwrap()["id"], "123");
        assert!(match_template("test://template/{id}/data", "test://template/1/2/data").is_none());
        assert!(match_template("test://template/{id}/data", "test://template//data").is_none());
        let both = match_template(ARTIFACT_TEMPLATE, "longrun://tasks/task_1/artifacts/a").unwrap();
        assert_eq!(
            (both["id"].clone(), both["artifact"].clone()),
            (json!("task_1"), json!("a"))
        );
    }

    #[test]
    fn artifact_uris_round_trip() {
        let task = TaskId::random();
        let uri = artifact_uri(task, "report v2/final");
        assert!(!uri[ARTIFACT_PREFIX.len()..].contains(' '));
        assert_eq!(
            parse_artifact(&uri),
            Some((task.to_string(), "report v2/final".to_owned()))
        );
        assert_eq!(parse_artifact("longrun://tasks//artifacts/a"), None);
        assert_eq!(parse_artifact("test://static-text"), None);
    }

    #[test]
    fn substitution_leaves_other_braces_alone() {
        let values = Map::from_iter([("id".to_owned(), json!("7"))]);
        assert_eq!(
            substitute(r#"{"id":"{id}","n":{other}}"#, &values),
            r#"{"id":"7","n":{other}}"#
        );
    }
}
