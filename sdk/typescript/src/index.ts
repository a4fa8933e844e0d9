//! `@longrun/sdk`: a typed client of longrun's HTTP + SSE API, and `Worker`, which serves kinds over the worker protocol (the process-handler side is `@longrun/sdk/process`).
export { Client, type DrainOptions, type EventsFilter, type ListFilter, type StartOptions } from "./client.js";
export { LongrunError, type LocalCode } from "./error.js";
export type { CallOptions, ClientOptions } from "./http.js";
export type { ReconnectOptions, WatchOptions } from "./watch.js";
export { Worker, type KindOptions, type StopOptions, type WorkerOptions } from "./worker/worker.js";
export { Revoked } from "./worker/errors.js";
// A worker's handler is written as a process handler's: the same context and errors.
export { Context, type ArtifactOptions, type AskOptions, type NotifyOptions } from "./process/context.js";
export { AnswerTimeout, Cancelled, HandlerError } from "./process/errors.js";
export type { Handler } from "./process/attempt.js";
export * from "./types.js";
export type { components, paths } from "./openapi.js";
