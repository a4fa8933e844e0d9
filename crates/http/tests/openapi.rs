//! The committed OpenAPI document (`docs/openapi.json`) must be the one the code generates.

use std::path::Path;

const REGENERATE: &str = "cargo run -p longrun-http --example openapi > docs/openapi.json";

#[test]
fn the_committed_document_matches_the_code() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json");
    let committed = std::fs::read_to_string(&path).unwrap_or_else(|error| {
        panic!(
            "cannot read {}: {error}; run `{REGENERATE}`",
            path.display()
        )
    });
    // Compared as JSON values, not text: key order in the printed form may follow serde_json's
    // features, which the rest of the workspace can change.
    let committed: serde_json::Value = serde_json::from_str(&committed).unwrap_or_else(|error| {
        panic!("docs/openapi.json is not JSON ({error}); run `{REGENERATE}`")
    });
    assert!(
        committed == longrun_http::openapi(),
        "docs/openapi.json is not what the code generates; from the repository root run:\n    {REGENERATE}"
    );
}

#[test]
fn the_document_describes_every_route() {
    let document = longrun_http::openapi();
    let paths = document["paths"].as_object().unwrap();
    for (path, method) in [
        ("/v1/tasks", "post"),
        ("/v1/tasks", "get"),
        ("/v1/tasks/{id}", "get"),
        ("/v1/tasks/{id}/cancel", "post"),
        ("/v1/tasks/{id}/answers/{key}", "post"),
        ("/v1/tasks/{id}/events", "get"),
        ("/v1/events", "get"),
        ("/v1/sessions/{session}/inbox:drain", "post"),
        ("/v1/kinds", "get"),
        ("/healthz", "get"),
        ("/metrics", "get"),
        ("/openapi.json", "get"),
    ] {
        assert!(
            paths[path][method].is_object(),
            "{method} {path} is not documented"
        );
    }
    assert_eq!(
        document["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
}

/// Client generators name a method after each operation: two operations with one id make a
/// client that does not compile (or silently drops one).
#[test]
fn every_operation_has_its_own_id() {
    let document = longrun_http::openapi();
    let mut ids = std::collections::BTreeMap::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let id = operation["operationId"]
                .as_str()
                .unwrap_or_else(|| panic!("{method} {path} has no operationId"));
            if let Some(earlier) = ids.insert(id.to_owned(), format!("{method} {path}")) {
                panic!("{method} {path} and {earlier} share the operationId {id}");
            }
        }
    }
}
