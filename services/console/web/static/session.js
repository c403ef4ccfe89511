// Sign-in state shared by both pages: viewers read everything; operators may write.
window.consoleUser = null;
// Every change is a same-origin JSON POST: the console refuses any other kind (CSRF).
function postJSON(url, body) {
  return fetch(url, {method: 'POST', headers: {'Content-Type': 'application/json'},
                     body: JSON.stringify(body), credentials: 'same-origin'});
}
async function refreshSession() {
  const me = await (await fetch('/api/me')).json();
  window.consoleUser = me.user;
  const el = document.getElementById('session');
  el.textContent = '';
  if (me.user) {
    el.append(`signed in as ${me.user} `);
    const out = document.createElement('button');
    out.textContent = 'Sign out';
    out.onclick = async () => { await postJSON('/api/signout', {}); refreshSession(); };
    el.append(out);
    document.getElementById('signin').hidden = true;
  } else {
    el.append('viewer (read-only)');
    document.getElementById('signin').hidden = !me.signin_enabled;
  }
  document.dispatchEvent(new Event('session-changed'));
}
document.getElementById('signin-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  // the secret names its operator (name:…): nobody types who they are
  const secret = document.getElementById('signin-secret').value;
  const r = await postJSON('/api/signin', {secret});
  document.getElementById('signin-secret').value = '';
  document.getElementById('signin-error').textContent = r.ok ? '' : (await r.json()).error;
  refreshSession();
});
function onStreamChange(handler) {
  // A burst of events (a replay, a big snapshot) becomes one refetch per kind every 250 ms at most.
  const due = new Set();
  let timer = null;
  const later = (kind) => {
    due.add(kind);
    if (timer === null) timer = setTimeout(() => {
      timer = null;
      const kinds = [...due]; due.clear();
      for (const k of kinds) handler(k);
    }, 250);
  };
  const source = new EventSource('/api/stream');
  source.addEventListener('changed', (e) => later(JSON.parse(e.data).kind));
  source.addEventListener('hello', () => handler('all'));  // (re)connected: refetch everything now
  return source;
}
refreshSession();
