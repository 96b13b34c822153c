// Chaos kills: SIGKILL to a running instance of a supervised service, once or at an
// interval (POST /v1/chaos/kill), and the kill jobs with their counts
// (GET /v1/chaos/jobs, stopped with DELETE /v1/chaos/jobs/{id}). Served by `conway up`;
// a lone control plane says it needs the supervisor, and the form is disabled with why.

import { ApiError, getJson, poll, send, setToken, Unavailable } from './api.js';
import { empty, failed, fill, h, row, table } from './dom.js';
import * as fmt from './format.js';

const COLUMNS = ['Job', 'Target', 'Schedule', 'State', 'Kills', 'Action'];

function field(label, input, hint) {
  return h('label', {}, h('span', {}, label), input, hint && h('small', {}, hint));
}

/** Why kills are not served here, or null. */
function unsupported(error) {
  if (error instanceof Unavailable) return 'this control plane runs no supervisor: start the system with conway up';
  if (error instanceof ApiError && (error.status === 501 || (error.status === 503 && error.code === 'unavailable'))) {
    return error.message;
  }
  return null;
}

function jobTable(jobs, act) {
  if (!jobs.length) return empty('No kill job has run yet.');
  return table('Kill jobs', COLUMNS, jobs.map((job) => row(COLUMNS, [
    h('code', {}, job.id),
    `${job.request.service}${job.request.instance ? ` / ${job.request.instance}` : ' (a random instance)'}`,
    job.request.every ? `every ${job.request.every}${job.request.for ? ` for ${job.request.for}` : ''}` : 'once',
    h('span', { title: job.last_error || '' }, job.state, job.last_error ? ` (${job.last_error})` : ''),
    String(job.kills),
    job.state === 'running'
      ? h('button', { type: 'button', onclick: () => act(`Stopped ${job.id}.`, () => send('DELETE', `/v1/chaos/jobs/${encodeURIComponent(job.id)}`)) },
        `Stop ${job.id}`)
      : fmt.stamp(job.started_us / 1000),
  ], { 'data-job': job.id, 'data-state': job.state })));
}

/** The kill form and the jobs, in `area`, refreshed every 2 s until `signal` aborts. */
export function kills(area, signal) {
  const status = h('div', { role: 'status', class: 'meta' });
  const jobs = h('div');
  const service = h('select', { name: 'service', required: true });
  const instance = h('input', { name: 'instance', placeholder: 'any running one', autocomplete: 'off' });
  const every = h('input', { name: 'every', placeholder: 'once', autocomplete: 'off' });
  const duration = h('input', { name: 'for', placeholder: 'until stopped', autocomplete: 'off' });
  const fieldset = h('fieldset', { class: 'kinds' },
    field('Service', service),
    field('Instance', instance, 'e.g. orders-2'),
    field('Every', every, 'e.g. 10s; empty: once'),
    field('For', duration, 'with Every, e.g. 2m'),
    h('button', { type: 'submit' }, 'Kill'));
  const why = h('p', { class: 'hint why', hidden: true });
  const form = h('form', { class: 'inject kill', 'aria-label': 'Kill an instance' }, fieldset, why);
  const disable = (reason) => {
    fieldset.disabled = true;
    why.hidden = false;
    why.textContent = `Not available here: ${reason}.`;
  };
  async function act(done, change) {
    try {
      await change();
      fill(status, done);
      await refresh();
    } catch (error) {
      const reason = unsupported(error);
      if (reason) {
        disable(reason);
        fill(status);
        return;
      }
      fill(status, failed(error));
      if (error instanceof ApiError && error.status === 401) {
        const token = h('input', { type: 'password', name: 'token', required: true, autocomplete: 'off' });
        status.append(h('form', {
          class: 'inject', 'aria-label': 'Admin token',
          onsubmit: (event) => {
            event.preventDefault();
            setToken(token.value);
            act(done, change);
          },
        }, field('Admin token (kept for this tab only)', token), h('button', { type: 'submit' }, 'Use token and retry')));
      }
    }
  }
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const body = { service: service.value };
    if (instance.value.trim()) body.instance = instance.value.trim();
    if (every.value.trim()) body.every = every.value.trim();
    if (duration.value.trim()) body.for = duration.value.trim();
    const what = body.instance || `an instance of ${body.service}`;
    act(body.every ? `Killing ${what} every ${body.every}.` : `Killed ${what}.`, () => send('POST', '/v1/chaos/kill', body));
  });
  let shown = '';
  const refresh = async () => {
    if (fieldset.disabled) return;
    let found;
    try {
      found = await getJson('/v1/chaos/jobs', signal);
    } catch (error) {
      const reason = unsupported(error);
      if (!reason) throw error;
      disable(reason);
      fill(jobs);
      return;
    }
    const key = JSON.stringify(found);
    if (key !== shown) {
      shown = key;
      fill(jobs, jobTable(found, act));
    }
  };
  fill(area, form, status, jobs);
  getJson('/v1/services', signal).then((services) => {
    const supervised = services.filter((s) => s.run);
    fill(service, supervised.map((s) => h('option', { value: s.name }, s.name)));
    if (!supervised.length) disable('no service here has a run command');
  }).catch(() => {});
  poll(refresh, 2000, signal, (error) => fill(jobs, failed(error)));
}
