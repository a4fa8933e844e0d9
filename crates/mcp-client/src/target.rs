//! Where a client connects: a Streamable HTTP URL, or a command whose stdin and stdout speak
//! MCP.

use std::collections::BTreeMap;

/// An MCP server to connect to.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Target {
    /// A Streamable HTTP endpoint, e.g. `http://127.0.0.1:3001/mcp`.
    Http {
        /// The endpoint URL.
        url: String,
        /// Sent as `Authorization: Bearer <token>` when set.
        token: Option<String>,
    },
    /// A program started by the client, speaking newline-delimited JSON-RPC on its stdin and
    /// stdout (its stderr is inherited). It is killed when the client closes or is dropped.
    Stdio {
        /// The program; a bare name is looked up in `PATH`.
        command: String,
        /// Its arguments.
        args: Vec<String>,
        /// Environment variables set for it, on top of the inherited environment.
        env: BTreeMap<String, String>,
    },
}

impl Target {
    /// A Streamable HTTP endpoint.
    pub fn http(url: impl Into<String>) -> Self {
        Self::Http {
            url: url.into(),
            token: None,
        }
    }

    /// A program to start and talk to over stdio.
    pub fn stdio(command: impl Into<String>) -> Self {
        Self::Stdio {
            command: command.into(),
            args: Vec::new(),
            env: BTreeMap::new(),
        }
    }

    /// Sets the bearer token of an HTTP target (no effect on a stdio target).
    pub fn token(mut self, value: impl Into<String>) -> Self {
        if let Self::Http { token, .. } = &mut self {
            *token = Some(value.into());
        }
        self
    }

    /// Adds an argument to a stdio target's command (no effect on an HTTP target).
    pub fn arg(mut self, value: impl Into<String>) -> Self {
        if let Self::Stdio { args, .. } = &mut self {
            args.push(value.into());
        }
        self
    }

    /// Sets an environment variable for a stdio target's command (no effect on an HTTP target).
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        if let Self::Stdio { env, .. } = &mut self {
            env.insert(key.into(), value.into());
        }
        self
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Http { url, .. } => f.write_str(url),
            Self::Stdio { command, args, .. } => {
                f.write_str(command)?;
                for arg in args {
                    write!(f, " {arg}")?;
                }
                Ok(())
            }
        }
    }
}
