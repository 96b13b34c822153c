// A service's page: its instances, 15 minutes of traffic, routes, who calls it and what
// it calls, and its recent errors.

import { ApiError, getJson, optional, poll, Unavailable, withQuery } from './api.js';
import { badge, empty, failed, fill, h, row, section, table, unavailable } from './dom.js';
import { actions } from './actions.js';
import * as fmt from './format.js';
import { chart } from './chart.js';

const INSTANCE_COLUMNS = ['Instance', 'Health', 'Address', 'Zone', 'Version', 'Uptime', 'Restarts', 'Checked by'];
const ROUTE_COLUMNS = ['Path', 'Host', 'Methods', 'Auth', 'Rate limit', 'Timeout'];
const PEER_COLUMNS = ['Service', 'Kind', 'Rate', 'Errors', 'p99'];
const ERROR_COLUMNS = ['Started', 'Operation', 'Duration', 'Spans'];
const HEALTH = { healthy: 'ok', starting: 'warn', unhealthy: 'bad' };

function instances(list) {
  if (!list.length) return empty('No instances registered.');
  return table('Instances', INSTANCE_COLUMNS, list.map((i) => row(INSTANCE_COLUMNS, [
    h('code', {}, i.id),
    h('span', { title: i.reason || '' }, badge(HEALTH[i.state], i.state)),
    h('code', {}, i.address.includes(':') ? `[${i.address}]:${i.port}` : `${i.address}:${i.port}`),
    i.zone || '—', i.version || '—', uptime(i), restarts(i), i.checked_by,
  ], { 'data-instance': i.id })));
}

/** Since its process started (the supervisor says when), else since it registered. */
function uptime(instance) {
  const started = Number((instance.metadata || {})['conway.started_at_ms']);
  return fmt.since(started || instance.registered_at_ms);
}

/** How often the supervisor restarted it; — for an instance it does not run. */
function restarts(instance) {
  const count = (instance.metadata || {})['conway.restarts'];
  if (count === undefined) return '—';
  return Number(count) ? badge('warn', count) : count;
}

function charts(series) {
  if (series instanceof Unavailable) return unavailable(series);
  return h('div', { class: 'charts' },
    chart('Requests', series.points, (p) => p.rate, fmt.rate, 'ok'),
    chart('Errors (5xx)', series.points, (p) => p.errors, fmt.rate, 'bad'),
    chart('Latency p99', series.points, (p) => p.p99_ms, fmt.ms, 'warn'));
}

function routes(config, name) {
  const mine = config.routes.filter((r) => r.service === name);
  if (!mine.length) return empty('No gateway route leads here: it is reached through the mesh only.');
  return table('Routes', ROUTE_COLUMNS, mine.map((r) => row(ROUTE_COLUMNS, [
    h('code', {}, r.path), r.host || 'any', (r.methods || []).join(', ') || 'any', r.auth,
    r.rate_limit ? String(r.rate_limit.rate || r.rate_limit) : '—', r.timeout || 'service default',
  ])));
}

/** Callers and callees: observed and declared from the graph, or declared from config. */
function peers(graph, config, name) {
  const edges = graph instanceof Unavailable
    ? Object.entries(config.services).flatMap(([from, svc]) => (svc.depends_on || [])
      .map((to) => ({ from, to, declared: true, observed: false })))
    : graph.edges;
  const list = (mine, other, title) => {
    const undeclared = (e) => e.observed && !e.declared && e.from !== 'gateway';
    const kind = (e) => {
      if (e.from === 'gateway') return 'gateway route';
      if (!e.observed) return 'declared, unused';
      return e.declared ? 'declared' : 'undeclared';
    };
    const rows = mine.map((e) => row(PEER_COLUMNS, [
      other(e) === 'gateway' ? 'gateway' : h('a', { href: `#/service/${encodeURIComponent(other(e))}` }, other(e)),
      badge(undeclared(e) ? 'warn' : 'idle', kind(e)),
      e.observed ? fmt.rate(e.rate) : '—', e.observed ? fmt.percent(e.error_rate) : '—', fmt.ms(e.p99_ms),
    ]));
    return h('div', {}, h('h3', {}, title), rows.length ? table(title, PEER_COLUMNS, rows) : empty('None.'));
  };
  return h('div', { class: 'peers' },
    graph instanceof Unavailable && unavailable(graph),
    list(edges.filter((e) => e.to === name), (e) => e.from, 'Consumers (who calls it)'),
    list(edges.filter((e) => e.from === name), (e) => e.to, 'Dependencies (what it calls)'));
}

function errors(found, name) {
  const all = h('p', {}, h('a', { href: withQuery('#/traces', { service: name }) }, `All traces of ${name} →`));
  if (found instanceof Unavailable) return h('div', {}, unavailable(found));
  if (!found.length) return h('div', {}, empty('No failed traces stored.'), all);
  return h('div', {}, table('Recent errors', ERROR_COLUMNS, found.map((t) => row(ERROR_COLUMNS, [
    h('a', { href: `#/trace/${t.trace_id}` }, fmt.stamp(t.start_us / 1000)),
    `${t.root_service}: ${t.root_operation}`, fmt.micros(t.duration_us), t.spans,
  ], { 'data-trace': t.trace_id }))), all);
}

export default async function service(main, route, signal) {
  const name = route.args[0] || '';
  const path = `/v1/services/${encodeURIComponent(name)}`;
  let definition;
  try {
    definition = await getJson(path, signal);
  } catch (error) {
    main.append(h('h1', {}, name), error instanceof ApiError && error.status === 404
      ? empty(`No service named ${name}.`) : failed(error));
    return;
  }
  document.title = `${name} · Conway`;
  const parts = {
    instances: h('div'), traffic: h('div'), routes: h('div'), peers: h('div'), errors: h('div'),
  };
  main.append(
    h('h1', {}, name, ' ', definition.version && badge('idle', definition.version)),
    h('p', { class: 'lead' }, definition.description || '',
      ` Owner: ${definition.owner || 'none declared'}. `,
      definition.run ? `Runs ${definition.replicas || 1} replica(s) under the supervisor.` : 'External: instances register themselves.'),
    actions(name, definition, signal, () => refreshInstances()),
    section('instances-title', 'Instances', parts.instances),
    section('traffic-title', 'Traffic, last 15 minutes', parts.traffic),
    section('routes-title', 'Routes', parts.routes),
    section('peers-title', 'Consumers and dependencies', parts.peers),
    section('errors-title', 'Recent errors', parts.errors));
  const refreshInstances = async () => {
    fill(parts.instances, instances(await getJson(`${path}/instances`, signal)));
  };
  poll(refreshInstances, 2000, signal, (error) => fill(parts.instances, failed(error)));
  poll(async () => {
    const [series, config, graph, found] = await Promise.all([
      optional(getJson(`${path}/series`, signal)),
      getJson('/v1/config', signal),
      optional(getJson('/v1/graph', signal)),
      optional(getJson(withQuery('/v1/traces', { service: name, status: 'error', limit: 10 }), signal)),
    ]);
    fill(parts.traffic, charts(series));
    fill(parts.routes, routes(config, name));
    fill(parts.peers, peers(graph, config, name));
    fill(parts.errors, errors(found, name));
  }, 10000, signal, (error) => fill(parts.traffic, failed(error)));
}
