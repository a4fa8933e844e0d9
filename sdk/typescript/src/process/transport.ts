//! `Transport`: how a handler's messages reach the runtime, the one thing a process handler and a worker do differently.
import type { Outgoing } from "./wire.js";

/**
 * Carries an attempt's messages to the runtime: JSON lines on stdout for a process handler
 * (`run`), one HTTP report each for a worker (`Worker`). The messages are the process
 * protocol's either way.
 */
export interface Transport {
  /**
   * Hands one message to the runtime, after every message sent before it; resolves once the
   * runtime has taken it (the line is written, the report answered), or rejects when it cannot.
   */
  send(message: Outgoing): Promise<void>;
}
