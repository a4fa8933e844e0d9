//! The gateway: the tools of upstream MCP servers as longrun kinds.
//!
//! [`register_upstreams`] connects to each [`Upstream`], lists its tools, and registers each
//! tool as the kind `<upstream>.<tool>` (description and input schema from the tool), whose
//! handler calls the upstream tool through a [`Client`](crate::Client):
//!
//! - as a task when the upstream runs it as one (a 2025-11-25 upstream whose tool allows it, or
//!   any 2026-07-28 upstream that chooses to), plainly otherwise;
//! - the upstream's status messages and progress notifications become the longrun task's
//!   progress;
//! - an upstream elicitation or sampling request becomes the handler's `ctx.ask`: the longrun
//!   task is `input_required` until someone answers through any of longrun's doors, and the
//!   answer goes back upstream (shapes below);
//! - cancelling the longrun task cancels the upstream call (`tasks/cancel`, or
//!   `notifications/cancelled` for a plain call);
//! - a lost upstream fails the task (`upstream_lost`), never the server; the next task
//!   connects again.
//!
//! The kind's `task_support`: `required` when the upstream tool requires a task, else
//! `optional`. A tool the upstream forbids as a task still runs as a longrun task: longrun hosts
//! the task and calls the upstream plainly, which is the point of the gateway (a slow plain tool
//! of any server, called as a task through longrun).
//!
//! A question's request (what `ctx.ask` records, and what longrun's doors show) is
//! `{"message": …, "schema": <requestedSchema>, "mcp": {"method": "elicitation/create",
//! "params": …}}` for a form elicitation (`"url"` instead of `"schema"` for a URL one), and
//! `{"message": …, "type": "string", "mcp": {"method": "sampling/createMessage", "params": …}}`
//! for a sampling request: `message` and `schema` follow the convention of longrun's dashboard
//! and process handlers, `mcp` is the upstream's request verbatim. An answer to an elicitation
//! is the form's content (`{"field": value}`; a bare value when the form has one field), or a
//! whole `ElicitResult` (`{"action": "decline"}`); an answer to a sampling request is the
//! model's text, or a whole `CreateMessageResult`.
//!
//! The kind's output is the upstream's `CallToolResult` as JSON (`content`,
//! `structuredContent`); a result with `isError: true` fails the task with code `tool_error`,
//! the result in the error's details.

mod ask;
mod link;
mod relay;

use std::{collections::BTreeMap, sync::Arc};

use longrun::{KindSpec, Runtime, kind::TaskSupport as KindTaskSupport};
use serde::Deserialize;

use crate::{Error, Protocol, Target, TaskSupport};

/// One upstream MCP server (a `[[upstreams]]` entry of the server's config): a `url` (with an
/// optional bearer `token`), or a `command` (with `args` and `env`) started as a stdio server.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Upstream {
    /// The prefix of its kinds: `<name>.<tool>`. Letters, digits, `-` and `_`.
    pub name: String,
    /// Its Streamable HTTP endpoint.
    #[serde(default)]
    pub url: Option<String>,
    /// The bearer token for `url`.
    #[serde(default)]
    pub token: Option<String>,
    /// The program to start as a stdio server.
    #[serde(default)]
    pub command: Option<String>,
    /// Its arguments.
    #[serde(default)]
    pub args: Vec<String>,
    /// Environment variables for it.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Which protocol generation to speak (default: whichever the upstream does).
    #[serde(default)]
    pub protocol: Protocol,
}

impl Upstream {
    /// An upstream reached over Streamable HTTP.
    pub fn http(name: impl Into<String>, url: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            url: Some(url.into()),
            token: None,
            command: None,
            args: Vec::new(),
            env: BTreeMap::new(),
            protocol: Protocol::Auto,
        }
    }

    /// An upstream started as a stdio server.
    pub fn stdio(name: impl Into<String>, command: impl Into<String>) -> Self {
        Self {
            command: Some(command.into()),
            url: None,
            ..Self::http(name, "")
        }
    }

    /// Where to connect, once the entry is known to be valid.
    pub fn target(&self) -> Result<Target, GatewayError> {
        let invalid = |reason: &str| GatewayError::Invalid {
            name: self.name.clone(),
            reason: reason.to_owned(),
        };
        let name_ok = !self.name.is_empty()
            && self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !name_ok {
            return Err(invalid(
                "the name must be non-empty and use only letters, digits, `-` and `_`",
            ));
        }
        match (&self.url, &self.command) {
            (Some(url), None) => {
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Err(invalid("`url` must be an http:// or https:// URL"));
                }
                if !self.args.is_empty() || !self.env.is_empty() {
                    return Err(invalid("`args` and `env` go with `command`, not `url`"));
                }
                let mut target = Target::http(url.clone());
                if let Some(token) = &self.token {
                    target = target.token(token.clone());
                }
                Ok(target)
            }
            (None, Some(command)) => {
                if command.trim().is_empty() {
                    return Err(invalid("`command` is empty"));
                }
                if self.token.is_some() {
                    return Err(invalid("`token` goes with `url`, not `command`"));
                }
                Ok(Target::Stdio {
                    command: command.clone(),
                    args: self.args.clone(),
                    env: self.env.clone(),
                })
            }
            (Some(_), Some(_)) => Err(invalid("give `url` or `command`, not both")),
            (None, None) => Err(invalid("give a `url` or a `command`")),
        }
    }
}

/// Why the gateway could not register an upstream's tools.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GatewayError {
    /// The entry itself is wrong.
    #[error("invalid upstream `{name}`: {reason}")]
    Invalid {
        /// The upstream.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// The upstream could not be reached, or did not list its tools.
    #[error("upstream `{name}`: {source}")]
    Upstream {
        /// The upstream.
        name: String,
        /// What went wrong.
        source: Error,
    },
    /// A kind could not be registered (most likely its name is taken).
    #[error("could not register the kind `{kind}`: {source}")]
    Register {
        /// The kind.
        kind: String,
        /// The runtime's refusal.
        source: longrun::Error,
    },
}

/// Registers every tool of every upstream as a kind `<upstream>.<tool>` of `runtime`, and
/// returns the kinds' names. Upstreams are connected to (and their tools listed) now; each
/// keeps its connection for the kinds' tasks and connects again after losing it.
///
/// ```no_run
/// use longrun::Runtime;
/// use longrun_mcp_client::gateway::{Upstream, register_upstreams};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let runtime = Runtime::new(Default::default());
/// let kinds = register_upstreams(
///     &runtime,
///     &[Upstream::http("everything", "http://127.0.0.1:3001/mcp")],
/// )
/// .await?;
/// assert!(kinds.contains(&"everything.simulate-research-query".to_owned()));
/// # Ok(()) }
/// ```
pub async fn register_upstreams(
    runtime: &Runtime,
    upstreams: &[Upstream],
) -> Result<Vec<String>, GatewayError> {
    let mut names = std::collections::HashSet::new();
    for upstream in upstreams {
        upstream.target()?;
        if !names.insert(upstream.name.as_str()) {
            return Err(GatewayError::Invalid {
                name: upstream.name.clone(),
                reason: "two upstreams have this name".to_owned(),
            });
        }
    }
    let mut kinds = Vec::new();
    for upstream in upstreams {
        let link = Arc::new(link::Link::new(
            upstream.name.clone(),
            upstream.target()?,
            upstream.protocol,
        ));
        let failed = |source| GatewayError::Upstream {
            name: upstream.name.clone(),
            source,
        };
        let client = link.client().await.map_err(failed)?;
        let tools = client.list_tools().await.map_err(failed)?;
        for tool in tools {
            let kind = format!("{}.{}", upstream.name, tool.name);
            let mut spec = KindSpec::new(kind.clone())
                .description(tool.description.clone().unwrap_or_default())
                .task_support(match tool.task_support {
                    Some(TaskSupport::Required) => KindTaskSupport::Required,
                    _ => KindTaskSupport::Optional,
                });
            spec.input_schema = tool.input_schema.clone();
            spec.output_schema = None;
            relay::register(runtime, spec, link.clone(), tool.name.clone()).map_err(|source| {
                GatewayError::Register {
                    kind: kind.clone(),
                    source,
                }
            })?;
            kinds.push(kind);
        }
        tracing::info!(target: "longrun::mcp_client", upstream = %upstream.name, protocol = %client.protocol(), kinds = kinds.len(), "upstream MCP server registered");
    }
    Ok(kinds)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml_like: serde_json::Value) -> Result<Upstream, serde_json::Error> {
        serde_json::from_value(toml_like)
    }

    #[test]
    fn an_upstream_is_a_url_or_a_command() {
        let http = parse(
            serde_json::json!({"name": "web", "url": "http://127.0.0.1:1/mcp", "token": "t"}),
        )
        .expect("valid");
        assert_eq!(
            http.target().expect("a target"),
            Target::http("http://127.0.0.1:1/mcp").token("t")
        );
        let stdio = parse(serde_json::json!({"name": "local", "command": "server", "args": ["--stdio"], "env": {"A": "1"}}))
            .expect("valid");
        assert_eq!(
            stdio.target().expect("a target"),
            Target::stdio("server").arg("--stdio").env("A", "1")
        );
    }

    #[test]
    fn bad_upstreams_are_refused_with_a_reason() {
        for (entry, says) in [
            (
                serde_json::json!({"name": "x"}),
                "give a `url` or a `command`",
            ),
            (
                serde_json::json!({"name": "x", "url": "http://a", "command": "b"}),
                "not both",
            ),
            (
                serde_json::json!({"name": "a.b", "url": "http://a"}),
                "letters, digits",
            ),
            (
                serde_json::json!({"name": "x", "url": "ftp://a"}),
                "http://",
            ),
            (
                serde_json::json!({"name": "x", "command": "c", "token": "t"}),
                "`token` goes with `url`",
            ),
            (
                serde_json::json!({"name": "x", "url": "http://a", "args": ["1"]}),
                "go with `command`",
            ),
        ] {
            let error = parse(entry.clone())
                .expect("parses")
                .target()
                .expect_err("refused");
            assert!(error.to_string().contains(says), "{entry}: {error}");
        }
        assert!(parse(serde_json::json!({"name": "x", "url": "http://a", "colour": 1})).is_err());
    }

    #[tokio::test]
    async fn duplicate_upstream_names_are_refused_before_connecting() {
        let runtime = Runtime::new(Default::default());
        let twice = [
            Upstream::http("same", "http://127.0.0.1:9/mcp"),
            Upstream::stdio("same", "true"),
        ];
        let error = register_upstreams(&runtime, &twice)
            .await
            .expect_err("refused");
        assert!(
            error.to_string().contains("two upstreams have this name"),
            "{error}"
        );
    }
}
