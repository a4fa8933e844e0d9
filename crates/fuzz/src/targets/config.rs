//! The config file of `longrun serve`: TOML mutated as a structure (then written back as
//! TOML) or as lines and bytes, read by the very parser the binary uses, then checked the way
//! the server goes on to use it (`auth`, each kind's `spec`).
//!
//! The parser is `crates/cli/src/config.rs` compiled into this crate (see `lib.rs`), so the
//! binary exposes nothing for the fuzzer.

use std::{path::PathBuf, sync::Arc};

use futures_util::{FutureExt, future::BoxFuture};
use serde_json::{Map, Value};

use crate::{case::Input, cli_config, engine::Door, mutate::Mutator};

/// Real config files: the demo's and those of the parser's tests.
const SEEDS: &[&str] = &[
    include_str!("../../../../examples/demo/longrun.toml"),
    r#"
[server]
listen = "127.0.0.1:7700"
data = "state"
postgres_schema = "jobs"
node = "web-1"
public_url = "https://tasks.example.com"

[[tokens]]
token = "secret-a"
principal = "alice"

[limits]
body_bytes = 1048576
streams_per_principal = 8
max_wait_ms = 5000
global_concurrency = 64
principal_concurrency = 8
input_bytes = 65536
artifact_bytes = 1048576
event_bytes = 65536
max_finished = 10000

[mcp]
poll_interval_ms = 250
ask_before_task = ["book"]
max_sessions = 100

[a2a]
name = "tasks"
default_skill = "countdown"
message_input = ["chat"]
max_blocking_ms = 30000
legacy_card = true

[[kinds]]
name = "countdown"
description = "Counts down."
command = ["python3", "countdown.py", "--fast"]
env = { MODE = "test" }
concurrency = 2
over_limit = "reject"
restart = "rerun"
ttl_ms = 60000
deadline_ms = 30000
cancel_grace_ms = 1000
term_grace_ms = 500
routing = { detach_after_ms = 1500 }
task_support = "required"
input_schema = { type = "object", required = ["seconds"] }
output_schema = { type = "object" }

[[upstreams]]
name = "everything"
url = "http://127.0.0.1:3001/mcp"
"#,
    r#"
[server]
anonymous = true
listen = "[::1]:7700"

[tokens]
"secret-b" = "bob"

[[kinds]]
name = "echo"
command = ["cat"]
routing = "foreground"
"#,
];

pub(crate) struct Config {
    seeds: Vec<Value>,
}

pub(crate) async fn open() -> Arc<dyn Door> {
    let seeds = SEEDS
        .iter()
        .filter_map(|text| toml::from_str::<toml::Table>(text).ok())
        .filter_map(|table| serde_json::to_value(table).ok())
        .collect();
    Arc::new(Config { seeds })
}

impl Door for Config {
    fn dictionary(&self) -> Vec<Value> {
        self.seeds.clone()
    }

    fn generate(&self, mutator: &mut Mutator) -> Input {
        let mut text = if mutator.rng.bool() && !self.seeds.is_empty() {
            let mut value = mutator.pick(&self.seeds).clone();
            mutator.json(&mut value);
            toml_text(&value).into_bytes()
        } else {
            let seed = *mutator.pick(SEEDS);
            lines(mutator, seed)
        };
        if mutator.one_in(4) {
            mutator.bytes(&mut text);
        }
        Input::Bytes(text)
    }

    fn run(self: Arc<Self>, input: Input) -> BoxFuture<'static, Result<(), String>> {
        async move {
            let Input::Bytes(bytes) = input else {
                return Ok(());
            };
            // The server reads the file with `read_to_string`: bytes that are not UTF-8 stop
            // there, before the parser.
            let Ok(text) = String::from_utf8(bytes) else {
                return Ok(());
            };
            // Off the async workers, so that a parser that never returns is seen as a hang.
            tokio::task::spawn_blocking(move || check(&text))
                .await
                .map_err(|error| format!("panic: {error}"))?
        }
        .boxed()
    }

    fn close(&self) -> BoxFuture<'static, ()> {
        async {}.boxed()
    }
}

/// Parses `text` as the server does, then uses it as the server does.
fn check(text: &str) -> Result<(), String> {
    match cli_config::Config::parse(text, "fuzz.toml", PathBuf::from("/fuzz")) {
        Err(error) => {
            let message = error.to_string();
            if message.trim().is_empty() {
                Err(format!("an error without a message: {error:?}"))
            } else {
                Ok(())
            }
        }
        Ok(config) => {
            let listen = config
                .server
                .listen
                .clone()
                .unwrap_or_else(|| cli_config::DEFAULT_LISTEN.to_owned());
            for address in [listen.as_str(), "0.0.0.0:7700", "127.0.0.1:7700"] {
                if let Err(error) = config.auth(address)
                    && error.to_string().is_empty()
                {
                    return Err("an auth error without a message".into());
                }
            }
            let _ = config.data_dir();
            for kind in &config.kinds {
                let _ = kind.spec();
            }
            Ok(())
        }
    }
}

/// Line-level changes: a line dropped, repeated, moved, or its value replaced.
fn lines(mutator: &mut Mutator, text: &str) -> Vec<u8> {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    for _ in 0..mutator.rng.usize(1..4) {
        if lines.is_empty() {
            break;
        }
        let at = mutator.rng.usize(0..lines.len());
        match mutator.rng.u32(0..5) {
            0 => {
                lines.remove(at);
            }
            1 => {
                let line = lines[at].clone();
                let to = mutator.rng.usize(0..=lines.len());
                lines.insert(to, line);
            }
            2 => {
                let to = mutator.rng.usize(0..lines.len());
                lines.swap(at, to);
            }
            _ => {
                if let Some((key, _)) = lines[at].split_once('=') {
                    let value = inline(&mutator.value());
                    lines[at] = format!("{key}= {value}");
                } else {
                    lines[at] = format!("[{}]", mutator.word());
                }
            }
        }
    }
    lines.join("\n").into_bytes()
}

/// `value` (a table) written as TOML: scalars first, then tables, then arrays of tables.
fn toml_text(value: &Value) -> String {
    let Value::Object(table) = value else {
        return format!("value = {}\n", inline(value));
    };
    let mut text = String::new();
    entries(&mut text, table, true);
    for (key, item) in table {
        match item {
            Value::Object(inner) => {
                text.push_str(&format!("\n[{}]\n", quote(key)));
                entries(&mut text, inner, false);
            }
            Value::Array(items) if !items.is_empty() && items.iter().all(Value::is_object) => {
                for inner in items.iter().filter_map(Value::as_object) {
                    text.push_str(&format!("\n[[{}]]\n", quote(key)));
                    entries(&mut text, inner, false);
                }
            }
            _ => {}
        }
    }
    text
}

/// The `key = value` lines of a table's entries; at the top (`sections`), tables and arrays
/// of tables are left to their own sections.
fn entries(text: &mut String, table: &Map<String, Value>, sections: bool) {
    for (key, item) in table {
        let nested = match item {
            Value::Object(_) => true,
            Value::Array(items) => !items.is_empty() && items.iter().all(Value::is_object),
            _ => false,
        };
        if !(item.is_null() || sections && nested) {
            text.push_str(&format!("{} = {}\n", quote(key), inline(item)));
        }
    }
}

/// A value written inline (TOML has no null: written as an empty inline table).
fn inline(value: &Value) -> String {
    match value {
        Value::Null => "{}".into(),
        Value::Bool(flag) => flag.to_string(),
        Value::Number(number) => number.to_string(),
        Value::String(text) => quote(text),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(inline).collect();
            format!("[{}]", items.join(", "))
        }
        Value::Object(map) => {
            let items: Vec<String> = map
                .iter()
                .map(|(key, item)| format!("{} = {}", quote(key), inline(item)))
                .collect();
            format!("{{ {} }}", items.join(", "))
        }
    }
}

/// A TOML basic string (JSON's escapes are TOML's).
fn quote(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| "\"\"".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_written_back_parses_to_the_same_table() {
        for seed in SEEDS {
            let table: toml::Table = toml::from_str(seed).expect("the seed is TOML");
            let value = serde_json::to_value(&table).expect("TOML is JSON");
            let again: toml::Table = toml::from_str(&toml_text(&value)).expect("written back");
            assert_eq!(again, table);
        }
    }
}
