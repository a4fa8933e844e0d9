//! The one place that sends requests: base URL, bearer token, JSON bodies, and responses turned into values or `LongrunError`s.
import { LongrunError } from "./error.js";

/** How a `Client` reaches the server. */
export interface ClientOptions {
  /** The server's address, such as `http://127.0.0.1:7700` (the API lives under its `/v1`). */
  readonly baseUrl: string | URL;
  /** Sent as `Authorization: Bearer …`; leave it out for an anonymous (loopback) server. */
  readonly token?: string | undefined;
  /** The `fetch` to use (default: Node's own). */
  readonly fetch?: typeof fetch | undefined;
}

/** What every call takes. */
export interface CallOptions {
  /** Aborts the call; it then rejects with the signal's reason. */
  readonly signal?: AbortSignal | undefined;
}

/** Query parameters: a list repeats the parameter. */
export type Query = Record<string, string | number | readonly string[] | undefined>;

/** One request. */
export interface Request extends CallOptions {
  readonly method: "GET" | "POST" | "DELETE";
  readonly path: string;
  readonly query?: Query | undefined;
  /** Sent as JSON when given (`null` included). */
  readonly body?: unknown;
  readonly headers?: Record<string, string> | undefined;
}

/** Sends requests to one server. */
export class Http {
  readonly #base: URL;
  readonly #token: string | undefined;
  readonly #fetch: typeof fetch;

  constructor(options: ClientOptions) {
    const base = new URL(options.baseUrl);
    // Keep any path prefix the server is mounted under: `/v1/…` is resolved below it.
    if (!base.pathname.endsWith("/")) base.pathname += "/";
    this.#base = base;
    this.#token = options.token;
    this.#fetch = options.fetch ?? globalThis.fetch;
  }

  /** Sends `request` and parses the JSON body of a successful answer. */
  async json<T>(request: Request): Promise<T> {
    const response = await this.send(request);
    const text = await response.text();
    try {
      return JSON.parse(text) as T;
    } catch (cause) {
      throw new LongrunError(
        "unexpected_response",
        `${request.method} ${request.path} answered ${response.status} with a body that is not JSON`,
        response.status,
        { cause },
      );
    }
  }

  /**
   * Sends `request`; answers the response if its status is 2xx, else throws the server's
   * error. A network failure is a `LongrunError` with code `network_error`; an abort rejects
   * with the signal's reason.
   */
  async send(request: Request): Promise<Response> {
    const url = new URL(request.path.replace(/^\//, ""), this.#base);
    for (const [name, value] of Object.entries(request.query ?? {})) {
      if (value === undefined) continue;
      const values = typeof value === "object" ? value : [String(value)];
      for (const one of values) url.searchParams.append(name, one);
    }
    const headers: Record<string, string> = { accept: "application/json", ...request.headers };
    if (this.#token !== undefined) headers["authorization"] = `Bearer ${this.#token}`;
    const init: RequestInit = { method: request.method, headers };
    if ("body" in request) {
      headers["content-type"] = "application/json";
      // `undefined` is not JSON: an absent value is sent as `null`.
      init.body = JSON.stringify(request.body ?? null);
    }
    if (request.signal !== undefined) init.signal = request.signal;
    let response: Response;
    try {
      response = await this.#fetch(url, init);
    } catch (cause) {
      if (request.signal?.aborted) throw request.signal.reason;
      throw new LongrunError(
        "network_error",
        `${request.method} ${url.href} failed: ${describe(cause)}`,
        0,
        { cause },
      );
    }
    if (response.ok) return response;
    throw await errorOf(response);
  }
}

/** The `LongrunError` a non-2xx response stands for. */
export async function errorOf(response: Response): Promise<LongrunError> {
  const text = await response.text().catch(() => "");
  const detail = errorDetail(text);
  if (detail !== undefined) return new LongrunError(detail.code, detail.message, response.status);
  return new LongrunError(
    "unexpected_response",
    `HTTP ${response.status} without the API's error body: ${text.slice(0, 200)}`,
    response.status,
  );
}

/** The `{"error": {"code", "message"}}` in `text`, if that is what it holds. */
export function errorDetail(text: string): { code: string; message: string } | undefined {
  try {
    const body: unknown = JSON.parse(text);
    if (typeof body !== "object" || body === null || !("error" in body)) return undefined;
    const error: unknown = body.error;
    if (typeof error !== "object" || error === null) return undefined;
    if (!("code" in error) || typeof error.code !== "string") return undefined;
    const message = "message" in error && typeof error.message === "string" ? error.message : "";
    return { code: error.code, message };
  } catch {
    return undefined;
  }
}

/** A cause in words, with its own cause (undici hides the socket error there). */
function describe(cause: unknown): string {
  if (!(cause instanceof Error)) return String(cause);
  return cause.cause instanceof Error ? `${cause.message} (${cause.cause.message})` : cause.message;
}
