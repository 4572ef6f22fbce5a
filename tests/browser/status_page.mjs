// Browser test of the ngmedia status page, run by tests/tests/status_page.rs against a live
// daemon with calls sending media:
//   node status_page.mjs URL CALL_ID[,CALL_ID...] SCREENSHOT_PATH [RECORDING_CALL LIVE_RECORDING_CALL]
// Loads the page in headless Chromium (the system's /usr/bin/chromium, driven by
// playwright-core), checks every call appears in the calls table with quality figures and
// that the traffic chart gains points and redraws; with the optional arguments, that the
// recordings section lists RECORDING_CALL's finished recording with a working audio link
// and LIVE_RECORDING_CALL's recording in progress; then saves a screenshot. Exits non-zero
// with a reason on the first failed check. Every wait is bounded.
import { chromium } from "playwright-core";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const [url, callIds, screenshot, recordedCall, liveRecordedCall, mediaId] = process.argv.slice(2);
if (!url || !callIds || !screenshot) {
  console.error("usage: node status_page.mjs URL CALL_ID[,CALL_ID...] SCREENSHOT_PATH");
  process.exit(2);
}
const WAIT_MS = 15000;
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
const profile = mkdtempSync(join(tmpdir(), "ngmedia-chromium-"));

function fail(msg) {
  throw new Error(msg);
}

let browser;
try {
  // A fresh profile directory per run (Playwright passes it as --user-data-dir).
  browser = await chromium.launchPersistentContext(profile, {
    executablePath,
    headless: true,
    timeout: WAIT_MS,
    viewport: { width: 1280, height: 900 },
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
  });
  const page = browser.pages()[0] || await browser.newPage();
  const problems = [];
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error") problems.push(`console: ${m.text()} (${m.location().url})`);
  });
  page.on("response", (r) => { if (r.status() >= 400) problems.push(`HTTP ${r.status()}: ${r.url()}`); });
  page.on("requestfailed", (r) => problems.push(`request failed: ${r.url()}`));
  // Nothing may be loaded from anywhere but the daemon.
  const origin = new URL(url).origin;
  page.on("request", (r) => {
    if (!r.url().startsWith(origin)) problems.push(`foreign request: ${r.url()}`);
  });

  const response = await page.goto(url, { waitUntil: "load", timeout: WAIT_MS });
  if (!response || response.status() !== 200) fail(`GET ${url}: ${response && response.status()}`);
  await page.waitForSelector('#conn[data-state="ok"]', { timeout: WAIT_MS });

  for (const id of callIds.split(",")) {
    const row = page.locator(`#calls tbody tr[data-call-id="${id}"]`).first();
    await row.waitFor({ timeout: WAIT_MS });
    // Quality arrives with media: wait until the call's first stream shows a MOS.
    await page.waitForFunction(
      (callId) => [...document.querySelectorAll("#calls tbody tr")]
        .filter((tr) => tr.dataset.callId === callId)
        .some((tr) => /^\d\.\d\d$/.test(tr.cells[9].textContent)),
      id, { timeout: WAIT_MS },
    );
    const first = await row.locator("td").first().textContent();
    if (first !== id) fail(`first cell of ${id}'s row reads ${JSON.stringify(first)}`);
  }

  // The chart must gain points and show traffic, and its pixels must change over time.
  const chart = page.locator("#chart");
  const points0 = Number(await chart.getAttribute("data-points"));
  const pixels0 = await page.evaluate(() => document.getElementById("chart").toDataURL());
  await page.waitForFunction(
    (p0) => Number(document.getElementById("chart").dataset.points) >= p0 + 2,
    points0, { timeout: WAIT_MS },
  );
  await page.waitForFunction(
    () => Number(document.getElementById("chart").dataset.lastPps) > 0,
    null, { timeout: WAIT_MS },
  );
  const pixels1 = await page.evaluate(() => document.getElementById("chart").toDataURL());
  if (pixels0 === pixels1) fail("chart did not redraw");
  const activeCalls = await page.locator("#calls-active").textContent();
  if (Number(activeCalls) < callIds.split(",").length) fail(`active calls tile reads ${activeCalls}`);

  let recordings = "";
  if (recordedCall) {
    // The finished recording: listed with a WAV link that downloads a RIFF/WAVE file.
    const done = page.locator(`#recordings tbody tr[data-call-id="${recordedCall}"][data-state="complete"]`).first();
    await done.waitFor({ timeout: WAIT_MS });
    const href = await done.locator("a").getAttribute("href");
    if (!href || !/^recordings\/[^/]+\/audio$/.test(href)) fail(`audio link reads ${href}`);
    const wav = await page.evaluate(async (h) => {
      const r = await fetch(h);
      const b = new Uint8Array(await r.arrayBuffer());
      return { status: r.status, type: r.headers.get("content-type"), magic: String.fromCharCode(...b.slice(0, 4), ...b.slice(8, 12)), len: b.length };
    }, href);
    if (wav.status !== 200 || wav.type !== "audio/wav" || wav.magic !== "RIFFWAVE" || wav.len <= 44) {
      fail(`audio download: ${JSON.stringify(wav)}`);
    }
    const live = page.locator(`#recordings tbody tr[data-call-id="${liveRecordedCall}"][data-state="recording"]`).first();
    await live.waitFor({ timeout: WAIT_MS });
    recordings = `, recordings listed (finished ${wav.len} bytes WAV, one in progress)`;
  }

  let media = "";
  if (mediaId) {
    // The uploaded item, with a download link to its audio.
    const row = page.locator(`#media tbody tr[data-media-id="${mediaId}"]`).first();
    await row.waitFor({ timeout: WAIT_MS });
    const href = await row.locator("a").getAttribute("href");
    if (href !== `media/${mediaId}/audio`) fail(`media link reads ${href}`);
    media = ", media library listed";
  }

  await page.screenshot({ path: screenshot, fullPage: true });
  if (problems.length) fail(problems.join("\n"));
  console.log(`ok: ${callIds.split(",").length} call(s) shown, chart ${points0} -> ` +
    `${await chart.getAttribute("data-points")} points${recordings}${media}, screenshot ${screenshot}`);
} catch (e) {
  console.error(`status page check failed: ${e.message}`);
  process.exitCode = 1;
} finally {
  if (browser) await browser.close().catch(() => {});
  rmSync(profile, { recursive: true, force: true });
}
