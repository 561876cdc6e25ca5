// Service worker: keeps the app shell (HTML, CSS, JS, icons, vendored
// Leaflet) for offline start and installability. It never touches the API
// or media: /api/ and everything not in the shell go straight to the network.
"use strict";

const CACHE = "tianyan-shell-v1";
const SHELL = [
  "/",
  "/ui/css/app.css",
  "/ui/js/app.js", "/ui/js/api.js", "/ui/js/dom.js", "/ui/js/i18n.js", "/ui/js/router.js",
  "/ui/js/data.js", "/ui/js/phone.js", "/ui/js/player.js", "/ui/js/vlist.js",
  "/ui/js/wall.js", "/ui/js/map.js", "/ui/js/gcj02.js", "/ui/js/admin.js",
  "/ui/manifest.webmanifest", "/ui/icons/icon.svg", "/ui/icons/icon-192.png",
];

function inShell(url) {
  return url.origin === self.location.origin && (url.pathname === "/" || url.pathname.startsWith("/ui/"));
}

self.addEventListener("install", (ev) => {
  ev.waitUntil(caches.open(CACHE).then((c) => c.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (ev) => {
  ev.waitUntil(
    caches.keys()
      .then((keys) => Promise.all(keys.filter((k) => k !== CACHE).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});

// Network first, so a new build shows at once; the cache answers only when
// the server cannot be reached.
self.addEventListener("fetch", (ev) => {
  const req = ev.request;
  if (req.method !== "GET") return;
  const url = new URL(req.url);
  if (!inShell(url)) return;
  ev.respondWith(
    fetch(req)
      .then((res) => {
        if (res.ok && res.type === "basic") {
          const copy = res.clone();
          caches.open(CACHE).then((c) => c.put(url.pathname === "/" ? "/" : req, copy)).catch(() => {});
        }
        return res;
      })
      .catch(() => caches.match(url.pathname === "/" ? "/" : req).then((r) => r || Response.error())),
  );
});
