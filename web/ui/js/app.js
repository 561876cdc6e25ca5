// Tianyan browser app: shell, login, routes. Views load as modules; the
// wall and the map (with Leaflet) load only when opened, so the phone shell
// stays small.

import { request, onUnauthorized, ApiError } from "./api.js";
import { h } from "./dom.js";
import { t, getLang, setLang } from "./i18n.js";
import { route, start, go, here, render, leave } from "./router.js";
import { loadMe, loadCategories, isAdmin, currentUser, forgetMe } from "./data.js";
import * as phone from "./phone.js";

const nextKey = "ty.next";
const main = document.getElementById("main");
const nav = document.getElementById("nav");

// A 401 anywhere: remember the page, show the login form, come back after.
onUnauthorized(() => {
  const at = here();
  if (!at.startsWith("/login")) {
    sessionStorage.setItem(nextKey, at);
    if (currentUser()) sessionStorage.setItem("ty.expired", "1");
  }
  forgetMe();
  drawNav();
  go("/login", { replace: true });
});

function drawNav() {
  const u = currentUser();
  const link = (href, key, cls) => h("a.nav-" + cls, { href, dataset: { nav: cls } }, t(key));
  nav.replaceChildren(
    ...(u ? [link("#/", "home", "home"), link("#/wall", "wall", "wall"), link("#/map", "map", "map")] : []),
    // The admin section (js/admin.js); only admins see it.
    ...(u && isAdmin() ? [link("#/admin", "admin", "admin")] : []),
    h("button.lang#lang", { type: "button", onclick: switchLang }, t("lang")),
    u ? h("button.logout#logout", { type: "button", onclick: logout, title: u.username }, t("logout")) : null,
  );
  document.title = t("app") + (getLang() === "en" ? "" : " · Tianyan");
}

function switchLang() {
  setLang(getLang() === "en" ? "zh" : "en");
  drawNav();
  render();
}

async function logout() {
  await request("/api/v1/auth/logout", { method: "POST" }).catch(() => {});
  forgetMe();
  sessionStorage.removeItem(nextKey);
  drawNav();
  go("/login");
}

function loginView(view) {
  view.classList.add("login-view");
  const err = h("p.error#loginerr", { role: "alert" });
  if (sessionStorage.getItem("ty.expired")) err.textContent = t("sessionExpired");
  const u = h("input#u", { autocomplete: "username", required: true, placeholder: t("username"), autocapitalize: "off" });
  const p = h("input#p", { type: "password", autocomplete: "current-password", required: true, placeholder: t("password") });
  const form = h("form#login.card", {
    onsubmit: async (e) => {
      e.preventDefault();
      err.textContent = "";
      try {
        await request("/api/v1/auth/login", { method: "POST", body: { username: u.value, password: p.value } });
      } catch (ex) {
        err.textContent = ex.status === 429 ? t("loginThrottled") : t("loginFailed");
        return;
      }
      sessionStorage.removeItem("ty.expired");
      await boot();
      const next = sessionStorage.getItem(nextKey) || "/";
      sessionStorage.removeItem(nextKey);
      go(next.startsWith("/login") ? "/" : next, { replace: true });
    },
  }, h("h1", "天眼 · Tianyan"), h("label", t("username"), u), h("label", t("password"), p), h("button.primary", { type: "submit" }, t("login")), err);
  view.append(form);
  u.focus();
}

function errorView(view, e) {
  if (e instanceof ApiError && e.status === 401) return; // already on the way to login
  view.append(h("div.card.error-view", h("h2", t("error")), h("p", e.message || String(e)),
    h("button.btn", { type: "button", onclick: () => render() }, t("retry"))));
}

// Views that need the session wait for boot; the login route does not.
function authed(fn) {
  return async (...args) => {
    if (!currentUser()) await boot();
    return fn(...args);
  };
}

async function boot() {
  await loadMe();
  await loadCategories();
  drawNav();
}

route("/login", loginView);
route("/", authed(phone.home));
route("/r", authed(phone.region));
route("/r/:code", authed(phone.region));
route("/l", authed(phone.list));
route("/p/:id", authed(phone.player));
route("/wall", authed(async (...a) => (await import("./wall.js")).wall(...a)));
route("/map", authed(async (...a) => (await import("./map.js")).map(...a)));
route("/admin", authed(async (...a) => (await import("./admin.js")).admin(...a)));
route("/admin/:section", authed(async (...a) => (await import("./admin.js")).admin(...a)));

drawNav();
start(main, errorView);
// Closing or leaving the page ends live views at once rather than when the
// server notices; a page restored from the back/forward cache draws again.
window.addEventListener("pagehide", leave);
window.addEventListener("pageshow", (e) => e.persisted && render());

if ("serviceWorker" in navigator && window.isSecureContext) {
  navigator.serviceWorker.register("/ui/sw.js", { scope: "/" }).catch(() => {
    // no offline shell (e.g. private mode); the app works without it
  });
}
