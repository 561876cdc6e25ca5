// IOC video wall (1920×1080 and up): layouts 1, 4, 9, 16, 1+5 and 1+7;
// points dragged from the region tree, search or map onto tiles; named
// layouts saved per user; tours (轮巡) through a selection or a category;
// tiles on the sub stream, a double-clicked tile full-size on the main
// stream; keyboard control. Every tile is a Player and recovers by itself.

import { api, ApiError } from "./api.js";
import { h, clear, debounce } from "./dom.js";
import { t, categoryName } from "./i18n.js";
import { facets, allPoints, regionNameMap, PointPages } from "./data.js";
import { Player, stateClass } from "./player.js";
import { statusText, pointRow } from "./phone.js";
import { VirtualList } from "./vlist.js";

const grids = { 1: 1, 4: 4, 9: 9, 16: 16, "1+5": 6, "1+7": 8 };
const dragType = "application/x-tianyan-point";
const lastKey = "ty.wall.last";

function setDrag(ev, p) {
  ev.dataTransfer.setData(dragType, JSON.stringify({ id: p.id, name: p.name, category: p.category }));
  ev.dataTransfer.setData("text/plain", p.id);
  ev.dataTransfer.effectAllowed = "copy";
}

/** wall renders the video wall. */
export async function wall(view) {
  view.classList.add("wall");
  const W = new Wall(view);
  await W.init();
  return () => W.destroy();
}

class Wall {
  constructor(view) {
    this.view = view;
    this.grid = "4";
    this.tiles = []; // {el, video, player, point, head, badge}
    this.selected = 0;
    this.solo = -1;
    this.tour = null; // {points:[], category:"", interval, timer, page}
    this.tourList = []; // the selection a tour can rotate through
    this.pointCache = new Map();
    this.onKey = (e) => this.key(e);
    this.onFs = () => !document.fullscreenElement && this.solo >= 0 && this.unsolo();
  }

  async init() {
    const v = this.view;
    this.gridEl = h("div.wall-grid#wall-grid");
    this.layoutSel = h("select#layout-select", h("option", { value: "" }, t("savedLayouts")));
    this.nameInput = h("input#layout-name", { placeholder: t("layoutName"), maxlength: 64 });
    this.msg = h("span.muted#wall-msg");
    this.tourBtn = h("button.btn#tour-btn", { type: "button", onclick: () => (this.tour ? this.stopTour() : this.startTour()) }, t("startTour"));
    this.tourSrc = h("select#tour-source", h("option", { value: "" }, t("tourSelection")));
    this.tourInt = h("input#tour-interval", { type: "number", min: 5, max: 3600, value: 15, style: { width: "72px" } });
    this.tourCount = h("span.muted#tour-count", "(0)");
    const gridBtns = Object.keys(grids).map((g) => h("button.chip", { type: "button", dataset: { grid: g }, onclick: () => this.setGrid(g) }, g));
    this.gridBtns = gridBtns;
    const bar = h("div.wall-bar",
      h("span.muted", t("layout")), ...gridBtns,
      h("span.sep"), this.layoutSel, this.nameInput,
      h("button.btn#layout-save", { type: "button", onclick: () => this.save() }, t("saveLayout")),
      h("button.btn#layout-delete", { type: "button", onclick: () => this.remove() }, t("deleteLayout")),
      h("span.sep"), h("span.muted", t("tour")), this.tourSrc, this.tourCount, h("span.muted", t("interval")), this.tourInt, this.tourBtn,
      h("span.sep"), this.msg, h("span.muted.keys", t("keysHelp")));
    this.side = h("aside.wall-side");
    v.append(bar, h("div.wall-body", this.side, this.gridEl));
    this.layoutSel.onchange = () => this.layoutSel.value && this.load(this.layoutSel.value);
    document.addEventListener("keydown", this.onKey);
    document.addEventListener("fullscreenchange", this.onFs);

    const f = await facets();
    for (const c of f.categories.filter((c) => c.count > 0)) {
      this.tourSrc.append(h("option", { value: c.code }, `${categoryName(c.code)} (${c.count})`));
    }
    this.buildSide(f);
    this.setGrid("4");
    await this.refreshLayouts();
    const last = localStorage.getItem(lastKey);
    if (last && [...this.layoutSel.options].some((o) => o.value === last)) {
      this.layoutSel.value = last;
      await this.load(last);
    }
  }

  destroy() {
    this.stopTour();
    document.removeEventListener("keydown", this.onKey);
    document.removeEventListener("fullscreenchange", this.onFs);
    for (const tl of this.tiles) tl.player.stop();
    this.sideCleanup?.();
  }

  say(text) {
    this.msg.textContent = text;
    clearTimeout(this.msgTimer);
    this.msgTimer = setTimeout(() => (this.msg.textContent = ""), 4000);
  }

  // --- tiles --------------------------------------------------------------

  makeTile(i) {
    const video = h("video", { muted: true, autoplay: true, playsinline: true });
    const name = h("span.tile-name");
    const cat = h("span.tile-cat");
    const badge = h("span.badge.idle");
    const empty = h("div.tile-empty", t("dropHere"));
    const el = h("div.tile-cell", { dataset: { index: i }, tabindex: -1 },
      video, h("div.tile-head", h("span.tile-num", String(i + 1)), name, cat), h("div.tile-foot", badge), empty);
    const tile = { el, video, name, cat, badge, empty, point: null };
    tile.player = new Player(video, {
      onState: (s) => {
        badge.textContent = statusText(s);
        badge.className = "badge " + stateClass(s);
        el.dataset.state = s;
      },
    });
    el.addEventListener("click", () => this.select(this.tiles.indexOf(tile)));
    el.addEventListener("dblclick", () => this.toggleSolo(this.tiles.indexOf(tile)));
    el.addEventListener("dragover", (e) => {
      e.preventDefault();
      e.dataTransfer.dropEffect = "copy";
      el.classList.add("drop");
    });
    el.addEventListener("dragleave", () => el.classList.remove("drop"));
    el.addEventListener("drop", (e) => {
      e.preventDefault();
      el.classList.remove("drop");
      let p = null;
      try {
        p = JSON.parse(e.dataTransfer.getData(dragType));
      } catch {
        const id = e.dataTransfer.getData("text/plain");
        if (id) p = { id };
      }
      if (p?.id) {
        const i = this.tiles.indexOf(tile);
        this.select(i);
        this.assign(i, p);
      }
    });
    return tile;
  }

  setGrid(g) {
    if (!grids[g]) return;
    this.grid = g;
    const n = grids[g];
    while (this.tiles.length > n) {
      const tl = this.tiles.pop();
      tl.player.stop();
      tl.el.remove();
    }
    while (this.tiles.length < n) {
      const tl = this.makeTile(this.tiles.length);
      this.tiles.push(tl);
      this.gridEl.append(tl.el);
    }
    this.gridEl.className = "wall-grid g-" + g.replace("+", "p");
    this.gridBtns.forEach((b) => b.classList.toggle("on", b.dataset.grid === g));
    this.select(Math.min(this.selected, n - 1));
  }

  select(i) {
    if (i < 0 || i >= this.tiles.length) return;
    this.selected = i;
    this.tiles.forEach((tl, k) => tl.el.classList.toggle("selected", k === i));
  }

  async pointInfo(p) {
    if (p.name && p.category) return p;
    if (this.pointCache.has(p.id)) return this.pointCache.get(p.id);
    try {
      const full = await api("/api/v1/points/" + encodeURIComponent(p.id));
      this.pointCache.set(p.id, full);
      return full;
    } catch (e) {
      if (e instanceof ApiError && e.status !== 401) return { id: p.id, name: p.id, category: "" };
      throw e;
    }
  }

  /** assign puts point p ({id,…}) in tile i on the sub stream (null clears); keep leaves a tile already showing p alone. */
  async assign(i, p, { keep = false } = {}) {
    const tl = this.tiles[i];
    if (!tl) return;
    if (!p?.id) {
      tl.point = null;
      tl.player.stop();
      tl.name.textContent = tl.cat.textContent = "";
      tl.el.classList.remove("filled");
      return;
    }
    // A tour step that leaves a point where it is must not restart it.
    if (keep && tl.point?.id === p.id && tl.player.pointId === p.id) return;
    tl.point = { id: p.id, name: p.name || p.id, category: p.category || "" };
    tl.el.classList.add("filled");
    tl.name.textContent = tl.point.name;
    tl.cat.textContent = categoryName(tl.point.category);
    tl.player.play(p.id, this.solo === i ? "main" : "sub");
    const full = await this.pointInfo(p).catch(() => null);
    if (full && tl.point?.id === p.id) {
      tl.point = { id: full.id, name: full.name, category: full.category };
      tl.name.textContent = full.name;
      tl.cat.textContent = categoryName(full.category);
    }
  }

  toggleSolo(i) {
    if (this.solo >= 0) return this.unsolo();
    const tl = this.tiles[i];
    if (!tl?.point) return;
    this.select(i);
    this.solo = i;
    this.gridEl.classList.add("solo");
    tl.el.classList.add("solo-tile");
    tl.player.setProfile("main");
    this.gridEl.requestFullscreen?.().catch(() => {});
  }

  unsolo() {
    const tl = this.tiles[this.solo];
    this.solo = -1;
    this.gridEl.classList.remove("solo");
    if (tl) {
      tl.el.classList.remove("solo-tile");
      if (tl.point) tl.player.setProfile("sub");
    }
    if (document.fullscreenElement) document.exitFullscreen().catch(() => {});
  }

  key(e) {
    if (e.target.closest?.("input, select, textarea") || e.ctrlKey || e.metaKey || e.altKey) return;
    if (/^[0-9]$/.test(e.key)) {
      const i = e.key === "0" ? 9 : Number(e.key) - 1;
      if (i < this.tiles.length) this.select(i);
    } else if (e.key.startsWith("Arrow")) {
      this.move(e.key.slice(5).toLowerCase());
    } else if (e.key === "f" || e.key === "F") {
      this.toggleSolo(this.selected);
    } else if (e.key === "Escape") {
      if (this.solo >= 0) this.unsolo();
    } else if (e.key === "Delete" || e.key === "Backspace") {
      this.assign(this.selected, null);
    } else return;
    e.preventDefault();
  }

  // move picks the nearest tile in a direction by geometry, so arrows work
  // the same on regular grids and on 1+5 / 1+7.
  move(dir) {
    const cur = this.tiles[this.selected].el.getBoundingClientRect();
    const cx = cur.left + cur.width / 2, cy = cur.top + cur.height / 2;
    let best = -1, bestD = Infinity;
    this.tiles.forEach((tl, i) => {
      if (i === this.selected) return;
      const r = tl.el.getBoundingClientRect();
      const x = r.left + r.width / 2, y = r.top + r.height / 2;
      const dx = x - cx, dy = y - cy;
      const ok = { left: dx < -1 && Math.abs(dy) < r.height / 2 + cur.height / 2, right: dx > 1 && Math.abs(dy) < r.height / 2 + cur.height / 2,
        up: dy < -1 && Math.abs(dx) < r.width / 2 + cur.width / 2, down: dy > 1 && Math.abs(dx) < r.width / 2 + cur.width / 2 }[dir];
      const d = dx * dx + dy * dy;
      if (ok && d < bestD) (best = i), (bestD = d);
    });
    if (best >= 0) this.select(best);
  }

  // --- layouts ------------------------------------------------------------

  async refreshLayouts() {
    const ls = await api("/api/v1/me/layouts");
    const keep = this.layoutSel.value;
    this.layoutSel.replaceChildren(h("option", { value: "" }, t("savedLayouts")), ...ls.items.map((l) => h("option", { value: l.name }, `${l.name} (${l.grid})`)));
    if ([...this.layoutSel.options].some((o) => o.value === keep)) this.layoutSel.value = keep;
  }

  current() {
    const body = { grid: this.grid, tiles: this.tiles.map((tl) => tl.point?.id || "") };
    while (body.tiles.length && !body.tiles[body.tiles.length - 1]) body.tiles.pop();
    const interval = Math.max(5, Math.min(3600, Number(this.tourInt.value) || 15));
    if (this.tour) body.tour = this.tour.category ? { category: this.tour.category, interval_s: interval } : { points: this.tour.points, interval_s: interval };
    return body;
  }

  async save() {
    const name = this.nameInput.value.trim() || this.layoutSel.value;
    if (!name) return this.nameInput.focus();
    try {
      await api("/api/v1/me/layouts/" + encodeURIComponent(name), { method: "PUT", body: this.current() });
    } catch (e) {
      return this.say(e.message);
    }
    localStorage.setItem(lastKey, name);
    await this.refreshLayouts();
    this.layoutSel.value = name;
    this.nameInput.value = "";
    this.say(t("saved") + ": " + name);
  }

  async remove() {
    const name = this.layoutSel.value;
    if (!name) return;
    await api("/api/v1/me/layouts/" + encodeURIComponent(name), { method: "DELETE" }).catch((e) => this.say(e.message));
    if (localStorage.getItem(lastKey) === name) localStorage.removeItem(lastKey);
    await this.refreshLayouts();
  }

  async load(name) {
    const l = await api("/api/v1/me/layouts/" + encodeURIComponent(name));
    this.stopTour();
    if (this.solo >= 0) this.unsolo();
    this.setGrid(l.grid);
    this.tiles.forEach((_, i) => this.assign(i, l.tiles[i] ? { id: l.tiles[i] } : null));
    localStorage.setItem(lastKey, name);
    if (l.tour) {
      this.tourInt.value = l.tour.interval_s;
      if (l.tour.category) this.tourSrc.value = l.tour.category;
      else {
        this.tourSrc.value = "";
        this.tourList = l.tour.points.slice();
        this.tourCount.textContent = `(${this.tourList.length})`;
      }
      this.startTour();
    }
  }

  // --- tours --------------------------------------------------------------

  addToTour(p) {
    if (!this.tourList.includes(p.id)) this.tourList.push(p.id);
    this.tourCount.textContent = `(${this.tourList.length})`;
  }

  async startTour() {
    const category = this.tourSrc.value;
    const interval = Math.max(5, Math.min(3600, Number(this.tourInt.value) || 15));
    let ids = this.tourList.slice();
    if (category) ids = (await allPoints({ category })).map((p) => p.id);
    if (!ids.length) return this.say(t("tourEmpty"));
    this.stopTour();
    this.tour = { points: ids, category, interval, page: 0, timer: 0 };
    this.tourBtn.textContent = t("stopTour");
    this.tourBtn.classList.add("on");
    const step = () => {
      const n = this.tiles.length, tr = this.tour;
      const pages = Math.ceil(tr.points.length / n);
      const start = (tr.page % pages) * n;
      this.tiles.forEach((_, i) => this.assign(i, tr.points[start + i] ? { id: tr.points[start + i] } : null, { keep: true }));
      tr.page++;
    };
    step();
    this.tour.timer = setInterval(step, interval * 1000);
  }

  stopTour() {
    if (!this.tour) return;
    clearInterval(this.tour.timer);
    this.tour = null;
    this.tourBtn.textContent = t("startTour");
    this.tourBtn.classList.remove("on");
  }

  // --- side panel: tree, search, map --------------------------------------

  buildSide(f) {
    const tabs = { tree: h("div.side-pane"), search: h("div.side-pane"), map: h("div.side-pane.side-map") };
    const label = { tree: "tree", search: "searchTab", map: "map" };
    const heads = Object.keys(tabs).map((k) => h("button.tab", { type: "button", dataset: { tab: k }, onclick: () => show(k) }, t(label[k])));
    const show = (k) => {
      heads.forEach((b) => b.classList.toggle("on", b.dataset.tab === k));
      for (const [name, pane] of Object.entries(tabs)) pane.hidden = name !== k;
      if (k === "map" && !this.mapStarted) this.startMap(tabs.map);
      this.mapObj?.map.invalidateSize();
    };
    this.side.append(h("div.tabs", heads), ...Object.values(tabs));
    this.buildTree(tabs.tree, f);
    this.buildSearch(tabs.search);
    show("tree");
  }

  pointItem(p) {
    const el = h("div.side-point", { draggable: "true", dataset: { id: p.id }, title: p.name },
      h("span.dot." + (p.status?.state || "unknown")), h("span.row-name", p.name),
      h("button.mini", { type: "button", title: t("addToTour"), onclick: (e) => (e.stopPropagation(), this.addToTour(p)) }, "+"));
    el.addEventListener("dragstart", (e) => setDrag(e, p));
    el.addEventListener("dblclick", () => this.assign(this.selected, p));
    return el;
  }

  buildTree(pane, f) {
    const node = (n) => {
      const kids = h("div.tree-kids");
      const label = h("div.tree-label", { dataset: { region: n.code } }, h("span.caret", "▸"), h("span.row-name", n.name), h("span.count", String(n.count)));
      let open = false, filled = false;
      label.onclick = async () => {
        open = !open;
        label.classList.toggle("open", open);
        kids.hidden = !open;
        if (!open || filled) return;
        filled = true;
        if (n.children?.length) {
          kids.append(...n.children.filter((c) => c.count > 0).map(node));
        } else {
          await this.regionPoints(kids, n.code);
        }
      };
      kids.hidden = true;
      return h("div.tree-node", label, kids);
    };
    pane.append(h("div.tree#tree", f.regions.filter((r) => r.count > 0).map(node)));
  }

  async regionPoints(el, region) {
    const pages = new PointPages({ region, sort: "name" }, { pageSize: 200 });
    const more = h("button.mini.more", { type: "button" }, t("more"));
    const next = async () => {
      more.remove();
      const before = pages.items.length;
      await pages.loadPage();
      el.append(...pages.items.slice(before).map((p) => this.pointItem(p)));
      if (!pages.done) el.append(more);
    };
    more.onclick = next;
    await next();
  }

  buildSearch(pane) {
    const input = h("input.search#wall-search", { type: "search", placeholder: t("search") });
    const scroller = h("div.scroller.side-list#wall-results");
    pane.append(input, scroller);
    let pages = null, vl = null;
    const names = {};
    regionNameMap().then((m) => Object.assign(names, m)).catch(() => {});
    const run = async () => {
      pages?.stop();
      vl?.destroy();
      clear(scroller);
      const q = input.value.trim();
      pages = new PointPages(q ? { q } : {}, { onChange: () => vl.refresh() });
      vl = new VirtualList(scroller, {
        rowHeight: 52,
        item: (i) => pages.get(i),
        render: (row, p) => {
          pointRow(row, p, names);
          row.draggable = !!p;
          if (p) row.append(h("button.mini", { type: "button", title: t("addToTour"), dataset: { tour: "1" } }, "+"));
        },
      });
      vl.setTotal(await pages.first());
    };
    scroller.addEventListener("dragstart", (e) => {
      const row = e.target.closest(".vrow");
      const p = row && pages.items[Number(row.dataset.index)];
      if (p) setDrag(e, p);
    });
    scroller.addEventListener("click", (e) => {
      const row = e.target.closest(".vrow");
      const p = row && pages.items[Number(row.dataset.index)];
      if (p && e.target.dataset.tour) this.addToTour(p);
    });
    scroller.addEventListener("dblclick", (e) => {
      const row = e.target.closest(".vrow");
      const p = row && pages.items[Number(row.dataset.index)];
      if (p) this.assign(this.selected, p);
    });
    input.addEventListener("input", debounce(run, 300));
    this.sideCleanup = () => {
      pages?.stop();
      vl?.destroy();
      this.mapObj?.destroy();
    };
    run().catch(() => {});
  }

  async startMap(pane) {
    this.mapStarted = true;
    const el = h("div.side-mapbox");
    pane.append(el);
    const { pointMap } = await import("./map.js");
    this.mapObj = await pointMap(el, {
      popup: (p) => {
        const chip = h("span.btn.dragchip", { draggable: "true" }, "⠿ " + p.name);
        chip.addEventListener("dragstart", (e) => setDrag(e, p));
        return [h("button.btn", { type: "button", onclick: () => this.assign(this.selected, p) }, t("putInTile")), chip];
      },
    });
    this.mapObj.show({});
  }
}

