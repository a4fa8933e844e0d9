-- 0001: tasks, their events, the agent inboxes, signals between nodes, and the lease tokens.
--
-- Applied with `search_path` set to the store's schema, so names here are unqualified.
-- Times the domain chose (creation, end, expiry) are whole milliseconds since the epoch, as
-- `Timestamp` holds them; lease expiries are the database's own `timestamptz`, because only the
-- database's clock decides when a lease has run out.

-- Fencing tokens: a new one at every claim, so a stale holder's token never matches again.
CREATE SEQUENCE lease_tokens AS bigint;

-- One row per task. `doc` is the whole folded `Task` (the source of truth for reads); the
-- other columns copy what queries filter or sort on. An append rewrites the row, so:
--   * only columns that change at most once per task are indexed (`finished_at`, `expires_at`),
--     which keeps every other update, and every lease renewal, a HOT update: no index entry is
--     written and the old version is pruned from the page without waiting for vacuum;
--   * `fillfactor = 70` leaves room on each page for those new versions to land beside the old.
CREATE TABLE tasks (
    id            uuid    PRIMARY KEY,
    kind          text    NOT NULL,
    owner         text    NOT NULL,
    session       text,
    labels        jsonb   NOT NULL,
    status        text    NOT NULL,
    created_at    bigint  NOT NULL,
    finished_at   bigint,
    expires_at    bigint,
    last_seq      bigint  NOT NULL,
    doc           json    NOT NULL,
    lease_node    text,
    lease_token   bigint,
    lease_expires timestamptz,
    CHECK ((lease_node IS NULL) = (lease_token IS NULL)),
    CHECK ((lease_node IS NULL) = (lease_expires IS NULL))
) WITH (fillfactor = 70, autovacuum_vacuum_scale_factor = 0.05);

-- Listing: newest first with keyset pagination on (created_at, id).
CREATE INDEX tasks_newest ON tasks (created_at DESC, id DESC);
-- A principal's tasks, and a conversation's: the listings adapters make all the time.
CREATE INDEX tasks_owner_newest ON tasks (owner, created_at DESC, id DESC);
CREATE INDEX tasks_session_newest ON tasks (session, created_at DESC, id DESC)
    WHERE session IS NOT NULL;
-- Claims and `unfinished`: the tasks that have not ended, oldest first. Small, whatever the
-- history, because ended tasks leave it.
CREATE INDEX tasks_unfinished ON tasks (created_at, id) WHERE finished_at IS NULL;
-- Retention: expiry, and the cap on finished tasks (earliest-finished first).
CREATE INDEX tasks_expiry ON tasks (expires_at) WHERE expires_at IS NOT NULL;
CREATE INDEX tasks_finished ON tasks (finished_at, id) WHERE finished_at IS NOT NULL;

-- Each task's log: insert-only until the task is purged. No foreign key: every insert would
-- look the task up and lock its row, and the writer has already checked the task exists.
CREATE TABLE events (
    task uuid   NOT NULL,
    seq  bigint NOT NULL,
    doc  json   NOT NULL,
    PRIMARY KEY (task, seq)
) WITH (autovacuum_vacuum_scale_factor = 0.05);

-- The agent inboxes. Positions come from one sequence, so they never go back or repeat, even
-- after a session's inbox empties.
CREATE TABLE inbox (
    session  text      NOT NULL,
    position bigserial NOT NULL,
    task     uuid      NOT NULL,
    at       bigint    NOT NULL,
    entry    json      NOT NULL,
    PRIMARY KEY (session, position)
) WITH (autovacuum_vacuum_scale_factor = 0.05);

-- Requests for the node holding a task (cancel, answers), taken by that node in `id` order.
CREATE TABLE signals (
    id     bigserial PRIMARY KEY,
    task   uuid      NOT NULL,
    signal json      NOT NULL
);
CREATE INDEX signals_task ON signals (task);
