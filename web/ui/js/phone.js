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
  const controls = h("div.controls",
    h("button.btn#full", { type: "button", onclick: fullscreen }, t("fullscreen")),
    streamBtn,
    h("button.btn#snap", { type: "button", onclick: () => snapshot(video, point.name) }, t("snapshot")),
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
  if (point.ptz) {
    api("/api/v1/points/" + encodeURIComponent(id) + "/allowed")
      .then((a) => a.actions.includes("ptz") && controls.after(ptzPad(point.id)))
      .catch(() => {});
  }
  view.append(info);
  pl.play(point.id, "sub");
  return () => {
    pl.stop();
    if (document.fullscreenElement) document.exitFullscreen().catch(() => {});
  };
}

// ptzPad sends moves while a direction is held and a stop on release. The
// PTZ API arrives with the edge agent; until then a 404/501 hides the pad.
function ptzPad(id) {
  const note = h("p.muted");
  const pad = h("div.ptz#ptz", { "aria-label": t("ptz") });
  const send = (body) =>
    api("/api/v1/points/" + encodeURIComponent(id) + "/ptz", { method: "POST", body }).catch((e) => {
      if (e.status === 404 || e.status === 501 || e.status === 405) {
        pad.replaceChildren(note);
        note.textContent = t("ptzUnavailable");
      }
    });
  const dirs = [["↖", -1, 1], ["↑", 0, 1], ["↗", 1, 1], ["←", -1, 0], ["", 0, 0], ["→", 1, 0], ["↙", -1, -1], ["↓", 0, -1], ["↘", 1, -1]];
  for (const [label, pan, tilt] of dirs) {
    if (!label) {
      pad.append(h("span"));
      continue;
    }
    const b = h("button.btn", { type: "button" }, label);
    b.addEventListener("pointerdown", () => send({ action: "move", pan: pan * 0.5, tilt: tilt * 0.5, zoom: 0 }));
    b.addEventListener("pointerup", () => send({ action: "stop" }));
    pad.append(b);
  }
  for (const [label, zoom] of [["＋", 0.5], ["－", -0.5]]) {
    const b = h("button.btn", { type: "button" }, label);
    b.addEventListener("pointerdown", () => send({ action: "move", pan: 0, tilt: 0, zoom }));
    b.addEventListener("pointerup", () => send({ action: "stop" }));
    pad.append(b);
  }
  return pad;
}
