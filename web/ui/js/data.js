// Data the views share: categories, facets, paged point lists, favourites
// and recently viewed points (kept in localStorage, per user).

import { api, qs, ApiError } from "./api.js";
import { setCategories } from "./i18n.js";

let me = null;

/** loadMe fetches the caller; throws ApiError 401 when logged out. */
export async function loadMe() {
  me = await api("/api/v1/me");
  return me;
}

/** currentUser is the last loaded /me, or null. */
export function currentUser() {
  return me;
}

/** forgetMe drops the cached user (logout, expiry). */
export function forgetMe() {
  me = null;
}

/** isAdmin says whether the caller holds any system action (admin, or a
 * duty role: sysadmin, secadmin, auditor), so the admin pages are theirs. */
export function isAdmin() {
  return (me?.system_actions?.length || 0) > 0;
}

/** mayDo says whether the caller holds the system action a now. */
export function mayDo(a) {
  return !!me?.system_actions?.includes(a);
}

let categoriesLoaded = false;

/** loadCategories fetches category names once. */
export async function loadCategories() {
  if (categoriesLoaded) return;
  const c = await api("/api/v1/categories");
  setCategories(c.items);
  categoriesLoaded = true;
}

let uiConfigP = null;

/**
 * uiConfig fetches GET /api/v1/ui-config once (map tiles, ICE servers); a
 * failed fetch is forgotten so the next call tries again.
 */
export function uiConfig() {
  if (!uiConfigP) {
    uiConfigP = api("/api/v1/ui-config").catch((e) => {
      uiConfigP = null;
      throw e;
    });
  }
  return uiConfigP;
}

/** facets fetches counts within the caller's grants for a filter. */
export function facets(filter = {}) {
  return api("/api/v1/points/facets" + qs(filter));
}

let regionNames = null;

/**
 * regions returns {code: name}. It prefers GET /api/v1/regions and falls
 * back to the region tree of the facets (servers without that endpoint).
 */
export async function regionNameMap() {
  if (regionNames) return regionNames;
  const names = {};
  try {
    const r = await api("/api/v1/regions");
    for (const it of r.items || r || []) names[it.code] = it.name;
  } catch (e) {
    if (!(e instanceof ApiError) || e.status === 401) throw e;
    const f = await facets();
    const walk = (list) => list.forEach((n) => ((names[n.code] = n.name), walk(n.children || [])));
    walk(f.regions || []);
  }
  regionNames = names;
  return names;
}

/**
 * PointPages reads a filtered point list page by page with the server's
 * cursor. Items arrive in order, so reaching row i loads every page before
 * it; pages are large enough that that stays a handful of calls.
 */
export class PointPages {
  constructor(filter, { pageSize = 500, onChange = () => {} } = {}) {
    this.filter = filter;
    this.pageSize = pageSize;
    this.onChange = onChange;
    this.items = [];
    this.total = null;
    this.cursor = "";
    this.done = false;
    this.loading = null;
    this.want = 0;
    this.stopped = false;
  }

  /** get returns item i, or undefined while it loads (then onChange fires). */
  get(i) {
    if (i < this.items.length) return this.items[i];
    this.want = Math.max(this.want, i + 1);
    this.pump();
    return undefined;
  }

  /** first loads the first page; resolves with the total. */
  async first() {
    await this.loadPage();
    return this.total;
  }

  pump() {
    if (this.loading || this.done || this.stopped || this.items.length >= this.want) return;
    this.loadPage()
      .then(() => this.pump())
      .catch(() => {}); // the view shows placeholders; 401 already redirects
  }

  loadPage() {
    if (this.loading) return this.loading;
    this.loading = (async () => {
      try {
        const page = await api("/api/v1/points" + qs({ ...this.filter, limit: this.pageSize, cursor: this.cursor }));
        if (this.stopped) return;
        this.items.push(...page.items);
        this.total = page.total;
        this.cursor = page.next_cursor;
        this.done = !page.next_cursor;
        this.onChange();
      } finally {
        this.loading = null;
      }
    })();
    return this.loading;
  }

  /** stop abandons loading (the view went away). */
  stop() {
    this.stopped = true;
  }
}

/**
 * pointLocations fetches where every point of a filter within the caller's
 * grants is, in one call: {total, unlocated, id[], name[], lat[], lon[],
 * category[], status[]} (GET /api/v1/points/geo; the browser revalidates it
 * by ETag, so an unchanged catalog costs a 304).
 */
export function pointLocations(filter = {}) {
  return api("/api/v1/points/geo" + qs(filter));
}

/** allPoints loads every page of a filter (full points; the map uses pointLocations). */
export async function allPoints(filter = {}, onProgress = () => {}) {
  const pages = new PointPages(filter, { pageSize: 1000 });
  await pages.first();
  onProgress(pages.items.length, pages.total);
  while (!pages.done) {
    await pages.loadPage();
    onProgress(pages.items.length, pages.total);
  }
  return pages.items;
}

// --- favourites (server) and recently viewed (this browser) ---------------

let favIds = null;

/** favourites returns {ids, items} from the server and caches the ids. */
export async function favourites() {
  const f = await api("/api/v1/me/favourites");
  favIds = f.ids;
  return f;
}

/** isFavourite answers from the cache (load favourites first). */
export function isFavourite(id) {
  return !!favIds?.includes(id);
}

/** toggleFavourite adds or removes id and returns the new state. */
export async function toggleFavourite(id) {
  if (!favIds) await favourites();
  const ids = favIds.includes(id) ? favIds.filter((x) => x !== id) : [id, ...favIds];
  const f = await api("/api/v1/me/favourites", { method: "PUT", body: { ids } });
  favIds = f.ids;
  return favIds.includes(id);
}

const recentMax = 20;

function recentKey() {
  return "ty.recent." + (me?.username || "");
}

/** recent lists recently viewed points, newest first. */
export function recent() {
  try {
    return JSON.parse(localStorage.getItem(recentKey()) || "[]");
  } catch {
    return [];
  }
}

/** addRecent remembers a viewed point (id, name, category, status). */
export function addRecent(p) {
  const list = recent().filter((x) => x.id !== p.id);
  list.unshift({ id: p.id, name: p.name, category: p.category, status: p.status?.state || "unknown" });
  localStorage.setItem(recentKey(), JSON.stringify(list.slice(0, recentMax)));
}
