// The live map: one marker per active fire; a click shows its tiles with feedback buttons.
const map = L.map('map', {minZoom: 2, maxZoom: 18})  // its own limits: a layer's would override them
  .setView([56, -106], 4);
// The basemap comes through the console (the token stays on the server), from the configured zoom on;
// below it the map is a plain background.
fetch('/api/me').then(r => r.json()).then(me => {
  L.tileLayer('/basemap/{z}/{x}/{y}', {
    minZoom: me.basemap_min_zoom, maxZoom: 18, tileSize: 512, zoomOffset: -1,
    attribution: '© Mapbox © OpenStreetMap © Maxar',
  }).addTo(map);
});
// The fires: markers by stage, size, prediction and change (fire_markers.js), the review queue (review_queue.js).
const queue = new ReviewQueue((f) => openFire(f));
const fireLayer = new FireMarkers(map, {open: (f) => openFire(f), tooltip: (f) => tooltipOf(f),
                                        changed: (f) => queue.changed(f)});
fireLegend().addTo(map);
let fires = [];
let selected = null;
const agencySel = document.getElementById('filter-agency');
const stageSel = document.getElementById('filter-stage');
const predictionSel = document.getElementById('filter-prediction');
const disagreeBox = document.getElementById('filter-disagree');

// What the champion says of a fire's own tile: 'wildfire', 'nowildfire' or 'none' (not scored yet).
const predicted = (f) => f.prediction?.champion?.label ?? 'none';

function describe(p) {  // one model's answer on a tile, in words
  if (!p) return '';
  return `v${p.version}: ${p.label === 'wildfire' ? 'fire' : 'no fire'} (P ${p.wildfire.toFixed(2)})`;
}

// Every string from a feed or an event is text: a node built with textContent, never HTML.
function tooltipOf(f) {
  const said = f.prediction?.champion ? ` — champion ${describe(f.prediction.champion)}` +
    (f.prediction.challenger ? `, challenger ${describe(f.prediction.challenger)}` : '') : '';
  const div = document.createElement('div');
  div.className = 'fire-tooltip';
  div.textContent = `${f.name}: ${f.stage}, ${f.hectares ?? '?'} ha, since ${f.start_date ?? '?'} ` +
    `(${f.source}${f.response_type ? `, ${f.response_type}` : ''})${said}`;
  return div;
}

function setOptions(select, values) {
  const keep = select.value;
  select.replaceChildren(new Option('all', ''));
  for (const v of [...new Set(values)].sort()) select.append(new Option(v, v));
  select.value = values.includes(keep) ? keep : '';
}

function draw() {
  const shown = fires.filter(f => (!agencySel.value || f.agency === agencySel.value)
                               && (!stageSel.value || f.stage === stageSel.value)
                               && (!predictionSel.value || predicted(f) === predictionSel.value)
                               && (!disagreeBox.checked || f.prediction?.disagree));
  fireLayer.draw(shown);  // tooltips are DOM nodes (tooltipOf): Leaflet sets a string as HTML, a node as it is
  document.getElementById('fire-count').textContent = `${shown.length} active fire(s) shown`;
}

async function loadFires() {
  const data = await (await fetch('/api/fires')).json();
  fires = data.fires;
  queue.update(fires);
  document.getElementById('predictions-status').textContent = `predictions: ${data.predictions}`;
  if (selected) {
    const now = fires.find(f => f.fire_key === selected.fire_key);
    if (now) { selected = now; showFire(now); }
  }
  setOptions(agencySel, fires.map(f => f.agency));
  setOptions(stageSel, fires.map(f => f.stage));
  draw();
  if (!hashSeen) { hashSeen = true; openFromHash(); }
}

// A link per fire: #fire=<key> opens it and moves the map there (on load and on every hash change).
let hashSeen = false;
function openFire(f) {
  fireLayer.reveal(f);
  history.replaceState(null, '', `#fire=${encodeURIComponent(f.fire_key)}`);
  showFire(f);
}
function openFromHash() {
  const key = new URLSearchParams(location.hash.slice(1)).get('fire');
  const f = key === null ? null : fires.find(x => x.fire_key === key);
  if (f) openFire(f);
  else if (key !== null) {
    const panel = document.getElementById('panel');
    const p = document.createElement('p');
    p.className = 'error';
    p.textContent = `no active fire ${key.slice(0, 120)}: it may be out, or not reported yet`;
    panel.replaceChildren(p);
  }
}
window.addEventListener('hashchange', openFromHash);
document.addEventListener('since-changed', draw);

let shownKey = null;  // the fire whose panel is drawn, and whether it was drawn signed in
let shownAs = null;

async function showFire(f) {
  selected = f;
  const data = await (await fetch('/api/tiles?fire_key=' + encodeURIComponent(f.fire_key))).json();
  // an answer for a fire the operator has left since (a live update's refresh arriving late) draws nothing
  if (selected?.fire_key !== f.fire_key) return;
  const panel = document.getElementById('panel');
  if (shownKey !== f.fire_key || shownAs !== window.consoleUser) {
    // a new fire (or a sign-in): draw it afresh; otherwise keep the cards (notes, statuses) as they are
    shownKey = f.fire_key; shownAs = window.consoleUser;
    panel.replaceChildren();
    const h = document.createElement('h3');
    h.textContent = `${f.name} (${f.agency})`;
    const p = document.createElement('p');
    p.id = 'fire-summary';
    const hist = document.createElement('div');
    hist.id = 'fire-history';
    panel.append(h, p, hist);
  }
  if (data.sentinel2_grid && !document.getElementById('s2-grid')) {
    document.getElementById('fire-history').after(sentinel2Grid());
  }
  showHistory(f.fire_key);
  document.getElementById('fire-summary').textContent =
    `stage ${f.stage}, ${f.hectares ?? '?'} ha, started ${f.start_date ?? '?'}, source ${f.source}` +
    (f.response_type ? `, response ${f.response_type}` : '') +
    (data.tiles.length ? '' : ' — no tiles yet');
  for (const t of data.tiles) {
    let card = panel.querySelector(`.tile[data-tile-id="${CSS.escape(t.tile_id)}"]`);
    if (!card) {
      card = tileCard(t);
      const cell = gridCellOf(data.sentinel2_grid, t.tile_id);
      if (cell) cell.replaceChildren(card); else panel.append(card);
    }
    card.querySelector('.prediction').textContent = t.prediction?.problem
      ? `not scored: ${t.prediction.problem}`
      : t.prediction
      ? `champion ${describe(t.prediction.champion)}` +
        (t.prediction.challenger ? ` · challenger ${describe(t.prediction.challenger)}` : '') +
        (t.prediction.disagree ? ' — they disagree' : '')
      : 'not scored yet';
    card.classList.toggle('disagree', !!t.prediction?.disagree);
    const known = card.querySelector('.feedback-known');
    if (t.feedback) known.textContent = `labelled "${t.feedback.label}" by ${t.feedback.labelled_by}` +
      (t.feedback.note ? `: ${t.feedback.note}` : '');
  }
}

// A fire's stage and hectares over time, from fires.observed.v1 (text only).
async function showHistory(key) {
  const data = await (await fetch('/api/history?fire_key=' + encodeURIComponent(key))).json();
  const box = document.getElementById('fire-history');
  if (!box || shownKey !== key) return;
  const table = document.createElement('table');
  const head = table.insertRow();
  for (const h of ['observed', 'change', 'stage', 'ha']) head.insertCell().textContent = h;
  for (const o of data.history.slice(-12).reverse()) {
    const row = table.insertRow();
    row.insertCell().textContent = o.at.slice(0, 16).replace('T', ' ');
    row.insertCell().textContent = o.change;
    row.insertCell().textContent = o.stage;
    row.insertCell().textContent = o.hectares ?? '?';
  }
  const caption = document.createElement('div');
  caption.className = 'hint';
  caption.textContent = `history: ${data.history.length} observation(s)` +
    (data.history.length > 12 ? ' (the last 12 shown)' : '');
  box.replaceChildren(caption, table);
}

// A Sentinel-2 fire's pair: rows before and after the fire's start, columns true colour and SWIR; each
// cell holds its tile's card (or says none came). The tiles' cards find their cell by gridCellOf.
const GRID_ROWS = [['pre', 'before the fire\'s start'], ['post', 'after the start']];
const GRID_COLUMNS = [['sentinel2-true-colour', 'true colour'], ['sentinel2-swir', 'SWIR (B12, B8A, B4)']];

function sentinel2Grid() {
  const grid = document.createElement('div');
  grid.id = 's2-grid'; grid.className = 's2-grid';
  const head = (text, cls) => {
    const d = document.createElement('div');
    d.className = cls; d.textContent = text;
    return d;
  };
  grid.append(head('Sentinel-2', 's2-head'), ...GRID_COLUMNS.map(([, name]) => head(name, 's2-head')));
  for (const [row, rowName] of GRID_ROWS) {
    grid.append(head(rowName, 's2-row-head'));
    for (const [col] of GRID_COLUMNS) {
      const cell = head('no tile', 's2-cell hint');
      cell.dataset.row = row; cell.dataset.col = col;
      grid.append(cell);
    }
  }
  return grid;
}

function gridCellOf(grid, tileId) {
  if (!grid) return null;
  for (const [r, [row]] of GRID_ROWS.entries()) {
    for (const [c, [col]] of GRID_COLUMNS.entries()) {
      if (grid[r]?.[c] === tileId) {
        const cell = document.querySelector(`#s2-grid .s2-cell[data-row="${row}"][data-col="${col}"]`);
        cell?.classList.remove('hint');
        return cell;
      }
    }
  }
  return null;
}

const TILE_TITLES = {post: 'fire tile', pre: 'pre-fire tile (the same place)'};

function tileCard(t) {
  const im = t.imagery;
  const div = document.createElement('div');
  div.className = 'tile';
  div.dataset.tileId = t.tile_id;
  div.dataset.product = im.product;
  const title = document.createElement('div');
  title.textContent = TILE_TITLES[im.phase] ?? (t.label === 'wildfire' ? 'fire tile' : 'matched fire-free tile');
  const img = document.createElement('img');
  img.src = t.url; img.alt = `tile ${t.tile_id.slice(0, 12)} (${t.label}, ${im.product_title})`;
  const when = document.createElement('div');
  when.className = 'imagery';
  when.textContent = `${im.product_title} · ${im.when}`;
  const facts = document.createElement('div');
  facts.className = 'imagery-facts';
  facts.textContent = im.facts;
  const attr = document.createElement('div');
  attr.className = 'attribution'; attr.textContent = im.credits;
  const pred = document.createElement('div');
  pred.className = 'prediction';
  const fb = document.createElement('div');
  fb.className = 'feedback-known';
  div.append(title, img, when);
  if (im.facts) div.append(facts);
  if (im.not_visible) {
    const flag = document.createElement('div');
    flag.className = 'not-visible';
    flag.textContent = im.not_visible;
    div.append(flag);
  }
  div.append(attr, pred, fb);
  if (window.consoleUser) {
    const note = document.createElement('input');
    note.placeholder = 'note (optional)'; note.className = 'feedback-note';
    const status = document.createElement('span');
    status.className = 'feedback-status';
    const button = (text, label) => {
      const b = document.createElement('button');
      b.textContent = text; b.dataset.label = label;
      b.onclick = async () => {
        b.disabled = true;
        const r = await postJSON('/api/feedback', {tile_id: t.tile_id, label, note: note.value});
        status.textContent = r.ok ? 'thanks: feedback sent' : (await r.json()).error;
        b.disabled = false;
      };
      return b;
    };
    div.append(button('this is a fire', 'wildfire'), button('this is not a fire', 'nowildfire'), note, status);
  }
  return div;
}

agencySel.onchange = draw;
stageSel.onchange = draw;
predictionSel.onchange = draw;
disagreeBox.onchange = draw;
document.addEventListener('session-changed', () => { if (selected) showFire(selected); });
onStreamChange((kind) => {
  if (kind === 'fires' || kind === 'predictions' || kind === 'all') loadFires();
  if ((kind === 'tiles' || kind === 'predictions' || kind === 'all') && selected) showFire(selected);
});
