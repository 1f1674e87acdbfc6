// The interactive flow graph of a trace (Cytoscape.js, bundled). Positions come precomputed from the server
// (a preset layout: columns by hop), so a 10,000-node graph renders without a force layout on the main thread.
import cytoscape from 'cytoscape';

const COLOURS = {
  seed: '#b00020', pass: '#5f6b7a', holding: '#8a5a00', stopped: '#6b6b6b',
  exchange: '#0b6e4f', mixer: '#7b2cbf', sanction: '#000000', restricted: '#444444', sink: '#0b6e4f',
};

export function colour(n) {
  if (n.kind === 'sink') return COLOURS[n.category] || COLOURS.sink;
  return COLOURS[n.kind] || COLOURS.pass;
}

// Mirror x for right-to-left pages: the flow reads from the start side.
export const BIG = 300;  // above: no labels until selected, straight edges, elements added in chunks
export const CHUNK = 500;  // elements per main-thread task while a big graph is added

export function elements(graph, rtl) {
  const big = graph.nodes.length > BIG;
  const nodes = graph.nodes.map((n) => ({
    group: 'nodes',
    data: { id: n.id, kind: n.kind, colour: colour(n), label: big ? '' : (n.label || short(n.id)), name: n.label || short(n.id), raw: n },
    position: { x: rtl ? -n.x : n.x, y: n.y },
  }));
  const edges = graph.edges.map((e, i) => ({
    group: 'edges', data: { id: 'e' + i, source: e.source, target: e.target, kind: e.kind, raw: e },
  }));
  return nodes.concat(edges);
}

export function short(id) {
  return id.length > 16 ? id.slice(0, 8) + '…' + id.slice(-6) : id;
}

// Draw `graph` into `container`; resolves with the Cytoscape instance once the first frame is painted.
// Big graphs are added in chunks of CHUNK elements, one task each, so the page keeps answering input.
export async function drawGraph(container, graph, { rtl = false, onOpen = null, layout = 'preset' } = {}) {
  const big = graph.nodes.length > BIG;
  const els = elements(graph, rtl);
  const cy = cytoscape({
    container,
    elements: big ? [] : els,
    layout: layout === 'preset' ? { name: 'preset', fit: true, padding: 20 } : { name: layout, animate: false, fit: true },
    textureOnViewport: big, hideEdgesOnViewport: big, motionBlur: false, pixelRatio: big ? 1 : 'auto',
    minZoom: 0.02, maxZoom: 4,
    style: [
      { selector: 'node', style: { 'background-color': 'data(colour)', width: 14, height: 14, label: 'data(label)',
        'font-size': 9, 'min-zoomed-font-size': 7, color: '#111', 'text-valign': 'bottom', 'text-margin-y': 3 } },
      { selector: 'node[kind = "seed"]', style: { shape: 'diamond', width: 20, height: 20 } },
      { selector: 'node[kind = "sink"]', style: { shape: 'round-rectangle', width: 18, height: 18 } },
      { selector: 'edge', style: { width: big ? 1 : 1.5, 'line-color': '#9aa5b1', 'curve-style': big ? 'haystack' : 'bezier',
        'target-arrow-shape': big ? 'none' : 'triangle', 'target-arrow-color': '#9aa5b1' } },
      { selector: 'edge[kind = "summary"]', style: { 'line-style': 'dashed' } },
      { selector: ':selected', style: { 'border-width': 3, 'border-color': '#ffbf00', label: 'data(name)' } },
    ],
  });
  if (big) {
    for (let i = 0; i < els.length; i += CHUNK) {
      cy.add(els.slice(i, i + CHUNK));
      await new Promise((r) => setTimeout(r, 0));
    }
    if (layout === 'preset') cy.fit(undefined, 20); else cy.layout({ name: layout, animate: false, fit: true }).run();
  }
  if (onOpen) cy.on('tap', 'node', (ev) => onOpen(ev.target.data('raw')));
  container.addEventListener('keydown', (ev) => {
    const p = cy.pan(); const step = 60;
    const keys = { ArrowLeft: [step, 0], ArrowRight: [-step, 0], ArrowUp: [0, step], ArrowDown: [0, -step] };
    if (keys[ev.key]) { cy.pan({ x: p.x + keys[ev.key][0], y: p.y + keys[ev.key][1] }); ev.preventDefault(); }
    else if (ev.key === '+' || ev.key === '=') { cy.zoom({ level: cy.zoom() * 1.25, renderedPosition: mid(container) }); ev.preventDefault(); }
    else if (ev.key === '-') { cy.zoom({ level: cy.zoom() / 1.25, renderedPosition: mid(container) }); ev.preventDefault(); }
    else if (ev.key === '0') { cy.fit(undefined, 20); ev.preventDefault(); }
  });
  return new Promise((resolve) => {
    let done = false;
    const finish = () => { if (!done) { done = true; requestAnimationFrame(() => resolve(cy)); } };
    cy.one('render', finish);
    setTimeout(finish, 5000);
  });
}

function mid(el) { return { x: el.clientWidth / 2, y: el.clientHeight / 2 }; }
