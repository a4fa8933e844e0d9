//! [`PostgresOptions`]: where the database is, which schema to use, and this node's name and
//! lease timing.

use std::time::Duration;

use longrun_core::NodeId;

/// How to connect a [`PostgresStore`](crate::PostgresStore).
///
/// # Leases and rescue
///
/// A node holds each task it runs through a lease that expires `lease_ttl` after its last
/// renewal, by the database's clock. The runtime renews every [`renew_interval`] (a third of
/// the ttl), so a live node's leases never come close to expiring even if one renewal is late;
/// a node that dies stops renewing, and its tasks become claimable by the others `lease_ttl`
/// after its last renewal. With the default of 6 s, and the runtime looking for claimable tasks
/// at every renewal, another node rescues a dead node's tasks within about 8 s, well within
/// 10 s.
///
/// A node restarting under the same [`node`](Self::node) name takes its earlier incarnation's
/// tasks back at its first claim, without waiting for them to expire: give each node a stable
/// name (a pod or host name) rather than the default when that matters.
///
/// [`renew_interval`]: Self::renew_interval
///
/// # Bounded round trips
///
/// Every call to the database (a connect, a read, a batch of writes) is bounded by
/// [`io_timeout`](Self::io_timeout), the lease ttl unless set: a node that cannot reach the
/// database for that long has lost its leases anyway. A call that runs out of time fails with
/// a `Backend` error (a door answers 503) and its connection is dropped; the next call opens
/// another. Without it, a silent partition (packets go nowhere, nothing answers) would hold
/// every call until TCP gives up, about 15 minutes later. TCP keepalives and, on Linux,
/// `tcp_user_timeout` are set from the same bound.
///
/// ```
/// use std::time::Duration;
///
/// use longrun_core::NodeId;
/// use longrun_store_postgres::PostgresOptions;
///
/// let options = PostgresOptions::new("postgres://postgres@127.0.0.1:5432/app")
///     .schema("jobs")
///     .node(NodeId::new("worker-1"))
///     .lease_ttl(Duration::from_secs(9));
/// assert_eq!(options.renew_interval(), Duration::from_secs(3));
/// ```
#[derive(Debug, Clone)]
pub struct PostgresOptions {
    /// A libpq-style connection string or URL, e.g. `postgres://user@host:5432/db`. TLS is not
    /// supported yet: connect over a trusted network or a local socket.
    pub url: String,
    /// The schema every table lives in; created if missing. A plain lowercase identifier of at
    /// most 50 characters (letters, digits, `_`), so it needs no quoting anywhere and several
    /// deployments, or tests, can share one database. Default: `longrun`.
    pub schema: String,
    /// This node's name: unique among the nodes running at once. Default: the host name and
    /// the process id, which is unique but changes with every restart.
    pub node: NodeId,
    /// How long a lease lasts after its last renewal. Default: 6 s.
    pub lease_ttl: Duration,
    /// At most this many calls are applied in one transaction. Default: 1,024.
    pub max_batch: usize,
    /// How many connections serve reads (`get`, `list`, `read`, `peek`, …). Default: 4.
    pub read_connections: usize,
    /// A purge removes at most this many tasks per statement, so each transaction stays short
    /// and vacuum can keep up. Default: 1,000.
    pub purge_batch: usize,
    /// How many tasks this node does not hold the writer keeps in memory to validate appends
    /// without reading them back (tasks it holds are always kept). Default: 4,096.
    pub cache_unheld: usize,
    /// The longest any one round trip may take: a connect, a read, a batch of writes (see
    /// Bounded round trips). Default (`None`): the lease ttl. Raise it only if single
    /// statements legitimately run longer (a very large purge batch on a slow disk).
    pub io_timeout: Option<Duration>,
}

impl PostgresOptions {
    /// The default lease ttl: 6 s.
    pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(6);

    /// Options with defaults for everything but the connection string.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            schema: "longrun".to_owned(),
            node: default_node(),
            lease_ttl: Self::DEFAULT_LEASE_TTL,
            max_batch: 1_024,
            read_connections: 4,
            purge_batch: 1_000,
            cache_unheld: 4_096,
            io_timeout: None,
        }
    }

    /// Sets the schema.
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = schema.into();
        self
    }

    /// Sets this node's name.
    pub fn node(mut self, node: NodeId) -> Self {
        self.node = node;
        self
    }

    /// Sets the lease ttl.
    pub fn lease_ttl(mut self, ttl: Duration) -> Self {
        self.lease_ttl = ttl;
        self
    }

    /// Sets the largest batch.
    pub fn max_batch(mut self, max: usize) -> Self {
        self.max_batch = max;
        self
    }

    /// Sets the bound on every round trip (see Bounded round trips).
    pub fn io_timeout(mut self, bound: Duration) -> Self {
        self.io_timeout = Some(bound);
        self
    }

    /// The bound on every round trip: [`io_timeout`](Self::io_timeout), or the lease ttl.
    pub(crate) fn bound(&self) -> Duration {
        self.io_timeout.unwrap_or(self.lease_ttl)
    }

    /// Sets how many connections serve reads.
    pub fn read_connections(mut self, count: usize) -> Self {
        self.read_connections = count;
        self
    }

    /// How often the runtime should call [`Cluster::renew`](longrun_core::Cluster::renew): a
    /// third of the lease ttl.
    pub fn renew_interval(&self) -> Duration {
        self.lease_ttl / 3
    }

    /// Checks what cannot be checked by the type system.
    pub(crate) fn validate(&self) -> Result<(), String> {
        let schema = &self.schema;
        let valid = !schema.is_empty()
            && schema.len() <= 50
            && schema.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
            && schema
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !valid {
            return Err(format!(
                "invalid schema name `{schema}`: use 1 to 50 lowercase letters, digits or `_`, \
                 not starting with a digit"
            ));
        }
        if self.lease_ttl < Duration::from_millis(10) {
            return Err(format!(
                "lease_ttl of {:?} is too short: leases must outlive a renewal round trip",
                self.lease_ttl
            ));
        }
        if self.bound() < Duration::from_millis(10) {
            return Err(format!(
                "io_timeout of {:?} is too short: a round trip to the database must fit in it",
                self.bound()
            ));
        }
        if self.node.as_str().is_empty() {
            return Err("the node name is empty: give every node a unique name".to_owned());
        }
        Ok(())
    }
}

/// `host-pid`: unique among running processes, readable in `lease_node`.
fn default_node() -> NodeId {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| format!("node-{}", uuid::Uuid::new_v4().simple()));
    NodeId::new(format!("{host}-{}", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names_are_checked() {
        let options = |schema: &str| PostgresOptions::new("postgres://x").schema(schema);
        for good in ["longrun", "_t", "lr_test_0a9f"] {
            assert!(options(good).validate().is_ok(), "{good}");
        }
        for bad in ["", "9x", "Longrun", "a-b", "a\"b", &"x".repeat(51)] {
            assert!(options(bad).validate().is_err(), "{bad}");
        }
    }

    #[test]
    fn the_default_node_is_named() {
        let node = PostgresOptions::new("postgres://x").node;
        assert!(node.as_str().ends_with(&std::process::id().to_string()));
    }
}
