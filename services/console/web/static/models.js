// The models page: champion, challenger, every decision with its evidence; operators send commands.
let pending = null;

async function loadModels() {
  const m = await (await fetch('/api/models')).json();
  document.getElementById('champion').textContent = m.champion ?? 'none';
  document.getElementById('challenger').textContent = m.challenger ?? 'none';
  const body = document.querySelector('#decisions tbody');
  body.replaceChildren();
  for (const d of m.decisions) {
    const tr = document.createElement('tr');
    tr.dataset.commandId = d.command_id ?? '';
    const decision = d.refused ? `refused (${d.decision})` : d.decision;
    for (const v of [d.at, d.candidate_version, decision, d.evidence.n, d.evidence.p_value ?? '',
                     d.basis ?? '', d.requested_by ?? '', d.reason]) {
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
                   reason: document.getElementById('command-reason').value};
  const version = document.getElementById('command-version').value.trim();
  if (version) payload.version = version;
  const r = await fetch('/api/commands', {method: 'POST', headers: {'Content-Type': 'application/json'},
                                         body: JSON.stringify(payload)});
  const answer = await r.json();
  if (!r.ok) { status.textContent = `refused: ${answer.error}`; return; }
  pending = answer.command_id;
  status.dataset.commandId = pending;
  status.textContent = `sent ${answer.command} (${pending}); waiting for the gatekeeper's answer…`;
  loadModels();
};
document.addEventListener('session-changed', () => {
  document.getElementById('commands').hidden = !window.consoleUser;
});
onStreamChange((kind) => { if (kind === 'models' || kind === 'all') loadModels(); });
