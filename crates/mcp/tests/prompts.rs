//! Prompts and static resources declared in the config (`[[mcp.prompts]]`,
//! `[[mcp.resources]]`, `[[mcp.resource_templates]]`), completions, and the capabilities
//! offered only when something is configured.

mod common;

use common::{ALICE, Client, Session, config, runtime, serve};
use serde_json::{Value, json};

/// The config a `longrun.toml` with prompts and resources gives.
fn configured() -> longrun_mcp::Config {
    let toml = json!({
        "prompts": [
            {
                "name": "greet",
                "description": "Greets someone.",
                "arguments": [{"name": "who", "required": true, "values": ["world", "wombat", "alice"]}],
                "messages": [
                    {"text": "Say hello to {who}."},
                    {"role": "assistant", "resource": {"uri": "notes://{who}", "text": "About {who}."}},
                ],
            },
            {
                "name": "ask_first",
                "description": "Asks for a mood first.",
                "asks": {"mood": {"message": "Mood?", "requestedSchema": {
                    "type": "object", "properties": {"mood": {"type": "string"}}}}},
                "messages": [{"text": "Write {mood}ly."}],
            },
        ],
        "resources": [{"uri": "notes://readme", "name": "readme", "text": "Read me."}],
        "resource_templates": [{
            "uri_template": "notes://{who}/card",
            "name": "card",
            "text": "Card of {who}",
            "values": {"who": ["world", "wombat"]},
        }],
    });
    let mut config: longrun_mcp::Config = serde_json::from_value(toml).unwrap();
    config.input_settle_ms = 30;
    config
}

#[tokio::test(flavor = "multi_thread")]
async fn configured_prompts_and_resources_are_served_on_both_generations() {
    let url = serve(runtime(), configured()).await;
    let alice = Client::new(&url, Some(ALICE));

    let discovered = alice.modern_ok("server/discover", json!({}), false).await;
    assert!(discovered["capabilities"]["prompts"].is_object());
    assert!(discovered["capabilities"]["completions"].is_object());

    let listed = alice.modern_ok("prompts/list", json!({}), false).await;
    assert_eq!(listed["prompts"][0]["name"], "greet");
    assert_eq!(listed["prompts"][0]["arguments"][0]["required"], true);
    assert!(listed["ttlMs"].is_u64() && listed["cacheScope"] == "public");

    let got = alice
        .modern_ok(
            "prompts/get",
            json!({"name": "greet", "arguments": {"who": "Ada"}}),
            false,
        )
        .await;
    assert_eq!(got["messages"][0]["content"]["text"], "Say hello to Ada.");
    assert_eq!(got["messages"][1]["role"], "assistant");
    assert_eq!(
        got["messages"][1]["content"]["resource"]["uri"],
        "notes://Ada"
    );
    let missing = alice
        .modern(2, "prompts/get", json!({"name": "greet"}), false)
        .await
        .response()
        .await;
    assert_eq!(missing["error"]["code"], -32602);

    // A prompt with a question: asked first, then given with the answer.
    let asked = alice
        .modern_ok("prompts/get", json!({"name": "ask_first"}), false)
        .await;
    assert_eq!(asked["resultType"], "input_required");
    assert_eq!(
        asked["inputRequests"]["mood"]["method"],
        "elicitation/create"
    );
    let answered = alice
        .modern_ok(
            "prompts/get",
            json!({"name": "ask_first", "inputResponses": {
                "mood": {"action": "accept", "content": {"mood": "cheerful"}}}}),
            false,
        )
        .await;
    assert_eq!(
        answered["messages"][0]["content"]["text"],
        "Write cheerfully."
    );

    let completed = alice
        .modern_ok(
            "completion/complete",
            json!({"ref": {"type": "ref/prompt", "name": "greet"},
                   "argument": {"name": "who", "value": "w"}}),
            false,
        )
        .await;
    assert_eq!(
        completed["completion"]["values"],
        json!(["world", "wombat"])
    );
    let completed = alice
        .modern_ok(
            "completion/complete",
            json!({"ref": {"type": "ref/resource", "uri": "notes://{who}/card"},
                   "argument": {"name": "who", "value": "wo"}}),
            false,
        )
        .await;
    assert_eq!(
        completed["completion"]["values"],
        json!(["world", "wombat"])
    );

    let resources = alice.modern_ok("resources/list", json!({}), false).await;
    assert_eq!(resources["resources"][0]["uri"], "notes://readme");
    let read = alice
        .modern_ok("resources/read", json!({"uri": "notes://Ada/card"}), false)
        .await;
    assert_eq!(read["contents"][0]["text"], "Card of Ada");

    // The same over 2025-11-25, where a prompt's questions cannot be asked.
    let session = Session::open(&alice, json!({})).await;
    let got = session
        .ok(
            "prompts/get",
            json!({"name": "greet", "arguments": {"who": "Bo"}}),
        )
        .await;
    assert_eq!(got["messages"][0]["content"]["text"], "Say hello to Bo.");
    assert_eq!(
        session
            .error("prompts/get", json!({"name": "ask_first"}))
            .await,
        -32602
    );
    let read = session
        .ok("resources/read", json!({"uri": "notes://readme"}))
        .await;
    assert_eq!(read["contents"][0]["text"], "Read me.");
}

#[tokio::test(flavor = "multi_thread")]
async fn without_configuration_prompts_and_completions_are_not_offered() {
    let url = serve(runtime(), config()).await;
    let alice = Client::new(&url, Some(ALICE));
    let discovered = alice.modern_ok("server/discover", json!({}), false).await;
    let capabilities = &discovered["capabilities"];
    assert_eq!(capabilities["prompts"], Value::Null);
    assert_eq!(capabilities["completions"], Value::Null);
    // Resources are always there: the tasks' artifacts.
    assert!(capabilities["resources"].is_object());
    for method in ["prompts/list", "completion/complete"] {
        let refused = alice
            .modern(3, method, json!({}), false)
            .await
            .response()
            .await;
        assert_eq!(refused["error"]["code"], -32601, "{method}");
    }
    let session = Session::open(&alice, json!({})).await;
    assert_eq!(session.error("prompts/list", json!({})).await, -32601);
}
