// A real WebRTC call through ngmedia, run by tests/browser/webrtc_call.sh inside a network
// namespace that has only `lo`:
//   node webrtc_call.mjs NG_HOST:PORT OUT_DIR [plain|sdes]
// Headless Chromium (the system's /usr/bin/chromium, driven by playwright-core) opens a page
// from a tiny local HTTP server, offers an audio call (UDP/TLS/RTP/SAVPF: ICE, DTLS-SRTP,
// rtcp-mux); this script plays the SIP proxy: it passes the offer through ngmedia over ng
// (`transport-protocol: RTP/AVP`, as Kamailio does towards a plain phone) to a plain RTP/AVP
// endpoint (a UDP socket here), whose answer goes back through ngmedia to the browser. Then
// media must flow both ways: the browser's getStats() shows inbound RTP and the plain
// endpoint receives RTP. Opus on both sides. Saves getStats JSON and a screenshot in OUT_DIR.
// Mode `sdes`: the callee is an SDES-SRTP desk phone instead (written here on node:crypto,
// AES_CM_128_HMAC_SHA1_80, RFC 3711), and the offer carries what Kamailio sends towards one:
// `transport-protocol: RTP/SAVP`, `ICE: remove`, `DTLS: off`, `rtcp-mux: [demux]`. Those flags
// name the phone's side, so the browser must still get DTLS (fingerprint, a=setup), ICE and
// rtcp-mux in its answer, and media must flow both ways DTLS-SRTP <-> SDES-SRTP.
// Every wait is bounded; exits non-zero with a reason on the first failed check.
import { chromium } from "playwright-core";
import { createServer } from "node:http";
import { createSocket } from "node:dgram";
import { createCipheriv, createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const [ngAddr, outDir, mode = "plain"] = process.argv.slice(2);
if (!ngAddr || !outDir || !["plain", "sdes"].includes(mode)) {
  console.error("usage: node webrtc_call.mjs NG_HOST:PORT OUT_DIR [plain|sdes]");
  process.exit(2);
}
const sdes = mode === "sdes";
const [ngHost, ngPort] = [ngAddr.slice(0, ngAddr.lastIndexOf(":")), Number(ngAddr.slice(ngAddr.lastIndexOf(":") + 1))];
const WAIT_MS = 20000;
const WANT_PACKETS = 25;
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
mkdirSync(outDir, { recursive: true });
const profile = mkdtempSync(join(tmpdir(), "ngmedia-webrtc-"));

function fail(msg) {
  throw new Error(msg);
}

// ---- bencode (just what ng needs) ----
function bencode(v) {
  if (typeof v === "number") return Buffer.from(`i${v}e`);
  if (typeof v === "string" || Buffer.isBuffer(v)) {
    const b = Buffer.isBuffer(v) ? v : Buffer.from(v);
    return Buffer.concat([Buffer.from(`${b.length}:`), b]);
  }
  if (Array.isArray(v)) return Buffer.concat([Buffer.from("l"), ...v.map(bencode), Buffer.from("e")]);
  const keys = Object.keys(v).sort();
  return Buffer.concat([Buffer.from("d"), ...keys.flatMap((k) => [bencode(k), bencode(v[k])]), Buffer.from("e")]);
}

function bdecode(buf) {
  let i = 0;
  function item() {
    const c = String.fromCharCode(buf[i]);
    if (c === "i") {
      const end = buf.indexOf(0x65, i);
      const n = Number(buf.subarray(i + 1, end).toString());
      i = end + 1;
      return n;
    }
    if (c === "l" || c === "d") {
      i++;
      const list = [];
      while (buf[i] !== 0x65) list.push(item());
      i++;
      if (c === "l") return list;
      const o = {};
      for (let k = 0; k < list.length; k += 2) o[list[k]] = list[k + 1];
      return o;
    }
    const colon = buf.indexOf(0x3a, i);
    const len = Number(buf.subarray(i, colon).toString());
    const s = buf.subarray(colon + 1, colon + 1 + len).toString();
    i = colon + 1 + len;
    return s;
  }
  return item();
}

const ng = createSocket("udp4");
let cookieN = 0;
function ngRequest(body) {
  const cookie = `webrtc${process.pid}_${++cookieN}`;
  const msg = Buffer.concat([Buffer.from(`${cookie} `), bencode(body)]);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { ng.off("message", onMsg); reject(new Error(`ng ${body.command}: no reply`)); }, 5000);
    function onMsg(data) {
      const text = data.toString("latin1");
      if (!text.startsWith(`${cookie} `)) return;
      clearTimeout(timer);
      ng.off("message", onMsg);
      const reply = bdecode(Buffer.from(data.subarray(cookie.length + 1)));
      if (reply.result !== "ok") reject(new Error(`ng ${body.command}: ${JSON.stringify(reply)}`));
      else resolve(reply);
    }
    ng.on("message", onMsg);
    ng.send(msg, ngPort, ngHost);
  });
}

// ---- SRTP for the desk phone (RFC 3711, AES_CM_128_HMAC_SHA1_80, no MKI, ROC tracked) ----
function aesCm(key, iv, data) {
  const c = createCipheriv("aes-128-ctr", key, iv);
  return Buffer.concat([c.update(data), c.final()]);
}
// §4.3.1 key derivation, key derivation rate 0: the label goes into byte 7 of the salt.
function srtpContext(inline) {
  const km = Buffer.from(inline, "base64");
  if (km.length !== 30) fail(`bad inline key length ${km.length}`);
  const [master, salt] = [km.subarray(0, 16), km.subarray(16, 30)];
  const derive = (label, len) => {
    const iv = Buffer.concat([salt, Buffer.alloc(2)]);
    iv[7] ^= label;
    return aesCm(master, iv, Buffer.alloc(len));
  };
  return { key: derive(0, 16), auth: derive(1, 20), salt: derive(2, 14), roc: 0, lastSeq: null };
}
function srtpIv(ctx, ssrc, roc, seq) {
  const iv = Buffer.concat([ctx.salt, Buffer.alloc(2)]);
  const x = Buffer.alloc(16);
  x.writeUInt32BE(ssrc, 4); x.writeUInt32BE(roc, 8); x.writeUInt16BE(seq, 12);
  for (let i = 0; i < 16; i++) iv[i] ^= x[i];
  return iv;
}
function srtpTag(ctx, authenticated, roc) {
  const r = Buffer.alloc(4); r.writeUInt32BE(roc >>> 0);
  return createHmac("sha1", ctx.auth).update(authenticated).update(r).digest().subarray(0, 10);
}
function rtpHeaderLen(p) {
  let n = 12 + 4 * (p[0] & 0x0f);
  if (p[0] & 0x10) n += 4 + 4 * p.readUInt16BE(n + 2);
  return n;
}
function srtpProtect(ctx, plain) {
  const seq = plain.readUInt16BE(2), ssrc = plain.readUInt32BE(8), hl = rtpHeaderLen(plain);
  if (ctx.lastSeq !== null && seq < ctx.lastSeq && ctx.lastSeq - seq > 0x8000) ctx.roc++;
  ctx.lastSeq = seq;
  const body = Buffer.concat([plain.subarray(0, hl), aesCm(ctx.key, srtpIv(ctx, ssrc, ctx.roc, seq), plain.subarray(hl))]);
  return Buffer.concat([body, srtpTag(ctx, body, ctx.roc)]);
}
// The plaintext, or null when the packet does not authenticate (tries this ROC and the next).
function srtpUnprotect(ctx, pkt) {
  if (pkt.length < 12 + 10) return null;
  const body = pkt.subarray(0, pkt.length - 10), tag = pkt.subarray(pkt.length - 10);
  const seq = pkt.readUInt16BE(2), ssrc = pkt.readUInt32BE(8), hl = rtpHeaderLen(pkt);
  for (const roc of [ctx.roc, ctx.roc + 1]) {
    if (!timingSafeEqual(srtpTag(ctx, body, roc), tag)) continue;
    ctx.roc = roc;
    return Buffer.concat([body.subarray(0, hl), aesCm(ctx.key, srtpIv(ctx, ssrc, roc, seq), body.subarray(hl))]);
  }
  return null;
}
// The phone's own key, and the engine's key for what it sends to the phone (from the offer).
const phoneInline = randomBytes(30).toString("base64");
const phoneTx = srtpContext(phoneInline);
let phoneRx = null;
let phoneRejected = 0;

// ---- the plain RTP/AVP (or SDES RTP/SAVP) endpoint ----
const plain = createSocket("udp4");
await new Promise((r) => plain.bind(0, "127.0.0.1", r));
const plainPort = plain.address().port;
let plainReceived = 0;
let plainFrom = null;
plain.on("message", (data, rinfo) => {
  // RTP version 2, not RTCP (RFC 5761 demux).
  if (data.length >= 12 && data[0] >> 6 === 2 && !(data[1] >= 192 && data[1] <= 223)) {
    if (sdes && (!phoneRx || !srtpUnprotect(phoneRx, data))) {
      phoneRejected++;
      return;
    }
    plainReceived++;
    plainFrom = `${rinfo.address}:${rinfo.port}`;
  }
});

// ---- the page ----
const page_html = `<!doctype html><html><head><title>ngmedia WebRTC call</title></head>
<body><h1>ngmedia WebRTC call</h1><pre id="state">starting</pre></body></html>`;
const http = createServer((req, res) => {
  res.writeHead(200, { "content-type": "text/html" });
  res.end(page_html);
});
await new Promise((r) => http.listen(0, "127.0.0.1", r));
const pageUrl = `http://127.0.0.1:${http.address().port}/`;

function sdpField(sdp, re) {
  const m = sdp.match(re);
  if (!m) fail(`no ${re} in SDP:\n${sdp}`);
  return m[1];
}

let browser;
let sender;
try {
  browser = await chromium.launchPersistentContext(profile, {
    executablePath,
    headless: true,
    timeout: WAIT_MS,
    viewport: { width: 900, height: 600 },
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
      "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
      // Only `lo` exists in the namespace; WebRTC ignores loopback networks unless told.
      "--allow-loopback-in-peer-connection",
    ],
  });
  const page = browser.pages()[0] || await browser.newPage();
  const problems = [];
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  await page.goto(pageUrl, { waitUntil: "load", timeout: WAIT_MS });

  // The browser's offer, complete with candidates (no trickle).
  const offerSdp = await page.evaluate(async (waitMs) => {
    const pc = new RTCPeerConnection({ iceServers: [] });
    window.pc = pc;
    const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    for (const t of stream.getTracks()) pc.addTrack(t, stream);
    await pc.setLocalDescription(await pc.createOffer());
    await new Promise((resolve) => {
      if (pc.iceGatheringState === "complete") return resolve();
      const t = setTimeout(resolve, waitMs);
      pc.addEventListener("icegatheringstatechange", () => {
        if (pc.iceGatheringState === "complete") { clearTimeout(t); resolve(); }
      });
    });
    document.getElementById("state").textContent = "offered";
    return pc.localDescription.sdp;
  }, 5000);
  writeFileSync(join(outDir, "browser-offer.sdp"), offerSdp);

  const callId = `webrtc-${process.pid}`;
  const offerFlags = sdes
    ? { "transport-protocol": "RTP/SAVP", ICE: "remove", DTLS: "off", "rtcp-mux": ["demux"] }
    : { "transport-protocol": "RTP/AVP", ICE: "remove", "rtcp-mux": ["demux"] };
  const offer = await ngRequest({
    command: "offer", "call-id": callId, "from-tag": "browser", sdp: offerSdp,
    ...offerFlags, flags: ["trust-address"], replace: ["origin"],
  });
  const plainOffer = offer.sdp;
  writeFileSync(join(outDir, "plain-offer.sdp"), plainOffer);
  const wantProto = sdes ? "RTP/SAVP" : "RTP/AVP";
  if (!new RegExp(`m=audio \\d+ ${wantProto} `).test(plainOffer)) fail(`callee did not get ${wantProto}:\n${plainOffer}`);
  for (const bad of ["a=fingerprint", "a=setup", "a=ice-", "a=candidate", ...(sdes ? [] : ["a=crypto"])]) {
    if (plainOffer.includes(bad)) fail(`callee got ${bad}:\n${plainOffer}`);
  }
  let cryptoAnswer = "";
  if (sdes) {
    const m = plainOffer.match(/a=crypto:(\d+) AES_CM_128_HMAC_SHA1_80 inline:([A-Za-z0-9+\/=]+)/);
    if (!m) fail(`no AES_CM_128_HMAC_SHA1_80 a=crypto offered to the phone:\n${plainOffer}`);
    phoneRx = srtpContext(m[2]);
    cryptoAnswer = `a=crypto:${m[1]} AES_CM_128_HMAC_SHA1_80 inline:${phoneInline}`;
  }
  const enginePort = Number(sdpField(plainOffer, /m=audio (\d+) /));
  const engineAddr = sdpField(plainOffer, /c=IN IP4 ([0-9.]+)/);
  const opusPt = Number(sdpField(plainOffer, /a=rtpmap:(\d+) opus\/48000/i));

  const plainAnswer = [
    "v=0", "o=- 1 1 IN IP4 127.0.0.1", "s=-", "c=IN IP4 127.0.0.1", "t=0 0",
    `m=audio ${plainPort} ${wantProto} ${opusPt}`, `a=rtpmap:${opusPt} opus/48000/2`,
    "a=sendrecv", ...(sdes ? [cryptoAnswer] : []), "",
  ].join("\r\n");
  // With the phone, the answer repeats DTLS=off and rtcp-mux demux, as Kamailio configurations
  // often do: neither may take DTLS or rtcp-mux away from the browser.
  const answer = await ngRequest({
    command: "answer", "call-id": callId, "from-tag": "browser", "to-tag": "plain",
    sdp: plainAnswer, flags: ["trust-address"], replace: ["origin"],
    ...(sdes ? { DTLS: "off", "rtcp-mux": ["demux"] } : {}),
  });
  writeFileSync(join(outDir, "browser-answer.sdp"), answer.sdp);
  for (const want of ["a=fingerprint:", "a=setup:", "a=ice-ufrag:", "a=rtcp-mux"]) {
    if (!answer.sdp.includes(want)) fail(`browser answer lacks ${want}:\n${answer.sdp}`);
  }
  await page.evaluate(async (sdp) => {
    await window.pc.setRemoteDescription({ type: "answer", sdp });
    document.getElementById("state").textContent = "answered";
  }, answer.sdp);

  // The plain endpoint talks: Opus silence frames (TOC 0xf8: CELT FB 20 ms, mono), 20 ms apart.
  let seq = 1000, ts = 160000;
  const ssrc = 0x4e474d31;
  sender = setInterval(() => {
    const pkt = Buffer.alloc(12 + 3);
    pkt[0] = 0x80; pkt[1] = opusPt;
    pkt.writeUInt16BE(seq & 0xffff, 2); pkt.writeUInt32BE(ts >>> 0, 4); pkt.writeUInt32BE(ssrc, 8);
    pkt[12] = 0xf8; pkt[13] = 0xff; pkt[14] = 0xfe;
    seq++; ts += 960;
    plain.send(sdes ? srtpProtect(phoneTx, pkt) : pkt, enginePort, engineAddr);
  }, 20);

  // Wait (bounded) for media both ways.
  const deadline = Date.now() + WAIT_MS;
  let stats = null;
  for (;;) {
    stats = await page.evaluate(async () => {
      const out = {};
      (await window.pc.getStats()).forEach((s) => { out[s.id] = s; });
      const inbound = Object.values(out).find((s) => s.type === "inbound-rtp" && s.kind === "audio");
      const outbound = Object.values(out).find((s) => s.type === "outbound-rtp" && s.kind === "audio");
      const transport = Object.values(out).find((s) => s.type === "transport");
      document.getElementById("state").textContent =
        `connection ${window.pc.connectionState}, dtls ${transport && transport.dtlsState}, ` +
        `received ${inbound ? inbound.packetsReceived : 0}, sent ${outbound ? outbound.packetsSent : 0}`;
      return { connectionState: window.pc.connectionState, inbound, outbound, transport, all: out };
    });
    const inPackets = stats.inbound ? stats.inbound.packetsReceived : 0;
    if (inPackets >= WANT_PACKETS && plainReceived >= WANT_PACKETS) break;
    if (Date.now() > deadline) {
      writeFileSync(join(outDir, "getstats.json"), JSON.stringify(stats, null, 2));
      fail(`media did not flow both ways in ${WAIT_MS} ms: browser received ${inPackets}, ` +
        `plain endpoint received ${plainReceived} (${phoneRejected} not authenticated), connection ${stats.connectionState}, ` +
        `dtls ${stats.transport && stats.transport.dtlsState}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  writeFileSync(join(outDir, "getstats.json"), JSON.stringify(stats, null, 2));
  await page.screenshot({ path: join(outDir, "webrtc-call.png") });
  if (stats.transport && stats.transport.dtlsState !== "connected") fail(`dtlsState ${stats.transport.dtlsState}`);
  if (problems.length) fail(problems.join("\n"));
  await ngRequest({ command: "delete", "call-id": callId, "from-tag": "browser" });
  if (sdes && phoneRejected > 0) fail(`${phoneRejected} packets to the phone did not authenticate`);
  console.log(`ok (${mode}): browser received ${stats.inbound.packetsReceived} RTP packets ` +
    `(${stats.inbound.bytesReceived} bytes), plain endpoint received ${plainReceived} from ${plainFrom}; ` +
    `connection ${stats.connectionState}, SRTP cipher ${stats.transport && stats.transport.srtpCipher}`);
} catch (e) {
  console.error(`webrtc call failed: ${e.message}`);
  process.exitCode = 1;
} finally {
  if (sender) clearInterval(sender);
  if (browser) await browser.close().catch(() => {});
  rmSync(profile, { recursive: true, force: true });
  ng.close();
  plain.close();
  http.close();
}
