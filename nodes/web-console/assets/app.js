// Codis console, the entry point: the page served by codis-fe (many products) and by one
// product's dashboard. It holds the page's state, picks the product (#p=<name> in the URL),
// polls `topom` for it, hands each reply to the sections (overview, chart, proxies, slots,
// groups), and wires every control with one delegated listener per event type, so a button
// replaced by a refresh never loses a click. No framework and no build step: ES modules only.

import { cancelPrompts, listProducts, readTopom } from './api.js';
import { addSample, clearChart, drawChart } from './chart.js';
import * as groups from './groups.js';
import { clearOverview, renderOverview, totalQps } from './overview.js';
import * as proxies from './proxies.js';
import * as slots from './slots.js';
import {
  $, clearMessage, closeDialogs, esc, fmtClock, fmtDuration, messageText, notify, parseWhole,
  setAfterAction, setBusyProduct, storageGet, storageSet,
} from './ui.js';

const REFRESH_KEY = 'codis-console.refresh-interval';
const HOLD_MS = 2000; // longest a pressed button holds back re-rendering

const ACTIONS = { ...proxies.ACTIONS, ...slots.ACTIONS, ...groups.ACTIONS };
const CHANGES = { ...groups.CHANGES };
const FORMS = { ...proxies.FORMS, ...slots.FORMS, ...groups.FORMS };

const state = {
  products: [],
  product: '',
  view: null, // the last reply for this product, flattened by derive()
  lastSuccess: 0,
  lastError: null,
  refreshes: 0,
  intervalSec: 2,
  timer: 0,
  inFlight: null, // the refresh running now
  ctrl: null, // aborts it (product switch)
  again: false, // someone asked for a refresh while one ran
  waiters: [], // resolve when a refresh started after they asked has finished
  held: 0, // when a button was pressed: re-rendering waits for the click
  missed: false, // a render was held back
};

/* ── The reply, flattened ──
 * `topom` is nested and most fields optional; flatten it once per refresh. A proxy or server
 * whose last poll failed has no "live" figures: the sections show its error instead. */

function derive(t, product) {
  const stats = t.stats || {};
  const group = stats.group || {};
  const proxy = stats.proxy || {};
  const slotList = [];
  for (const s of stats.slots || []) slotList[s.id] = s;
  const slotCount = new Map();
  for (const s of slotList) {
    if (!s) continue;
    const gid = s.group_id || 0;
    slotCount.set(gid, (slotCount.get(gid) || 0) + 1);
  }
  const config = t.config || {};
  const proxyStats = proxy.stats || {};
  const serverStats = group.stats || {};
  const proxyLive = {};
  for (const [token, s] of Object.entries(proxyStats)) proxyLive[token] = s && !s.stats_error && s.ops ? s : null;
  const serverLive = {};
  for (const [addr, s] of Object.entries(serverStats)) serverLive[addr] = s && (s.error === null || s.error === undefined) ? s : null;
  return {
    t,
    product,
    stats,
    config,
    model: t.model || {},
    slots: slotList,
    slotTotal: Math.max(1024, slotList.length),
    slotCount,
    groups: (group.models || []).slice().sort((a, b) => a.id - b.id),
    probes: group.servers || {},
    serverStats,
    serverLive,
    proxies: (proxy.models || []).slice().sort((a, b) => a.id - b.id),
    proxyStats,
    proxyLive,
    failoverAuto: (stats.failover || {}).auto ?? config.failover_auto,
    failoverStatus: (stats.failover || {}).status || {},
    slotAction: stats.slot_action || {},
  };
}

function holding() {
  return state.held && Date.now() - state.held < HOLD_MS;
}

function renderTables(view) {
  proxies.renderProxies(view);
  slots.renderSlots(view);
  groups.renderGroups(view);
}

function render(view) {
  renderOverview(view);
  drawChart();
  if (holding()) state.missed = true;
  else renderTables(view);
  if (view.stats.closed) {
    if (!messageText('closed')) notify('error', `The dashboard of product ${view.product} is shutting down.`, 'closed');
  } else {
    clearMessage('closed');
  }
}

/* ── Refresh loop ──
 * One request at a time. A refresh asked for during another runs right after it, and whoever
 * asked is told when that one is done (so a success message can quote the new state). Nothing
 * is polled while the tab is hidden. */

function scheduleRefresh() {
  clearTimeout(state.timer);
  if (document.hidden || !state.product) return;
  state.timer = setTimeout(() => { if (!state.inFlight) startRefresh(); }, state.intervalSec * 1000);
}

function startRefresh() {
  clearTimeout(state.timer);
  state.again = false;
  const waiters = state.waiters.splice(0);
  state.inFlight = refresh().finally(() => {
    state.inFlight = null;
    for (const done of waiters) done();
    if (state.again || state.waiters.length) startRefresh();
    else scheduleRefresh();
  });
}

/** Refreshes now (or right after the one running); resolves once that refresh is done. */
function requestRefresh() {
  return new Promise((resolve) => {
    state.waiters.push(resolve);
    if (state.inFlight) state.again = true;
    else startRefresh();
  });
}

async function refresh() {
  const product = state.product;
  if (!product) return;
  const ctrl = new AbortController();
  state.ctrl = ctrl;
  try {
    const topom = await readTopom(product, { timeoutMs: Math.max(10000, state.intervalSec * 2000), signal: ctrl.signal });
    if (product !== state.product) return;
    const view = derive(topom, product);
    state.view = view;
    addSample(totalQps(view));
    render(view);
    state.lastSuccess = Date.now();
    state.lastError = null;
    clearMessage('refresh');
    state.refreshes += 1;
    document.body.dataset.refreshes = String(state.refreshes);
    document.body.dataset.ready = '1';
  } catch (err) {
    if ((err && err.aborted) || product !== state.product) return;
    state.lastError = err;
    if (!err || !err.api) console.error(err);
    const why = err && err.api ? err.message : `the page hit a bug (${err && err.message})`;
    const text = `Could not read the state of product ${product}: ${why}`;
    if (messageText('refresh') !== text) notify('error', text, 'refresh');
  } finally {
    if (state.ctrl === ctrl) state.ctrl = null;
  }
  renderFreshness();
}

/** "updated 12:00:03", or red "stale" once a refresh fails or the last one is too old. */
function renderFreshness() {
  const el = $('#last-updated');
  const now = Date.now();
  const tooOld = !document.hidden && state.lastSuccess && now - state.lastSuccess > Math.max(3 * state.intervalSec * 1000, 10000);
  const stale = Boolean(state.lastError) || Boolean(tooOld);
  el.classList.toggle('stale', stale);
  if (!state.lastSuccess) {
    el.textContent = stale ? 'stale · never updated' : 'loading…';
  } else if (stale) {
    el.textContent = `stale · last updated ${fmtClock(state.lastSuccess)} (${fmtDuration(now - state.lastSuccess)} ago)`;
  } else {
    el.textContent = `updated ${fmtClock(state.lastSuccess)}`;
  }
  el.title = state.lastError ? String(state.lastError.message || '') : '';
}

/* ── Products ──
 * `list` names the products; the hash (#p=name) picks one so a link opens the same view. */

function productFromHash() {
  const m = /(?:^#|&)p=([^&]*)/.exec(location.hash);
  if (!m) return '';
  try { return decodeURIComponent(m[1]); } catch { return ''; }
}

async function loadProducts() {
  let list;
  try {
    list = await listProducts();
  } catch (err) {
    notify('error', `Could not list the products: ${err && err.api ? err.message : err}`, 'list');
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

/** Quietly picks up products added or removed while the page is open. */
async function reloadProductList() {
  if (document.hidden || !state.products.length) return;
  try {
    const list = await listProducts();
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

/** Shows `name`: forgets everything about the previous product, dialogs and busy marks included. */
function selectProduct(name) {
  if (!name || (name === state.product && state.view)) return;
  if (state.ctrl) state.ctrl.abort();
  closeDialogs();
  cancelPrompts();
  state.product = name;
  state.view = null;
  state.lastSuccess = 0;
  state.lastError = null;
  state.missed = false;
  setBusyProduct(name);
  $('#product').value = name;
  $('#product-name').textContent = name;
  document.title = `${name} · Codis console`;
  const hash = `#p=${encodeURIComponent(name)}`;
  if (location.hash !== hash) history.replaceState(null, '', hash);
  clearOverview();
  clearChart();
  proxies.clearProxies();
  slots.clearSlots();
  groups.clearGroups();
  clearMessage('refresh');
  clearMessage('closed');
  renderFreshness();
  requestRefresh();
}

/* ── Wiring ── */

function restoreRefreshInterval() {
  const select = $('#refresh-interval');
  const saved = parseWhole(storageGet('localStorage', REFRESH_KEY) || '');
  const sec = saved >= 1 && saved <= 60 ? saved : 2;
  if (![...select.options].some((o) => Number(o.value) === sec)) select.add(new Option(`${sec} s`, String(sec)));
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

  // One listener per event type, on the document: controls are found by data-act / data-form
  // when the event comes, so a row re-rendered between press and release does not matter.
  document.addEventListener('click', (ev) => {
    const el = ev.target.closest('button[data-act]');
    if (!el || el.disabled || !state.product) return;
    const handler = ACTIONS[el.dataset.act];
    if (handler) handler({ el, ds: { ...el.dataset }, product: state.product });
  });
  document.addEventListener('change', (ev) => {
    const el = ev.target.closest('input[data-act]');
    if (!el || !state.product) return;
    const handler = CHANGES[el.dataset.act];
    if (handler) handler({ el, ds: { ...el.dataset }, product: state.product });
  });
  document.addEventListener('submit', (ev) => {
    const form = ev.target.closest('form[data-form]');
    if (!form) return; // the dialogs' own forms close them
    ev.preventDefault();
    const el = ev.submitter || $('button[type=submit]', form);
    if ((el && el.disabled) || !state.product) return;
    const handler = FORMS[form.dataset.form];
    if (handler) handler({ el, product: state.product });
  });

  // While a button is pressed, tables wait: the click lands on the button that was pressed.
  document.addEventListener('pointerdown', (ev) => {
    if (ev.target.closest('button, input[type=checkbox]')) state.held = Date.now();
  }, true);
  const release = () => {
    if (!state.held) return;
    setTimeout(() => { // after the click that follows this pointerup
      state.held = 0;
      if (state.missed && state.view) {
        state.missed = false;
        renderTables(state.view);
      }
    }, 0);
  };
  document.addEventListener('pointerup', release, true);
  document.addEventListener('pointercancel', release, true);

  // Dialog cancel buttons close with "cancel" (Escape does the same by itself).
  $('#confirm-cancel').addEventListener('click', () => $('#confirm').close('cancel'));
  $('#auth-cancel').addEventListener('click', () => $('#auth-dialog').close('cancel'));

  // A hidden tab polls nothing; back in view it refreshes at once.
  document.addEventListener('visibilitychange', () => {
    if (document.hidden) clearTimeout(state.timer);
    else if (state.product) requestRefresh();
  });

  if (window.ResizeObserver) new ResizeObserver(() => drawChart()).observe($('#ops-chart'));
  else window.addEventListener('resize', drawChart);
}

function init() {
  setAfterAction(async (product) => {
    if (product === state.product) await requestRefresh();
  });
  slots.initSlots();
  restoreRefreshInterval();
  bindControls();
  drawChart();
  renderFreshness();
  setInterval(renderFreshness, 1000);
  setInterval(reloadProductList, 30000);
  loadProducts();
}

init();
