// The dashboard: a live task list, task pages, question forms and a start form, over the /v1
// API. Routing is by URL hash (#/, #/task/{id}, #/start) so the server serves one page.

import { api, ApiError, follow, setToken, token } from './api.js';
import { el, inputForm, questionForm } from './forms.js';

const STATUSES = ['submitted', 'working', 'input_required', 'completed', 'failed', 'cancelled', 'rejected'];
const ACTIVE = new Set(['submitted', 'working', 'input_required']);
/** How many tasks the list loads at most (pages of 500). */
const MAX_TASKS = 5000;

const main = document.getElementById('main');
const errorBox = document.getElementById('error');
const live = document.getElementById('live');
const tokenForm = document.getElementById('token-form');
const tokenInput = document.getElementById('token-input');

// ---- errors and auth -------------------------------------------------------------------

/** Shows an error as the API said it; a 401 also opens the token field. */
function showError(e) {
  const text = e instanceof ApiError && e.status
    ? `${e.message} (${e.status} ${e.code})`
    : (e && e.message) || String(e);
  errorBox.textContent = text;
  errorBox.hidden = false;
  if (e instanceof ApiError && e.status === 401) {
    tokenForm.hidden = false;
    tokenInput.focus();
  }
}

function clearError() {
  errorBox.hidden = true;
  errorBox.textContent = '';
}

document.getElementById('token-toggle').addEventListener('click', () => {
  tokenForm.hidden = !tokenForm.hidden;
});
tokenForm.addEventListener('submit', (event) => {
  event.preventDefault();
  setToken(tokenInput.value.trim());
  tokenInput.value = '';
  tokenForm.hidden = true;
  restart();
});
document.getElementById('token-clear').addEventListener('click', () => {
  setToken('');
  restart();
});

// ---- the shared task store, fed by GET /v1/tasks and /v1/events ----------------------

/** Every task the list knows, by id. */
const tasks = new Map();
/** Tasks read because an event named one the list did not know yet: id → events meanwhile. */
const fetching = new Map();
/** Called with a task id whenever that task changed. */
const listeners = new Set();
let stream = null;
let loaded = false;

function changed(id) {
  for (const listener of listeners) listener(id);
}

/** Folds one event into the task it belongs to, the way the server folds it. */
function apply(task, event) {
  if (event.seq <= (task.last_seq || 0)) return;
  task.last_seq = event.seq;
  task.status = event.status;
  task.updated_at_ms = event.at_ms;
  const c = event.change;
  switch (c.type) {
    case 'started':
      task.attempt = c.attempt;
      task.started_at_ms = task.started_at_ms || event.at_ms;
      break;
    case 'progress':
      task.progress = { percent: c.percent, message: c.message };
      if (c.message) task.status_message = c.message;
      break;
    case 'input_requested':
      task.questions = Object.assign({}, task.questions, { [c.key]: c.request });
      break;
    case 'input_answered':
    case 'input_timed_out': {
      const questions = Object.assign({}, task.questions);
      delete questions[c.key];
      task.questions = questions;
      break;
    }
    case 'artifact': {
      const artifacts = (task.artifacts || []).slice();
      const i = artifacts.findIndex((a) => a.id === c.id);
      const previous = i >= 0 ? artifacts[i] : null;
      const next = {
        id: c.id,
        name: c.name || (previous && previous.name),
        parts: c.append && previous ? previous.parts.concat(c.parts) : c.parts,
        complete: c.last_chunk,
      };
      if (i >= 0) artifacts[i] = next; else artifacts.push(next);
      task.artifacts = artifacts;
      break;
    }
    case 'ended':
      task.output = c.output;
      task.error = c.error;
      task.cancellation = c.cancellation;
      task.questions = {};
      task.finished_at_ms = event.at_ms;
      if (c.error) task.status_message = c.error.message;
      else if (c.cancellation) task.status_message = 'cancelled';
      break;
    default:
      break;
  }
}

/** Events that arrive while the list loads, applied once it has (so none fall in between). */
let buffered = null;

function onEvent(event) {
  if (buffered) {
    buffered.push(event);
    return;
  }
  const task = tasks.get(event.task);
  if (task) {
    apply(task, event);
    changed(task.id);
  } else if (fetching.has(event.task)) {
    fetching.get(event.task).push(event);
  } else {
    // A task started elsewhere: the event lacks its kind and session, so read it whole. Its
    // events that arrive meanwhile are kept and applied after (`apply` skips those the read
    // already shows), or a task that ends while it is read would stay `working`.
    const pending = [event];
    const mine = generation;
    fetching.set(event.task, pending);
    api('GET', `/v1/tasks/${event.task}`)
      .then((t) => {
        if (mine !== generation) return;
        for (const e of pending) apply(t, e);
        tasks.set(t.id, t);
        changed(t.id);
      })
      .catch(() => {})
      .finally(() => fetching.delete(event.task));
  }
}

/** Whether a (re)load is under way: a second one waits for the next `lagged` or reconnect. */
let loading = false;
/** Bumped by `restart` (a new token): a load begun before it must not touch the new list. */
let generation = 0;

/** (Re)loads the caller's tasks, newest first, page by page. */
async function loadTasks() {
  if (loading) return;
  loading = true;
  buffered = buffered || [];
  const mine = generation;
  try {
    const fresh = await readAllTasks();
    if (mine === generation) merge(fresh);
  } finally {
    if (mine === generation) {
      const pending = buffered;
      buffered = null;
      loading = false;
      for (const event of pending) onEvent(event);
      changed(null);
    }
  }
}

async function readAllTasks() {
  const fresh = new Map();
  let after = null;
  do {
    const query = new URLSearchParams({ limit: '500' });
    if (after) query.set('after', after);
    const page = await api('GET', '/v1/tasks?' + query);
    for (const t of page.tasks) fresh.set(t.id, t);
    after = page.next;
  } while (after && fresh.size < MAX_TASKS);
  return fresh;
}

function merge(fresh) {
  // Keep events that arrived while loading: a known task keeps the newer of the two.
  for (const [id, t] of fresh) {
    const known = tasks.get(id);
    if (!known || (known.last_seq || 0) <= t.last_seq) tasks.set(id, t);
  }
  for (const id of [...tasks.keys()]) if (!fresh.has(id)) tasks.delete(id);
  loaded = true;
}

/**
 * Follows /v1/events; after a reconnect or a `lagged` message the list is re-read. `onFirst`
 * is called once, when the stream first opens or first fails: the server subscribes before it
 * answers, so from then on no event can fall between the list and the stream.
 */
function startStream(onFirst) {
  if (stream) stream.stop();
  let opened = 0;
  let first = onFirst;
  const settle = () => {
    if (first) first();
    first = null;
  };
  stream = follow('/v1/events', {
    onOpen() {
      live.textContent = '● live';
      live.classList.add('on');
      settle();
      opened += 1;
      // Events missed while disconnected are not replayed on this stream: re-read instead.
      if (opened > 1) loadTasks().catch(showError);
    },
    onMessage(msg) {
      if (msg.event === 'lagged') {
        loadTasks().catch(showError);
        return;
      }
      try { onEvent(JSON.parse(msg.data)); } catch (_) { /* not an event */ }
    },
    onError(e) {
      settle();
      live.textContent = '○ reconnecting';
      live.classList.remove('on');
      if (e instanceof ApiError && e.status === 401) showError(e);
    },
    onEnd() {
      live.textContent = '○ reconnecting';
      live.classList.remove('on');
      return true;
    },
  });
}

async function restart() {
  clearError();
  generation += 1;
  buffered = null;
  loading = false;
  tasks.clear();
  loaded = false;
  if (stream) stream.stop();
  stream = null;
  route();
}

async function ensureLoaded() {
  if (!loaded && !stream) {
    // The stream opens first and its events wait in `buffered` until the list has loaded.
    // Reading the list before the server has subscribed this stream would lose an event
    // that happens in between (a task that ends then would stay `working` for good).
    buffered = [];
    await new Promise((resolve) => startStream(resolve));
    await loadTasks();
  }
}

// ---- formatting ------------------------------------------------------------------------

function age(ms) {
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 60) return s + 's';
  if (s < 3600) return Math.floor(s / 60) + 'm';
  if (s < 86400) return Math.floor(s / 3600) + 'h';
  return Math.floor(s / 86400) + 'd';
}

function time(ms) {
  return ms ? new Date(ms).toLocaleString() : '—';
}

function statusBadge(status) {
  return el('span', { class: 'status s-' + status, 'data-testid': 'status' }, status.replace('_', ' '));
}

/** The progress bar and latest message of a task (an `.progress` element, updated in place). */
function progressCell() {
  const fill = el('span');
  const bar = el('div', { class: 'bar', 'data-testid': 'bar' }, fill);
  const msg = el('span', { class: 'msg' });
  const node = el('div', { class: 'progress' }, bar, msg);
  return {
    node,
    update(task) {
      const p = task.progress || {};
      const percent = task.status === 'completed' ? 100 : p.percent;
      const width = percent === undefined || percent === null ? '' : Math.max(0, Math.min(100, percent)) + '%';
      if (fill.style.width !== width) fill.style.width = width;
      bar.classList.toggle('indeterminate', width === '' && ACTIVE.has(task.status));
      bar.dataset.percent = width === '' ? '' : String(percent);
      bar.hidden = !ACTIVE.has(task.status) && width === '';
      const text = task.status === 'input_required'
        ? 'waiting for an answer'
        : (task.status_message || p.message || '');
      if (msg.textContent !== text) msg.textContent = text;
    },
  };
}

// ---- the task list ---------------------------------------------------------------------

function listView() {
  const filter = { status: '', kind: '', session: '', label: '' };
  const rows = new Map();
  const dirty = new Set();
  let rebuild = true;
  let frame = 0;

  const kindSelect = el('select', { 'data-testid': 'filter-kind' }, el('option', { value: '' }, 'any'));
  const controls = el('div', { class: 'filters' },
    el('label', {}, 'Status', el('select', { 'data-testid': 'filter-status', onchange: (e) => set('status', e.target.value) },
      el('option', { value: '' }, 'any'), el('option', { value: 'active' }, 'active'),
      STATUSES.map((s) => el('option', { value: s }, s.replace('_', ' '))))),
    el('label', {}, 'Kind', kindSelect),
    el('label', {}, 'Session', el('input', { type: 'search', 'data-testid': 'filter-session', oninput: (e) => set('session', e.target.value.trim()) })),
    el('label', {}, 'Label', el('input', { type: 'search', placeholder: 'key:value', 'data-testid': 'filter-label', oninput: (e) => set('label', e.target.value.trim()) })),
    el('span', { class: 'muted', 'data-testid': 'count' }));
  kindSelect.addEventListener('change', (e) => set('kind', e.target.value));
  const count = controls.lastChild;
  const tbody = el('tbody', { 'data-testid': 'task-rows' });
  const empty = el('p', { class: 'muted', hidden: true }, 'No tasks match.');
  const table = el('table', { class: 'tasks' },
    el('colgroup', {}, el('col', { class: 'c-id' }), el('col', { class: 'c-status' }), el('col', { class: 'c-kind' }),
      el('col', { class: 'c-session' }), el('col', { class: 'c-age' }), el('col')),
    el('thead', {}, el('tr', {}, ['Task', 'Status', 'Kind', 'Session', 'Age', 'Progress'].map((h) => el('th', {}, h)))),
    tbody);
  main.replaceChildren(el('h1', {}, 'Tasks'), controls, table, empty);

  api('GET', '/v1/kinds').then((list) => {
    for (const k of list.kinds) kindSelect.append(el('option', { value: k.name }, k.name));
  }).catch(() => {});

  function set(key, value) {
    filter[key] = value;
    rebuild = true;
    schedule();
  }

  function matches(t) {
    if (filter.status === 'active' ? !ACTIVE.has(t.status) : filter.status && t.status !== filter.status) return false;
    if (filter.kind && t.kind !== filter.kind) return false;
    if (filter.session && !(t.session || '').includes(filter.session)) return false;
    if (filter.label) {
      const [k, ...rest] = filter.label.split(':');
      const v = rest.join(':');
      const labels = t.labels || {};
      if (!(k in labels)) return false;
      if (rest.length && labels[k] !== v) return false;
    }
    return true;
  }

  function makeRow(t) {
    const progress = progressCell();
    const cells = {
      status: el('td'), kind: el('td'), session: el('td'), age: el('td', { class: 'muted' }),
    };
    const tr = el('tr', { 'data-task': t.id },
      el('td', {}, el('a', { href: '#/task/' + t.id, title: t.id }, t.id.slice(0, 13) + '…')),
      cells.status, cells.kind, cells.session, cells.age, el('td', {}, progress.node));
    const row = { tr, cells, progress, status: null };
    updateRow(row, t);
    return row;
  }

  function updateRow(row, t) {
    if (row.status !== t.status) {
      row.cells.status.replaceChildren(statusBadge(t.status));
      row.status = t.status;
      row.tr.dataset.status = t.status;
    }
    if (row.cells.kind.textContent !== t.kind) row.cells.kind.textContent = t.kind;
    const session = t.session || '';
    if (row.cells.session.textContent !== session) row.cells.session.textContent = session;
    const a = age(t.created_at_ms);
    if (row.cells.age.textContent !== a) row.cells.age.textContent = a;
    row.progress.update(t);
  }

  function ordered() {
    return [...tasks.values()].filter(matches).sort((a, b) => b.created_at_ms - a.created_at_ms || (a.id < b.id ? 1 : -1));
  }

  // All DOM writes happen here, at most once per animation frame.
  function flush() {
    frame = 0;
    if (rebuild) {
      rebuild = false;
      dirty.clear();
      const list = ordered();
      const fragment = document.createDocumentFragment();
      const keep = new Set();
      for (const t of list) {
        let row = rows.get(t.id);
        if (row) updateRow(row, t); else { row = makeRow(t); rows.set(t.id, row); }
        keep.add(t.id);
        fragment.append(row.tr);
      }
      for (const id of [...rows.keys()]) if (!keep.has(id)) rows.delete(id);
      tbody.replaceChildren(fragment);
    } else {
      for (const id of dirty) {
        const t = tasks.get(id);
        const row = rows.get(id);
        if (!t || !matches(t)) {
          if (row) { row.tr.remove(); rows.delete(id); }
          continue;
        }
        if (row) { updateRow(row, t); continue; }
        // New to the view: put it in its place (newest first), usually the top.
        const fresh = makeRow(t);
        rows.set(id, fresh);
        let before = null;
        for (const other of tbody.children) {
          const o = tasks.get(other.dataset.task);
          if (o && (o.created_at_ms < t.created_at_ms || (o.created_at_ms === t.created_at_ms && o.id < t.id))) { before = other; break; }
        }
        tbody.insertBefore(fresh.tr, before);
      }
      dirty.clear();
    }
    count.textContent = `${rows.size} of ${tasks.size} tasks`;
    empty.hidden = rows.size > 0 || !loaded;
  }

  function schedule() {
    if (!frame) frame = requestAnimationFrame(flush);
  }

  const listener = (id) => {
    if (id === null) rebuild = true; else dirty.add(id);
    schedule();
  };
  listeners.add(listener);
  // Ages move on their own; refresh them every few seconds, in place.
  const ticker = setInterval(() => {
    for (const [id, row] of rows) {
      const t = tasks.get(id);
      const a = t ? age(t.created_at_ms) : '';
      if (row.cells.age.textContent !== a) row.cells.age.textContent = a;
    }
  }, 5000);
  ensureLoaded().then(schedule, showError);
  schedule();
  return () => {
    listeners.delete(listener);
    clearInterval(ticker);
    if (frame) cancelAnimationFrame(frame);
  };
}

// ---- a task's page ---------------------------------------------------------------------

function describe(event) {
  const c = event.change;
  switch (c.type) {
    case 'submitted': return 'submitted';
    case 'started': return `started (attempt ${c.attempt})`;
    case 'progress': return [c.percent !== undefined ? c.percent + '%' : null, c.message].filter((x) => x !== null && x !== undefined).join(' — ');
    case 'artifact': return `artifact ${c.name || c.id}${c.append ? ' (more)' : ''}`;
    case 'input_requested': return `asked ${c.key}: ${(c.request && c.request.message) || JSON.stringify(c.request)}`;
    case 'input_answered': return `answered ${c.key}: ${JSON.stringify(c.value)}`;
    case 'input_timed_out': return `question ${c.key} timed out`;
    case 'agent_message': return `message: ${c.message}`;
    case 'detached': return 'the caller stopped waiting; runs on detached';
    case 'cancel_requested': return `cancel requested (${c.cancellation.reason}${c.cancellation.by ? ' by ' + c.cancellation.by : ''})`;
    case 'step_saved': return `step ${c.key} saved (${bytes(c.value)})`;
    case 'timer_started': return `sleeps on timer ${c.key} until ${new Date(c.until_ms).toLocaleTimeString()}`;
    case 'retry_scheduled': return `attempt ${c.attempt} failed (${c.error.code}: ${c.error.message}); next attempt at ${new Date(c.at_ms).toLocaleTimeString()}`;
    case 'ended':
      if (c.error) return `ended ${event.status}: ${c.error.code}: ${c.error.message}`;
      if (c.cancellation) return `ended cancelled (${c.cancellation.reason})`;
      return `ended ${event.status}`;
    default: return c.type;
  }
}

/** The size of a JSON value as stored: `512 B`, `3.4 kB`. */
function bytes(value) {
  const n = new TextEncoder().encode(JSON.stringify(value === undefined ? null : value)).length;
  if (n < 1000) return `${n} B`;
  if (n < 1e6) return `${(n / 1e3).toFixed(1)} kB`;
  return `${(n / 1e6).toFixed(1)} MB`;
}

/**
 * A saved step in the timeline: one collapsed line, `step key saved (size)`; its value (which
 * may be a whole model reply) is rendered only when opened, so a long agent loop's timeline
 * stays a list of lines.
 */
function stepEntry(change) {
  const summary = el('summary', {}, 'step ', el('code', {}, change.key), ` saved (${bytes(change.value)})`);
  const details = el('details', { class: 'step', 'data-testid': 'step', 'data-key': change.key }, summary);
  details.addEventListener('toggle', () => {
    if (details.open && !details.querySelector('pre')) {
      details.append(el('pre', { class: 'json', 'data-testid': 'step-value' }, JSON.stringify(change.value, null, 2)));
    }
  });
  return details;
}

/** One artifact part: text as text, links as links, anything else as JSON. */
function renderPart(part) {
  if (typeof part === 'string') {
    if (/^https?:\/\/\S+$/.test(part.trim())) return el('p', {}, el('a', { href: part.trim(), rel: 'noopener noreferrer', target: '_blank' }, part.trim()));
    return el('pre', {}, part);
  }
  if (part && typeof part === 'object' && typeof part.url === 'string' && /^https?:\/\//.test(part.url)) {
    return el('p', {}, el('a', { href: part.url, rel: 'noopener noreferrer', target: '_blank' }, part.name || part.title || part.url));
  }
  if (part && typeof part === 'object' && typeof part.text === 'string' && Object.keys(part).length <= 2) {
    return el('pre', {}, part.text);
  }
  return el('pre', { class: 'json' }, JSON.stringify(part, null, 2));
}

function taskView(id) {
  let task = null;
  /** The connected worker running the task, if a worker runs it (from GET /v1/workers). */
  let worker = null;
  let frame = 0;
  let timelineStream = null;
  let gone = false;
  /** Keys whose form is on the page: kept across renders so typing is not lost. */
  const forms = new Map();

  const title = el('h1', {}, 'Task ', el('code', {}, id));
  const meta = el('dl', { class: 'meta' });
  const progress = progressCell();
  const cancel = el('button', { class: 'danger', type: 'button', 'data-testid': 'cancel' }, 'Cancel');
  const questions = el('div', { 'data-testid': 'questions' });
  const outcome = el('div', { 'data-testid': 'outcome' });
  const artifacts = el('div', { 'data-testid': 'artifacts' });
  const timeline = el('ol', { class: 'timeline', 'data-testid': 'timeline' });
  main.replaceChildren(
    el('p', {}, el('a', { href: '#/' }, '← all tasks')), title,
    el('div', { class: 'card' }, meta, el('div', { style: 'margin-top:.6rem' }, progress.node), el('div', { style: 'margin-top:.6rem' }, cancel)),
    questions, outcome, artifacts,
    el('div', { class: 'card' }, el('h2', {}, 'Timeline'), timeline));

  cancel.addEventListener('click', async () => {
    cancel.disabled = true;
    try {
      clearError();
      const ended = await api('POST', `/v1/tasks/${id}/cancel`);
      task = ended;
      schedule();
    } catch (e) {
      showError(e);
      cancel.disabled = false;
    }
  });

  function render() {
    frame = 0;
    if (!task || gone) return;
    meta.replaceChildren(...[
      ['Status', statusBadge(task.status)], ['Kind', task.kind], ['Session', task.session || '—'],
      ['Labels', Object.entries(task.labels || {}).map(([k, v]) => `${k}:${v}`).join(', ') || '—'],
      ['Created', time(task.created_at_ms)], ['Started', time(task.started_at_ms)],
      ['Finished', time(task.finished_at_ms)], ['Attempt', String(task.attempt)],
      ['Input', el('code', {}, JSON.stringify(task.input))],
      ...(worker ? [['Worker', el('span', { 'data-testid': 'task-worker' }, `${worker.name || worker.id} (${worker.id})`)]] : []),
    ].flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v)]));
    progress.update(task);
    cancel.hidden = !ACTIVE.has(task.status);

    // Questions: one form per open question; forms already shown are kept as they are.
    const open = task.questions || {};
    for (const key of [...forms.keys()]) if (!(key in open)) { forms.get(key).remove(); forms.delete(key); }
    for (const [key, request] of Object.entries(open)) {
      if (forms.has(key)) continue;
      const f = questionForm(key, request);
      const err = el('div', { class: 'error', hidden: true });
      const submit = el('button', { type: 'submit', class: 'primary', 'data-testid': 'answer' }, 'Answer');
      const form = el('form', { class: 'card question', 'data-question': key },
        el('h2', {}, 'Question: ', key), f.node, err, submit);
      form.addEventListener('submit', async (event) => {
        event.preventDefault();
        err.hidden = true;
        let value;
        try { value = f.read(); } catch (e) { err.textContent = e.message; err.hidden = false; return; }
        submit.disabled = true;
        try {
          await api('POST', `/v1/tasks/${id}/answers/${encodeURIComponent(key)}`, value);
          form.replaceChildren(el('p', { class: 'muted' }, `Answered ${key}: ${JSON.stringify(value)}`));
        } catch (e) {
          err.textContent = e instanceof ApiError ? `${e.message} (${e.status} ${e.code})` : e.message;
          err.hidden = false;
          submit.disabled = false;
        }
      });
      forms.set(key, form);
      questions.append(form);
    }

    // The outcome, once there is one.
    let body = null;
    if (task.status === 'completed') body = ['Output', renderPart(task.output === undefined ? null : task.output)];
    else if (task.error) body = ['Error', el('p', { class: 'error' }, `${task.error.code}: ${task.error.message}`), task.error.details !== undefined ? renderPart(task.error.details) : null];
    else if (task.cancellation) body = ['Cancelled', el('p', {}, `reason: ${task.cancellation.reason}${task.cancellation.by ? ', by ' + task.cancellation.by : ''}${task.cancellation.message ? ' — ' + task.cancellation.message : ''}`)];
    outcome.replaceChildren(body ? el('div', { class: 'card' }, el('h2', {}, body[0]), body.slice(1)) : '');

    artifacts.replaceChildren(...(task.artifacts || []).map((a) => el('div', { class: 'card', 'data-artifact': a.id },
      el('h2', {}, 'Artifact: ', a.name || a.id, a.complete ? '' : ' (incomplete)'), a.parts.map(renderPart))));
  }

  function schedule() {
    if (!frame) frame = requestAnimationFrame(render);
  }

  api('GET', '/v1/workers').then((list) => {
    worker = list.workers.find((w) => w.tasks.includes(id)) || null;
    schedule();
  }, () => {});
  api('GET', `/v1/tasks/${id}`).then((t) => {
    task = t;
    schedule();
    // The timeline replays every event from the first; the task itself is folded from them
    // too, but starting from the read above, so `apply` skips what it already holds.
    timelineStream = follow(`/v1/tasks/${id}/events`, {
      onMessage(msg) {
        let event;
        try { event = JSON.parse(msg.data); } catch (_) { return; }
        timeline.append(el('li', { 'data-type': event.change.type },
          el('span', { class: 't' }, '#' + event.seq), el('span', { class: 't' }, new Date(event.at_ms).toLocaleTimeString()),
          statusBadge(event.status),
          event.change.type === 'step_saved' ? stepEntry(event.change) : el('span', {}, describe(event))));
        apply(task, event);
        const shared = tasks.get(id);
        if (shared) { apply(shared, event); changed(id); }
        schedule();
      },
      onError(e) { showError(e); },
      // Task streams end after the task's last event; reconnect only if it has not ended.
      onEnd() { return ACTIVE.has(task.status); },
    });
  }, showError);

  return () => {
    gone = true;
    if (timelineStream) timelineStream.stop();
    if (frame) cancelAnimationFrame(frame);
  };
}

// ---- starting a task -------------------------------------------------------------------

function startView() {
  const kindSelect = el('select', { id: 'kind', 'data-testid': 'kind' });
  const description = el('p', { class: 'muted' });
  const fields = el('div', {});
  const session = el('input', { type: 'text', id: 'session', 'data-testid': 'session' });
  const labels = el('input', { type: 'text', id: 'labels', placeholder: 'key:value, key:value', 'data-testid': 'labels' });
  const err = el('div', { class: 'error', hidden: true, 'data-testid': 'start-error' });
  const submit = el('button', { type: 'submit', class: 'primary', 'data-testid': 'start' }, 'Start');
  const form = el('form', { class: 'card' },
    el('div', { class: 'field' }, el('label', { for: 'kind', class: 'field-label' }, 'Kind'), kindSelect), description,
    fields,
    el('div', { class: 'field' }, el('label', { for: 'session', class: 'field-label' }, 'Session'), session),
    el('div', { class: 'field' }, el('label', { for: 'labels', class: 'field-label' }, 'Labels'), labels),
    err, submit);
  main.replaceChildren(el('h1', {}, 'Start a task'), form);
  let kinds = [];
  let current = null;

  function pick() {
    const kind = kinds.find((k) => k.name === kindSelect.value);
    description.textContent = kind ? kind.description : '';
    current = kind ? inputForm(kind.input_schema) : null;
    fields.replaceChildren(current ? current.node : '');
  }
  kindSelect.addEventListener('change', pick);

  api('GET', '/v1/kinds').then((list) => {
    kinds = list.kinds;
    kindSelect.replaceChildren(...kinds.map((k) => el('option', { value: k.name }, k.name)));
    pick();
  }, showError);

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    err.hidden = true;
    const body = { kind: kindSelect.value };
    try {
      body.input = current ? current.read() : null;
      const pairs = labels.value.split(',').map((s) => s.trim()).filter(Boolean);
      if (pairs.length) {
        body.labels = {};
        for (const pair of pairs) {
          const at = pair.indexOf(':');
          if (at <= 0) throw new Error(`label "${pair}": write key:value`);
          body.labels[pair.slice(0, at)] = pair.slice(at + 1);
        }
      }
    } catch (e) {
      err.textContent = e.message;
      err.hidden = false;
      return;
    }
    if (session.value.trim()) body.session = session.value.trim();
    submit.disabled = true;
    try {
      const task = await api('POST', '/v1/tasks', body);
      tasks.set(task.id, task);
      changed(task.id);
      location.hash = '#/task/' + task.id;
    } catch (e) {
      err.textContent = e instanceof ApiError ? `${e.message} (${e.status} ${e.code})` : e.message;
      err.hidden = false;
      submit.disabled = false;
      if (e instanceof ApiError && e.status === 401) showError(e);
    }
  });
  return () => {};
}

// ---- workers ---------------------------------------------------------------------------

/** The workers connected to this node (the caller's own), refreshed every two seconds. */
function workersView() {
  const body = el('tbody', { 'data-testid': 'workers' });
  const empty = el('p', { class: 'muted' }, 'No worker is connected. A worker serves the kinds that have no command (docs/worker-protocol.md).');
  main.replaceChildren(el('h1', {}, 'Workers'), empty,
    el('table', {}, el('thead', {}, el('tr', {}, ...['Worker', 'Kinds', 'Tasks', 'Capacity', 'Last heartbeat', 'State'].map((h) => el('th', {}, h)))), body));
  let timer = 0;
  async function refresh() {
    try {
      const list = await api('GET', '/v1/workers');
      empty.hidden = list.workers.length > 0;
      body.replaceChildren(...list.workers.map((w) => el('tr', { 'data-worker': w.id },
        el('td', {}, w.name || '—', ' ', el('code', {}, w.id)),
        el('td', {}, w.kinds.join(', ')),
        el('td', {}, ...w.tasks.flatMap((t) => [el('a', { href: `#/task/${t}` }, el('code', {}, t)), ' '])),
        el('td', {}, `${w.tasks.length} / ${w.capacity}`),
        el('td', {}, `${(w.last_heartbeat_ms_ago / 1000).toFixed(1)} s ago`),
        el('td', {}, w.draining ? 'draining' : 'serving'))));
    } catch (e) {
      showError(e);
    }
    timer = setTimeout(refresh, 2000);
  }
  refresh();
  return () => clearTimeout(timer);
}

// ---- routing ---------------------------------------------------------------------------

let leave = () => {};

function route() {
  leave();
  const hash = location.hash || '#/';
  const task = hash.match(/^#\/task\/([A-Za-z0-9_]+)$/);
  if (task) leave = taskView(task[1]);
  else if (hash === '#/start') leave = startView();
  else if (hash === '#/workers') leave = workersView();
  else leave = listView();
  // Tasks started from other tabs or agents show up live on every page.
  if (hash !== '#/' && !loaded) ensureLoaded().catch(() => {});
}

window.addEventListener('hashchange', () => { clearError(); route(); });
if (token()) tokenForm.hidden = true;
route();
