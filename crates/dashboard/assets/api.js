// The dashboard's client for the /v1 API: JSON requests with the bearer token, and SSE read
// with fetch + ReadableStream, because a browser EventSource cannot send an Authorization header.

const TOKEN_KEY = 'longrun.token';

/** The token the user typed, if any (kept in localStorage across reloads). */
export function token() {
  return localStorage.getItem(TOKEN_KEY) || '';
}

/** Stores (or, with an empty string, forgets) the token. */
export function setToken(value) {
  if (value) localStorage.setItem(TOKEN_KEY, value);
  else localStorage.removeItem(TOKEN_KEY);
}

/** An API error: the HTTP status and the API's `{error: {code, message}}`, shown as is. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

function headers(extra) {
  const h = Object.assign({}, extra);
  const t = token();
  if (t) h.Authorization = 'Bearer ' + t;
  return h;
}

async function failure(response) {
  let code = 'http_' + response.status;
  let message = response.status + ' ' + response.statusText;
  try {
    const body = await response.json();
    if (body && body.error) {
      code = body.error.code || code;
      message = body.error.message || message;
    }
  } catch (_) {
    // Not the API's error shape (a proxy, say): the status line is all there is.
  }
  return new ApiError(response.status, code, message);
}

/** GET or POST a JSON API path; resolves to the parsed body, rejects with an ApiError. */
export async function api(method, path, body) {
  const init = { method, headers: headers({ Accept: 'application/json' }) };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, 'network', 'cannot reach the server: ' + e.message);
  }
  if (!response.ok) throw await failure(response);
  if (response.status === 204) return null;
  return response.json();
}

/** Splits an SSE byte stream into messages `{event, data, id}`; `onMessage` gets each one. */
export async function readSse(body, onMessage) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  let message = { event: 'message', data: [], id: null };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let newline;
    while ((newline = buffer.search(/\r\n|\r|\n/)) >= 0) {
      const line = buffer.slice(0, newline);
      buffer = buffer.slice(newline + (buffer.startsWith('\r\n', newline) ? 2 : 1));
      if (line === '') {
        if (message.data.length) {
          onMessage({ event: message.event, data: message.data.join('\n'), id: message.id });
        }
        message = { event: 'message', data: [], id: null };
        continue;
      }
      if (line.startsWith(':')) continue; // keep-alive comment
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      let text = colon < 0 ? '' : line.slice(colon + 1);
      if (text.startsWith(' ')) text = text.slice(1);
      if (field === 'data') message.data.push(text);
      else if (field === 'event') message.event = text;
      else if (field === 'id') message.id = text;
    }
  }
}

/**
 * Follows an SSE path until `stop()`: reconnects after a lost connection (1 s, doubling up to
 * 15 s), sending `Last-Event-ID` with the last id seen so nothing is missed or repeated.
 * Callbacks: onMessage(msg), onOpen(), onError(err), onEnd() (the server ended the stream for
 * good: a task stream after the task's end, or 204). Returns `{stop}`.
 */
export function follow(path, { onMessage, onOpen, onError, onEnd, lastId }) {
  const abort = new AbortController();
  let stopped = false;
  let last = lastId || null;
  let delay = 1000;
  (async () => {
    while (!stopped) {
      try {
        const h = headers({ Accept: 'text/event-stream' });
        if (last !== null) h['Last-Event-ID'] = String(last);
        const response = await fetch(path, { headers: h, signal: abort.signal, cache: 'no-store' });
        if (response.status === 204) { if (onEnd) onEnd(); return; }
        if (!response.ok) throw await failure(response);
        delay = 1000;
        if (onOpen) onOpen();
        await readSse(response.body, (msg) => {
          if (msg.id !== null) last = msg.id;
          onMessage(msg);
        });
        // A clean end: task streams end after the task's last event.
        // onEnd returning true asks to reconnect (after the usual delay).
        if (onEnd && onEnd() !== true) return;
      } catch (e) {
        if (stopped) return;
        if (onError) onError(e);
        // 401/404 will not get better by retrying.
        if (e instanceof ApiError && (e.status === 401 || e.status === 404)) return;
      }
      if (stopped) return;
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, 15000);
    }
  })();
  return {
    stop() {
      stopped = true;
      abort.abort();
    },
  };
}
