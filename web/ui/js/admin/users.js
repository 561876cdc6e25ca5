// Users and roles: list, create, disable/enable, reset a password, end
// sessions, delete; roles create and delete. The server refuses what would
// leave no administrator or orphan a role; its answer is shown as is.

import { api } from "../api.js";
import { h } from "../dom.js";
import { t } from "../i18n.js";
import { table, tr, confirmBtn, say, run, fmtTime, checks, checkedValues, field } from "./ui.js";

const enc = encodeURIComponent;

/** users draws the users and roles screen into el. */
export default async function users(el) {
  const msg = h("p.notice#users-msg", { role: "alert" });
  const userBox = h("div#users-box");
  const roleBox = h("div#roles-box");
  const roleChecks = h("div#nu-roles");

  const name = h("input#nu-name", { required: true, autocomplete: "off", autocapitalize: "off", spellcheck: "false" });
  const pass = h("input#nu-pass", { type: "password", required: true, autocomplete: "new-password", minLength: 8 });
  const display = h("input#nu-display", { autocomplete: "off" });
  // A platform account (an upstream GB/T 28181 platform, 级联) has no
  // password and never logs in: its grants decide what the platform sees.
  const syncKind = () => {
    const platform = kind.value === "platform";
    pass.required = !platform;
    pass.disabled = platform;
    if (platform) pass.value = "";
  };
  const kind = h("select#nu-kind", { onchange: () => syncKind() }, h("option", { value: "" }, t("adm_kindPerson")), h("option", { value: "platform" }, t("adm_kindPlatform")));
  const createBtn = h("button.primary", { type: "submit" }, t("adm_create"));
  const form = h("form.card.form#user-form", {
    onsubmit: (e) => {
      e.preventDefault();
      run(createBtn, msg, async () => {
        const u = await api("/api/v1/users", { method: "POST", body: {
          username: name.value.trim(), password: pass.value, display_name: display.value.trim(), roles: checkedValues(form, "nu-role"),
          kind: kind.value,
        } });
        form.reset();
        syncKind();
        say(msg, t("adm_userCreated") + " " + u.username);
        await load();
      });
    },
  }, h("h2", t("adm_newUser")),
  h("div.form-grid", field(t("username"), name), field(t("adm_userKind"), kind), field(t("password"), pass), field(t("adm_displayName"), display)),
  field(t("adm_roles"), roleChecks), h("div.form-actions", createBtn));

  const roleName = h("input#nr-name", { required: true, autocomplete: "off", autocapitalize: "off", spellcheck: "false", placeholder: "water-bureau" });
  const roleDesc = h("input#nr-desc", { autocomplete: "off" });
  const roleBtn = h("button.primary", { type: "submit" }, t("adm_create"));
  const roleForm = h("form.card.form#role-form", {
    onsubmit: (e) => {
      e.preventDefault();
      run(roleBtn, msg, async () => {
        await api("/api/v1/roles", { method: "POST", body: { name: roleName.value.trim(), description: roleDesc.value.trim() } });
        say(msg, t("adm_roleCreated") + " " + roleName.value.trim());
        roleForm.reset();
        await load();
      });
    },
  }, h("h2", t("adm_newRole")), h("div.form-grid", field(t("adm_roleName"), roleName), field(t("adm_description"), roleDesc)),
  h("div.form-actions", roleBtn));

  el.append(msg, h("h2", t("adm_userList")), userBox, form, h("h2", t("adm_rolesTitle")), roleBox, roleForm);

  async function load() {
    const [u, r] = await Promise.all([api("/api/v1/users"), api("/api/v1/roles")]);
    roleChecks.replaceChildren(checks("nu-role", r.items.map((x) => [x.name, x.name])));
    drawUsers(u.items, r.items);
    drawRoles(r.items);
  }

  function drawUsers(list) {
    userBox.replaceChildren(table("users", [t("username"), t("adm_userKind"), t("adm_displayName"), t("adm_roles"), t("status"), t("adm_created"), ""],
      list.map((u) => {
        const actions = h("div.acts");
        const sessions = h("div.sessions", { hidden: true });
        const pw = h("input.pw", { type: "password", autocomplete: "new-password", minLength: 8, placeholder: t("adm_newPassword") });
        const pwForm = h("form.inline.pwform", {
          hidden: true,
          onsubmit: (e) => {
            e.preventDefault();
            run(pwForm.querySelector("button"), msg, async () => {
              await api(`/api/v1/users/${enc(u.username)}/password`, { method: "POST", body: { password: pw.value } });
              pwForm.hidden = true;
              pw.value = "";
              say(msg, t("adm_passwordReset") + " " + u.username);
            });
          },
        }, pw, h("button.mini", { type: "submit" }, t("adm_save")));
        actions.append(
          h("button.mini.act-toggle", {
            type: "button",
            onclick: (e) => run(e.currentTarget, msg, async () => {
              await api(`/api/v1/users/${enc(u.username)}`, { method: "PATCH", body: { disabled: !u.disabled } });
              say(msg, (u.disabled ? t("adm_enabled") : t("adm_disabled")) + " " + u.username);
              await load();
            }),
          }, u.disabled ? t("adm_enable") : t("adm_disable")),
          // A platform never logs in: no password to reset, no sessions.
          u.kind === "platform" ? null
            : h("button.mini.act-reset", { type: "button", onclick: () => ((pwForm.hidden = !pwForm.hidden), pw.focus()) }, t("adm_resetPassword")),
          u.kind === "platform" ? null
            : h("button.mini.act-sessions", { type: "button", onclick: () => toggleSessions(u.username, sessions) }, t("adm_sessionsTokens")),
          h("a.mini.act-grants", { href: "#/admin/grants?user=" + enc(u.username) }, t("adm_grants")),
          confirmBtn("act-delete", t("adm_delete"), () => run(null, msg, async () => {
            await api(`/api/v1/users/${enc(u.username)}`, { method: "DELETE" });
            say(msg, t("adm_userDeleted") + " " + u.username);
            await load();
          })),
          pwForm, sessions);
        return tr({ dataset: { user: u.username }, class: u.disabled ? "off" : null },
          h("b", u.username),
          h("span.small.kind-" + (u.kind || "person"), u.kind === "platform" ? t("adm_kindPlatform") : t("adm_kindPerson")),
          u.display_name || "—",
          (u.roles || []).map((r) => h("span.chip-s", r)),
          h("span.state." + (u.disabled ? "bad" : "ok"), u.disabled ? t("adm_disabled") : t("adm_active")),
          fmtTime(u.created_at), actions);
      })));
  }

  // toggleSessions shows a user's sessions and API tokens, each with a
  // button to end it (IDs are hash prefixes: enough to revoke, useless to log in).
  async function toggleSessions(name, box) {
    if (!box.hidden) {
      box.hidden = true;
      return;
    }
    box.hidden = false;
    const base = `/api/v1/users/${enc(name)}`;
    const draw = async () => {
      const [s, k] = await Promise.all([api(base + "/sessions"), api(base + "/tokens")]);
      box.replaceChildren(
        h("div.small.muted", t("adm_sessions"), " ", h("b.count-sessions", String(s.items.length)),
          s.items.length ? confirmBtn("act-logout", t("adm_endSessions"), () => run(null, msg, async () => {
            const r = await api(base + "/sessions", { method: "DELETE" });
            say(msg, `${t("adm_sessionsEnded")} ${name}: ${r?.revoked ?? 0}`);
            await draw();
          })) : null),
        h("ul.small.plain", s.items.map((x) => h("li", { dataset: { session: x.id } }, h("span.mono", x.id), " ",
          fmtTime(x.created), " → ", fmtTime(x.expires), " ",
          h("button.mini", { type: "button", onclick: (e) => run(e.currentTarget, msg, async () => {
            await api(`${base}/sessions/${enc(x.id)}`, { method: "DELETE" });
            await draw();
          }) }, t("adm_end"))))),
        h("div.small.muted", t("adm_tokens"), " ", h("b.count-tokens", String(k.items.length))),
        h("ul.small.plain", k.items.map((x) => h("li", { dataset: { token: x.id } }, h("b", x.name), " ", h("span.mono", x.id), " ",
          t("adm_lastUsed"), " ", fmtTime(x.last_used), " ",
          confirmBtn("act-revoke", t("adm_revoke"), () => run(null, msg, async () => {
            await api(`${base}/tokens/${enc(x.id)}`, { method: "DELETE" });
            await draw();
          }))))));
    };
    await run(null, msg, draw);
  }

  function drawRoles(list) {
    roleBox.replaceChildren(table("roles", [t("adm_roleName"), t("adm_description"), ""], list.map((r) =>
      tr({ dataset: { role: r.name } }, h("b", r.name), r.description || "—",
        h("div.acts",
          h("a.mini.act-grants", { href: "#/admin/grants?role=" + enc(r.name) }, t("adm_grants")),
          r.name === "admin" ? null : confirmBtn("act-delete", t("adm_delete"), () => run(null, msg, async () => {
            await api(`/api/v1/roles/${enc(r.name)}`, { method: "DELETE" });
            say(msg, t("adm_roleDeleted") + " " + r.name);
            await load();
          })))))));
  }

  await load();
}
