// Page-wide helpers with no knowledge of Codis: escaping, number formatting, messages, the
// confirmation dialog, busy buttons, and rendering that only touches the DOM when the HTML changed.
// Why here: every section of the page uses them, and keeping them free of the API and the app's
// state lets any module import them without import cycles.

export const $ = (selector, root = document) => root.querySelector(selector);
export const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));

/* ── Escaping and formatting ── */

/** Every string from the API goes through this before it reaches innerHTML. */
export function esc(value) {
  return String(value ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
}

const INT_FORMAT = new Intl.NumberFormat('en-US');

export function fmtInt(n) {
  return Number.isFinite(n) ? INT_FORMAT.format(Math.round(n)) : '–';
}

export function fmtBytes(n) {
  if (!Number.isFinite(n)) return '–';
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (Math.abs(n) >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${i === 0 ? Math.round(n) : n.toFixed(n < 10 ? 2 : 1)} ${units[i]}`;
}

/** 1234 → "1.2k": for chart labels where space is short. */
export function fmtCompact(n) {
  const trim = (s) => s.replace(/\.0$/, '');
  if (n >= 1e6) return `${trim((n / 1e6).toFixed(1))}M`;
  if (n >= 1e3) return `${trim((n / 1e3).toFixed(1))}k`;
  return trim(n.toFixed(n % 1 ? 1 : 0));
}

export function fmtDuration(ms) {
  if (!Number.isFinite(ms)) return '–';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s < 10 ? s.toFixed(1) : Math.round(s)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.round(s % 60)} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

export function fmtClock(t, withSeconds = true) {
  const opts = { hour: '2-digit', minute: '2-digit', hour12: false };
  if (withSeconds) opts.second = '2-digit';
  return new Date(t).toLocaleTimeString('en-GB', opts);
}

/** A start time as the dashboard writes it: Unix milliseconds as text, or already a date. */
export function fmtStartTime(text) {
  if (!text) return '';
  if (/^\d{10,}$/.test(String(text))) {
    const d = new Date(Number(text));
    return `${d.toLocaleDateString('en-CA')} ${fmtClock(d)}`;
  }
  return String(text);
}

/** [0,1,2,5,7,8] → ["0–2", "5", "7–8"]. */
export function compressRanges(numbers) {
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

export function shortRanges(numbers, max = 6) {
  const ranges = compressRanges(numbers);
  return ranges.slice(0, max).join(', ') + (ranges.length > max ? ', …' : '');
}

/** A whole number typed by a person, or NaN. */
export function parseWhole(text) {
  return /^\s*\d+\s*$/.test(text) ? Number(text) : NaN;
}

export function plural(n, word, many = `${word}s`) {
  return `${fmtInt(n)} ${n === 1 ? word : many}`;
}

export function storageGet(store, key) {
  try { return window[store].getItem(key); } catch { return null; }
}

export function storageSet(store, key, value) {
  try { window[store].setItem(key, value); } catch { /* private mode or full: keep going */ }
}

export function storageRemove(store, key) {
  try { window[store].removeItem(key); } catch { /* nothing to do */ }
}

/* Stable, distinct colours per group id: a fixed palette for the usual few groups, then the
 * golden angle around the hue circle so any id keeps its colour across refreshes. */
const PALETTE = [
  '#4e79a7', '#f28e2b', '#59a14f', '#e15759', '#76b7b2', '#edc948', '#b07aa1', '#ff9da7',
  '#9c755f', '#8cd17d', '#d37295', '#a0cbe8', '#ffbe7d', '#499894', '#b6992d', '#86bcb6',
];

export function groupColor(gid) {
  gid = Number(gid);
  if (!gid) return '#c8ccd1';
  if (gid <= PALETTE.length) return PALETTE[gid - 1];
  return `hsl(${Math.round((gid * 137.508) % 360)} 50% 55%)`;
}

/* ── Rendering only what changed ──
 * Refreshes come every second or two; rebuilding a table each time loses hover, selection and
 * clicks in flight. setHTML skips identical HTML; patchRows keeps rows by key and, inside a row
 * that changed, replaces only the cells that changed. */

const lastHtml = new WeakMap(); // element → the HTML last assigned to it
const cellHtml = new WeakMap(); // <td> → its HTML when inserted (live HTML drifts with busy state)

/** Assigns innerHTML only when it differs from the last assignment. True when it changed. */
export function setHTML(el, html) {
  if (!el || lastHtml.get(el) === html) return false;
  el.innerHTML = html;
  lastHtml.set(el, html);
  return true;
}

const template = document.createElement('template');

function parseRow(html) {
  template.innerHTML = html.trim();
  return template.content.firstElementChild;
}

function rememberCells(tr) {
  for (const td of tr.cells) cellHtml.set(td, td.outerHTML);
}

function patchRow(tr, fresh) {
  for (const name of tr.getAttributeNames()) if (!fresh.hasAttribute(name)) tr.removeAttribute(name);
  for (const name of fresh.getAttributeNames()) {
    if (tr.getAttribute(name) !== fresh.getAttribute(name)) tr.setAttribute(name, fresh.getAttribute(name));
  }
  if (tr.cells.length !== fresh.cells.length) {
    tr.replaceChildren(...fresh.cells);
    rememberCells(tr);
    return;
  }
  const newCells = [...fresh.cells];
  [...tr.cells].forEach((td, i) => {
    const html = newCells[i].outerHTML;
    if (cellHtml.get(td) === html) return;
    td.replaceWith(newCells[i]);
    cellHtml.set(newCells[i], html);
  });
}

/**
 * Makes `tbody` show `rows` ([{key, html}], html one <tr>) in that order, or `emptyHtml` when
 * there are none. Unchanged rows and cells stay the same DOM nodes. True when anything changed.
 */
export function patchRows(tbody, rows, emptyHtml) {
  if (!rows.length) rows = [{ key: '\u0000empty', html: emptyHtml }];
  const signature = rows.map((r) => `${r.key}\u0001${r.html}`).join('\u0002');
  if (lastHtml.get(tbody) === signature) return false;
  lastHtml.set(tbody, signature);
  const existing = new Map();
  for (const tr of tbody.rows) existing.set(tr.dataset.rowKey, tr);
  let cursor = tbody.firstElementChild;
  for (const { key, html } of rows) {
    let tr = existing.get(key);
    const fresh = parseRow(html);
    fresh.dataset.rowKey = key;
    if (tr) {
      existing.delete(key);
      if (lastHtml.get(tr) !== html) patchRow(tr, fresh);
    } else {
      tr = fresh;
      rememberCells(tr);
    }
    lastHtml.set(tr, html);
    if (tr !== cursor) tbody.insertBefore(tr, cursor);
    else cursor = cursor.nextElementSibling;
  }
  for (const tr of existing.values()) tr.remove();
  return true;
}

/** Forget what was rendered into `el`, so the next setHTML/patchRows renders it again. */
export function forget(el) {
  lastHtml.delete(el);
}

/** True when the person is typing in `root` (a text or number field): leave it alone this round. */
export function typingIn(root) {
  const el = document.activeElement;
  return Boolean(el && root.contains(el)
    && el.matches('textarea, input:not([type]), input[type=text], input[type=number], input[type=password], input[type=search]'));
}

/* ── Messages ──
 * Errors stay until dismissed or replaced (same key); successes fade after 4 s. */

export function notify(kind, text, key = '') {
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

export function clearMessage(key) {
  $$('#messages .message').filter((m) => m.dataset.key === key).forEach((m) => m.remove());
}

export function messageText(key) {
  const m = $$('#messages .message').find((x) => x.dataset.key === key);
  return m ? $('.text', m).textContent : null;
}

/* ── Confirmation ──
 * A modal <dialog> rather than window.confirm: it is styled, and headless tests can see it.
 * The body is HTML built by the caller with esc(). Resolves true only on OK; closing it for any
 * other reason (Cancel, Escape, a product switch) is a no. */

export function confirmAction(title, bodyHtml, okLabel = 'OK', danger = true) {
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
    ok.classList.toggle('primary', !danger);
    dialog.returnValue = '';
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'ok'), { once: true });
    dialog.showModal();
    (danger ? $('#confirm-cancel') : ok).focus();
  });
}

/** Closes every open dialog as cancelled (the product changed under it). */
export function closeDialogs() {
  for (const dialog of $$('dialog')) if (dialog.open) dialog.close('cancel');
}

/* ── Busy buttons ──
 * While a call runs its control is disabled with a spinner. Keys name the product and the
 * control, so a call for product A never marks B's buttons, and re-rendered rows get the state
 * back from the key. A control disabled for its own reasons carries data-off="1". */

const busy = new Set(); // `${product}|${control key}` of calls in flight
let busyProduct = '';
let afterAction = async () => {};

/** The product whose controls are on screen now; forgets the busy marks of the previous one. */
export function setBusyProduct(product) {
  busyProduct = product;
  applyBusy(document);
}

/** What to do after a call that changed something (the app refreshes, then the message shows). */
export function setAfterAction(fn) {
  afterAction = fn;
}

export function controlKey(el) {
  if (el.id) return el.id;
  const d = el.dataset;
  return [d.act, d.gid, d.addr, d.token, d.slot].join('|');
}

export function isBusy(product, el) {
  return busy.has(`${product}|${controlKey(el)}`);
}

function setBusy(el, on) {
  if (el.classList.contains('busy') === on) return;
  el.classList.toggle('busy', on);
  el.disabled = on || el.dataset.off === '1';
  el.setAttribute('aria-busy', on ? 'true' : 'false');
}

/** Marks the controls under `root` busy or not, from the keys of the calls in flight. */
export function applyBusy(root) {
  const controls = $$('[data-act], form[data-form] button[type=submit]', root);
  if (root instanceof Element && root.matches('[data-act]')) controls.push(root);
  for (const el of controls) setBusy(el, isBusy(busyProduct, el));
}

/** A call's result that means "the person said no: say nothing, change nothing". */
export const CANCELLED = Symbol('cancelled');

/**
 * Runs `fn` for `product` with `control` busy. `fail` starts the error ("Could not …"), and the
 * error's own text follows unchanged. `ok` is the success text (or a function of the result),
 * shown after the view was refreshed, so it can quote what the cluster now says.
 */
export async function run(product, control, { fail, ok }, fn) {
  const key = `${product}|${control ? controlKey(control) : fail}`;
  if (busy.has(key)) return;
  busy.add(key);
  if (control && product === busyProduct) setBusy(control, true);
  const where = () => (product === busyProduct ? '' : `Product ${product}: `);
  try {
    const result = await fn();
    if (result === CANCELLED) return;
    await afterAction(product);
    if (ok) notify('ok', where() + (typeof ok === 'function' ? ok(result) : ok), key);
    else clearMessage(key);
  } catch (err) {
    afterAction(product).catch(() => {}); // a refused call may still have changed something
    if (!err || !err.api) console.error(err);
    const text = err && err.api ? err.message : `the page hit a bug (${err && err.message})`;
    notify('error', `${where()}${fail}: ${text}`, key);
  } finally {
    busy.delete(key);
    applyBusy(document);
  }
}

/** Says what is wrong with a form's input and puts the cursor there. */
export function inputError(text, selector) {
  notify('error', text, 'form');
  const field = selector ? $(selector) : null;
  if (field) field.focus();
}

/** "just now", "3.0 s ago": how long since, rounded so it does not change every refresh. */
export function fmtAgo(ms) {
  if (!Number.isFinite(ms)) return '–';
  return ms < 1500 ? 'just now' : `${fmtDuration(Math.round(ms / 1000) * 1000)} ago`;
}
