// A service's actions: scale (POST /v1/services/{name}/scale) and deploy, promote or
// roll back (POST /v1/services/{name}/deploy). Each asks for the admin token when the
// control plane answers 401, and turns into a disabled, explained form only when this
// control plane does not serve the route (404 or 501; a lone `conway server` has no
// supervisor and says so).

import { ApiError, getJson, poll, send, setToken, Unavailable } from './api.js';
import { failed, h } from './dom.js';

/** Why an action cannot be served here, or null if it can. A GET answers 405 (or a
 *  status) where the POST route exists; 404 `no_route` or 501 where it does not; a lone
 *  control plane answers 503 `unavailable` for the routes only `conway up` serves. */
async function unsupported(path, signal) {
  try {
    await getJson(path, signal);
    return null;
  } catch (error) {
    if (error instanceof Unavailable) return 'this control plane runs no supervisor: start the system with conway up';
    if (!(error instanceof ApiError)) return null;
    if (error.status === 501) return error.message;
    if (error.status === 503 && error.code === 'unavailable') return error.message;
    return null;
  }
}

/** Is `error` the answer of a control plane that does not do this? */
function notServed(error) {
  return error instanceof Unavailable
    || (error instanceof ApiError && (error.status === 501 || (error.status === 404 && error.code === 'no_route')));
}

function field(label, input, hint) {
  return h('label', {}, h('span', {}, label), input, hint && h('small', {}, hint));
}

/** Asks for the admin token, then tries the change again. */
function tokenForm(retry) {
  const input = h('input', { type: 'password', name: 'token', required: true, autocomplete: 'off' });
  return h('form', {
    class: 'inject token', 'aria-label': 'Admin token',
    onsubmit: (event) => {
      event.preventDefault();
      setToken(input.value);
      retry();
    },
  }, field('Admin token (kept for this tab only)', input), h('button', { type: 'submit' }, 'Use token and retry'));
}

/** Disables `form` and says why. */
function disable(form, why) {
  const fieldset = form.querySelector('fieldset');
  fieldset.disabled = true;
  form.classList.add('unsupported');
  const note = form.querySelector('.why');
  note.hidden = false;
  note.textContent = `Not available here: ${why}.`;
}

/** A form that runs `change` on submit, reports in `status`, then calls `changed`. */
function actionForm(name, legend, controls, status, changed) {
  const form = h('form', { class: 'action', 'data-action': name, 'aria-label': legend },
    h('fieldset', {}, h('legend', {}, legend), controls),
    h('p', { class: 'why hint', hidden: true }));
  form.run = async (done, change) => {
    status.replaceChildren(`${legend}…`);
    try {
      const answer = await change();
      status.replaceChildren(done(answer));
      changed();
    } catch (error) {
      if (notServed(error)) {
        disable(form, error.message);
        status.replaceChildren();
        return;
      }
      status.replaceChildren(failed(error));
      if (error instanceof ApiError && error.status === 401) {
        status.append(tokenForm(() => form.run(done, change)));
      }
    }
  };
  return form;
}

/**
 * The actions of service `name` (its definition `definition`); `changed` is called
 * after each change, so the page can show the new instances at once.
 */
export function actions(name, definition, signal, changed) {
  const path = `/v1/services/${encodeURIComponent(name)}`;
  if (!definition.run) {
    return h('p', { class: 'meta' }, 'External service: its instances register themselves, so there is nothing to scale or deploy here.');
  }
  const status = h('div', { role: 'status', class: 'meta action-status' });
  const replicas = h('input', {
    name: 'replicas', type: 'number', min: 0, max: 100, step: 1, required: true,
    value: definition.replicas === undefined ? 1 : definition.replicas,
  });
  const scale = actionForm('scale', 'Scale', [
    field('Replicas', replicas),
    h('button', { type: 'submit' }, 'Scale'),
  ], status, changed);
  scale.addEventListener('submit', (event) => {
    event.preventDefault();
    const wanted = Number(replicas.value);
    scale.run((answer) => `Scaled ${name} to ${answer.replicas} replica(s) (was ${answer.previous}).`,
      () => send('POST', `${path}/scale`, { replicas: wanted }));
  });

  const version = h('input', { name: 'version', required: true, placeholder: definition.version || '1.2.0', autocomplete: 'off' });
  const canary = h('input', { name: 'canary', type: 'number', min: 1, max: 99, step: 'any', placeholder: 'all at once' });
  const deployed = (what) => (answer) => {
    const state = answer && (answer.state || answer.status);
    return `${what}${state ? ` (${state})` : ''}.`;
  };
  const post = (body) => () => send('POST', `${path}/deploy`, body);
  const deploy = actionForm('deploy', 'Deploy', [
    field('Version', version),
    field('Canary percent', canary, 'optional: this share of requests first'),
    h('div', { class: 'buttons' },
      h('button', { type: 'submit' }, 'Deploy'),
      h('button', {
        type: 'button', 'data-deploy': 'promote',
        onclick: () => deploy.run(deployed(`Promoted the canary of ${name}`), post({ promote: true })),
      }, 'Promote'),
      h('button', {
        type: 'button', 'data-deploy': 'rollback',
        onclick: () => deploy.run(deployed(`Rolled ${name} back`), post({ rollback: true })),
      }, 'Roll back')),
  ], status, changed);
  deploy.addEventListener('submit', (event) => {
    event.preventDefault();
    const body = { version: version.value.trim() };
    if (canary.value !== '') body.canary = Number(canary.value);
    deploy.run(deployed(`Deploying ${name} ${body.version}`), post(body));
  });

  const progress = h('p', { class: 'meta deployment', 'aria-live': 'polite' });
  deploy.append(progress);
  unsupported(`${path}/scale`, signal).then((why) => { if (why) disable(scale, why); });
  unsupported(`${path}/deploy`, signal).then((why) => {
    if (why) {
      disable(deploy, why);
      return;
    }
    // The latest deploy and where it stands, while the page is open.
    poll(async () => {
      if (deploy.classList.contains('unsupported')) return;
      try {
        const current = await getJson(`${path}/deploy`, signal);
        progress.dataset.deployState = current.state;
        const canary = current.canary ? `, canary ${current.canary}%` : '';
        progress.textContent = `Last deploy: ${current.from || '—'} → ${current.to || '—'}, ${current.state.replace(/_/g, ' ')}${canary}.`;
      } catch (error) {
        if (!(error instanceof ApiError && error.status === 404)) throw error;
        delete progress.dataset.deployState;
        progress.textContent = 'No deploy since the system started.';
      }
    }, 2000, signal, () => {});
  });
  return h('div', { class: 'actions', role: 'group', 'aria-label': 'Actions' }, scale, deploy, status);
}
