// Overview: every service with its replicas and traffic, refreshed every 2 seconds.

import { getJson, optional, poll, Unavailable } from './api.js';
import { badge, empty, failed, fill, h, row, table, unavailable } from './dom.js';
import * as fmt from './format.js';

const COLUMNS = ['Service', 'Version', 'Owner', 'Healthy / total', 'Rate', 'Errors', 'p99',
  'Circuit breaker'];

/** p99 of each service: its latest 10-second step with requests in the last minute. */
async function latencies(services, signal) {
  const p99 = new Map();
  const since = Date.now() / 1000 - 60;
  for (const service of services) {
    const series = await optional(getJson(`/v1/services/${encodeURIComponent(service.name)}/series`, signal));
    if (series instanceof Unavailable) return series;
    const recent = series.points.filter((p) => p.time_s >= since && p.p99_ms !== undefined);
    if (recent.length) p99.set(service.name, recent[recent.length - 1].p99_ms);
  }
  return p99;
}

function replicas(service) {
  const kind = service.instances === 0 ? 'idle'
    : service.healthy === service.instances ? 'ok'
      : service.healthy === 0 ? 'bad' : 'warn';
  return badge(kind, `${service.healthy} / ${service.instances}`);
}

const BREAKER = { closed: ['ok', 'closed'], half_open: ['warn', 'half-open'], open: ['bad', 'open'] };

/** Each service's load (`GET /v1/services/{name}/load`): its breaker's live state. */
async function loads(services, signal) {
  const found = new Map();
  await Promise.all(services.map(async (service) => {
    try {
      found.set(service.name, await getJson(`/v1/services/${encodeURIComponent(service.name)}/load`, signal));
    } catch {
      // Not served by this control plane (yet), or no proxy reports: shown as —.
    }
  }));
  return found;
}

/** The breaker's live state as the proxies report it (the worst of them), with the policy. */
function breaker(service, load) {
  const policy = service.resilience && service.resilience.circuit_breaker;
  const rule = policy
    ? `opens at ${fmt.percent(policy.failure_ratio)} failures over ${policy.window}`
    : 'no circuit breaker declared';
  const reported = load && !(Array.isArray(load.proxies) && load.proxies.length === 0);
  const state = reported && BREAKER[load.breaker];
  if (!state) return h('span', { title: `${rule}; no proxy reports its live state`, 'data-breaker': '' }, '—');
  return h('span', { title: rule, 'data-breaker': load.breaker }, badge(state[0], state[1]));
}

function render(body, services, graph, p99, load) {
  if (!services.length) {
    fill(body, empty('No services are defined: load a manifest (conway server -f conway.toml) or PUT /v1/services/{name}.'));
    return;
  }
  const nodes = new Map(graph instanceof Unavailable ? [] : graph.nodes.map((n) => [n.name, n]));
  const rows = services.map((service) => {
    const node = nodes.get(service.name);
    const errors = node && node.error_rate;
    return row(COLUMNS, [
      h('a', { href: `#/service/${encodeURIComponent(service.name)}` }, service.name),
      service.version || '—',
      service.owner || '—',
      replicas(service),
      node ? fmt.rate(node.rate) : '—',
      node && node.rate ? badge(fmt.errorKind(errors), fmt.percent(errors)) : '—',
      p99 instanceof Map ? fmt.ms(p99.get(service.name)) : '—',
      breaker(service, load.get(service.name)),
    ], { 'data-service': service.name });
  });
  const notes = [graph, p99].filter((x) => x instanceof Unavailable).map(unavailable);
  const window = graph instanceof Unavailable ? '' : ` Rates and errors over the last ${graph.window_seconds} s.`;
  fill(body, table('Services', COLUMNS, rows), ...notes,
    h('p', { class: 'meta' }, `Updated ${fmt.clock(Date.now())}.${window}`));
}

export default async function overview(main, route, signal) {
  const summary = h('p', { class: 'lead' });
  const body = h('div');
  main.append(h('h1', {}, 'Overview'), summary, body);
  let p99 = new Map();
  let measured = 0;
  poll(async () => {
    const [services, graph] = await Promise.all([
      getJson('/v1/services', signal),
      optional(getJson('/v1/graph', signal)),
    ]);
    const load = await loads(services, signal);
    if (Date.now() - measured >= 10000) {
      p99 = await latencies(services, signal);
      measured = Date.now();
    }
    const instances = services.reduce((n, s) => n + s.instances, 0);
    const healthy = services.reduce((n, s) => n + s.healthy, 0);
    fill(summary, `${services.length} services, ${healthy} of ${instances} instances healthy.`);
    render(body, services, graph, p99, load);
  }, 2000, signal, (error) => fill(body, failed(error)));
}
