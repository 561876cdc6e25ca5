// Technician's provisioning page. Talks only to this agent's /api; the
// agent forwards to the centre with the technician's own login.
"use strict";
const $ = (s, el = document) => el.querySelector(s);
let categories = [], regions = [];

// The page's own refusals, in the technician's language.
const messages = {
  not_provisioner: "此页面仅供有“接入”授权的技术员使用。",
  too_many_attempts: "登录失败次数过多，请稍后再试。",
  registered: "该摄像机已登记为点位，不能重复登记。",
  not_probed: "请先输入摄像机账号并检测。",
};

async function api(method, path, body) {
  const opt = { method, headers: {} };
  if (body !== undefined) { opt.headers["Content-Type"] = "application/json"; opt.body = JSON.stringify(body); }
  const res = await fetch(path, opt);
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
  if (res.status === 401 && path !== "/api/login") { show("login"); throw new Error("请重新登录"); }
  if (!res.ok) {
    const e = data && data.error;
    const msg = e && (messages[e.code] || e.message);
    throw new Error(e ? (msg + (e.field ? "（" + e.field + "）" : "")) : ("HTTP " + res.status));
  }
  return data;
}

function show(id) {
  $("#login").hidden = id !== "login";
  $("#home").hidden = id !== "home";
}

async function start() {
  try {
    const st = await api("GET", "/api/status");
    $("#who").textContent = st.user;
    $("#status").textContent = "代理 " + st.agent + (st.region ? " · 区域 " + st.region : "") + (st.online ? " · 已连接中心" : " · 未连接中心") +
      (st.provision_here ? "" : " · 您的接入授权不含本区域：只列出您可查看的已登记摄像机");
    $("#discoverBtn").hidden = !st.provision_here;
    show("home");
    await loadMeta();
    await loadCams("GET", "/api/cameras");
  } catch (e) { show("login"); }
}

async function loadMeta() {
  try { const c = await api("GET", "/api/categories"); categories = c.items || c; } catch (e) { categories = []; }
  try { const r = await api("GET", "/api/regions"); regions = r.items || r; } catch (e) { regions = []; }
}

async function loadCams(method, path) {
  const box = $("#cams");
  box.textContent = method === "POST" ? "正在搜索…" : "";
  try {
    const data = await api(method, path);
    box.textContent = "";
    const items = data.items || [];
    if (!items.length) box.textContent = "未发现摄像机。";
    for (const cam of items) box.appendChild(camCard(cam));
  } catch (e) { box.textContent = e.message; }
}

function fillSelect(sel, items, val, label) {
  sel.textContent = "";
  for (const it of items) {
    const o = document.createElement("option");
    o.value = val(it); o.textContent = label(it);
    sel.appendChild(o);
  }
}

function camCard(cam) {
  const el = $("#camTpl").content.firstElementChild.cloneNode(true);
  $("h3", el).textContent = cam.name || cam.model || cam.ip || cam.id;
  $(".meta", el).textContent = [cam.manufacturer, cam.model, cam.ip].filter(Boolean).join(" · ");
  const err = $(".err", el), ok = $(".ok", el);
  const showProfiles = (c) => {
    const p = $(".profiles", el);
    p.textContent = "";
    for (const pr of c.profiles || []) {
      const b = document.createElement("span");
      b.className = "badge";
      b.textContent = pr.name + " " + pr.codec + " " + pr.width + "×" + pr.height;
      p.appendChild(b);
    }
    if (c.ptz) { const b = document.createElement("span"); b.className = "badge"; b.textContent = "云台"; p.appendChild(b); }
  };
  const ready = (c) => {
    showProfiles(c);
    const img = $(".snap", el);
    img.hidden = false;
    img.src = "/api/cameras/" + encodeURIComponent(c.id) + "/snapshot.jpg?t=" + Date.now();
    img.onerror = () => { img.hidden = true; };
    const f = $(".point", el);
    f.hidden = false;
    fillSelect($(".category", f), categories, (c) => c.code, (c) => c.zh || c.name || c.code);
    fillSelect($(".region", f), regions, (r) => r.code, (r) => r.name + " " + r.code);
    if (c.ptz) $(".kind", f).value = "panoramic";
  };
  if (cam.point) {
    // Registered: a camera binds to one point; nothing to register here.
    showProfiles(cam);
    $(".probe", el).hidden = true;
    ok.textContent = "已登记为点位：" + (cam.point.name ? cam.point.name + "（" + cam.point.id + "）" : cam.point.id);
    el.classList.add("registered");
    if ((cam.point.actions || []).includes("snapshot")) {
      const img = $(".snap", el);
      img.hidden = false;
      img.src = "/api/cameras/" + encodeURIComponent(cam.id) + "/snapshot.jpg?t=" + Date.now();
      img.onerror = () => { img.hidden = true; };
    }
    return el;
  }
  if (cam.main_token) ready(cam);
  $(".probeBtn", el).onclick = async () => {
    err.textContent = ""; ok.textContent = "检测中…";
    try {
      const c = await api("POST", "/api/cameras/probe", { id: cam.id, xaddr: cam.xaddr, username: $(".cu", el).value, password: $(".cp", el).value });
      cam = c; ok.textContent = "检测通过"; ready(c);
    } catch (e) { ok.textContent = ""; err.textContent = "检测失败：" + e.message; }
  };
  $(".gps", el).onclick = () => {
    if (!navigator.geolocation) { err.textContent = "此设备不支持定位"; return; }
    navigator.geolocation.getCurrentPosition(
      (p) => { $(".lat", el).value = p.coords.latitude.toFixed(6); $(".lon", el).value = p.coords.longitude.toFixed(6); },
      (e) => { err.textContent = "定位失败：" + e.message; }, { enableHighAccuracy: true, timeout: 10000 });
  };
  $(".point", el).onsubmit = async (ev) => {
    ev.preventDefault();
    err.textContent = ""; ok.textContent = "";
    const f = ev.target;
    const num = (s) => (s.trim() === "" ? undefined : Number(s));
    const spec = { name: $(".name", f).value, category: $(".category", f).value, region: $(".region", f).value,
      kind: $(".kind", f).value, level: Number($(".level", f).value), use_sub: $(".useSub", f).checked,
      lat: num($(".lat", f).value), lon: num($(".lon", f).value) };
    try {
      const p = await api("POST", "/api/cameras/" + encodeURIComponent(cam.id) + "/point", spec);
      ok.textContent = "已登记：" + p.id;
      // Show it as registered from now on (and never offer it again).
      el.replaceWith(camCard(Object.assign({}, cam, { point: { id: p.id, name: p.name, actions: [] } })));
    } catch (e) { err.textContent = "登记失败：" + e.message; }
  };
  return el;
}

$("#loginBtn").onclick = async () => {
  $("#loginErr").textContent = "";
  try {
    await api("POST", "/api/login", { username: $("#user").value, password: $("#pass").value });
    await start();
  } catch (e) { $("#loginErr").textContent = e.message; }
};
$("#discoverBtn").onclick = () => loadCams("POST", "/api/discover");
start();
