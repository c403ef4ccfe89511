// The models page: champion, challenger and previous with their MLflow pages and plots, the shadow's
// progress against the gate's minimums, every decision with its evidence; operators send commands.
let pending = null;

const el = (tag, text, cls) => {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  if (cls) e.className = cls;
  return e;
};
// Links only to http(s) pages (an event's text could try javascript:); anything else is no link.
const safeHref = (url) => {
  try { return ['http:', 'https:'].includes(new URL(url, location.href).protocol) ? url : null; }
  catch { return null; }
};
const link = (text, url) => {
  const href = safeHref(url);
  if (!href) return el('span', text);
  const a = el('a', text); a.href = href; a.target = '_blank'; a.rel = 'noopener noreferrer';
  return a;
};
const num = (v, digits = 3) => (v === null || v === undefined) ? '?' : Number(v).toFixed(digits);
const signed = (v) => (v === null || v === undefined) ? '?' : (v >= 0 ? '+' : '') + Number(v).toFixed(3);

function bar(n, min) {
  const b = el('span', undefined, 'progress-bar');
  const fill = el('span');
  fill.style.width = `${Math.min(100, min ? 100 * n / min : 100)}%`;
  b.append(fill);
  return b;
}

function drawGate(gate) {
  const box = document.getElementById('gate');
  box.replaceChildren();
  if (!gate.available) { box.append(el('p', `Shadow progress unknown: ${gate.error}`, 'error')); return; }
  const min = gate.minimums;
  const shadows = gate.shadows ?? (gate.shadow ? [gate.shadow] : []);
  if (!shadows.length) {
    delete box.dataset.challenger;
    box.append(el('p', `No shadow in progress. The gate looks once a shadow has ${min.all ?? '?'} pairs, ` +
                       `${min.wildfire ?? '?'} of them fire tiles and ${min.nowildfire ?? '?'} fire-free.`));
    return;
  }
  box.dataset.challenger = shadows[0].challenger;
  for (const s of shadows) {  // one per model line: each says the product its models see
    const part = el('div', undefined, 'shadow');
    part.dataset.model = s.model_name;
    const sees = s.product_title ? ` (${s.product_title})` : (s.model_name ? ` (${s.model_name})` : '');
    part.append(el('h3', `Shadow${sees}: challenger ${s.challenger} against champion ${s.champion}, since ` +
                          new Date(s.started_at * 1000).toISOString().slice(0, 16).replace('T', ' ') + ' UTC'));
    for (const [key, name] of [['all', 'pairs'], ['wildfire', 'fire tiles'], ['nowildfire', 'fire-free tiles']]) {
      const row = el('div', undefined, 'gate-row');
      row.dataset.kind = key;
      row.append(el('span', `${name}: ${s.pairs[key]} / ${min[key] ?? '?'} `), bar(s.pairs[key], min[key]));
      part.append(row);
    }
    const agree = Object.entries(s.agreement).map(([src, v]) => `${src} ${(100 * v).toFixed(1)} %`).join(', ');
    if (agree) part.append(el('div', `champion and challenger agree on: ${agree}`));
    box.append(part);
  }
}

// Which product each model line sees: one sentence for the Mapbox line alone, a line per product when several.
function drawLines(m) {
  const pick = document.getElementById('command-product');  // the line a command is about: those known
  const keep = pick.value;
  if ([...pick.options].map(o => o.value).join() !== m.lines.map(l => l.product).join()) {
    pick.replaceChildren(...m.lines.map(l => new Option(l.product_title, l.product)));
    pick.value = m.lines.some(l => l.product === keep) ? keep : 'mapbox';
  }
  const list = document.getElementById('lines');
  const only = m.lines.length === 1 ? m.lines[0] : null;
  document.getElementById('model-sees').textContent =
    only ? `— ${only.model_name ?? m.model_name} sees ${only.product_title} imagery` : '';
  list.hidden = !!only;
  list.replaceChildren(...(only ? [] : m.lines.map(l => {
    const li = el('li', `${l.product_title} (model ${l.model_name ?? '?'}): champion ${l.champion ?? 'none'} · ` +
                        `challenger ${l.challenger ?? 'none'} · previous ${l.previous ?? 'none'}`);
    li.dataset.product = l.product;
    return li;
  })));
}

function roleCard(r) {
  const card = el('div', undefined, 'role');
  card.dataset.role = r.role;
  card.dataset.product = r.product;
  card.append(el('h3', `${r.role} — version ${r.version} — ${r.model_name} sees ${r.product_title}`));
  const links = el('div');
  links.append(link('MLflow model version', r.mlflow_version_url));
  if (r.mlflow_run_url) links.append(' · ', link('MLflow run', r.mlflow_run_url));
  card.append(links);
  const shown = ['val_accuracy', 'val_recall', 'val_precision', 'val_auc', 'test_accuracy', 'test_recall']
    .filter(k => k in r.metrics).map(k => `${k} ${num(r.metrics[k])}`);
  if (shown.length) card.append(el('div', shown.join(' · ')));
  for (const src of r.plots) {
    const img = el('img', undefined, 'plot');
    img.src = src; img.alt = src.split('/').pop().replace('.png', '').replace('_', ' ');
    img.onerror = () => img.replaceWith(el('div', `no ${img.alt} plot in this run's MLflow artifacts`, 'hint'));
    card.append(img);
  }
  if (!r.run_id) card.append(el('div', 'no models.candidates.v1 event for this version: no run, no plots', 'hint'));
  return card;
}

function evidenceText(e) {
  // against a champion: the difference and its interval; a first model (the floor): its own value's
  return e.deltas.map(d => {
    const conf = `${Math.round(100 * d.confidence)} %`;
    return d.champion === null
      ? `${d.metric}: ${num(d.challenger)} (${conf} [${num(d.ci_low)}, ${num(d.ci_high)}])`
      : `${d.metric}: ${num(d.champion)} → ${num(d.challenger)} (Δ ${signed(d.delta)}, ` +
        `${conf} [${signed(d.ci_low)}, ${signed(d.ci_high)}])`;
  }).join('; ');
}

async function loadModels() {
  const m = await (await fetch('/api/models')).json();
  document.getElementById('champion').textContent = m.champion ?? 'none';
  document.getElementById('challenger').textContent = m.challenger ?? 'none';
  document.getElementById('previous').textContent = m.previous ?? 'none';
  drawGate(m.gate);
  drawLines(m);
  const roles = document.getElementById('roles');
  const drawn = [...roles.children].map(c => `${c.dataset.product}:${c.dataset.role}:${c.dataset.version}`).join();
  const want = m.lines.flatMap(l => ['champion', 'challenger', 'previous'].filter(r => l.roles[r])
    .map(r => l.roles[r]));
  if (drawn !== want.map(r => `${r.product}:${r.role}:${r.version}`).join()) {  // redraw only on a change: plots stay
    roles.replaceChildren(...want.map(r => { const c = roleCard(r); c.dataset.version = r.version; return c; }));
  }
  const body = document.querySelector('#decisions tbody');
  body.replaceChildren();
  for (const d of m.decisions) {
    const tr = document.createElement('tr');
    tr.dataset.commandId = d.command_id ?? '';
    const decision = d.refused ? `refused (${d.decision})` : d.decision;
    const e = d.evidence;
    for (const v of [d.at.slice(0, 19).replace('T', ' '), d.product_title, d.candidate_version, decision, `${e.n} (${e.n_wildfire} / ${e.n_fire_free})`,
                     e.p_value === null ? '' : num(e.p_value, 4), evidenceText(e), d.basis ?? '', e.rule ?? '',
                     d.requested_by ?? '',
                     d.reason + (d.warnings?.length ? ` — warnings: ${d.warnings.join('; ')}` : '')]) {
      const td = document.createElement('td'); td.textContent = v; tr.append(td);
    }
    body.append(tr);
    if (pending && d.command_id === pending) {
      document.getElementById('command-status').textContent =
        `answer: ${decision} — version ${d.candidate_version} — ${d.reason}`;
      pending = null;
    }
  }
}

document.getElementById('command-send').onclick = async () => {
  const status = document.getElementById('command-status');
  const payload = {command: document.getElementById('command-kind').value,
                   reason: document.getElementById('command-reason').value,
                   product: document.getElementById('command-product').value};
  const version = document.getElementById('command-version').value.trim();
  if (version) payload.version = version;
  const r = await postJSON('/api/commands', payload);
  const answer = await r.json();
  if (!r.ok) { status.textContent = `refused: ${answer.error}`; return; }
  pending = answer.command_id;
  status.dataset.commandId = pending;
  status.textContent = `sent ${answer.command} for ${answer.model_name} (${pending}); ` +
    'waiting for the gatekeeper\'s answer…';
  loadModels();
};
// Hidden until a sign-in is known: the session may have been read before this script ran (its
// 'session-changed' then came first), so the current state is applied now as well.
const showCommands = () => { document.getElementById('commands').hidden = !window.consoleUser; };
document.addEventListener('session-changed', showCommands);
showCommands();
onStreamChange((kind) => { if (kind === 'models' || kind === 'all') loadModels(); });
