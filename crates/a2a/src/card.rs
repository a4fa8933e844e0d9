//! The agent card at `/.well-known/agent-card.json`, generated from the runtime's kinds on each
//! request: skills are kinds, the capabilities say streaming and push notifications, the
//! interfaces list JSON-RPC (1.0 and 0.3) and HTTP+JSON (1.0) at `/a2a`, and the security
//! scheme is bearer tokens when the server needs them.
//!
//! The card is A2A 1.0's, which its JSON schema accepts (it allows no other fields). A request
//! that says `A2A-Version: 0.3` (or any request, with `[a2a] legacy_card`) gets 0.3's fields
//! too (`url`, `protocolVersion`, `preferredTransport`, `security`, the flat security scheme),
//! as a2a-sdk merges them, so a 0.3 client reads the same card. It is served with
//! `Vary: A2A-Version`, an `ETag` (a hash of the body; `If-None-Match` gets 304),
//! `Last-Modified` (when the server started: kinds do not change while it runs) and
//! `Cache-Control: public, max-age=300`.

use std::hash::{Hash, Hasher};

use axum::{
    extract::{RawQuery, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::{Map, Value, json};

use crate::{Door, version::Version};

/// Where the card is served.
pub(crate) const PATH: &str = "/.well-known/agent-card.json";
/// The extension that publishes each skill's input JSON schema.
pub(crate) const SCHEMAS_EXTENSION: &str = "urn:longrun:a2a:input-schemas:v1";
const CACHE_CONTROL: &str = "public, max-age=300";

/// `GET /.well-known/agent-card.json`.
pub(crate) async fn serve(
    State(door): State<Door>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    // The doors' DNS-rebinding guard: a page reached under another machine's name gets no card.
    if let Err(refusal) = door.surface().check_host(&headers) {
        return crate::error::Rest(refusal.into()).into_response();
    }
    // An unsupported version is no reason to refuse the card: it says which versions there are.
    let legacy = match Version::of(&headers, query.as_deref()).ok().flatten() {
        Some(version) => version == Version::V03,
        None => door.config().legacy_card,
    };
    let body = serde_json::to_vec(&card(&door, legacy)).unwrap_or_default();
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    body.hash(&mut hasher);
    let etag = format!("W/\"{:016x}\"", hasher.finish());
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|candidates| {
            candidates.split(',').map(str::trim).any(|candidate| {
                candidate == "*"
                    || candidate.trim_start_matches("W/") == etag.trim_start_matches("W/")
            })
        });
    let mut response = if matches {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, "application/json")], body).into_response()
    };
    let headers = response.headers_mut();
    if let Ok(etag) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, etag);
    }
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(CACHE_CONTROL),
    );
    headers.insert(header::VARY, HeaderValue::from_static("A2A-Version"));
    if let Ok(modified) = HeaderValue::from_str(&crate::time::http_date(door.started())) {
        headers.insert(header::LAST_MODIFIED, modified);
    }
    response
}

/// The card; with 0.3's fields too if `legacy`.
pub(crate) fn card(door: &Door, legacy: bool) -> Value {
    let config = door.config();
    let url = format!("{}/a2a", door.public_url());
    let mut kinds = door.runtime().kinds();
    kinds.sort_by(|a, b| a.name.cmp(&b.name));
    let modes = json!(["application/json", "text/plain"]);
    let skills: Vec<Value> = kinds
        .iter()
        .map(|kind| {
            let description = if kind.description.is_empty() {
                format!("Runs a task of kind `{}`.", kind.name)
            } else {
                kind.description.clone()
            };
            json!({
                "id": kind.name,
                "name": kind.name,
                "description": description,
                "tags": ["longrun"],
                "inputModes": modes,
                "outputModes": modes,
            })
        })
        .collect();
    let schemas: Map<String, Value> = kinds
        .iter()
        .map(|kind| (kind.name.clone(), kind.input_schema.clone()))
        .collect();
    let interface = |binding: &str, version: &str| json!({"url": url, "protocolBinding": binding, "protocolVersion": version});
    let mut card = json!({
        "name": config.name.clone().unwrap_or_else(|| "longrun".to_owned()),
        "description": config.description.clone().unwrap_or_else(|| {
            "A longrun server: each skill is a kind of long-running task. A message starts a task \
             of the skill named in its metadata `skill`; a message with the task's id answers its \
             question."
                .to_owned()
        }),
        "supportedInterfaces": [
            interface("JSONRPC", "1.0"),
            interface("HTTP+JSON", "1.0"),
            interface("JSONRPC", "0.3"),
        ],
        "provider": {"organization": "longrun", "url": door.public_url()},
        "version": env!("CARGO_PKG_VERSION"),
        "capabilities": {
            "streaming": true,
            "pushNotifications": true,
            "extendedAgentCard": false,
            "extensions": [{
                "uri": SCHEMAS_EXTENSION,
                "description": "Each skill's input JSON schema, by skill id. A data part is checked against it.",
                "required": false,
                "params": {"skills": schemas},
            }],
        },
        "defaultInputModes": modes,
        "defaultOutputModes": modes,
        "skills": skills,
    });
    if door.surface().auth().requires_token() {
        card["securitySchemes"] = json!({"bearer": {
            "httpAuthSecurityScheme": {
                "scheme": "Bearer",
                "description": "A token the server's operator gave you, as `Authorization: Bearer <token>`.",
            },
        }});
        card["securityRequirements"] = json!([{"schemes": {"bearer": {"list": []}}}]);
    }
    if legacy {
        card["protocolVersion"] = json!("0.3.0");
        card["url"] = json!(url);
        card["preferredTransport"] = json!("JSONRPC");
        if door.surface().auth().requires_token() {
            card["securitySchemes"]["bearer"]["type"] = json!("http");
            card["securitySchemes"]["bearer"]["scheme"] = json!("bearer");
            card["security"] = json!([{"bearer": []}]);
        }
    }
    card
}
