// The overview card: the product at a glance (ops/s, sessions, memory, keys, counts).
// Totals only add up figures that are current: a proxy or server whose last poll failed is left
// out (and the tooltip says how many), so a dead node never shows as traffic.

import { $, $$, fmtBytes, fmtDuration, fmtInt, fmtStartTime, plural } from './ui.js';

function setStat(name, text, title = '', value = null) {
  const el = $(`#overview [data-stat="${name}"]`);
  if (!el) return;
  if (el.textContent !== text) el.textContent = text;
  if (el.title !== title) el.title = title;
  if (value === null) delete el.dataset.value;
  else el.dataset.value = String(value);
}

/** Ops/s summed over the proxies with current figures; null when there are proxies but none has any. */
export function totalQps(d) {
  if (!d.proxies.length) return 0;
  const live = d.proxies.map((p) => d.proxyLive[p.token]).filter(Boolean);
  return live.length ? live.reduce((s, p) => s + ((p.ops || {}).qps || 0), 0) : null;
}

function leftOut(n, what, many) {
  return n ? `; ${plural(n, what, many)} left out: no current figures` : '';
}

export function renderOverview(d) {
  const { config, model } = d;
  setStat('product', config.product_name || model.product_name || d.product);
  setStat('coordinator', [config.coordinator_name, config.coordinator_addr].filter(Boolean).join(' · ') || '–');
  const about = [
    model.pid ? `pid ${model.pid}` : '',
    model.start_time ? `started ${fmtStartTime(model.start_time)}` : '',
    model.sys || '',
    model.pwd ? `in ${model.pwd}` : '',
    model.token ? `token ${model.token}` : '',
  ].filter(Boolean).join('\n');
  setStat('dashboard', model.admin_addr || config.admin_addr || '–', about);

  const live = d.proxies.map((p) => d.proxyLive[p.token]).filter(Boolean);
  const proxiesOut = d.proxies.length - live.length;
  const qps = totalQps(d);
  const alive = live.reduce((s, p) => s + ((p.sessions || {}).alive || 0), 0);
  const opened = live.reduce((s, p) => s + ((p.sessions || {}).total || 0), 0);
  setStat('ops', qps === null ? '–' : fmtInt(qps), `commands per second, summed over the proxies${leftOut(proxiesOut, 'proxy', 'proxies')}`, qps ?? null);
  setStat('sessions', live.length ? fmtInt(alive) : '–',
    `${fmtInt(opened)} sessions opened since the proxies started${leftOut(proxiesOut, 'proxy', 'proxies')}`, live.length ? alive : null);

  const masters = d.groups.map((g) => ((g.servers || [])[0] || {}).server).filter(Boolean);
  const liveMasters = masters.map((a) => d.serverLive[a]).filter(Boolean);
  const allServers = d.groups.flatMap((g) => (g.servers || []).map((s) => s.server));
  const liveAll = allServers.map((a) => d.serverLive[a]).filter(Boolean);
  const sum = (list, field) => list.reduce((s, st) => s + (st[field] || 0), 0);
  const mastersOut = masters.length - liveMasters.length;
  const memory = sum(liveMasters, 'used_memory');
  const keys = sum(liveMasters, 'keys');
  const none = masters.length > 0 && liveMasters.length === 0;
  setStat('memory', none ? '–' : fmtBytes(memory),
    `used memory of the group masters; ${fmtBytes(sum(liveAll, 'used_memory'))} counting replicas too${leftOut(mastersOut, 'master')}`, none ? null : memory);
  setStat('keys', none ? '–' : fmtInt(keys), `keys on the group masters${leftOut(mastersOut, 'master')}`, none ? null : keys);

  setStat('groups', fmtInt(d.groups.length), '', d.groups.length);
  setStat('servers', fmtInt(allServers.length), '', allServers.length);
  setStat('proxies', fmtInt(d.proxies.length), '', d.proxies.length);
  const offline = d.slotCount.get(0) || 0;
  setStat('slots', offline ? `${fmtInt(d.slotTotal - offline)} online · ${fmtInt(offline)} offline` : `${fmtInt(d.slotTotal)} online`);
  setStat('failover', d.failoverAuto ? 'on' : 'off',
    config.failover_down_after_ms ? `a master is failed over after ${fmtDuration(config.failover_down_after_ms)} down` : '');
  setStat('sync-replicas', String(config.sync_replicas ?? '–'));

  const bits = [`dashboard version ${d.t.version || '?'}`];
  if (model.pid) bits.push(`pid ${model.pid}`);
  if (model.start_time) bits.push(`started ${fmtStartTime(model.start_time)}`);
  $('#version').textContent = bits.join(' · ');
}

/** Forgets the previous product's figures, so they are never shown under another name. */
export function clearOverview() {
  for (const el of $$('#overview [data-stat]')) {
    el.textContent = '–';
    el.title = '';
    delete el.dataset.value;
  }
  $('#version').textContent = '';
}
