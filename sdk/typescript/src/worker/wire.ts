//! The worker protocol's own shapes (docs/worker-protocol.md): registration, heartbeat, and the events of a worker's stream. Reports are the process protocol's messages.
import type { components } from "../openapi.js";
import { parseIncoming, parseStart, type Incoming, type Start } from "../process/wire.js";

type Schemas = components["schemas"];

/** `POST /v1/workers`: who the worker is and what it serves. */
export type Register = Schemas["WorkerRegistration"];

/** `201` to `POST /v1/workers`: the worker's id and its timings. */
export type Registered = Schemas["WorkerRegistered"];

/** `200` to `POST /v1/workers/{worker}/heartbeat`: the assignments the server counts as this worker's. */
export type Heartbeat = Schemas["WorkerHeartbeat"];

/** The task is no longer this worker's: stop at once and report nothing. */
export interface Revoke {
  readonly type: "revoke";
  readonly reason: string;
}

/** One event of the stream, for one assignment. */
export interface WorkerEvent {
  readonly assignment: string;
  readonly message: Start | Incoming | Revoke;
}

/**
 * Parses an event's data: the process protocol's message plus `assignment`. Throws an `Error`
 * saying what is wrong when the data is not a JSON object with an assignment; a message of an
 * unknown type is `unknown`, to be ignored, as the protocol asks.
 */
export function parseEvent(data: string): WorkerEvent {
  const value: unknown = JSON.parse(data);
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new Error("an event whose data is not a JSON object");
  const fields = value as Record<string, unknown>;
  const assignment = fields["assignment"];
  if (typeof assignment !== "string") throw new Error(`an event without an assignment: ${data.slice(0, 200)}`);
  switch (fields["type"]) {
    case "start":
      return { assignment, message: parseStart(data) };
    case "revoke":
      return { assignment, message: { type: "revoke", reason: typeof fields["reason"] === "string" ? fields["reason"] : "revoked" } };
    default:
      return { assignment, message: parseIncoming(data) };
  }
}
