// Talking to the console's server: GET list and topom, PUT api/topom/<verb>/<xauth>/<args>.
// Every URL is relative, so the page works behind a reverse proxy under a sub-path, and every
// one but `list` carries ?forward=<product> (codis-fe routes by it; a dashboard ignores it).
// Errors keep the reply's own text: codis-fe and the dashboard already say what went wrong.
// Only the derived xauth is kept (sessionStorage, per product), never the password itself.

import { $, storageGet, storageSet, storageRemove } from './ui.js';
import { xauthFor } from './sha256.js';

/** A failed call. `message` is the reply's error as it came, or plain words when none came. */
export class ApiError extends Error {
  constructor(message, status = 0, { noReply = false, aborted = false } = {}) {
    super(message);
    this.api = true;
    this.status = status;
    this.noReply = noReply;
    this.aborted = aborted;
  }
}

export function forwardPath(path, product) {
  return `${path}${path.includes('?') ? '&' : '?'}forward=${encodeURIComponent(product)}`;
}

/** A path segment: encoded, but host:port stays readable. */
function segment(value) {
  return encodeURIComponent(String(value)).replace(/%3A/gi, ':');
}

/** One HTTP call. `signal` lets the caller abandon it (a product switch). */
export async function request(method, path, { timeoutMs = 15000, signal } = {}) {
  const ctrl = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => { timedOut = true; ctrl.abort(); }, timeoutMs);
  const abandon = () => ctrl.abort();
  if (signal) {
    if (signal.aborted) ctrl.abort();
    signal.addEventListener('abort', abandon, { once: true });
  }
  let resp;
  let text;
  try {
    resp = await fetch(path, { method, cache: 'no-store', headers: { Accept: 'application/json' }, signal: ctrl.signal });
    text = await resp.text();
  } catch {
    if (!timedOut && signal && signal.aborted) throw new ApiError('abandoned', 0, { aborted: true });
    const host = location.host || 'this address';
    throw new ApiError(timedOut
      ? `the console's server at ${host} did not answer within ${Math.round(timeoutMs / 1000)} s`
      : `the console's server at ${host} does not answer`, 0, { noReply: true });
  } finally {
    clearTimeout(timer);
    if (signal) signal.removeEventListener('abort', abandon);
  }
  let body = null;
  if (text) {
    try { body = JSON.parse(text); } catch { body = text; }
  }
  if (!resp.ok) {
    const message = (body && typeof body === 'object' && typeof body.error === 'string' && body.error)
      || (typeof body === 'string' && body.trim().slice(0, 300))
      || `HTTP ${resp.status} ${resp.statusText}`.trim();
    throw new ApiError(message, resp.status);
  }
  return body;
}

export function listProducts() {
  return request('GET', 'list');
}

export function readTopom(product, { timeoutMs, signal } = {}) {
  return request('GET', forwardPath('topom', product), { timeoutMs, signal });
}

/* ── Changes and the password ──
 * Start with the empty password's xauth; on 403 ask for this product's password (one prompt per
 * product, one dialog at a time), keep only its xauth, and retry. */

function xauthKey(product) {
  return `codis-console.xauth.${product}`;
}

// An earlier version of this page kept passwords here: drop them.
try {
  for (const key of Object.keys(sessionStorage)) if (key.startsWith('codis-console.password.')) sessionStorage.removeItem(key);
} catch { /* no storage: nothing kept */ }

/** PUT api/topom/<verb>/<xauth>/<args…> for `product`; resolves with the reply's JSON. */
export async function mutate(product, verb, args = []) {
  for (;;) {
    const stored = storageGet('sessionStorage', xauthKey(product));
    const xauth = stored || xauthFor(product, '');
    const path = ['api/topom', verb, xauth, ...args.map(segment)].join('/');
    try {
      return await request('PUT', forwardPath(path, product), { timeoutMs: 120000 });
    } catch (err) {
      if (err.status !== 403) throw err;
      const fresh = await askPassword(product, stored !== null);
      if (fresh === null) {
        if (stored !== null) storageRemove('sessionStorage', xauthKey(product));
        throw new ApiError(`${err.message} (no password given for product ${product})`, 403);
      }
      storageSet('sessionStorage', xauthKey(product), fresh);
    }
  }
}

const prompts = new Map(); // product → the prompt in progress for it
let queue = Promise.resolve(); // one dialog at a time
let generation = 0; // bumped on product switch: prompts still queued then are dropped

function askPassword(product, refused) {
  if (!prompts.has(product)) {
    const mine = generation;
    const prompt = queue
      .then(() => (mine === generation ? openAuthDialog(product, refused) : null))
      .finally(() => prompts.delete(product));
    queue = prompt.catch(() => null);
    prompts.set(product, prompt);
  }
  return prompts.get(product);
}

/** Drops prompts that have not opened yet (the open one is closed with the other dialogs). */
export function cancelPrompts() {
  generation += 1;
}

/** Shows the password dialog; resolves with the xauth of what was typed, or null. */
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
    dialog.addEventListener('close', () => {
      const xauth = dialog.returnValue === 'ok' ? xauthFor(product, input.value) : null;
      input.value = '';
      resolve(xauth);
    }, { once: true });
    dialog.showModal();
    input.focus();
  });
}
