//! The API's wire types, named: aliases of the types generated from docs/openapi.json.
import type { components } from "./openapi.js";

type Schemas = components["schemas"];

/** A task: one unit of long-running work, as it stands. */
export type Task = Schemas["Task"];
/** Where a task is in its life. */
export type Status = Schemas["Status"];
/** One event of a task: every change is one, numbered from 1 with no gaps. */
export type Event = Schemas["Event"];
/** What an event changed, tagged by `type`. */
export type Change = Schemas["Change"];
/** An artifact: every chunk its handler emitted so far, folded. */
export type Artifact = Schemas["Artifact"];
/** How far a task has got. */
export type Progress = Schemas["Progress"];
/** Why a task failed or was rejected. */
export type TaskError = Schemas["TaskError"];
/** How a cancellation came about. */
export type Cancellation = Schemas["Cancellation"];
/** One page of tasks, newest first; `next` is the cursor of the following page. */
export type TaskPage = Schemas["TaskPage"];
/** What a start sends (`POST /v1/tasks`). */
export type CreateTask = Schemas["CreateTask"];
/** Where a start's task events are POSTed, signed with the Standard Webhooks headers (`docs/webhooks.md`). */
export type Webhook = Schemas["Webhook"];
/** What an inbox drain returns. */
export type Drained = Schemas["Drained"];
/** One item of a session's inbox. */
export type InboxItem = Schemas["InboxItem"];
/** What an inbox item says, tagged by `type`. */
export type InboxEntry = Schemas["InboxEntry"];
/** A kind of task the server runs. */
export type Kind = Schemas["Kind"];
/** On the all-tasks stream, in place of events the reader fell too far behind to get. */
export type Lagged = Schemas["Lagged"];
/** A worker connected to the server, as `GET /v1/workers` lists it. */
export type ConnectedWorker = Schemas["Worker"];
/** `GET /healthz`. */
export type Health = Schemas["Health"];
/** Every error response's body. */
export type ErrorBody = Schemas["ErrorBody"];

/** The statuses a task ends in. */
export const ENDED: readonly Status[] = ["completed", "failed", "cancelled", "rejected"];

/** Whether a task in this status has ended. */
export function isEnded(status: Status): boolean {
  return ENDED.includes(status);
}
