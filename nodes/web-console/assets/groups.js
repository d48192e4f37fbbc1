// The groups card: one block per group (kept in place, sorted by id), its servers as rows patched
// in place (keyed by address), and the calls on groups and servers: create, add, delete,
// promote, sync, failover and replica reads. A server whose last INFO failed shows its error,
// not its last figures.

import { mutate } from './api.js';
import {
  $, $$, CANCELLED, applyBusy, clearMessage, confirmAction, esc, fmtBytes, fmtInt, groupColor,
  inputError, isBusy, parseWhole, patchRows, plural, run, setHTML, typingIn,
} from './ui.js';

const pendingReplica = new Map(); // `${product}|${gid}|${addr}` → the value asked for, while its call runs
let lastProduct = '';

/* ── Addresses ── */

function splitAddr(addr) {
  const text = String(addr || '');
  const at = text.lastIndexOf(':');
  if (at < 0) return { host: text, port: '' };
  return { host: text.slice(0, at).replace(/^\[|\]$/g, ''), port: text.slice(at + 1) };
}

function isIp(host) {
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(host) || host.includes(':');
}

/** Whether `seen` (what a replica follows) names another server than `master`. A host written
 * differently (localhost vs 127.0.0.1) is not a difference: only another port, or another IP. */
function otherServer(seen, master) {
  const a = splitAddr(seen);
  const b = splitAddr(master);
  if (a.port !== b.port) return true;
  return isIp(a.host) && isIp(b.host) && a.host !== b.host;
}

/* ── Rendering ── */

export function renderGroups(d) {
  lastProduct = d.product;
  const list = $('#group-list');
  const targets = new Set(d.slots.filter((s) => s && s.action && s.action.state).map((s) => s.action.target_id));
  const keep = new Set();
  let prev = null;
  for (const g of d.groups) {
    let section = $$(':scope > section.group', list).find((s) => s.dataset.group === String(g.id));
    if (!section) section = createGroupSection(g.id);
    const expected = prev ? prev.nextElementSibling : list.firstElementChild;
    if (section !== expected) list.insertBefore(section, expected);
    updateGroupSection(section, g, d, targets.has(g.id));
    keep.add(section);
    prev = section;
  }
  for (const section of $$(':scope > section.group', list)) if (!keep.has(section)) section.remove();
  $('#groups-empty').hidden = d.groups.length > 0;
}

export function clearGroups() {
  $('#group-list').textContent = '';
  $('#groups-empty').hidden = true;
}

function createGroupSection(gid) {
  const section = document.createElement('section');
  section.className = 'group';
  section.dataset.group = String(gid);
  section.innerHTML = `<div class="group-head"></div><div class="group-status" hidden></div>
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
  return g.failover_disabled ? '<span class="mark off">auto failover off</span>' : '<span class="mark on">auto failover on</span>';
}

function updateGroupSection(section, g, d, targeted) {
  const gid = g.id;
  const servers = g.servers || [];
  const slotCount = d.slotCount.get(gid) || 0;
  const promoting = g.promoting || {};
  const why = servers.length ? 'Remove its servers first'
    : slotCount ? 'Move its slots away first'
      : targeted ? 'Slot actions still move slots to it' : '';
  section.classList.toggle('out-of-sync', Boolean(g.out_of_sync));

  const head = $('.group-head', section);
  const changed = setHTML(head, `
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
    <button type="button" class="small-btn danger-outline" data-act="group-remove" data-gid="${esc(gid)}" ${why ? `data-off="1" disabled title="${esc(why)}"` : ''}>Remove group</button>`);
  if (changed) applyBusy(head);

  const line = d.failoverStatus[gid] ?? d.failoverStatus[String(gid)];
  const status = $('.group-status', section);
  status.hidden = !line;
  status.className = `group-status${line && /^\s*\[BROKEN\]/.test(line) ? ' bad-text' : ''}`;
  status.textContent = line ? `Failover: ${line}` : '';

  const tbody = $('tbody', section);
  if (typingIn(tbody)) return;
  const rows = servers.map((srv, i) => ({ key: String(srv.server), html: serverRow(g, srv, i, d, slotCount, targeted) }));
  if (patchRows(tbody, rows, '<tr class="empty"><td colspan="12">No server yet. Add one with “Add server” above.</td></tr>')) applyBusy(tbody);
}

function roleWarnings(g, index, probe, live) {
  const warnings = [];
  const probeRole = probe && probe.role ? probe.role.role : null;
  const statRole = live && live.role ? (live.role === 'slave' ? 'replica' : live.role) : null;
  const seen = probeRole || statRole;
  if (index === 0 && seen === 'replica') warnings.push('answers as replica');
  if (index > 0 && seen === 'master') warnings.push('answers as master');
  if (index > 0) {
    const master = ((g.servers || [])[0] || {}).server;
    const follows = (live && live.master_addr) || (probe && probe.role && probe.role.master);
    if (follows && master && otherServer(follows, master)) warnings.push(`replicates from ${follows}`);
  }
  return warnings;
}

function replicationCell(g, index, probe, live) {
  if (index === 0) return plural((g.servers || []).length - 1, 'replica');
  const parts = [];
  if (live && live.link) parts.push(`<span class="${live.link === 'up' ? 'good' : 'bad'}-text">link ${esc(live.link)}</span>`);
  const probeLink = probe && probe.role && probe.role.link;
  if (probeLink) parts.push(`<span class="${probeLink === 'connected' ? 'muted' : 'bad-text'}" title="as the failover prober sees it">probe: ${esc(probeLink)}</span>`);
  if (live && Number.isFinite(live.lag)) parts.push(`<span class="${live.lag > 1048576 ? 'warn-text' : ''}" title="bytes behind the group's master">lag ${esc(fmtBytes(live.lag))}</span>`);
  return parts.join(' · ') || '–';
}

function memoryCell(live) {
  if (!live || !Number.isFinite(live.used_memory)) return '–';
  const used = live.used_memory;
  const max = live.maxmemory || 0;
  if (!max) return `${fmtBytes(used)} / <span class="muted">no limit</span>`;
  const pct = Math.min(100, (used / max) * 100);
  return `${fmtBytes(used)} / ${fmtBytes(max)}
    <div class="mem-bar${pct > 90 ? ' high' : ''}" title="${pct.toFixed(1)}% of maxmemory"><span style="width:${pct.toFixed(1)}%"></span></div>`;
}

function healthCell(probe, st) {
  const error = (probe && probe.error) || (st && st.error);
  if (!error) return st || probe ? '<span class="good-text">up</span>' : '<span class="muted">no report yet</span>';
  const down = probe && probe.down_ms ? `down for ${Math.round(probe.down_ms / 1000)} s` : 'error';
  return `<span class="bad-text">${esc(down)}</span><div class="small bad-text" title="${esc(error)}">${esc(error)}</div>`;
}

function syncStateBadge(text) {
  if (!text) return '<span class="muted">–</span>';
  const cls = { synced: 'good', synced_failed: 'bad', syncing: 'warn', pending: 'neutral' }[text] || 'neutral';
  return `<span class="badge ${cls}">${esc(text)}</span>`;
}

function serverRow(g, srv, index, d, slotCount, targeted) {
  const addr = srv.server;
  const probe = d.probes[addr] || null;
  const st = d.serverStats[addr] || null;
  const live = d.serverLive[addr] || null;
  const isMaster = index === 0;
  const gid = g.id;
  const ids = `data-gid="${esc(gid)}" data-addr="${esc(addr)}"`;
  const warnings = roleWarnings(g, index, probe, live);
  const alone = (g.servers || []).length === 1;
  const whyNot = !isMaster ? ''
    : !alone ? 'The master can only be deleted when it is the only server'
      : slotCount ? 'The group still owns slots: move them away first'
        : targeted ? 'Slot actions still move slots to this group' : '';
  const asked = pendingReplica.get(`${d.product}|${gid}|${addr}`);
  const replicaOn = asked ?? srv.replica_group;
  const epoch = probe && probe.epoch !== null && probe.epoch !== undefined ? probe.epoch : null;
  return `<tr data-server="${esc(addr)}" class="${isMaster ? 'master' : 'replica'}">
    <td><span class="badge ${isMaster ? 'master' : 'replica'}">${isMaster ? 'MASTER' : 'REPLICA'}</span>
      ${warnings.map((w) => `<div class="small warn-text">⚠ ${esc(w)}</div>`).join('')}</td>
    <td><code>${esc(addr)}</code></td>
    <td>${esc(srv.datacenter || '–')}</td>
    <td>${replicationCell(g, index, probe, live)}</td>
    <td class="mem">${memoryCell(live)}</td>
    <td class="num">${live ? fmtInt(live.keys) : '–'}</td>
    <td class="num">${live ? fmtInt(live.clients) : '–'}</td>
    <td class="num">${epoch === null ? '–' : esc(epoch)}</td>
    <td>${healthCell(probe, st)}</td>
    <td class="center">${isMaster ? '' : `<input type="checkbox" data-act="replica-group" ${ids} ${replicaOn ? 'checked' : ''} title="Proxies read from this replica" aria-label="Proxies read from ${esc(addr)}">`}</td>
    <td>${syncStateBadge((srv.action || {}).state || '')}
      <button type="button" class="small-btn" data-act="server-sync" ${ids} data-master="${isMaster ? 1 : 0}" title="${isMaster ? 'Make this server the master again' : 'Attach this server to its group\'s master again (a full resync)'}">Sync</button></td>
    <td class="actions">
      ${isMaster ? '' : `<button type="button" class="small-btn" data-act="server-promote" ${ids}>Promote</button>`}
      <button type="button" class="small-btn danger-outline" data-act="server-del" ${ids} data-master="${isMaster ? 1 : 0}"
        ${whyNot ? `data-off="1" disabled title="${esc(whyNot)}"` : ''}>Delete</button>
    </td></tr>`;
}

/* ── Calls ── */

const P = (product) => `<p class="muted">Product ${esc(product)}.</p>`;

/** Buttons by data-act: each gets the control, its data-* and the product at click time. */
export const ACTIONS = {
  'group-resync': ({ el, ds, product }) => run(product, el, { fail: `Could not sync group ${ds.gid}`, ok: `Group ${ds.gid} synced` }, async () => {
    const yes = await confirmAction('Sync group',
      `<p>Make every server of group <b>${esc(ds.gid)}</b> follow the group's configuration again?</p>
       <p>A replica that follows another master re-attaches to the group's master: a full resync, its data copied again.</p>${P(product)}`, 'Sync group');
    return yes ? mutate(product, 'group/resync', [ds.gid]) : CANCELLED;
  }),

  'resync-all': ({ el, product }) => run(product, el, { fail: 'Could not sync all groups', ok: 'All groups synced' }, async () => {
    const yes = await confirmAction('Sync all groups',
      `<p>Make the servers of <b>every group</b> follow their group's configuration again?</p>
       <p>A replica that follows another master re-attaches to its group's master: a full resync, its data copied again.</p>${P(product)}`, 'Sync all');
    return yes ? mutate(product, 'group/resync-all', []) : CANCELLED;
  }),

  'group-failover': ({ el, ds, product }) => {
    const on = ds.value === '1';
    return run(product, el, { fail: `Could not turn ${on ? 'on' : 'off'} automatic failover of group ${ds.gid}`,
      ok: `Automatic failover of group ${ds.gid} turned ${on ? 'on' : 'off'}` }, async () => {
      if (!on) {
        const yes = await confirmAction('Disable automatic failover',
          `<p>Disable automatic failover of group <b>${esc(ds.gid)}</b>?</p><p>If its master goes down, nobody promotes a replica: the group's slots stay unavailable until you act.</p>${P(product)}`, 'Disable');
        if (!yes) return CANCELLED;
      }
      return mutate(product, 'group/failover', [ds.gid, on ? 1 : 0]);
    });
  },

  'group-prefill': ({ ds }) => {
    $('#add-server-gid').value = ds.gid;
    $('#add-server-addr').focus();
    $('#add-server-addr').scrollIntoView({ block: 'center', behavior: 'smooth' });
  },

  'group-remove': ({ el, ds, product }) => run(product, el, { fail: `Could not remove group ${ds.gid}`, ok: `Removed group ${ds.gid}` }, async () => {
    const yes = await confirmAction('Remove group', `<p>Remove group <b>${esc(ds.gid)}</b>? It has no servers and no slots.</p>${P(product)}`, 'Remove group');
    return yes ? mutate(product, 'group/remove', [ds.gid]) : CANCELLED;
  }),

  'server-sync': ({ el, ds, product }) => run(product, el, { fail: `Could not sync ${ds.addr} in group ${ds.gid}`, ok: `Sync of ${ds.addr} started` }, async () => {
    const body = ds.master === '1'
      ? `<p>Sync <b>${esc(ds.addr)}</b>: make it act as the master of group <b>${esc(ds.gid)}</b> again?</p>`
      : `<p>Re-attach <b>${esc(ds.addr)}</b> to the master of group <b>${esc(ds.gid)}</b>?</p><p>This is a full resync: the replica drops its data and copies the master's again.</p>`;
    const yes = await confirmAction('Sync server', body + P(product), 'Sync');
    return yes ? mutate(product, 'group/action/create', [ds.addr]) : CANCELLED;
  }),

  'server-promote': ({ el, ds, product }) => run(product, el, { fail: `Could not promote ${ds.addr} in group ${ds.gid}`, ok: `${ds.addr} is now the master of group ${ds.gid}` }, async () => {
    const yes = await confirmAction('Promote replica',
      `<p>Promote <b>${esc(ds.addr)}</b> to master of group <b>${esc(ds.gid)}</b>? Writes to the group pause until it is done.</p>${P(product)}`, 'Promote');
    return yes ? mutate(product, 'group/promote', [ds.gid, ds.addr]) : CANCELLED;
  }),

  'server-del': ({ el, ds, product }) => run(product, el, { fail: `Could not remove ${ds.addr} from group ${ds.gid}`, ok: `Removed ${ds.addr} from group ${ds.gid}` }, async () => {
    const yes = await confirmAction('Delete server',
      `<p>Remove <b>${esc(ds.addr)}</b> from group <b>${esc(ds.gid)}</b>?</p>
       ${ds.master === '1' ? '<p>It is the group\'s master and only server; the group owns no slots.</p>' : '<p>The server itself keeps running; it only leaves the group.</p>'}${P(product)}`, 'Delete');
    return yes ? mutate(product, 'group/del', [ds.gid, ds.addr]) : CANCELLED;
  }),

  'replica-reads-all': ({ el, ds, product }) => {
    const on = ds.value === '1';
    return run(product, el, { fail: `Could not ${on ? 'enable' : 'disable'} replica reads`, ok: `Replica reads ${on ? 'enabled' : 'disabled'} for every replica` }, async () => {
      const yes = await confirmAction(`${on ? 'Enable' : 'Disable'} replica reads`, on
        ? `<p>Let the proxies read from <b>every replica</b> of every group?</p><p>Reads may then return data a little behind the master's.</p>${P(product)}`
        : `<p>Stop the proxies reading from <b>any replica</b>?</p><p>Every read goes to the masters again.</p>${P(product)}`, on ? 'Enable all' : 'Disable all');
      return yes ? mutate(product, 'group/replica-groups-all', [on ? 1 : 0]) : CANCELLED;
    });
  },
};

/** Checkboxes by data-act, on change. While the call runs the box shows what was asked for. */
export const CHANGES = {
  'replica-group': ({ el, ds, product }) => {
    const on = el.checked;
    const key = `${product}|${ds.gid}|${ds.addr}`;
    if (isBusy(product, el)) return;
    pendingReplica.set(key, on);
    run(product, el, { fail: `Could not turn ${on ? 'on' : 'off'} replica reads from ${ds.addr}`,
      ok: `Proxies ${on ? 'now read' : 'no longer read'} from ${ds.addr}` }, async () => {
      try {
        return await mutate(product, 'group/replica-groups', [ds.gid, ds.addr, on ? 1 : 0]);
      } catch (err) {
        if (el.isConnected) el.checked = !on; // refused: show the value that still holds
        throw err;
      } finally {
        pendingReplica.delete(key);
      }
    });
  },
};

function validGid(text) {
  const n = parseWhole(text);
  return n >= 1 && n <= 9999 ? n : NaN;
}

export const FORMS = {
  'new-group': ({ el, product }) => {
    const gid = validGid($('#new-group-id').value);
    if (!gid) return inputError('A group id is a whole number from 1 to 9999.', '#new-group-id');
    clearMessage('form');
    return run(product, el, { fail: `Could not create group ${gid}`, ok: `Created group ${gid}` }, async () => {
      const result = await mutate(product, 'group/create', [gid]);
      if (!$('#add-server-gid').value && product === lastProduct) $('#add-server-gid').value = String(gid);
      return result;
    });
  },

  'add-server': ({ el, product }) => {
    const gid = validGid($('#add-server-gid').value);
    const addr = $('#add-server-addr').value.trim();
    const dc = $('#add-server-dc').value.trim();
    if (!gid) return inputError('Type the id of the group to add the server to (1 to 9999).', '#add-server-gid');
    if (!addr) return inputError('Type the address of the server, for example 127.0.0.1:6379.', '#add-server-addr');
    clearMessage('form');
    return run(product, el, { fail: `Could not add server ${addr} to group ${gid}`, ok: `Added server ${addr} to group ${gid}` },
      () => mutate(product, 'group/add', dc ? [gid, addr, dc] : [gid, addr]));
  },
};
