// JSON calls with the key from sessionStorage (X-API-Key). Errors become ApiError with the server's message.
export const KEY = 'chaintrace.key';
export class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

export function key() { return sessionStorage.getItem(KEY); }

export async function call(path, { method = 'GET', body = null, raw = false } = {}) {
  const headers = { 'X-API-Key': key() || '' };
  if (body !== null) headers['Content-Type'] = 'application/json';
  const r = await fetch(path, { method, headers, body: body === null ? null : JSON.stringify(body) });
  if (!r.ok) {
    let msg = r.statusText;
    try { msg = (await r.json()).message || msg; } catch (e) { /* not JSON */ }
    throw new ApiError(r.status, msg);
  }
  return raw ? r : r.json();
}

// Fetch a file with the key and hand it to the browser as a download.
export async function download(path, filename) {
  const r = await call(path, { raw: true });
  const url = URL.createObjectURL(await r.blob());
  const a = document.createElement('a');
  a.href = url; a.download = filename; document.body.append(a); a.click(); a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}
