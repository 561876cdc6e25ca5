// Admin section (#/admin/<section>): users and roles, grants with their
// previews, edge agents, points (edit, import, export), the audit log and
// point health. Each section is its own module under admin/, loaded when
// opened, so the phone shell stays small. Only administrators see the nav
// entry; the server checks every call regardless.

import { h } from "./dom.js";
import { t } from "./i18n.js";
import { isAdmin, mayDo } from "./data.js";
import { go } from "./router.js";
import "./admin/strings.js";

// Each section and the system action it needs: a duty role (sysadmin,
// secadmin, auditor) sees its own sections only.
const needs = {
  users: "users.manage", grants: "grants.manage", agents: "agents.manage", gb: "agents.manage",
  points: "points.manage_all", audit: "audit.read", health: "", platforms: "system.operate",
};
const allSections = ["users", "grants", "agents", "gb", "points", "audit", "health", "platforms"];

/** admin renders one admin section (the first the caller may use when none is named). */
export async function admin(view, params, query) {
  if (!isAdmin()) return go("/", { replace: true });
  const sections = allSections.filter((s) => !needs[s] || mayDo(needs[s]));
  const section = sections.includes(params.section) ? params.section : sections[0];
  view.classList.add("admin");
  const body = h("div.admin-body#admin-" + section, { dataset: { section } });
  view.append(
    h("nav.admin-tabs", sections.map((s) =>
      h("a" + (s === section ? ".on" : ""), { href: "#/admin/" + s, dataset: { section: s } }, t("adm_" + s)))),
    body);
  const mod = await import(`./admin/${section}.js`);
  const cleanup = await mod.default(body, query);
  body.dataset.ready = "1"; // drawn: for tests and diagnostics
  return cleanup;
}
