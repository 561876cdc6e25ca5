// Hash router: #/path/segments?query. Hash routes need no server routes, so
// the binary serves one index.html and any view can be bookmarked.

const routes = [];
let current = null; // {cleanup}
let outlet = null;
let errorView = () => {};

/** route registers pattern ("/p/:id") with handler(el, params, query) that may return a cleanup function. */
export function route(pattern, handler) {
  const names = [];
  const re = new RegExp("^" + pattern.replace(/:(\w+)/g, (_, n) => (names.push(n), "([^/]+)")) + "$");
  routes.push({ re, names, handler });
}

/** here is the current hash route ("/p/abc?x=1"). */
export function here() {
  return location.hash.replace(/^#/, "") || "/";
}

/** go navigates to a hash route. */
export function go(path, { replace = false } = {}) {
  const url = "#" + path;
  if (replace) {
    history.replaceState(null, "", url);
    render();
  } else if (location.hash === url) {
    render();
  } else {
    location.hash = url;
  }
}

/** start renders into el and follows hash changes. onError(el, err) shows a failed view. */
export function start(el, onError) {
  outlet = el;
  errorView = onError;
  window.addEventListener("hashchange", render);
  render();
}

/** render (re)draws the current route. */
export async function render() {
  const [path, query = ""] = here().split("?");
  if (current?.cleanup) {
    try {
      current.cleanup();
    } catch {
      // a view failing to clean up must not block the next one
    }
  }
  const me = (current = { cleanup: null });
  // Each render gets its own element: a slow view that finishes after the
  // user moved on writes into a detached node, never into the next view.
  const view = document.createElement("div");
  view.className = "view";
  outlet.replaceChildren(view);
  for (const r of routes) {
    const m = r.re.exec(path);
    if (!m) continue;
    const params = {};
    r.names.forEach((n, i) => (params[n] = decodeURIComponent(m[i + 1])));
    try {
      const cleanup = await r.handler(view, params, new URLSearchParams(query));
      if (current === me) me.cleanup = cleanup || null;
      else if (typeof cleanup === "function") cleanup(); // navigated away meanwhile
    } catch (e) {
      if (current === me) errorView(view, e);
    }
    return;
  }
  go("/", { replace: true });
}

/** leave ends the current view (players send their WHEP DELETE) as the page goes away. */
export function leave() {
  if (!current?.cleanup) return;
  try {
    current.cleanup();
  } catch {
    // the page is going away regardless
  }
  current.cleanup = null;
}
