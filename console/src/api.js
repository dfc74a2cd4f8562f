// The one way the console talks to the gateway: JSON over fetch to /v1 (same origin), the bearer
// token from the session, errors as ApiError carrying the google.rpc.Status the gateway answers
// (code, message, BadRequest field violations).
import { getToken } from './auth.js';

const BAD_REQUEST = 'type.googleapis.com/google.rpc.BadRequest';
export const ABORTED = 10;

export class ApiError extends Error {
  constructor(httpStatus, body) {
    super((body && body.message) || `HTTP ${httpStatus}`);
    this.httpStatus = httpStatus;
    this.code = body && typeof body.code === 'number' ? body.code : 0;
    // field path (as the service names it, e.g. "application.items[0].quantity") -> description
    this.fields = {};
    for (const d of (body && body.details) || []) {
      if (d['@type'] === BAD_REQUEST) {
        for (const v of d.fieldViolations || []) this.fields[v.field] = v.description;
      }
    }
  }
  // The resource changed since it was read (a stale etag): reload before trying again.
  get stale() {
    return this.code === ABORTED;
  }
  get unauthenticated() {
    return this.httpStatus === 401;
  }
}

let onUnauthenticated = () => {};
export function setUnauthenticatedHandler(fn) {
  onUnauthenticated = fn;
}

function queryString(query) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query || {})) {
    if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}

export async function api(method, path, { body, query, ifMatch } = {}) {
  const headers = { Accept: 'application/json' };
  const token = getToken();
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (ifMatch) headers['If-Match'] = `"${ifMatch}"`;
  let res;
  try {
    res = await fetch(`/v1/${path}${queryString(query)}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'omit',
      cache: 'no-store',
    });
  } catch (e) {
    throw new ApiError(0, { code: 14, message: e.message });
  }
  const text = await res.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : {};
  } catch {
    json = null;
  }
  if (!res.ok) {
    const err = new ApiError(res.status, json);
    if (err.unauthenticated) onUnauthenticated(err);
    throw err;
  }
  return json || {};
}

export const get = (path, query) => api('GET', path, { query });
export const post = (path, body, opts = {}) => api('POST', path, { body: body || {}, ...opts });
export const patch = (path, body, opts = {}) => api('PATCH', path, { body, ...opts });

// A request id for a write, so a retried submission is applied once.
export function requestId() {
  return crypto.randomUUID();
}

// Every page of a list (bounded).
export async function listAll(path, key, query = {}, maxPages = 10) {
  const out = [];
  let pageToken = '';
  for (let i = 0; i < maxPages; i++) {
    const page = await get(path, { ...query, pageSize: query.pageSize || 100, pageToken });
    out.push(...(page[key] || []));
    pageToken = page.nextPageToken || '';
    if (!pageToken) break;
  }
  return out;
}
