// Player: one WHEP viewer in a <video>. It owns its RTCPeerConnection and
// timers, reports a state with its own message, and recovers by itself:
// camera offline (503/504) and network failures retry with backoff, ICE
// failure or a stalled picture reconnects, a network change reconnects at
// once. A picture that stops because the server's stream lost its camera
// (or the camera's edge agent) keeps its session and says which of the two
// is away: the server resumes it the moment the source returns, where a new
// session would be refused and wait out a growing backoff. An edge agent out
// of touch (503 agent_offline, or a point whose status says so) is never
// shown as "camera offline": nothing is known of the camera then. No
// permission (403/404) and codec problems (422 or the browser cannot decode)
// are final until the user asks again.

import { api, request, ApiError } from "./api.js";
import { uiConfig } from "./data.js";

/** States a player reports, each with its own message key in i18n. */
export const State = {
  idle: "idle",
  connecting: "connecting",
  live: "live",
  reconnecting: "reconnecting",
  offline: "camOffline",
  agentOffline: "agentOffline",
  denied: "denied",
  codec: "codec",
  network: "netError",
};

const iceGatherMs = 2000;
const stallMs = 8000;
const noFrameMs = 8000;

export class Player {
  /**
   * @param {HTMLVideoElement} video
   * @param {{onState?: (state: string, detail?: string) => void}} opts
   */
  constructor(video, { onState } = {}) {
    this.video = video;
    this.onState = onState || (() => {});
    video.muted = true;
    video.autoplay = true;
    video.playsInline = true;
    video.setAttribute("playsinline", "");
    this.pointId = null;
    this.profile = "sub";
    this.served = "sub"; // the profile the server actually serves (X-Tianyan-Profile)
    this.state = State.idle;
    this.gen = 0; // bumps on every (re)connect; stale callbacks compare it
    this.pc = null;
    this.session = null;
    this.retryTimer = 0;
    this.watchTimer = 0;
    this.backoff = 0;
    this.onNetChange = () => {
      if (this.pointId && this.state !== State.denied && this.state !== State.codec) this.reconnect(0);
    };
    this.onVideoError = () => this.fail(State.codec);
  }

  /** play starts pointId on profile ("sub" or "main"). */
  play(pointId, profile = "sub") {
    this.stop();
    this.pointId = pointId;
    this.profile = profile;
    this.backoff = 0;
    window.addEventListener("online", this.onNetChange);
    navigator.connection?.addEventListener?.("change", this.onNetChange);
    this.video.addEventListener("error", this.onVideoError);
    this.connect();
  }

  /** setProfile switches stream profile, reconnecting when it changes. */
  setProfile(profile) {
    if (profile === this.profile || !this.pointId) return;
    this.profile = profile;
    this.reconnect(0);
  }

  /** stop ends the session and every timer. */
  stop() {
    this.gen++;
    this.teardown();
    this.pointId = null;
    window.removeEventListener("online", this.onNetChange);
    navigator.connection?.removeEventListener?.("change", this.onNetChange);
    this.video.removeEventListener("error", this.onVideoError);
    this.video.srcObject = null;
    this.setState(State.idle);
  }

  /** frames is how many frames the video element has decoded. */
  frames() {
    return this.video.getVideoPlaybackQuality?.().totalVideoFrames ?? 0;
  }

  setState(s, detail) {
    if (this.state === s && !detail) return;
    this.state = s;
    this.onState(s, detail);
  }

  teardown() {
    clearTimeout(this.retryTimer);
    clearInterval(this.watchTimer);
    if (this.session) {
      // keepalive lets the DELETE leave even when the page is closing.
      fetch(this.session, { method: "DELETE", credentials: "same-origin", keepalive: true }).catch(() => {});
      this.session = null;
    }
    if (this.pc) {
      this.pc.ontrack = this.pc.onconnectionstatechange = null;
      this.pc.close();
      this.pc = null;
    }
  }

  /** reconnect tears down and connects again after ms. */
  reconnect(ms) {
    const gen = ++this.gen;
    this.teardown();
    this.setState(State.reconnecting);
    this.retryTimer = setTimeout(() => gen === this.gen && this.connect(), ms);
  }

  /** retry schedules a reconnect with growing backoff (1 s … 30 s, jittered). */
  retry(state) {
    const gen = ++this.gen;
    this.teardown();
    this.setState(state);
    this.backoff = Math.min(30000, this.backoff ? this.backoff * 2 : 2000);
    const ms = this.backoff * (0.75 + Math.random() * 0.5);
    this.retryTimer = setTimeout(() => gen === this.gen && this.connect(), ms);
  }

  /** fail stops for good with a final state. */
  fail(state) {
    this.gen++;
    this.teardown();
    this.setState(state);
  }

  async connect() {
    const gen = ++this.gen;
    const id = this.pointId;
    // Keep "reconnecting" or "camera offline" on screen while retrying.
    if (this.state === State.idle || this.state === State.live) this.setState(State.connecting);
    // The deployment's STUN/TURN servers: a phone on 4G behind carrier NAT
    // reaches the server only through them. Without the config the
    // connection still works wherever host candidates do.
    let iceServers = [];
    try {
      iceServers = (await uiConfig()).ice_servers || [];
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) return gen === this.gen && this.fail(State.idle);
    }
    if (gen !== this.gen) return;
    const pc = (this.pc = new RTCPeerConnection({ iceServers }));
    pc.addTransceiver("video", { direction: "recvonly" });
    pc.addTransceiver("audio", { direction: "recvonly" });
    pc.ontrack = (ev) => {
      if (gen !== this.gen || ev.track.kind !== "video") return;
      this.video.srcObject = ev.streams[0] || new MediaStream([ev.track]);
      this.video.play().catch(() => {}); // muted autoplay; a refusal shows as no frames
    };
    pc.onconnectionstatechange = () => {
      if (gen !== this.gen) return;
      const s = pc.connectionState;
      if (s === "failed") this.reconnect(500);
      if (s === "disconnected") {
        // ICE often recovers from a short blip by itself; give it a moment.
        setTimeout(() => gen === this.gen && pc.connectionState === "disconnected" && this.reconnect(0), 3000);
      }
    };
    let res;
    try {
      await pc.setLocalDescription(await pc.createOffer());
      await new Promise((resolve) => {
        if (pc.iceGatheringState === "complete") return resolve();
        pc.addEventListener("icegatheringstatechange", () => pc.iceGatheringState === "complete" && resolve());
        setTimeout(resolve, iceGatherMs);
      });
      if (gen !== this.gen) return;
      res = await request(`/api/v1/points/${encodeURIComponent(id)}/whep?profile=${this.profile}`, {
        method: "POST", body: pc.localDescription.sdp, contentType: "application/sdp", timeout: 30000,
      });
      if (gen !== this.gen) {
        const loc = res.headers.get("Location");
        if (loc) fetch(loc, { method: "DELETE", credentials: "same-origin", keepalive: true }).catch(() => {});
        return;
      }
      this.session = res.headers.get("Location");
      this.served = res.headers.get("X-Tianyan-Profile") || this.profile;
      this.video.dataset.session = this.session || ""; // for diagnostics and tests
      await pc.setRemoteDescription({ type: "answer", sdp: await res.text() });
      // The server closing DTLS (session ended, restart) shows here at once,
      // long before a stall would.
      const dtls = pc.getReceivers()[0]?.transport;
      if (dtls) {
        dtls.addEventListener("statechange", () => {
          if (gen === this.gen && (dtls.state === "closed" || dtls.state === "failed")) this.reconnect(500);
        });
      }
    } catch (e) {
      if (gen !== this.gen) return;
      const st = e instanceof ApiError ? e.status : -1;
      if (st === 401) return this.fail(State.idle); // the app shows the login form
      if (st === 403 || st === 404) return this.fail(State.denied);
      if (st === 422 || st === 415) return this.fail(State.codec);
      if (st === 503 && e.code === "agent_offline") return this.retry(State.agentOffline);
      if (st === 503 || st === 504) return this.retry(State.offline);
      return this.retry(State.network);
    }
    this.watch(gen);
  }

  // watch turns decoded frames into "live", and a picture that never comes
  // or stops coming into a reconnect (or a codec error when bytes arrive
  // but nothing decodes) — unless the server says its stream is waiting
  // for the camera, in which case the session is kept and checked again.
  watch(gen) {
    let started = performance.now();
    let last = this.frames(), lastChange = started;
    let asking = false;
    this.watchTimer = setInterval(async () => {
      if (gen !== this.gen || asking) return;
      const now = performance.now(), n = this.frames();
      if (document.hidden) {
        // Browsers may stop decoding muted video in a hidden tab: not a stall.
        lastChange = started = now;
        return;
      }
      if (n > last) {
        last = n;
        lastChange = now;
        this.backoff = 0;
        this.setState(State.live);
        return;
      }
      const stalled = this.state === State.live && now - lastChange > stallMs;
      const noFrames = this.state !== State.live && now - started > noFrameMs;
      if (!stalled && !noFrames) return;
      asking = true;
      const away = await this.sourceAway();
      asking = false;
      if (gen !== this.gen) return;
      if (away) {
        this.setState(away);
        lastChange = started = now;
        return;
      }
      if (stalled) return this.reconnect(0);
      if (noFrames) {
        const got = await this.inboundVideo();
        if (gen !== this.gen) return;
        if (got.bytes > 50000 && got.decoded === 0) return this.fail(State.codec);
        return this.retry(State.network);
      }
    }, 1000);
  }

  // sourceAway asks whether the server's stream for this session is up but
  // waiting for its source, and says who is away: the point's edge agent
  // (its status is stale or agent_offline) or the camera. Any failure to
  // ask counts as no one (""): the caller then reconnects as before.
  async sourceAway() {
    const id = encodeURIComponent(this.pointId);
    try {
      const st = await api(`/api/v1/points/${id}/stats?profile=${this.served}`, { timeout: 5000 });
      if (st?.state !== "waiting_source") return "";
    } catch {
      return "";
    }
    try {
      const p = await api(`/api/v1/points/${id}`, { timeout: 5000 });
      if (agentAway(p?.status?.state)) return State.agentOffline;
    } catch {
      // the stream says it waits: the camera, as far as we know
    }
    return State.offline;
  }

  async inboundVideo() {
    let bytes = 0, decoded = 0;
    try {
      const stats = await this.pc.getStats();
      stats.forEach((r) => {
        if (r.type === "inbound-rtp" && r.kind === "video") {
          bytes += r.bytesReceived || 0;
          decoded += r.framesDecoded || 0;
        }
      });
    } catch {
      // closed meanwhile
    }
    return { bytes, decoded };
  }
}

/** agentAway tells whether a point status means its edge agent is out of touch. */
export function agentAway(status) {
  return status === "stale" || status === "agent_offline";
}

/** stateClass maps a state to a CSS class for badges. */
export function stateClass(s) {
  if (s === State.live) return "ok";
  if (s === State.connecting || s === State.reconnecting) return "busy";
  if (s === State.idle) return "idle";
  return "bad";
}

function saveBlob(blob, name) {
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  const ts = new Date().toISOString().replace(/[:.]/g, "-");
  a.download = `${name || "snapshot"}-${ts}.jpg`;
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 5000);
}

/**
 * snapshot downloads a JPEG of a point. With fromCamera (a point behind an
 * edge agent, and the snapshot grant) it asks the camera itself, at full
 * resolution and audited; otherwise, or when that fails, it draws the
 * frame on screen. Resolves to "camera", "frame" or "" (nothing to save).
 */
export async function snapshot(video, name, { pointId, fromCamera = false } = {}) {
  if (fromCamera && pointId) {
    try {
      const res = await request(`/api/v1/points/${encodeURIComponent(pointId)}/snapshot.jpg`, { timeout: 15000 });
      saveBlob(await res.blob(), name);
      return "camera";
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) return "";
      // Agent offline or camera error: the frame on screen still makes a picture.
    }
  }
  if (!video.videoWidth) return "";
  const c = document.createElement("canvas");
  c.width = video.videoWidth;
  c.height = video.videoHeight;
  c.getContext("2d").drawImage(video, 0, 0);
  const blob = await new Promise((resolve) => c.toBlob(resolve, "image/jpeg", 0.92));
  if (!blob) return "";
  saveBlob(blob, name);
  return "frame";
}
