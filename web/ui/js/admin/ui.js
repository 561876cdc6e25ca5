// Building blocks the admin screens share: tables, two-step buttons for
// what cannot be undone, messages, dates in the viewer's time zone, and
// server errors in words. Everything is built with h(), never innerHTML:
// user names, point names and audit details are data, not markup.

import { h } from "../dom.js";
import { t, getLang } from "../i18n.js";
import { ApiError } from "../api.js";

/** table builds <table id> with a header row; rows are <tr> elements. */
export function table(id, headers, rows) {
  return h("div.tbl-wrap", h("table.tbl" + (id ? "#" + id : ""),
    h("thead", h("tr", headers.map((x) => h("th", x)))),
    h("tbody", rows)));
}

/** tr builds a row from cells (nodes, strings or arrays of them). */
export function tr(attrs, ...cells) {
  return h("tr", attrs, cells.map((c) => h("td", c)));
}

const armMs = 4000;

/**
 * confirmBtn acts on the second click within a few seconds: the first one
 * turns it into "confirm?". No modal dialog, so nothing blocks the page.
 */
export function confirmBtn(cls, label, action) {
  const b = h("button.mini." + cls, { type: "button" }, label);
  let timer = 0;
  b.addEventListener("click", async () => {
    if (!b.classList.contains("armed")) {
      b.classList.add("armed");
      b.textContent = t("adm_confirm") + label + "?";
      timer = setTimeout(() => {
        b.classList.remove("armed");
        b.textContent = label;
      }, armMs);
      return;
    }
    clearTimeout(timer);
    b.classList.remove("armed");
    b.textContent = label;
    b.disabled = true;
    try {
      await action();
    } finally {
      b.disabled = false;
    }
  });
  return b;
}

/** say shows text in a message element; kind is "ok" or "error". */
export function say(el, text, kind = "ok") {
  el.textContent = text || "";
  el.className = "notice " + (text ? kind : "");
  el.dataset.kind = text ? kind : "";
}

/** errText turns a failed call into words: our own text for known codes, else the server's message with the field it names. */
export function errText(e) {
  if (!(e instanceof ApiError)) return String(e?.message || e);
  const known = t("err_" + e.code);
  if (e.code && known !== "err_" + e.code) return known + (e.field ? ` (${e.field})` : "");
  if (e.code === "timeout" || e.code === "network") return t("netError");
  return (e.field ? e.field + ": " : "") + (e.message || "HTTP " + e.status);
}

/** run calls fn with button disabled, showing a failure in msg; resolves to fn's value or undefined. */
export async function run(button, msg, fn) {
  if (button) button.disabled = true;
  try {
    return await fn();
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return undefined; // on the way to the login form
    say(msg, errText(e), "error");
    return undefined;
  } finally {
    if (button) button.disabled = false;
  }
}

const pad = (n) => String(n).padStart(2, "0");

/** fmtTime renders an ISO time as local "YYYY-MM-DD HH:MM:SS" ("—" when absent). */
export function fmtTime(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  if (isNaN(d)) return "—";
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** fmtSpan renders how long it has been since an ISO time, coarsely ("3 小时", "2 d"). */
export function fmtSpan(iso, now = Date.now()) {
  if (!iso) return "—";
  const s = Math.max(0, Math.round((now - new Date(iso).getTime()) / 1000));
  const zh = getLang() !== "en";
  if (s < 60) return zh ? `${s} 秒` : `${s} s`;
  if (s < 3600) return zh ? `${Math.floor(s / 60)} 分钟` : `${Math.floor(s / 60)} min`;
  if (s < 86400) return zh ? `${Math.floor(s / 3600)} 小时` : `${Math.floor(s / 3600)} h`;
  return zh ? `${Math.floor(s / 86400)} 天` : `${Math.floor(s / 86400)} d`;
}

/** fmtAgo is fmtSpan as a moment in the past ("3 小时前", "3 h ago"). */
export function fmtAgo(iso, now = Date.now()) {
  if (!iso) return "—";
  return fmtSpan(iso, now) + (getLang() !== "en" ? "前" : " ago");
}

/** localToISO turns a datetime-local value into RFC 3339 UTC ("" stays ""). */
export function localToISO(v) {
  if (!v) return "";
  const d = new Date(v);
  return isNaN(d) ? "" : d.toISOString();
}

/** pct renders n/total as a percentage with one decimal ("—" for 0/0). */
export function pct(n, total) {
  return total ? (Math.round((n / total) * 1000) / 10).toFixed(1) + "%" : "—";
}

/** checks builds a row of labelled checkboxes named name; items are [value, label]. */
export function checks(name, items, checked = []) {
  return h("div.checks", items.map(([value, label]) =>
    h("label.check", h("input", { type: "checkbox", name, value, checked: checked.includes(value) }), h("span", label))));
}

/** checkedValues lists the values of the checked boxes named name under root. */
export function checkedValues(root, name) {
  return [...root.querySelectorAll(`input[name="${name}"]:checked`)].map((i) => i.value);
}

/** field wraps a control in a label with its caption. */
export function field(caption, control, cls = "") {
  return h("label.field" + (cls ? "." + cls : ""), h("span", caption), control);
}
