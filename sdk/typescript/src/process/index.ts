//! `@longrun/sdk/process`: write a longrun kind as a process handler, `run(async (ctx, input) => output)`.
export { Context, type ArtifactOptions, type AskOptions, type NotifyOptions } from "./context.js";
export { AnswerTimeout, Cancelled, HandlerError, InputClosed } from "./errors.js";
export { run, type Handler, type RunOptions } from "./run.js";
export type { Outgoing, Start } from "./wire.js";
