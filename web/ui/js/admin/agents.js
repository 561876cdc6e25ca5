// Edge agents: create one (its one-time enrollment code and the exact
// command for the technician), see each with its link state, version,
// cameras, relays and last contact, set its region (technicians see its
// unbound cameras only when their provision grant covers it), revoke,
// delete a revoked one. The list refreshes itself while the page is open.

import { api } from "../api.js";
import { h } from "../dom.js";
import { t } from "../i18n.js";
import { table, tr, confirmBtn, say, run, fmtTime, fmtAgo, field } from "./ui.js";

const enc = encodeURIComponent;
const refreshMs = 5000;

/** agents draws the edge-agent screen into el; returns its cleanup. */
export default async function agents(el) {
  const msg = h("p.notice#agents-msg", { role: "alert" });
  const created = h("div#agent-created");
  const listBox = h("div#agents-box");
  const name = h("input#na-name", { required: true, autocomplete: "off", placeholder: t("adm_agentNameHint") });
  const regionList = (await api("/api/v1/regions")).items || [];
  const regionOptions = (selected) => [h("option", { value: "", selected: !selected }, t("adm_noRegion")),
    ...regionList.map((r) => h("option", { value: r.code, selected: r.code === selected }, `${r.name} ${r.code}`))];
  const region = h("select#na-region", regionOptions(""));
  const btn = h("button.primary", { type: "submit" }, t("adm_create"));
  const form = h("form.card.form#agent-form", {
    onsubmit: (e) => {
      e.preventDefault();
      run(btn, msg, async () => {
        const r = await api("/api/v1/agents", { method: "POST", body: { name: name.value.trim(), region: region.value } });
        form.reset();
        say(msg, "");
        showCode(r);
        await load();
      });
    },
  }, h("h2", t("adm_newAgent")), h("div.form-grid", field(t("adm_agentName"), name), field(t("adm_agentRegion"), region)), h("div.form-actions", btn));

  // The code is shown once: the server keeps only its hash.
  function showCode(r) {
    const cmd = `edge-agent enroll --server ${location.origin} --code ${r.enrollment_code}`;
    const copy = h("button.mini#copy-cmd", { type: "button" }, t("adm_copy"));
    copy.onclick = () => navigator.clipboard?.writeText(cmd).then(() => (copy.textContent = t("adm_copied")), () => {});
    created.replaceChildren(h("div.card.code-card",
      h("h2", t("adm_agentCreated"), " ", h("b", r.agent.name)),
      h("p", t("adm_enrollCode"), " ", h("code.big#enroll-code", r.enrollment_code)),
      h("p.muted", t("adm_codeOnce"), " ", t("adm_codeExpires"), " ", h("span#enroll-expires", fmtTime(r.expires))),
      h("p", t("adm_enrollRun")),
      h("div.cmd", h("pre#enroll-cmd", cmd), copy),
      h("button.mini", { type: "button", onclick: () => created.replaceChildren() }, t("adm_hide"))));
  }

  function state(a) {
    if (a.revoked) return h("span.state.bad", t("adm_revoked"));
    if (!a.enrolled) return h("span.state.busy", t("adm_notEnrolled"));
    return a.online ? h("span.state.ok", h("span.dot.online"), " ", t("online")) : h("span.state.bad", h("span.dot.offline"), " ", t("offline"));
  }

  // Open <details> stay open across refreshes.
  let open = new Set();
  const details = (key, ...kids) => h("details", { dataset: { key }, open: open.has(key) }, ...kids);

  function cameras(a) {
    const list = a.cameras || [];
    if (!list.length) return "0";
    return details(a.id + "/cameras", h("summary", String(list.length)), h("ul.small", list.map((c) =>
      h("li", c.id, " ", h("span.muted", [c.manufacturer, c.model, c.ip].filter(Boolean).join(" · ")), c.error ? h("span.state.bad", " " + c.error) : null))));
  }

  function relays(a) {
    const list = a.relays || [];
    if (!list.length) return "0";
    return details(a.id + "/relays", h("summary", String(list.length)), h("ul.small", list.map((r) =>
      h("li", `${r.point || ""} ${r.profile || ""} `, h("span.muted", r.state), r.error ? h("span.state.bad", " " + r.error) : null))));
  }

  // The region: changed in place, saved at once.
  function regionCell(a) {
    return h("select.agent-region", {
      dataset: { agent: a.id },
      onchange: (e) => run(null, msg, async () => {
        await api(`/api/v1/agents/${enc(a.id)}`, { method: "PATCH", body: { region: e.target.value } });
        say(msg, t("adm_agentRegionSaved") + " " + a.name);
      }),
    }, regionOptions(a.region || ""));
  }

  async function load() {
    const list = (await api("/api/v1/agents")).items || [];
    open = new Set([...listBox.querySelectorAll("details[open]")].map((d) => d.dataset.key));
    listBox.replaceChildren(list.length ? table("agents",
      [t("adm_agentName"), "ID", t("status"), t("adm_version"), t("adm_host"), t("adm_cameras"), t("adm_relays"), t("adm_lastSeen"), t("adm_agentRegion"), ""],
      list.map((a) => tr({ dataset: { agent: a.id, online: String(!!a.online), revoked: String(!!a.revoked) } },
        h("b", a.name), h("span.mono", a.id), state(a), a.version || "—", a.hostname || "—", cameras(a), relays(a),
        a.last_seen ? [fmtAgo(a.last_seen), h("br"), h("span.muted.small", fmtTime(a.last_seen))] : "—",
        a.revoked ? (a.region || "—") : regionCell(a),
        h("div.acts",
          a.online ? h("button.mini.act-rediscover", {
            type: "button",
            onclick: (e) => run(e.currentTarget, msg, async () => {
              await api(`/api/v1/agents/${enc(a.id)}/rediscover`, { method: "POST" });
              say(msg, t("adm_rediscoverSent") + " " + a.name);
            }),
          }, t("adm_rediscover")) : null,
          a.revoked ? null : confirmBtn("act-revoke", t("adm_revoke"), () => run(null, msg, async () => {
            await api(`/api/v1/agents/${enc(a.id)}/revoke`, { method: "POST" });
            say(msg, t("adm_agentRevoked") + " " + a.name);
            await load();
          })),
          a.revoked || !a.enrolled ? confirmBtn("act-delete", t("adm_delete"), () => run(null, msg, async () => {
            await api(`/api/v1/agents/${enc(a.id)}`, { method: "DELETE" });
            say(msg, t("adm_agentDeleted") + " " + a.name);
            await load();
          })) : null))))
      : h("p.muted#agents-empty", t("adm_noAgents")));
  }

  el.append(msg, form, created, h("h2", t("adm_agents")), listBox);
  await load();
  // Refresh in place, but never while a two-step button waits for its
  // second click (redrawing would disarm it).
  const timer = setInterval(() => {
    if (document.hidden || listBox.querySelector(".armed") || (document.activeElement?.tagName === "SELECT" && listBox.contains(document.activeElement))) return;
    load().catch(() => {});
  }, refreshMs);
  return () => clearInterval(timer);
}
