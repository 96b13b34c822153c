// Service map: the dependency graph from /v1/graph as a layered SVG drawing — edge
// width by rate, colour by error rate, undeclared calls dashed — with a table of edges.

import { getJson, optional, poll, Unavailable } from './api.js';
import { badge, fill, h, row, s, section, table, unavailable } from './dom.js';
import * as fmt from './format.js';
import { layered } from './layout.js';

const NODE = { w: 150, h: 46 };
const GAP = { layer: 90, row: 22 };
const PAD = 24;
const KINDS = ['ok', 'warn', 'bad', 'idle'];
const COLUMNS = ['From', 'To', 'Kind', 'Rate', 'Errors', 'p50', 'p99'];

/** The declared graph, from the services' `depends_on`, while /v1/graph is not served. */
function declared(services) {
  return {
    nodes: services.map((svc) => ({ name: svc.name, defined: true })),
    edges: services.flatMap((svc) => (svc.depends_on || []).map((to) => ({
      from: svc.name, to, declared: true, observed: false,
    }))),
  };
}

/** Calls from the gateway follow its routes; others should be in `depends_on`. */
function edgeKind(edge) {
  if (edge.from === 'gateway') return 'route';
  if (!edge.observed) return 'unused';
  return edge.declared ? 'declared' : 'undeclared';
}

/** Node positions: layers run left to right, or top to bottom on narrow screens. */
function place(graph, vertical) {
  const names = graph.nodes.map((n) => n.name);
  const layers = layered(names, graph.edges);
  const widest = Math.max(...layers.map((l) => l.length));
  const at = new Map();
  layers.forEach((layer, i) => layer.forEach((name, j) => {
    const along = i * ((vertical ? NODE.h : NODE.w) + GAP.layer);
    const across = (j + (widest - layer.length) / 2) * ((vertical ? NODE.w : NODE.h) + GAP.row);
    at.set(name, { layer: i, x: PAD + (vertical ? across : along), y: PAD + (vertical ? along : across) });
  }));
  const span = (n, size, gap) => n * size + (n - 1) * gap + 2 * PAD;
  const size = vertical
    ? { w: span(widest, NODE.w, GAP.row), h: span(layers.length, NODE.h, GAP.layer) }
    : { w: span(layers.length, NODE.w, GAP.layer), h: span(widest, NODE.h, GAP.row) };
  return { at, size };
}

/** The path of an edge: forward edges leave the caller's far side; others loop round. */
function curve(a, b, vertical) {
  const w = NODE.w;
  const hh = NODE.h;
  if (a === b) {
    const x = a.x + w;
    const y = a.y + hh / 2;
    return `M${x} ${y - 8} C${x + 40} ${y - 30} ${x + 40} ${y + 30} ${x} ${y + 8}`;
  }
  if (b.layer > a.layer) {
    const [x1, y1, x2, y2] = vertical
      ? [a.x + w / 2, a.y + hh, b.x + w / 2, b.y]
      : [a.x + w, a.y + hh / 2, b.x, b.y + hh / 2];
    const [dx, dy] = vertical ? [0, (y2 - y1) / 2] : [(x2 - x1) / 2, 0];
    return `M${x1} ${y1} C${x1 + dx} ${y1 + dy} ${x2 - dx} ${y2 - dy} ${x2} ${y2}`;
  }
  const [x1, y1, x2, y2] = vertical
    ? [a.x + w, a.y + hh / 2, b.x + w, b.y + hh / 2]
    : [a.x + w / 2, a.y + hh, b.x + w / 2, b.y + hh];
  const out = 36 + Math.abs(vertical ? y2 - y1 : x2 - x1) / 4;
  return vertical
    ? `M${x1} ${y1} C${Math.max(x1, x2) + out} ${y1} ${Math.max(x1, x2) + out} ${y2} ${x2} ${y2}`
    : `M${x1} ${y1} C${x1} ${Math.max(y1, y2) + out} ${x2} ${Math.max(y1, y2) + out} ${x2} ${y2}`;
}

function describe(edge) {
  const figures = edge.observed
    ? `${fmt.rate(edge.rate)}, ${fmt.percent(edge.error_rate)} errors, p99 ${fmt.ms(edge.p99_ms)}`
    : 'no calls observed';
  return `${edge.from} → ${edge.to}: ${edgeKind(edge)}; ${figures}`;
}

function drawEdge(edge, at, vertical, busiest) {
  const kind = edgeKind(edge);
  const colour = edge.observed ? fmt.errorKind(edge.error_rate) : 'idle';
  const width = edge.observed ? 1.5 + 5 * Math.sqrt((edge.rate || 0) / busiest) : 1.2;
  const d = curve(at.get(edge.from), at.get(edge.to), vertical);
  return s('g', { class: `edge ${kind} ${colour}`, 'data-from': edge.from, 'data-to': edge.to },
    s('title', {}, describe(edge)),
    kind === 'undeclared' && s('path', { class: 'halo', d, 'stroke-width': width + 6 }),
    s('path', { class: 'line', d, 'stroke-width': width, 'marker-end': `url(#arrow-${colour})` }));
}

function drawNode(node, at) {
  const { x, y } = at.get(node.name);
  const traffic = node.rate ? `${fmt.rate(node.rate)} · ${fmt.percent(node.error_rate)} err` : 'no traffic';
  const label = node.name.length > 18 ? `${node.name.slice(0, 17)}…` : node.name;
  const kind = node.rate ? fmt.errorKind(node.error_rate) : 'idle';
  const shape = [
    s('title', {}, `${node.name}: ${node.rate === undefined ? 'traffic not reported' : traffic}`),
    s('rect', { x, y, width: NODE.w, height: NODE.h, rx: 8 }),
    s('text', { x: x + NODE.w / 2, y: y + 19, class: 'name' }, label),
    node.rate !== undefined && s('text', { x: x + NODE.w / 2, y: y + 36, class: 'figures' }, traffic),
  ];
  const attributes = { class: `node ${kind}${node.defined ? '' : ' undefined'}`, 'data-node': node.name };
  if (!node.defined) return s('g', attributes, shape);
  return s('a', { ...attributes, href: `#/service/${encodeURIComponent(node.name)}`, 'aria-label': `${node.name}, ${traffic}: open its page` }, shape);
}

function draw(graph, vertical) {
  const { at, size } = place(graph, vertical);
  const busiest = Math.max(1e-9, ...graph.edges.map((e) => e.rate || 0));
  const arrows = KINDS.map((k) => s('marker', {
    id: `arrow-${k}`, class: k, viewBox: '0 0 10 10', refX: 9, refY: 5,
    markerWidth: 10, markerHeight: 10, markerUnits: 'userSpaceOnUse', orient: 'auto',
  }, s('path', { d: 'M0 0 L10 5 L0 10 z' })));
  return s('svg', {
    viewBox: `0 0 ${size.w} ${size.h}`, width: size.w, height: size.h, class: 'graph',
    role: 'group', 'aria-labelledby': 'map-title',
  }, s('defs', {}, arrows),
  graph.edges.map((e) => drawEdge(e, at, vertical, busiest)),
  graph.nodes.map((n) => drawNode(n, at)));
}

function legend() {
  const sample = (cls) => s('svg', { width: 36, height: 12, 'aria-hidden': 'true' },
    s('g', { class: `edge ${cls}` },
      cls.startsWith('undeclared') && s('path', { class: 'halo', d: 'M2 6 L34 6', 'stroke-width': 8 }),
      s('path', { class: 'line', d: 'M2 6 L34 6', 'stroke-width': 3 })));
  return h('ul', { class: 'legend', 'aria-label': 'Legend' },
    h('li', {}, sample('declared ok'), 'under 1% errors'),
    h('li', {}, sample('declared warn'), '1–5% errors'),
    h('li', {}, sample('declared bad'), 'over 5% errors'),
    h('li', {}, sample('undeclared ok'), 'undeclared call (not in depends_on)'),
    h('li', {}, sample('unused idle'), 'declared, no calls seen'),
    h('li', {}, 'Width: request rate'));
}

function edgeTable(graph) {
  const kinds = { route: 'idle', declared: 'ok', undeclared: 'warn', unused: 'idle' };
  const rows = graph.edges.map((e) => row(COLUMNS, [
    e.from, e.to, badge(kinds[edgeKind(e)], edgeKind(e)),
    e.observed ? fmt.rate(e.rate) : '—',
    e.observed ? fmt.percent(e.error_rate) : '—',
    fmt.ms(e.p50_ms), fmt.ms(e.p99_ms),
  ], { 'data-from': e.from, 'data-to': e.to }));
  return rows.length ? table('Dependencies', COLUMNS, rows) : h('p', { class: 'empty' }, 'No dependencies declared or observed.');
}

/** Every node an edge names, even one the graph does not list. */
function complete(graph) {
  const names = new Set(graph.nodes.map((n) => n.name));
  const extra = graph.edges.flatMap((e) => [e.from, e.to]).filter((n) => !names.has(n));
  return { ...graph, nodes: [...graph.nodes, ...[...new Set(extra)].map((name) => ({ name, defined: false }))] };
}

export default async function map(main, route, signal) {
  const note = h('div');
  const figure = h('div', { class: 'map' });
  const edges = h('div');
  main.append(h('h1', { id: 'map-title' }, 'Service map'), note, figure, legend(),
    section('edges-title', 'Dependencies', edges));
  let shown = '';
  let graph = null;
  const render = () => {
    const vertical = figure.clientWidth < 700;
    const key = JSON.stringify([graph, vertical]);
    if (key === shown) return;
    shown = key;
    fill(figure, graph.nodes.length ? draw(graph, vertical) : h('p', { class: 'empty' }, 'No services yet.'));
    fill(edges, edgeTable(graph));
  };
  window.addEventListener('resize', () => graph && render(), { signal });
  poll(async () => {
    const observed = await optional(getJson('/v1/graph', signal));
    if (observed instanceof Unavailable) {
      graph = complete(declared(await getJson('/v1/services', signal)));
      fill(note, unavailable(observed), h('p', { class: 'meta' }, 'Showing the declared dependencies (depends_on) only.'));
    } else {
      graph = complete(observed);
      fill(note, h('p', { class: 'meta' }, `Observed over the last ${observed.window_seconds} s, with the declared dependencies.`));
    }
    render();
  }, 5000, signal, (error) => fill(note, h('p', { class: 'error', role: 'alert' }, error.message)));
}
