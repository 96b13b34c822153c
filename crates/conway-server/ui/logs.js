// Logs: filter by service, instance, level, text and trace id; follow live over the
// NDJSON stream of /v1/logs?follow=true.

import { getJson, optional, streamLines, Unavailable, withQuery } from './api.js';
import { badge, empty, fill, h, unavailable } from './dom.js';
import * as fmt from './format.js';

const LEVELS = ['', 'trace', 'debug', 'info', 'warn', 'error', 'fatal'];
const LEVEL_KIND = { warn: 'warn', error: 'bad', fatal: 'bad' };
const FILTERS = ['service', 'instance', 'level', 'q', 'trace_id'];
const KEEP = 1000;

function field(label, input) {
  return h('label', {}, h('span', {}, label), input);
}

function form(query) {
  const text = (name, label) => field(label, h('input', { name, value: query.get(name) || '', autocomplete: 'off' }));
  return h('form', {
    class: 'filters', role: 'search', 'aria-label': 'Filter logs',
    onsubmit: (event) => {
      event.preventDefault();
      const data = new FormData(event.target);
      const values = Object.fromEntries(FILTERS.map((f) => [f, data.get(f).trim()]));
      location.hash = withQuery('#/logs', { ...values, follow: data.get('follow') ? '1' : '' });
    },
  },
  text('service', 'Service'), text('instance', 'Instance'),
  field('Level, at least', h('select', { name: 'level' }, LEVELS.map((l) => h('option', { value: l, selected: query.get('level') === l }, l || 'any')))),
  text('q', 'Text'), text('trace_id', 'Trace id'),
  h('label', { class: 'check' }, h('input', { type: 'checkbox', name: 'follow', checked: query.get('follow') === '1' }), 'Follow live'),
  h('button', { type: 'submit' }, 'Show'));
}

function line(log) {
  return h('li', { 'data-log': log.id, 'data-trace': log.trace_id },
    h('time', { datetime: new Date(log.time_us / 1000).toISOString() }, fmt.clock(log.time_us / 1000, true)),
    badge(LEVEL_KIND[log.level] || 'idle', log.level),
    h('span', { class: 'source' }, log.instance ? `${log.service}/${log.instance}` : log.service),
    h('span', { class: 'body' }, log.body),
    log.trace_id && h('a', { href: `#/trace/${log.trace_id}`, class: 'trace', title: `trace ${log.trace_id}` }, 'trace'));
}

export default async function logs(main, route, signal) {
  const { query } = route;
  const filters = Object.fromEntries(FILTERS.map((f) => [f, query.get(f)]));
  const status = h('p', { class: 'meta', role: 'status' });
  const list = h('ol', { class: 'log', role: 'log', 'aria-label': 'Log lines', tabindex: 0 });
  main.append(h('h1', {}, 'Logs'), form(query), status, list);
  const found = await optional(getJson(withQuery('/v1/logs', { ...filters, limit: 200 }), signal));
  if (found instanceof Unavailable) {
    list.replaceWith(unavailable(found));
    return;
  }
  const none = empty('No log line matches yet.');
  let last = -Infinity;
  const add = (log) => {
    if (log.id <= last) return;
    last = log.id;
    none.remove();
    const atEnd = list.scrollTop + list.clientHeight >= list.scrollHeight - 8;
    list.append(line(log));
    while (list.children.length > KEEP) list.firstElementChild.remove();
    if (atEnd) list.scrollTop = list.scrollHeight;
  };
  found.forEach(add);
  if (!found.length) list.before(none);
  if (query.get('follow') !== '1') {
    fill(status, `${found.length} lines, oldest first.`);
    return;
  }
  fill(status, 'Following live…');
  try {
    await streamLines(withQuery('/v1/logs', { ...filters, follow: 'true' }), signal, (item) => {
      if (!item.keepalive) add(item);
    });
    fill(status, 'The stream ended. Show again to resume.');
  } catch (error) {
    if (!signal.aborted) fill(status, `The stream failed: ${error.message}`);
  }
}
