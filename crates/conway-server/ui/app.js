// The dashboard's shell: hash routes to pages. A page is a function
// `(main, route, signal)`; `signal` aborts when the page is left, which stops its
// polling and streams.

import overview from './overview.js';
import map from './map.js';
import service from './service.js';
import traces from './traces.js';
import trace from './trace.js';
import logs from './logs.js';
import chaos from './chaos.js';
import { announce, failed, fill } from './dom.js';

const PAGES = {
  '': { page: overview, title: 'Overview', nav: '#/' },
  map: { page: map, title: 'Service map', nav: '#/map' },
  service: { page: service, title: 'Service', nav: '#/' },
  traces: { page: traces, title: 'Traces', nav: '#/traces' },
  trace: { page: trace, title: 'Trace', nav: '#/traces' },
  logs: { page: logs, title: 'Logs', nav: '#/logs' },
  chaos: { page: chaos, title: 'Chaos', nav: '#/chaos' },
};

/** `#/service/orders?x=1` → `{name: 'service', args: ['orders'], query}`. */
function parse(hash) {
  const [path, search] = hash.replace(/^#\/?/, '').split('?');
  const [name, ...args] = path.split('/').map(decodeURIComponent);
  return { name, args, query: new URLSearchParams(search || '') };
}

const main = document.getElementById('main');
let current = null;

function show() {
  if (location.hash && !location.hash.startsWith('#/')) return;
  const route = parse(location.hash);
  const entry = PAGES[route.name];
  if (current) current.abort();
  current = new AbortController();
  for (const link of document.querySelectorAll('nav a')) {
    const here = entry && link.getAttribute('href') === entry.nav;
    if (here) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  document.title = `${entry ? entry.title : 'Not found'} · Conway`;
  announce(`${entry ? entry.title : 'Not found'} page`);
  fill(main);
  if (!entry) {
    main.append(failed(new Error(`no page at ${location.hash}`)));
    return;
  }
  const { signal } = current;
  entry.page(main, route, signal).catch((error) => {
    if (!signal.aborted) main.append(failed(error));
  });
  main.focus({ preventScroll: true });
  window.scrollTo(0, 0);
}

document.querySelector('.skip').addEventListener('click', (event) => {
  event.preventDefault();
  main.focus();
});
window.addEventListener('hashchange', show);
show();
