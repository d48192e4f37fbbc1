// The proxies card: one row per proxy (patched in place, keyed by token), its standing with
// the dashboard, and the calls that add, reinit and remove proxies. A proxy whose stats call
// failed shows its error, not its last figures.

import { mutate } from './api.js';
import { $, CANCELLED, applyBusy, clearMessage, confirmAction, esc, fmtAgo, fmtInt, inputError, patchRows, run, typingIn } from './ui.js';

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

function proxyRow(p, s, live) {
  const st = proxyStatus(s);
  const ops = (live && live.ops) || {};
  const sessions = (live && live.sessions) || {};
  const token = String(p.token || '');
  const ids = `data-token="${esc(token)}" data-addr="${esc(p.proxy_addr)}" data-id="${esc(p.id)}"`;
  return `<tr data-token="${esc(token)}" class="${st.healthy ? '' : 'unhealthy'}">
    <td class="num">${esc(p.id)}</td>
    <td><code title="${esc(token)}">${esc(token.slice(0, 8))}</code></td>
    <td><code>${esc(p.proxy_addr)}</code></td>
    <td><code>${esc(p.admin_addr)}</code></td>
    <td>${esc(p.datacenter || '–')}</td>
    <td class="num">${live ? `${fmtInt(sessions.alive)} / ${fmtInt(sessions.total)}` : '–'}</td>
    <td class="num">${live ? fmtInt(ops.total) : '–'}${live && ops.fails ? ` <span class="bad-text" title="failed commands">(${fmtInt(ops.fails)} failed)</span>` : ''}</td>
    <td class="num">${live ? fmtInt(ops.qps) : '–'}</td>
    <td class="status"><span class="badge ${st.cls}" title="${esc(st.detail)}">${esc(st.label)}</span>
      ${s && s.primary_only ? '<span class="mark" title="this proxy reads from masters only">primary only</span>' : ''}
      ${st.detail ? `<div class="small ${st.cls}-text">${esc(st.detail)}</div>` : ''}</td>
    <td class="num">${s ? fmtAgo(s.last_lease_ms_ago) : '–'}</td>
    <td class="actions">
      <button type="button" data-act="proxy-reinit" ${ids} title="Send the slot table to this proxy again">Reinit</button>
      <button type="button" class="danger-outline" data-act="proxy-remove" ${ids}>Remove</button>
      ${st.healthy ? '' : `<button type="button" class="danger-outline" data-act="proxy-force-remove" ${ids} data-state="${esc(st.label)}">Force remove</button>`}
    </td></tr>`;
}

export function renderProxies(d) {
  const tbody = $('#proxies tbody');
  if (typingIn(tbody)) return;
  const rows = d.proxies.map((p) => ({ key: String(p.token), html: proxyRow(p, d.proxyStats[p.token], d.proxyLive[p.token]) }));
  if (patchRows(tbody, rows, '<tr class="empty"><td colspan="11">No proxy yet. Add one below with its admin address.</td></tr>')) applyBusy(tbody);
  const healthy = d.proxies.filter((p) => proxyStatus(d.proxyStats[p.token]).healthy).length;
  $('#proxy-summary').textContent = d.proxies.length ? `${healthy} of ${d.proxies.length} healthy` : '';
}

export function clearProxies() {
  patchRows($('#proxies tbody'), [], '<tr class="empty"><td colspan="11">Loading…</td></tr>');
  $('#proxy-summary').textContent = '';
}

function proxyLabel(ds) {
  return `proxy ${ds.id ? `#${ds.id} ` : ''}${ds.addr ? `at ${ds.addr}` : ds.token}`;
}

/** Buttons in the table, by data-act. Each gets the control, its data-* and the product at click time. */
export const ACTIONS = {
  'proxy-reinit': ({ el, ds, product }) => run(product, el, { fail: `Could not reinit ${proxyLabel(ds)}`, ok: `Reinitialised ${proxyLabel(ds)}` },
    () => mutate(product, 'proxy/reinit', [ds.token])),

  'proxy-remove': ({ el, ds, product }) => run(product, el, { fail: `Could not remove ${proxyLabel(ds)}`, ok: `Removed ${proxyLabel(ds)}` }, async () => {
    const yes = await confirmAction('Remove proxy',
      `<p>Remove <b>${esc(proxyLabel(ds))}</b> (token <code>${esc(ds.token)}</code>) from product <b>${esc(product)}</b>?</p>
       <p>The proxy stops serving; its clients lose their connections.</p>`, 'Remove');
    return yes ? mutate(product, 'proxy/remove', [ds.token, 0]) : CANCELLED;
  }),

  'proxy-force-remove': ({ el, ds, product }) => run(product, el, { fail: `Could not force the removal of ${proxyLabel(ds)}`, ok: `Removed ${proxyLabel(ds)}` }, async () => {
    const yes = await confirmAction('Force remove proxy',
      `<p>Force the removal of <b>${esc(proxyLabel(ds))}</b> (token <code>${esc(ds.token)}</code>) from product <b>${esc(product)}</b>?</p>
       <p>It is ${esc(ds.state || 'not healthy')}, so the dashboard may not be able to tell it to stop.
       Make sure the process is really gone: a forgotten proxy may serve with an old slot table.</p>`, 'Force remove');
    return yes ? mutate(product, 'proxy/remove', [ds.token, 1]) : CANCELLED;
  }),
};

export const FORMS = {
  'new-proxy': ({ el, product }) => {
    const addr = $('#new-proxy-addr').value.trim();
    if (!addr) return inputError('Type the admin address of the proxy, for example 127.0.0.1:11080.', '#new-proxy-addr');
    clearMessage('form');
    run(product, el, { fail: `Could not add the proxy at ${addr}`, ok: `Added the proxy at ${addr}` }, () => mutate(product, 'proxy/create', [addr]));
  },
};
