//! `Revoked`: why a worker's handler was stopped when its task is no longer the worker's.

/**
 * The reason `ctx.signal` is aborted with when the task is no longer this worker's: the server
 * revoked it, refused a report as `assignment_gone` (the fence), forgot the worker, or the worker
 * handed it back at a stop. Nothing the handler does after it is reported.
 */
export class Revoked extends Error {
  override readonly name = "Revoked";
}
