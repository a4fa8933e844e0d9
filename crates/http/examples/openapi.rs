//! Prints the API's OpenAPI document, as committed in `docs/openapi.json`.
//!
//! Regenerate the committed copy after changing the API:
//! `cargo run -p longrun-http --example openapi > docs/openapi.json`

fn main() {
    let document = longrun_http::openapi();
    let text = serde_json::to_string_pretty(&document).expect("a JSON value always serializes");
    println!("{text}");
}
