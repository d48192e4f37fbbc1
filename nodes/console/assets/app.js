// Codis console: the page served by codis-fe (many products) and by one product's dashboard.
// One plain script, no framework and no build step. It polls GET /topom, renders the reply in
// place (forms are never re-rendered, tables swap their tbody), and changes the cluster with
// PUT /api/topom/<verb>/<xauth>/<args>, the xauth derived from the product's password.
'use strict';

/* ─────────────────────────── SHA-256 ───────────────────────────
 * Why by hand: crypto.subtle only exists in secure contexts, and this page is often opened over
 * plain http on a LAN address. Only used on short strings, so speed does not matter. */

const SHA256_K = [
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
];

function rotr(x, n) {
  return (x >>> n) | (x << (32 - n));
}

/** Hex SHA-256 of the UTF-8 bytes of `text`. */
function sha256Hex(text) {
  const bytes = new TextEncoder().encode(text);
  const padded = new Uint8Array(Math.ceil((bytes.length + 9) / 64) * 64);
  padded.set(bytes);
  padded[bytes.length] = 0x80;
  const view = new DataView(padded.buffer);
  const bits = bytes.length * 8;
  view.setUint32(padded.length - 8, Math.floor(bits / 0x100000000));
  view.setUint32(padded.length - 4, bits >>> 0);

  const h = new Uint32Array([
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
  ]);
  const w = new Uint32Array(64);
  for (let off = 0; off < padded.length; off += 64) {
    for (let i = 0; i < 16; i++) w[i] = view.getUint32(off + i * 4);
    for (let i = 16; i < 64; i++) {
      const s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >>> 3);
      const s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >>> 10);
      w[i] = (w[i - 16] + s0 + w[i - 7] + s1) >>> 0;
    }
    let [a, b, c, d, e, f, g, k] = h;
    for (let i = 0; i < 64; i++) {
      const t1 = (k + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + SHA256_K[i] + w[i]) >>> 0;
      const t2 = ((rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) >>> 0;
      k = g; g = f; f = e; e = (d + t1) >>> 0;
      d = c; c = b; b = a; a = (t1 + t2) >>> 0;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += k;
  }
  return Array.from(h, (x) => x.toString(16).padStart(8, '0')).join('');
}

/** Codis' xauth: the first 32 hex digits of sha256("Codis-XAuth-<product>-<password>"). */
function xauthFor(product, password) {
  return sha256Hex(`Codis-XAuth-${product}-${password}`).slice(0, 32);
}

/* ─────────────────────────── Small helpers ─────────────────────────── */

const $ = (selector, root = document) => root.querySelector(selector);
const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));

/** Every string from the API goes through this before it reaches innerHTML. */
function esc(value) {
  return String(value ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
}

const INT_FORMAT = new Intl.NumberFormat('en-US');

function fmtInt(n) {
  return Number.isFinite(n) ? INT_FORMAT.format(Math.round(n)) : '–';
}

function fmtBytes(n) {
  if (!Number.isFinite(n)) return '–';
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (Math.abs(n) >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${i === 0 ? Math.round(n) : n.toFixed(n < 10 ? 2 : 1)} ${units[i]}`;
}

/** 1234 → "1.2k": for chart labels where space is short. */
function fmtCompact(n) {
  const trim = (s) => s.replace(/\.0$/, '');
  if (n >= 1e6) return `${trim((n / 1e6).toFixed(1))}M`;
  if (n >= 1e3) return `${trim((n / 1e3).toFixed(1))}k`;
  return trim(n.toFixed(n % 1 ? 1 : 0));
}

function fmtDuration(ms) {
  if (!Number.isFinite(ms)) return '–';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s < 10 ? s.toFixed(1) : Math.round(s)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.round(s % 60)} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

function fmtClock(t, withSeconds = true) {
  const opts = { hour: '2-digit', minute: '2-digit', hour12: false };
  if (withSeconds) opts.second = '2-digit';
  return new Date(t).toLocaleTimeString('en-GB', opts);
}

/** [0,1,2,5,7,8] → ["0–2", "5", "7–8"]. */
function compressRanges(numbers) {
  const sorted = [...numbers].sort((a, b) => a - b);
  const out = [];
  for (let i = 0; i < sorted.length; i++) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j] + 1) j++;
    out.push(i === j ? `${sorted[i]}` : `${sorted[i]}–${sorted[j]}`);
    i = j;
  }
  return out;
}

function shortRanges(numbers, max = 6) {
  const ranges = compressRanges(numbers);
  return ranges.slice(0, max).join(', ') + (ranges.length > max ? ', …' : '');
}

/** A whole number typed by a person, or NaN. */
function parseWhole(text) {
  return /^\s*\d+\s*$/.test(text) ? Number(text) : NaN;
}

function plural(n, word, many = `${word}s`) {
  return `${fmtInt(n)} ${n === 1 ? word : many}`;
}

function storageGet(store, key) {
  try { return window[store].getItem(key); } catch { return null; }
}

function storageSet(store, key, value) {
  try { window[store].setItem(key, value); } catch { /* private mode or full: keep going */ }
}

/* Stable, distinct colours per group id: a fixed palette for the usual few groups, then the
 * golden angle around the hue circle so any id keeps its colour across refreshes. */
const PALETTE = [
  '#4e79a7', '#f28e2b', '#59a14f', '#e15759', '#76b7b2', '#edc948', '#b07aa1', '#ff9da7',
  '#9c755f', '#8cd17d', '#d37295', '#a0cbe8', '#ffbe7d', '#499894', '#b6992d', '#86bcb6',
];

function groupColor(gid) {
  gid = Number(gid);
  if (!gid) return '#c8ccd1';
  if (gid <= PALETTE.length) return PALETTE[gid - 1];
  return `hsl(${Math.round((gid * 137.508) % 360)} 50% 55%)`;
}

/* ─────────────────────────── State ─────────────────────────── */

const CHART_WINDOW_MS = 5 * 60 * 1000;
const ACTION_LIST_COLLAPSED = 20;
const REFRESH_KEY = 'codis-console.refresh-interval';

const state = {
  products: [],
  product: '',
  topom: null,
  lastSuccess: 0,
  lastError: null,
  refreshes: 0,
  timer: 0,
  inFlight: null,
  again: false,
  intervalSec: 2,
  samples: [], // {t, v}: ops/s per refresh, for the chart
  actionPeak: 0, // most slot actions seen in the current batch, for "done / total"
  showAllActions: false,
  busy: new Set(), // keys of mutating calls in flight
  authPrompt: null,
  slotCells: [],
  slotSigs: [],
};

/* ─────────────────────────── HTTP ───────────────────────────
 * Every path but /list carries ?forward=<product>: codis-fe routes by it, a dashboard ignores it.
 * Errors become ApiError with plain words, so callers only prefix what they tried to do. */

class ApiError extends Error {
  constructor(message, status = 0) {
    super(message);
    this.status = status;
  }
}

function forwardPath(path, product = state.product) {
  return `${path}${path.includes('?') ? '&' : '?'}forward=${encodeURIComponent(product)}`;
}

/** A path segment: encoded, but host:port stays readable. */
function segment(value) {
  return encodeURIComponent(String(value)).replace(/%3A/gi, ':');
}

async function request(method, path, timeoutMs = 15000) {
  const ctrl = new AbortController();
  const timer = setTimeout(() => ctrl.abort(), timeoutMs);
  let resp;
  let text;
  try {
    resp = await fetch(path, { method, cache: 'no-store', headers: { Accept: 'application/json' }, signal: ctrl.signal });
    text = await resp.text();
  } catch {
    throw new ApiError(ctrl.signal.aborted
      ? `no answer within ${Math.round(timeoutMs / 1000)} s`
      : 'the server of this page does not answer (network error)');
  } finally {
    clearTimeout(timer);
  }
  let body = null;
  if (text) {
    try { body = JSON.parse(text); } catch { body = text; }
  }
  if (!resp.ok) {
    const message = (body && typeof body === 'object' && body.error)
      || (typeof body === 'string' && body.trim().slice(0, 300))
      || `HTTP ${resp.status} ${resp.statusText}`.trim();
    throw new ApiError(String(message), resp.status);
  }
  return body;
}

/** Why a call failed, in words that fit after "Could not …: ". */
function reason(err, product = state.product) {
  if (!(err instanceof ApiError)) return `the page hit a bug (${err && err.message})`;
  if (err.status === 502) return `the dashboard of product ${product} does not answer: ${err.message}`;
  return err.message;
}

function capitalise(text) {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/* ─────────────────────────── Auth ───────────────────────────
 * Start with the empty password; on 403 ask once (shared by concurrent calls), keep the answer
 * in sessionStorage for this product, and retry. */

function passwordKey(product) {
  return `codis-console.password.${product}`;
}

function storedPassword(product) {
  return storageGet('sessionStorage', passwordKey(product)) ?? '';
}

async function mutate(verb, args = [], product = state.product) {
  let refused = storageGet('sessionStorage', passwordKey(product)) !== null;
  for (;;) {
    const xauth = xauthFor(product, storedPassword(product));
    const path = ['/api/topom', verb, xauth, ...args.map(segment)].join('/');
    try {
      return await request('PUT', forwardPath(path, product), 120000);
    } catch (err) {
      if (err.status !== 403) throw err;
      const password = await askPassword(product, refused);
      if (password === null) throw new ApiError(`the dashboard wants the password of product ${product} (${err.message})`, 403);
      storageSet('sessionStorage', passwordKey(product), password);
      refused = true;
    }
  }
}

function askPassword(product, refused) {
  if (!state.authPrompt) {
    state.authPrompt = openAuthDialog(product, refused).finally(() => { state.authPrompt = null; });
  }
  return state.authPrompt;
}

function openAuthDialog(product, refused) {
  return new Promise((resolve) => {
    const dialog = $('#auth-dialog');
    const input = $('#auth-password');
    $('#auth-product').textContent = product;
    $('#auth-hint').textContent = refused
      ? 'The dashboard did not accept this password. Type it again.'
      : 'Changes to this product need the dashboard\'s password.';
    input.value = '';
    dialog.returnValue = '';
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'ok' ? input.value : null), { once: true });
    dialog.showModal();
    input.focus();
  });
}

/* ─────────────────────────── Messages ───────────────────────────
 * Errors stay until dismissed or replaced (same key); successes fade after 4 s. */

function notify(kind, text, key = '') {
  const box = $('#messages');
  if (key) clearMessage(key);
  const div = document.createElement('div');
  div.className = `message ${kind}`;
  div.setAttribute('role', kind === 'error' ? 'alert' : 'status');
  if (key) div.dataset.key = key;
  const span = document.createElement('span');
  span.className = 'text';
  span.textContent = text;
  const close = document.createElement('button');
  close.type = 'button';
  close.className = 'dismiss';
  close.title = 'Dismiss';
  close.setAttribute('aria-label', 'Dismiss');
  close.textContent = '×';
  close.addEventListener('click', () => div.remove());
  div.append(span, close);
  box.append(div);
  if (kind === 'ok') {
    setTimeout(() => {
      div.classList.add('fading');
      setTimeout(() => div.remove(), 600);
    }, 4000);
  }
  const all = $$('.message', box);
  while (all.length > 8) all.shift().remove();
}

function clearMessage(key) {
  $$('#messages .message').filter((m) => m.dataset.key === key).forEach((m) => m.remove());
}

function messageText(key) {
  const m = $$('#messages .message').find((x) => x.dataset.key === key);
  return m ? $('.text', m).textContent : null;
}

/* ─────────────────────────── Dialogs ───────────────────────────
 * A modal <dialog> rather than window.confirm: it is styled, and headless tests can see it.
 * The body is HTML built by the caller with esc(). Resolves true only on OK. */

function confirmAction(title, bodyHtml, okLabel = 'OK', danger = true) {
  const dialog = $('#confirm');
  if (dialog.open) {
    notify('error', 'Finish the open confirmation first.', 'confirm');
    return Promise.resolve(false);
  }
  return new Promise((resolve) => {
    $('#confirm-title').textContent = title;
    $('#confirm-body').innerHTML = bodyHtml;
    const ok = $('#confirm-ok');
    ok.textContent = okLabel;
    ok.classList.toggle('danger', danger);
    dialog.returnValue = '';
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'ok'), { once: true });
    dialog.showModal();
    (danger ? $('#confirm-cancel') : ok).focus();
  });
}

/* ─────────────────────────── Running an action ───────────────────────────
 * While a call runs its button is disabled with a spinner. Table buttons are re-rendered by the
 * refresh, so "busy" is remembered by key and re-applied to new buttons. Always refresh after. */

function buttonKey(button) {
  if (button.id) return button.id;
  const d = button.dataset;
  return [d.act, d.gid, d.addr, d.token, d.slot].join('|');
}

function setBusy(button, busy) {
  if (!button) return;
  button.classList.toggle('busy', busy);
  button.disabled = busy;
  button.setAttribute('aria-busy', busy ? 'true' : 'false');
}

/** Re-apply the busy state to freshly rendered controls. */
function applyBusy(root) {
  for (const control of $$('[data-act]', root)) {
    if (state.busy.has(buttonKey(control))) setBusy(control, true);
  }
}

/**
 * Runs `fn` for `button`. `fail` prefixes the error ("Could not …"); `ok` is the success text
 * (a function of the result, or a string). `fn` returning false means "cancelled, say nothing".
 */
async function run(button, { fail, ok }, fn) {
  const key = button ? buttonKey(button) : fail;
  if (state.busy.has(key)) return;
  state.busy.add(key);
  setBusy(button, true);
  let changed = true;
  try {
    const result = await fn();
    if (result === false) {
      changed = false;
    } else if (ok) {
      notify('ok', typeof ok === 'function' ? ok(result) : ok, key);
    } else {
      clearMessage(key);
    }
  } catch (err) {
    if (!(err instanceof ApiError)) console.error(err);
    notify('error', `${fail}: ${reason(err)}`, key);
  } finally {
    state.busy.delete(key);
    setBusy(button, false);
    for (const other of $$('[data-act].busy')) {
      if (!state.busy.has(buttonKey(other))) setBusy(other, false);
    }
    if (changed) refreshNow();
  }
}

/* ─────────────────────────── Products ───────────────────────────
 * /list names the products; the hash (#p=name) picks one so a link opens the same view. */

function productFromHash() {
  const m = /(?:^#|&)p=([^&]*)/.exec(location.hash);
  if (!m) return '';
  try { return decodeURIComponent(m[1]); } catch { return ''; }
}

async function loadProducts() {
  let list;
  try {
    list = await request('GET', '/list');
  } catch (err) {
    notify('error', `Could not list the products: ${reason(err, 'this console')}`, 'list');
    setTimeout(loadProducts, 5000);
    return;
  }
  clearMessage('list');
  state.products = Array.isArray(list) ? list.map(String) : [];
  fillProductSelect();
  const empty = state.products.length === 0;
  $('#no-product').hidden = !empty;
  $('#content').hidden = empty;
  if (empty) {
    setTimeout(loadProducts, 5000);
    return;
  }
  const wanted = productFromHash();
  const chosen = state.products.includes(wanted) ? wanted : state.products[0];
  if (wanted && wanted !== chosen) {
    notify('error', `Product ${wanted} is not in the coordinator; showing ${chosen} instead.`, 'list');
  }
  selectProduct(chosen);
}

/** Quietly pick up products added or removed while the page is open. */
async function reloadProductList() {
  try {
    const list = await request('GET', '/list');
    if (Array.isArray(list) && list.join('\n') !== state.products.join('\n')) {
      state.products = list.map(String);
      fillProductSelect();
    }
  } catch { /* the refresh reports trouble already */ }
}

function fillProductSelect() {
  const select = $('#product');
  if (document.activeElement === select) return;
  const names = [...state.products];
  if (state.product && !names.includes(state.product)) names.push(state.product);
  select.innerHTML = names.map((n) => `<option value="${esc(n)}">${esc(n)}</option>`).join('');
  select.value = state.product || names[0] || '';
}

function selectProduct(name) {
  if (!name || (name === state.product && state.topom)) return;
  state.product = name;
  state.topom = null;
  state.samples = [];
  state.actionPeak = 0;
  state.showAllActions = false;
  state.lastSuccess = 0;
  state.lastError = null;
  $('#product').value = name;
  $('#product-name').textContent = name;
  document.title = `${name} · Codis console`;
  const hash = `#p=${encodeURIComponent(name)}`;
  if (location.hash !== hash) history.replaceState(null, '', hash);
  clearView();
  clearMessage('refresh');
  clearMessage('closed');
  drawChart();
  renderFreshness();
  refreshNow();
}

/** Forget the previous product's figures, so they are never shown under another name. */
function clearView() {
  for (const el of $$('#overview [data-stat]')) {
    el.textContent = '–';
    el.title = '';
    delete el.dataset.value;
  }
  $('#proxies tbody').innerHTML = '<tr class="empty"><td colspan="11">Loading…</td></tr>';
  $('#proxy-summary').textContent = '';
  $('#group-list').innerHTML = '';
  $('#groups-empty').hidden = true;
  $('#action-list').tBodies[0].innerHTML = '';
  $('#action-list-toggle').hidden = true;
  $('#slot-legend').innerHTML = '';
  $('#slot-dist').innerHTML = '';
  $('#action-summary').textContent = 'Actions: –';
  $('#version').textContent = '';
  buildSlotMap(state.slotCells.length || 1024);
}

/* ─────────────────────────── Refresh loop ───────────────────────────
 * One request at a time; a refresh asked for during another runs right after it. */

function scheduleRefresh() {
  clearTimeout(state.timer);
  state.timer = setTimeout(refreshNow, state.intervalSec * 1000);
}

function refreshNow() {
  if (state.inFlight) {
    state.again = true;
    return state.inFlight;
  }
  clearTimeout(state.timer);
  state.inFlight = refresh().finally(() => {
    state.inFlight = null;
    if (state.again) {
      state.again = false;
      refreshNow();
    } else {
      scheduleRefresh();
    }
  });
  return state.inFlight;
}

async function refresh() {
  const product = state.product;
  if (!product) return;
  try {
    const topom = await request('GET', forwardPath('/topom', product), Math.max(10000, state.intervalSec * 2000));
    if (product !== state.product) return;
    state.topom = topom;
    recordSample(topom);
    render(topom);
    state.lastSuccess = Date.now();
    state.lastError = null;
    clearMessage('refresh');
    state.refreshes += 1;
    document.body.dataset.refreshes = String(state.refreshes);
    document.body.dataset.ready = '1';
  } catch (err) {
    if (product !== state.product) return;
    state.lastError = err;
    if (!(err instanceof ApiError)) console.error(err);
    const text = err instanceof ApiError && err.status === 502
      ? capitalise(reason(err, product))
      : `Could not read the state of product ${product}: ${reason(err, product)}`;
    if (messageText('refresh') !== text) notify('error', text, 'refresh');
  }
  renderFreshness();
}

function recordSample(topom) {
  const now = Date.now();
  state.samples.push({ t: now, v: totalQps(topom.stats || {}) });
  while (state.samples.length && state.samples[0].t < now - CHART_WINDOW_MS) state.samples.shift();
}

function totalQps(stats) {
  return Object.values((stats.proxy || {}).stats || {}).reduce((sum, s) => sum + ((s.ops || {}).qps || 0), 0);
}

/** "updated 12:00:03", or red "stale" once a refresh fails or the last one is too old. */
function renderFreshness() {
  const el = $('#last-updated');
  const now = Date.now();
  const tooOld = state.lastSuccess && now - state.lastSuccess > Math.max(3 * state.intervalSec * 1000, 10000);
  const stale = Boolean(state.lastError) || Boolean(tooOld);
  el.classList.toggle('stale', stale);
  if (!state.lastSuccess) {
    el.textContent = stale ? 'stale · never updated' : 'loading…';
  } else if (stale) {
    el.textContent = `stale · last updated ${fmtClock(state.lastSuccess)} (${fmtDuration(now - state.lastSuccess)} ago)`;
  } else {
    el.textContent = `updated ${fmtClock(state.lastSuccess)}`;
  }
  el.title = state.lastError ? reason(state.lastError) : '';
}

/* ─────────────────────────── Derived view of /topom ───────────────────────────
 * The reply is nested and most fields optional; flatten it once per refresh. */

function derive(t) {
  const stats = t.stats || {};
  const group = stats.group || {};
  const proxy = stats.proxy || {};
  const slots = [];
  for (const s of stats.slots || []) slots[s.id] = s;
  const slotCount = new Map();
  for (const s of slots) {
    if (!s) continue;
    const gid = s.group_id || 0;
    slotCount.set(gid, (slotCount.get(gid) || 0) + 1);
  }
  const config = t.config || {};
  return {
    t,
    stats,
    config,
    slots,
    slotTotal: Math.max(1024, slots.length),
    slotCount,
    groups: (group.models || []).slice().sort((a, b) => a.id - b.id),
    probes: group.servers || {},
    serverStats: group.stats || {},
    proxies: (proxy.models || []).slice().sort((a, b) => a.id - b.id),
    proxyStats: proxy.stats || {},
    failoverAuto: (stats.failover || {}).auto ?? config.failover_auto,
    failoverStatus: (stats.failover || {}).status || {},
    slotAction: stats.slot_action || {},
  };
}

function render(t) {
  const d = derive(t);
  renderOverview(d);
  drawChart();
  renderProxies(d);
  renderSlots(d);
  renderGroups(d);
  renderFooter(d);
  if (d.stats.closed) {
    if (!messageText('closed')) notify('error', `The dashboard of product ${state.product} is shutting down.`, 'closed');
  } else {
    clearMessage('closed');
  }
}

/** True when the person is typing in `root`: leave it alone this round. */
function typingIn(root) {
  const el = document.activeElement;
  return Boolean(el && root.contains(el) && el.matches('input, select, textarea'));
}

/* ─────────────────────────── Overview ─────────────────────────── */

function setStat(name, text, title = '', value = null) {
  const el = $(`#overview [data-stat="${name}"]`);
  if (!el) return;
  el.textContent = text;
  el.title = title;
  if (value === null) delete el.dataset.value;
  else el.dataset.value = String(value);
}

function renderOverview(d) {
  const { config, t } = d;
  const model = t.model || {};
  setStat('product', config.product_name || model.product_name || state.product);
  const coordinator = [config.coordinator_name, config.coordinator_addr].filter(Boolean).join(' · ');
  setStat('coordinator', coordinator || '–');
  setStat('dashboard', model.admin_addr || config.admin_addr || '–',
    model.hostname ? `pid ${model.pid} on ${model.hostname}, started ${model.start_time}` : '');

  const proxyStats = d.proxies.map((p) => d.proxyStats[p.token] || {});
  const qps = proxyStats.reduce((s, p) => s + ((p.ops || {}).qps || 0), 0);
  const alive = proxyStats.reduce((s, p) => s + ((p.sessions || {}).alive || 0), 0);
  const sessionsTotal = proxyStats.reduce((s, p) => s + ((p.sessions || {}).total || 0), 0);
  setStat('ops', fmtInt(qps), 'commands per second, summed over all proxies', qps);
  setStat('sessions', fmtInt(alive), `${fmtInt(sessionsTotal)} sessions opened since the proxies started`, alive);

  const masters = d.groups.map((g) => ((g.servers || [])[0] || {}).server).filter(Boolean);
  const allServers = d.groups.flatMap((g) => (g.servers || []).map((s) => s.server));
  const sum = (addrs, field) => addrs.reduce((s, a) => s + ((d.serverStats[a] || {})[field] || 0), 0);
  const memory = sum(masters, 'used_memory');
  const keys = sum(masters, 'keys');
  setStat('memory', fmtBytes(memory), `used memory of the group masters; ${fmtBytes(sum(allServers, 'used_memory'))} counting replicas too`, memory);
  setStat('keys', fmtInt(keys), 'keys on the group masters', keys);

  setStat('groups', fmtInt(d.groups.length), '', d.groups.length);
  setStat('servers', fmtInt(allServers.length), '', allServers.length);
  setStat('proxies', fmtInt(d.proxies.length), '', d.proxies.length);
  const offline = d.slotCount.get(0) || 0;
  setStat('slots', offline ? `${fmtInt(d.slotTotal - offline)} online · ${fmtInt(offline)} offline` : `${fmtInt(d.slotTotal)} online`);
  setStat('failover', d.failoverAuto ? 'on' : 'off',
    config.failover_down_after_ms ? `a master is failed over after ${fmtDuration(config.failover_down_after_ms)} down` : '');
  setStat('sync-replicas', String(config.sync_replicas ?? '–'));
}

/* ─────────────────────────── Ops chart ───────────────────────────
 * Drawn by hand on a canvas sized for devicePixelRatio, so lines stay crisp on HiDPI. */

/** The smallest "nice" number (1, 2, 2.5, 5 × 10^k) at or above v. */
function niceMax(v) {
  if (!(v > 0)) return 10;
  const exp = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * exp >= v) return Math.max(m * exp, 10);
  return 10 * exp;
}

function drawChart() {
  const canvas = $('#ops-chart');
  if (!canvas) return;
  const w = canvas.clientWidth;
  const h = canvas.clientHeight;
  if (!w || !h) return;
  const dpr = window.devicePixelRatio || 1;
  if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
  }
  const ctx = canvas.getContext('2d');
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);

  const pad = { l: 44, r: 10, t: 10, b: 20 };
  const pw = w - pad.l - pad.r;
  const ph = h - pad.t - pad.b;
  const now = Date.now();
  const t0 = now - CHART_WINDOW_MS;
  const samples = state.samples;
  const max = niceMax(Math.max(0, ...samples.map((s) => s.v)));
  const x = (t) => pad.l + ((t - t0) / CHART_WINDOW_MS) * pw;
  const y = (v) => pad.t + (1 - v / max) * ph;

  ctx.font = '11px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif';
  ctx.lineWidth = 1;

  // Horizontal gridlines at 0, ½ and max, labelled on the left.
  ctx.textAlign = 'right';
  ctx.textBaseline = 'middle';
  for (const frac of [0, 0.5, 1]) {
    const gy = Math.round(y(max * frac)) + 0.5;
    ctx.strokeStyle = frac === 0 ? '#b8bec6' : '#e6e9ed';
    ctx.beginPath();
    ctx.moveTo(pad.l, gy);
    ctx.lineTo(w - pad.r, gy);
    ctx.stroke();
    ctx.fillStyle = '#6b7480';
    ctx.fillText(fmtCompact(max * frac), pad.l - 6, gy);
  }

  // Time labels on whole minutes.
  ctx.textAlign = 'center';
  ctx.textBaseline = 'top';
  const step = pw < 260 ? 120000 : 60000;
  for (let tt = Math.ceil(t0 / step) * step; tt <= now; tt += step) {
    const tx = Math.round(x(tt)) + 0.5;
    ctx.strokeStyle = '#b8bec6';
    ctx.beginPath();
    ctx.moveTo(tx, pad.t + ph);
    ctx.lineTo(tx, pad.t + ph + 4);
    ctx.stroke();
    ctx.fillStyle = '#6b7480';
    ctx.fillText(fmtClock(tt, false), tx, pad.t + ph + 6);
  }

  if (!samples.length) {
    ctx.textAlign = 'center';
    ctx.textBaseline = 'middle';
    ctx.fillStyle = '#8a929c';
    ctx.fillText('waiting for data…', pad.l + pw / 2, pad.t + ph / 2);
    return;
  }

  // The series: a line with a light fill under it.
  ctx.save();
  ctx.beginPath();
  ctx.rect(pad.l, pad.t - 1, pw + 1, ph + 2);
  ctx.clip();
  ctx.beginPath();
  samples.forEach((s, i) => (i ? ctx.lineTo(x(s.t), y(s.v)) : ctx.moveTo(x(s.t), y(s.v))));
  ctx.lineJoin = 'round';
  ctx.lineWidth = 1.5;
  ctx.strokeStyle = '#2f6fd6';
  ctx.stroke();
  ctx.lineTo(x(samples[samples.length - 1].t), y(0));
  ctx.lineTo(x(samples[0].t), y(0));
  ctx.closePath();
  ctx.fillStyle = 'rgba(47, 111, 214, 0.10)';
  ctx.fill();
  const last = samples[samples.length - 1];
  ctx.fillStyle = '#2f6fd6';
  ctx.beginPath();
  ctx.arc(x(last.t), y(last.v), 2.5, 0, Math.PI * 2);
  ctx.fill();
  ctx.restore();
}

/* ─────────────────────────── Proxies ─────────────────────────── */

/** HEALTHY only when in sync, online and not fenced; otherwise say what is wrong. */
function proxyStatus(s) {
  if (!s) return { label: 'UNKNOWN', cls: 'warn', detail: 'the dashboard has no report for this proxy yet', healthy: false };
  if (s.stats_error) return { label: 'ERROR', cls: 'bad', detail: s.stats_error, healthy: false };
  if (s.fenced || s.state === 'fenced') return { label: 'FENCED', cls: 'bad', detail: s.error || 'its lease ran out', healthy: false };
  if (s.state === 'stale') return { label: 'PENDING', cls: 'warn', detail: s.error || 'not in sync with the dashboard yet', healthy: false };
  if (s.state === 'in_sync' && s.online === true) return { label: 'HEALTHY', cls: 'good', detail: s.error || '', healthy: true };
  if (s.state === 'in_sync' && s.online === false) return { label: 'OFFLINE', cls: 'warn', detail: s.error || 'not online yet', healthy: false };
  if (s.state === 'in_sync') return { label: 'PENDING', cls: 'warn', detail: 'the proxy has not answered yet', healthy: false };
  return { label: String(s.state || 'UNKNOWN').toUpperCase(), cls: 'warn', detail: s.error || '', healthy: false };
}

function proxyRow(p, s) {
  const st = proxyStatus(s);
  const ops = (s && s.ops) || {};
  const sessions = (s && s.sessions) || {};
  const token = String(p.token || '');
  const ids = `data-token="${esc(token)}" data-addr="${esc(p.proxy_addr)}" data-id="${esc(p.id)}"`;
  return `<tr data-token="${esc(token)}" class="${st.healthy ? '' : 'unhealthy'}">
    <td class="num">${esc(p.id)}</td>
    <td><code title="${esc(token)}">${esc(token.slice(0, 8))}</code></td>
    <td><code>${esc(p.proxy_addr)}</code></td>
    <td><code>${esc(p.admin_addr)}</code></td>
    <td>${esc(p.datacenter || '–')}</td>
    <td class="num">${fmtInt(sessions.alive)} / ${fmtInt(sessions.total)}</td>
    <td class="num">${fmtInt(ops.total)}${ops.fails ? ` <span class="bad-text" title="failed commands">(${fmtInt(ops.fails)} failed)</span>` : ''}</td>
    <td class="num">${fmtInt(ops.qps)}</td>
    <td class="status"><span class="badge ${st.cls}" title="${esc(st.detail)}">${esc(st.label)}</span>
      ${s && s.primary_only ? '<span class="mark" title="this proxy reads from masters only">primary only</span>' : ''}
      ${st.detail ? `<div class="small ${st.cls}-text">${esc(st.detail)}</div>` : ''}</td>
    <td class="num">${s && Number.isFinite(s.last_lease_ms_ago) ? `${fmtDuration(s.last_lease_ms_ago)} ago` : '–'}</td>
    <td class="actions">
      <button type="button" data-act="proxy-reinit" ${ids} title="Send the slot table to this proxy again">Reinit</button>
      <button type="button" class="danger-outline" data-act="proxy-remove" ${ids}>Remove</button>
      ${st.healthy ? '' : `<button type="button" class="danger-outline" data-act="proxy-force-remove" ${ids} data-state="${esc(st.label)}">Force remove</button>`}
    </td></tr>`;
}

function renderProxies(d) {
  const tbody = $('#proxies tbody');
  if (typingIn(tbody)) return;
  tbody.innerHTML = d.proxies.length
    ? d.proxies.map((p) => proxyRow(p, d.proxyStats[p.token])).join('')
    : '<tr class="empty"><td colspan="11">No proxy yet. Add one below with its admin address.</td></tr>';
  applyBusy(tbody);
  const healthy = d.proxies.filter((p) => proxyStatus(d.proxyStats[p.token]).healthy).length;
  $('#proxy-summary').textContent = d.proxies.length ? `${healthy} of ${d.proxies.length} healthy` : '';
}

/* ─────────────────────────── Slots ───────────────────────────
 * 1024 cells built once; each refresh only touches cells whose owner or action changed. */

function buildSlotMap(count = 1024) {
  const map = $('#slot-map');
  map.textContent = '';
  const frag = document.createDocumentFragment();
  state.slotCells = [];
  state.slotSigs = [];
  for (let i = 0; i < count; i++) {
    const cell = document.createElement('div');
    cell.className = 'slot offline';
    cell.dataset.slot = String(i);
    cell.dataset.group = '0';
    cell.title = `slot ${i} · offline`;
    frag.append(cell);
    state.slotCells.push(cell);
    state.slotSigs.push('');
  }
  map.append(frag);
}

function slotTitle(i, gid, act, status) {
  let text = `slot ${i} · ${gid ? `group ${gid}` : 'offline'}`;
  if (act.state) text += ` → ${act.target_id ? act.target_id : '?'} (${act.state})`;
  if (status) text += ` · ${status}`;
  return text;
}

function updateSlotMap(d) {
  if (state.slotCells.length !== d.slotTotal) buildSlotMap(d.slotTotal);
  const statusBySlot = (d.slotAction.progress || {}).status || {};
  for (let i = 0; i < state.slotCells.length; i++) {
    const s = d.slots[i] || {};
    const gid = s.group_id || 0;
    const act = s.action || {};
    const status = statusBySlot[i] || '';
    const sig = `${gid}|${act.state || ''}|${act.target_id ?? ''}|${act.index ?? ''}|${status}`;
    if (sig === state.slotSigs[i]) continue;
    state.slotSigs[i] = sig;
    const cell = state.slotCells[i];
    cell.dataset.group = String(gid);
    cell.classList.toggle('offline', !gid);
    if (gid) cell.style.setProperty('--c', groupColor(gid));
    else cell.style.removeProperty('--c');
    if (act.state) {
      cell.classList.add('migrating');
      cell.dataset.state = act.state;
      cell.dataset.target = String(act.target_id ?? '');
      cell.style.setProperty('--t', groupColor(act.target_id));
    } else {
      cell.classList.remove('migrating');
      delete cell.dataset.state;
      delete cell.dataset.target;
      cell.style.removeProperty('--t');
    }
    cell.title = slotTitle(i, gid, act, status);
  }
}

/** Colour key, slot count per group and a stacked bar of the distribution. */
function renderLegend(d) {
  const gids = new Set([...d.groups.map((g) => g.id), ...d.slotCount.keys()]);
  const entries = [...gids].filter((g) => g !== 0).sort((a, b) => a - b).map((gid) => [gid, d.slotCount.get(gid) || 0]);
  const offline = d.slotCount.get(0) || 0;
  if (offline) entries.push([0, offline]);
  const total = d.slotTotal;
  const pct = (n) => `${((n / total) * 100).toFixed(1)}%`;
  const label = (gid) => (gid ? `Group ${gid}` : 'Offline');
  $('#slot-dist').innerHTML = entries.filter(([, n]) => n > 0).map(([gid, n]) =>
    `<span class="seg${gid ? '' : ' offline'}" style="--c:${groupColor(gid)};flex-grow:${n}" title="${esc(label(gid))}: ${n} slots (${pct(n)})"></span>`).join('');
  $('#slot-legend').innerHTML = entries.map(([gid, n]) =>
    `<li><span class="swatch${gid ? '' : ' offline'}" style="--c:${groupColor(gid)}"></span>
      <span class="name">${esc(label(gid))}</span><span class="num">${fmtInt(n)}</span><span class="pct">${pct(n)}</span></li>`).join('')
    || '<li class="muted">No group yet.</li>';
}

/** "Actions: 120 remaining (3 migrating, 117 pending) · done since start of this batch: 40 / 160". */
function renderActionProgress(d, withAction) {
  const remaining = withAction.length;
  if (remaining > 0) state.actionPeak = Math.max(state.actionPeak, remaining);
  else state.actionPeak = 0;
  const counts = new Map();
  for (const s of withAction) counts.set(s.action.state, (counts.get(s.action.state) || 0) + 1);
  const order = ['migrating', 'preparing', 'prepared', 'finished', 'pending'];
  const parts = [...counts.keys()].sort((a, b) => order.indexOf(a) - order.indexOf(b)).map((k) => `${counts.get(k)} ${k}`);
  const done = state.actionPeak - remaining;
  const progress = $('#action-progress');
  if (remaining) {
    $('#action-summary').textContent =
      `Actions: ${remaining} remaining (${parts.join(', ')}) · done since start of this batch: ${done} / ${state.actionPeak}`;
    progress.max = state.actionPeak;
    progress.value = done;
  } else {
    $('#action-summary').textContent = 'Actions: none. Every slot is where it belongs.';
    progress.max = 1;
    progress.value = 0;
  }
  progress.classList.toggle('idle', !remaining);

  const disabled = Boolean(d.slotAction.disabled);
  const note = $('#action-disabled-note');
  note.hidden = !disabled;
  note.textContent = remaining
    ? 'Slot actions are disabled: nothing moves until you enable them.'
    : 'Slot actions are disabled.';
  const toggle = $('#actions-disabled');
  if (!toggle.classList.contains('busy')) {
    toggle.textContent = disabled ? 'Enable actions' : 'Disable actions';
    toggle.dataset.value = disabled ? '0' : '1';
  }
  const interval = d.slotAction.interval ?? 0;
  $('#action-interval-current').textContent = `now ${fmtInt(interval)} µs between steps`;
  $('#action-interval').placeholder = String(interval);
}

function renderActionList(d, withAction) {
  const table = $('#action-list');
  const tbody = table.tBodies[0];
  const toggle = $('#action-list-toggle');
  const statusBySlot = (d.slotAction.progress || {}).status || {};
  const rows = withAction.slice().sort((a, b) => (a.action.index ?? 0) - (b.action.index ?? 0) || a.id - b.id);
  const collapsed = !state.showAllActions && rows.length > ACTION_LIST_COLLAPSED;
  const shown = collapsed ? rows.slice(0, ACTION_LIST_COLLAPSED) : rows;
  toggle.hidden = rows.length <= ACTION_LIST_COLLAPSED;
  toggle.textContent = collapsed ? `Show all ${rows.length}` : `Show first ${ACTION_LIST_COLLAPSED}`;
  table.classList.toggle('is-empty', rows.length === 0);
  if (typingIn(tbody)) return;
  tbody.innerHTML = rows.length ? shown.map((s) => {
    const a = s.action;
    return `<tr data-slot="${esc(s.id)}">
      <td class="num">${esc(s.id)}</td>
      <td><span class="swatch" style="--c:${groupColor(s.group_id)}"></span>${s.group_id ? esc(s.group_id) : 'offline'}</td>
      <td><span class="swatch" style="--c:${groupColor(a.target_id)}"></span>${esc(a.target_id ?? '–')}</td>
      <td class="num">${esc(a.index ?? '–')}</td>
      <td><span class="badge ${a.state === 'pending' ? 'neutral' : 'warn'}">${esc(a.state)}</span></td>
      <td class="small">${esc(statusBySlot[s.id] || '')}</td>
      <td class="actions">${a.state === 'pending'
        ? `<button type="button" class="small-btn danger-outline" data-act="slot-action-remove" data-slot="${esc(s.id)}" data-target="${esc(a.target_id)}">Remove</button>` : ''}</td>
    </tr>`;
  }).join('') : '<tr class="empty"><td colspan="7">No slot actions.</td></tr>';
  applyBusy(tbody);
}

function renderSlots(d) {
  updateSlotMap(d);
  renderLegend(d);
  const withAction = d.slots.filter((s) => s && s.action && s.action.state);
  renderActionProgress(d, withAction);
  renderActionList(d, withAction);
}

/** Rebalance preview → "Move 341 slots:" and one line per (from → to) with its slot ranges. */
function summarisePlan(plan) {
  const slots = (state.topom && state.topom.stats && state.topom.stats.slots) || [];
  const owner = new Map(slots.map((s) => [s.id, s.group_id || 0]));
  const moves = new Map();
  for (const [sid, to] of Object.entries(plan)) {
    const from = owner.get(Number(sid)) ?? 0;
    const key = `${from}→${to}`;
    if (!moves.has(key)) moves.set(key, { from, to, slots: [] });
    moves.get(key).slots.push(Number(sid));
  }
  const total = Object.keys(plan).length;
  const items = [...moves.values()].sort((a, b) => a.from - b.from || a.to - b.to).map((m) =>
    `<li>${m.from ? esc(m.from) : 'offline'} → ${esc(m.to)}: ${plural(m.slots.length, 'slot')} (${esc(shortRanges(m.slots))})</li>`);
  return `<p>Move ${plural(total, 'slot')}:</p><ul class="plan">${items.join('')}</ul>
    <p class="muted">Each slot migrates in the background; clients keep working.</p>`;
}

/* ─────────────────────────── Groups ───────────────────────────
 * One <section> per group, kept and updated in place (sorted by id) so scroll position and
 * focus survive refreshes. */

function renderGroups(d) {
  const list = $('#group-list');
  const keep = new Set();
  let prev = null;
  for (const g of d.groups) {
    let section = $$(':scope > section.group', list).find((s) => s.dataset.group === String(g.id));
    if (!section) section = createGroupSection(g.id);
    const expected = prev ? prev.nextElementSibling : list.firstElementChild;
    if (section !== expected) list.insertBefore(section, expected);
    updateGroupSection(section, g, d);
    keep.add(section);
    prev = section;
  }
  for (const section of $$(':scope > section.group', list)) if (!keep.has(section)) section.remove();
  $('#groups-empty').hidden = d.groups.length > 0;
}

function createGroupSection(gid) {
  const section = document.createElement('section');
  section.className = 'group';
  section.dataset.group = String(gid);
  section.innerHTML = `<div class="group-head"></div><div class="group-status"></div>
    <div class="table-wrap"><table class="servers">
      <thead><tr><th>Role</th><th>Server</th><th>DC</th><th>Replication</th><th>Memory</th>
        <th class="num">Keys</th><th class="num">Clients</th><th class="num">Epoch</th><th>Health</th>
        <th title="Proxies read from this replica">Replica reads</th><th>Sync</th><th></th></tr></thead>
      <tbody></tbody></table></div>`;
  return section;
}

function failoverMarks(g, d) {
  if (!d.failoverAuto) {
    return `<span class="mark off" title="failover_auto is false in the dashboard's configuration">auto failover off (dashboard)</span>
      ${g.failover_disabled ? '<span class="mark off">off for this group too</span>' : ''}`;
  }
  return g.failover_disabled
    ? '<span class="mark off">auto failover off</span>'
    : '<span class="mark on">auto failover on</span>';
}

function updateGroupSection(section, g, d) {
  const gid = g.id;
  const servers = g.servers || [];
  const slotCount = d.slotCount.get(gid) || 0;
  const promoting = g.promoting || {};
  const removable = servers.length === 0 && slotCount === 0;
  const why = servers.length ? 'Remove its servers first' : slotCount ? 'Move its slots away first' : '';
  section.classList.toggle('out-of-sync', Boolean(g.out_of_sync));

  $('.group-head', section).innerHTML = `
    <h3><span class="swatch" style="--c:${groupColor(gid)}"></span>Group ${esc(gid)}</h3>
    <span class="meta">epoch ${esc(g.epoch || 0)}</span>
    <span class="meta">${plural(slotCount, 'slot')}</span>
    <span class="meta">${plural(servers.length, 'server')}</span>
    ${g.out_of_sync ? `<span class="badge bad" title="The servers do not follow the group's configuration">OUT OF SYNC</span>
      <button type="button" class="small-btn" data-act="group-resync" data-gid="${esc(gid)}">SYNC</button>` : ''}
    ${promoting.state || g.promoting_to ? `<span class="badge warn">PROMOTING${promoting.state ? ` · ${esc(promoting.state)}` : ''}${g.promoting_to ? ` → ${esc(g.promoting_to)}` : ''}</span>` : ''}
    ${failoverMarks(g, d)}
    <span class="spacer"></span>
    <button type="button" class="small-btn" data-act="group-prefill" data-gid="${esc(gid)}" title="Fill the Add server form with this group">Add server…</button>
    <button type="button" class="small-btn failover-toggle" data-act="group-failover" data-gid="${esc(gid)}" data-value="${g.failover_disabled ? 1 : 0}">
      ${g.failover_disabled ? 'Enable auto failover' : 'Disable auto failover'}</button>
    <button type="button" class="small-btn danger-outline" data-act="group-remove" data-gid="${esc(gid)}" ${removable ? '' : `disabled title="${esc(why)}"`}>Remove group</button>`;

  const line = d.failoverStatus[gid] ?? d.failoverStatus[String(gid)];
  const status = $('.group-status', section);
  status.hidden = !line;
  status.className = `group-status${line && /^\s*\[BROKEN\]/.test(line) ? ' bad-text' : ''}`;
  status.textContent = line ? `Failover: ${line}` : '';
  applyBusy($('.group-head', section));

  const tbody = $('tbody', section);
  if (typingIn(tbody)) return;
  tbody.innerHTML = servers.length
    ? servers.map((srv, i) => serverRow(g, srv, i, d)).join('')
    : '<tr class="empty"><td colspan="12">No server yet. Add one with “Add server” above.</td></tr>';
  applyBusy(tbody);
}

function roleWarnings(g, srv, index, probe, st) {
  const warnings = [];
  const probeRole = probe && probe.role ? probe.role.role : null;
  const statRole = st && st.role ? (st.role === 'slave' ? 'replica' : st.role) : null;
  const seen = probeRole || statRole;
  if (index === 0 && seen === 'replica') warnings.push('answers as replica');
  if (index > 0 && seen === 'master') warnings.push('answers as master');
  if (index > 0) {
    const master = ((g.servers || [])[0] || {}).server;
    const follows = (probe && probe.role && probe.role.master) || (st && st.master_addr);
    if (follows && master && follows !== master) warnings.push(`replicates from ${follows}`);
  }
  return warnings;
}

function replicationCell(g, index, probe, st) {
  if (index === 0) {
    const n = (g.servers || []).length - 1;
    return `${plural(n, 'replica')}`;
  }
  const parts = [];
  if (st && st.link) parts.push(`<span class="${st.link === 'up' ? 'good' : 'bad'}-text">link ${esc(st.link)}</span>`);
  const probeLink = probe && probe.role && probe.role.link;
  if (probeLink) parts.push(`<span class="${probeLink === 'connected' ? 'muted' : 'bad-text'}" title="as the failover prober sees it">probe: ${esc(probeLink)}</span>`);
  if (st && Number.isFinite(st.lag)) parts.push(`<span class="${st.lag > 1048576 ? 'warn-text' : ''}" title="bytes behind the group's master">lag ${esc(fmtBytes(st.lag))}</span>`);
  return parts.join(' · ') || '–';
}

function memoryCell(st) {
  if (!st || !Number.isFinite(st.used_memory)) return '–';
  const used = st.used_memory;
  const max = st.maxmemory || 0;
  if (!max) return `${fmtBytes(used)} / <span class="muted">no limit</span>`;
  const pct = Math.min(100, (used / max) * 100);
  return `${fmtBytes(used)} / ${fmtBytes(max)}
    <div class="mem-bar${pct > 90 ? ' high' : ''}" title="${pct.toFixed(1)}% of maxmemory"><span style="width:${pct.toFixed(1)}%"></span></div>`;
}

function healthCell(probe, st) {
  const error = (probe && probe.error) || (st && st.error);
  if (!error) return '<span class="good-text">up</span>';
  const down = probe && probe.down_ms ? `down for ${Math.round(probe.down_ms / 1000)} s` : 'error';
  return `<span class="bad-text">${esc(down)}</span><div class="small bad-text" title="${esc(error)}">${esc(error)}</div>`;
}

function syncStateBadge(stateText) {
  if (!stateText) return '<span class="muted">–</span>';
  const cls = { synced: 'good', synced_failed: 'bad', syncing: 'warn', pending: 'neutral' }[stateText] || 'neutral';
  return `<span class="badge ${cls}">${esc(stateText)}</span>`;
}

function serverRow(g, srv, index, d) {
  const addr = srv.server;
  const probe = d.probes[addr] || null;
  const st = d.serverStats[addr] || null;
  const isMaster = index === 0;
  const gid = g.id;
  const ids = `data-gid="${esc(gid)}" data-addr="${esc(addr)}"`;
  const warnings = roleWarnings(g, srv, index, probe, st);
  const deletable = !isMaster || (g.servers || []).length === 1;
  const actionState = (srv.action || {}).state || '';
  const epoch = probe && probe.epoch !== null && probe.epoch !== undefined ? probe.epoch : null;
  return `<tr data-server="${esc(addr)}" class="${isMaster ? 'master' : 'replica'}">
    <td><span class="badge ${isMaster ? 'master' : 'replica'}">${isMaster ? 'MASTER' : 'REPLICA'}</span>
      ${warnings.map((w) => `<div class="small warn-text">⚠ ${esc(w)}</div>`).join('')}</td>
    <td><code>${esc(addr)}</code></td>
    <td>${esc(srv.datacenter || '–')}</td>
    <td>${replicationCell(g, index, probe, st)}</td>
    <td class="mem">${memoryCell(st)}</td>
    <td class="num">${st ? fmtInt(st.keys) : '–'}</td>
    <td class="num">${st ? fmtInt(st.clients) : '–'}</td>
    <td class="num">${epoch === null ? '–' : esc(epoch)}</td>
    <td>${healthCell(probe, st)}</td>
    <td class="center">${isMaster ? '' : `<input type="checkbox" data-act="replica-group" ${ids} ${srv.replica_group ? 'checked' : ''} title="Proxies read from this replica" aria-label="Proxies read from ${esc(addr)}">`}</td>
    <td>${syncStateBadge(actionState)}
      <button type="button" class="small-btn" data-act="server-sync" ${ids} title="Attach this server to its group's master again">Sync</button></td>
    <td class="actions">
      ${isMaster ? '' : `<button type="button" class="small-btn" data-act="server-promote" ${ids}>Promote</button>`}
      <button type="button" class="small-btn danger-outline" data-act="server-del" ${ids} data-master="${isMaster ? 1 : 0}"
        ${deletable ? '' : 'disabled title="The master can only be deleted when it is the only server"'}>Delete</button>
    </td></tr>`;
}

function renderFooter(d) {
  const model = d.t.model || {};
  const bits = [`dashboard version ${d.t.version || '?'}`];
  if (model.hostname) bits.push(`pid ${model.pid} on ${model.hostname}`);
  if (model.start_time) bits.push(`started ${model.start_time}`);
  $('#version').textContent = bits.join(' · ');
}

/* ─────────────────────────── Table actions ───────────────────────────
 * Buttons in re-rendered tables carry data-act plus their ids; one delegated listener runs them. */

function proxyLabel(ds) {
  return `proxy ${ds.id ? `#${ds.id} ` : ''}${ds.addr ? `at ${ds.addr}` : ds.token}`;
}

const TABLE_ACTIONS = {
  'proxy-reinit': (btn, ds) => run(btn, { fail: `Could not reinit ${proxyLabel(ds)}`, ok: `Reinitialised ${proxyLabel(ds)}` },
    () => mutate('proxy/reinit', [ds.token])),

  'proxy-remove': async (btn, ds) => {
    const yes = await confirmAction('Remove proxy',
      `<p>Remove <b>${esc(proxyLabel(ds))}</b> (token <code>${esc(ds.token)}</code>)?</p>
       <p>The proxy stops serving; its clients lose their connections.</p>`, 'Remove');
    if (yes) run(btn, { fail: `Could not remove ${proxyLabel(ds)}`, ok: `Removed ${proxyLabel(ds)}` }, () => mutate('proxy/remove', [ds.token, 0]));
  },

  'proxy-force-remove': async (btn, ds) => {
    const yes = await confirmAction('Force remove proxy',
      `<p>Force the removal of <b>${esc(proxyLabel(ds))}</b> (token <code>${esc(ds.token)}</code>)?</p>
       <p>It is ${esc(ds.state || 'not healthy')}, so the dashboard may not be able to tell it to stop.
       Make sure the process is really gone: a forgotten proxy may serve with an old slot table.</p>`, 'Force remove');
    if (yes) run(btn, { fail: `Could not force the removal of ${proxyLabel(ds)}`, ok: `Removed ${proxyLabel(ds)}` }, () => mutate('proxy/remove', [ds.token, 1]));
  },

  'slot-action-remove': async (btn, ds) => {
    const yes = await confirmAction('Remove slot action',
      `<p>Cancel the pending move of slot <b>${esc(ds.slot)}</b> to group ${esc(ds.target)}?</p>`, 'Remove action');
    if (yes) run(btn, { fail: `Could not remove the action of slot ${ds.slot}`, ok: `Removed the action of slot ${ds.slot}` },
      () => mutate('slots/action/remove', [ds.slot]));
  },

  'group-resync': (btn, ds) => run(btn, { fail: `Could not sync group ${ds.gid}`, ok: `Group ${ds.gid} synced` },
    () => mutate('group/resync', [ds.gid])),

  'group-failover': (btn, ds) => {
    const on = ds.value === '1';
    return run(btn, { fail: `Could not turn ${on ? 'on' : 'off'} automatic failover of group ${ds.gid}`,
      ok: `Automatic failover of group ${ds.gid} turned ${on ? 'on' : 'off'}` }, () => mutate('group/failover', [ds.gid, on ? 1 : 0]));
  },

  'group-prefill': (btn, ds) => {
    $('#add-server-gid').value = ds.gid;
    $('#add-server-addr').focus();
    $('#add-server-addr').scrollIntoView({ block: 'center', behavior: 'smooth' });
  },

  'group-remove': async (btn, ds) => {
    const yes = await confirmAction('Remove group', `<p>Remove group <b>${esc(ds.gid)}</b>? It has no servers and no slots.</p>`, 'Remove group');
    if (yes) run(btn, { fail: `Could not remove group ${ds.gid}`, ok: `Removed group ${ds.gid}` }, () => mutate('group/remove', [ds.gid]));
  },

  'server-sync': (btn, ds) => run(btn, { fail: `Could not sync ${ds.addr} in group ${ds.gid}`, ok: `Sync of ${ds.addr} started` },
    () => mutate('group/action/create', [ds.addr])),

  'server-promote': async (btn, ds) => {
    const yes = await confirmAction('Promote replica',
      `<p>Promote <b>${esc(ds.addr)}</b> to master of group <b>${esc(ds.gid)}</b>? Writes to the group pause until it is done.</p>`, 'Promote');
    if (yes) run(btn, { fail: `Could not promote ${ds.addr} in group ${ds.gid}`, ok: `${ds.addr} is now the master of group ${ds.gid}` },
      () => mutate('group/promote', [ds.gid, ds.addr]));
  },

  'server-del': async (btn, ds) => {
    const master = ds.master === '1';
    const yes = await confirmAction('Delete server',
      `<p>Remove <b>${esc(ds.addr)}</b> from group <b>${esc(ds.gid)}</b>?</p>
       ${master ? '<p>It is the group\'s master and only server: the group\'s slots become unavailable.</p>' : '<p>The server itself keeps running; it only leaves the group.</p>'}`, 'Delete');
    if (yes) run(btn, { fail: `Could not remove ${ds.addr} from group ${ds.gid}`, ok: `Removed ${ds.addr} from group ${ds.gid}` },
      () => mutate('group/del', [ds.gid, ds.addr]));
  },
};

function onReplicaGroupChange(input) {
  const ds = input.dataset;
  const on = input.checked;
  input.blur(); // a focused input would hold back its table's refresh
  run(input, { fail: `Could not turn ${on ? 'on' : 'off'} replica reads from ${ds.addr}`,
    ok: `Proxies ${on ? 'now read' : 'no longer read'} from ${ds.addr}` }, () => mutate('group/replica-groups', [ds.gid, ds.addr, on ? 1 : 0]));
}

/* ─────────────────────────── Forms ───────────────────────────
 * Forms are static HTML: their inputs keep what the person typed across refreshes. Each one
 * checks its input first and says plainly what is wrong. */

function inputError(text, field) {
  notify('error', text, 'form');
  if (field) $(field).focus();
  return false;
}

function validGid(text) {
  const n = parseWhole(text);
  return n >= 1 && n <= 9999 ? n : NaN;
}

function validSlot(text) {
  const n = parseWhole(text);
  return n >= 0 && n < (state.slotCells.length || 1024) ? n : NaN;
}

const FORMS = {
  'new-proxy': (btn) => {
    const addr = $('#new-proxy-addr').value.trim();
    if (!addr) return inputError('Type the admin address of the proxy, for example 127.0.0.1:11080.', '#new-proxy-addr');
    clearMessage('form');
    return run(btn, { fail: `Could not add the proxy at ${addr}`, ok: `Added the proxy at ${addr}` }, () => mutate('proxy/create', [addr]));
  },

  'new-group': (btn) => {
    const gid = validGid($('#new-group-id').value);
    if (!gid) return inputError('A group id is a whole number from 1 to 9999.', '#new-group-id');
    clearMessage('form');
    return run(btn, { fail: `Could not create group ${gid}`, ok: `Created group ${gid}` }, async () => {
      const result = await mutate('group/create', [gid]);
      if (!$('#add-server-gid').value) $('#add-server-gid').value = String(gid);
      return result;
    });
  },

  'add-server': (btn) => {
    const gid = validGid($('#add-server-gid').value);
    const addr = $('#add-server-addr').value.trim();
    const dc = $('#add-server-dc').value.trim();
    if (!gid) return inputError('Type the id of the group to add the server to (1 to 9999).', '#add-server-gid');
    if (!addr) return inputError('Type the address of the server, for example 127.0.0.1:6379.', '#add-server-addr');
    clearMessage('form');
    return run(btn, { fail: `Could not add server ${addr} to group ${gid}`, ok: `Added server ${addr} to group ${gid}` },
      () => mutate('group/add', dc ? [gid, addr, dc] : [gid, addr]));
  },

  'migrate-range': (btn) => {
    const beg = validSlot($('#range-beg').value);
    const end = validSlot($('#range-end').value);
    const gid = validGid($('#range-gid').value);
    const last = (state.slotCells.length || 1024) - 1;
    if (Number.isNaN(beg)) return inputError(`The first slot is a number from 0 to ${last}.`, '#range-beg');
    if (Number.isNaN(end)) return inputError(`The last slot is a number from 0 to ${last}.`, '#range-end');
    if (end < beg) return inputError('The last slot comes before the first one.', '#range-end');
    if (!gid) return inputError('Type the group to move the slots to (1 to 9999).', '#range-gid');
    clearMessage('form');
    const range = beg === end ? `slot ${beg}` : `slots ${beg}–${end}`;
    return run(btn, { fail: `Could not move ${range} to group ${gid}`, ok: `Moving ${range} to group ${gid}` },
      () => mutate('slots/action/create-range', [beg, end, gid]));
  },

  'migrate-some': (btn) => {
    const from = validGid($('#some-from').value);
    const to = validGid($('#some-to').value);
    const n = parseWhole($('#some-n').value);
    if (!from) return inputError('Type the group to take slots from (1 to 9999).', '#some-from');
    if (!to) return inputError('Type the group to give slots to (1 to 9999).', '#some-to');
    if (from === to) return inputError('The two groups are the same.', '#some-to');
    if (!(n >= 1)) return inputError('Type how many slots to move (1 or more).', '#some-n');
    clearMessage('form');
    return run(btn, { fail: `Could not move ${plural(n, 'slot')} from group ${from} to group ${to}`,
      ok: `Moving ${plural(n, 'slot')} from group ${from} to group ${to}` }, () => mutate('slots/action/create-some', [from, to, n]));
  },

  'set-interval': (btn) => {
    const us = parseWhole($('#action-interval').value);
    if (Number.isNaN(us)) return inputError('The interval is a whole number of microseconds (0 or more).', '#action-interval');
    clearMessage('form');
    return run(btn, { fail: `Could not set the action interval to ${us} µs`, ok: `Slot actions now wait ${fmtInt(us)} µs between steps` },
      () => mutate('slots/action/interval', [us]));
  },
};

/* ─────────────────────────── Buttons outside forms ─────────────────────────── */

function onRebalance(btn) {
  return run(btn, { fail: 'Could not rebalance the slots', ok: (plan) => `Rebalance started: ${plural(Object.keys(plan || {}).length, 'slot')} will move` }, async () => {
    const preview = await mutate('slots/rebalance', [0]);
    if (!preview || typeof preview !== 'object' || Object.keys(preview).length === 0) {
      notify('ok', 'Slots are already balanced', 'rebalance');
      return false;
    }
    const yes = await confirmAction('Rebalance slots', summarisePlan(preview), 'Rebalance', false);
    if (!yes) return false;
    return mutate('slots/rebalance', [1]);
  });
}

function onToggleActions(btn) {
  const disable = btn.dataset.value !== '0';
  return run(btn, { fail: `Could not ${disable ? 'disable' : 'enable'} slot actions`, ok: `Slot actions ${disable ? 'disabled' : 'enabled'}` },
    () => mutate('slots/action/disabled', [disable ? 1 : 0]));
}

function onResyncAll(btn) {
  return run(btn, { fail: 'Could not sync all groups', ok: 'All groups synced' }, () => mutate('group/resync-all', []));
}

function onReplicaReadsAll(btn, on) {
  return run(btn, { fail: `Could not ${on ? 'enable' : 'disable'} replica reads`, ok: `Replica reads ${on ? 'enabled' : 'disabled'} for every replica` },
    () => mutate('group/replica-groups-all', [on ? 1 : 0]));
}

/* ─────────────────────────── Wiring ─────────────────────────── */

function restoreRefreshInterval() {
  const select = $('#refresh-interval');
  const saved = parseWhole(storageGet('localStorage', REFRESH_KEY) || '');
  const sec = saved >= 1 && saved <= 60 ? saved : 2;
  if (![...select.options].some((o) => Number(o.value) === sec)) {
    select.add(new Option(`${sec} s`, String(sec)));
  }
  select.value = String(sec);
  state.intervalSec = sec;
}

function bindControls() {
  $('#product').addEventListener('change', (ev) => {
    location.hash = `p=${encodeURIComponent(ev.target.value)}`;
  });
  window.addEventListener('hashchange', () => {
    const wanted = productFromHash();
    if (wanted && wanted !== state.product) selectProduct(wanted);
  });

  $('#refresh-interval').addEventListener('change', (ev) => {
    const sec = parseWhole(ev.target.value);
    if (!(sec >= 1 && sec <= 60)) return;
    state.intervalSec = sec;
    storageSet('localStorage', REFRESH_KEY, String(sec));
    if (!state.inFlight) scheduleRefresh();
  });

  for (const form of $$('form[data-form]')) {
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const btn = ev.submitter || $('button[type=submit]', form);
      if (btn && btn.disabled) return;
      FORMS[form.dataset.form](btn);
    });
  }

  $('#rebalance').addEventListener('click', (ev) => onRebalance(ev.currentTarget));
  $('#actions-disabled').addEventListener('click', (ev) => onToggleActions(ev.currentTarget));
  $('#resync-all').addEventListener('click', (ev) => onResyncAll(ev.currentTarget));
  $('#replica-reads-on').addEventListener('click', (ev) => onReplicaReadsAll(ev.currentTarget, true));
  $('#replica-reads-off').addEventListener('click', (ev) => onReplicaReadsAll(ev.currentTarget, false));
  $('#action-list-toggle').addEventListener('click', () => {
    state.showAllActions = !state.showAllActions;
    if (state.topom) renderSlots(derive(state.topom));
  });

  document.addEventListener('click', (ev) => {
    const btn = ev.target.closest('button[data-act]');
    if (!btn || btn.disabled) return;
    const handler = TABLE_ACTIONS[btn.dataset.act];
    if (handler) handler(btn, { ...btn.dataset });
  });
  document.addEventListener('change', (ev) => {
    if (ev.target.matches('input[data-act="replica-group"]')) onReplicaGroupChange(ev.target);
  });

  // Dialog cancel buttons close with "cancel" (Escape does the same by itself).
  $('#confirm-cancel').addEventListener('click', () => $('#confirm').close('cancel'));
  $('#auth-cancel').addEventListener('click', () => $('#auth-dialog').close('cancel'));

  // The slot map: hover shows the cell's details, click fills the Migrate range form.
  const map = $('#slot-map');
  map.addEventListener('mouseover', (ev) => {
    const cell = ev.target.closest('.slot');
    if (cell) $('#slot-hover').textContent = cell.title;
  });
  map.addEventListener('mouseleave', () => { $('#slot-hover').textContent = ''; });
  map.addEventListener('click', (ev) => {
    const cell = ev.target.closest('.slot');
    if (!cell) return;
    const sid = Number(cell.dataset.slot);
    const end = parseWhole($('#range-end').value);
    if (ev.shiftKey) {
      $('#range-end').value = String(sid);
    } else {
      $('#range-beg').value = String(sid);
      if (Number.isNaN(end) || end < sid) $('#range-end').value = String(sid);
    }
  });

  if (window.ResizeObserver) new ResizeObserver(() => drawChart()).observe($('#ops-chart'));
  else window.addEventListener('resize', drawChart);
}

function init() {
  buildSlotMap();
  restoreRefreshInterval();
  bindControls();
  drawChart();
  renderFreshness();
  setInterval(renderFreshness, 1000);
  setInterval(reloadProductList, 30000);
  loadProducts();
}

if (typeof document !== 'undefined') {
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
}
