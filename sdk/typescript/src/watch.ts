//! A task's event stream as an async iterator that resumes after a dropped connection without gaps or duplicates.
import { backoff, sleep } from "./delay.js";
import { LongrunError } from "./error.js";
import { errorDetail, type CallOptions, type Http, type Query } from "./http.js";
import { readSse } from "./sse.js";
import type { Event, Lagged } from "./types.js";

/** How to watch a task. */
export interface WatchOptions extends CallOptions {
  /** Start after this sequence number (default 0: every event). */
  readonly after?: number | undefined;
  /** How to reconnect after a dropped connection. */
  readonly reconnect?: ReconnectOptions | undefined;
}

/** Reconnection after a dropped connection: exponential backoff, reset by every event received. */
export interface ReconnectOptions {
  /** Give up after this many failed connections in a row (default 10). */
  readonly attempts?: number | undefined;
  /** The first delay (default 100 ms); each failure doubles it. */
  readonly initialDelayMs?: number | undefined;
  /** The longest delay (default 5 s). */
  readonly maxDelayMs?: number | undefined;
}

/**
 * Follows the SSE stream at `path`. Each event's `seq` is also its SSE `id`; the last one
 * received is sent as `Last-Event-ID` on every reconnection, and an event at or below it is
 * skipped, so the consumer sees each event once, in order. The iterator ends after the event
 * that ends the task, or at once when the task had already ended after `after` (204).
 */
export async function* watch(http: Http, path: string, options: WatchOptions): AsyncGenerator<Event> {
  const attempts = options.reconnect?.attempts ?? 10;
  const initialDelay = options.reconnect?.initialDelayMs ?? 100;
  const maxDelay = options.reconnect?.maxDelayMs ?? 5000;
  const signal = options.signal;
  let last = options.after ?? 0;
  let failures = 0;
  for (;;) {
    let dropped: unknown;
    try {
      const headers: Record<string, string> = { accept: "text/event-stream" };
      if (last > 0) headers["last-event-id"] = String(last);
      const response = await http.send({ method: "GET", path, headers, signal });
      if (response.status === 204 || response.body === null) return;
      for await (const message of readSse(response.body)) {
        if (message.event === "error") {
          const detail = errorDetail(message.data);
          throw new LongrunError(detail?.code ?? "unexpected_response", detail?.message ?? message.data, response.status);
        }
        if (message.event !== "message") continue;
        const event = parse<Event>(message.data, response.status);
        // A resumed stream starts after `last`; anything at or below it was already yielded.
        if (event.seq <= last) continue;
        last = event.seq;
        failures = 0;
        yield event;
        if (event.change.type === "ended") return;
      }
      dropped = new LongrunError("network_error", "the event stream closed before the task ended", 0);
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      if (!resumable(error)) throw error;
      dropped = error;
    }
    failures += 1;
    if (failures > attempts) throw dropped;
    await sleep(backoff(failures, initialDelay, maxDelay), signal);
  }
}

/** Follows `GET /v1/events` with `query`: events, and `Lagged` notes, until the stream ends. */
export async function* events(http: Http, query: Query, signal: AbortSignal | undefined): AsyncGenerator<Event | Lagged> {
  const headers = { accept: "text/event-stream" };
  const response = await http.send({ method: "GET", path: "/v1/events", query, headers, signal });
  if (response.body === null) return;
  try {
    for await (const message of readSse(response.body)) {
      if (message.event === "error") {
        const detail = errorDetail(message.data);
        throw new LongrunError(detail?.code ?? "unexpected_response", detail?.message ?? message.data, response.status);
      }
      if (message.event === "lagged") yield parse<Lagged>(message.data, response.status);
      else if (message.event === "message") yield parse<Event>(message.data, response.status);
    }
  } catch (error) {
    if (signal?.aborted) throw signal.reason;
    if (error instanceof LongrunError) throw error;
    throw new LongrunError("network_error", `the event stream broke: ${String(error)}`, 0, { cause: error });
  }
}

/** Whether reconnecting may help: the connection failed or broke, or the server failed for now. */
export function resumable(error: unknown): boolean {
  if (!(error instanceof LongrunError)) {
    // Reading the body of a broken connection throws undici's `TypeError: terminated`.
    return error instanceof TypeError;
  }
  return error.status === 0 || error.status >= 500 || ["too_many_streams", "internal", "shutting_down"].includes(error.code);
}

function parse<T>(data: string, status: number): T {
  try {
    return JSON.parse(data) as T;
  } catch (cause) {
    throw new LongrunError("unexpected_response", `an SSE message whose data is not JSON: ${data.slice(0, 200)}`, status, { cause });
  }
}
