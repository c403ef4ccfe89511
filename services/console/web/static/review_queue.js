// What needs a person's look, and what changed: the review queue steps from fire to fire (new or grown
// since a time, disagreements, predictions near 0.5, tiles waiting for a person's label); "since" is the
// operator's last look (kept in this browser) or a chosen time. Times are the feed's own (snapshot_at),
// so a simulated season compares like with like. Every string from data is text.
/* exported ReviewQueue */

const LAST_LOOK = 'emberwatch.lastLook';  // the newest feed time this browser has shown
const UNSURE = 0.15;  // |P(fire) - 0.5| below this: the champion is unsure

class ReviewQueue {
  // open(f): open a fire (its panel, the map moved to it)
  constructor(open) {
    this.open = open;
    this.fires = [];
    this.items = [];
    this.index = -1;
    this.since = localStorage.getItem(LAST_LOOK) || null;
    this.newest = null;
    this._build();
    const remember = () => { if (this.newest) localStorage.setItem(LAST_LOOK, this.newest); };
    window.addEventListener('pagehide', remember);
    document.addEventListener('visibilitychange', () => { if (document.hidden) remember(); });
  }

  // 'new' | 'grown' | null: what changed in a fire since the chosen time
  changed(f) {
    if (!this.since) return null;
    if (f.first_seen && f.first_seen > this.since) return 'new';
    if (f.grown_at && f.grown_at > this.since) return 'grown';
    return null;
  }

  reasons(f) {  // why a fire is in the queue, most pressing first
    const out = [];
    if (f.prediction?.disagree) out.push('disagree');
    const p = f.prediction?.champion?.wildfire;
    if (typeof p === 'number' && Math.abs(p - 0.5) < UNSURE) out.push('unsure');
    if (f.feedback_pending) out.push('feedback');
    const c = this.changed(f);
    if (c) out.push(c);
    return out;
  }

  _build() {
    const box = document.getElementById('review');
    const title = document.createElement('strong');
    title.textContent = 'Review queue';
    this.kind = document.createElement('select');
    this.kind.id = 'review-kind';
    for (const [value, text] of [['all', 'everything that needs a look'], ['new', 'new or grown since'],
                                 ['disagree', 'champion and challenger disagree'], ['unsure', 'predictions near 0.5'],
                                 ['feedback', 'tiles waiting for a label']]) this.kind.append(new Option(text, value));
    this.sinceInput = document.createElement('input');
    this.sinceInput.type = 'datetime-local';
    this.sinceInput.id = 'review-since';
    this.sinceInput.title = 'since (feed time, UTC); empty: your last look';
    if (this.since) this.sinceInput.value = this.since.slice(0, 16);
    this.prev = document.createElement('button');
    this.prev.id = 'review-prev'; this.prev.textContent = '◀ previous';
    this.next = document.createElement('button');
    this.next.id = 'review-next'; this.next.textContent = 'next ▶';
    this.status = document.createElement('span');
    this.status.id = 'review-status';
    box.append(title, this.kind, ' since ', this.sinceInput, this.prev, this.next, this.status);
    this.kind.onchange = () => { this.index = -1; this.refresh(); };
    this.sinceInput.onchange = () => {
      this.since = this.sinceInput.value ? `${this.sinceInput.value}:00+00:00` : localStorage.getItem(LAST_LOOK);
      this.index = -1;
      this.refresh();
      document.dispatchEvent(new Event('since-changed'));
    };
    this.prev.onclick = () => this.step(-1);
    this.next.onclick = () => this.step(1);
  }

  // The fires changed (a fetch): rebuild the queue, keeping the current fire where it still is.
  update(fires) {
    this.fires = fires;
    for (const f of fires) if (!this.newest || f.snapshot_at > this.newest) this.newest = f.snapshot_at;
    this.refresh();
  }

  refresh() {
    const kind = this.kind.value;
    const current = this.items[this.index]?.fire_key;
    const order = {disagree: 0, unsure: 1, feedback: 2, new: 3, grown: 4};
    this.items = this.fires
      .map(f => ({f, why: this.reasons(f)}))
      .filter(({why}) => kind === 'all' ? why.length > 0
                         : kind === 'new' ? why.includes('new') || why.includes('grown') : why.includes(kind))
      .sort((a, b) => (order[a.why[0]] - order[b.why[0]]) || ((b.f.hectares ?? 0) - (a.f.hectares ?? 0)))
      .map(({f, why}) => ({...f, why}));
    this.index = current ? this.items.findIndex(f => f.fire_key === current) : -1;
    this._show();
  }

  step(by) {
    if (!this.items.length) return;
    this.index = this.index < 0 ? (by > 0 ? 0 : this.items.length - 1)
      : (this.index + by + this.items.length) % this.items.length;
    this._show();
    const f = this.items[this.index];
    this.open(this.fires.find(x => x.fire_key === f.fire_key) || f);
  }

  _show() {
    const n = this.items.length;
    this.prev.disabled = this.next.disabled = n === 0;
    const words = {disagree: 'models disagree', unsure: 'near 0.5', feedback: 'tiles to label', new: 'new',
                   grown: 'grown'};
    const f = this.items[this.index];
    this.status.dataset.fireKey = f ? f.fire_key : '';
    this.status.textContent = n === 0 ? 'nothing to review'
      : f ? `${this.index + 1} of ${n}: ${f.name} (${f.why.map(w => words[w]).join(', ')})`
      : `${n} fire(s) to review`;
  }
}
