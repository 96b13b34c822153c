// A small line chart of the last 15 minutes in SVG. Lines stretch with the box
// (non-scaling strokes); labels are HTML so they never stretch.

import { h, s } from './dom.js';

const WINDOW_S = 15 * 60;
const W = 300;
const H = 80;

/** Runs of consecutive defined values: a step without a value breaks the line. */
function runs(values) {
  const out = [[]];
  for (const [t, v] of values) {
    if (v === undefined || v === null) out.push([]);
    else out[out.length - 1].push([t, v]);
  }
  return out.filter((run) => run.length);
}

/**
 * A chart of `pick(point)` over `points` (`time_s` ascending), titled `title`, values
 * shown with `format`; `kind` (ok, warn, bad) colours it.
 */
export function chart(title, points, pick, format, kind) {
  const start = Date.now() / 1000 - WINDOW_S;
  const values = points.filter((p) => p.time_s >= start).map((p) => [p.time_s, pick(p)]);
  const defined = values.filter(([, v]) => v !== undefined && v !== null);
  const top = Math.max(0, ...defined.map(([, v]) => v));
  const latest = defined.length ? defined[defined.length - 1][1] : undefined;
  const caption = h('figcaption', {}, h('span', { class: 'title' }, title),
    h('span', { class: 'latest' }, `latest ${format(latest)}`));
  if (!defined.length) {
    return h('figure', { class: 'chart' }, caption, h('p', { class: 'empty' }, 'No requests in the last 15 minutes.'));
  }
  const x = (t) => ((t - start) / WINDOW_S) * W;
  const y = (v) => H - (v / (top || 1)) * (H - 4);
  const lines = runs(values).map((run) => {
    const d = run.map(([t, v], i) => `${i ? 'L' : 'M'}${x(t).toFixed(1)} ${y(v).toFixed(1)}`).join(' ');
    const area = `${d} L${x(run[run.length - 1][0]).toFixed(1)} ${H} L${x(run[0][0]).toFixed(1)} ${H} Z`;
    return [s('path', { class: 'area', d: area }), s('path', { class: 'line', d })];
  });
  const plot = s('svg', {
    viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: 'none', role: 'img',
    'aria-label': `${title} over the last 15 minutes: peak ${format(top)}, latest ${format(latest)}`,
  }, lines);
  return h('figure', { class: `chart ${kind}` }, caption,
    h('div', { class: 'plot' }, h('span', { class: 'peak', 'aria-hidden': 'true' }, format(top)), plot),
    h('div', { class: 'axis', 'aria-hidden': 'true' }, h('span', {}, '15 min ago'), h('span', {}, 'now')));
}
