// Map: every granted point by its coordinates on Leaflet with clustering,
// filtered by category and status. The points come in one compact call
// (GET /api/v1/points/geo) that runs while Leaflet loads; markers share one
// icon per state and get their popup only when clicked, so 13,635 points
// are clustered in well under a second. The basemap is the deployment's own
// tile server when configured; otherwise a drawn coordinate grid. Nothing
// here calls the internet.

import { h } from "./dom.js";
import { t, categoryName } from "./i18n.js";
import { pointLocations, uiConfig } from "./data.js";
import { wgs84ToGcj02 } from "./gcj02.js";

let leaflet = null;

function addCSS(href) {
  if (document.querySelector(`link[href="${href}"]`)) return;
  document.head.append(h("link", { rel: "stylesheet", href }));
}

function addScript(src) {
  return new Promise((resolve, reject) => {
    const s = document.createElement("script");
    // Injected scripts are async by default; async=false keeps them in
    // insertion order while they still download in parallel.
    s.async = false;
    s.src = src;
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
    leaflet = Promise.all([addScript("/ui/vendor/leaflet/leaflet.js"), addScript("/ui/vendor/leaflet.markercluster/leaflet.markercluster.js")])
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

// Markercluster tuning for a district's 13,635 points. Clustering runs in
// chunks of up to 200 ms with 1 ms between them: the page still answers
// input a few times while it works, and the gaps cost little (shorter
// chunks measured slower: each pause lets a frame be painted). From zoom
// 17 on (a street block fills the screen) markers show one by one, so the
// grids of zooms 17 to 20, where nearly every point sits alone and where
// most of the clustering time went, are never built. Points at one spot
// still spiderfy: their cluster is then the same down to zoom 16.
const clusterOptions = {
  chunkedLoading: true,
  chunkInterval: 200,
  chunkDelay: 1,
  showCoverageOnHover: false,
  maxClusterRadius: 60,
  disableClusteringAtZoom: 17,
};

/**
 * pointMap builds a map of every granted point in el. Its points are
 * {id, name, category, state}; markers[i].point is one of them.
 * opts.popup(p) returns extra popup content; opts.onReady({points, located,
 * ms, fetchMs, addMs}) fires when every marker of a show() is in the cluster
 * and the frame that shows them has been drawn.
 */
export async function pointMap(el, { popup, onReady } = {}) {
  const t0 = performance.now();
  // The points load while Leaflet does.
  const [L, cfg, loc] = await Promise.all([loadLeaflet(), config(), pointLocations()]);
  const fetchMs = Math.round(performance.now() - t0);
  const shift = cfg.map_tile_crs === "gcj02" ? wgs84ToGcj02 : (lat, lon) => [lat, lon];
  const n = loc.id.length;
  const points = new Array(n);
  const markers = new Array(n);
  let south = 90, west = 180, north = -90, east = -180;
  for (let i = 0; i < n; i++) {
    const p = { id: loc.id[i], name: loc.name[i], category: loc.category[i], state: loc.status[i] };
    const [lat, lon] = shift(loc.lat[i], loc.lon[i]);
    const m = L.marker([lat, lon], { icon: icon(L, p.state), title: p.name });
    m.point = p;
    points[i] = p;
    markers[i] = m;
    south = Math.min(south, lat);
    north = Math.max(north, lat);
    west = Math.min(west, lon);
    east = Math.max(east, lon);
  }

  // No tile fade: it repaints the whole map for a quarter second while the
  // clusters are being built, and the drawn grid has nothing to fade.
  const map = L.map(el, { preferCanvas: true, zoomControl: true, fadeAnimation: false, attributionControl: !!cfg.map_tile_url, worldCopyJump: false });
  // Leaflet's default attribution links to its website; on a private
  // network the page names it without a link.
  map.attributionControl?.setPrefix("Leaflet");
  // The first view is where the points are: set before any layer, it is
  // neither animated nor drawn twice. A lone point is shown at street level
  // (the map has no zoom limit yet, so a bounds of one point needs one).
  if (n) map.fitBounds(L.latLngBounds([south, west], [north, east]).pad(0.05), { maxZoom: clusterOptions.disableClusteringAtZoom });
  else map.setView([22.55, 113.9], 11);
  if (cfg.map_tile_url) {
    L.tileLayer(cfg.map_tile_url, { maxZoom: cfg.map_max_zoom, attribution: cfg.map_attribution || "" }).addTo(map);
  } else {
    gridLayer(L).addTo(map);
  }
  const cluster = L.markerClusterGroup(clusterOptions);
  map.addLayer(cluster);
  // A popup is made for the marker clicked, not for all 13,635 ahead.
  cluster.on("click", (e) => {
    const m = e.layer;
    if (!m?.point || m.getPopup()) return;
    m.bindPopup(() => popupFor(m.point, popup), { minWidth: 180 }).openPopup();
  });

  let gen = 0;
  const show = (filter) => {
    const my = ++gen;
    const t1 = performance.now();
    const ready = (located) => onReady?.({ points: n, located, ms: Math.round(performance.now() - t0), fetchMs, addMs: Math.round(performance.now() - t1) });
    cluster.clearLayers();
    const chosen = filter.category || filter.status ? markers.filter((m) => (!filter.category || m.point.category === filter.category) && (!filter.status || m.point.state === filter.status)) : markers;
    cluster.options.chunkProgress = (done, total) => {
      // The last chunk's progress comes just before the group draws its
      // clusters; ready counts from after the frame that shows them.
      if (my === gen && done === total) requestAnimationFrame(() => setTimeout(() => my === gen && ready(total)));
    };
    // true: no layeradd event per marker; nothing listens for them.
    cluster.addLayers(chosen, true);
    if (!chosen.length) ready(0);
    return chosen.length;
  };
  return { map, L, points, markers, unlocated: loc.unlocated, show, cfg, destroy: () => map.remove() };
}

function popupFor(p, extra) {
  return h("div.popup",
    h("strong", p.name),
    h("div.muted", categoryName(p.category), " · ", t(p.state || "unknown")),
    h("div.popup-actions", h("a.btn", { href: "#/p/" + encodeURIComponent(p.id) }, "▶ " + t("play")), extra ? extra(p) : null));
}

/** map is the full-page map view. */
export async function map(view) {
  view.classList.add("mapview");
  const el = h("div#map");
  const counter = h("span#map-count", t("loading"));
  const cat = h("select#map-category", h("option", { value: "" }, t("all") + " · " + t("category")));
  const chips = ["", "online", "offline", "agent_offline", "unknown"].map((s) => h("button.chip" + (s ? "" : ".on"), { type: "button", dataset: { status: s } }, s ? t(s) : t("all")));
  const panel = h("div.map-panel", h("div.row", cat), h("div.chips", chips), counter);
  view.append(el, panel);
  const filter = { category: "", status: "" };
  const m = await pointMap(el, {
    onReady: (r) => {
      counter.textContent = `${r.located} ${t("mapPoints")}` + (m?.unlocated ? ` · ${m.unlocated} ${t("noLocation")}` : "");
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
