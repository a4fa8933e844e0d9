//! Requests made from real ones: a door's seed requests, mutated in body, path, query, headers
//! and method.

use serde_json::Value;

use crate::{case::HttpCase, mutate::Mutator};

/// A real request of a door, as its tests and the protocol's documents send it.
#[derive(Debug, Clone)]
pub(crate) struct Seed {
    pub(crate) method: &'static str,
    pub(crate) uri: String,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Option<Value>,
}

impl Seed {
    pub(crate) fn new(method: &'static str, uri: impl Into<String>) -> Self {
        Self {
            method,
            uri: uri.into(),
            headers: Vec::new(),
            body: None,
        }
    }

    pub(crate) fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_owned(), value.into()));
        self
    }

    pub(crate) fn body(mut self, body: Value) -> Self {
        self.body = Some(body);
        self.header("content-type", "application/json")
    }
}

/// Everything in `seeds` the mutator may reuse: bodies, path segments, query words, headers.
pub(crate) fn dictionary(seeds: &[Seed]) -> Vec<Value> {
    let mut values = Vec::new();
    for seed in seeds {
        values.extend(seed.body.clone());
        let (path, query) = seed.uri.split_once('?').unwrap_or((&seed.uri, ""));
        values.extend(path.split('/').map(|s| Value::from(s.to_owned())));
        values.extend(query.split(['&', '=']).map(|s| Value::from(s.to_owned())));
        for (name, value) in &seed.headers {
            values.push(Value::from(name.clone()));
            values.push(Value::from(value.clone()));
        }
    }
    values
}

/// A request made from one of `seeds`; `fixup` may then make it consistent again (headers
/// that repeat the body), so that mutations reach past the first check.
pub(crate) fn generate(
    seeds: &[Seed],
    mutator: &mut Mutator,
    fixup: impl Fn(&mut Mutator, &mut HttpCase, Option<&Value>),
) -> HttpCase {
    let seed = mutator.pick(seeds).clone();
    let mut body = seed.body.clone();
    if mutator.one_in(20) {
        // Another request's body under this one's path and headers.
        body = mutator.pick(seeds).body.clone();
    }
    if let Some(value) = body.as_mut()
        && !mutator.one_in(5)
    {
        mutator.json(value);
    }
    let mut case = HttpCase {
        method: seed.method.to_owned(),
        uri: seed.uri.clone(),
        headers: seed.headers.clone(),
        body: body
            .as_ref()
            .map(|v| v.to_string().into_bytes())
            .unwrap_or_default(),
    };
    if mutator.one_in(4) {
        case.uri = uri(mutator, &case.uri);
    }
    if mutator.one_in(4) {
        headers(mutator, &mut case.headers);
    }
    if mutator.one_in(25) {
        case.method = mutator
            .pick(&[
                "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "BREW",
            ])
            .to_string();
    }
    if !mutator.one_in(3) {
        fixup(mutator, &mut case, body.as_ref());
    }
    if mutator.one_in(6) {
        mutator.bytes(&mut case.body);
    }
    case
}

/// A changed path or query.
fn uri(mutator: &mut Mutator, uri: &str) -> String {
    let (path, query) = uri.split_once('?').unwrap_or((uri, ""));
    let mut segments: Vec<String> = path.split('/').map(str::to_owned).collect();
    let mut query = query.to_owned();
    for _ in 0..mutator.rng.usize(1..3) {
        match mutator.rng.u32(0..6) {
            0 | 1 if segments.len() > 1 => {
                let at = mutator.rng.usize(1..segments.len());
                segments[at] = segment(mutator);
            }
            2 => segments.push(segment(mutator)),
            3 if segments.len() > 2 => {
                segments.pop();
            }
            4 => {
                let key = segment(mutator);
                let value = segment(mutator);
                if !query.is_empty() {
                    query.push('&');
                }
                query.push_str(&format!("{key}={value}"));
            }
            _ => {
                let mut bytes = query.into_bytes();
                mutator.bytes(&mut bytes);
                query = String::from_utf8_lossy(&bytes).into_owned();
            }
        }
    }
    let path = segments.join("/");
    if query.is_empty() {
        path
    } else {
        format!("{path}?{query}")
    }
}

/// A path segment or query word: a dictionary word, percent-encoded, or now and then raw.
fn segment(mutator: &mut Mutator) -> String {
    let word = mutator.word();
    if mutator.one_in(8) {
        return word;
    }
    let mut encoded = String::new();
    for byte in word.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~:@!$'()*+,;".contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// Changed headers: one dropped, one given another value, one added.
fn headers(mutator: &mut Mutator, headers: &mut Vec<(String, String)>) {
    match mutator.rng.u32(0..3) {
        0 if !headers.is_empty() => {
            headers.remove(mutator.rng.usize(0..headers.len()));
        }
        1 if !headers.is_empty() => {
            let at = mutator.rng.usize(0..headers.len());
            headers[at].1 = mutator.word();
        }
        _ => {
            let name = mutator
                .pick(&[
                    "authorization",
                    "content-type",
                    "accept",
                    "a2a-version",
                    "mcp-protocol-version",
                    "mcp-session-id",
                    "mcp-method",
                    "mcp-name",
                    "last-event-id",
                    "origin",
                    "host",
                    "content-length",
                ])
                .to_string();
            let value = mutator.word();
            headers.push((name, value));
        }
    }
}
