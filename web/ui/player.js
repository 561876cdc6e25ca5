// Tianyan minimal player: log in, list points, play one over WHEP.
"use strict";
const $ = (id) => document.getElementById(id);
let pc = null, sessionURL = null;

async function api(path, opts = {}) {
  const res = await fetch(path, Object.assign({credentials: "same-origin"}, opts));
  if (res.status === 401 && path !== "/api/v1/auth/login") { showLogin(); throw new Error("unauthenticated"); }
  return res;
}

function showLogin() { $("login").classList.remove("hidden"); $("app").classList.add("hidden"); }

async function start() {
  const me = await fetch("/api/v1/me", {credentials: "same-origin"});
  if (me.status !== 200) { showLogin(); return; }
  const u = await me.json();
  $("who").textContent = u.display_name || u.username;
  $("login").classList.add("hidden"); $("app").classList.remove("hidden");
  const res = await api("/api/v1/points");
  const data = await res.json();
  const ul = $("points"); ul.textContent = "";
  for (const p of data.items) {
    const li = document.createElement("li");
    li.textContent = p.name + " (" + p.id + ")";
    li.dataset.id = p.id;
    li.onclick = () => play(p.id);
    ul.appendChild(li);
  }
  const want = new URLSearchParams(location.search).get("point");
  if (want) play(want);
}

async function stop() {
  if (sessionURL) { fetch(sessionURL, {method: "DELETE", credentials: "same-origin"}).catch(() => {}); sessionURL = null; }
  if (pc) { pc.close(); pc = null; }
}

// play negotiates WHEP: a recvonly offer with every candidate, one POST.
async function play(id) {
  await stop();
  const status = $("status");
  status.textContent = "连接中 · connecting…";
  pc = new RTCPeerConnection();
  pc.addTransceiver("video", {direction: "recvonly"});
  pc.addTransceiver("audio", {direction: "recvonly"});
  pc.ontrack = (ev) => { if (ev.track.kind === "video") $("video").srcObject = ev.streams[0] || new MediaStream([ev.track]); };
  pc.onconnectionstatechange = () => {
    if (!pc) return;
    if (pc.connectionState === "connected") status.textContent = "直播中 · live";
    if (pc.connectionState === "failed") status.textContent = "连接断开 · connection lost";
  };
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((r) => {
    if (pc.iceGatheringState === "complete") return r();
    pc.onicegatheringstatechange = () => pc.iceGatheringState === "complete" && r();
    setTimeout(r, 2000);
  });
  const res = await api("/api/v1/points/" + encodeURIComponent(id) + "/whep", {
    method: "POST", headers: {"Content-Type": "application/sdp"}, body: pc.localDescription.sdp,
  });
  if (res.status !== 201) {
    let msg = res.status;
    try { msg = (await res.json()).error.message; } catch (e) {}
    status.textContent = "无法播放 · cannot play: " + msg;
    return;
  }
  sessionURL = res.headers.get("Location");
  await pc.setRemoteDescription({type: "answer", sdp: await res.text()});
}

$("login").onsubmit = async (ev) => {
  ev.preventDefault();
  const res = await fetch("/api/v1/auth/login", {
    method: "POST", credentials: "same-origin", headers: {"Content-Type": "application/json"},
    body: JSON.stringify({username: $("u").value, password: $("p").value}),
  });
  if (res.status !== 200) { $("loginerr").textContent = "登录失败 · login failed"; return; }
  start();
};
window.addEventListener("pagehide", stop);
start();
