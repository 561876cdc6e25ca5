// Audit log: filter by user, point, action (a prefix: "view." is every
// view), and time; page back through older records; export what the
// filter selects as CSV; walk the hash chain on the server.

import { api, qs } from "../api.js";
import { h } from "../dom.js";
import { t } from "../i18n.js";
import { table, tr, run, fmtTime, localToISO, field } from "./ui.js";

const pageSize = 100;
const commonActions = ["view.", "view.start", "view.stop", "login.", "login.ok", "login.fail", "login.locked", "point.", "grant.",
  "user.", "role.", "password.", "session.", "token.", "agent.", "ptz.", "snapshot", "backup"];

// isoToLocal turns RFC 3339 into a datetime-local value.
function isoToLocal(iso) {
  const d = new Date(iso);
  if (!iso || isNaN(d)) return "";
  const p = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
}

function duration(ms) {
  if (!ms) return "";
  return ms < 60000 ? (ms / 1000).toFixed(1) + " s" : Math.round(ms / 60000) + " min";
}

/** audit draws the audit log screen into el. */
export default async function audit(el, query) {
  const msg = h("p.notice#audit-msg", { role: "alert" });
  const users = await api("/api/v1/users").then((r) => r.items.map((u) => u.username)).catch(() => []);
  const user = h("input#af-user", { list: "af-users", autocomplete: "off", value: query.get("user") || "" });
  const point = h("input#af-point", { autocomplete: "off", value: query.get("point") || "" });
  const action = h("input#af-action", { list: "af-actions", autocomplete: "off", value: query.get("action") || "", placeholder: "view." });
  const from = h("input#af-from", { type: "datetime-local", value: isoToLocal(query.get("from")) });
  const to = h("input#af-to", { type: "datetime-local", value: isoToLocal(query.get("to")) });
  const csv = h("a.btn#audit-csv", { download: "" }, t("adm_exportCSV"));
  const listBox = h("div#audit-box");
  const more = h("button.btn#audit-more", { type: "button", hidden: true }, t("more"));
  const verifyBtn = h("button.btn#audit-verify", { type: "button" }, t("adm_verifyChain"));
  const verifyOut = h("div#audit-verify-result");

  const filter = () => ({ user: user.value.trim(), point: point.value.trim(), action: action.value.trim(),
    from: localToISO(from.value), to: localToISO(to.value) });
  let rows = [];
  let next = 0;

  async function load(append) {
    const f = filter();
    // The filter lives in the address, so a reload or a shared link shows the same records.
    history.replaceState(null, "", "#/admin/audit" + qs(f));
    csv.href = "/api/v1/audit" + qs({ ...f, format: "csv" });
    const r = await api("/api/v1/audit" + qs({ ...f, limit: pageSize, before: append ? next : "" }));
    rows = append ? rows.concat(r.items) : r.items;
    next = r.next_before;
    more.hidden = !next;
    listBox.replaceChildren(rows.length ? table("audit",
      [t("adm_time"), t("username"), t("adm_action"), t("adm_point"), "IP", t("adm_duration"), t("adm_detail")],
      rows.map((r) => tr({ dataset: { seq: r.seq, action: r.action, user: r.user || "", point: r.point || "" } },
        fmtTime(r.time), r.user || "—", h("code", r.action),
        r.point ? h("a.mono", { href: "#/admin/points?id=" + encodeURIComponent(r.point) }, r.point) : "",
        r.ip || "", duration(r.duration_ms),
        h("span.small", Object.entries(r.detail || {}).map(([k, v]) => `${k}=${v}`).join(" ")))))
      : h("p.muted#audit-empty", t("adm_noRecords")));
  }

  const apply = h("button.primary", { type: "submit" }, t("adm_filter"));
  const form = h("form.card.filters#audit-filter", {
    onsubmit: (e) => {
      e.preventDefault();
      run(apply, msg, () => load(false));
    },
  }, field(t("username"), user), field(t("adm_point"), point), field(t("adm_action"), action), field(t("adm_from"), from), field(t("adm_to"), to),
  h("datalist#af-users", users.map((u) => h("option", { value: u }))),
  h("datalist#af-actions", commonActions.map((a) => h("option", { value: a }))),
  h("div.form-actions", apply, csv));
  more.onclick = () => run(more, msg, () => load(true));

  verifyBtn.onclick = () => run(verifyBtn, msg, async () => {
    const v = await api("/api/v1/audit/verify", { timeout: 120000 });
    verifyOut.replaceChildren(h("p.notice." + (v.ok ? "ok" : "error"), { dataset: { ok: String(v.ok) } },
      v.ok ? `${t("adm_chainOK")} ${v.records}` : `${t("adm_chainBroken")} #${v.broken_at}: ${v.reason}`,
      v.head_hash ? h("span.mono", ` · ${t("adm_head")} #${v.head_seq} ${v.head_hash.slice(0, 16)}…`) : null));
  });

  el.append(msg, form, h("div.card.verify", verifyBtn, verifyOut), listBox, more);
  await load(false);
}
