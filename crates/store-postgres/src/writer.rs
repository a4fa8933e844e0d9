//! The writer: one tokio task on one dedicated connection, through which every change passes.
//!
//! Calls reach it over a channel at the moment they are made, which is what gives the store's
//! ordering contract: a write called after another is applied after it. The writer takes
//! whatever is queued (up to `max_batch` calls; never waiting for more to arrive) and applies it
//! all in one transaction of two pipelined round trips:
//!
//! 1. `BEGIN` and one statement locking and reading every row the batch touches;
//! 2. after planning in memory ([`crate::batch`]): renewal, signal taking, the claim, then one
//!    multi-row statement per table written, at most one `pg_notify`, and `COMMIT`.
//!
//! Then it resolves each call's ack. A batch that fails for a transient reason (a deadlock,
//! a unique key taken since it looked) runs again; one that fails because of a statement is
//! split into its calls, each in a transaction of its own, so only the call that makes it fail
//! fails.
//!
//! # State
//!
//! The writer alone owns this node's lease tokens (`tokens`: task → token) and the cache of
//! tasks it writes (`cache`). Tokens change only after the transaction that changed them
//! commits. The cache is never trusted blindly: the locking read sends each cached task's last
//! sequence number and gets the row's document back whenever it differs, so another writer's
//! change is always seen.

use std::{collections::HashMap, pin::Pin, sync::Arc, time::Duration};

use futures_util::future::join_all;
use longrun_core::{
    Renewal, Signalled, Task, TaskId,
    store::{Error, NewInboxItem},
};
use tokio::{
    sync::{mpsc, oneshot},
    task::AbortHandle,
};
use tokio_postgres::{Client, Config, NoTls, Row, Statement, types::ToSql};
use uuid::Uuid;

use crate::{
    Counters,
    batch::{self, Loaded, Plan, Request},
    codec::{self, EventRow, TaskRow},
    error::{backend, describe, is_transient},
    sql::Sql,
};

/// How often a batch that lost a race is run again before its calls fail.
const ATTEMPTS: usize = 3;

/// Where a call's answer goes.
pub(crate) enum Reply {
    Ack(oneshot::Sender<Result<(), Error>>),
    Claim(oneshot::Sender<Result<Vec<Task>, Error>>),
    Renew(oneshot::Sender<Result<Renewal, Error>>),
    Signals(oneshot::Sender<Result<Vec<Signalled>, Error>>),
}

/// A call and where its answer goes.
pub(crate) struct Command {
    pub(crate) request: Request,
    pub(crate) reply: Reply,
}

/// The writer's statements, prepared on its connection.
struct Statements {
    begin: Statement,
    commit: Statement,
    lock: Statement,
    key_holders: Statement,
    renew: Statement,
    take_signals: Statement,
    claim: Statement,
    lock_sessions: Statement,
    insert_tasks: Statement,
    update_tasks: Statement,
    insert_events: Statement,
    insert_inbox: Statement,
    insert_signals: Statement,
    release: Statement,
    notify: Statement,
}

impl Statements {
    async fn prepare(client: &Client, sql: &Sql) -> Result<Self, tokio_postgres::Error> {
        Ok(Self {
            begin: client.prepare("BEGIN").await?,
            commit: client.prepare("COMMIT").await?,
            lock: client.prepare(&sql.lock).await?,
            key_holders: client.prepare(&sql.key_holders).await?,
            renew: client.prepare(&sql.renew).await?,
            take_signals: client.prepare(&sql.take_signals).await?,
            claim: client.prepare(&sql.claim).await?,
            lock_sessions: client.prepare(&sql.lock_sessions).await?,
            insert_tasks: client.prepare(&sql.insert_tasks).await?,
            update_tasks: client.prepare(&sql.update_tasks).await?,
            insert_events: client.prepare(&sql.insert_events).await?,
            insert_inbox: client.prepare(&sql.insert_inbox).await?,
            insert_signals: client.prepare(&sql.insert_signals).await?,
            release: client.prepare(&sql.release).await?,
            notify: client.prepare(&sql.notify).await?,
        })
    }
}

/// The writer's connection and its prepared statements.
pub(crate) struct Connection {
    client: Client,
    statements: Statements,
    /// The task driving the connection.
    driver: AbortHandle,
}

impl Connection {
    /// Prepares the writer's statements on `client`, driven by `driver`.
    pub(crate) async fn new(
        (client, driver): (Client, AbortHandle),
        sql: &Sql,
    ) -> Result<Self, tokio_postgres::Error> {
        let statements = Statements::prepare(&client, sql).await?;
        Ok(Self {
            client,
            statements,
            driver,
        })
    }

    /// Closes a connection whose batch ran out of time at once. Dropping the client alone
    /// would leave its driver waiting for the answers still owed, on a socket a silent
    /// partition keeps open, until TCP gives up.
    fn abandon(self) {
        self.driver.abort();
    }
}

/// Opens a connection and drives it on a task of its own until its client is dropped (or the
/// returned handle aborts it).
pub(crate) async fn connect(
    config: &Config,
) -> Result<(Client, AbortHandle), tokio_postgres::Error> {
    let (client, connection) = config.connect(NoTls).await?;
    #[expect(
        clippy::disallowed_methods,
        reason = "drives one tokio-postgres connection, as that crate requires; it ends with the connection"
    )]
    let driver = tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::warn!(%error, "a PostgreSQL connection ended");
        }
    })
    .abort_handle();
    // The writer's statements are prepared once, when the tables may still be empty; a generic
    // plan chosen then (a sequential scan joined to the batch's ids) would stick for the
    // connection's life and cost a whole-table scan per batch as the table grows. Planning each
    // execution with its parameters keeps the id lookups on the indexes.
    client
        .batch_execute("SET plan_cache_mode = force_custom_plan")
        .await?;
    Ok((client, driver))
}

/// What the writer was configured with.
pub(crate) struct Writer {
    pub(crate) commands: mpsc::UnboundedReceiver<Command>,
    pub(crate) config: Config,
    pub(crate) sql: Arc<Sql>,
    pub(crate) node: String,
    pub(crate) max_batch: usize,
    /// How long one transaction, or opening a connection, may take ([`crate::bound`]).
    pub(crate) bound: Duration,
    pub(crate) cache_unheld: usize,
    pub(crate) counters: Arc<Counters>,
    pub(crate) connection: Option<Connection>,
    pub(crate) tokens: HashMap<TaskId, i64>,
    pub(crate) cache: HashMap<TaskId, Task>,
}

/// Why a batch failed.
struct Failure {
    message: String,
    /// A statement failed (the connection is fine): running the calls one by one finds the
    /// one that makes it fail.
    statement: bool,
    transient: bool,
}

impl Failure {
    fn of(error: &tokio_postgres::Error) -> Self {
        Self {
            message: describe(error),
            statement: error.as_db_error().is_some(),
            transient: is_transient(error),
        }
    }

    fn other(message: String) -> Self {
        Self {
            message,
            statement: false,
            transient: false,
        }
    }

    fn error(&self) -> Error {
        backend(format!(
            "the transaction holding this call failed ({}); unless the connection broke or \
             timed out at commit, nothing of it was applied",
            self.message
        ))
    }
}

/// What a committed batch answers beside each call's result.
#[derive(Default)]
struct Answers {
    claimed: Option<Vec<Task>>,
    renewal: Option<Renewal>,
    signals: Option<Vec<Signalled>>,
}

/// A statement's parameters.
type Args<'a> = Vec<&'a (dyn ToSql + Sync)>;

/// A statement's parameters, each as a `ToSql` trait object.
macro_rules! args {
    ($($arg:expr),* $(,)?) => {
        vec![$($arg as &(dyn ToSql + Sync)),*]
    };
}

type Query<'a> = Pin<Box<dyn Future<Output = Result<Vec<Row>, tokio_postgres::Error>> + Send + 'a>>;

/// Which statement of a pipeline a result belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Step {
    Begin,
    Renew,
    TakeSignals,
    Claim,
    LockSessions,
    InsertTasks,
    UpdateTasks,
    InsertEvents,
    InsertInbox,
    InsertSignals,
    Release,
    Notify,
    Commit,
}

impl Writer {
    /// Applies batches until every sender is gone (the store was dropped).
    pub(crate) async fn run(mut self) {
        // A second claim waits for the next batch: a claim must know every token this node
        // holds, and those the first one takes are known only once it has run.
        let mut carried: Option<Command> = None;
        loop {
            let first = match carried.take() {
                Some(command) => command,
                None => match self.commands.recv().await {
                    Some(command) => command,
                    None => break,
                },
            };
            let mut claims = usize::from(matches!(first.request, Request::Claim(_)));
            let mut batch = vec![first];
            while batch.len() < self.max_batch {
                let Ok(command) = self.commands.try_recv() else {
                    break;
                };
                if matches!(command.request, Request::Claim(_)) {
                    if claims > 0 {
                        carried = Some(command);
                        break;
                    }
                    claims += 1;
                }
                batch.push(command);
            }
            self.handle(batch).await;
        }
    }

    async fn handle(&mut self, batch: Vec<Command>) {
        let requests: Vec<&Request> = batch.iter().map(|command| &command.request).collect();
        match self.attempt(&requests).await {
            Ok((results, answers)) => settle(batch, results, answers),
            Err(failure) if failure.statement && batch.len() > 1 => {
                tracing::debug!(
                    calls = batch.len(),
                    error = failure.message,
                    "a batch failed; applying its calls one by one"
                );
                for command in batch {
                    let outcome = self.attempt(&[&command.request]).await;
                    match outcome {
                        Ok((results, answers)) => settle(vec![command], results, answers),
                        Err(failure) => fail(vec![command], &failure),
                    }
                }
            }
            Err(failure) => fail(batch, &failure),
        }
    }

    /// Runs the batch, again while it loses races.
    async fn attempt(
        &mut self,
        requests: &[&Request],
    ) -> Result<(Vec<Result<(), Error>>, Answers), Failure> {
        let mut tries = 0;
        loop {
            tries += 1;
            match self.transact(requests).await {
                Err(failure) if failure.transient && tries < ATTEMPTS => {
                    tracing::debug!(error = failure.message, "a batch lost a race; again");
                }
                outcome => return outcome,
            }
        }
    }

    /// One transaction for the whole batch, on the writer's connection (opened again if it
    /// broke). On failure nothing of it is applied, and the writer's state is as it was (but
    /// for cache entries, which only cost a read to restore).
    ///
    /// Connecting and the transaction are each bounded ([`crate::bound`]). A transaction that
    /// runs out of time fails every call of the batch with a `Backend` error, and its
    /// connection is closed. If its COMMIT had been sent, the database may still commit it
    /// later (when a partition heals, before it sees the connection closed). That is allowed:
    /// what a caller was told failed may turn out written, but nothing unwritten is ever
    /// acknowledged. The writer's own state stays right either way:
    /// - tokens and the cache change only after the last await of `transact_on` (`answers`,
    ///   `settled`), so a batch cut short changed neither, but for cache entries it took out to
    ///   plan, which the next locking read fetches again;
    /// - the cache is never trusted blindly: the locking read sends each cached task's last
    ///   sequence number and gets the row back when it differs, so a late commit is seen;
    /// - a late claim or create leaves a lease whose token this node does not know: it is not
    ///   renewed, expires, and the task is claimed again; a late release is reported lost by
    ///   the next renewal; and the fencing token refuses any write from a stale lease.
    async fn transact(
        &mut self,
        requests: &[&Request],
    ) -> Result<(Vec<Result<(), Error>>, Answers), Failure> {
        let connection = match self.connection.take() {
            Some(connection) if !connection.client.is_closed() => connection,
            _ => {
                // Not a statement's failure: running the calls one by one would only connect
                // again for each.
                let opening = async {
                    let opened = connect(&self.config).await?;
                    Connection::new(opened, &self.sql).await
                };
                crate::bound::within(self.bound, opening)
                    .await
                    .map_err(|error| {
                        Failure::other(format!("cannot connect: {}", crate::bound::cause(&error)))
                    })?
            }
        };
        match tokio::time::timeout(self.bound, self.transact_on(&connection, requests)).await {
            Ok(outcome) => {
                // Kept even if it broke meanwhile: the next batch sees that and opens another.
                self.connection = Some(connection);
                outcome
            }
            Err(_) => {
                connection.abandon();
                Err(Failure::other(crate::bound::timed_out_message(self.bound)))
            }
        }
    }

    async fn transact_on(
        &mut self,
        connection: &Connection,
        requests: &[&Request],
    ) -> Result<(Vec<Result<(), Error>>, Answers), Failure> {
        let mut touched: Vec<TaskId> = requests.iter().flat_map(|r| r.touches()).collect();
        touched.sort_unstable();
        touched.dedup();
        let cached_seqs: Vec<Option<i64>> = touched
            .iter()
            .map(|id| self.cache.get(id).map(|task| codec::seq(task.last_seq())))
            .collect();
        let touched_uuids: Vec<Uuid> = touched.iter().copied().map(codec::uuid).collect();
        let client = &connection.client;
        let statements = &connection.statements;

        // The idempotency keys the batch's creates ask for.
        let (key_owners, keys): (Vec<&str>, Vec<&str>) = requests
            .iter()
            .filter_map(|request| match request {
                Request::Create { task, .. } => {
                    Some((task.owner.as_str(), task.idempotency_key.as_deref()?))
                }
                _ => None,
            })
            .unzip();

        // Round trip 1: lock and read the rows the calls touch, and find who holds the keys.
        let began = !touched.is_empty();
        let (rows, holder_rows) = if began {
            let begin = client.query(&statements.begin, &[]);
            let args = args![&touched_uuids, &cached_seqs];
            let lock = client.query(&statements.lock, &args);
            let holders = async {
                if keys.is_empty() {
                    return Ok(Vec::new());
                }
                let args = args![&key_owners, &keys];
                client.query(&statements.key_holders, &args).await
            };
            let (begin, lock, holders) = futures_util::future::join3(begin, lock, holders).await;
            match begin.and(lock).and_then(|rows| Ok((rows, holders?))) {
                Ok(rows) => rows,
                Err(error) if error.is_closed() => {
                    // No COMMIT was sent, so nothing was applied: run it again, on a new
                    // connection.
                    return Err(Failure {
                        transient: true,
                        ..Failure::other(describe(&error))
                    });
                }
                Err(error) => {
                    rollback(client).await;
                    return Err(Failure::of(&error));
                }
            }
        } else {
            (Vec::new(), Vec::new())
        };
        let holders = holder_rows
            .iter()
            .map(|row| ((row.get(0), row.get(1)), codec::task_id(row.get(2))))
            .collect();
        let mut loaded = HashMap::with_capacity(rows.len());
        for row in rows {
            let id = codec::task_id(row.get(0));
            let token: Option<i64> = row.get(1);
            let doc: Option<String> = row.get(3);
            let task = match doc {
                Some(doc) => codec::parse_task(&doc),
                None => self
                    .cache
                    .remove(&id)
                    .ok_or_else(|| backend(format!("the writer lost its cached copy of {id}"))),
            };
            match task {
                Ok(task) => {
                    loaded.insert(id, Loaded { token, task });
                }
                Err(error) => {
                    rollback(client).await;
                    return Err(Failure::other(error.to_string()));
                }
            }
        }

        let plan = batch::plan(requests, loaded, holders, &self.tokens);
        let writes = requests
            .iter()
            .zip(&plan.results)
            .filter(|(request, result)| request.is_write() && result.is_ok())
            .count();
        let params = match Params::new(&plan, &self.tokens, &self.node, &self.sql.channel) {
            Ok(params) => params,
            Err(error) => {
                rollback(client).await;
                return Err(Failure::other(error.to_string()));
            }
        };
        if params.is_idle() && !began {
            // Nothing to write and no transaction open: every call was refused, or had
            // nothing to do.
            return Ok(self.settled(plan, Answers::default(), HashMap::new()));
        }

        // Round trip 2: everything else, pipelined, ending with COMMIT. A failed statement
        // aborts the transaction, and the COMMIT that follows it then rolls back.
        let (steps, queries) = params.queries(client, statements, began);
        let results = join_all(queries).await;
        let mut outputs = HashMap::new();
        let mut failure = None;
        for (step, result) in steps.into_iter().zip(results) {
            match result {
                Ok(rows) => {
                    outputs.insert(step, rows);
                }
                // The first error is the cause; the later ones only say the transaction had
                // already failed.
                Err(error) => {
                    failure.get_or_insert(error);
                }
            }
        }
        if let Some(error) = failure {
            rollback(client).await;
            return Err(Failure::of(&error));
        }
        self.counters.committed(
            writes,
            plan.events.len(),
            outputs.contains_key(&Step::Notify),
        );
        let answers = self.answers(&mut outputs, &params);
        let created = outputs
            .remove(&Step::InsertTasks)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|row| Some((codec::task_id(row.get(0)), row.get::<_, Option<i64>>(1)?)))
            .collect();
        Ok(self.settled(plan, answers, created))
    }

    /// Turns the answering statements' rows into answers, and takes the leases they gave or
    /// showed lost.
    ///
    /// The transaction has committed: nothing here may fail the batch, or its writes would be
    /// reported failed (and, split into calls, applied again). A row this version cannot read
    /// is left out of the answer, loudly.
    fn answers(&mut self, outputs: &mut HashMap<Step, Vec<Row>>, params: &Params) -> Answers {
        let mut answers = Answers::default();
        if let Some(rows) = outputs.remove(&Step::Renew) {
            let renewed: std::collections::HashSet<TaskId> =
                rows.iter().map(|row| codec::task_id(row.get(0))).collect();
            let lost: Vec<TaskId> = params
                .held_ids
                .iter()
                .copied()
                .filter(|id| !renewed.contains(id))
                .collect();
            for id in &lost {
                self.tokens.remove(id);
                self.cache.remove(id);
            }
            answers.renewal = Some(Renewal {
                renewed: renewed.len(),
                lost,
            });
        }
        if let Some(rows) = outputs.remove(&Step::TakeSignals) {
            let mut taken = Vec::with_capacity(rows.len());
            for row in rows {
                let id: i64 = row.get(0);
                let text: String = row.get(2);
                let signal = match codec::parse_signal(&text) {
                    Ok(signal) => signal,
                    Err(error) => {
                        tracing::error!(%error, "a taken signal could not be read; it is dropped");
                        continue;
                    }
                };
                taken.push((
                    id,
                    Signalled {
                        task: codec::task_id(row.get(1)),
                        signal,
                    },
                ));
            }
            taken.sort_by_key(|(id, _)| *id);
            answers.signals = Some(taken.into_iter().map(|(_, signal)| signal).collect());
        }
        if let Some(rows) = outputs.remove(&Step::Claim) {
            let mut claimed = Vec::with_capacity(rows.len());
            for row in rows {
                let token: i64 = row.get(1);
                let text: String = row.get(2);
                let task = match codec::parse_task(&text) {
                    Ok(task) => task,
                    Err(error) => {
                        // Its token is not kept: its lease lapses, and it stays stored for
                        // a version that can read it.
                        tracing::error!(%error, "a claimed task could not be read; skipped");
                        continue;
                    }
                };
                self.tokens.insert(task.id, token);
                self.cache.insert(task.id, task.clone());
                claimed.push(task);
            }
            claimed.sort_by_key(|task| (task.created_at, task.id));
            answers.claimed = Some(claimed);
        }
        answers
    }

    /// Brings tokens and cache up to date with a committed plan.
    fn settled(
        &mut self,
        plan: Plan,
        answers: Answers,
        created: HashMap<TaskId, i64>,
    ) -> (Vec<Result<(), Error>>, Answers) {
        for (id, _) in &plan.releases {
            self.tokens.remove(id);
        }
        self.tokens.extend(created);
        for task in plan.tasks {
            if task.finished_at().is_some() {
                self.tokens.remove(&task.id);
                self.cache.remove(&task.id);
            } else {
                self.cache.insert(task.id, task);
            }
        }
        // Tasks this node holds are always kept; the others only up to a bound, so a node
        // that creates tasks for others to run does not keep them all.
        if self.cache.len() > self.tokens.len() + self.cache_unheld {
            let tokens = &self.tokens;
            self.cache.retain(|id, _| tokens.contains_key(id));
        }
        (plan.results, answers)
    }
}

/// Ends a failed transaction, if the connection still has one open.
async fn rollback(client: &Client) {
    if !client.is_closed() {
        // Nothing more can be done if this fails: the connection is then broken, and the
        // next batch opens another.
        let _ = client.batch_execute("ROLLBACK").await;
    }
}

/// Answers every call of a committed batch.
fn settle(batch: Vec<Command>, results: Vec<Result<(), Error>>, mut answers: Answers) {
    for (command, result) in batch.into_iter().zip(results) {
        // A caller that stopped waiting dropped its receiver; its write happened all the same.
        let _delivered = match command.reply {
            Reply::Ack(reply) => reply.send(result).is_ok(),
            Reply::Claim(reply) => reply
                .send(Ok(answers.claimed.take().unwrap_or_default()))
                .is_ok(),
            Reply::Renew(reply) => reply
                .send(Ok(answers.renewal.clone().unwrap_or_default()))
                .is_ok(),
            // Two takes in one batch: the first takes everything, the second finds nothing.
            Reply::Signals(reply) => reply
                .send(Ok(answers.signals.take().unwrap_or_default()))
                .is_ok(),
        };
    }
}

/// Fails every call of a batch with the same backend error.
fn fail(batch: Vec<Command>, failure: &Failure) {
    tracing::warn!(
        calls = batch.len(),
        error = failure.message,
        "a batch of writes failed"
    );
    for command in batch {
        let _delivered = match command.reply {
            Reply::Ack(reply) => reply.send(Err(failure.error())).is_ok(),
            Reply::Claim(reply) => reply.send(Err(failure.error())).is_ok(),
            Reply::Renew(reply) => reply.send(Err(failure.error())).is_ok(),
            Reply::Signals(reply) => reply.send(Err(failure.error())).is_ok(),
        };
    }
}

/// The parameters of a batch's second round trip, as the column arrays its statements take.
struct Params {
    node: String,
    channel: String,
    held_ids: Vec<TaskId>,
    held_uuids: Vec<Uuid>,
    held_tokens: Vec<i64>,
    renew: bool,
    take_signals: bool,
    claim: Option<(Vec<String>, Vec<String>, i64)>,
    locked: Vec<Uuid>,
    sessions: Vec<String>,
    inserts: Option<Inserts>,
    updates: Option<Updates>,
    events: Option<Events>,
    inbox: Option<Inbox>,
    signals: Option<Signals>,
    releases: Option<Releases>,
    payload: Option<String>,
}

#[derive(Default)]
struct Inserts {
    id: Vec<Uuid>,
    kind: Vec<String>,
    owner: Vec<String>,
    session: Vec<Option<String>>,
    labels: Vec<String>,
    status: Vec<String>,
    created_at: Vec<i64>,
    finished_at: Vec<Option<i64>>,
    expires_at: Vec<Option<i64>>,
    last_seq: Vec<i64>,
    doc: Vec<String>,
    held: Vec<bool>,
    idempotency_key: Vec<Option<String>>,
    start_at: Vec<Option<i64>>,
}

#[derive(Default)]
struct Events {
    task: Vec<Uuid>,
    seq: Vec<i64>,
    doc: Vec<String>,
}

#[derive(Default)]
struct Inbox {
    session: Vec<String>,
    task: Vec<Uuid>,
    at: Vec<i64>,
    entry: Vec<String>,
}

#[derive(Default)]
struct Signals {
    task: Vec<Uuid>,
    signal: Vec<String>,
}

#[derive(Default)]
struct Releases {
    id: Vec<Uuid>,
    token: Vec<i64>,
}

#[derive(Default)]
struct Updates {
    id: Vec<Uuid>,
    status: Vec<String>,
    finished_at: Vec<Option<i64>>,
    expires_at: Vec<Option<i64>>,
    last_seq: Vec<i64>,
    doc: Vec<String>,
}

impl Params {
    fn new(
        plan: &Plan,
        tokens: &HashMap<TaskId, i64>,
        node: &str,
        channel: &str,
    ) -> Result<Self, Error> {
        // Only statements about leases need every lease this node holds; a node holding
        // nothing has nothing to renew or take signals for, and its callers get empty answers
        // without a statement.
        let leases = plan.claim.is_some() || plan.renew || plan.take_signals;
        let (held_ids, held_tokens): (Vec<TaskId>, Vec<i64>) = if leases {
            tokens.iter().map(|(id, token)| (*id, *token)).unzip()
        } else {
            (Vec::new(), Vec::new())
        };
        let inserts = (!plan.inserts.is_empty())
            .then(|| {
                let mut columns = Inserts::default();
                for (task, held) in &plan.inserts {
                    let row = TaskRow::new(task)?;
                    columns.id.push(row.id);
                    columns.kind.push(row.kind);
                    columns.owner.push(row.owner);
                    columns.session.push(row.session);
                    columns.labels.push(row.labels);
                    columns.status.push(row.status);
                    columns.created_at.push(row.created_at);
                    columns.finished_at.push(row.finished_at);
                    columns.expires_at.push(row.expires_at);
                    columns.last_seq.push(row.last_seq);
                    columns.doc.push(row.doc);
                    columns.held.push(*held);
                    columns.idempotency_key.push(task.idempotency_key.clone());
                    columns.start_at.push(task.start_at.map(codec::millis));
                }
                Ok::<_, Error>(columns)
            })
            .transpose()?;
        let updates = (!plan.updates.is_empty())
            .then(|| {
                let mut columns = Updates::default();
                for task in &plan.updates {
                    let row = TaskRow::new(task)?;
                    columns.id.push(row.id);
                    columns.status.push(row.status);
                    columns.finished_at.push(row.finished_at);
                    columns.expires_at.push(row.expires_at);
                    columns.last_seq.push(row.last_seq);
                    columns.doc.push(row.doc);
                }
                Ok::<_, Error>(columns)
            })
            .transpose()?;
        let events = (!plan.events.is_empty())
            .then(|| {
                let mut columns = Events::default();
                for event in &plan.events {
                    let row = EventRow::new(event)?;
                    columns.task.push(row.task);
                    columns.seq.push(row.seq);
                    columns.doc.push(row.doc);
                }
                Ok::<_, Error>(columns)
            })
            .transpose()?;
        let inbox = (!plan.inbox.is_empty())
            .then(|| {
                let mut columns = Inbox::default();
                for NewInboxItem {
                    session,
                    task,
                    at,
                    entry,
                } in &plan.inbox
                {
                    columns.session.push(session.as_str().to_owned());
                    columns.task.push(codec::uuid(*task));
                    columns.at.push(codec::millis(*at));
                    columns.entry.push(codec::entry_doc(entry)?);
                }
                Ok::<_, Error>(columns)
            })
            .transpose()?;
        let signals = (!plan.signals.is_empty())
            .then(|| {
                let mut columns = Signals::default();
                for (task, signal) in &plan.signals {
                    columns.task.push(codec::uuid(*task));
                    columns.signal.push(codec::signal_doc(signal)?);
                }
                Ok::<_, Error>(columns)
            })
            .transpose()?;
        let releases = (!plan.releases.is_empty()).then(|| {
            let (id, token) = plan
                .releases
                .iter()
                .map(|(id, token)| (codec::uuid(*id), *token))
                .unzip();
            Releases { id, token }
        });
        let mut sessions: Vec<String> = plan
            .inbox
            .iter()
            .map(|item| item.session.as_str().to_owned())
            .collect();
        sessions.sort_unstable();
        sessions.dedup();
        Ok(Self {
            node: node.to_owned(),
            channel: channel.to_owned(),
            held_uuids: held_ids.iter().copied().map(codec::uuid).collect(),
            held_ids,
            held_tokens,
            renew: plan.renew && !tokens.is_empty(),
            take_signals: plan.take_signals && !tokens.is_empty(),
            claim: plan.claim.as_ref().map(|claim| {
                let limit = codec::count(claim.limit);
                (claim.kinds.clone(), claim.signalled.clone(), limit)
            }),
            locked: plan.locked.iter().copied().map(codec::uuid).collect(),
            sessions,
            inserts,
            updates,
            events,
            inbox,
            signals,
            releases,
            payload: (!plan.notices.is_empty()).then(|| plan.notices.payload()),
        })
    }

    /// Whether the batch has nothing to send.
    fn is_idle(&self) -> bool {
        !self.renew
            && !self.take_signals
            && self.claim.is_none()
            && self.inserts.is_none()
            && self.updates.is_none()
            && self.events.is_none()
            && self.inbox.is_none()
            && self.signals.is_none()
            && self.releases.is_none()
            && self.payload.is_none()
    }

    /// The second round trip's statements, in the order they must run.
    fn queries<'a>(
        &'a self,
        client: &'a Client,
        statements: &'a Statements,
        began: bool,
    ) -> (Vec<Step>, Vec<Query<'a>>) {
        let mut steps = Vec::new();
        let mut queries: Vec<Query<'a>> = Vec::new();
        let mut push = |step: Step, query: Query<'a>| {
            steps.push(step);
            queries.push(query);
        };
        let run = move |statement: &'a Statement, params: Args<'a>| -> Query<'a> {
            Box::pin(async move { client.query(statement, &params).await })
        };
        if !began {
            push(Step::Begin, run(&statements.begin, args![]));
        }
        // Leases and signals first, on the rows as they were before this batch's writes.
        if self.renew {
            push(
                Step::Renew,
                run(
                    &statements.renew,
                    args![&self.held_uuids, &self.held_tokens, &self.node],
                ),
            );
        }
        if self.take_signals {
            push(
                Step::TakeSignals,
                run(
                    &statements.take_signals,
                    args![&self.held_uuids, &self.held_tokens, &self.node],
                ),
            );
        }
        if let Some((kinds, signalled, limit)) = &self.claim {
            push(
                Step::Claim,
                run(
                    &statements.claim,
                    args![
                        kinds,
                        &self.node,
                        &self.held_tokens,
                        &self.locked,
                        limit,
                        signalled
                    ],
                ),
            );
        }
        if let Some(columns) = &self.inserts {
            push(
                Step::InsertTasks,
                run(
                    &statements.insert_tasks,
                    args![
                        &columns.id,
                        &columns.kind,
                        &columns.owner,
                        &columns.session,
                        &columns.labels,
                        &columns.status,
                        &columns.created_at,
                        &columns.finished_at,
                        &columns.expires_at,
                        &columns.last_seq,
                        &columns.doc,
                        &columns.held,
                        &self.node,
                        &columns.idempotency_key,
                        &columns.start_at,
                    ],
                ),
            );
        }
        if let Some(columns) = &self.updates {
            push(
                Step::UpdateTasks,
                run(
                    &statements.update_tasks,
                    args![
                        &columns.id,
                        &columns.status,
                        &columns.finished_at,
                        &columns.expires_at,
                        &columns.last_seq,
                        &columns.doc,
                    ],
                ),
            );
        }
        if let Some(c) = &self.events {
            push(
                Step::InsertEvents,
                run(&statements.insert_events, args![&c.task, &c.seq, &c.doc]),
            );
        }
        if let Some(c) = &self.inbox {
            push(
                Step::LockSessions,
                run(&statements.lock_sessions, args![&self.sessions]),
            );
            push(
                Step::InsertInbox,
                run(
                    &statements.insert_inbox,
                    args![&c.session, &c.task, &c.at, &c.entry],
                ),
            );
        }
        if let Some(c) = &self.signals {
            push(
                Step::InsertSignals,
                run(&statements.insert_signals, args![&c.task, &c.signal]),
            );
        }
        if let Some(c) = &self.releases {
            push(
                Step::Release,
                run(&statements.release, args![&c.id, &c.token, &self.node]),
            );
        }
        if let Some(payload) = &self.payload {
            push(
                Step::Notify,
                run(&statements.notify, args![&self.channel, payload]),
            );
        }
        push(Step::Commit, run(&statements.commit, args![]));
        (steps, queries)
    }
}
