//! Prints the API's OpenAPI document, as committed in `docs/openapi.json`.
//!
//! Regenerate the committed copy after changing the API:
//! `cargo run -p longrun-http --example openapi > docs/openapi.json`

#![allow(
    clippy::disallowed_methods,
    clippy::disallowed_macros,
    reason = "an example prints what it shows and plays the user's side on tasks of its own"
)]

fn main() {
    let document = longrun_http::openapi();
    let text = serde_json::to_string_pretty(&document).expect("a JSON value always serializes");
    println!("{text}");
}
