//! Test handler `echo`: completes at once with its input.
import { run } from "@longrun/sdk/process";

await run((_ctx, input) => input);
