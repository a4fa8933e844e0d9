//! Every statement the store runs, built once per store with its schema and lease ttl written in.
//!
//! Writes are multi-row: each takes parallel arrays and `unnest`s them, so a batch of a
//! thousand events is one `INSERT`, not a thousand. Parameters carry explicit types so that
//! statements prepare without a round trip to ask for them.

use std::time::Duration;

/// The statements, for one schema.
#[derive(Debug)]
pub(crate) struct Sql {
    /// The `LISTEN`/`NOTIFY` channel: per schema, so stores in other schemas never hear it.
    pub(crate) channel: String,

    // The writer's statements, in the order a batch runs them.
    /// Locks the rows a batch touches, in id order (so two writers cannot deadlock on them),
    /// and reads each one's lease token and last sequence number, and its document when the
    /// writer's cached copy is missing (`NULL` seq) or stale.
    pub(crate) lock: String,
    /// Finds the tasks holding the idempotency keys a batch's creates ask for.
    pub(crate) key_holders: String,
    pub(crate) renew: String,
    pub(crate) take_signals: String,
    pub(crate) claim: String,
    /// Serialises inbox pushes per session across nodes, so positions commit in order.
    pub(crate) lock_sessions: String,
    pub(crate) insert_tasks: String,
    pub(crate) update_tasks: String,
    pub(crate) insert_events: String,
    pub(crate) insert_inbox: String,
    pub(crate) insert_signals: String,
    pub(crate) release: String,
    pub(crate) notify: String,

    // Reads and maintenance, on the read pool.
    pub(crate) get: String,
    pub(crate) read_events: String,
    pub(crate) unfinished: String,
    pub(crate) peek: String,
    pub(crate) acknowledge: String,
    pub(crate) purge_expired: String,
    pub(crate) cap_cutoff: String,
    pub(crate) purge_through: String,
    pub(crate) dead_tuples: String,
    /// The start of a listing; [`crate::read`] appends the filter's clauses.
    pub(crate) list: String,
}

impl Sql {
    /// The statements for `schema` (a validated plain identifier) and leases of `ttl`.
    pub(crate) fn new(schema: &str, ttl: Duration) -> Self {
        let s = format!("\"{schema}\"");
        let tokens = format!("nextval('{s}.lease_tokens')");
        let expiry = format!("now() + interval '{} milliseconds'", ttl.as_millis());
        Self {
            channel: format!("longrun_{schema}"),

            lock: format!(
                "SELECT t.id, t.lease_token, t.last_seq,
                        CASE WHEN t.last_seq IS DISTINCT FROM c.seq THEN t.doc::text END
                 FROM {s}.tasks t JOIN unnest($1::uuid[], $2::int8[]) AS c(id, seq) ON t.id = c.id
                 ORDER BY t.id
                 FOR UPDATE OF t"
            ),
            key_holders: format!(
                "SELECT t.owner, t.idempotency_key, t.id
                 FROM {s}.tasks t JOIN unnest($1::text[], $2::text[]) AS k(owner, key)
                   ON t.owner = k.owner AND t.idempotency_key = k.key"
            ),
            renew: format!(
                "UPDATE {s}.tasks AS t SET lease_expires = {expiry}
                 FROM unnest($1::uuid[], $2::int8[]) AS h(id, token)
                 WHERE t.id = h.id AND t.lease_token = h.token AND t.lease_node = $3::text
                 RETURNING t.id"
            ),
            // Only tasks that have signals waiting are locked (against a claim by another node
            // while their signals are taken here), not every task this node holds.
            take_signals: format!(
                "WITH mine AS (
                     SELECT s.id FROM {s}.signals s
                     JOIN {s}.tasks t ON t.id = s.task
                     JOIN unnest($1::uuid[], $2::int8[]) AS h(id, token)
                       ON h.id = s.task AND h.token = t.lease_token
                     WHERE t.lease_node = $3::text
                     FOR SHARE OF t)
                 DELETE FROM {s}.signals AS s USING mine WHERE s.id = mine.id
                 RETURNING s.id, s.task, s.signal::text"
            ),
            // Claimable: unheld; held by this node's name under a token this incarnation does
            // not hold (an earlier incarnation's, or one whose claim's outcome it never
            // learned); or held by another node whose lease has run out, by the database's
            // clock. This node's own current leases are never claimed again, even expired.
            // Rows this batch has locked to write are left to the batch. A delayed task is
            // not claimable before its start time, by the database's clock as for leases,
            // unless a signal waits for it (a cancel must not wait for the start time). A task
            // of a kind in $6 (hosted, but nothing here can run it now) is claimed only for a
            // signal waiting for it, so that a cancel or an answer is applied even when no node
            // can run the task.
            claim: format!(
                "WITH picked AS (
                     SELECT id FROM {s}.tasks t
                     WHERE finished_at IS NULL AND id <> ALL($4::uuid[])
                       AND ((kind = ANY($1::text[])
                             AND (start_at IS NULL
                                  OR start_at <= (extract(epoch FROM now()) * 1000)::int8
                                  OR EXISTS (SELECT 1 FROM {s}.signals s WHERE s.task = t.id)))
                            OR (kind = ANY($6::text[])
                                AND EXISTS (SELECT 1 FROM {s}.signals s WHERE s.task = t.id)))
                       AND (lease_node IS NULL
                            OR (lease_node = $2::text AND lease_token <> ALL($3::int8[]))
                            OR (lease_node <> $2::text AND lease_expires < now()))
                     ORDER BY created_at, id
                     LIMIT $5::int8
                     FOR UPDATE SKIP LOCKED)
                 UPDATE {s}.tasks AS t
                 SET lease_node = $2::text, lease_token = {tokens}, lease_expires = {expiry}
                 FROM picked WHERE t.id = picked.id
                 RETURNING t.id, t.lease_token, t.doc::text"
            ),
            // Volatile functions in the select list run after the sort, so the locks are taken
            // in key order and two writers cannot deadlock on them.
            lock_sessions: format!(
                "SELECT pg_advisory_xact_lock(k) FROM (
                     SELECT DISTINCT hashtextextended('longrun.inbox/{schema}/' || s, 0) AS k
                     FROM unnest($1::text[]) AS s) AS keys
                 ORDER BY k"
            ),
            insert_tasks: format!(
                "INSERT INTO {s}.tasks (id, kind, owner, session, labels, status, created_at,
                     finished_at, expires_at, last_seq, doc, idempotency_key, start_at,
                     lease_node, lease_token, lease_expires)
                 SELECT u.id, u.kind, u.owner, u.session, u.labels::jsonb, u.status, u.created_at,
                     u.finished_at, u.expires_at, u.last_seq, u.doc::json, u.idempotency_key,
                     u.start_at,
                     CASE WHEN u.held THEN $13::text END,
                     CASE WHEN u.held THEN {tokens} END,
                     CASE WHEN u.held THEN {expiry} END
                 FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                             $7::int8[], $8::int8[], $9::int8[], $10::int8[], $11::text[],
                             $12::bool[], $14::text[], $15::int8[])
                     AS u(id, kind, owner, session, labels, status, created_at, finished_at,
                          expires_at, last_seq, doc, held, idempotency_key, start_at)
                 RETURNING id, lease_token"
            ),
            // A task that ends gives its lease up in the same update.
            update_tasks: format!(
                "UPDATE {s}.tasks AS t
                 SET status = u.status, finished_at = u.finished_at, expires_at = u.expires_at,
                     last_seq = u.last_seq, doc = u.doc::json,
                     lease_node = CASE WHEN u.finished_at IS NULL THEN t.lease_node END,
                     lease_token = CASE WHEN u.finished_at IS NULL THEN t.lease_token END,
                     lease_expires = CASE WHEN u.finished_at IS NULL THEN t.lease_expires END
                 FROM unnest($1::uuid[], $2::text[], $3::int8[], $4::int8[], $5::int8[],
                             $6::text[])
                     AS u(id, status, finished_at, expires_at, last_seq, doc)
                 WHERE t.id = u.id"
            ),
            insert_events: format!(
                "INSERT INTO {s}.events (task, seq, doc)
                 SELECT u.task, u.seq, u.doc::json
                 FROM unnest($1::uuid[], $2::int8[], $3::text[]) AS u(task, seq, doc)"
            ),
            // Positions are drawn in the order the rows arrive, which the ordinality fixes.
            insert_inbox: format!(
                "INSERT INTO {s}.inbox (session, task, at, entry)
                 SELECT u.session, u.task, u.at, u.entry::json
                 FROM unnest($1::text[], $2::uuid[], $3::int8[], $4::text[]) WITH ORDINALITY
                     AS u(session, task, at, entry, n)
                 ORDER BY u.n"
            ),
            insert_signals: format!(
                "INSERT INTO {s}.signals (task, signal)
                 SELECT u.task, u.signal::json
                 FROM unnest($1::uuid[], $2::text[]) WITH ORDINALITY AS u(task, signal, n)
                 ORDER BY u.n"
            ),
            release: format!(
                "UPDATE {s}.tasks AS t SET lease_node = NULL, lease_token = NULL,
                     lease_expires = NULL
                 FROM unnest($1::uuid[], $2::int8[]) AS r(id, token)
                 WHERE t.id = r.id AND t.lease_token = r.token AND t.lease_node = $3::text"
            ),
            notify: "SELECT pg_notify($1::text, $2::text)".to_owned(),

            get: format!("SELECT doc::text FROM {s}.tasks WHERE id = $1::uuid"),
            read_events: format!(
                "SELECT doc::text FROM {s}.events
                 WHERE task = $1::uuid AND seq > $2::int8 ORDER BY seq LIMIT $3::int8"
            ),
            unfinished: format!(
                "SELECT doc::text FROM {s}.tasks WHERE finished_at IS NULL ORDER BY created_at, id"
            ),
            peek: format!(
                "SELECT position, task, at, entry::text FROM {s}.inbox
                 WHERE session = $1::text AND position > $2::int8
                 ORDER BY position LIMIT $3::int8"
            ),
            acknowledge: format!(
                "DELETE FROM {s}.inbox WHERE session = $1::text AND position <= $2::int8"
            ),
            // A bounded batch per statement (its own short transaction), its events and
            // signals with it; rows a writer has locked are left for the next purge.
            purge_expired: format!(
                "WITH gone AS (
                     DELETE FROM {s}.tasks WHERE id IN (
                         SELECT id FROM {s}.tasks WHERE expires_at <= $1::int8
                         ORDER BY expires_at LIMIT $2::int8 FOR UPDATE SKIP LOCKED)
                     RETURNING id),
                 events AS (DELETE FROM {s}.events WHERE task IN (SELECT id FROM gone)),
                 signals AS (DELETE FROM {s}.signals WHERE task IN (SELECT id FROM gone))
                 SELECT count(*) FROM gone"
            ),
            // The newest finished task beyond the cap: it and everything finished before it go.
            cap_cutoff: format!(
                "SELECT finished_at, id FROM {s}.tasks WHERE finished_at IS NOT NULL
                 ORDER BY finished_at DESC, id DESC OFFSET $1::int8 LIMIT 1"
            ),
            purge_through: format!(
                "WITH gone AS (
                     DELETE FROM {s}.tasks WHERE id IN (
                         SELECT id FROM {s}.tasks
                         WHERE finished_at IS NOT NULL AND (finished_at, id) <= ($1::int8, $2::uuid)
                         ORDER BY finished_at, id LIMIT $3::int8 FOR UPDATE SKIP LOCKED)
                     RETURNING id),
                 events AS (DELETE FROM {s}.events WHERE task IN (SELECT id FROM gone)),
                 signals AS (DELETE FROM {s}.signals WHERE task IN (SELECT id FROM gone))
                 SELECT count(*) FROM gone"
            ),
            dead_tuples: "SELECT COALESCE(sum(n_dead_tup), 0)::int8 FROM pg_stat_user_tables
                          WHERE schemaname = $1::text"
                .to_owned(),
            list: format!("SELECT doc::text FROM {s}.tasks WHERE true"),
        }
    }
}
