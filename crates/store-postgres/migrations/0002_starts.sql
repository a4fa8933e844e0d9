-- 0002: idempotency keys and delayed starts.
--
-- `idempotency_key` copies the key a task was started under. The partial unique index keeps one
-- task per owner and key among the stored tasks, across every node: the writer looks keys up
-- before it inserts (so a taken key refuses one create, not its batch), and a writer that lost a
-- race to another node's insert fails on this index and runs its batch again, finding the key
-- taken. Neither column ever changes after the insert, so updates stay HOT.
--
-- `start_at` copies a delayed task's start time (milliseconds since the epoch): a claim leaves a
-- task alone until then, so a delayed task released by its node is not held by another one for
-- the whole of its delay (unless a signal waits for it: a cancel is applied at once).
ALTER TABLE tasks ADD COLUMN idempotency_key text, ADD COLUMN start_at bigint;
CREATE UNIQUE INDEX tasks_idempotency_key ON tasks (owner, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
