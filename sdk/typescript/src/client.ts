//! `Client`: every call of longrun's `/v1` API (start, get, list, watch, answer, cancel, inbox, kinds, workers).
import { Http, type CallOptions, type ClientOptions } from "./http.js";
import type { ConnectedWorker, CreateTask, Drained, Event, Health, Kind, Lagged, Status, Task, TaskPage } from "./types.js";
import { events, watch, type WatchOptions } from "./watch.js";

/** How to start a task. */
export interface StartOptions extends CallOptions {
  /** The session (conversation): a background task's outcome goes to its inbox. */
  readonly session?: string | undefined;
  /** Labels, for filtering lists; keys may not contain `:`. */
  readonly labels?: Readonly<Record<string, string>> | undefined;
  /** Wait up to this long for the task to end; a task still running then is detached. */
  readonly waitMs?: number | undefined;
  /** The task's longest life from now (default: its kind's). */
  readonly deadlineMs?: number | undefined;
  /** How long the task stays readable after it ends (default: its kind's). */
  readonly ttlMs?: number | undefined;
  /** Sent as the `Idempotency-Key` header: a retried start with the same key starts one task. */
  readonly idempotencyKey?: string | undefined;
}

/** Which tasks to list; filters combine. */
export interface ListFilter {
  /** Tasks in any of these statuses. */
  readonly status?: Status | readonly Status[] | undefined;
  readonly kind?: string | undefined;
  readonly session?: string | undefined;
  /** Tasks carrying every one of these labels. */
  readonly labels?: Readonly<Record<string, string>> | undefined;
  /** Tasks per page (the server caps it). */
  readonly pageSize?: number | undefined;
  /** Start after this cursor (a page's `next`) instead of at the newest task. */
  readonly after?: string | undefined;
}

/** Which tasks' events the all-tasks stream carries. */
export interface EventsFilter extends CallOptions {
  readonly kind?: string | undefined;
  readonly session?: string | undefined;
}

/** How to drain a session's inbox. */
export interface DrainOptions extends CallOptions {
  /** At most this many items (default and cap: the server's). */
  readonly max?: number | undefined;
  /** If the inbox is empty, wait up to this long for an item. */
  readonly waitMs?: number | undefined;
  /** Acknowledge everything up to this position first (the `through` of the last drain). */
  readonly ack?: number | undefined;
}

/** A client of one longrun server's HTTP API. Every call takes an `AbortSignal`. */
export class Client {
  readonly #http: Http;

  constructor(options: ClientOptions) {
    this.#http = new Http(options);
  }

  /** Starts a task of `kind` with `input`; answers it as it stands (or, with `waitMs`, once ended or detached). */
  start(kind: string, input: unknown, options: StartOptions = {}): Promise<Task> {
    const body: CreateTask = { kind, input };
    if (options.session !== undefined) body.session = options.session;
    if (options.labels !== undefined) body.labels = { ...options.labels };
    if (options.waitMs !== undefined) body.wait_ms = options.waitMs;
    if (options.deadlineMs !== undefined) body.deadline_ms = options.deadlineMs;
    if (options.ttlMs !== undefined) body.ttl_ms = options.ttlMs;
    const headers: Record<string, string> = {};
    if (options.idempotencyKey !== undefined) headers["idempotency-key"] = options.idempotencyKey;
    return this.#http.json({ method: "POST", path: "/v1/tasks", body, headers, signal: options.signal });
  }

  /** The task as it stands. */
  get(id: string, options: CallOptions = {}): Promise<Task> {
    return this.#http.json({ method: "GET", path: taskPath(id), signal: options.signal });
  }

  /**
   * The caller's tasks, newest first, one page at a time: each page is fetched when the
   * previous one has been consumed, following the server's cursor (`next`) to the last page.
   */
  async *pages(filter: ListFilter = {}, options: CallOptions = {}): AsyncGenerator<TaskPage> {
    const status = typeof filter.status === "string" ? [filter.status] : filter.status;
    const label = Object.entries(filter.labels ?? {}).map(([key, value]) => `${key}:${value}`);
    let after = filter.after;
    for (;;) {
      const page = await this.#http.json<TaskPage>({
        method: "GET",
        path: "/v1/tasks",
        query: { status, label, kind: filter.kind, session: filter.session, limit: filter.pageSize, after },
        signal: options.signal,
      });
      yield page;
      if (page.next === null || page.next === undefined) return;
      after = page.next;
    }
  }

  /** The caller's tasks, newest first, one by one, fetched a page at a time (see `pages`). */
  async *list(filter: ListFilter = {}, options: CallOptions = {}): AsyncGenerator<Task> {
    for await (const page of this.pages(filter, options)) yield* page.tasks;
  }

  /**
   * The task's events as they happen, from the first (or after `options.after`) to the one that
   * ends the task. A dropped connection is resumed from the last event received
   * (`Last-Event-ID`): no event is missed or repeated.
   */
  watch(id: string, options: WatchOptions = {}): AsyncGenerator<Event> {
    return watch(this.#http, `${taskPath(id)}/events`, options);
  }

  /**
   * Every event of the caller's tasks as it happens (only of one kind or session, if given),
   * until the server closes the stream or the signal aborts. A `Lagged` item (it has `missed`)
   * stands for events this reader fell too far behind to get: re-read the tasks it follows, or
   * `watch` each from its last `seq`. This stream has no resume; a broken connection ends it
   * with a `LongrunError`.
   */
  events(filter: EventsFilter = {}): AsyncGenerator<Event | Lagged> {
    return events(this.#http, { kind: filter.kind, session: filter.session }, filter.signal);
  }

  /** Whether the server is up and taking requests (no token needed). */
  health(options: CallOptions = {}): Promise<Health> {
    return this.#http.json({ method: "GET", path: "/healthz", signal: options.signal });
  }

  /** Answers the question `key` the task asked (an early answer is kept until it asks). */
  answer(id: string, key: string, value: unknown, options: CallOptions = {}): Promise<Task> {
    const path = `${taskPath(id)}/answers/${encodeURIComponent(key)}`;
    return this.#http.json({ method: "POST", path, body: value, signal: options.signal });
  }

  /** Cancels the task; answers it once it has ended. */
  cancel(id: string, options: CallOptions = {}): Promise<Task> {
    return this.#http.json({ method: "POST", path: `${taskPath(id)}/cancel`, signal: options.signal });
  }

  /**
   * The oldest unacknowledged items of the session's inbox. They come again until
   * acknowledged: pass the answer's `through` to `ack` (or as `ack` of the next drain).
   */
  drain(session: string, options: DrainOptions = {}): Promise<Drained> {
    const body: Record<string, number> = {};
    if (options.max !== undefined) body["max"] = options.max;
    if (options.waitMs !== undefined) body["wait_ms"] = options.waitMs;
    if (options.ack !== undefined) body["ack"] = options.ack;
    return this.#http.json({ method: "POST", path: drainPath(session), body, signal: options.signal });
  }

  /** Acknowledges (removes) the session's inbox items up to `through`; answers how many went. */
  async ack(session: string, through: number, options: CallOptions = {}): Promise<number> {
    const drained = await this.#http.json<Drained>({
      method: "POST",
      path: drainPath(session),
      body: { ack: through, max: 0 },
      signal: options.signal,
    });
    return drained.acknowledged;
  }

  /** The workers connected to this node: the caller's own (all of them on an anonymous server). */
  async workers(options: CallOptions = {}): Promise<ConnectedWorker[]> {
    const list = await this.#http.json<{ workers: ConnectedWorker[] }>({ method: "GET", path: "/v1/workers", signal: options.signal });
    return list.workers;
  }

  /** The kinds the server runs. */
  async kinds(options: CallOptions = {}): Promise<Kind[]> {
    const list = await this.#http.json<{ kinds: Kind[] }>({ method: "GET", path: "/v1/kinds", signal: options.signal });
    return list.kinds;
  }
}

function taskPath(id: string): string {
  return `/v1/tasks/${encodeURIComponent(id)}`;
}

function drainPath(session: string): string {
  return `/v1/sessions/${encodeURIComponent(session)}/inbox:drain`;
}
