//! One connection to a worker's event stream: the request (with `Last-Event-ID`), and a watchdog that cuts a stream gone silent.
import { linked } from "../delay.js";
import { LongrunError } from "../error.js";
import type { Http } from "../http.js";
import { readSse, type SseMessage } from "../sse.js";

/** A stream silent this long (the server sends a comment every 15 s) is taken as dead. */
const SILENCE_MS = 45_000;

/**
 * Opens `GET path` as an event stream, resuming after `lastEventId` if given, calls `opened`
 * once the server has answered, and yields its messages until it ends, breaks, or `signal`
 * aborts. A dead connection can be silent rather than broken: one that carries nothing, not
 * even a keep-alive comment, for 45 s is cut with a `network_error`.
 */
export async function* connect(
  http: Http,
  path: string,
  lastEventId: string | undefined,
  signal: AbortSignal,
  opened: () => void,
): AsyncGenerator<SseMessage> {
  const silence = new AbortController();
  const connection = linked([signal, silence.signal]);
  let heard = Date.now();
  const watchdog = setInterval(() => {
    if (Date.now() - heard > SILENCE_MS) silence.abort(new LongrunError("network_error", `the event stream was silent for ${SILENCE_MS} ms`, 0));
  }, 5000);
  watchdog.unref();
  try {
    const headers: Record<string, string> = { accept: "text/event-stream" };
    if (lastEventId !== undefined) headers["last-event-id"] = lastEventId;
    const response = await http.send({ method: "GET", path, headers, signal: connection.signal });
    if (response.body === null) throw new LongrunError("unexpected_response", "the event stream has no body", response.status);
    opened();
    const body = response.body.pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        transform(chunk, controller) {
          heard = Date.now();
          controller.enqueue(chunk);
        },
      }),
    );
    yield* readSse(body);
  } catch (error) {
    throw silence.signal.aborted && !signal.aborted ? silence.signal.reason : error;
  } finally {
    clearInterval(watchdog);
    connection.dispose();
  }
}
