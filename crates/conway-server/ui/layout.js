// A layered layout for a directed graph (after Sugiyama): callers in earlier layers than
// what they call, and an order within each layer that keeps edges from crossing.

/** Edges that close a cycle (found by a depth-first search from the sources). */
function backEdges(names, out) {
  const state = new Map();
  const back = new Set();
  const visit = (name) => {
    state.set(name, 'open');
    for (const next of out.get(name)) {
      if (state.get(next) === 'open') back.add(`${name}\n${next}`);
      else if (!state.has(next)) visit(next);
    }
    state.set(name, 'done');
  };
  for (const name of names) if (!state.has(name)) visit(name);
  return back;
}

/** Each node's layer: the longest path of forward edges that reaches it. */
function depths(names, forward) {
  const depth = new Map();
  const visit = (name) => {
    if (depth.has(name)) return depth.get(name);
    depth.set(name, 0);
    const callers = forward.filter((e) => e.to === name).map((e) => visit(e.from) + 1);
    depth.set(name, Math.max(0, ...callers));
    return depth.get(name);
  };
  names.forEach(visit);
  return depth;
}

/** Sorts a layer by the mean position of each node's neighbours in `fixed` layers. */
function sortByNeighbours(layer, neighbours, position) {
  const key = new Map(layer.map((name, i) => {
    const around = neighbours(name).filter((n) => position.has(n)).map((n) => position.get(n));
    return [name, around.length ? around.reduce((a, b) => a + b, 0) / around.length : i / layer.length];
  }));
  layer.sort((a, b) => key.get(a) - key.get(b));
}

/**
 * Layers of `names` (callers first) for `edges` (`{from, to}`); within a layer, an order
 * with few crossings. Sources come first in `names` order; self-calls are ignored.
 */
export function layered(names, edges) {
  const links = edges.filter((e) => e.from !== e.to);
  const out = new Map(names.map((n) => [n, []]));
  for (const e of links) out.get(e.from).push(e.to);
  const called = new Set(links.map((e) => e.to));
  const order = [...names.filter((n) => !called.has(n)), ...names.filter((n) => called.has(n))];
  const back = backEdges(order, out);
  const forward = links.filter((e) => !back.has(`${e.from}\n${e.to}`));
  const depth = depths(order, forward);
  const layers = [];
  for (const name of order) (layers[depth.get(name)] ||= []).push(name);

  const callers = (name) => forward.filter((e) => e.to === name).map((e) => e.from);
  const callees = (name) => forward.filter((e) => e.from === name).map((e) => e.to);
  const position = new Map();
  const place = (layer) => layer.forEach((n, i) => position.set(n, (i + 0.5) / layer.length));
  for (let sweep = 0; sweep < 4; sweep += 1) {
    const down = sweep % 2 === 0;
    const sequence = down ? layers : [...layers].reverse();
    position.clear();
    place(sequence[0]);
    for (const layer of sequence.slice(1)) {
      sortByNeighbours(layer, down ? callers : callees, position);
      place(layer);
    }
  }
  return layers;
}
