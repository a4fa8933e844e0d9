//! Generates src/openapi.ts from docs/openapi.json with openapi-typescript; `--check` fails when the committed file differs.
//
// A script rather than the `openapi-typescript` command so that a duplicated operationId can
// never make the generated `operations` interface declare a name twice and fail to compile. The
// server's ids are unique (crates/http/tests/openapi.rs checks it); should two ever clash, they
// are renamed to `<tag>_<id>`, and the rest of the output is what the command would write.
import { readFile, writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import openapiTS, { COMMENT_HEADER, astToString } from "openapi-typescript";

const here = new URL("../", import.meta.url);
const source = new URL("../../docs/openapi.json", here);
const target = new URL("src/openapi.ts", here);
const check = process.argv.includes("--check");

const doc = JSON.parse(await readFile(source, "utf8"));
const operations = Object.values(doc.paths).flatMap((item) =>
  Object.values(item).filter((op) => op && typeof op === "object" && "operationId" in op),
);
const uses = new Map();
for (const op of operations) uses.set(op.operationId, (uses.get(op.operationId) ?? 0) + 1);
for (const op of operations) {
  if (uses.get(op.operationId) > 1) op.operationId = `${op.tags?.[0] ?? "op"}_${op.operationId}`;
}

const generated = COMMENT_HEADER + astToString(await openapiTS(doc, { silent: true }));
const path = fileURLToPath(target);
if (check) {
  const committed = await readFile(target, "utf8").catch(() => "");
  if (committed !== generated) {
    console.error(`${path} is not what docs/openapi.json generates: run \`npm run generate\` and commit it`);
    process.exit(1);
  }
  console.log(`${path} matches docs/openapi.json`);
} else {
  await writeFile(target, generated);
  console.log(`wrote ${path}`);
}
