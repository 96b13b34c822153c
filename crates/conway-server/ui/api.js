// The control plane's API, from the same origin: JSON reads and writes, NDJSON streams,
// and polling that stops with the page.

/** The control plane does not serve this path (yet): an honest "no data yet". */
export class Unavailable extends Error {
  constructor(path) {
    super(`this control plane does not serve ${path} yet`);
    this.path = path;
  }
}

/** An error answer: `{"error": {"code", "message"}}`. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function failure(response, path) {
  const body = await response.json().catch(() => null);
  const error = body && body.error;
  if (response.status === 404 && error && error.code === 'no_route') {
    return new Unavailable(path);
  }
  return new ApiError(
    response.status,
    error ? error.code : 'http_' + response.status,
    error ? error.message : `${response.status} ${response.statusText}`,
  );
}

/** The path with the query's non-empty values. */
export function withQuery(path, query) {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value !== undefined && value !== null && value !== '') params.set(key, value);
  }
  const text = params.toString();
  return text ? `${path}?${text}` : path;
}

/** GET a JSON document. */
export async function getJson(path, signal) {
  const response = await fetch(path, { signal, headers: { accept: 'application/json' } });
  if (!response.ok) throw await failure(response, path);
  return response.json();
}

const TOKEN_KEY = 'conway-admin-token';

/** Keeps the admin token for this tab: changes carry it once it is set. */
export function setToken(token) {
  sessionStorage.setItem(TOKEN_KEY, token);
}

/**
 * PUT, POST or DELETE with an optional JSON body; the answer's JSON, or null. A control
 * plane that requires its admin token answers 401 until `setToken` is given it.
 */
export async function send(method, path, body) {
  const init = { method, headers: { accept: 'application/json' } };
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) init.headers.authorization = `Bearer ${token}`;
  if (body !== undefined) {
    init.headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  if (!response.ok) throw await failure(response, path);
  return response.status === 204 ? null : response.json();
}

/** Reads an NDJSON stream, calling `onLine` with each parsed line, until it ends. */
export async function streamLines(path, signal, onLine) {
  const response = await fetch(path, { signal, headers: { accept: 'application/x-ndjson' } });
  if (!response.ok) throw await failure(response, path);
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let pending = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    pending += decoder.decode(value, { stream: true });
    const lines = pending.split('\n');
    pending = lines.pop();
    for (const line of lines) {
      if (line.trim()) onLine(JSON.parse(line));
    }
  }
}

/** Calls `tick` now and then every `ms` until `signal` aborts; a tick's error goes to `onError`. */
export function poll(tick, ms, signal, onError) {
  let timer;
  const run = async () => {
    try {
      await tick();
    } catch (error) {
      if (!signal.aborted) onError(error);
    }
    if (!signal.aborted) timer = setTimeout(run, ms);
  };
  signal.addEventListener('abort', () => clearTimeout(timer));
  run();
}

/** The value of a read, or the `Unavailable` error it failed with (other errors throw). */
export async function optional(promise) {
  try {
    return await promise;
  } catch (error) {
    if (error instanceof Unavailable) return error;
    throw error;
  }
}
