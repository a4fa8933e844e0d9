// Forms generated from JSON schemas: a kind's input schema (an object of fields) and a
// question's request (one value). Booleans, enums, strings, integers and numbers get their own
// controls; any other schema gets a JSON text area, so every input can still be given.

/** Creates an element: `el('div', {class: 'x', onclick: f}, child, 'text', ...)`. */
export function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else if (key === 'text') node.textContent = value;
    else node.setAttribute(key, value === true ? '' : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

let counter = 0;
function uid() {
  counter += 1;
  return 'f' + counter;
}

function typeOf(schema) {
  if (!schema || typeof schema !== 'object') return null;
  if (Array.isArray(schema.enum)) return 'enum';
  const type = Array.isArray(schema.type) ? schema.type.find((t) => t !== 'null') : schema.type;
  return type || null;
}

/**
 * One control for one value. Returns `{node, read}`: `read()` gives the value, `undefined`
 * when left empty and not required, and throws an Error saying what is wrong otherwise.
 * `question` renders booleans as a Yes/No choice (an answer must be given either way).
 */
export function field(schema, { name, label, required, question }) {
  const id = uid();
  const type = typeOf(schema);
  const help = schema && schema.description && schema.description !== label ? schema.description : null;
  const title = el('label', { for: id, class: 'field-label' }, label || name || 'value', required ? ' *' : '');
  let control;
  let read;
  if (type === 'enum') {
    control = el('select', { id, name },
      required ? null : el('option', { value: '' }, '—'),
      schema.enum.map((v, i) => el('option', { value: String(i) }, typeof v === 'string' ? v : JSON.stringify(v))));
    if (schema.default !== undefined) {
      const i = schema.enum.findIndex((v) => JSON.stringify(v) === JSON.stringify(schema.default));
      if (i >= 0) control.value = String(i);
    }
    read = () => {
      if (control.value === '') {
        if (required) throw new Error(`${label || name}: pick one`);
        return undefined;
      }
      return schema.enum[Number(control.value)];
    };
  } else if (type === 'boolean' && question) {
    const yes = el('input', { type: 'radio', name: id, value: 'true', id: id + '-yes' });
    const no = el('input', { type: 'radio', name: id, value: 'false', id: id + '-no' });
    control = el('span', { class: 'choice', id },
      el('label', {}, yes, ' Yes'), el('label', {}, no, ' No'));
    read = () => {
      if (yes.checked) return true;
      if (no.checked) return false;
      throw new Error(`${label || name}: choose Yes or No`);
    };
  } else if (type === 'boolean') {
    control = el('input', { type: 'checkbox', id, name });
    if (schema.default === true) control.checked = true;
    read = () => control.checked;
  } else if (type === 'integer' || type === 'number') {
    control = el('input', {
      type: 'number', id, name, step: type === 'integer' ? '1' : 'any',
      min: schema.minimum, max: schema.maximum,
      value: schema.default !== undefined ? String(schema.default) : undefined,
    });
    read = () => {
      const text = control.value.trim();
      if (text === '') {
        if (required) throw new Error(`${label || name}: a number is required`);
        return undefined;
      }
      const n = Number(text);
      if (!Number.isFinite(n) || (type === 'integer' && !Number.isInteger(n))) {
        throw new Error(`${label || name}: expected ${type === 'integer' ? 'a whole number' : 'a number'}`);
      }
      return n;
    };
  } else if (type === 'string') {
    const long = schema.maxLength === undefined || schema.maxLength > 200;
    control = long && schema.format === undefined && question
      ? el('textarea', { id, name, rows: '3' })
      : el('input', { type: 'text', id, name });
    if (schema.default !== undefined) control.value = schema.default;
    read = () => {
      if (control.value === '' && !required) return undefined;
      if (control.value === '' && required) throw new Error(`${label || name}: required`);
      return control.value;
    };
  } else {
    control = el('textarea', { id, name, rows: '4', class: 'json', placeholder: 'JSON' });
    if (schema && schema.default !== undefined) control.value = JSON.stringify(schema.default, null, 2);
    read = () => {
      const text = control.value.trim();
      if (text === '') {
        if (required) throw new Error(`${label || name}: required (JSON)`);
        return undefined;
      }
      try {
        return JSON.parse(text);
      } catch (e) {
        throw new Error(`${label || name}: not JSON (${e.message})`);
      }
    };
  }
  const node = el('div', { class: 'field', 'data-field': name || '' }, title, control,
    help ? el('div', { class: 'help' }, help) : null);
  return { node, read };
}

/**
 * A form for a kind's input schema: one field per property of an object schema, or a single
 * control for anything else. Returns `{node, read}`; `read()` builds the input value.
 */
export function inputForm(schema) {
  if (typeOf(schema) === 'object' && schema.properties) {
    const required = new Set(schema.required || []);
    const fields = Object.entries(schema.properties).map(([name, sub]) => [name, field(sub, {
      name, label: (sub && sub.title) || name, required: required.has(name),
    })]);
    return {
      node: el('div', { class: 'fields' }, fields.map(([, f]) => f.node)),
      read() {
        const value = {};
        for (const [name, f] of fields) {
          const v = f.read();
          if (v !== undefined) value[name] = v;
        }
        return value;
      },
    };
  }
  const f = field(schema || {}, { name: 'input', label: 'input', required: true });
  return { node: f.node, read: f.read };
}

/**
 * A form for a question's request: the request is a JSON-schema-ish object (`type`, `enum`,
 * ...) with a `message` for people; a `schema` member, when present, is the schema instead.
 */
export function questionForm(key, request) {
  const req = request && typeof request === 'object' ? request : {};
  const schema = req.schema && typeof req.schema === 'object' ? req.schema : req;
  const label = req.message || req.title || req.description || key;
  return field(schema, { name: key, label, required: true, question: true });
}
