// The slots card: the 1024-cell slot map (built once, cells touched only when their owner or
// action changes), the legend, the progress of the current batch of slot actions, the list of
// actions, and the controls that move slots: migrate a range or some, rebalance, the interval
// between steps, and switching slot actions off and on.

import { mutate } from './api.js';
import {
  $, CANCELLED, applyBusy, clearMessage, confirmAction, esc, fmtInt, groupColor, inputError,
  parseWhole, patchRows, plural, run, setHTML, shortRanges, typingIn,
} from './ui.js';

const COLLAPSED = 20; // action rows shown before "Show all"
const MAX_INTERVAL_US = 1000000; // the dashboard's cap

let cells = []; // the slot map's cells, by slot id
let sigs = []; // what each cell shows now, to skip unchanged ones
let showAll = false;
let last = null; // the last derived view rendered, for plans and read-backs
// The current batch of slot actions: every slot seen with an action since none was left.
let seen = new Set();
let firstLook = true; // nothing rendered yet for this product
let sincePageOpened = false; // the batch was already running when we first looked

export function buildSlotMap(count = 1024) {
  const map = $('#slot-map');
  map.textContent = '';
  const frag = document.createDocumentFragment();
  cells = [];
  sigs = [];
  for (let i = 0; i < count; i++) {
    const cell = document.createElement('div');
    cell.className = 'slot offline';
    cell.dataset.slot = String(i);
    cell.dataset.group = '0';
    cell.title = `slot ${i} · offline`;
    frag.append(cell);
    cells.push(cell);
    sigs.push('');
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
  if (cells.length !== d.slotTotal) buildSlotMap(d.slotTotal);
  const statusBySlot = (d.slotAction.progress || {}).status || {};
  for (let i = 0; i < cells.length; i++) {
    const s = d.slots[i] || {};
    const gid = s.group_id || 0;
    const act = s.action || {};
    const status = statusBySlot[i] || '';
    const sig = `${gid}|${act.state || ''}|${act.target_id ?? ''}|${act.index ?? ''}|${status}`;
    if (sig === sigs[i]) continue;
    sigs[i] = sig;
    const cell = cells[i];
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
  const pct = (n) => `${((n / d.slotTotal) * 100).toFixed(1)}%`;
  const label = (gid) => (gid ? `Group ${gid}` : 'Offline');
  setHTML($('#slot-dist'), entries.filter(([, n]) => n > 0).map(([gid, n]) =>
    `<span class="seg${gid ? '' : ' offline'}" style="--c:${groupColor(gid)};flex-grow:${n}" title="${esc(label(gid))}: ${n} slots (${pct(n)})"></span>`).join(''));
  setHTML($('#slot-legend'), entries.map(([gid, n]) =>
    `<li><span class="swatch${gid ? '' : ' offline'}" style="--c:${groupColor(gid)}"></span>
      <span class="name">${esc(label(gid))}</span><span class="num">${fmtInt(n)}</span><span class="pct">${pct(n)}</span></li>`).join('')
    || '<li class="muted">No group yet.</li>');
}

/** "Actions: 120 remaining (3 migrating, 117 pending) · done in this batch: 40 / 160". */
function renderActionProgress(d, withAction) {
  const active = new Set(withAction.map((s) => s.id));
  if (!active.size) {
    seen = new Set();
    sincePageOpened = false;
  } else {
    if (!seen.size) sincePageOpened = firstLook;
    for (const id of active) seen.add(id);
  }
  firstLook = false;
  const remaining = active.size;
  const total = seen.size;
  const done = total - remaining;

  const counts = new Map();
  for (const s of withAction) counts.set(s.action.state, (counts.get(s.action.state) || 0) + 1);
  const order = ['migrating', 'preparing', 'prepared', 'finished', 'pending'];
  const parts = [...counts.keys()].sort((a, b) => order.indexOf(a) - order.indexOf(b)).map((k) => `${counts.get(k)} ${k}`);
  const progress = $('#action-progress');
  const summary = $('#action-summary');
  if (remaining) {
    summary.textContent = `Actions: ${remaining} remaining (${parts.join(', ')}) · done ${
      sincePageOpened ? 'since this page opened' : 'in this batch'}: ${done} / ${total}`;
    progress.max = total;
    progress.value = done;
  } else {
    summary.textContent = 'Actions: none. Every slot is where it belongs.';
    progress.max = 1;
    progress.value = 0;
  }
  progress.classList.toggle('idle', !remaining);

  const disabled = Boolean(d.slotAction.disabled);
  const note = $('#action-disabled-note');
  note.hidden = !disabled;
  note.textContent = remaining ? 'Slot actions are disabled: nothing moves until you enable them.' : 'Slot actions are disabled.';
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
  const collapsed = !showAll && rows.length > COLLAPSED;
  const shown = collapsed ? rows.slice(0, COLLAPSED) : rows;
  toggle.hidden = rows.length <= COLLAPSED;
  toggle.textContent = collapsed ? `Show all ${rows.length}` : `Show first ${COLLAPSED}`;
  table.classList.toggle('is-empty', rows.length === 0);
  if (typingIn(tbody)) return;
  const html = shown.map((s) => {
    const a = s.action;
    return {
      key: String(s.id),
      html: `<tr data-slot="${esc(s.id)}">
      <td class="num">${esc(s.id)}</td>
      <td><span class="swatch" style="--c:${groupColor(s.group_id)}"></span>${s.group_id ? esc(s.group_id) : 'offline'}</td>
      <td><span class="swatch" style="--c:${groupColor(a.target_id)}"></span>${esc(a.target_id ?? '–')}</td>
      <td class="num">${esc(a.index ?? '–')}</td>
      <td><span class="badge ${a.state === 'pending' ? 'neutral' : 'warn'}">${esc(a.state)}</span></td>
      <td class="small">${esc(statusBySlot[s.id] || '')}</td>
      <td class="actions">${a.state === 'pending'
        ? `<button type="button" class="small-btn danger-outline" data-act="slot-action-remove" data-slot="${esc(s.id)}" data-target="${esc(a.target_id)}">Remove</button>` : ''}</td>
    </tr>`,
    };
  });
  if (patchRows(tbody, html, '<tr class="empty"><td colspan="7">No slot actions.</td></tr>')) applyBusy(tbody);
}

export function renderSlots(d) {
  last = d;
  updateSlotMap(d);
  renderLegend(d);
  const withAction = d.slots.filter((s) => s && s.action && s.action.state);
  renderActionProgress(d, withAction);
  renderActionList(d, withAction);
}

/** Another product: forget the map, the batch and the list. */
export function clearSlots() {
  last = null;
  seen = new Set();
  firstLook = true;
  sincePageOpened = false;
  showAll = false;
  buildSlotMap(cells.length || 1024);
  setHTML($('#slot-legend'), '');
  setHTML($('#slot-dist'), '');
  patchRows($('#action-list').tBodies[0], [], '<tr class="empty"><td colspan="7">Loading…</td></tr>');
  $('#action-list-toggle').hidden = true;
  $('#action-summary').textContent = 'Actions: –';
  $('#action-interval-current').textContent = '';
}

/** The slot map: hover shows a cell's details, click fills the Migrate range form. */
export function initSlots() {
  buildSlotMap();
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
}

/** The last view of `product`, or null when the page shows another one now. */
function lastOf(product) {
  return last && last.product === product ? last : null;
}

/** Rebalance plan ({slot: gid}) → "Move 341 slots:" and one line per (from → to) with its ranges. */
function summarisePlan(plan, product) {
  const view = lastOf(product);
  const owner = new Map(((view && view.slots) || []).filter(Boolean).map((s) => [s.id, s.group_id || 0]));
  const moves = new Map();
  for (const [sid, to] of Object.entries(plan)) {
    const from = owner.get(Number(sid)) ?? 0;
    const key = `${from}→${to}`;
    if (!moves.has(key)) moves.set(key, { from, to, slots: [] });
    moves.get(key).slots.push(Number(sid));
  }
  const items = [...moves.values()].sort((a, b) => a.from - b.from || a.to - b.to).map((m) =>
    `<li>${m.from ? `group ${esc(m.from)}` : 'offline'} → group ${esc(m.to)}: ${plural(m.slots.length, 'slot')} (${esc(shortRanges(m.slots))})</li>`);
  return `<p>Move ${plural(Object.keys(plan).length, 'slot')} of product <b>${esc(product)}</b>:</p><ul class="plan">${items.join('')}</ul>
    <p class="muted">Each slot migrates in the background; clients keep working.</p>`;
}

function planSize(plan) {
  return plan && typeof plan === 'object' ? Object.keys(plan).length : 0;
}

function validGid(text) {
  const n = parseWhole(text);
  return n >= 1 && n <= 9999 ? n : NaN;
}

function slotCount() {
  return cells.length || 1024;
}

function validSlot(text) {
  const n = parseWhole(text);
  return n >= 0 && n < slotCount() ? n : NaN;
}

/** Buttons by data-act: each gets the control, its data-* and the product at click time. */
export const ACTIONS = {
  rebalance: ({ el, product }) => run(product, el, { fail: 'Could not rebalance the slots', ok: (r) => r.text }, async () => {
    const preview = await mutate(product, 'slots/rebalance', [0]);
    const previewed = planSize(preview);
    if (!previewed) return { text: 'The slots are already balanced: nothing to move.' };
    const yes = await confirmAction('Rebalance slots', summarisePlan(preview, product), 'Rebalance', false);
    if (!yes) return CANCELLED;
    const applied = planSize(await mutate(product, 'slots/rebalance', [1]));
    let text = applied ? `Rebalance started: ${plural(applied, 'slot')} will move` : 'Rebalance: nothing to move any more';
    if (applied !== previewed) text += ` (the preview showed ${plural(previewed, 'slot')}: the cluster changed in between)`;
    return { text };
  }),

  'actions-disabled': ({ el, ds, product }) => {
    const disable = ds.value !== '0';
    return run(product, el, { fail: `Could not ${disable ? 'disable' : 'enable'} slot actions`, ok: `Slot actions ${disable ? 'disabled' : 'enabled'}` }, async () => {
      if (disable) {
        const yes = await confirmAction('Disable slot actions',
          `<p>Disable slot actions of product <b>${esc(product)}</b>?</p><p>Slots waiting to move stay where they are until you enable them again.</p>`, 'Disable');
        if (!yes) return CANCELLED;
      }
      return mutate(product, 'slots/action/disabled', [disable ? 1 : 0]);
    });
  },

  'slot-action-remove': ({ el, ds, product }) => run(product, el,
    { fail: `Could not remove the action of slot ${ds.slot}`, ok: `Removed the action of slot ${ds.slot}` }, async () => {
      const yes = await confirmAction('Remove slot action',
        `<p>Cancel the pending move of slot <b>${esc(ds.slot)}</b> to group ${esc(ds.target)}?</p>`, 'Remove action');
      return yes ? mutate(product, 'slots/action/remove', [ds.slot]) : CANCELLED;
    }),

  'action-list-toggle': () => {
    showAll = !showAll;
    if (last) renderActionList(last, last.slots.filter((s) => s && s.action && s.action.state));
  },
};

export const FORMS = {
  'migrate-range': ({ el, product }) => {
    const beg = validSlot($('#range-beg').value);
    const end = validSlot($('#range-end').value);
    const gid = validGid($('#range-gid').value);
    const lastSlot = slotCount() - 1;
    if (Number.isNaN(beg)) return inputError(`The first slot is a number from 0 to ${lastSlot}.`, '#range-beg');
    if (Number.isNaN(end)) return inputError(`The last slot is a number from 0 to ${lastSlot}.`, '#range-end');
    if (end < beg) return inputError('The last slot comes before the first one.', '#range-end');
    if (!gid) return inputError('Type the group to move the slots to (1 to 9999).', '#range-gid');
    clearMessage('form');
    const n = end - beg + 1;
    const range = beg === end ? `slot ${beg}` : `slots ${beg}–${end}`;
    return run(product, el, { fail: `Could not move ${range} to group ${gid}`, ok: `Moving ${range} to group ${gid}` }, async () => {
      const yes = await confirmAction('Migrate slots',
        `<p>Move ${range}${n > 1 ? ` (${plural(n, 'slot')})` : ''} to group <b>${gid}</b>?</p><p class="muted">Product ${esc(product)}. Each slot migrates in the background.</p>`, 'Migrate');
      return yes ? mutate(product, 'slots/action/create-range', [beg, end, gid]) : CANCELLED;
    });
  },

  'migrate-some': ({ el, product }) => {
    const from = validGid($('#some-from').value);
    const to = validGid($('#some-to').value);
    const n = parseWhole($('#some-n').value);
    if (!(n >= 1)) return inputError('Type how many slots to move (1 or more).', '#some-n');
    if (!from) return inputError('Type the group to take slots from (1 to 9999).', '#some-from');
    if (!to) return inputError('Type the group to give slots to (1 to 9999).', '#some-to');
    if (from === to) return inputError('The two groups are the same.', '#some-to');
    clearMessage('form');
    const what = `${plural(n, 'slot')} from group ${from} to group ${to}`;
    return run(product, el, { fail: `Could not move ${what}`, ok: `Moving ${what}` }, async () => {
      const yes = await confirmAction('Migrate slots',
        `<p>Move ${esc(what)}?</p><p class="muted">Product ${esc(product)}. Each slot migrates in the background.</p>`, 'Migrate');
      return yes ? mutate(product, 'slots/action/create-some', [from, to, n]) : CANCELLED;
    });
  },

  'set-interval': ({ el, product }) => {
    const us = parseWhole($('#action-interval').value);
    if (!(us >= 0 && us <= MAX_INTERVAL_US)) {
      return inputError(`The interval is a whole number of microseconds from 0 to ${fmtInt(MAX_INTERVAL_US)}.`, '#action-interval');
    }
    clearMessage('form');
    // The message quotes what the dashboard stored, read back by the refresh after the call.
    const stored = () => {
      const view = lastOf(product);
      const value = view ? view.slotAction.interval : undefined;
      return Number.isFinite(value) ? `Slot actions now wait ${fmtInt(value)} µs between steps` : `Interval of ${fmtInt(us)} µs sent`;
    };
    return run(product, el, { fail: `Could not set the action interval to ${fmtInt(us)} µs`, ok: stored },
      () => mutate(product, 'slots/action/interval', [us]));
  },
};
