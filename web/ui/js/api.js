// api: every call to the server goes through here. A 401 anywhere means
// the session ended: the handler set by the app sends the user to the login
// form and remembers where they were.

/**
 * ApiError is a failed call: HTTP status plus the server's error code,
 * message and field, and the whole JSON body (an import's 422 lists rows).
 */
export class ApiError extends Error {
  constructor(status, code, message, body = null) {
    super(message || code || "HTTP " + status);
    this.status = status;
    this.code = code || "";
    this.field = body?.error?.field || "";
    this.body = body;
  }
}

let unauthorized = () => {};

/** onUnauthorized sets what happens when the session is gone. */
export function onUnauthorized(fn) {
  unauthorized = fn;
}

const defaultTimeout = 20000;

function timeoutSignal(ms, signal) {
  const t = AbortSignal.timeout(ms);
  return signal ? AbortSignal.any([t, signal]) : t;
}

/**
 * request sends one call and returns the Response, or throws ApiError.
 * body: object (sent as JSON), or a string or Blob (a File too) sent as
 * is with contentType.
 */
export async function request(path, { method = "GET", body, contentType, headers = {}, signal, timeout = defaultTimeout } = {}) {
  const init = { method, credentials: "same-origin", headers: { ...headers }, signal: timeoutSignal(timeout, signal) };
  if (body !== undefined) {
    if (typeof body === "string" || body instanceof Blob) {
      init.body = body;
      init.headers["Content-Type"] = contentType || "text/plain";
    } else {
      init.body = JSON.stringify(body);
      init.headers["Content-Type"] = "application/json";
    }
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, e.name === "AbortError" || e.name === "TimeoutError" ? "timeout" : "network", e.message);
  }
  if (res.status === 401 && path !== "/api/v1/auth/login") {
    unauthorized();
    throw new ApiError(401, "unauthenticated", "session expired");
  }
  if (!res.ok) {
    let j = null;
    try {
      j = await res.json();
    } catch {
      // not a JSON error body
    }
    throw new ApiError(res.status, j?.error?.code, j?.error?.message, j);
  }
  return res;
}

/** api sends one call and returns the decoded JSON (null for 204). */
export async function api(path, opts) {
  const res = await request(path, opts);
  if (res.status === 204) return null;
  return res.json();
}

/** qs renders an object as a query string, skipping empty values. */
export function qs(params) {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v !== undefined && v !== null && v !== "") u.set(k, v);
  }
  const s = u.toString();
  return s ? "?" + s : "";
}
