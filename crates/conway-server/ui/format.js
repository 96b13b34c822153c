// Numbers and times as people read them. A missing figure is an em dash, never a zero.

const NONE = '—';

function number(value) {
  const digits = value >= 100 ? 0 : value >= 10 ? 1 : 2;
  return String(Number(value.toFixed(digits)));
}

/** Requests per second. */
export function rate(value) {
  return value === undefined || value === null ? NONE : `${number(value)}/s`;
}

/** A share from 0 to 1 as a percentage. */
export function percent(share) {
  if (share === undefined || share === null) return NONE;
  if (share > 0 && share < 0.001) return '<0.1%';
  return `${number(share * 100)}%`;
}

/** Milliseconds. */
export function ms(value) {
  if (value === undefined || value === null) return NONE;
  return value >= 1000 ? `${number(value / 1000)} s` : `${number(value)} ms`;
}

/** Microseconds, as a duration. */
export function micros(value) {
  return value < 1000 ? `${value} µs` : ms(value / 1000);
}

/** How long since `then` (milliseconds since the epoch). */
export function since(then) {
  let seconds = Math.max(0, Math.round((Date.now() - then) / 1000));
  const parts = [];
  for (const [unit, size] of [['d', 86400], ['h', 3600], ['m', 60]]) {
    if (seconds >= size) {
      parts.push(`${Math.floor(seconds / size)}${unit}`);
      seconds %= size;
    }
  }
  if (parts.length < 2) parts.push(`${seconds}s`);
  return parts.slice(0, 2).join(' ');
}

/** A time of day with seconds (and milliseconds when asked), local time. */
export function clock(epochMs, withMillis) {
  const date = new Date(epochMs);
  const text = date.toLocaleTimeString([], { hour12: false });
  return withMillis ? `${text}.${String(date.getMilliseconds()).padStart(3, '0')}` : text;
}

/** A date and time, local. */
export function stamp(epochMs) {
  return new Date(epochMs).toLocaleString([], { hour12: false });
}

/** How bad an error share is: ok under 1%, warn under 5%, else bad. */
export function errorKind(share) {
  if (share === undefined || share === null) return 'idle';
  if (share < 0.01) return 'ok';
  return share < 0.05 ? 'warn' : 'bad';
}
