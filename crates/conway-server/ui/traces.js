// Traces: search stored traces by service, operation, minimum duration and errors.
// The search is in the address (#/traces?service=...), so it can be shared and reloaded.

import { getJson, optional, Unavailable, withQuery } from './api.js';
import { badge, empty, fill, h, row, section, table, unavailable } from './dom.js';
import * as fmt from './format.js';

const COLUMNS = ['Started', 'Root', 'Duration', 'Spans', 'Status'];
const LIMIT = 50;

function field(label, input) {
  return h('label', {}, h('span', {}, label), input);
}

function form(query, services) {
  const names = h('datalist', { id: 'service-names' }, services.map((svc) => h('option', { value: svc.name })));
  return h('form', {
    class: 'filters', role: 'search', 'aria-label': 'Search traces',
    onsubmit: (event) => {
      event.preventDefault();
      const data = new FormData(event.target);
      location.hash = withQuery('#/traces', {
        service: data.get('service').trim(),
        operation: data.get('operation').trim(),
        min_ms: data.get('min_ms'),
        errors: data.get('errors') ? '1' : '',
      });
    },
  },
  field('Service', h('input', { name: 'service', list: 'service-names', value: query.get('service') || '', autocomplete: 'off' })),
  names,
  field('Operation', h('input', { name: 'operation', value: query.get('operation') || '' })),
  field('Min duration (ms)', h('input', { name: 'min_ms', type: 'number', min: 0, step: 1, value: query.get('min_ms') || '' })),
  h('label', { class: 'check' }, h('input', { type: 'checkbox', name: 'errors', checked: query.get('errors') === '1' }), 'Errors only'),
  h('button', { type: 'submit' }, 'Search'));
}

function results(found) {
  if (found instanceof Unavailable) return unavailable(found);
  if (!found.length) return empty('No stored trace matches.');
  return table('Traces found', COLUMNS, found.map((t) => row(COLUMNS, [
    h('a', { href: `#/trace/${t.trace_id}` }, fmt.stamp(t.start_us / 1000)),
    `${t.root_service}: ${t.root_operation}`,
    fmt.micros(t.duration_us),
    t.spans,
    t.error ? badge('bad', 'error') : badge('ok', 'ok'),
  ], { 'data-trace': t.trace_id })));
}

export default async function traces(main, route, signal) {
  const { query } = route;
  const services = await getJson('/v1/services', signal);
  const list = h('div', { 'aria-busy': 'true' }, empty('Searching…'));
  main.append(h('h1', {}, 'Traces'), form(query, services), section('found-title', 'Found', list));
  const found = await optional(getJson(withQuery('/v1/traces', {
    service: query.get('service'),
    operation: query.get('operation'),
    min_duration: query.get('min_ms') ? `${query.get('min_ms')}ms` : '',
    status: query.get('errors') === '1' ? 'error' : '',
    limit: LIMIT,
  }), signal));
  list.removeAttribute('aria-busy');
  fill(list, results(found));
}
