// Fire markers an operator reads at a glance: colour and shape by stage of control (the Canadian fire
// maps' red / yellow / green, in hues safe for colour-blind readers), size by hectares (log scale), a
// ring where the champion says "fire", a badge where champion and challenger disagree, a halo on what
// changed since the operator's last look; clusters at low zoom; a legend. Every string from a feed or
// an event is text (DOM nodes, textContent), never HTML.
/* exported FireMarkers, FIRE_STAGES, stageOf, markerSize */

const FIRE_STAGES = {  // Okabe-Ito hues: vermillion, orange, bluish green; grey for anything else
  OC: {label: 'out of control', colour: '#d55e00', shape: 'triangle', rank: 0},
  BH: {label: 'being held', colour: '#e69f00', shape: 'diamond', rank: 1},
  UC: {label: 'under control', colour: '#009e73', shape: 'circle', rank: 2},
  other: {label: 'other or not reported', colour: '#8c8c8c', shape: 'square', rank: 3},
};
const SVG_NS = 'http://www.w3.org/2000/svg';

function stageOf(f) {  // OC, BH, UC, or 'other' (free text from an agency, none reported)
  const s = String(f.stage ?? '').trim().toUpperCase();
  return ['OC', 'BH', 'UC'].includes(s) ? s : 'other';
}

function markerSize(hectares) {  // px: 14 for a spot fire, 20 at 100 ha, 26 at 10,000 ha, 34 at most
  const ha = Number.isFinite(hectares) && hectares > 0 ? hectares : 0;
  return Math.round(Math.min(34, 14 + 3 * Math.log10(1 + ha)));
}

function svg(tag, attrs) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  return el;
}

function shapeOf(stage) {  // in a 0..100 box, inside the prediction ring
  const colour = FIRE_STAGES[stage].colour;
  const common = {fill: colour, stroke: '#222', 'stroke-width': 5, class: 'fire-shape'};
  switch (FIRE_STAGES[stage].shape) {
    case 'triangle': return svg('polygon', {...common, points: '50,14 86,80 14,80'});
    case 'diamond': return svg('polygon', {...common, points: '50,12 88,50 50,88 12,50'});
    case 'circle': return svg('circle', {...common, cx: 50, cy: 50, r: 32});
    default: return svg('rect', {...common, x: 20, y: 20, width: 60, height: 60});
  }
}

// The symbol of a fire (also drawn in the legend): shape, ring for the champion's "fire", badge for disagreement.
function fireSymbol(stage, size, {prediction = 'none', disagree = false} = {}) {
  const root = svg('svg', {viewBox: '0 0 100 100', width: size, height: size, 'aria-hidden': 'true'});
  if (prediction === 'wildfire') root.append(svg('circle', {cx: 50, cy: 50, r: 46, fill: 'none', stroke: '#000',
                                                            'stroke-width': 8, class: 'ring-wildfire'}));
  if (prediction === 'nowildfire') root.append(svg('circle', {cx: 50, cy: 50, r: 46, fill: 'none', stroke: '#000',
                                                              'stroke-width': 4, 'stroke-dasharray': '8 10',
                                                              class: 'ring-nowildfire'}));
  root.append(shapeOf(stage));
  if (disagree) {
    const badge = svg('g', {class: 'badge-disagree'});
    badge.append(svg('circle', {cx: 80, cy: 20, r: 19, fill: '#cc79a7', stroke: '#fff', 'stroke-width': 5}));
    const mark = svg('text', {x: 80, y: 31, 'text-anchor': 'middle', 'font-size': 32, 'font-weight': 'bold',
                              fill: '#fff'});
    mark.textContent = '!';
    badge.append(mark);
    root.append(badge);
  }
  return root;
}

// A marker's icon, built only when the marker is drawn (a cluster draws none of its members).
const FireIcon = L.DivIcon.extend({
  createIcon(old) {
    const div = L.DivIcon.prototype.createIcon.call(this, old);
    const {fire: f, prediction, disagree, stage, size} = this.options.fire;
    div.replaceChildren(fireSymbol(stage, size, {prediction, disagree}));
    div.dataset.fireKey = f.fire_key;
    div.dataset.prediction = prediction;
    div.dataset.stage = stage;
    div.dataset.size = String(size);
    div.setAttribute('role', 'button');
    div.setAttribute('aria-label', `${f.name}: ${FIRE_STAGES[stage].label}, ${f.hectares ?? '?'} ha` +
      (prediction === 'wildfire' ? ', champion says fire' : prediction === 'nowildfire' ? ', champion says no fire' : '') +
      (disagree ? ', the models disagree' : ''));
    return div;
  },
});

function clusterIcon(cluster) {  // the count, in the colour of the most urgent stage among its fires
  const children = cluster.getAllChildMarkers();
  let worst = 'other';
  for (const m of children) if (FIRE_STAGES[m.fireStage].rank < FIRE_STAGES[worst].rank) worst = m.fireStage;
  const n = children.length;
  const div = document.createElement('div');
  div.className = `fire-cluster-count stage-${worst}`;
  div.textContent = n >= 1000 ? `${Math.round(n / 100) / 10}k` : String(n);
  const size = n < 10 ? 30 : n < 100 ? 36 : n < 1000 ? 42 : 48;
  return L.divIcon({html: div, className: `fire-cluster stage-${worst}`, iconSize: [size, size]});
}

// The layer of fire markers. options: open(f) on click or Enter; tooltip(f) -> a DOM node;
// changed(f) -> 'new' | 'grown' | null (the halo).
class FireMarkers {
  constructor(map, {open, tooltip, changed = () => null}) {
    this.map = map;
    this.open = open; this.tooltip = tooltip; this.changed = changed;
    this.byKey = new Map();  // fire_key -> {marker, sig}
    this.group = L.markerClusterGroup({
      maxClusterRadius: (zoom) => (zoom < 5 ? 40 : 30), disableClusteringAtZoom: 8, chunkedLoading: true,
      showCoverageOnHover: false, spiderfyOnMaxZoom: true, iconCreateFunction: clusterIcon,
    }).addTo(map);
    this.selectedKey = null;
  }

  _signature(f) {
    return [f.lat, f.lon, f.name, f.stage, f.hectares, f.prediction?.champion?.label, !!f.prediction?.disagree,
            this.changed(f), f.fire_key === this.selectedKey].join('|');
  }

  _marker(f) {
    const stage = stageOf(f);
    const prediction = f.prediction?.champion?.label ?? 'none';
    const disagree = !!f.prediction?.disagree;
    const size = markerSize(f.hectares);
    const change = this.changed(f);
    const classes = ['fire-marker', `stage-${stage}`, `pred-${prediction}`];
    if (disagree) classes.push('disagree');
    if (change) classes.push('changed', `changed-${change}`);
    if (f.fire_key === this.selectedKey) classes.push('selected');
    const box = size + 8;  // room for the halo
    const icon = new FireIcon({className: classes.join(' '), iconSize: [box, box],
                               fire: {fire: f, prediction, disagree, stage, size: box}});
    const m = L.marker([f.lat, f.lon], {icon, keyboard: true, title: f.name, riseOnHover: true,
                                        zIndexOffset: (3 - FIRE_STAGES[stage].rank) * 100});
    m.fireData = f;  // (not m.fire: that is Leaflet's event method)
    m.fireStage = stage;
    m.bindTooltip(() => this.tooltip(m.fireData), {direction: 'top', offset: [0, -box / 2]});
    m.on('click', () => this.open(m.fireData));
    m.on('keydown', (e) => {  // a focused marker (Tab) opens with Enter or Space
      if (e.originalEvent.key === 'Enter' || e.originalEvent.key === ' ') {
        e.originalEvent.preventDefault();
        this.open(m.fireData);
      }
    });
    return m;
  }

  // Draw exactly these fires: markers whose fire did not change are kept (a live update redraws one).
  // A focused marker that is redrawn keeps the focus (a keyboard user is not thrown out of the map).
  draw(fires) {
    const focusedKey = document.activeElement?.closest?.('.fire-marker')?.dataset.fireKey ?? null;
    const keep = new Set();
    const add = [];
    const remove = [];
    for (const f of fires) {
      keep.add(f.fire_key);
      const sig = this._signature(f);
      const have = this.byKey.get(f.fire_key);
      if (have && have.sig === sig) { have.marker.fireData = f; continue; }
      if (have) remove.push(have.marker);
      const marker = this._marker(f);
      this.byKey.set(f.fire_key, {marker, sig});
      add.push(marker);
    }
    for (const [key, have] of this.byKey) {
      if (!keep.has(key)) { remove.push(have.marker); this.byKey.delete(key); }
    }
    if (remove.length) this.group.removeLayers(remove);
    if (add.length) this.group.addLayers(add);
    if (focusedKey !== null && document.activeElement?.closest?.('.fire-marker')?.dataset.fireKey !== focusedKey) {
      this.byKey.get(focusedKey)?.marker.getElement()?.focus({preventScroll: true});
    }
    document.getElementById('map').dataset.firesDrawn = String(this.byKey.size);
  }

  // Show a fire: move the map to it (out of its cluster), mark it selected, focus it.
  reveal(f, zoom = 8) {
    this.selectedKey = f.fire_key;
    const have = this.byKey.get(f.fire_key);
    this.map.setView([f.lat, f.lon], Math.max(this.map.getZoom(), zoom), {animate: false});
    if (!have) return;
    this.group.zoomToShowLayer(have.marker, () => {
      for (const el of this.map.getContainer().querySelectorAll('.fire-marker.selected')) el.classList.remove('selected');
      const el = have.marker.getElement();
      if (el) { el.classList.add('selected'); el.focus({preventScroll: true}); }
    });
  }
}

// The legend: what colour, shape, size, ring, badge, halo and cluster mean.
function fireLegend() {
  const control = L.control({position: 'topright'});  // over the Arctic at the opening view
  control.onAdd = () => {
    const box = L.DomUtil.create('div', 'fire-legend');
    box.id = 'legend';
    const h = document.createElement('strong');
    h.textContent = 'Stage of control';
    box.append(h);
    const row = (symbol, text, cls) => {
      const r = document.createElement('div');
      r.className = `legend-row ${cls || ''}`;
      const t = document.createElement('span');
      t.textContent = text;
      r.append(symbol, t);
      box.append(r);
    };
    for (const [key, s] of Object.entries(FIRE_STAGES)) {
      row(fireSymbol(key, 18), `${key === 'other' ? '' : `${key} `}${s.label}`, `legend-stage-${key}`);
    }
    const sizes = document.createElement('div');
    sizes.className = 'legend-row legend-sizes';
    for (const ha of [1, 100, 10000]) sizes.append(fireSymbol('other', markerSize(ha)));
    const sizeText = document.createElement('span');
    sizeText.textContent = 'size: 1 · 100 · 10,000 ha';
    sizes.append(sizeText);
    box.append(sizes);
    row(fireSymbol('other', 18, {prediction: 'wildfire'}), 'ring: champion says fire', 'legend-ring');
    row(fireSymbol('other', 18, {prediction: 'nowildfire'}), 'dashed ring: champion says no fire', 'legend-ring-no');
    row(fireSymbol('other', 18, {disagree: true}), 'badge: champion and challenger disagree', 'legend-disagree');
    const halo = document.createElement('span');
    halo.className = 'legend-halo';
    row(halo, 'halo: new or grown since your last look', 'legend-changed');
    const cluster = document.createElement('span');
    cluster.className = 'fire-cluster-count stage-OC legend-cluster';
    cluster.textContent = '12';
    row(cluster, 'cluster: fires nearby, coloured by the most urgent', 'legend-clusters');
    L.DomEvent.disableClickPropagation(box);
    return box;
  };
  return control;
}
