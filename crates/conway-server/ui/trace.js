// One trace as a waterfall: spans in call order, each a bar on the trace's time line;
// a span opens to show its details.

import { ApiError, getJson, optional, Unavailable } from './api.js';
import { badge, empty, h, unavailable } from './dom.js';
import * as fmt from './format.js';

/** Spans depth first, children by start time; a span whose parent is missing is a root. */
function ordered(spans) {
  const ids = new Set(spans.map((sp) => sp.span_id));
  const children = new Map();
  for (const sp of spans) {
    const parent = ids.has(sp.parent_span_id) ? sp.parent_span_id : null;
    if (!children.has(parent)) children.set(parent, []);
    children.get(parent).push(sp);
  }
  const out = [];
  const walk = (parent, depth) => {
    for (const sp of (children.get(parent) || []).sort((a, b) => a.start_us - b.start_us)) {
      out.push({ span: sp, depth });
      walk(sp.span_id, depth + 1);
    }
  };
  walk(null, 0);
  return out;
}

function details(sp, t0) {
  const pairs = [
    ['Service', sp.service], ['Operation', sp.operation], ['Kind', sp.kind],
    ['Span id', h('code', {}, sp.span_id)], ['Parent', sp.parent_span_id ? h('code', {}, sp.parent_span_id) : 'none (root)'],
    ['Starts', `+${fmt.micros(sp.start_us - t0)}`], ['Duration', fmt.micros(sp.duration_us)],
    ['Status', sp.status_message ? `${sp.status}: ${sp.status_message}` : sp.status],
    ...Object.entries(sp.attributes || {}).map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)]),
  ];
  return h('dl', {}, pairs.map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
}

function spanRow({ span: sp, depth }, t0, total) {
  const panel = h('div', { id: `span-${sp.span_id}`, class: 'span-details', hidden: true }, details(sp, t0));
  const bar = h('span', { class: `bar ${sp.status === 'error' ? 'bad' : 'ok'}` });
  bar.style.left = `${((sp.start_us - t0) / total) * 100}%`;
  bar.style.width = `${Math.max(0.3, (sp.duration_us / total) * 100)}%`;
  const label = h('span', { class: 'label' }, h('strong', {}, sp.service), ' ', sp.operation,
    sp.status === 'error' ? [' ', badge('bad', 'error')] : null);
  label.style.setProperty('--depth', depth);
  const toggle = h('button', {
    type: 'button', class: 'span-row', 'aria-expanded': 'false', 'aria-controls': panel.id,
    onclick: () => {
      const open = toggle.getAttribute('aria-expanded') !== 'true';
      toggle.setAttribute('aria-expanded', String(open));
      panel.hidden = !open;
    },
  }, label, h('span', { class: 'track' }, bar), h('span', { class: 'took' }, fmt.micros(sp.duration_us)));
  return h('li', { 'data-span': sp.span_id }, toggle, panel);
}

export default async function trace(main, route, signal) {
  const id = route.args[0] || '';
  main.append(h('h1', {}, 'Trace ', h('code', { class: 'id' }, id)));
  const found = await optional(getJson(`/v1/traces/${encodeURIComponent(id)}`, signal).catch((error) => {
    if (error instanceof ApiError && error.status === 404) return null;
    throw error;
  }));
  if (found instanceof Unavailable || !found) {
    main.append(found ? unavailable(found) : empty('No span of this trace is stored.'));
    return;
  }
  const spans = found.spans;
  const t0 = Math.min(...spans.map((sp) => sp.start_us));
  const end = Math.max(...spans.map((sp) => sp.start_us + sp.duration_us));
  const total = Math.max(1, end - t0);
  const services = [...new Set(spans.map((sp) => sp.service))];
  const rows = ordered(spans);
  const quarter = (i) => h('span', {}, i ? fmt.micros(Math.round((total * i) / 4)) : '0');
  main.append(
    h('p', { class: 'lead' }, `${fmt.micros(total)}, ${spans.length} spans, services: ${services.join(', ')}. Started ${fmt.stamp(t0 / 1000)}.`),
    h('p', {}, h('a', { href: `#/logs?trace_id=${id}`, class: 'trace-logs' }, 'Logs of this trace →')),
    h('div', { class: 'waterfall' },
      h('div', { class: 'ticks', 'aria-hidden': 'true' },
        h('span'), h('span', { class: 'scale' }, [0, 1, 2, 3, 4].map(quarter)), h('span')),
      h('ol', { 'aria-label': 'Spans, in call order' }, rows.map((r) => spanRow(r, t0, total)))));
}
