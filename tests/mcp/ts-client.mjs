// The official TypeScript SDK client (@modelcontextprotocol/sdk, pinned in package.json) drives
// a task with a question to completion over protocol 2025-11-25: `confirm_delete` is called as a
// task, goes input_required, its elicitation arrives on the stream of the SDK's tasks/result
// call, the handler below accepts, and the task completes. Exits non-zero on any deviation.
//
//   node ts-client.mjs http://127.0.0.1:PORT/mcp
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ElicitRequestSchema } from '@modelcontextprotocol/sdk/types.js';

const url = new URL(process.argv[2]);
const fail = (why) => {
  console.error(`ts-client: FAILED: ${why}`);
  process.exit(1);
};

const client = new Client(
  { name: 'longrun-ts-check', version: '0.0.1' },
  { capabilities: { elicitation: {}, tasks: { list: {}, cancel: {} } } }
);
const elicitations = [];
client.setRequestHandler(ElicitRequestSchema, async (request) => {
  elicitations.push(request.params);
  return { action: 'accept', content: { confirm: true } };
});
await client.connect(new StreamableHTTPClientTransport(url));
if (client.getServerVersion()?.name !== 'longrun') fail('the server is not longrun');
if (!client.getServerCapabilities()?.tasks?.requests?.tools?.call) fail('no tasks capability');

const { tools } = await client.listTools();
const tool = tools.find((t) => t.name === 'confirm_delete');
if (tool?.execution?.taskSupport !== 'required') fail(`confirm_delete taskSupport: ${tool?.execution?.taskSupport}`);

const seen = [];
let taskId;
let result;
for await (const message of client.experimental.tasks.callToolStream(
  { name: 'confirm_delete', arguments: { filename: 'ts.txt' } },
  undefined,
  { task: { ttl: 60000 } }
)) {
  seen.push(message.type === 'taskStatus' ? `status:${message.task.status}` : message.type);
  if (message.type === 'taskCreated') taskId = message.task.taskId;
  if (message.type === 'result') result = message.result;
  if (message.type === 'error') fail(`the task failed: ${JSON.stringify(message.error)}`);
}
console.log(`ts-client: stream ${seen.join(' → ')}`);
if (!taskId) fail('no taskCreated');
if (elicitations.length !== 1) fail(`expected one elicitation, got ${elicitations.length}`);
const related = elicitations[0]._meta?.['io.modelcontextprotocol/related-task']?.taskId;
if (related !== taskId) fail(`the elicitation names task ${related}, not ${taskId}`);
const text = result?.content?.[0]?.text ?? '';
if (!text.includes('confirmed = true')) fail(`unexpected result: ${JSON.stringify(result)}`);

const task = await client.experimental.tasks.getTask(taskId);
if (task.status !== 'completed') fail(`tasks/get says ${task.status}`);
const listed = await client.experimental.tasks.listTasks();
if (!listed.tasks.some((t) => t.taskId === taskId)) fail('tasks/list misses the task');
await client.close();
console.log(`ts-client: OK (${taskId} completed: "${text}")`);
