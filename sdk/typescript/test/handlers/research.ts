//! Test handler `research`: progress, an artifact in two chunks, a question, a message for the agent, then its output.
import { run } from "@longrun/sdk/process";

await run<{ topic: string }>(async (ctx, { topic }) => {
  await ctx.progress(10, `looking into ${topic}`);
  await ctx.artifact("notes", [`notes on ${topic}`], { name: "notes.txt" });
  await ctx.artifact("notes", [{ sources: 2 }], { append: true, lastChunk: true });
  const approved = await ctx.ask("approve", { type: "boolean", message: `Publish the notes on ${topic}?` });
  await ctx.notifyAgent(`the notes on ${topic} were ${approved === true ? "approved" : "declined"}`);
  await ctx.progress(100, "done");
  return { topic, approved, task: ctx.task, kind: ctx.kind, attempt: ctx.attempt, protocol: ctx.protocol };
});
