//! [`Builder`]: a [`Worker`]'s settings (server, principal, name, capacity, kinds, timings).

use std::{collections::HashMap, sync::Arc, time::Duration};

use serde_json::Value;

use crate::{Error, Handler, Worker};

/// Builds a [`Worker`]; start with [`Worker::builder`].
pub struct Builder {
    pub(crate) url: String,
    pub(crate) token: Option<String>,
    pub(crate) name: String,
    pub(crate) capacity: usize,
    pub(crate) kinds: Vec<Kind>,
    pub(crate) drain_timeout: Duration,
    pub(crate) reconnect_max: Duration,
}

/// A kind this worker serves.
pub(crate) struct Kind {
    pub(crate) name: String,
    pub(crate) input_schema: Option<Value>,
    pub(crate) handler: Arc<dyn Handler>,
}

impl Builder {
    pub(crate) fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            token: None,
            name: "longrun-worker".to_owned(),
            capacity: 1,
            kinds: Vec::new(),
            drain_timeout: Duration::from_secs(30),
            reconnect_max: Duration::from_secs(5),
        }
    }

    /// The bearer token of the principal the worker serves as (a server with tokens or OAuth
    /// allows only the principals in each kind's `served_by`). None on an anonymous server.
    #[must_use]
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// A name for people (the dashboard, `GET /v1/workers`); `longrun-worker` by default.
    #[must_use]
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// How many tasks the worker runs at once, all kinds together (1 by default). The server
    /// never assigns more.
    #[must_use]
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity;
        self
    }

    /// Serves the kind `name` with `handler`.
    #[must_use]
    pub fn kind(self, name: impl Into<String>, handler: impl Handler) -> Self {
        self.kind_entry(name.into(), None, handler)
    }

    /// Serves the kind `name` with `handler`, declaring the JSON Schema of its input: the
    /// server checks inputs against it before assigning a task here (unless its config has a
    /// schema for the kind, which must then be the same).
    #[must_use]
    pub fn kind_with_schema(
        self,
        name: impl Into<String>,
        input_schema: Value,
        handler: impl Handler,
    ) -> Self {
        self.kind_entry(name.into(), Some(input_schema), handler)
    }

    fn kind_entry(
        mut self,
        name: String,
        input_schema: Option<Value>,
        handler: impl Handler,
    ) -> Self {
        self.kinds.retain(|kind| kind.name != name);
        self.kinds.push(Kind {
            name,
            input_schema,
            handler: Arc::new(handler),
        });
        self
    }

    /// On shutdown, how long the tasks being run may take to finish before they are handed
    /// back to the server (which assigns them to another worker, with their saved steps).
    /// 30 s by default.
    #[must_use]
    pub fn drain_timeout(mut self, timeout: Duration) -> Self {
        self.drain_timeout = timeout;
        self
    }

    /// The longest wait between two attempts to reach the server (the waits start at 50 ms
    /// and double); 5 s by default.
    #[must_use]
    pub fn reconnect_max(mut self, max: Duration) -> Self {
        self.reconnect_max = max;
        self
    }

    /// The worker, once the settings are checked: at least one kind, a capacity of at least
    /// one, an `http://` or `https://` URL.
    pub fn build(self) -> Result<Worker, Error> {
        if self.kinds.is_empty() {
            return Err(Error::Config("a worker serves at least one kind".into()));
        }
        if self.capacity == 0 {
            return Err(Error::Config("the capacity must be at least 1".into()));
        }
        Worker::new(self)
    }
}

/// The handlers by kind name, as the event stream looks them up.
pub(crate) fn handlers(kinds: &[Kind]) -> HashMap<String, Arc<dyn Handler>> {
    kinds
        .iter()
        .map(|kind| (kind.name.clone(), kind.handler.clone()))
        .collect()
}

impl Builder {
    /// [`build`](Builder::build) then [`Worker::run`].
    pub async fn run(self, shutdown: tokio_util::sync::CancellationToken) -> Result<(), Error> {
        self.build()?.run(shutdown).await
    }
}
