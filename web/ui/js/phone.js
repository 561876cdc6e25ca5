// Phone views (designed at 360×740 first): home with granted categories,
// favourites and recently viewed; region drill-down; search and point
// lists (virtualised); the player page.

import { api, ApiError } from "./api.js";
import { h, clear, debounce } from "./dom.js";
import { t, categoryName } from "./i18n.js";
import { go } from "./router.js";
import { facets, favourites, recent, addRecent, regionNameMap, PointPages, isFavourite, toggleFavourite } from "./data.js";
import { Player, State, stateClass, snapshot } from "./player.js";
import { VirtualList } from "./vlist.js";

const rowHeight = 60;

// appendAll appends the nodes that are not null (Element.append would
// print "null").
function appendAll(el, ...nodes) {
  el.append(...nodes.filter((n) => n != null));
}

function statusDot(state) {
  return h("span.dot." + (state || "unknown"), { title: t(state || "unknown") });
}

/** pointRow fills a list row for point p (or a placeholder while it loads). */
export function pointRow(row, p, regionNames = {}) {
  clear(row);
  if (!p) {
    row.append(h("div.row-main", h("span.row-name.placeholder", t("loading"))));
    delete row.dataset.id;
    return;
  }
  row.dataset.id = p.id;
  appendAll(row, 
    statusDot(p.status?.state),
    h("div.row-main",
      h("span.row-name", p.name),
      h("span.row-meta", [categoryName(p.category), regionNames[p.region] || p.address || p.region].filter(Boolean).join(" · "))),
    p.kind === "panoramic" ? h("span.tag", t("panoramic")) : null,
  );
}

function pointLink(p) {
  return h("a.item", { href: "#/p/" + encodeURIComponent(p.id), dataset: { id: p.id } },
    statusDot(p.status?.state || p.status),
    h("div.row-main", h("span.row-name", p.name), h("span.row-meta", categoryName(p.category))));
}

function searchBox(value, onSearch) {
  const input = h("input.search#q", { type: "search", placeholder: t("search"), value: value || "", enterkeyhint: "search" });
  const form = h("form.searchbar", { onsubmit: (e) => (e.preventDefault(), onSearch(input.value.trim())) }, input);
  return { form, input };
}

/** home: search, category tiles with counts, region entry, favourites, recent. */
export async function home(view) {
  view.classList.add("phone");
  const { form } = searchBox("", (q) => q && go("/l?q=" + encodeURIComponent(q)));
  const tiles = h("div.tiles#categories", h("p.muted", t("loading")));
  const favList = h("div.list-static#favourites");
  const recentList = h("div.list-static#recent");
  const summary = h("p.summary");
  view.append(form, summary,
    h("div.section-head", h("h2", t("categories")), h("a.link#by-region", { href: "#/r" }, t("byRegion") + " ›")),
    tiles,
    h("h2", t("favourites")), favList,
    h("h2", t("recent")), recentList);

  const rec = recent();
  recentList.append(...(rec.length ? rec.map(pointLink) : [h("p.muted", t("noRecent"))]));

  const [f, fav] = await Promise.all([facets(), favourites().catch((e) => (e.status === 401 ? Promise.reject(e) : { items: [] }))]);
  summary.replaceChildren(
    h("span", `${f.total} ${t("points")}`), " · ",
    statusDot("online"), `${t("online")} ${f.status.online}`, " · ",
    statusDot("offline"), `${t("offline")} ${f.status.offline}`);
  const granted = f.categories.filter((c) => c.count > 0);
  tiles.replaceChildren(...(granted.length ? granted.map((c) =>
    h("a.tile", { href: "#/l?category=" + encodeURIComponent(c.code), dataset: { category: c.code } },
      h("span.tile-name", categoryName(c.code)), h("span.tile-count", String(c.count)))) : [h("p.muted", t("empty"))]));
  favList.append(...(fav.items.length ? fav.items.map(pointLink) : [h("p.muted", t("noFavourites"))]));
}

function findRegion(list, code) {
  for (const n of list) {
    if (n.code === code) return n;
    const c = findRegion(n.children || [], code);
    if (c) return c;
  }
  return null;
}

/** region: drill down district → street → community with counts. */
export async function region(view, { code }) {
  view.classList.add("phone");
  const f = await facets();
  const node = code ? findRegion(f.regions, code) : null;
  const children = node ? node.children || [] : f.regions;
  const title = node ? node.name : t("byRegion");
  const list = h("div.list-static#regions");
  view.append(topbar(title, node ? node.count : null), list);
  if (node) {
    list.append(h("a.item.strong", { href: "#/l?region=" + node.code }, h("div.row-main", h("span.row-name", t("allInRegion"))), h("span.count", String(node.count))));
  }
  for (const c of children) {
    const href = c.children?.length ? "#/r/" + c.code : "#/l?region=" + c.code;
    list.append(h("a.item", { href, dataset: { region: c.code } }, h("div.row-main", h("span.row-name", c.name)), h("span.count", String(c.count)), h("span.chev", "›")));
  }
  if (!code && f.unassigned) {
    list.append(h("div.item.muted", h("div.row-main", h("span.row-name", t("unassigned"))), h("span.count", String(f.unassigned))));
  }
}

function topbar(title, count) {
  return h("div.topbar",
    h("button.back", { type: "button", "aria-label": t("back"), onclick: () => (history.length > 1 ? history.back() : go("/")) }, "‹"),
    h("h1.title", title),
    count != null ? h("span.count#total", String(count)) : null);
}

/** list: a virtualised, filtered point list (category, region, q, status). */
export async function list(view, _params, query) {
  view.classList.add("phone", "fill");
  const filter = {};
  for (const k of ["category", "region", "q", "status", "kind"]) if (query.get(k)) filter[k] = query.get(k);
  const names = await regionNameMap();
  const title = filter.category ? categoryName(filter.category) : filter.region ? names[filter.region] || filter.region : filter.q ? `“${filter.q}”` : t("all");
  const bar = topbar(title, null);
  const total = h("span.count#total", "…");
  bar.append(total);
  const { form, input } = searchBox(filter.q, (q) => setFilter({ q }));
  const setFilter = (patch) => {
    const next = new URLSearchParams(query);
    for (const [k, v] of Object.entries(patch)) v ? next.set(k, v) : next.delete(k);
    go("/l?" + next.toString(), { replace: true });
  };
  input.addEventListener("input", debounce(() => setFilter({ q: input.value.trim() }), 400));
  const chips = h("div.chips", ["", "online", "offline"].map((s) =>
    h("button.chip" + ((filter.status || "") === s ? ".on" : ""), { type: "button", onclick: () => setFilter({ status: s }) }, s ? t(s) : t("all"))));
  const scroller = h("div.scroller#points");
  view.append(bar, form, chips, scroller);
  if (filter.q) {
    // Keep typing where the user was after the list re-renders.
    input.focus();
    input.setSelectionRange(input.value.length, input.value.length);
  }

  const pages = new PointPages(filter, { onChange: () => vl.refresh() });
  const vl = new VirtualList(scroller, { rowHeight, item: (i) => pages.get(i), render: (row, p) => pointRow(row, p, names) });
  scroller.addEventListener("click", (e) => {
    const row = e.target.closest(".vrow");
    if (row?.dataset.id) go("/p/" + encodeURIComponent(row.dataset.id));
  });
  const n = await pages.first();
  total.textContent = String(n);
  vl.setTotal(n);
  if (!n) scroller.append(h("p.muted.center", t("empty")));
  return () => {
    pages.stop();
    vl.destroy();
  };
}

/** statusText is the message of a player state. */
export function statusText(s) {
  return s === State.idle ? "" : t(s);
}

/** player: one point, sub stream by default, with fullscreen, main/sub, snapshot, favourite and PTZ. */
export async function player(view, { id }) {
  view.classList.add("phone");
  const video = h("video#video", { muted: true, autoplay: true, playsinline: true });
  const status = h("div.status#status", t("connecting"));
  const badge = h("span.badge.busy", t("connecting"));
  const stage = h("div.stage", video, h("div.stage-top", badge));
  const title = h("h1.title", "…");
  const bar = h("div.topbar",
    h("button.back", { type: "button", "aria-label": t("back"), onclick: () => (history.length > 1 ? history.back() : go("/")) }, "‹"), title);
  view.append(bar, stage, status);

  const pl = new Player(video, {
    onState: (s) => {
      status.textContent = statusText(s);
      status.className = "status " + stateClass(s);
      status.dataset.state = s;
      badge.textContent = statusText(s);
      badge.className = "badge " + stateClass(s);
    },
  });

  let point;
  try {
    point = await api("/api/v1/points/" + encodeURIComponent(id));
  } catch (e) {
    if (e instanceof ApiError && (e.status === 404 || e.status === 403)) {
      pl.setState(State.denied);
      return () => pl.stop();
    }
    throw e;
  }
  title.textContent = point.name;
  addRecent(point);

  const fullscreen = async () => {
    if (document.fullscreenElement) return document.exitFullscreen().catch(() => {});
    try {
      await stage.requestFullscreen({ navigationUI: "hide" });
      await screen.orientation?.lock?.("landscape");
    } catch {
      // not allowed here (desktop, iOS): the video stays inline
    }
  };
  stage.addEventListener("click", fullscreen);

  const streamBtn = h("button.btn#stream", { type: "button" }, t("mainStream"));
  streamBtn.onclick = () => {
    const main = pl.profile === "sub";
    pl.setProfile(main ? "main" : "sub");
    streamBtn.textContent = main ? t("subStream") : t("mainStream");
  };
  const favBtn = h("button.btn#fav", { type: "button" }, "☆ " + t("favourite"));
  const showFav = (on) => (favBtn.textContent = on ? "★ " + t("unfavourite") : "☆ " + t("favourite"));
  favourites().then(() => showFav(isFavourite(point.id))).catch(() => {});
  favBtn.onclick = () => toggleFavourite(point.id).then(showFav).catch(() => {});
  // What the caller may do here decides the PTZ pad and where snapshots come from.
  const allowed = api("/api/v1/points/" + encodeURIComponent(id) + "/allowed")
    .then((a) => a.actions)
    .catch(() => ["view"]);
  const snapBtn = h("button.btn#snap", { type: "button" }, t("snapshot"));
  snapBtn.onclick = async () => {
    snapBtn.disabled = true;
    try {
      const fromCamera = !!point.agent && (await allowed).includes("snapshot");
      snapBtn.dataset.source = await snapshot(video, point.name, { pointId: point.id, fromCamera });
    } finally {
      snapBtn.disabled = false;
    }
  };
  const controls = h("div.controls",
    h("button.btn#full", { type: "button", onclick: fullscreen }, t("fullscreen")),
    streamBtn,
    snapBtn,
    favBtn);
  const names = await regionNameMap().catch(() => ({}));
  const info = h("dl.info",
    h("dt", t("category")), h("dd", categoryName(point.category)),
    h("dt", t("region")), h("dd", names[point.region] || point.region || "—"),
    point.address ? [h("dt", t("address")), h("dd", point.address)] : null,
    h("dt", t("status")), h("dd", statusDot(point.status?.state), " ", t(point.status?.state || "unknown")),
    h("dt", t("level")), h("dd", String(point.level)),
    h("dt", "ID"), h("dd.mono", point.id));
  view.append(controls);
  let pad = null;
  if (point.ptz) {
    allowed.then((actions) => {
      if (!actions.includes("ptz") || !controls.isConnected) return;
      pad = ptzPad(point.id);
      controls.after(pad.el);
    });
  }
  view.append(info);
  pl.play(point.id, "sub");
  return () => {
    pad?.stop();
    pl.stop();
    if (document.fullscreenElement) document.exitFullscreen().catch(() => {});
  };
}

// ptzMoveMs bounds each move: the camera stops by itself if the release
// never arrives (a dropped network, a closed tab). While a button is held
// the move is repeated before it runs out.
const ptzMoveMs = 1500;
const ptzRepeatMs = 1000;

// ptzPad steers the camera through POST /api/v1/points/{id}/ptz: a move
// while a direction is held, a stop on release. The server answers 409
// no_ptz (no PTZ through an agent), 409 ptz_busy (a user of higher
// priority holds it), 503 agent_offline; each shows its own message.
function ptzPad(id) {
  const url = "/api/v1/points/" + encodeURIComponent(id) + "/ptz";
  const note = h("p.muted.ptz-note#ptz-note", { role: "status" });
  const pad = h("div.ptz#ptz", { "aria-label": t("ptz") });
  const el = h("div.ptz-box", pad, note);
  let repeat = 0;
  const release = () => {
    if (!repeat) return;
    clearInterval(repeat);
    repeat = 0;
    send({ op: "stop" });
  };
  // Calls go one after another, so a quick release's stop never overtakes its move.
  let queue = Promise.resolve();
  const send = (body) => (queue = queue.then(() => post(body)));
  const post = (body) =>
    api(url, { method: "POST", body })
      .then(() => {
        note.textContent = "";
        delete note.dataset.code;
      })
      .catch((e) => {
        clearInterval(repeat);
        repeat = 0;
        if (e.status === 401) return;
        note.dataset.code = e.code || String(e.status);
        if (e.code === "no_ptz" || e.status === 404 || e.status === 405 || e.status === 501) {
          pad.hidden = true;
          note.textContent = t("ptzUnavailable");
        } else if (e.code === "ptz_busy") {
          const holder = /held by (.+)$/.exec(e.message)?.[1];
          note.textContent = t("ptzBusy") + (holder ? ` (${holder})` : "");
        } else if (e.code === "device_offline" || e.code === "device_timeout") {
          note.textContent = t("ptzDeviceOffline");
        } else if (e.code === "agent_offline" || e.status === 503 || e.status === 504) {
          note.textContent = t("ptzAgentOffline");
        } else if (e.status === 403) {
          note.textContent = t("ptzDenied");
        } else {
          note.textContent = t("ptzFailed");
        }
      });
  const hold = (b, move) => {
    b.addEventListener("pointerdown", (e) => {
      e.preventDefault();
      b.setPointerCapture?.(e.pointerId);
      clearInterval(repeat);
      const body = { op: "move", ...move, timeout_ms: ptzMoveMs };
      repeat = setInterval(() => send(body), ptzRepeatMs);
      send(body);
    });
    for (const ev of ["pointerup", "pointercancel", "lostpointercapture"]) b.addEventListener(ev, release);
  };
  const dirs = [["↖", -1, 1], ["↑", 0, 1], ["↗", 1, 1], ["←", -1, 0], ["", 0, 0], ["→", 1, 0], ["↙", -1, -1], ["↓", 0, -1], ["↘", 1, -1]];
  for (const [label, pan, tilt] of dirs) {
    if (!label) {
      pad.append(h("span"));
      continue;
    }
    const b = h("button.btn", { type: "button", dataset: { pan, tilt } }, label);
    hold(b, { pan: pan * 0.5, tilt: tilt * 0.5 });
    pad.append(b);
  }
  for (const [label, zoom, name] of [["＋", 0.5, "in"], ["－", -0.5, "out"]]) {
    const b = h("button.btn", { type: "button", dataset: { zoom: name }, "aria-label": t(name === "in" ? "zoomIn" : "zoomOut") }, label);
    hold(b, { zoom });
    pad.append(b);
  }
  return { el, stop: release };
}
