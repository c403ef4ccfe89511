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
const markers = L.layerGroup().addTo(map);
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
  markers.clearLayers();
  const shown = fires.filter(f => (!agencySel.value || f.agency === agencySel.value)
                               && (!stageSel.value || f.stage === stageSel.value)
                               && (!predictionSel.value || predicted(f) === predictionSel.value)
                               && (!disagreeBox.checked || f.prediction?.disagree));
  for (const f of shown) {
    const m = L.marker([f.lat, f.lon], {title: f.name});
    m.bindTooltip(tooltipOf(f));  // a DOM node: Leaflet sets a string as HTML, a node as it is
    m.on('click', () => showFire(f));
    m.addTo(markers);
    const el = m.getElement();
    el.dataset.fireKey = f.fire_key;
    el.dataset.prediction = predicted(f);
    el.classList.add('fire-marker', `pred-${predicted(f)}`);
    if (f.prediction?.disagree) el.classList.add('disagree');
  }
  document.getElementById('fire-count').textContent = `${shown.length} active fire(s) shown`;
}

async function loadFires() {
  const data = await (await fetch('/api/fires')).json();
  fires = data.fires;
  document.getElementById('predictions-status').textContent = `predictions: ${data.predictions}`;
  if (selected) {
    const now = fires.find(f => f.fire_key === selected.fire_key);
    if (now) { selected = now; showFire(now); }
  }
  setOptions(agencySel, fires.map(f => f.agency));
  setOptions(stageSel, fires.map(f => f.stage));
  draw();
}

let shownKey = null;  // the fire whose panel is drawn, and whether it was drawn signed in
let shownAs = null;

async function showFire(f) {
  selected = f;
  const data = await (await fetch('/api/tiles?fire_key=' + encodeURIComponent(f.fire_key))).json();
  const panel = document.getElementById('panel');
  if (shownKey !== f.fire_key || shownAs !== window.consoleUser) {
    // a new fire (or a sign-in): draw it afresh; otherwise keep the cards (notes, statuses) as they are
    shownKey = f.fire_key; shownAs = window.consoleUser;
    panel.replaceChildren();
    const h = document.createElement('h3');
    h.textContent = `${f.name} (${f.agency})`;
    const p = document.createElement('p');
    p.id = 'fire-summary';
    panel.append(h, p);
  }
  document.getElementById('fire-summary').textContent =
    `stage ${f.stage}, ${f.hectares ?? '?'} ha, started ${f.start_date ?? '?'}, source ${f.source}` +
    (f.response_type ? `, response ${f.response_type}` : '') +
    (data.tiles.length ? '' : ' — no tiles yet');
  for (const t of data.tiles) {
    let card = panel.querySelector(`.tile[data-tile-id="${CSS.escape(t.tile_id)}"]`);
    if (!card) { card = tileCard(t, data.attribution); panel.append(card); }
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

function tileCard(t, attribution) {
  const div = document.createElement('div');
  div.className = 'tile';
  div.dataset.tileId = t.tile_id;
  const title = document.createElement('div');
  title.textContent = t.label === 'wildfire' ? 'fire tile' : 'matched fire-free tile';
  const img = document.createElement('img');
  img.src = t.url; img.alt = `tile ${t.tile_id.slice(0, 12)} (${t.label})`;
  const attr = document.createElement('div');
  attr.className = 'attribution'; attr.textContent = attribution;
  const pred = document.createElement('div');
  pred.className = 'prediction';
  const fb = document.createElement('div');
  fb.className = 'feedback-known';
  div.append(title, img, attr, pred, fb);
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
