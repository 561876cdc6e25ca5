// GB/T 28181 devices (国标设备): the NVRs, cameras and lower platforms that
// register to us, with their address, keepalive and channel counts; set a
// device's own password (write-only), name and stream transport, ask it for
// its catalog again or for its info and status, forget it. Holders of points.manage_all also see the
// channel → category mapping rules and the channels that need an admin
// (no usable civil code, unclassified, conflicting ID, gone).

import { api } from "../api.js";
import { h } from "../dom.js";
import { t, categoryName, categoryCodes } from "../i18n.js";
import { loadCategories, mayDo } from "../data.js";
import { table, tr, confirmBtn, say, run, fmtTime, fmtAgo, field } from "./ui.js";

const enc = encodeURIComponent;
const refreshMs = 5000;

/** gb draws the GB/T 28181 device screen into el; returns its cleanup. */
export default async function gb(el) {
  await loadCategories();
  const msg = h("p.notice#gb-msg", { role: "alert" });
  const listBox = h("div#gb-devices-box");
  const editBox = h("div#gb-edit");
  const rulesBox = h("div#gb-rules-box");
  const flaggedBox = h("div#gb-flagged-box");
  const manageRules = mayDo("points.manage_all");

  // A device may be given its own password before it first registers.
  const nid = h("input#gb-new-id", { required: true, pattern: "[0-9]{20}", maxlength: 20, autocomplete: "off", placeholder: "34020000001180000001" });
  const nname = h("input#gb-new-name", { autocomplete: "off" });
  const npass = h("input#gb-new-pass", { type: "password", autocomplete: "new-password" });
  const nbtn = h("button.primary", { type: "submit" }, t("adm_create"));
  const newForm = h("form.card.form#gb-new-form", {
    onsubmit: (e) => {
      e.preventDefault();
      run(nbtn, msg, async () => {
        const body = { id: nid.value.trim() };
        if (nname.value.trim()) body.name = nname.value.trim();
        if (npass.value) body.password = npass.value;
        await api("/api/v1/gb/devices", { method: "POST", body });
        newForm.reset();
        say(msg, t("gb_deviceCreated") + " " + body.id);
        await load();
      });
    },
  }, h("h2", t("gb_newDevice")), h("p.muted", t("gb_newDeviceHint")),
  h("div.form-grid", field(t("gb_deviceId"), nid), field(t("adm_agentName"), nname), field(t("gb_ownPassword"), npass)),
  h("div.form-actions", nbtn));

  function state(d) {
    return d.online ? h("span.state.ok", h("span.dot.online"), " ", t("online")) : h("span.state.bad", h("span.dot.offline"), " ", t("offline"));
  }

  // The edit card: name, own password (never shown, only replaced) and stream transport.
  function edit(d) {
    const name = h("input#gb-edit-name", { value: d.name || "", autocomplete: "off" });
    const pass = h("input#gb-edit-pass", { type: "password", autocomplete: "new-password", placeholder: t("gb_passwordKeep") });
    const clear = h("input#gb-edit-clear", { type: "checkbox" });
    const transport = h("select#gb-edit-transport", ["udp", "tcp"].map((v) => h("option", { value: v, selected: d.stream_transport === v }, v.toUpperCase())));
    const btn = h("button.primary", { type: "submit" }, t("adm_save"));
    editBox.replaceChildren(h("form.card.form#gb-edit-form", {
      dataset: { device: d.id },
      onsubmit: (e) => {
        e.preventDefault();
        run(btn, msg, async () => {
          const body = { name: name.value.trim(), stream_transport: transport.value };
          if (clear.checked) body.password = "";
          else if (pass.value) body.password = pass.value;
          await api(`/api/v1/gb/devices/${enc(d.id)}`, { method: "PATCH", body });
          editBox.replaceChildren();
          say(msg, t("gb_deviceSaved") + " " + d.id);
          await load();
        });
      },
    }, h("h2", t("gb_editDevice"), " ", h("span.mono", d.id)),
    h("div.form-grid", field(t("adm_agentName"), name), field(t("gb_ownPassword"), pass),
      field(t("gb_useDefault"), clear), field(t("gb_streamTransport"), transport)),
    h("div.form-actions", btn, h("button.mini", { type: "button", onclick: () => editBox.replaceChildren() }, t("adm_close")))));
  }

  async function load() {
    const list = (await api("/api/v1/gb/devices")).items || [];
    listBox.replaceChildren(list.length ? table("gb-devices",
      [t("gb_deviceId"), t("adm_agentName"), t("gb_vendor"), t("gb_transport"), t("gb_address"), t("gb_lastKeepalive"), t("status"), t("gb_channels"), t("gb_flagged"), ""],
      list.map((d) => tr({ dataset: { device: d.id, online: String(!!d.online) } },
        h("span.mono", d.id), h("b", d.name || "—"), [d.manufacturer, d.model].filter(Boolean).join(" ") || "—",
        d.transport || "—", h("span.mono", d.address || "—"),
        d.last_keepalive && !d.last_keepalive.startsWith("0001") ? [fmtAgo(d.last_keepalive), h("br"), h("span.muted.small", fmtTime(d.last_keepalive))] : "—",
        state(d), String(d.channels || 0), d.flagged ? h("span.state.busy", String(d.flagged)) : "0",
        h("div.acts",
          h("button.mini.act-edit", { type: "button", onclick: () => edit(d) }, t("gb_edit")),
          d.online ? h("button.mini.act-catalog", {
            type: "button",
            onclick: (e) => run(e.currentTarget, msg, async () => {
              const r = await api(`/api/v1/gb/devices/${enc(d.id)}/catalog`, { method: "POST" });
              say(msg, `${t("gb_catalogDone")} ${d.id}: ${r.channels} / +${r.created} / ${t("gb_gone")} ${r.gone}`);
              await load();
            }),
          }, t("gb_queryCatalog")) : null,
          // Asked of the device itself, now (DeviceInfo and DeviceStatus over SIP).
          d.online ? h("button.mini.act-status", {
            type: "button",
            onclick: (e) => run(e.currentTarget, msg, async () => {
              const [info, st] = await Promise.all([api(`/api/v1/gb/devices/${enc(d.id)}/info`), api(`/api/v1/gb/devices/${enc(d.id)}/status`)]);
              say(msg, `${d.id}: ${[info.manufacturer, info.model, info.firmware].filter(Boolean).join(" ")} · ${t("gb_channels")} ${info.channels}` +
                ` · ${st.online || "?"} / ${st.status || "?"}${st.reason ? " (" + st.reason + ")" : ""}${st.device_time ? " · " + st.device_time : ""}`);
            }),
          }, t("gb_queryStatus")) : null,
          confirmBtn("act-delete", t("adm_delete"), () => run(null, msg, async () => {
            await api(`/api/v1/gb/devices/${enc(d.id)}`, { method: "DELETE" });
            say(msg, t("gb_deviceDeleted") + " " + d.id);
            await load();
          }))))))
      : h("p.muted#gb-empty", t("gb_noDevices")));
    if (manageRules) await Promise.all([loadRules(), loadFlagged()]);
  }

  // Mapping rules: tried by priority (lowest first); the first match decides.
  const rname = h("input#gb-rule-name", { autocomplete: "off" });
  const rcivil = h("input#gb-rule-civil", { pattern: "[0-9]{1,20}", autocomplete: "off", placeholder: "440307001" });
  const rparent = h("input#gb-rule-parent", { pattern: "[0-9]{20}", autocomplete: "off" });
  const rpattern = h("input#gb-rule-pattern", { autocomplete: "off", placeholder: "水库|河道" });
  const rcat = h("select#gb-rule-category", categoryCodes().filter((c) => c !== "unclassified").map((c) => h("option", { value: c }, categoryName(c))));
  const rlevel = h("select#gb-rule-level", [1, 2, 3, 4].map((n) => h("option", { value: n }, String(n))));
  const rprio = h("input#gb-rule-priority", { type: "number", value: "0", step: "1" });
  const rbtn = h("button.primary", { type: "submit" }, t("adm_create"));
  const ruleForm = h("form.card.form#gb-rule-form", {
    onsubmit: (e) => {
      e.preventDefault();
      run(rbtn, msg, async () => {
        await api("/api/v1/gb/rules", {
          method: "POST", body: {
            name: rname.value.trim(), civil_code_prefix: rcivil.value.trim(), parent_id: rparent.value.trim(),
            name_pattern: rpattern.value, category: rcat.value, level: Number(rlevel.value), priority: Number(rprio.value) || 0,
          },
        });
        ruleForm.reset();
        say(msg, t("gb_ruleCreated"));
        await load();
      });
    },
  }, h("h2", t("gb_newRule")), h("p.muted", t("gb_ruleHint")),
  h("div.form-grid", field(t("adm_agentName"), rname), field(t("gb_civilPrefix"), rcivil), field(t("gb_parentId"), rparent),
    field(t("gb_namePattern"), rpattern), field(t("category"), rcat), field(t("level"), rlevel), field(t("gb_priority"), rprio)),
  h("div.form-actions", rbtn));

  async function loadRules() {
    const list = (await api("/api/v1/gb/rules")).items || [];
    rulesBox.replaceChildren(list.length ? table("gb-rules",
      [t("gb_priority"), t("adm_agentName"), t("gb_civilPrefix"), t("gb_parentId"), t("gb_namePattern"), t("category"), t("level"), ""],
      list.map((r) => tr({ dataset: { rule: r.id } }, String(r.priority), r.name || "—", r.civil_code_prefix || "—",
        h("span.mono", r.parent_id || "—"), r.name_pattern ? h("code", r.name_pattern) : "—", categoryName(r.category), String(r.level),
        confirmBtn("act-delete-rule", t("adm_delete"), () => run(null, msg, async () => {
          await api(`/api/v1/gb/rules/${enc(r.id)}`, { method: "DELETE" });
          say(msg, t("gb_ruleDeleted"));
          await load();
        })))))
      : h("p.muted#gb-rules-empty", t("gb_noRules")));
  }

  async function loadFlagged() {
    const list = (await api("/api/v1/gb/channels?flagged=1")).items || [];
    flaggedBox.replaceChildren(list.length ? table("gb-flagged",
      [t("gb_channelId"), t("gb_deviceId"), t("adm_agentName"), t("gb_civilCode"), t("gb_flags")],
      list.map((c) => tr({ dataset: { channel: c.id } },
        h("a.mono", { href: "#/admin/points?id=" + enc(c.id) }, c.id), h("span.mono", c.device), c.name || "—", c.civil_code || "—",
        (c.flags || []).map((f) => h("span.tag", { dataset: { flag: f } }, t("gb_flag_" + f))))))
      : h("p.muted#gb-flagged-empty", t("gb_noFlagged")));
  }

  el.append(msg, h("div.card", h("h2", t("gb_connect")), h("p.muted", t("gb_connectHint"))), newForm, editBox,
    h("h2", t("adm_gb")), listBox);
  if (manageRules) el.append(ruleForm, h("h2", t("gb_rules")), rulesBox, h("h2", t("gb_flaggedTitle")), flaggedBox);
  await load();
  const timer = setInterval(() => {
    if (document.hidden || el.querySelector(".armed") || editBox.childElementCount || el.contains(document.activeElement) && document.activeElement.tagName !== "BODY" && document.activeElement.tagName !== "BUTTON") return;
    load().catch(() => {});
  }, refreshMs);
  return () => clearInterval(timer);
}
