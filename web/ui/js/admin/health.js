// Health: the share of points online, by category and by street, from two
// facet counts (all points, and status=online: facets count each category
// and region with every filter but their own, so the two line up); and the
// offline points, longest offline first, with since when.

import { api } from "../api.js";
import { h } from "../dom.js";
import { t, categoryName } from "../i18n.js";
import { facets, allPoints } from "../data.js";
import { table, tr, fmtTime, fmtSpan, pct } from "./ui.js";

const refreshMs = 30000;
const offlineShown = 500;

function bar(on, total) {
  const w = total ? (on / total) * 100 : 0;
  return h("div.bar", { title: pct(on, total) }, h("div.bar-fill" + (w < 80 ? ".low" : ""), { style: { width: w.toFixed(1) + "%" } }));
}

// streets lists the second level of the region tree (district → street);
// a tree without streets falls back to its roots.
function streets(regions) {
  const out = [];
  for (const d of regions) for (const s of d.children || []) out.push({ ...s, district: d.name });
  return out.length ? out : regions;
}

/** health draws the online-rate screen into el; returns its cleanup. */
export default async function health(el) {
  const summary = h("div.card.summary-card#h-summary");
  const catBox = h("div#h-cat-box");
  const streetBox = h("div#h-street-box");
  const offBox = h("div#h-off-box");
  const stamp = h("p.muted.small#h-stamp");
  el.append(summary, h("div.health-cols",
    h("section", h("h2", t("adm_byCategory")), catBox),
    h("section", h("h2", t("adm_byStreet")), streetBox)),
  h("h2", t("adm_offlinePoints")), offBox, stamp);

  async function load() {
    const [all, on, names] = await Promise.all([facets(), facets({ status: "online" }),
      api("/api/v1/regions").then((r) => Object.fromEntries((r.items || []).map((x) => [x.code, x.name]))).catch(() => ({}))]);
    const total = all.total, online = all.status.online, offline = all.status.offline, unknown = all.status.unknown;
    summary.replaceChildren(
      h("div.big-rate", h("span#h-rate", pct(online, total)), h("span.muted", t("adm_onlineRate"))),
      h("div.counts",
        h("span", t("adm_total"), " ", h("b#h-total", String(total))),
        h("span", h("span.dot.online"), " ", t("online"), " ", h("b#h-online", String(online))),
        h("span", h("span.dot.offline"), " ", t("offline"), " ", h("b#h-offline", String(offline))),
        h("span", h("span.dot.agent_offline"), " ", t("agent_offline"), " ", h("b#h-agent-offline", String(all.status.agent_offline || 0))),
        h("span", h("span.dot.stale"), " ", t("stale"), " ", h("b#h-stale", String(all.status.stale || 0))),
        h("span", h("span.dot"), " ", t("unknown"), " ", h("b#h-unknown", String(unknown)))));

    const onCat = Object.fromEntries(on.categories.map((c) => [c.code, c.count]));
    catBox.replaceChildren(table("h-categories", [t("category"), t("online"), t("adm_total"), t("adm_onlineRate"), ""],
      all.categories.filter((c) => c.count > 0).map((c) => tr({ dataset: { category: c.code, online: onCat[c.code] || 0, total: c.count } },
        categoryName(c.code), String(onCat[c.code] || 0), String(c.count), pct(onCat[c.code] || 0, c.count), bar(onCat[c.code] || 0, c.count)))));

    const onRegion = {};
    const walk = (list) => list.forEach((n) => ((onRegion[n.code] = n.count), walk(n.children || [])));
    walk(on.regions);
    streetBox.replaceChildren(table("h-streets", [t("adm_street"), t("online"), t("adm_total"), t("adm_onlineRate"), ""],
      streets(all.regions).filter((s) => s.count > 0).map((s) => tr({ dataset: { region: s.code, online: onRegion[s.code] || 0, total: s.count } },
        [s.name, s.district ? h("span.muted.small", " " + s.district) : null], String(onRegion[s.code] || 0), String(s.count),
        pct(onRegion[s.code] || 0, s.count), bar(onRegion[s.code] || 0, s.count)))));

    // The catalog sorts by id, name or last change; "offline since" is a
    // status time, so the offline points are sorted here. They are few next
    // to the whole catalog, and the list pages through them.
    const off = await allPoints({ status: "offline" });
    const since = (p) => (p.status?.since ? new Date(p.status.since).getTime() : Infinity);
    off.sort((a, b) => since(a) - since(b) || a.id.localeCompare(b.id));
    const now = Date.now();
    offBox.replaceChildren(off.length ? table("h-offline", ["ID", t("adm_name"), t("category"), t("region"), t("adm_offlineSince"), t("adm_offlineFor")],
      off.slice(0, offlineShown).map((p) => tr({ dataset: { id: p.id } },
        h("a.mono", { href: "#/admin/points?id=" + encodeURIComponent(p.id) }, p.id), p.name, categoryName(p.category),
        names[p.region] || p.region || "—", fmtTime(p.status?.since), p.status?.since ? fmtSpan(p.status.since, now) : "—")))
      : h("p.muted#h-none-offline", t("adm_allOnline")));
    if (off.length > offlineShown) offBox.append(h("p.muted", `${t("adm_firstShown")} ${offlineShown} / ${off.length}`));
    stamp.textContent = t("adm_updatedAt") + " " + fmtTime(new Date().toISOString());
  }

  await load();
  const timer = setInterval(() => !document.hidden && load().catch(() => {}), refreshMs);
  return () => clearInterval(timer);
}
