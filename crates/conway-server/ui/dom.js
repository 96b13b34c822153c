// Building the page: elements from data (never from HTML strings), and the states a
// section can be in while it has no figures to show.

const SVG = 'http://www.w3.org/2000/svg';

function build(element, attributes, children) {
  for (const [key, value] of Object.entries(attributes || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on')) element.addEventListener(key.slice(2), value);
    else element.setAttribute(key, value === true ? '' : value);
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : String(child));
  }
  return element;
}

/** An HTML element: `h('a', {href: '#/'}, 'Overview')`. */
export function h(tag, attributes, ...children) {
  return build(document.createElement(tag), attributes, children);
}

/** An SVG element. */
export function s(tag, attributes, ...children) {
  return build(document.createElementNS(SVG, tag), attributes, children);
}

/**
 * Replaces the element's children. A link that had the focus gets it back in the new
 * content, so a page that refreshes itself does not throw keyboard users out.
 */
export function fill(element, ...children) {
  const focused = document.activeElement;
  const href = element.contains(focused) && focused.getAttribute('href');
  element.replaceChildren();
  build(element, {}, children);
  const again = href && element.querySelector(`[href="${CSS.escape(href)}"]`);
  if (again) again.focus();
  return element;
}

/** A titled section of a page. */
export function section(id, title, ...children) {
  return h('section', { 'aria-labelledby': id },
    h('h2', { id }, title), ...children);
}

/** What a section shows when a figure's source is not served yet, or has nothing. */
export function empty(message) {
  return h('p', { class: 'empty' }, message);
}

/** "No data yet", saying which endpoint is missing. */
export function unavailable(error) {
  return h('p', { class: 'empty' }, 'No data yet: ', error.message, '.');
}

/** An error that stopped a section, said plainly. */
export function failed(error) {
  return h('p', { class: 'error', role: 'alert' }, 'Could not load: ', error.message);
}

/** A table whose rows become cards on narrow screens: `columns` are header labels. */
export function table(caption, columns, rows) {
  return h('div', { class: 'table-wrap' },
    h('table', { class: 'cards' },
      h('caption', { class: 'visually-hidden' }, caption),
      h('thead', {}, h('tr', {}, columns.map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, rows)));
}

/** A row of `table`: each cell is labelled with its column for the card layout. */
export function row(columns, cells, attributes) {
  return h('tr', attributes, cells.map((cell, i) => h('td', { 'data-label': columns[i] }, cell)));
}

/** A button for an action the control plane cannot do yet: focusable, explained, inert. */
export function notYet(label) {
  const id = 'why-' + label.toLowerCase().replace(/\W+/g, '-');
  return h('span', { class: 'not-yet' },
    h('button', {
      type: 'button', 'aria-disabled': 'true', title: 'not yet supported',
      'aria-describedby': id, onclick: (event) => event.preventDefault(),
    }, label),
    h('span', { id, class: 'hint' }, 'not yet supported'));
}

/** A status badge: `kind` is ok, warn, bad or idle. */
export function badge(kind, text) {
  return h('span', { class: `badge ${kind}` }, text);
}

/** Tells screen readers what changed. */
export function announce(message) {
  document.getElementById('announce').textContent = message;
}
