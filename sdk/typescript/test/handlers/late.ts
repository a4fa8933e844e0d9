//! Test handler `late`: asks with a zero timeout (only an answer already given counts) and reports how that went.
import { AnswerTimeout, run } from "@longrun/sdk/process";

await run(async (ctx) => {
  try {
    return { answered: await ctx.ask("early", { message: "answer before I ask" }, { timeoutMs: 0 }) };
  } catch (error) {
    if (error instanceof AnswerTimeout) return { timedOut: error.key };
    throw error;
  }
});
