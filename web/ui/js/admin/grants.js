// Grants: who may do what, on which categories × regions (subtrees) up to
// which level, when, and with which PTZ priority. Two previews check the
// result from both ends: who can see a given point, and what a given user
// can see (exactly the facets that user's own app would get).

import { api, qs } from "../api.js";
import { h, debounce } from "../dom.js";
import { t, categoryName, categoryCodes } from "../i18n.js";
import { table, tr, confirmBtn, say, run, fmtTime, localToISO, checks, checkedValues, field } from "./ui.js";

const enc = encodeURIComponent;
const allActions = ["view", "ptz", "snapshot", "provision", "manage", "audit", "publish"];

function walk(nodes, fn, depth = 0) {
  for (const n of nodes || []) {
    fn(n, depth);
    walk(n.children, fn, depth + 1);
  }
}

/** grants draws the grants editor and the two access previews into el. */
export default async function grants(el, query) {
  const msg = h("p.notice#grants-msg", { role: "alert" });
  const [usersRes, rolesRes, regionsRes] = await Promise.all([
    api("/api/v1/users"), api("/api/v1/roles"), api("/api/v1/regions?tree=1")]);
  const users = usersRes.items.map((u) => u.username);
  const roles = rolesRes.items.map((r) => r.name);
  const tree = regionsRes.items || [];
  const regionName = { "*": t("all") };
  walk(tree, (n) => (regionName[n.code] = n.name));
  const catName = (c) => (c === "*" ? t("all") : categoryName(c));

  // --- subject -------------------------------------------------------------
  const kind = h("select#g-kind", h("option", { value: "user" }, t("adm_user")), h("option", { value: "role" }, t("adm_role")));
  const subject = h("select#g-subject");
  const fillSubjects = () => {
    const names = kind.value === "user" ? users : roles;
    const keep = subject.value;
    subject.replaceChildren(...names.map((n) => h("option", { value: n }, n)));
    if (names.includes(keep)) subject.value = keep;
  };
  if (query.get("role")) kind.value = "role";
  fillSubjects();
  const wanted = query.get("user") || query.get("role");
  if (wanted) subject.value = wanted;
  const onlySubject = h("input#g-only", { type: "checkbox", checked: !!wanted });

  // --- the form ----------------------------------------------------------------
  const cats = checks("g-cat", [["*", t("all")], ...categoryCodes().filter((c) => c !== "unclassified").map((c) => [c, categoryName(c)])]); // unclassified: admins only, never granted
  cats.classList.add("cats");
  const regionTree = h("div.rtree#g-regions",
    h("label.check", h("input", { type: "checkbox", name: "g-region", value: "*" }), h("span", t("adm_allRegions"))));
  walk(tree, (n, depth) => regionTree.append(h("label.check", { style: { paddingLeft: depth * 18 + "px" }, dataset: { code: n.code } },
    h("input", { type: "checkbox", name: "g-region", value: n.code }), h("span", n.name), h("span.muted.small", " " + n.code))));
  // A checked region covers its subtree (the server matches by subtree):
  // its descendants show as covered and cannot be picked on their own.
  regionTree.addEventListener("change", () => {
    const all = regionTree.querySelector('input[value="*"]').checked;
    const covered = new Set();
    walk(tree, (n) => {
      const label = regionTree.querySelector(`label[data-code="${n.code}"]`);
      const box = label.querySelector("input");
      const under = all || covered.has(n.code);
      box.disabled = under;
      label.classList.toggle("covered", under);
      if (under || box.checked) for (const c of n.children || []) covered.add(c.code);
    });
  });
  const level = h("select#g-level", [1, 2, 3, 4].map((n) => h("option", { value: n }, `≤ ${n}`)));
  const acts = checks("g-action", allActions.map((a) => [a, t("act_" + a)]), ["view"]);
  const notBefore = h("input#g-nb", { type: "datetime-local" });
  const notAfter = h("input#g-na", { type: "datetime-local" });
  const prio = h("input#g-prio", { type: "number", value: "0", step: "1" });
  const createBtn = h("button.primary", { type: "submit" }, t("adm_grantCreate"));
  const form = h("form.card.form#grant-form", {
    onsubmit: (e) => {
      e.preventDefault();
      const regions = checkedValues(regionTree, "g-region").filter((c) => {
        const box = regionTree.querySelector(`input[value="${c}"]`);
        return c === "*" || !box.disabled;
      });
      const body = {
        categories: checkedValues(cats, "g-cat").includes("*") ? ["*"] : checkedValues(cats, "g-cat"),
        regions: regions.includes("*") ? ["*"] : regions,
        max_level: Number(level.value),
        actions: checkedValues(acts, "g-action"),
        ptz_priority: Number(prio.value) || 0,
      };
      body[kind.value] = subject.value;
      if (notBefore.value) body.not_before = localToISO(notBefore.value);
      if (notAfter.value) body.not_after = localToISO(notAfter.value);
      if (!subject.value) return say(msg, t("adm_pickSubject"), "error");
      if (!body.categories.length) return say(msg, t("adm_pickCategory"), "error");
      if (!body.regions.length) return say(msg, t("adm_pickRegion"), "error");
      if (!body.actions.length) return say(msg, t("adm_pickAction"), "error");
      run(createBtn, msg, async () => {
        const g = await api("/api/v1/grants", { method: "POST", body });
        say(msg, t("adm_grantCreated") + " " + g.id);
        await loadGrants();
        if (kind.value === "user") showUser(subject.value);
        if (pointInput.value.trim()) showPoint(pointInput.value.trim());
      });
    },
  },
  h("h2", t("adm_newGrant")),
  h("div.form-grid", field(t("adm_grantTo"), h("div.pair", kind, subject)), field(t("adm_maxLevel"), level), field(t("adm_ptzPriority"), prio),
    field(t("adm_notBefore"), notBefore), field(t("adm_notAfter"), notAfter)),
  field(t("category"), cats, "wide"),
  field(t("region"), regionTree, "wide"),
  field(t("adm_actions"), acts, "wide"),
  h("div.form-actions", createBtn));

  // --- the list ------------------------------------------------------------------
  const listBox = h("div#grants-box");
  let all = [];
  const describeVia = (id) => {
    const g = all.find((x) => x.id === id);
    return g ? `${g.user ? t("adm_user") + " " + g.user : t("adm_role") + " " + g.role}: ${g.categories.map(catName).join("、")}` : id;
  };
  async function loadGrants() {
    all = (await api("/api/v1/grants")).items || [];
    drawGrants();
  }
  function validity(g) {
    const now = Date.now();
    const note = g.not_after && new Date(g.not_after) <= now ? t("adm_expired") : g.not_before && new Date(g.not_before) > now ? t("adm_notYet") : "";
    if (!g.not_before && !g.not_after) return t("adm_always");
    return [`${g.not_before ? fmtTime(g.not_before) : "…"} → ${g.not_after ? fmtTime(g.not_after) : "…"}`, note ? h("span.state.bad", " " + note) : null];
  }
  function drawGrants() {
    const shown = onlySubject.checked ? all.filter((g) => (kind.value === "user" ? g.user : g.role) === subject.value) : all;
    listBox.replaceChildren(shown.length ? table("grants",
      [t("adm_grantTo"), t("category"), t("region"), t("level"), t("adm_actions"), t("adm_validity"), t("adm_ptzPriority"), t("adm_createdBy"), ""],
      shown.map((g) => tr({ dataset: { grant: g.id, user: g.user || "", role: g.role || "" } },
        g.user ? [h("span.muted", t("adm_user") + " "), h("b", g.user)] : [h("span.muted", t("adm_role") + " "), h("b", g.role)],
        g.categories.map(catName).join("、"),
        g.regions.map((r) => regionName[r] || r).join("、"),
        "≤ " + g.max_level,
        g.actions.map((a) => h("span.chip-s", t("act_" + a))),
        validity(g),
        String(g.ptz_priority || 0),
        [g.created_by || "—", h("br"), h("span.muted.small", fmtTime(g.created_at))],
        confirmBtn("act-delete", t("adm_delete"), () => run(null, msg, async () => {
          await api("/api/v1/grants/" + enc(g.id), { method: "DELETE" });
          say(msg, t("adm_grantDeleted") + " " + g.id);
          await loadGrants();
          if (g.user) showUser(g.user);
          if (pointInput.value.trim()) showPoint(pointInput.value.trim());
        })))))
      : h("p.muted#grants-empty", t("adm_noGrants")));
  }
  kind.addEventListener("change", () => (fillSubjects(), drawGrants(), kind.value === "user" && showUser(subject.value)));
  subject.addEventListener("change", () => (drawGrants(), kind.value === "user" && showUser(subject.value)));
  onlySubject.addEventListener("change", drawGrants);

  // --- preview: who can see this point ----------------------------------------
  const pointInput = h("input#pa-point", { placeholder: t("adm_pointIdOrName"), autocomplete: "off", list: "pa-suggest" });
  const suggest = h("datalist#pa-suggest");
  const pointResult = h("div#pa-result");
  pointInput.addEventListener("input", debounce(async () => {
    const q = pointInput.value.trim();
    if (q.length < 2) return;
    const r = await api("/api/v1/points" + qs({ q, limit: 10 })).catch(() => ({ items: [] }));
    suggest.replaceChildren(...r.items.map((p) => h("option", { value: p.id }, p.name)));
  }, 300));
  async function showPoint(id) {
    pointResult.replaceChildren(h("p.muted", t("loading")));
    try {
      const [p, acc] = await Promise.all([api("/api/v1/points/" + enc(id)), api("/api/v1/points/" + enc(id) + "/access")]);
      pointResult.replaceChildren(
        h("p", h("b", p.name), " · ", categoryName(p.category), " · ", regionName[p.region] || p.region || "—", " · ", t("level"), " ", String(p.level),
          " — ", h("span#pa-count", String(acc.users.length)), " ", t("adm_usersCanSee")),
        table("pa-table", [t("username"), t("adm_via"), t("adm_actions")], acc.users.map((u) =>
          tr({ dataset: { user: u.username } }, h("b", u.username),
            u.via.map((v) => h("div.small", v === "admin role" ? t("adm_viaAdmin") : describeVia(v))),
            u.actions.map((a) => h("span.chip-s", t("act_" + a)))))));
    } catch (e) {
      pointResult.replaceChildren(h("p.notice.error", e.status === 404 ? t("adm_noSuchPoint") : e.message));
    }
  }
  const pointForm = h("form.inline#pa-form", { onsubmit: (e) => (e.preventDefault(), pointInput.value.trim() && showPoint(pointInput.value.trim())) },
    pointInput, suggest, h("button.btn", { type: "submit" }, t("adm_check")));

  // --- preview: what can this user see --------------------------------------------
  const userSel = h("select#ua-user", users.map((u) => h("option", { value: u }, u)));
  const userResult = h("div#ua-result");
  async function showUser(name) {
    if (!name) return;
    userSel.value = name;
    userResult.replaceChildren(h("p.muted", t("loading")));
    try {
      const a = await api("/api/v1/users/" + enc(name) + "/access");
      const f = a.facets;
      const regions = h("ul.rcounts");
      walk(f.regions, (n, depth) => n.count > 0 && depth < 2 &&
        regions.append(h("li", { dataset: { region: n.code }, style: { paddingLeft: depth * 14 + "px" } }, n.name, " ", h("b", String(n.count)))));
      const seen = f.categories.filter((c) => c.count > 0);
      userResult.replaceChildren(
        h("p", h("b", a.username), " — ", h("span#ua-total", String(a.total)), " ", t("points"),
          a.scope.all ? h("span.chip-s", t("adm_everything")) : null),
        h("div.preview-cols",
          h("div", h("h3", t("categories")), seen.length
            ? h("ul.ccounts#ua-categories", seen.map((c) => h("li", { dataset: { category: c.code } }, categoryName(c.code), " ", h("b", String(c.count)))))
            : h("p.muted#ua-categories", t("adm_seesNothing"))),
          h("div", h("h3", t("region")), regions)));
    } catch (e) {
      userResult.replaceChildren(h("p.notice.error", e.message));
    }
  }
  userSel.addEventListener("change", () => showUser(userSel.value));

  el.append(msg,
    h("div.card.subject-bar", h("label.check", onlySubject, h("span", t("adm_onlySubject")))),
    listBox, form,
    h("div.previews",
      h("section.card#preview-point", h("h2", t("adm_whoCanSee")), pointForm, pointResult),
      h("section.card#preview-user", h("h2", t("adm_whatUserSees")), userSel, userResult)));
  await loadGrants();
  const first = kind.value === "user" && subject.value ? subject.value : users[0];
  showUser(first);
  if (query.get("point")) {
    pointInput.value = query.get("point");
    showPoint(pointInput.value);
    pointResult.closest("section").scrollIntoView({ block: "start" });
  }
}
