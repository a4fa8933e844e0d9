//! Kinds: registered task types and the policies that come with them.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::retry::RetryPolicy;

/// How a caller waits for a task it starts (agentkit's routing decision).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Routing {
    /// The caller awaits the outcome.
    Foreground,
    /// The caller gets the task at once; the outcome goes to the session's inbox.
    #[default]
    Background,
    /// The caller awaits the outcome for up to this long, then the task detaches and its
    /// outcome goes to the session's inbox.
    DetachAfter(#[serde(with = "crate::millis")] Duration),
}

/// What happens to a task that was running when its node crashed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RestartPolicy {
    /// Run the handler again (`attempt` + 1); answers already given are replayed.
    Rerun,
    /// End the task `failed` with code `interrupted`.
    #[default]
    Fail,
}

/// What a start above a concurrency limit does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OverLimit {
    /// Wait in `submitted` until a slot frees, first come first served.
    #[default]
    Queue,
    /// End at once as `rejected`.
    Reject,
}

/// Whether MCP clients may, must or must not call this kind as a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskSupport {
    /// Only as a plain, synchronous tool call.
    Forbidden,
    /// Either way.
    #[default]
    Optional,
    /// Only as a task.
    Required,
}

/// A registered task type: its name, its input's JSON schema and its policies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KindSpec {
    /// Unique name; MCP tool and A2A skill names come from it.
    pub name: String,
    /// What the kind does, for people and for agents choosing a tool.
    pub description: String,
    /// JSON schema of the input.
    pub input_schema: Value,
    /// JSON schema of the output, when known.
    pub output_schema: Option<Value>,
    /// At most this many tasks of this kind run at once.
    pub concurrency: Option<usize>,
    /// What a start above a limit does.
    pub over_limit: OverLimit,
    /// How long a finished task stays readable, unless the start says otherwise.
    #[serde(with = "crate::millis")]
    pub ttl: Duration,
    /// The longest a task may live before it is cancelled, unless the start says otherwise.
    #[serde(default, with = "crate::millis::option")]
    pub deadline: Option<Duration>,
    /// How callers wait, unless the start says otherwise.
    pub routing: Routing,
    /// What a crash does to a running task.
    pub restart: RestartPolicy,
    /// How MCP exposes the kind.
    pub task_support: TaskSupport,
    /// How long a cancelled handler may take to stop before it is aborted.
    #[serde(with = "crate::millis")]
    pub cancel_grace: Duration,
    /// How a failed attempt is retried (by default it is not).
    #[serde(default)]
    pub retry: RetryPolicy,
}

impl KindSpec {
    /// The default retention of a finished task: one hour.
    pub const DEFAULT_TTL: Duration = Duration::from_secs(3600);
    /// The default grace period of a cancelled handler: five seconds.
    pub const DEFAULT_CANCEL_GRACE: Duration = Duration::from_secs(5);

    /// A kind with default policies and an input schema that accepts anything.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            description: String::new(),
            input_schema: serde_json::json!({}),
            output_schema: None,
            concurrency: None,
            over_limit: OverLimit::default(),
            ttl: Self::DEFAULT_TTL,
            deadline: None,
            routing: Routing::default(),
            restart: RestartPolicy::default(),
            task_support: TaskSupport::default(),
            cancel_grace: Self::DEFAULT_CANCEL_GRACE,
            retry: RetryPolicy::NONE,
        }
    }

    /// Sets the description.
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = description.into();
        self
    }

    /// Limits how many tasks of this kind run at once.
    pub fn concurrency(mut self, limit: usize) -> Self {
        self.concurrency = Some(limit);
        self
    }

    /// Sets what a start above a limit does.
    pub fn over_limit(mut self, policy: OverLimit) -> Self {
        self.over_limit = policy;
        self
    }

    /// Sets the default retention after a task ends.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// Sets the default maximum lifetime.
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// Sets the default routing.
    pub fn routing(mut self, routing: Routing) -> Self {
        self.routing = routing;
        self
    }

    /// Sets the restart policy.
    pub fn restart(mut self, policy: RestartPolicy) -> Self {
        self.restart = policy;
        self
    }

    /// Sets how MCP exposes the kind.
    pub fn task_support(mut self, support: TaskSupport) -> Self {
        self.task_support = support;
        self
    }

    /// Sets the retry policy.
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Sets the cancellation grace period.
    pub fn cancel_grace(mut self, grace: Duration) -> Self {
        self.cancel_grace = grace;
        self
    }
}
