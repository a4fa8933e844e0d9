//! `@longrun/sdk`: a typed client of longrun's HTTP + SSE API (the process-handler side is `@longrun/sdk/process`).
export { Client, type DrainOptions, type EventsFilter, type ListFilter, type StartOptions } from "./client.js";
export { LongrunError, type LocalCode } from "./error.js";
export type { CallOptions, ClientOptions } from "./http.js";
export type { ReconnectOptions, WatchOptions } from "./watch.js";
export * from "./types.js";
export type { components, paths } from "./openapi.js";
