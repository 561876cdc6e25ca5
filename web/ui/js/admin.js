// Admin section: the place where user, grant, point and audit screens plug
// in. Each screen should register as a sub-route of #/admin (e.g.
// #/admin/users) from this module; only administrators see the nav entry,
// and the server checks every call regardless.

import { h } from "./dom.js";
import { t } from "./i18n.js";
import { isAdmin } from "./data.js";
import { go } from "./router.js";

/** admin renders the admin landing page. */
export function admin(view) {
  if (!isAdmin()) return go("/", { replace: true });
  view.classList.add("phone");
  view.append(h("div.card", h("h1", t("admin")), h("p.muted", t("adminSoon"))));
}
