// Points: find and edit a point (name, kind, category, region, level,
// tags, address, location); bulk import a CSV or GeoJSON file, always
// checked first with ?dry_run=1 so every bad row shows with its line and
// field before anything is written; export links.

import { api, qs, ApiError } from "../api.js";
import { h, debounce } from "../dom.js";
import { t, categoryName, categoryCodes } from "../i18n.js";
import { table, tr, say, run, fmtTime, field } from "./ui.js";

const enc = encodeURIComponent;
const pageSize = 50;
// Import bodies reach 64 MiB; a slow link needs more than the usual 20 s.
const importTimeout = 10 * 60 * 1000;
const csvHeader = "id,name,kind,category,region,lat,lon,level,address,tags,ptz,main_url,sub_url";

function walk(nodes, fn, depth = 0) {
  for (const n of nodes || []) {
    fn(n, depth);
    walk(n.children, fn, depth + 1);
  }
}

/** points draws the point editor, import and export into el. */
export default async function points(el, query) {
  const msg = h("p.notice#points-msg", { role: "alert" });
  const tree = (await api("/api/v1/regions?tree=1")).items || [];
  const regionName = {};
  const regionOptions = [h("option", { value: "" }, t("unassigned"))];
  walk(tree, (n, depth) => {
    regionName[n.code] = n.name;
    regionOptions.push(h("option", { value: n.code }, "\u00a0\u00a0".repeat(depth) + n.name));
  });
  const catOptions = (withAll) => [withAll ? h("option", { value: "" }, t("all")) : null,
    ...categoryCodes().map((c) => h("option", { value: c }, categoryName(c)))].filter(Boolean);

  // --- search and list ---------------------------------------------------------
  const q = h("input#pf-q", { type: "search", placeholder: t("search"), value: query.get("q") || "" });
  const cat = h("select#pf-category", catOptions(true));
  const status = h("select#pf-status", ["", "online", "offline", "stale", "agent_offline", "unknown"].map((s) => h("option", { value: s }, s ? t(s) : t("all"))));
  const listBox = h("div#points-box");
  const pager = h("div.pager");
  let cursors = [""]; // cursor of each page shown so far
  let page = 0;
  async function loadList() {
    const filter = { q: q.value.trim(), category: cat.value, status: status.value, limit: pageSize, cursor: cursors[page], sort: "name" };
    const r = await api("/api/v1/points" + qs(filter));
    cursors[page + 1] = r.next_cursor;
    listBox.replaceChildren(r.items.length ? table("points-table",
      ["ID", t("adm_name"), t("category"), t("region"), t("level"), t("status"), t("adm_updated")],
      r.items.map((p) => {
        const row = tr({ dataset: { id: p.id }, class: "clickable" },
          h("span.mono", p.id), h("b", p.name), categoryName(p.category), regionName[p.region] || p.region || "—",
          String(p.level), [h("span.dot." + (p.status?.state || "unknown")), " ", t(p.status?.state || "unknown")], fmtTime(p.updated_at));
        row.addEventListener("click", () => edit(p.id));
        return row;
      })) : h("p.muted", t("empty")));
    pager.replaceChildren(
      h("button.mini#pg-prev", { type: "button", disabled: page === 0, onclick: () => (page--, loadList()) }, "‹"),
      h("span.muted", ` ${page * pageSize + (r.items.length ? 1 : 0)}–${page * pageSize + r.items.length} / ${r.total} `),
      h("button.mini#pg-next", { type: "button", disabled: !r.next_cursor, onclick: () => (page++, loadList()) }, "›"));
  }
  const reload = () => {
    cursors = [""];
    page = 0;
    loadList().catch((e) => say(msg, e.message, "error"));
  };
  q.addEventListener("input", debounce(reload, 300));
  cat.addEventListener("change", reload);
  status.addEventListener("change", reload);

  // --- edit -----------------------------------------------------------------------
  const editBox = h("div#point-edit");
  async function edit(id) {
    const p = await api("/api/v1/points/" + enc(id)).catch((e) => (say(msg, e.message, "error"), null));
    if (!p) return;
    const name = h("input#pe-name", { required: true, value: p.name });
    const kind = h("select#pe-kind", ["hd", "panoramic"].map((k) => h("option", { value: k }, t(k))));
    kind.value = p.kind;
    const category = h("select#pe-category", catOptions(false));
    category.value = p.category;
    const region = h("select#pe-region", regionOptions.map((o) => o.cloneNode(true)));
    region.value = p.region || "";
    const level = h("select#pe-level", [1, 2, 3, 4].map((n) => h("option", { value: n }, String(n))));
    level.value = String(p.level);
    const tags = h("input#pe-tags", { value: (p.tags || []).join(", "), placeholder: t("adm_tagsHint") });
    const address = h("input#pe-address", { value: p.address || "" });
    const lat = h("input#pe-lat", { inputMode: "decimal", value: p.lat ?? "", placeholder: "22.53" });
    const lon = h("input#pe-lon", { inputMode: "decimal", value: p.lon ?? "", placeholder: "113.93" });
    const save = h("button.primary", { type: "submit" }, t("adm_save"));
    const form = h("form.card.form#point-form", {
      onsubmit: (e) => {
        e.preventDefault();
        const body = {
          name: name.value.trim(), kind: kind.value, category: category.value, region: region.value,
          level: Number(level.value), address: address.value.trim(),
          tags: tags.value.split(/[,，;；\s]+/).map((x) => x.trim()).filter(Boolean),
        };
        const la = lat.value.trim(), lo = lon.value.trim();
        if (la === "" && lo === "") {
          if (p.lat != null) body.lat = body.lon = null;
        } else if (la === "" || lo === "" || isNaN(Number(la)) || isNaN(Number(lo))) {
          return say(msg, t("adm_badLocation"), "error");
        } else {
          body.lat = Number(la);
          body.lon = Number(lo);
        }
        run(save, msg, async () => {
          const np = await api("/api/v1/points/" + enc(p.id), { method: "PATCH", body });
          say(msg, t("adm_pointSaved") + " " + np.name);
          await loadList();
          await edit(p.id);
        });
      },
    },
    h("h2", t("adm_editPoint"), " ", h("span.mono", p.id)),
    h("div.form-grid",
      field(t("adm_name"), name), field(t("adm_kind"), kind), field(t("category"), category), field(t("region"), region),
      field(t("level"), level), field(t("adm_tags"), tags), field(t("address"), address),
      field(t("adm_lat"), lat), field(t("adm_lon"), lon)),
    h("p.muted.small", t("adm_wgs84")),
    h("div.form-actions", save,
      h("a.btn", { href: "#/admin/grants?point=" + enc(p.id) }, t("adm_whoCanSee")),
      h("a.btn", { href: "#/p/" + enc(p.id) }, t("play")),
      h("button.btn", { type: "button", onclick: () => editBox.replaceChildren() }, t("adm_close"))));
    editBox.replaceChildren(form);
    form.scrollIntoView({ block: "nearest" });
  }

  // --- import ---------------------------------------------------------------------
  const file = h("input#imp-file", { type: "file", accept: ".csv,.geojson,.json,text/csv,application/geo+json" });
  const check = h("button.btn#imp-check", { type: "button", disabled: true }, t("adm_importCheck"));
  const doImport = h("button.primary#imp-run", { type: "button", disabled: true }, t("adm_importRun"));
  const result = h("div#imp-result");
  let checked = null; // the File that passed the dry run
  const contentType = (f) => (/\.csv$/i.test(f.name) || f.type === "text/csv" ? "text/csv" : "application/geo+json");
  file.addEventListener("change", () => {
    checked = null;
    doImport.disabled = true;
    check.disabled = !file.files.length;
    result.replaceChildren();
  });
  async function send(dry) {
    const f = file.files[0];
    if (!f) return;
    result.replaceChildren(h("p.muted", t("loading")));
    try {
      const r = await api("/api/v1/points/import" + (dry ? "?dry_run=1" : ""), {
        method: "POST", body: f, contentType: contentType(f), timeout: importTimeout,
      });
      if (dry) {
        checked = f;
        doImport.disabled = false;
        result.replaceChildren(h("p.notice.ok#imp-ok", { dataset: { valid: r.valid } }, `${t("adm_importValid")} ${r.valid}`));
      } else {
        checked = null;
        doImport.disabled = true;
        result.replaceChildren(h("p.notice.ok#imp-done", { dataset: { imported: r.imported } }, `${t("adm_imported")} ${r.imported}`));
        reload();
      }
    } catch (e) {
      checked = null;
      doImport.disabled = true;
      if (e instanceof ApiError && e.status === 401) return;
      const rows = e instanceof ApiError ? e.body?.rows : null;
      if (rows) {
        const total = e.body.rows_total ?? rows.length;
        result.replaceChildren(
          h("p.notice.error#imp-rejected", { dataset: { total } }, `${t("adm_importRejected")} ${total}${rows.length < total ? ` (${t("adm_firstShown")} ${rows.length})` : ""}`),
          table("imp-rows", [t("adm_line"), t("adm_field"), t("adm_problem")],
            rows.map((r) => tr({ dataset: { line: r.line, field: r.field } }, String(r.line), h("code", r.field), r.message))));
      } else {
        result.replaceChildren(h("p.notice.error#imp-error", (e.field ? e.field + ": " : "") + (e.message || String(e))));
      }
    }
  }
  check.onclick = () => run(check, msg, () => send(true));
  doImport.onclick = () => checked === file.files[0] && run(doImport, msg, () => send(false));

  el.append(msg,
    h("div.card.filters", q, cat, status,
      h("span.spacer"),
      h("a.btn#exp-csv", { href: "/api/v1/points/export?format=csv", download: "" }, t("adm_exportCSV")),
      h("a.btn#exp-geojson", { href: "/api/v1/points/export?format=geojson", download: "" }, t("adm_exportGeoJSON"))),
    listBox, pager, editBox,
    h("section.card.form#import",
      h("h2", t("adm_import")),
      h("p.muted.small", t("adm_importHelp")),
      h("pre.small", csvHeader),
      h("div.form-actions", file, check, doImport),
      result));
  await loadList();
  if (query.get("id")) await edit(query.get("id"));
}
