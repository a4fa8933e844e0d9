//! The server's TOML configuration (`longrun serve --config PATH`): where to listen, which store,
//! who may call, the limits, and the kinds, each an external command.
//!
//! Parsing is strict: an unknown key anywhere is an error that names the key and its line (the
//! `toml` crate reports positions), because a misspelt `concurrency` silently ignored is worse
//! than a server that refuses to start. What cannot be checked by the shape alone (duplicate
//! kinds or tokens, an empty command, how callers authenticate, the `[oauth]` settings) is
//! checked in
//! [`Config::parse`]; whether anonymous access is allowed depends on the listen address, which
//! the command line may override, so that check is [`Config::auth`], called once the address
//! is final.
//!
//! Relative paths in the file (`data`, and the command of each kind, which runs in the config
//! file's directory) are relative to the config file's directory, so a config works from
//! whatever directory the server is started in.

use std::{
    collections::{BTreeMap, HashMap},
    fmt,
    ops::Range,
    path::{Path, PathBuf},
    time::Duration,
};

use longrun::{
    KindSpec,
    kind::{RestartPolicy, RetryPolicy, TaskSupport},
    limits::OverLimit,
    task::Routing,
};
use serde::{
    Deserialize, Deserializer,
    de::{MapAccess, SeqAccess, Visitor},
};
use serde_json::Value;
use toml::Spanned;

/// The listen address when neither the config nor `--listen` gives one.
pub(crate) const DEFAULT_LISTEN: &str = "127.0.0.1:7700";

/// What is wrong with a config file, in words that say where and what to do.
///
/// Each message includes its cause; the causes are not also chained as `source`, so that
/// `{:#}` (how the binary prints errors) does not say everything twice.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    /// The file could not be read.
    #[error("cannot read the config file {path}: {error}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        error: std::io::Error,
    },
    /// The file is not valid TOML or does not have the expected shape (unknown key, wrong type).
    /// The `toml` error names the line, the column and the offending text.
    #[error("invalid config file {path}: {error}")]
    Parse {
        /// The file.
        path: String,
        /// What the parser said.
        error: Box<toml::de::Error>,
    },
    /// Anything else found while checking the parsed file.
    #[error("invalid config file {path}{at}: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// `", line N"` when the problem has a place, else empty.
        at: String,
        /// What is wrong and what to do.
        message: String,
    },
    /// `anonymous = true` with an address other ones than the machine itself can reach.
    #[error(
        "refusing to serve anonymously on {listen}: `anonymous = true` lets anyone who can reach \
         the address start, read and cancel tasks, so it is allowed only on a loopback address \
         (127.0.0.0/8, ::1 or localhost). Listen on 127.0.0.1, or remove `anonymous` and give \
         callers bearer tokens with [[tokens]]"
    )]
    AnonymousNotLoopback {
        /// The listen address as given.
        listen: String,
    },
}

/// A whole config file, as read.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Config {
    /// `[server]`.
    #[serde(default)]
    pub(crate) server: Server,
    /// `[[tokens]]` (or a `[tokens]` table of token = principal).
    #[serde(default)]
    pub(crate) tokens: Tokens,
    /// `[limits]`.
    #[serde(default)]
    pub(crate) limits: Limits,
    /// `[[kinds]]`.
    #[serde(default)]
    pub(crate) kinds: Vec<Kind>,
    /// `[mcp]`: the MCP door's settings.
    #[serde(default)]
    pub(crate) mcp: longrun_mcp::Config,
    /// `[a2a]`: the A2A door's settings.
    #[serde(default)]
    pub(crate) a2a: longrun_a2a::Config,
    /// `[oauth]`: bearer JWTs of an OAuth 2.1 authorization server, beside or instead of
    /// `[[tokens]]`.
    #[serde(default)]
    pub(crate) oauth: Option<Spanned<OAuth>>,
    /// `[[upstreams]]`: MCP servers whose tools become kinds `<upstream>.<tool>` (the gateway).
    #[serde(default)]
    pub(crate) upstreams: Vec<longrun_mcp::client::gateway::Upstream>,
    /// `[workers]`: the worker protocol's timings.
    #[serde(default)]
    pub(crate) workers: Workers,
    /// `[webhooks]`: where `/v1` webhooks' pending deliveries are kept, whether loopback
    /// receivers are allowed, and the secret for webhooks that name none (`docs/webhooks.md`).
    #[serde(default)]
    pub(crate) webhooks: longrun_http::WebhookConfig,
    /// `[telemetry]`: where the task spans are exported (`docs/telemetry.md`).
    #[serde(default)]
    pub(crate) telemetry: Telemetry,
    /// The config file's directory: relative paths are relative to it.
    #[serde(skip)]
    pub(crate) dir: PathBuf,
}

/// `[server]`: where to listen and which store to use.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Server {
    /// `host:port`; `--listen` overrides it. Default [`DEFAULT_LISTEN`].
    pub(crate) listen: Option<String>,
    /// The data directory (the SQLite file lives there); `--data` overrides it.
    pub(crate) data: Option<PathBuf>,
    /// A PostgreSQL URL: selects the PostgreSQL store instead of SQLite.
    pub(crate) postgres: Option<String>,
    /// The PostgreSQL schema the tables live in (default `longrun`), so that several
    /// deployments can share one database.
    pub(crate) postgres_schema: Option<String>,
    /// This server's node name among the servers sharing a PostgreSQL database. Give each a
    /// stable, unique one: a node restarting under the same name takes its running tasks back at
    /// once, instead of after their leases expire. Default: host name and process id.
    pub(crate) node: Option<String>,
    /// Everyone is the principal `anonymous`, no token needed. Loopback addresses only.
    #[serde(default)]
    pub(crate) anonymous: bool,
    /// Where clients reach this server (`https://tasks.example.com`, behind a proxy, say), for
    /// the URLs the A2A agent card publishes. Default: `http://` and the listening address.
    pub(crate) public_url: Option<String>,
}

/// `[oauth]`: the server as an OAuth 2.1 resource server (`docs/oauth.md`). Only `issuer` is
/// required; the rest default as [`longrun_surface::OAuthConfig::new`] says.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct OAuth {
    /// The authorization server's issuer identifier, exactly the `iss` of its tokens.
    pub(crate) issuer: String,
    /// This server's resource identifier (RFC 8707) that tokens' `aud` must name. Default:
    /// `[server] public_url`.
    pub(crate) audience: Option<String>,
    /// The issuer's JWKS. Default: discovered from the issuer's metadata.
    pub(crate) jwks_url: Option<String>,
    /// The claim that names the principal. Default `sub`.
    pub(crate) principal_claim: Option<String>,
    /// The JWS algorithms accepted. Default: every asymmetric one.
    pub(crate) algorithms: Option<Vec<String>>,
    /// Seconds `exp` and `nbf` may be off. Default 30.
    pub(crate) leeway_s: Option<u64>,
    /// Scopes the protected-resource metadata advertises.
    #[serde(default)]
    pub(crate) scopes: Vec<String>,
}

/// `[limits]`: request, stream and concurrency bounds. Unset keys keep the defaults of the
/// HTTP adapter and the runtime.
#[derive(Debug, Default, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Limits {
    /// The largest request body accepted, in bytes.
    pub(crate) body_bytes: Option<usize>,
    /// How many event streams one principal may hold open at once.
    pub(crate) streams_per_principal: Option<usize>,
    /// The longest `wait_ms` a start may ask for.
    pub(crate) max_wait_ms: Option<u64>,
    /// At most this many tasks run at once, all kinds and principals together.
    pub(crate) global_concurrency: Option<usize>,
    /// At most this many tasks of one principal run at once.
    pub(crate) principal_concurrency: Option<usize>,
    /// The largest task input, serialized.
    pub(crate) input_bytes: Option<usize>,
    /// The largest artifact chunk, serialized.
    pub(crate) artifact_bytes: Option<usize>,
    /// The largest other event payload (a progress message, a question, an answer).
    pub(crate) event_bytes: Option<usize>,
    /// Keep at most this many finished tasks, whatever their ttl.
    pub(crate) max_finished: Option<usize>,
}

/// `[telemetry]`: traces. Without `otlp_endpoint`, nothing is exported and no exporter runs.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Telemetry {
    /// The OTLP/HTTP collector: a base URL such as `http://127.0.0.1:4318` (spans go to its
    /// `/v1/traces`), or the full URL of the traces endpoint.
    pub(crate) otlp_endpoint: Option<String>,
    /// The `service.name` resource attribute of the exported spans. Default `longrun`.
    pub(crate) service_name: Option<String>,
}

/// `[workers]`: how often workers send heartbeats, when a silent one is lost, and (with
/// several nodes) when a task waiting here for a worker goes to another node.
#[derive(Debug, Default, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Workers {
    /// How often a worker is told to send its heartbeat (default 2,000).
    pub(crate) heartbeat_ms: Option<u64>,
    /// A worker without a heartbeat for this long is lost (default 6,000): its tasks are
    /// re-run on another worker or failed, per their kind's `restart`.
    pub(crate) expiry_ms: Option<u64>,
    /// With several nodes: a task that no worker of this node has taken for this long goes to
    /// a node whose workers have room (default 1,000).
    pub(crate) hand_over_ms: Option<u64>,
}

impl Workers {
    /// The hub's timings; `open` when the server has no tokens (anyone may serve).
    pub(crate) fn options(&self, open: bool) -> longrun_worker_hub::HubOptions {
        let defaults = longrun_worker_hub::HubOptions::default();
        longrun_worker_hub::HubOptions {
            heartbeat: self
                .heartbeat_ms
                .map_or(defaults.heartbeat, Duration::from_millis),
            expiry: self
                .expiry_ms
                .map_or(defaults.expiry, Duration::from_millis),
            open,
            hand_over_after: self
                .hand_over_ms
                .map_or(defaults.hand_over_after, Duration::from_millis),
        }
    }
}

/// One `[[kinds]]` entry: a task type served by an external command, or by workers.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Kind {
    /// Unique name.
    pub(crate) name: Spanned<String>,
    /// What it does, for people and agents.
    #[serde(default)]
    pub(crate) description: String,
    /// Program and arguments; run in the config file's directory. Without it, workers serve
    /// the kind (`docs/worker-protocol.md`).
    pub(crate) command: Option<Vec<String>>,
    /// Served by workers (the same as leaving `command` out, said out loud).
    #[serde(default)]
    pub(crate) worker: bool,
    /// The principals allowed to serve the kind as workers (`"*"`: every authenticated one).
    /// A server without tokens lets anyone.
    pub(crate) served_by: Option<Vec<String>>,
    /// Extra environment variables for the command.
    #[serde(default)]
    pub(crate) env: BTreeMap<String, String>,
    /// JSON schema of the input, written as a TOML table.
    pub(crate) input_schema: Option<Value>,
    /// JSON schema of the output, when known.
    pub(crate) output_schema: Option<Value>,
    /// At most this many tasks of the kind run at once.
    pub(crate) concurrency: Option<usize>,
    /// What a start above the limit does.
    #[serde(default)]
    pub(crate) over_limit: OverLimitConfig,
    /// What a crash or restart does to a running task.
    #[serde(default)]
    pub(crate) restart: RestartConfig,
    /// How long a finished task stays readable.
    pub(crate) ttl_ms: Option<u64>,
    /// The longest a task may live before it is cancelled.
    pub(crate) deadline_ms: Option<u64>,
    /// How long a cancelled handler may take before the runtime drops it.
    pub(crate) cancel_grace_ms: Option<u64>,
    /// How long the command has between SIGTERM and SIGKILL.
    pub(crate) term_grace_ms: Option<u64>,
    /// How callers wait, unless the start says otherwise.
    #[serde(default)]
    pub(crate) routing: RoutingConfig,
    /// Whether MCP clients may (`optional`, the default), must (`required`) or must not
    /// (`forbidden`) call the kind's tool as a task.
    #[serde(default)]
    pub(crate) task_support: TaskSupport,
    /// The process protocol version the command speaks: 1 (the default) or 2 (durable steps,
    /// durable sleeps, retry hints on `fail`).
    pub(crate) protocol: Option<u32>,
    /// How failed attempts are retried (`[kinds.retry]`); without it, a failure is final.
    pub(crate) retry: Option<RetryConfig>,
    /// The webhook a `/v1` start of this kind gets when it names none:
    /// `webhook = { url = "…", events = "end" }` (`docs/webhooks.md`).
    pub(crate) webhook: Option<longrun_http::model::Webhook>,
}

/// `[kinds.retry]`: every field optional, defaults as [`RetryPolicy::attempts`] gives them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RetryConfig {
    /// Attempts in all, the first included (a re-run after a crash counts).
    pub(crate) max_attempts: Option<u32>,
    /// The delay after the first failed attempt.
    pub(crate) initial_backoff_ms: Option<u64>,
    /// The longest delay.
    pub(crate) max_backoff_ms: Option<u64>,
    /// How much each delay grows over the one before.
    pub(crate) multiplier: Option<f64>,
    /// The random share of each delay, from 0 to 1.
    pub(crate) jitter: Option<f64>,
}

impl RetryConfig {
    /// The runtime's policy.
    pub(crate) fn policy(&self) -> RetryPolicy {
        let defaults = RetryPolicy::attempts(3);
        let mut policy = RetryPolicy::attempts(self.max_attempts.unwrap_or(defaults.max_attempts));
        if let Some(ms) = self.initial_backoff_ms {
            policy = policy.initial_backoff(Duration::from_millis(ms));
        }
        if let Some(ms) = self.max_backoff_ms {
            policy = policy.max_backoff(Duration::from_millis(ms));
        }
        if let Some(multiplier) = self.multiplier {
            policy = policy.multiplier(multiplier);
        }
        if let Some(jitter) = self.jitter {
            policy = policy.jitter(jitter);
        }
        policy
    }
}

/// `over_limit = "queue" | "reject"`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum OverLimitConfig {
    /// Wait for a slot.
    #[default]
    Queue,
    /// End at once as `rejected`.
    Reject,
}

/// `restart = "rerun" | "fail"`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum RestartConfig {
    /// Run the command again (`attempt` + 1) with earlier answers replayed.
    Rerun,
    /// End the task `failed` with code `interrupted` (the default: a command is not assumed
    /// to be safe to run twice).
    #[default]
    Fail,
}

/// `routing = "background" | "foreground"` or `routing = { detach_after_ms = N }`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum RoutingConfig {
    /// The caller gets the task at once.
    #[default]
    Background,
    /// The caller waits for the outcome.
    Foreground,
    /// The caller waits up to this many milliseconds, then the task detaches.
    DetachAfterMs(u64),
}

/// The bearer tokens, in the order they were written.
#[derive(Debug, Default)]
pub(crate) struct Tokens(pub(crate) Vec<Token>);

/// One token and the principal it stands for.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Token {
    /// The secret a caller sends as `Authorization: Bearer …`.
    pub(crate) token: Spanned<String>,
    /// Who the caller is: the owner of the tasks it starts.
    pub(crate) principal: String,
}

/// How callers authenticate, once checked against the listen address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Auth {
    /// No token; everyone is `anonymous`.
    Anonymous,
    /// Token → principal.
    Tokens(HashMap<String, String>),
}

impl Config {
    /// Reads and checks the file at `path`.
    pub(crate) fn load(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|error| Error::Read {
            path: path.display().to_string(),
            error,
        })?;
        let dir = path
            .parent()
            .map(Path::to_path_buf)
            .filter(|dir| !dir.as_os_str().is_empty())
            .unwrap_or_else(|| PathBuf::from("."));
        // Absolute, so that commands and logs do not depend on the server's working directory.
        let dir = dir.canonicalize().unwrap_or(dir);
        Self::parse(&text, &path.display().to_string(), dir)
    }

    /// Parses and checks `text`; `origin` names it in errors; `dir` is what relative paths are
    /// relative to.
    pub(crate) fn parse(text: &str, origin: &str, dir: PathBuf) -> Result<Self, Error> {
        let mut config: Self = toml::from_str(text).map_err(|error| Error::Parse {
            path: origin.to_owned(),
            error: Box::new(error),
        })?;
        config.mcp.resolve_files(&dir);
        config.dir = dir;
        let invalid = |span: Option<Range<usize>>, message: String| Error::Invalid {
            path: origin.to_owned(),
            at: span.map_or_else(String::new, |span| {
                format!(", line {}", line_of(text, span))
            }),
            message,
        };

        let mut kinds: HashMap<&str, Range<usize>> = HashMap::new();
        for kind in &config.kinds {
            let name = kind.name.get_ref();
            if name.trim().is_empty() {
                return Err(invalid(
                    Some(kind.name.span()),
                    "a kind has an empty name".into(),
                ));
            }
            if let Some(first) = kinds.insert(name, kind.name.span()) {
                return Err(invalid(
                    Some(kind.name.span()),
                    format!(
                        "kind `{name}` is defined twice (first at line {}); kind names must be \
                         unique",
                        line_of(text, first)
                    ),
                ));
            }
            match &kind.command {
                Some(_) if kind.worker => {
                    return Err(invalid(
                        Some(kind.name.span()),
                        format!(
                            "kind `{name}` has both a command and `worker = true`; a kind is \
                             served by its command or by workers, not both"
                        ),
                    ));
                }
                Some(command) if command.first().is_none_or(|program| program.is_empty()) => {
                    return Err(invalid(
                        Some(kind.name.span()),
                        format!(
                            "kind `{name}` has an empty command; write the program and its \
                             arguments, e.g. command = [\"python3\", \"handler.py\"], or leave \
                             `command` out for a kind served by workers"
                        ),
                    ));
                }
                Some(_) if kind.served_by.is_some() => {
                    return Err(invalid(
                        Some(kind.name.span()),
                        format!(
                            "kind `{name}` has a command, so `served_by` (which names who may \
                             serve it as a worker) does not apply"
                        ),
                    ));
                }
                Some(_) => {}
                None => {
                    let command_only = [
                        ("env", !kind.env.is_empty()),
                        ("term_grace_ms", kind.term_grace_ms.is_some()),
                        ("protocol", kind.protocol.is_some()),
                    ];
                    if let Some((key, _)) = command_only.iter().find(|(_, set)| *set) {
                        return Err(invalid(
                            Some(kind.name.span()),
                            format!(
                                "kind `{name}` is served by workers (it has no command), so \
                                 `{key}`, which applies to commands, cannot be set"
                            ),
                        ));
                    }
                }
            }
            if kind.concurrency == Some(0) {
                return Err(invalid(
                    Some(kind.name.span()),
                    format!("kind `{name}` has concurrency = 0, so no task of it could ever run"),
                ));
            }
        }

        let mut tokens: HashMap<&str, Range<usize>> = HashMap::new();
        for token in &config.tokens.0 {
            let secret = token.token.get_ref();
            if secret.is_empty() || token.principal.is_empty() {
                return Err(invalid(
                    Some(token.token.span()),
                    "a token or its principal is empty".into(),
                ));
            }
            if let Some(first) = tokens.insert(secret, token.token.span()) {
                return Err(invalid(
                    Some(token.token.span()),
                    format!(
                        "the same token is listed twice (first at line {}); each token names one \
                         principal",
                        line_of(text, first)
                    ),
                ));
            }
        }
        if let Some(oauth) = &config.oauth {
            let span = Some(oauth.span());
            if config.server.anonymous {
                return Err(invalid(
                    span,
                    "both `anonymous = true` and [oauth] are set; choose one: anonymous access \
                     (loopback only) or bearer tokens"
                        .into(),
                ));
            }
            match config.oauth_config() {
                Some(oauth) => oauth
                    .check()
                    .map_err(|error| invalid(span, error.to_string()))?,
                None => {
                    return Err(invalid(
                        span,
                        "[oauth] needs this server's resource identifier, which tokens' `aud` \
                         must name: set `audience`, or `public_url` under [server] (the URL \
                         clients reach this server at, e.g. \"https://tasks.example.com\")"
                            .into(),
                    ));
                }
            }
        }
        if config.server.anonymous && !config.tokens.0.is_empty() {
            return Err(invalid(
                None,
                "both `anonymous = true` and [[tokens]] are set; choose one: anonymous access \
                 (loopback only) or bearer tokens"
                    .into(),
            ));
        }
        if !config.server.anonymous && config.tokens.0.is_empty() && config.oauth.is_none() {
            return Err(invalid(
                None,
                "nobody could call this server: add [[tokens]] entries (token = \"…\", \
                 principal = \"…\"), or an [oauth] section, or set `anonymous = true` under \
                 [server] on a loopback address"
                    .into(),
            ));
        }
        Ok(config)
    }

    /// How callers authenticate when serving on `listen`: refuses anonymous access on an
    /// address that is not loopback.
    pub(crate) fn auth(&self, listen: &str) -> Result<Auth, Error> {
        if self.server.anonymous {
            // A listening address is a `Host` value: the doors' own test of this machine's names.
            if !longrun_surface::is_loopback(listen) {
                return Err(Error::AnonymousNotLoopback {
                    listen: listen.to_owned(),
                });
            }
            return Ok(Auth::Anonymous);
        }
        Ok(Auth::Tokens(
            self.tokens
                .0
                .iter()
                .map(|token| (token.token.get_ref().clone(), token.principal.clone()))
                .collect(),
        ))
    }

    /// The `[oauth]` settings as the surface takes them, or `None` without an `[oauth]`
    /// section or without an audience (which [`Config::parse`] refuses). A token that matches
    /// no `[[tokens]]` entry is checked as a JWT against them.
    pub(crate) fn oauth_config(&self) -> Option<longrun_surface::OAuthConfig> {
        let oauth = self.oauth.as_ref()?.get_ref();
        let audience = oauth
            .audience
            .clone()
            .or_else(|| self.server.public_url.clone())?;
        let mut config = longrun_surface::OAuthConfig::new(oauth.issuer.clone(), audience);
        config.jwks_url = oauth.jwks_url.clone();
        if let Some(claim) = &oauth.principal_claim {
            config.principal_claim = claim.clone();
        }
        if let Some(algorithms) = &oauth.algorithms {
            config.algorithms = algorithms.clone();
        }
        if let Some(seconds) = oauth.leeway_s {
            config.leeway = Duration::from_secs(seconds);
        }
        config.scopes = oauth.scopes.clone();
        Some(config)
    }

    /// The data directory from the file, resolved against the file's directory.
    pub(crate) fn data_dir(&self) -> Option<PathBuf> {
        self.server.data.as_ref().map(|data| self.dir.join(data))
    }
}

impl Kind {
    /// Whether workers serve the kind (it has no command).
    pub(crate) fn is_worker(&self) -> bool {
        self.command.is_none()
    }

    /// Who may serve the kind as a worker.
    pub(crate) fn worker_kind(&self) -> longrun_worker_hub::WorkerKind {
        longrun_worker_hub::WorkerKind {
            served_by: self.served_by.clone().unwrap_or_default(),
            input_schema: self.input_schema.clone(),
        }
    }

    /// The runtime's view of the kind: its name, schema and policies.
    pub(crate) fn spec(&self) -> KindSpec {
        let mut spec = KindSpec::new(self.name.get_ref().clone())
            .description(self.description.clone())
            .over_limit(match self.over_limit {
                OverLimitConfig::Queue => OverLimit::Queue,
                OverLimitConfig::Reject => OverLimit::Reject,
            })
            .restart(match self.restart {
                RestartConfig::Rerun => RestartPolicy::Rerun,
                RestartConfig::Fail => RestartPolicy::Fail,
            })
            .routing(match self.routing {
                RoutingConfig::Background => Routing::Background,
                RoutingConfig::Foreground => Routing::Foreground,
                RoutingConfig::DetachAfterMs(ms) => Routing::DetachAfter(Duration::from_millis(ms)),
            })
            .task_support(self.task_support);
        // Without a schema in the file the kind takes any JSON: `{}` here, which the runtime
        // replaces with the schema of the handler's `serde_json::Value` input (any value).
        spec.input_schema = self
            .input_schema
            .clone()
            .unwrap_or_else(|| serde_json::json!({}));
        spec.output_schema = self.output_schema.clone();
        if let Some(limit) = self.concurrency {
            spec = spec.concurrency(limit);
        }
        if let Some(ms) = self.ttl_ms {
            spec = spec.ttl(Duration::from_millis(ms));
        }
        if let Some(ms) = self.deadline_ms {
            spec = spec.deadline(Duration::from_millis(ms));
        }
        if let Some(ms) = self.cancel_grace_ms {
            spec = spec.cancel_grace(Duration::from_millis(ms));
        }
        if let Some(retry) = &self.retry {
            spec = spec.retry(retry.policy());
        }
        spec
    }
}

/// The 1-based line of the start of `span` in `text`.
fn line_of(text: &str, span: Range<usize>) -> usize {
    text.get(..span.start)
        .map_or(0, |before| before.matches('\n').count())
        + 1
}

impl<'de> Deserialize<'de> for Tokens {
    /// Accepts `[[tokens]]` entries (an array of `{token, principal}` tables) or one `[tokens]`
    /// table of `token = "principal"` pairs. Written by hand rather than as an untagged enum so
    /// that an error inside an entry keeps its own message and position.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TokensVisitor;

        impl<'de> Visitor<'de> for TokensVisitor {
            type Value = Tokens;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "[[tokens]] entries with `token` and `principal`, or a [tokens] table of \
                     token = \"principal\"",
                )
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Tokens, A::Error> {
                let mut tokens = Vec::new();
                while let Some(token) = seq.next_element::<Token>()? {
                    tokens.push(token);
                }
                Ok(Tokens(tokens))
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Tokens, A::Error> {
                let mut tokens = Vec::new();
                while let Some((token, principal)) = map.next_entry::<Spanned<String>, String>()? {
                    tokens.push(Token { token, principal });
                }
                Ok(Tokens(tokens))
            }
        }

        deserializer.deserialize_any(TokensVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[server]
listen = "127.0.0.1:7700"
data = "state"
postgres_schema = "jobs"
node = "web-1"

[[tokens]]
token = "secret-a"
principal = "alice"

[[tokens]]
token = "secret-b"
principal = "bob"

[limits]
body_bytes = 65536
streams_per_principal = 8
global_concurrency = 100

[[kinds]]
name = "countdown"
description = "Counts down"
command = ["python3", "countdown.py"]
env = { PYTHONUNBUFFERED = "1" }
restart = "rerun"
concurrency = 4
over_limit = "reject"
ttl_ms = 60000
deadline_ms = 120000
cancel_grace_ms = 2000
term_grace_ms = 1000
routing = { detach_after_ms = 1500 }

protocol = 2

[kinds.retry]
max_attempts = 5
initial_backoff_ms = 200
max_backoff_ms = 10000
multiplier = 3.0

[kinds.input_schema]
type = "object"
required = ["seconds"]

[kinds.input_schema.properties.seconds]
type = "integer"
minimum = 0

[[kinds]]
name = "fail"
command = ["sh", "fail.sh"]
"#;

    fn parse(text: &str) -> Result<Config, Error> {
        Config::parse(text, "test.toml", PathBuf::from("/etc/longrun"))
    }

    #[test]
    fn worker_timings_parse_with_their_defaults() {
        let server = "[server]\nanonymous = true\n";
        let defaults = parse(server).unwrap().workers.options(true);
        assert_eq!(
            defaults,
            longrun_worker_hub::HubOptions {
                open: true,
                ..Default::default()
            }
        );
        let set = parse(&format!(
            "{server}[workers]\nheartbeat_ms = 500\nexpiry_ms = 1500\nhand_over_ms = 250\n"
        ))
        .unwrap()
        .workers
        .options(false);
        assert_eq!(set.heartbeat, Duration::from_millis(500));
        assert_eq!(set.expiry, Duration::from_millis(1500));
        assert_eq!(set.hand_over_after, Duration::from_millis(250));
        assert!(parse(&format!("{server}[workers]\nhandover_ms = 250\n")).is_err());
    }

    #[test]
    fn webhooks_and_a_kind_default_webhook_parse() {
        let config = parse(
            r#"
[server]
anonymous = true

[webhooks]
allow_loopback = true
secret = "whsec_dGhpcnR5LXR3by1ieXRlcy1vZi13ZWJob29rLWtleSE="

[[kinds]]
name = "build"
command = ["make"]
webhook = { url = "https://ci.example.com/hook", events = "end" }
"#,
        )
        .unwrap();
        assert!(config.webhooks.allow_loopback);
        assert!(config.webhooks.secret.is_some());
        let webhook = config.kinds[0].webhook.as_ref().unwrap();
        assert_eq!(webhook.url, "https://ci.example.com/hook");
        assert_eq!(webhook.events, longrun_http::model::WebhookEvents::End);
        assert_eq!(webhook.secret, None);
        // Unknown keys are refused, in the table and in a kind's webhook.
        let server = "[server]\nanonymous = true\n";
        assert!(parse(&format!("{server}[webhooks]\nallow_loopback = true\n")).is_ok());
        assert!(parse(&format!("{server}[webhooks]\nallow = true\n")).is_err());
        assert!(
            parse(&format!(
                "{server}[[kinds]]\nname = \"a\"\ncommand = [\"true\"]\n\
                 webhook = {{ url = \"https://x.example\", event = \"end\" }}\n"
            ))
            .is_err()
        );
    }

    #[test]
    fn a_good_config_parses_into_kinds_tokens_and_limits() {
        let config = parse(GOOD).unwrap();
        assert_eq!(config.server.listen.as_deref(), Some("127.0.0.1:7700"));
        assert_eq!(config.data_dir(), Some(PathBuf::from("/etc/longrun/state")));
        assert_eq!(config.server.postgres_schema.as_deref(), Some("jobs"));
        assert_eq!(config.server.node.as_deref(), Some("web-1"));
        assert_eq!(config.limits.body_bytes, Some(65536));
        assert_eq!(config.limits.global_concurrency, Some(100));
        assert_eq!(config.kinds.len(), 2);

        let countdown = &config.kinds[0];
        assert_eq!(
            countdown.command.as_deref(),
            Some(&["python3".to_owned(), "countdown.py".to_owned()][..])
        );
        assert_eq!(countdown.env["PYTHONUNBUFFERED"], "1");
        assert_eq!(countdown.term_grace_ms, Some(1000));
        let spec = countdown.spec();
        assert_eq!(spec.name, "countdown");
        assert_eq!(spec.description, "Counts down");
        assert_eq!(spec.restart, RestartPolicy::Rerun);
        assert_eq!(spec.over_limit, OverLimit::Reject);
        assert_eq!(spec.concurrency, Some(4));
        assert_eq!(spec.ttl, Duration::from_secs(60));
        assert_eq!(spec.deadline, Some(Duration::from_secs(120)));
        assert_eq!(spec.cancel_grace, Duration::from_secs(2));
        assert_eq!(
            spec.routing,
            Routing::DetachAfter(Duration::from_millis(1500))
        );
        assert_eq!(
            spec.input_schema,
            serde_json::json!({
                "type": "object",
                "required": ["seconds"],
                "properties": {"seconds": {"type": "integer", "minimum": 0}},
            })
        );

        assert_eq!(countdown.protocol, Some(2));
        assert_eq!(
            spec.retry,
            RetryPolicy::attempts(5)
                .initial_backoff(Duration::from_millis(200))
                .max_backoff(Duration::from_secs(10))
                .multiplier(3.0)
        );

        let fail = config.kinds[1].spec();
        assert_eq!(
            fail.retry,
            RetryPolicy::NONE,
            "no [kinds.retry]: no retries"
        );
        assert_eq!(fail.restart, RestartPolicy::Fail);
        assert_eq!(fail.input_schema, serde_json::json!({}));
        assert_eq!(fail.routing, Routing::Background);

        let Auth::Tokens(tokens) = config.auth("0.0.0.0:7700").unwrap() else {
            panic!("tokens were configured");
        };
        assert_eq!(tokens.len(), 2);
        assert_eq!(tokens["secret-b"], "bob");
    }

    #[test]
    fn tokens_may_be_one_table_of_token_to_principal() {
        let config = parse(
            "[tokens]\n\"secret-a\" = \"alice\"\n\"secret-b\" = \"bob\"\n\n[[kinds]]\nname = \
             \"x\"\ncommand = [\"true\"]\n",
        )
        .unwrap();
        let Auth::Tokens(tokens) = config.auth("127.0.0.1:1").unwrap() else {
            panic!("tokens were configured");
        };
        assert_eq!(tokens["secret-a"], "alice");
        assert_eq!(tokens["secret-b"], "bob");
    }

    #[test]
    fn an_unknown_key_is_refused_with_its_name_and_line() {
        let text = GOOD.replace("concurrency = 4", "concurency = 4");
        let error = parse(&text).unwrap_err().to_string();
        assert!(error.contains("concurency"), "{error}");
        let line = GOOD
            .lines()
            .position(|line| line == "concurrency = 4")
            .unwrap()
            + 1;
        assert!(error.contains(&format!("line {line}")), "{error}");
    }

    #[test]
    fn an_unknown_section_is_refused() {
        let error = parse(&format!("{GOOD}\n[serve]\nlisten = \"x\"\n"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("serve"), "{error}");
    }

    #[test]
    fn a_duplicate_kind_is_refused_with_both_lines() {
        let text = format!("{GOOD}\n[[kinds]]\nname = \"countdown\"\ncommand = [\"true\"]\n");
        let error = parse(&text).unwrap_err().to_string();
        assert!(
            error.contains("kind `countdown` is defined twice"),
            "{error}"
        );
        let first = text
            .lines()
            .position(|line| line == "name = \"countdown\"")
            .unwrap()
            + 1;
        let second = text
            .lines()
            .collect::<Vec<_>>()
            .iter()
            .rposition(|line| *line == "name = \"countdown\"")
            .unwrap()
            + 1;
        assert!(error.contains(&format!("line {second}")), "{error}");
        assert!(error.contains(&format!("first at line {first}")), "{error}");
    }

    #[test]
    fn a_duplicate_token_is_refused() {
        let text = GOOD.replace("secret-b", "secret-a");
        let error = parse(&text).unwrap_err().to_string();
        assert!(error.contains("same token is listed twice"), "{error}");
    }

    #[test]
    fn an_empty_command_is_refused() {
        let text = GOOD.replace("command = [\"sh\", \"fail.sh\"]", "command = []");
        let error = parse(&text).unwrap_err().to_string();
        assert!(
            error.contains("kind `fail` has an empty command"),
            "{error}"
        );
    }

    #[test]
    fn a_wrong_policy_value_is_refused() {
        let text = GOOD.replace("restart = \"rerun\"", "restart = \"sometimes\"");
        let error = parse(&text).unwrap_err().to_string();
        assert!(error.contains("sometimes"), "{error}");
    }

    const ANONYMOUS: &str =
        "[server]\nanonymous = true\n\n[[kinds]]\nname = \"x\"\ncommand = [\"true\"]\n";

    #[test]
    fn anonymous_is_allowed_on_loopback_addresses() {
        let config = parse(ANONYMOUS).unwrap();
        for listen in [
            "127.0.0.1:7700",
            "127.1.2.3:80",
            "[::1]:7700",
            "localhost:7700",
        ] {
            assert_eq!(config.auth(listen).unwrap(), Auth::Anonymous, "{listen}");
        }
    }

    #[test]
    fn anonymous_is_refused_on_other_addresses_with_the_reason() {
        let config = parse(ANONYMOUS).unwrap();
        for listen in [
            "0.0.0.0:7700",
            "[::]:7700",
            "192.168.1.5:7700",
            "example.com:7700",
        ] {
            let error = config.auth(listen).unwrap_err();
            assert!(
                matches!(&error, Error::AnonymousNotLoopback { listen: l } if l == listen),
                "{listen}: {error}"
            );
            assert!(error.to_string().contains("loopback"), "{error}");
        }
    }

    #[test]
    fn a_server_nobody_can_call_is_refused() {
        let error = parse("[[kinds]]\nname = \"x\"\ncommand = [\"true\"]\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("nobody could call this server"), "{error}");

        let both = GOOD.replace("data = \"state\"", "anonymous = true");
        let error = parse(&both).unwrap_err().to_string();
        assert!(error.contains("choose one"), "{error}");
    }

    const OAUTH: &str = r#"
[server]
listen = "0.0.0.0:7700"
public_url = "https://tasks.example.com"

[oauth]
issuer = "https://login.example.com/tenant"
audience = "https://api.example.com"
jwks_url = "https://login.example.com/tenant/keys"
principal_claim = "email"
algorithms = ["RS256", "ES256"]
leeway_s = 5
scopes = ["tasks:read", "tasks:write"]

[[kinds]]
name = "x"
command = ["true"]
"#;

    #[test]
    fn oauth_settings_parse_into_the_surface_config() {
        let config = parse(OAUTH).unwrap();
        let oauth = config.oauth_config().unwrap();
        assert_eq!(oauth.issuer, "https://login.example.com/tenant");
        assert_eq!(oauth.audience, "https://api.example.com");
        assert_eq!(
            oauth.jwks_url.as_deref(),
            Some("https://login.example.com/tenant/keys")
        );
        assert_eq!(oauth.principal_claim, "email");
        assert_eq!(oauth.algorithms, ["RS256", "ES256"]);
        assert_eq!(oauth.leeway, Duration::from_secs(5));
        assert_eq!(oauth.scopes, ["tasks:read", "tasks:write"]);
        // OAuth alone lets callers in: no static token is needed.
        assert_eq!(
            config.auth("0.0.0.0:7700").unwrap(),
            Auth::Tokens(HashMap::new())
        );
        assert!(parse(GOOD).unwrap().oauth_config().is_none());
    }

    #[test]
    fn oauth_defaults_to_the_public_url_as_audience_and_to_sub() {
        let text = "[server]\npublic_url = \"https://tasks.example.com\"\n\n[oauth]\nissuer = \
                    \"https://login.example.com\"\n";
        let oauth = parse(text).unwrap().oauth_config().unwrap();
        assert_eq!(oauth.audience, "https://tasks.example.com");
        assert_eq!(oauth.principal_claim, "sub");
        assert!(oauth.jwks_url.is_none());
        assert!(oauth.algorithms.iter().all(|alg| !alg.starts_with("HS")));

        let error = parse("[oauth]\nissuer = \"https://login.example.com\"\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("set `audience`"), "{error}");
    }

    #[test]
    fn oauth_and_static_tokens_may_be_configured_together() {
        let text = format!(
            "{GOOD}\n[oauth]\nissuer = \"https://login.example.com\"\naudience = \"https://tasks.example.com\"\n"
        );
        let config = parse(&text).unwrap();
        assert!(config.oauth_config().is_some());
        let Auth::Tokens(tokens) = config.auth("0.0.0.0:7700").unwrap() else {
            panic!("tokens were configured");
        };
        assert_eq!(tokens.len(), 2);
    }

    #[test]
    fn bad_oauth_settings_are_refused_with_the_section_line() {
        let line = OAUTH.lines().position(|line| line == "[oauth]").unwrap() + 1;
        for (from, to, says) in [
            ("[\"RS256\", \"ES256\"]", "[\"HS256\"]", "HMAC"),
            ("[\"RS256\", \"ES256\"]", "[\"none\"]", "unsigned"),
            ("[\"RS256\", \"ES256\"]", "[]", "`algorithms` is empty"),
            (
                "issuer = \"https://login.example.com/tenant\"",
                "issuer = \"http://login.example.com\"",
                "plain http",
            ),
            (
                "principal_claim = \"email\"",
                "principal_claim = \"\"",
                "principal_claim",
            ),
        ] {
            let text = OAUTH.replace(from, to);
            assert_ne!(text, OAUTH, "{from}");
            let error = parse(&text).unwrap_err().to_string();
            assert!(error.contains(says), "{to}: {error}");
            assert!(error.contains(&format!("line {line}")), "{to}: {error}");
        }
        let error = parse(&OAUTH.replace("leeway_s", "leway_s"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("leway_s"), "{error}");
        let error = parse(&OAUTH.replace("listen = \"0.0.0.0:7700\"", "anonymous = true"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("choose one"), "{error}");
    }

    #[test]
    fn the_mcp_conformance_config_declares_prompts_and_resources_with_files_beside_it() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../examples/mcp-conformance/longrun.toml");
        let config = Config::load(&path).unwrap();
        let mcp = &config.mcp;
        assert!(
            mcp.prompts
                .iter()
                .any(|p| p.name == "test_prompt_with_arguments")
        );
        assert!(mcp.resource_templates[0].uri_template.contains("{id}"));
        // Relative files are made relative to the config's directory, and exist.
        let binary = mcp
            .resources
            .iter()
            .find(|r| r.uri == "test://static-binary")
            .unwrap();
        let file = binary.file.as_ref().unwrap();
        assert!(file.is_absolute() && file.exists(), "{}", file.display());
    }

    #[test]
    fn the_demo_config_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/demo/longrun.toml");
        let config = Config::load(&path).unwrap();
        assert_eq!(
            config.auth(DEFAULT_LISTEN).unwrap(),
            Auth::Anonymous,
            "the demo serves anonymously on loopback"
        );
        let names: Vec<_> = config
            .kinds
            .iter()
            .map(|k| k.name.get_ref().as_str())
            .collect();
        assert_eq!(names, ["countdown", "fail", "echo", "agent"]);
        assert_eq!(config.kinds[3].protocol, Some(2));
        assert_eq!(config.kinds[3].spec().retry.max_attempts, 3);
        let countdown = config.kinds[0].spec();
        assert_eq!(countdown.restart, RestartPolicy::Rerun);
        assert_eq!(
            countdown.input_schema["properties"]["seconds"]["maximum"],
            3600
        );
        // Every command names a script that exists, relative to the config's directory.
        for kind in &config.kinds {
            let Some(command) = &kind.command else {
                continue;
            };
            let script = command.last().unwrap();
            assert!(config.dir.join(script).exists(), "{script} is missing");
        }
    }
}
