// Upstream platforms (上级平台, GB/T 28181 级联): the city's platforms this
// server registers to. Each names a platform account whose grants (set on
// the grants page, by whoever holds grants.manage) decide exactly which
// points the platform sees and may play. The password is write-only: the
// server never sends it back, the form shows only whether one is set.
// The list refreshes itself with each registration's state.

import { api } from "../api.js";
import { h } from "../dom.js";
import { t, extend } from "../i18n.js";
import { table, tr, confirmBtn, say, run, fmtTime, fmtAgo, field } from "./ui.js";

extend({
  gbp_new: "新建上级平台", gbp_id: "上级平台编号（20 位）", gbp_domain: "上级平台域（10 位，可空）", gbp_address: "地址（主机:端口）",
  gbp_transport: "信令传输", gbp_password: "注册密码", gbp_passwordSet: "已设置（留空则不改）", gbp_localId: "本平台编号（空 = --sip-id）",
  gbp_expiry: "注册有效期（秒）", gbp_keepalive: "心跳间隔（秒）", gbp_account: "平台账号（决定可见点位）",
  gbp_mediaNets: "媒体地址范围（CIDR，逗号分隔；空 = 仅平台地址）", gbp_enabled: "启用", gbp_registered: "已注册", gbp_unregistered: "未注册",
  gbp_disabled: "已停用", gbp_lastKeepalive: "最近心跳", gbp_lastError: "最近错误", gbp_views: "正在观看", gbp_saved: "已保存：",
  gbp_created: "已创建上级平台：", gbp_deleted: "已删除上级平台：", gbp_none: "还没有上级平台", gbp_grants: "授权",
  gbp_noAccounts: "请先在“用户与角色”中创建类型为“上级平台”的账号", gbp_edit: "编辑", gbp_cancel: "取消",
}, {
  gbp_new: "New upstream platform", gbp_id: "Platform ID (20 digits)", gbp_domain: "Platform domain (10 digits, optional)", gbp_address: "Address (host:port)",
  gbp_transport: "SIP transport", gbp_password: "Password", gbp_passwordSet: "set (leave empty to keep)", gbp_localId: "Our ID (empty = --sip-id)",
  gbp_expiry: "Register expiry (s)", gbp_keepalive: "Keepalive interval (s)", gbp_account: "Platform account (decides what it sees)",
  gbp_mediaNets: "Media networks (CIDR, comma separated; empty = the platform's address only)", gbp_enabled: "Enabled", gbp_registered: "Registered", gbp_unregistered: "Not registered",
  gbp_disabled: "Disabled", gbp_lastKeepalive: "Last keepalive", gbp_lastError: "Last error", gbp_views: "Playing", gbp_saved: "Saved:",
  gbp_created: "Created upstream platform:", gbp_deleted: "Deleted upstream platform:", gbp_none: "No upstream platforms yet", gbp_grants: "Grants",
  gbp_noAccounts: "First create a user of kind \"Upstream platform\" under Users & roles", gbp_edit: "Edit", gbp_cancel: "Cancel",
});

const enc = encodeURIComponent;
const refreshMs = 5000;

/** platforms draws the upstream-platform screen into el; returns its cleanup. */
export default async function platforms(el) {
  const msg = h("p.notice#platforms-msg", { role: "alert" });
  const listBox = h("div#platforms-box");
  // Only platform accounts may be named; reading users needs users.manage
  // or grants.manage, which a sysadmin holds; without it, type the name.
  let accounts = [];
  try {
    accounts = ((await api("/api/v1/users")).items || []).filter((u) => u.kind === "platform").map((u) => u.username);
  } catch { /* typed by hand below */ }

  const input = (id, attrs = {}) => h("input#" + id, { autocomplete: "off", spellcheck: "false", ...attrs });
  const f = {
    id: input("gbp-id", { required: true, pattern: "[0-9]{20}", inputMode: "numeric" }),
    name: input("gbp-name"),
    domain: input("gbp-domain", { pattern: "[0-9]{10}", inputMode: "numeric" }),
    address: input("gbp-address", { required: true, placeholder: "10.1.2.3:5060" }),
    transport: h("select#gbp-transport", h("option", { value: "udp" }, "UDP"), h("option", { value: "tcp" }, "TCP")),
    password: input("gbp-password", { type: "password", autocomplete: "new-password" }),
    local_id: input("gbp-local-id", { pattern: "[0-9]{20}", inputMode: "numeric" }),
    expiry: input("gbp-expiry", { type: "number", min: 60, max: 86400, value: "3600" }),
    keepalive: input("gbp-keepalive", { type: "number", min: 5, max: 3600, value: "60" }),
    account: accounts.length ? h("select#gbp-account", accounts.map((n) => h("option", { value: n }, n))) : input("gbp-account", { required: true }),
    media: input("gbp-media", { placeholder: "10.1.2.0/24" }),
    enabled: h("input#gbp-enabled", { type: "checkbox", defaultChecked: true }),
  };
  let editing = null; // the ID being edited, or null for a new platform
  const title = h("h2", t("gbp_new"));
  const btn = h("button.primary", { type: "submit" }, t("adm_create"));
  const cancel = h("button.mini", { type: "button", hidden: true, onclick: () => edit(null) }, t("gbp_cancel"));
  const body = () => {
    const b = {
      name: f.name.value.trim(), domain: f.domain.value.trim(), address: f.address.value.trim(), transport: f.transport.value,
      local_id: f.local_id.value.trim(), register_expiry_s: Number(f.expiry.value) || 0, keepalive_interval_s: Number(f.keepalive.value) || 0,
      account: f.account.value.trim(), media_networks: f.media.value.split(",").map((s) => s.trim()).filter(Boolean), enabled: f.enabled.checked,
    };
    // Write-only: sent when typed, never pre-filled.
    if (f.password.value !== "" || !editing) b.password = f.password.value;
    return b;
  };
  const form = h("form.card.form#platform-form", {
    onsubmit: (e) => {
      e.preventDefault();
      run(btn, msg, async () => {
        if (editing) {
          const p = await api(`/api/v1/gb/platforms/${enc(editing)}`, { method: "PATCH", body: body() });
          say(msg, t("gbp_saved") + " " + p.id);
        } else {
          const p = await api("/api/v1/gb/platforms", { method: "POST", body: { id: f.id.value.trim(), ...body() } });
          say(msg, t("gbp_created") + " " + p.id);
        }
        edit(null);
        await load();
      });
    },
  }, title,
  accounts.length ? null : h("p.muted", t("gbp_noAccounts")),
  h("div.form-grid",
    field(t("gbp_id"), f.id), field(t("adm_name"), f.name), field(t("gbp_domain"), f.domain), field(t("gbp_address"), f.address),
    field(t("gbp_transport"), f.transport), field(t("gbp_password"), f.password), field(t("gbp_localId"), f.local_id),
    field(t("gbp_expiry"), f.expiry), field(t("gbp_keepalive"), f.keepalive), field(t("gbp_account"), f.account),
    field(t("gbp_mediaNets"), f.media), field(t("gbp_enabled"), f.enabled)),
  h("div.form-actions", btn, cancel));

  // edit fills the form with p (null: back to a new platform).
  function edit(p) {
    editing = p ? p.id : null;
    form.reset();
    f.id.disabled = !!p;
    cancel.hidden = !p;
    title.textContent = p ? t("gbp_edit") + " " + p.id : t("gbp_new");
    btn.textContent = p ? t("adm_save") : t("adm_create");
    f.password.placeholder = p?.password_set ? t("gbp_passwordSet") : "";
    if (!p) return;
    f.id.value = p.id; f.name.value = p.name || ""; f.domain.value = p.domain || ""; f.address.value = p.address;
    f.transport.value = p.transport; f.local_id.value = p.local_id || ""; f.expiry.value = p.register_expiry_s;
    f.keepalive.value = p.keepalive_interval_s; f.account.value = p.account; f.media.value = (p.media_networks || []).join(", ");
    f.enabled.checked = !!p.enabled;
    form.scrollIntoView?.({ block: "nearest" });
  }

  function state(p) {
    const s = p.status || {};
    if (!p.enabled) return h("span.state.busy", t("gbp_disabled"));
    return s.registered ? h("span.state.ok", h("span.dot.online"), " ", t("gbp_registered"))
      : h("span.state.bad", h("span.dot.offline"), " ", t("gbp_unregistered"));
  }

  async function load() {
    const list = (await api("/api/v1/gb/platforms")).items || [];
    listBox.replaceChildren(list.length ? table("platforms",
      ["ID", t("adm_name"), t("gbp_address"), t("status"), t("gbp_lastKeepalive"), t("gbp_views"), t("gbp_lastError"), t("gbp_account"), ""],
      list.map((p) => tr({ dataset: { platform: p.id, registered: String(!!p.status?.registered) } },
        h("span.mono", p.id), p.name || "—", `${p.address} ${p.transport.toUpperCase()}`, state(p),
        p.status?.last_keepalive ? [fmtAgo(p.status.last_keepalive), h("br"), h("span.muted.small", fmtTime(p.status.last_keepalive))] : "—",
        String(p.status?.views || 0),
        p.status?.last_error ? h("span.state.bad.small", p.status.last_error) : "—",
        h("a.mini", { href: "#/admin/grants?user=" + enc(p.account) }, p.account),
        h("div.acts",
          h("button.mini.act-edit", { type: "button", onclick: () => edit(p) }, t("gbp_edit")),
          confirmBtn("act-delete", t("adm_delete"), () => run(null, msg, async () => {
            await api(`/api/v1/gb/platforms/${enc(p.id)}`, { method: "DELETE" });
            say(msg, t("gbp_deleted") + " " + p.id);
            await load();
          }))))))
      : h("p.muted#platforms-empty", t("gbp_none")));
  }

  el.append(msg, h("h2", t("adm_platforms")), listBox, form);
  await load();
  const timer = setInterval(() => {
    if (document.hidden || listBox.querySelector(".armed")) return;
    load().catch(() => {});
  }, refreshMs);
  return () => clearInterval(timer);
}
