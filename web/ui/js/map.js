// Map: every granted point by its coordinates on Leaflet with clustering
// (chunked, so 13,635 points stay smooth), filtered by category and status.
// The basemap is the deployment's own tile server when configured;
// otherwise a drawn coordinate grid. Nothing here calls the internet.

import { h } from "./dom.js";
import { t, categoryName } from "./i18n.js";
import { allPoints, uiConfig } from "./data.js";
import { wgs84ToGcj02 } from "./gcj02.js";

let leaflet = null;

function addCSS(href) {
  if (document.querySelector(`link[href="${href}"]`)) return;
  document.head.append(h("link", { rel: "stylesheet", href }));
}

function addScript(src) {
  return new Promise((resolve, reject) => {
    const s = h("script", { src });
    s.onload = resolve;
    s.onerror = () => reject(new Error("cannot load " + src));
    document.head.append(s);
  });
}

/** loadLeaflet loads the vendored Leaflet and markercluster once; resolves to L. */
export function loadLeaflet() {
  if (!leaflet) {
    addCSS("/ui/vendor/leaflet/leaflet.css");
    addCSS("/ui/vendor/leaflet.markercluster/MarkerCluster.css");
    addCSS("/ui/vendor/leaflet.markercluster/MarkerCluster.Default.css");
    leaflet = addScript("/ui/vendor/leaflet/leaflet.js")
      .then(() => addScript("/ui/vendor/leaflet.markercluster/leaflet.markercluster.js"))
      .then(() => window.L)
      .catch((e) => {
        leaflet = null;
        throw e;
      });
  }
  return leaflet;
}

const config = uiConfig;

// gridLayer draws a labelled graticule per tile: the map is never blank
// and never asks the internet for a basemap.
function gridLayer(L) {
  const Grid = L.GridLayer.extend({
    createTile(coords) {
      const tile = document.createElement("canvas");
      const size = this.getTileSize();
      tile.width = size.x;
      tile.height = size.y;
      const ctx = tile.getContext("2d");
      ctx.fillStyle = "#101a24";
      ctx.fillRect(0, 0, size.x, size.y);
      ctx.strokeStyle = "#223446";
      ctx.lineWidth = 1;
      ctx.strokeRect(0.5, 0.5, size.x, size.y);
      ctx.strokeStyle = "#182736";
      ctx.beginPath();
      ctx.moveTo(size.x / 2, 0);
      ctx.lineTo(size.x / 2, size.y);
      ctx.moveTo(0, size.y / 2);
      ctx.lineTo(size.x, size.y / 2);
      ctx.stroke();
      const nw = this._map.unproject(coords.scaleBy(size), coords.z);
      const digits = Math.max(1, Math.min(5, Math.floor(coords.z / 3)));
      ctx.fillStyle = "#5b7089";
      ctx.font = "11px system-ui, sans-serif";
      ctx.fillText(`${nw.lat.toFixed(digits)}°N ${nw.lng.toFixed(digits)}°E`, 4, 14);
      return tile;
    },
  });
  return new Grid({ maxZoom: 20 });
}

const icons = {};

function icon(L, state) {
  if (!icons[state]) icons[state] = L.divIcon({ className: "pm pm-" + state, iconSize: [14, 14] });
  return icons[state];
}

/**
 * pointMap builds a map of every granted point in el.
 * opts.popup(p) returns extra popup content; opts.onReady({points, located, ms}) fires when
 * every marker is in the cluster.
 */
export async function pointMap(el, { popup, onReady, onProgress } = {}) {
  const t0 = performance.now();
  const [L, cfg] = await Promise.all([loadLeaflet(), config()]);
  const map = L.map(el, { preferCanvas: true, zoomControl: true, attributionControl: !!cfg.map_tile_url, worldCopyJump: false });
  // Leaflet's default attribution links to its website; on a private
  // network the page names it without a link.
  map.attributionControl?.setPrefix("Leaflet");
  if (cfg.map_tile_url) {
    L.tileLayer(cfg.map_tile_url, { maxZoom: cfg.map_max_zoom, attribution: cfg.map_attribution || "" }).addTo(map);
  } else {
    gridLayer(L).addTo(map);
  }
  const shift = cfg.map_tile_crs === "gcj02" ? wgs84ToGcj02 : (lat, lon) => [lat, lon];
  map.setView([22.55, 113.9], 11);

  const cluster = L.markerClusterGroup({ chunkedLoading: true, chunkInterval: 100, chunkDelay: 20, showCoverageOnHover: false, maxClusterRadius: 60 });
  map.addLayer(cluster);
  const points = await allPoints({}, onProgress);
  const fetchMs = Math.round(performance.now() - t0);
  const markers = [];
  let bounds = null;
  for (const p of points) {
    if (p.lat == null || p.lon == null) continue;
    const ll = shift(p.lat, p.lon);
    const state = p.status?.state || "unknown";
    const m = L.marker(ll, { icon: icon(L, state), title: p.name });
    m.point = p;
    m.bindPopup(() => popupFor(p, popup), { minWidth: 180 });
    markers.push(m);
    bounds = bounds ? bounds.extend(ll) : L.latLngBounds(ll, ll);
  }
  if (bounds) map.fitBounds(bounds.pad(0.05));

  let gen = 0;
  const show = (filter) => {
    const my = ++gen;
    const t1 = performance.now();
    cluster.clearLayers();
    const chosen = markers.filter((m) => (!filter.category || m.point.category === filter.category) && (!filter.status || (m.point.status?.state || "unknown") === filter.status));
    cluster.options.chunkProgress = (done, total) => {
      if (my === gen && done === total) onReady?.({ points: points.length, located: chosen.length, ms: Math.round(performance.now() - t0), fetchMs, addMs: Math.round(performance.now() - t1) });
    };
    cluster.addLayers(chosen);
    if (!chosen.length) onReady?.({ points: points.length, located: 0, ms: Math.round(performance.now() - t0), fetchMs, addMs: 0 });
    return chosen.length;
  };
  return { map, L, points, markers, show, cfg, destroy: () => map.remove() };
}

function popupFor(p, extra) {
  return h("div.popup",
    h("strong", p.name),
    h("div.muted", categoryName(p.category), " · ", t(p.status?.state || "unknown")),
    h("div.popup-actions", h("a.btn", { href: "#/p/" + encodeURIComponent(p.id) }, "▶ " + t("play")), extra ? extra(p) : null));
}

/** map is the full-page map view. */
export async function map(view) {
  view.classList.add("mapview");
  const el = h("div#map");
  const counter = h("span#map-count", t("loading"));
  const cat = h("select#map-category", h("option", { value: "" }, t("all") + " · " + t("category")));
  const chips = ["", "online", "offline", "unknown"].map((s) => h("button.chip" + (s ? "" : ".on"), { type: "button", dataset: { status: s } }, s ? t(s) : t("all")));
  const panel = h("div.map-panel", h("div.row", cat), h("div.chips", chips), counter);
  view.append(el, panel);
  const filter = { category: "", status: "" };
  const m = await pointMap(el, {
    onProgress: (n, total) => (counter.textContent = `${t("loading")} ${n}/${total}`),
    onReady: (r) => {
      counter.textContent = `${r.located} ${t("mapPoints")}` + (m && m.points.length > m.markers.length ? ` · ${m.points.length - m.markers.length} ${t("noLocation")}` : "");
      el.dataset.ready = "1";
      el.dataset.located = r.located;
      el.dataset.ms = r.ms;
      el.dataset.fetchMs = r.fetchMs;
      el.dataset.addMs = r.addMs;
    },
  });
  const counts = {};
  for (const p of m.points) counts[p.category] = (counts[p.category] || 0) + 1;
  for (const code of Object.keys(counts)) cat.append(h("option", { value: code }, `${categoryName(code)} (${counts[code]})`));
  if (!m.cfg.map_tile_url) panel.append(h("div.muted.small#map-notiles", t("noTiles")));
  const apply = () => {
    delete el.dataset.ready;
    m.show(filter);
  };
  cat.onchange = () => ((filter.category = cat.value), apply());
  for (const c of chips) {
    c.onclick = () => {
      chips.forEach((x) => x.classList.toggle("on", x === c));
      filter.status = c.dataset.status;
      apply();
    };
  }
  m.show(filter);
  return () => m.destroy();
}
