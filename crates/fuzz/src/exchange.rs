//! Sends one request through a door's router (`Router::oneshot`, as the server does) and reads
//! its answer: a whole body, or the first messages of an event stream.

use std::time::Duration;

use axum::{
    Router,
    body::Body,
    http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Uri, header},
};
use futures_util::StreamExt;
use tower::ServiceExt;

use crate::case::HttpCase;

/// How long an event stream is read: a stream may rightly stay open for as long as its task
/// runs, so only its first messages are checked.
const STREAM_READ: Duration = Duration::from_millis(150);

/// The most of an event stream that is read.
const STREAM_BYTES: usize = 256 << 10;

/// The largest body read whole. A door never answers with more; a bigger one is a finding.
const BODY_BYTES: usize = 32 << 20;

/// A door's answer.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) headers: HeaderMap,
    pub(crate) content_type: String,
    /// The body; for an event stream, what was read of it.
    pub(crate) body: Vec<u8>,
    /// For an event stream, the `data` of each whole message read.
    pub(crate) events: Option<Vec<String>>,
}

impl Reply {
    pub(crate) fn is_json(&self) -> bool {
        self.content_type.starts_with("application/json")
            || self.content_type.starts_with("application/a2a+json")
    }
}

/// Sends `case` with its placeholders filled by `fill`. `Ok(None)` when the request cannot
/// exist on the wire (a method or URI that HTTP itself refuses: no server would see it), and
/// for HEAD.
pub(crate) async fn send(
    router: &Router,
    case: &HttpCase,
    fill: impl Fn(&str) -> String,
) -> Result<Option<Reply>, String> {
    let Ok(method) = Method::from_bytes(case.method.as_bytes()) else {
        return Ok(None);
    };
    let Ok(uri) = fill(&case.uri).parse::<Uri>() else {
        return Ok(None);
    };
    // A HEAD answer has no body by definition: it is run (a panic or a hang still counts), not
    // checked.
    let head = method == Method::HEAD;
    let mut request = Request::new(Body::from(fill_bytes(&case.body, &fill)));
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    for (name, value) in &case.headers {
        // A header the wire could not carry is left out, as a client library would.
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&fill(value)),
        ) {
            request.headers_mut().append(name, value);
        }
    }
    let response = match router.clone().oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    if head {
        return Ok(None);
    }
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if content_type.starts_with("text/event-stream") {
        let mut stream = response.into_body().into_data_stream();
        let mut body = Vec::new();
        let read = async {
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|error| format!("the event stream failed: {error}"))?;
                body.extend_from_slice(&chunk);
                if body.len() > STREAM_BYTES {
                    break;
                }
            }
            Ok::<_, String>(())
        };
        if let Ok(result) = tokio::time::timeout(STREAM_READ, read).await {
            result?;
        }
        let events = events(&body);
        return Ok(Some(Reply {
            status,
            headers,
            content_type,
            body,
            events: Some(events),
        }));
    }
    let body = axum::body::to_bytes(response.into_body(), BODY_BYTES)
        .await
        .map_err(|error| format!("the body could not be read (over {BODY_BYTES} bytes?): {error}"))?
        .to_vec();
    Ok(Some(Reply {
        status,
        headers,
        content_type,
        body,
        events: None,
    }))
}

/// The body with its placeholders filled, when it is text.
fn fill_bytes(body: &[u8], fill: &impl Fn(&str) -> String) -> Vec<u8> {
    match std::str::from_utf8(body) {
        Ok(text) => fill(text).into_bytes(),
        Err(_) => body.to_vec(),
    }
}

/// The `data` of each whole message of an event stream (comments and partial messages skipped).
fn events(body: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(body).replace("\r\n", "\n");
    let Some(end) = text.rfind("\n\n") else {
        return Vec::new();
    };
    text[..end]
        .split("\n\n")
        .filter_map(|message| {
            let data: Vec<&str> = message
                .lines()
                .filter_map(|line| line.strip_prefix("data:"))
                .map(|data| data.strip_prefix(' ').unwrap_or(data))
                .collect();
            (!data.is_empty()).then(|| data.join("\n"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_messages_are_their_data() {
        let body = b": keep-alive\n\nevent: x\nid: 1\ndata: {\"a\":\ndata: 1}\n\ndata: cut";
        assert_eq!(events(body), vec!["{\"a\":\n1}".to_owned()]);
    }
}
