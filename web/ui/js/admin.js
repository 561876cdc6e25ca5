// Admin section (#/admin/<section>): users and roles, grants with their
// previews, edge agents, points (edit, import, export), the audit log and
// point health. Each section is its own module under admin/, loaded when
// opened, so the phone shell stays small. Only administrators see the nav
// entry; the server checks every call regardless.

import { h } from "./dom.js";
import { t } from "./i18n.js";
import { isAdmin } from "./data.js";
import { go } from "./router.js";
import "./admin/strings.js";

const sections = ["users", "grants", "agents", "points", "audit", "health"];

/** admin renders one admin section (users when none is named). */
export async function admin(view, params, query) {
  if (!isAdmin()) return go("/", { replace: true });
  const section = sections.includes(params.section) ? params.section : "users";
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
