// ngmedia status page: polls the daemon's JSON API (same origin, relative URLs so it also
// works behind a path-prefixing proxy) and renders engine figures, a traffic chart and the
// active calls with their per-stream quality, the recent recordings and the media library. No dependencies, no external resources.
"use strict";

const STATS_EVERY_MS = 1000;
const CALLS_EVERY_MS = 2000;
const RECORDINGS_EVERY_MS = 3000;
const RECORDINGS_SHOWN = 20;
const MEDIA_EVERY_MS = 5000;
const WINDOW_S = 300; // chart span
const LOSS_WINDOW_S = 10; // "Loss (last 10 s)" tile

const $ = (id) => document.getElementById(id);
// Samples {t (s), pps, lost (per s)} derived from consecutive /statistics readings.
const series = [];
let prev = null;

function text(el, value) { el.textContent = value; }

function fmtDuration(s) {
  const d = Math.floor(s / 86400), h = Math.floor(s / 3600) % 24, m = Math.floor(s / 60) % 60;
  if (d) return `${d}d ${h}h`;
  if (h) return `${h}h ${m}m`;
  return `${m}m ${Math.floor(s % 60)}s`;
}

function setConn(ok, msg) {
  const c = $("conn");
  c.dataset.state = ok ? "ok" : "error";
  text(c, msg);
}

async function getJson(path) {
  const r = await fetch(path, { headers: { Accept: "application/json" }, cache: "no-store" });
  if (!r.ok) throw new Error(`${path}: HTTP ${r.status}`);
  return r.json();
}

async function pollStats() {
  try {
    const s = await getJson("statistics");
    const now = performance.now() / 1000;
    const p = s.packets;
    if (prev) {
      const dt = Math.max(now - prev.t, 0.001);
      series.push({
        t: now,
        pps: Math.max(0, (p.rtp_packets - prev.rtp) / dt),
        lost: Math.max(0, (p.rtp_lost - prev.lost) / dt),
      });
      while (series.length && series[0].t < now - WINDOW_S) series.shift();
    }
    prev = { t: now, rtp: p.rtp_packets, lost: p.rtp_lost };
    text($("calls-active"), s.calls.active);
    text($("calls-total"), s.calls.total);
    text($("ports"), `${s.ports.in_use} / ${s.ports.total}`);
    text($("uptime"), fmtDuration(s.engine_uptime_s));
    const last = series[series.length - 1];
    text($("pps"), last ? Math.round(last.pps) : "–");
    const recent = series.filter((x) => x.t >= now - LOSS_WINDOW_S);
    const got = recent.reduce((a, x) => a + x.pps, 0), lost = recent.reduce((a, x) => a + x.lost, 0);
    text($("loss"), got + lost > 0 ? `${(100 * lost / (got + lost)).toFixed(1)} %` : "–");
    renderDrops(p.drops);
    drawChart(now);
    setConn(true, "live");
  } catch (e) {
    setConn(false, `disconnected (${e.message})`);
  }
}

function renderDrops(drops) {
  const body = $("drops").tBodies[0];
  body.replaceChildren();
  for (const [reason, n] of Object.entries(drops)) {
    const tr = body.insertRow();
    text(tr.insertCell(), reason.replace(/_/g, " "));
    const td = tr.insertCell();
    td.className = "num";
    text(td, n);
  }
}

function drawChart(now) {
  const canvas = $("chart");
  const ratio = window.devicePixelRatio || 1;
  const w = canvas.clientWidth || canvas.width, h = canvas.clientHeight || canvas.height;
  if (canvas.width !== Math.round(w * ratio)) { canvas.width = Math.round(w * ratio); canvas.height = Math.round(h * ratio); }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, w, h);
  const left = 48, right = 8, top = 10, bottom = 22;
  const pw = w - left - right, ph = h - top - bottom;
  const max = Math.max(10, ...series.map((x) => Math.max(x.pps, x.lost)));
  const scale = niceCeil(max);
  ctx.font = "11px system-ui, sans-serif";
  ctx.fillStyle = "#6b7687";
  ctx.strokeStyle = "#dde2e8";
  ctx.lineWidth = 1;
  for (let i = 0; i <= 4; i++) {
    const y = top + ph - (ph * i) / 4;
    ctx.beginPath(); ctx.moveTo(left, y); ctx.lineTo(left + pw, y); ctx.stroke();
    ctx.fillText(String(Math.round((scale * i) / 4)), 4, y + 4);
  }
  for (let m = 0; m <= WINDOW_S / 60; m++) {
    const x = left + pw - (pw * m * 60) / WINDOW_S;
    ctx.fillText(m ? `-${m}m` : "now", x - 12, h - 6);
  }
  const xOf = (t) => left + pw - (pw * (now - t)) / WINDOW_S;
  const yOf = (v) => top + ph - (ph * v) / scale;
  for (const [key, color] of [["pps", "#2266cc"], ["lost", "#d33c3c"]]) {
    ctx.strokeStyle = color;
    ctx.lineWidth = 2;
    ctx.beginPath();
    series.forEach((x, i) => (i ? ctx.lineTo(xOf(x.t), yOf(x[key])) : ctx.moveTo(xOf(x.t), yOf(x[key]))));
    ctx.stroke();
  }
  canvas.dataset.points = String(series.length);
  canvas.dataset.lastPps = series.length ? series[series.length - 1].pps.toFixed(1) : "0";
}

function niceCeil(v) {
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

function mosClass(m) { return m >= 4 ? "mos-good" : m >= 3.6 ? "mos-fair" : "mos-poor"; }

async function pollCalls() {
  try {
    const list = await getJson("calls");
    const body = $("calls").tBodies[0];
    body.replaceChildren();
    const nowMs = Date.now();
    text($("calls-count"), list.total > list.count ? `(${list.count} of ${list.total})` : `(${list.count})`);
    $("no-calls").hidden = list.count > 0;
    for (const call of list.calls) {
      let first = true;
      const streams = [];
      for (const leg of call.legs) for (const s of leg.streams) streams.push([leg, s]);
      if (!streams.length) streams.push([{ tag: "" }, null]);
      for (const [leg, s] of streams) {
        const tr = body.insertRow();
        tr.dataset.callId = call.call_id;
        if (first) tr.className = "first";
        const cell = (v, cls) => { const td = tr.insertCell(); if (cls) td.className = cls; text(td, v ?? "–"); return td; };
        const id = cell(first ? call.call_id : "", "call");
        id.title = call.call_id;
        cell(first ? fmtDuration(Math.max(0, nowMs / 1000 - call.created_unix_us / 1e6)) : "");
        cell(leg.tag || "(untagged)");
        cell(s ? `${s.media}/${s.component}` : "");
        cell(s ? s.local : "");
        cell(s ? s.endpoint : "");
        cell(s ? s.packets : "", "num");
        cell(s && s.loss_percent != null ? s.loss_percent.toFixed(1) : null, "num");
        cell(s && s.jitter_ms != null ? s.jitter_ms.toFixed(1) : null, "num");
        const mos = cell(s && s.mos != null ? s.mos.toFixed(2) : null, "num");
        if (s && s.mos != null) mos.classList.add(mosClass(s.mos));
        first = false;
      }
    }
  } catch (e) {
    setConn(false, `disconnected (${e.message})`);
  }
}

// Recent recordings from GET /recordings: those in progress first, then finished ones,
// each finished one linking to its audio download. Hidden when recording is disabled.
async function pollRecordings() {
  try {
    const r = await fetch(`recordings?limit=${RECORDINGS_SHOWN}`, { headers: { Accept: "application/json" }, cache: "no-store" });
    if (r.status === 404) { $("recordings-section").hidden = true; return; }
    if (!r.ok) throw new Error(`recordings: HTTP ${r.status}`);
    const list = await r.json();
    const body = $("recordings").tBodies[0];
    body.replaceChildren();
    text($("recordings-count"), `(${list.count})`);
    $("no-recordings").hidden = list.count > 0;
    for (const rec of list.recordings) {
      const tr = body.insertRow();
      tr.dataset.recordingId = rec.id;
      tr.dataset.callId = rec.call_id;
      tr.dataset.state = rec.state;
      const cell = (v, cls) => { const td = tr.insertCell(); if (cls) td.className = cls; text(td, v ?? "–"); return td; };
      cell(rec.id, "call").title = rec.id;
      cell(rec.call_id, "call").title = rec.call_id;
      cell(rec.state);
      cell(rec.start_ms ? new Date(rec.start_ms).toLocaleTimeString() : null);
      const dur = rec.duration_ms != null ? rec.duration_ms / 1000 : (rec.start_ms ? Math.max(0, Date.now() - rec.start_ms) / 1000 : null);
      cell(dur != null ? fmtDuration(dur) : null, "num");
      const audio = tr.insertCell();
      if (rec.files && rec.files.mix) {
        const a = document.createElement("a");
        a.href = `recordings/${encodeURIComponent(rec.id)}/audio`;
        a.textContent = "WAV";
        a.setAttribute("download", rec.files.mix);
        audio.append(a);
      } else {
        text(audio, "–");
      }
    }
  } catch (e) {
    setConn(false, `disconnected (${e.message})`);
  }
}

// The media library from GET /media (hold music and announcements), each item linking to
// its download. Hidden when the daemon has no library.
async function pollMedia() {
  try {
    const r = await fetch("media", { headers: { Accept: "application/json" }, cache: "no-store" });
    if (r.status === 404) { $("media-section").hidden = true; return; }
    if (!r.ok) throw new Error(`media: HTTP ${r.status}`);
    const list = await r.json();
    const body = $("media").tBodies[0];
    body.replaceChildren();
    text($("media-count"), `(${list.count})`);
    $("no-media").hidden = list.count > 0;
    for (const m of list.media) {
      const tr = body.insertRow();
      tr.dataset.mediaId = m.id;
      const cell = (v, cls) => { const td = tr.insertCell(); if (cls) td.className = cls; text(td, v ?? "–"); return td; };
      cell(m.name);
      cell(m.id, "call").title = m.id;
      cell(m.format);
      cell(fmtDuration(m.duration_ms / 1000), "num");
      cell(`${(m.size / 1024).toFixed(1)} KiB`, "num");
      const a = document.createElement("a");
      a.href = `media/${encodeURIComponent(m.id)}/audio`;
      a.textContent = m.format.toUpperCase();
      a.setAttribute("download", m.name);
      tr.insertCell().append(a);
    }
  } catch (e) {
    setConn(false, `disconnected (${e.message})`);
  }
}

async function init() {
  try {
    const h = await getJson("health");
    text($("version"), `v${h.version}`);
  } catch (_) { /* pollStats reports the connection state */ }
  pollStats();
  pollCalls();
  pollRecordings();
  pollMedia();
  setInterval(pollStats, STATS_EVERY_MS);
  setInterval(pollCalls, CALLS_EVERY_MS);
  setInterval(pollRecordings, RECORDINGS_EVERY_MS);
  setInterval(pollMedia, MEDIA_EVERY_MS);
  window.addEventListener("resize", () => drawChart(performance.now() / 1000));
}

init();
