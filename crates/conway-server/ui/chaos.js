// Chaos: the faults in force (declared in the manifest, or set at run time through
// PUT /v1/services/{name}/faults), forms to start and stop delay and abort faults, and
// instance kills (kills.js).

import { ApiError, getJson, poll, send, setToken } from './api.js';
import { badge, empty, failed, fill, h, row, section, table } from './dom.js';
import { kills } from './kills.js';

const COLUMNS = ['Service', 'Fault', 'Settings', 'Source', 'Action'];
const KINDS = ['delay', 'abort'];

function settings(kind, fault) {
  return kind === 'delay'
    ? `${fault.percent}% of requests held ${fault.duration}`
    : `${fault.percent}% of requests answered ${fault.status}`;
}

/** Each fault in force: a run-time fault of a kind replaces the declared one. */
function inForce(config) {
  const out = [];
  for (const [service, definition] of Object.entries(config.services)) {
    const runtime = config.faults[service] || {};
    const declared = definition.faults || {};
    for (const kind of KINDS) {
      if (runtime[kind]) out.push({ service, kind, fault: runtime[kind], runtime: true, replaces: Boolean(declared[kind]) });
      else if (declared[kind]) out.push({ service, kind, fault: declared[kind], runtime: false });
    }
  }
  return out;
}

/** Stops a run-time fault: the service's other run-time fault stays. */
async function stop(config, service, kind) {
  const rest = { ...config.faults[service] };
  delete rest[kind];
  const path = `/v1/services/${encodeURIComponent(service)}/faults`;
  if (Object.keys(rest).length) await send('PUT', path, rest);
  else await send('DELETE', path);
}

function faultTable(config, act) {
  const faults = inForce(config);
  if (!faults.length) return empty('No fault is in force.');
  return table('Faults in force', COLUMNS, faults.map((f) => row(COLUMNS, [
    h('a', { href: `#/service/${encodeURIComponent(f.service)}` }, f.service),
    badge(f.kind === 'abort' ? 'bad' : 'warn', f.kind),
    settings(f.kind, f.fault),
    f.runtime ? `run time${f.replaces ? ' (replaces the declared one)' : ''}` : 'manifest',
    f.runtime
      ? h('button', { type: 'button', onclick: () => act(`Stopped the ${f.kind} on ${f.service}.`, () => stop(config, f.service, f.kind)) },
        `Stop ${f.kind} on ${f.service}`)
      : 'change the manifest',
  ], { 'data-fault': `${f.service}/${f.kind}` })));
}

function field(label, input, hint) {
  return h('label', {}, h('span', {}, label), input, hint && h('small', {}, hint));
}

function injectForm(current, act) {
  const only = (kind) => ({ 'data-kind': kind, hidden: kind !== 'delay' });
  const form = h('form', {
    class: 'inject', 'aria-label': 'Start a fault',
    onsubmit: (event) => {
      event.preventDefault();
      const data = new FormData(form);
      const service = data.get('service');
      const kind = data.get('kind');
      const percent = Number(data.get('percent'));
      const fault = kind === 'delay'
        ? { percent, duration: data.get('duration').trim() }
        : { percent, status: Number(data.get('status')) };
      const body = { ...current().faults[service], [kind]: fault };
      act(`Started the ${kind} on ${service}.`,
        () => send('PUT', `/v1/services/${encodeURIComponent(service)}/faults`, body));
    },
  },
  field('Service', h('select', { name: 'service', required: true },
    Object.keys(current().services).map((name) => h('option', { value: name }, name)))),
  h('fieldset', { class: 'kinds' }, h('legend', {}, 'Fault'),
    KINDS.map((kind) => h('label', { class: 'check' },
      h('input', {
        type: 'radio', name: 'kind', value: kind, checked: kind === 'delay',
        onchange: () => form.querySelectorAll('[data-kind]').forEach((el) => { el.hidden = el.dataset.kind !== kind; }),
      }), kind))),
  field('Percent of requests', h('input', { name: 'percent', type: 'number', min: 0, max: 100, step: 'any', value: 10, required: true })),
  h('div', only('delay'), field('Delay', h('input', { name: 'duration', value: '200ms' }), 'e.g. 200ms, 2s')),
  h('div', only('abort'), field('Status', h('input', { name: 'status', type: 'number', min: 400, max: 599, value: 503 }), '400 to 599')),
  h('button', { type: 'submit' }, 'Start fault'));
  return form;
}

/** Asks for the admin token, then tries the change again. */
function tokenForm(retry) {
  const input = h('input', { type: 'password', name: 'token', required: true, autocomplete: 'off' });
  return h('form', {
    class: 'inject', 'aria-label': 'Admin token',
    onsubmit: (event) => {
      event.preventDefault();
      setToken(input.value);
      retry();
    },
  }, field('Admin token (kept for this tab only)', input), h('button', { type: 'submit' }, 'Use token and retry'));
}

export default async function chaos(main, route, signal) {
  const faults = h('div');
  const inject = h('div');
  const status = h('div', { role: 'status', class: 'meta' });
  const killing = h('div');
  main.append(h('h1', {}, 'Chaos'),
    section('faults-title', 'Faults in force', faults, status),
    section('inject-title', 'Start a fault', inject),
    section('kill-title', 'Kill an instance', killing));
  let config = null;
  let shown = '';
  const refresh = async () => {
    config = await getJson('/v1/config', signal);
    const key = JSON.stringify([config.services, config.faults]);
    if (key === shown) return;
    shown = key;
    fill(faults, faultTable(config, act));
    if (!inject.firstChild) fill(inject, injectForm(() => config, act));
  };
  async function act(done, change) {
    try {
      await change();
      fill(status, done);
      await refresh();
    } catch (error) {
      fill(status, failed(error));
      if (error instanceof ApiError && error.status === 401) status.append(tokenForm(() => act(done, change)));
    }
  }
  poll(refresh, 2000, signal, (error) => fill(faults, failed(error)));
  kills(killing, signal);
}
