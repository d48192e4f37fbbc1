// The ops/s chart in the overview: the last five minutes of the proxies' summed QPS, one sample
// per refresh. Drawn by hand on a canvas sized for devicePixelRatio (no library, crisp on HiDPI).
// A refresh with no proxy figures to trust adds a gap rather than a misleading zero.

import { $, fmtClock, fmtCompact } from './ui.js';

const WINDOW_MS = 5 * 60 * 1000;
let samples = []; // {t, v}; v null = no current figures then

/** Adds this refresh's total ops/s (null when no proxy reported current figures). */
export function addSample(v, t = Date.now()) {
  samples.push({ t, v });
  while (samples.length && samples[0].t < t - WINDOW_MS) samples.shift();
}

/** Forgets every sample (another product). */
export function clearChart() {
  samples = [];
  drawChart();
}

/** The smallest "nice" number (1, 2, 2.5, 5 × 10^k) at or above v. */
function niceMax(v) {
  if (!(v > 0)) return 10;
  const exp = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * exp >= v) return Math.max(m * exp, 10);
  return 10 * exp;
}

export function drawChart() {
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
  const t0 = now - WINDOW_MS;
  const known = samples.filter((s) => s.v !== null);
  const max = niceMax(Math.max(0, ...known.map((s) => s.v)));
  const x = (t) => pad.l + ((t - t0) / WINDOW_MS) * pw;
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

  if (!known.length) {
    ctx.textAlign = 'center';
    ctx.textBaseline = 'middle';
    ctx.fillStyle = '#8a929c';
    ctx.fillText('waiting for data…', pad.l + pw / 2, pad.t + ph / 2);
    return;
  }

  // The series: runs of known samples, each a line with a light fill under it.
  ctx.save();
  ctx.beginPath();
  ctx.rect(pad.l, pad.t - 1, pw + 1, ph + 2);
  ctx.clip();
  const runs = [];
  let run = [];
  for (const s of samples) {
    if (s.v === null) { if (run.length) runs.push(run); run = []; } else run.push(s);
  }
  if (run.length) runs.push(run);
  for (const r of runs) {
    ctx.beginPath();
    r.forEach((s, i) => (i ? ctx.lineTo(x(s.t), y(s.v)) : ctx.moveTo(x(s.t), y(s.v))));
    ctx.lineJoin = 'round';
    ctx.lineWidth = 1.5;
    ctx.strokeStyle = '#2f6fd6';
    ctx.stroke();
    ctx.lineTo(x(r[r.length - 1].t), y(0));
    ctx.lineTo(x(r[0].t), y(0));
    ctx.closePath();
    ctx.fillStyle = 'rgba(47, 111, 214, 0.10)';
    ctx.fill();
  }
  const last = known[known.length - 1];
  ctx.fillStyle = '#2f6fd6';
  ctx.beginPath();
  ctx.arc(x(last.t), y(last.v), 2.5, 0, Math.PI * 2);
  ctx.fill();
  ctx.restore();
}
