//! A Server-Sent Events reader: the bytes of a response body in, one message per blank line out.
//
// It follows the parsing rules of the HTML standard's `EventSource` (lines end in CRLF, LF or
// CR; `data` lines join with LF; a message without data is not dispatched; comments are
// skipped), so that it reads any server the way a browser would.

/** One SSE message. */
export interface SseMessage {
  /** The `event` field, `message` when absent. */
  readonly event: string;
  /** The `data` lines, joined with `\n`. */
  readonly data: string;
  /** The last `id` seen on the stream so far (it carries over, as in a browser), if any. */
  readonly id: string | undefined;
}

/** Reads `body` to its end, yielding each message; returning early cancels the body. */
export async function* readSse(body: ReadableStream<Uint8Array>): AsyncGenerator<SseMessage> {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let event = "";
  let data: string[] = [];
  let id: string | undefined;
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      for (;;) {
        const end = lineEnd(buffer);
        if (end === undefined) break;
        const line = buffer.slice(0, end.at);
        buffer = buffer.slice(end.at + end.length);
        if (line === "") {
          if (data.length > 0) yield { event: event || "message", data: data.join("\n"), id };
          event = "";
          data = [];
          continue;
        }
        if (line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        let content = colon < 0 ? "" : line.slice(colon + 1);
        if (content.startsWith(" ")) content = content.slice(1);
        switch (field) {
          case "event":
            event = content;
            break;
          case "data":
            data.push(content);
            break;
          case "id":
            if (!content.includes("\0")) id = content;
            break;
          default:
            // `retry` and unknown fields: the caller decides its own reconnection delay.
            break;
        }
      }
    }
  } finally {
    // Reached on early return too: stop reading so the connection is released.
    await reader.cancel().catch(() => undefined);
  }
}

/** Where the first complete line of `buffer` ends, or undefined if it holds no whole line yet. */
function lineEnd(buffer: string): { at: number; length: number } | undefined {
  for (let i = 0; i < buffer.length; i++) {
    const c = buffer.charCodeAt(i);
    if (c === 10) return { at: i, length: 1 };
    if (c === 13) {
      // A CR at the end may be the first half of a CRLF split across chunks: wait for more.
      if (i + 1 === buffer.length) return undefined;
      return { at: i, length: buffer.charCodeAt(i + 1) === 10 ? 2 : 1 };
    }
  }
  return undefined;
}
