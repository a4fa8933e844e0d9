//! `longrun-store-postgres`: a longrun store on PostgreSQL, shared by several nodes.
//!
//! [`PostgresStore`] implements [`Store`](longrun_core::store::Store) (tasks, their event logs,
//! the agent inboxes, retention) and [`Cluster`](longrun_core::Cluster) (leases with fencing
//! tokens, claims, signals between nodes, and wake-up notices over `LISTEN`/`NOTIFY`). Every
//! table lives in one schema of the options' choosing, created and migrated at connect.
//!
//! # Shape
//!
//! - **One writer** (`writer.rs`): a tokio task owning a dedicated connection. Every call that
//!   changes something is sent to it at call time, which gives the ordering contract of
//!   [`longrun_core::store`]; it applies whatever has queued in one transaction (group
//!   commit, two pipelined round trips, multi-row statements), sends at most one `NOTIFY` for
//!   the whole commit, then resolves the acks. It validates every call in memory first
//!   (`batch.rs`), so a refused call fails alone and the others commit.
//! - **Reads** (`read.rs`, `inbox.rs`, `retention.rs`): a small pool of connections.
//! - **Notices** (`listen.rs`): one connection `LISTEN`ing, fanned out to every
//!   [`Cluster::notices`](longrun_core::Cluster::notices) stream.
//!
//! # Leases and fencing
//!
//! A task row carries its holder's node name, a fencing token drawn from a sequence at each
//! claim, and an expiry computed by the database's clock (`now() + lease_ttl`). This node keeps
//! the token of each task it holds in the writer's memory, and every write for a task is checked,
//! under the row's lock, against the token the row carries: after another node rescued a task,
//! this node's late writes for it fail with [`Error::Fenced`](longrun_core::store::Error). A
//! task that ends gives its lease up in the same update. See [`PostgresOptions`] for timing.

mod batch;
mod bound;
mod cluster;
mod codec;
mod error;
mod inbox;
mod listen;
mod notice;
mod options;
mod read;
mod retention;
mod schema;
mod sql;
mod writer;

use std::{
    collections::HashMap,
    fmt,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use longrun_core::{
    Event, InboxItem, NodeId, Notice, Seq, Session, Task, TaskId,
    store::{
        Ack, BoxFuture, Error, EventLog, InboxStore, NewInboxItem, Page, Purge, Query, Retention,
        TaskStore,
    },
};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio_postgres::{Config, NoTls};
use tokio_util::sync::{CancellationToken, DropGuard};

pub use crate::options::PostgresOptions;
use crate::{
    batch::Request,
    error::backend,
    sql::Sql,
    writer::{Command, Reply, Writer},
};

/// How many notices a slow stream may fall behind before it is told it missed some.
const NOTICE_BUFFER: usize = 4_096;

/// A longrun store on PostgreSQL. See the crate docs.
///
/// Connecting starts two background tasks on the current tokio runtime (the writer and the
/// listener); dropping the store stops them once the writes already made are applied.
///
/// ```no_run
/// use std::{sync::Arc, time::Duration};
///
/// use longrun_core::{
///     Claim, Cluster, Labels, NewTask, NodeId, Owner, Task, TaskId, Timestamp,
///     store::{Error, TaskStore},
/// };
/// use longrun_store_postgres::{PostgresOptions, PostgresStore};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Error> {
/// let options = PostgresOptions::new("postgres://postgres@127.0.0.1:5432/app")
///     .node(NodeId::new("worker-1"));
/// let store = PostgresStore::connect(options).await?;
///
/// let (task, first) = Task::create(NewTask {
///     id: TaskId::random(),
///     kind: "summarize".into(),
///     owner: Owner::default(),
///     session: None,
///     input: serde_json::json!({"url": "https://example.com"}),
///     labels: Labels::new(),
///     ttl: Duration::from_secs(3600),
///     deadline: None,
///     created_at: Timestamp::from_millis(1_000),
///     idempotency_key: None,
///     start_at: None,
///     trace: None,
/// });
/// // Stored unheld: any node (this one too) may claim it.
/// store.create(&task, &Arc::new(first)).await?;
/// let claimed = store.claim(Claim::new(vec!["summarize".to_owned()], 10)).await?;
/// assert_eq!(claimed[0].id, task.id);
/// # Ok(())
/// # }
/// ```
pub struct PostgresStore {
    node: NodeId,
    lease_ttl: std::time::Duration,
    schema: String,
    commands: mpsc::UnboundedSender<Command>,
    db: Db,
    notices: broadcast::Sender<Notice>,
    counters: Arc<Counters>,
    purge_batch: usize,
    /// Stops the listener when the store is dropped (the writer stops when `commands` closes).
    _stop: DropGuard,
}

/// The read pool and the statements run on it.
pub(crate) struct Db {
    pool: deadpool_postgres::Pool,
    sql: Arc<Sql>,
    /// Every call's bound ([`PostgresOptions::io_timeout`]).
    bound: std::time::Duration,
}

impl Db {
    async fn client(&self) -> Result<bound::Reader, Error> {
        bound::Reader::get(&self.pool, self.bound).await
    }
}

/// What the writer has done since the store connected: how well writes are batched.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Transactions committed.
    pub commits: u64,
    /// Calls that changed something and succeeded (creates, appends, pushes, releases,
    /// signals).
    pub writes: u64,
    /// Events written.
    pub events: u64,
    /// `NOTIFY`s sent: at most one per commit.
    pub notifies: u64,
}

/// The writer's counters behind [`Stats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    commits: AtomicU64,
    writes: AtomicU64,
    events: AtomicU64,
    notifies: AtomicU64,
}

impl Counters {
    pub(crate) fn committed(&self, writes: usize, events: usize, notified: bool) {
        let count = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
        self.commits.fetch_add(1, Ordering::Relaxed);
        self.writes.fetch_add(count(writes), Ordering::Relaxed);
        self.events.fetch_add(count(events), Ordering::Relaxed);
        self.notifies
            .fetch_add(u64::from(notified), Ordering::Relaxed);
    }
}

impl PostgresStore {
    /// Connects, creates the schema or migrates it, and starts the writer and the listener.
    ///
    /// # Errors
    ///
    /// `Backend` if the options are invalid, the database cannot be reached, or a migration
    /// fails.
    pub async fn connect(options: PostgresOptions) -> Result<Arc<Self>, Error> {
        options.validate().map_err(backend)?;
        let io_timeout = options.bound();
        let mut config: Config = options.url.parse().map_err(backend)?;
        bound::configure(&mut config, io_timeout);
        // Each connection says what it is for in `pg_stat_activity`, unless the URL names it.
        let role = |role: &str| {
            let mut config = config.clone();
            if config.get_application_name().is_none() {
                config.application_name(format!("longrun-{role}:{}", options.node));
            }
            config
        };
        let sql = Arc::new(Sql::new(&options.schema, options.lease_ttl));

        // A migration may wait for other nodes' locks (see `schema`): it is not bounded, only
        // the connect before it.
        let opened = bound::within(io_timeout, writer::connect(&role("writer"))).await?;
        schema::migrate(&opened.0, &options.schema)
            .await
            .map_err(backend)?;
        // A check that hangs is not worth failing the start for.
        let _ = tokio::time::timeout(io_timeout, schema::warn_without_autovacuum(&opened.0)).await;
        let connection = bound::within(io_timeout, writer::Connection::new(opened, &sql)).await?;

        let manager = deadpool_postgres::Manager::from_config(
            role("reader"),
            NoTls,
            deadpool_postgres::ManagerConfig {
                recycling_method: deadpool_postgres::RecyclingMethod::Fast,
            },
        );
        let pool = deadpool_postgres::Pool::builder(manager)
            .max_size(options.read_connections.max(1))
            .build()
            .map_err(backend)?;

        let stop = CancellationToken::new();
        let (notices, _) = broadcast::channel(NOTICE_BUFFER);
        let listening =
            bound::within(io_timeout, listen::listen(&role("listener"), &sql.channel)).await?;
        let listener = listen::Listener {
            config: role("listener"),
            bound: io_timeout,
            channel: sql.channel.clone(),
            notices: notices.clone(),
            cancel: stop.clone(),
        };
        #[expect(
            clippy::disallowed_methods,
            reason = "the LISTEN loop ends on the store's `stop` token, cancelled when the store is dropped; a store owns no TaskTracker"
        )]
        tokio::spawn(listener.run(listening));

        let counters = Arc::new(Counters::default());
        let (commands, receiver) = mpsc::unbounded_channel();
        let writer = Writer {
            commands: receiver,
            config: role("writer"),
            sql: Arc::clone(&sql),
            node: options.node.as_str().to_owned(),
            max_batch: options.max_batch.max(1),
            bound: io_timeout,
            cache_unheld: options.cache_unheld,
            counters: Arc::clone(&counters),
            connection: Some(connection),
            tokens: HashMap::new(),
            cache: HashMap::new(),
        };
        #[expect(
            clippy::disallowed_methods,
            reason = "the writer ends when its command channel closes, which dropping the store does; a store owns no TaskTracker"
        )]
        tokio::spawn(writer.run());

        Ok(Arc::new(Self {
            node: options.node,
            lease_ttl: options.lease_ttl,
            schema: options.schema,
            commands,
            db: Db {
                pool,
                sql,
                bound: io_timeout,
            },
            notices,
            counters,
            purge_batch: options.purge_batch,
            _stop: stop.drop_guard(),
        }))
    }

    /// What the writer has done so far.
    pub fn stats(&self) -> Stats {
        let counters = &self.counters;
        Stats {
            commits: counters.commits.load(Ordering::Relaxed),
            writes: counters.writes.load(Ordering::Relaxed),
            events: counters.events.load(Ordering::Relaxed),
            notifies: counters.notifies.load(Ordering::Relaxed),
        }
    }

    /// Dead tuples across the schema's tables, as `pg_stat_user_tables.n_dead_tup` reports them
    /// (the statistics lag a little behind): whether vacuum keeps up with the churn.
    ///
    /// # Errors
    ///
    /// `Backend` if the database cannot be asked.
    pub async fn dead_tuples(&self) -> Result<u64, Error> {
        self.db.dead_tuples(&self.schema).await
    }

    /// The schema the store's tables live in.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// Sends a write to the writer; its ack resolves once it has committed.
    fn write(&self, request: Request) -> Ack {
        let (reply, answer) = oneshot::channel();
        let command = Command {
            request,
            reply: Reply::Ack(reply),
        };
        if self.commands.send(command).is_err() {
            return Ack::ready(Err(stopped()));
        }
        Ack::pending(async move { answer.await.unwrap_or_else(|_| Err(stopped())) })
    }

    /// Sends a request that answers with a value to the writer.
    fn ask<T: Send + 'static>(
        &self,
        request: Request,
        reply: fn(oneshot::Sender<Result<T, Error>>) -> Reply,
    ) -> BoxFuture<'static, Result<T, Error>> {
        let (sender, answer) = oneshot::channel();
        let sent = self.commands.send(Command {
            request,
            reply: reply(sender),
        });
        Box::pin(async move {
            sent.map_err(|_| stopped())?;
            answer.await.unwrap_or_else(|_| Err(stopped()))
        })
    }
}

fn stopped() -> Error {
    backend("the store's writer has stopped (its tokio runtime shut down); connect again")
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("node", &self.node)
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

impl TaskStore for PostgresStore {
    fn create(&self, task: &Task, first: &Arc<Event>) -> Ack {
        self.write(Request::Create {
            task: Box::new(task.clone()),
            first: Arc::clone(first),
            held: false,
        })
    }

    fn append(&self, events: &[Arc<Event>]) -> Ack {
        if events.is_empty() {
            return Ack::ready(Ok(()));
        }
        self.write(Request::Append(events.to_vec()))
    }

    fn append_with_inbox(&self, events: &[Arc<Event>], item: NewInboxItem) -> Ack {
        self.write(Request::AppendPush(events.to_vec(), item))
    }

    fn get(&self, id: TaskId) -> BoxFuture<'_, Result<Option<Task>, Error>> {
        Box::pin(self.db.get(id))
    }

    fn list(&self, query: &Query) -> BoxFuture<'_, Result<Page, Error>> {
        let query = query.clone();
        Box::pin(async move { self.db.list(&query).await })
    }

    fn unfinished(&self) -> BoxFuture<'_, Result<Vec<Task>, Error>> {
        Box::pin(self.db.unfinished())
    }
}

impl EventLog for PostgresStore {
    fn read(
        &self,
        task: TaskId,
        after: Seq,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<Arc<Event>>, Error>> {
        Box::pin(self.db.read(task, after, limit))
    }
}

impl InboxStore for PostgresStore {
    fn push(&self, item: NewInboxItem) -> Ack {
        self.write(Request::Push(item))
    }

    fn peek(
        &self,
        session: &Session,
        after: u64,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<InboxItem>, Error>> {
        let session = session.clone();
        Box::pin(async move { self.db.peek(&session, after, limit).await })
    }

    fn acknowledge(&self, session: &Session, through: u64) -> BoxFuture<'_, Result<usize, Error>> {
        let session = session.clone();
        Box::pin(async move { self.db.acknowledge(&session, through).await })
    }
}

impl Retention for PostgresStore {
    fn purge(&self, purge: Purge) -> BoxFuture<'_, Result<usize, Error>> {
        Box::pin(self.db.purge(purge, self.purge_batch))
    }
}
