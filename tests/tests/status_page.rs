//! The status page in a real browser: headless Chromium (Debian's `chromium`) driven by
//! Playwright (`tests/browser/status_page.mjs`, `playwright-core` from `tests/browser/`'s
//! lockfile, no downloaded browser) loads `/` from a daemon with two live calls, and checks
//! that both calls appear with quality figures, that the traffic chart updates, and that the
//! recordings section lists a finished recording (whose audio link downloads a WAV) and
//! one in progress. The screenshot is kept as `target/status-page.png`.
//!
//! Needs `node`, `/usr/bin/chromium` and `npm ci` in `tests/browser` (`.ci/run` does all of
//! that). Without them the test is skipped with a message, except under CI (`CI` set), where
//! a missing tool is a failure.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ngmedia_tests::{dict, wait_for, Daemon, NgClient, TwoPartyCall};

/// Upper bound for the whole browser run (launch, checks, screenshot).
const BROWSER_LIMIT: Duration = Duration::from_secs(60);

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn chromium() -> PathBuf {
    std::env::var_os("CHROMIUM").map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from)
}

/// Why the browser test cannot run here, if it cannot.
fn missing_tools(browser_dir: &Path) -> Option<String> {
    if Command::new("node").arg("--version").output().is_err() {
        return Some("node is not installed".into());
    }
    if !chromium().is_file() {
        return Some(format!(
            "{} is not installed (apt-get install chromium)",
            chromium().display()
        ));
    }
    if !browser_dir
        .join("node_modules/playwright-core/package.json")
        .is_file()
    {
        return Some(format!("run `npm ci` in {}", browser_dir.display()));
    }
    None
}

#[test]
fn status_page_shows_live_calls_and_chart_in_chromium() {
    let root = workspace_root();
    let browser_dir = root.join("tests/browser");
    if let Some(why) = missing_tools(&browser_dir) {
        if std::env::var_os("CI").is_some() {
            panic!("browser test cannot run under CI: {why}");
        }
        eprintln!("SKIPPED status page browser test: {why}");
        return;
    }
    let rec_dir = std::env::temp_dir().join(format!("ngmedia-status-rec-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&rec_dir);
    let media_dir =
        std::env::temp_dir().join(format!("ngmedia-status-media-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&media_dir);
    let daemon = Daemon::start(&[
        &format!("--recording-dir={}", rec_dir.display()),
        &format!("--media-dir={}", media_dir.display()),
    ]);
    // One item in the media library for its section of the page.
    let hold_tune = std::fs::read(root.join("samples/media/hold-tune.wav")).expect("media fixture");
    let uploaded = ngmedia_tests::http::request(
        daemon.http,
        "POST",
        "/media?name=hold-tune.wav",
        &[],
        &hold_tune,
    )
    .expect("upload");
    assert_eq!(uploaded.status, 201, "{}", uploaded.text());
    let media_id = uploaded.json()["id"].as_str().unwrap().to_owned();
    let ng = daemon.client();
    let recording = |call: &TwoPartyCall, command: &str, ng: &NgClient| {
        ng.ok(dict! { "command" => command, "call-id" => call.call_id.as_str(), "from-tag" => call.from_tag.as_str() });
    };
    // A call recorded for half a second and finished before the page loads.
    let mut recorded = TwoPartyCall::setup(&ng, "status-page-recorded");
    recording(&recorded, "start recording", &ng);
    recorded.exchange(25, Duration::from_millis(20));
    recording(&recorded, "stop recording", &ng);
    let http = daemon.http_client();
    wait_for(Duration::from_secs(5), || {
        let list = http.get("/recordings?call_id=status-page-recorded").json();
        (list["recordings"][0]["state"] == "complete").then_some(())
    })
    .expect("the recording is finalized");
    let mut calls = [
        TwoPartyCall::setup(&ng, "status-page-call-1"),
        TwoPartyCall::setup(&ng, "status-page-call-2"),
    ];
    // The first call is being recorded while the page is open.
    recording(&calls[0], "start recording", &ng);
    // Media for the whole browser run: 20 ms packets both ways on both calls, the second
    // call's caller losing every 10th, until the browser is done (bounded by the limit).
    let done = Arc::new(AtomicBool::new(false));
    let media = {
        let done = done.clone();
        std::thread::spawn(move || {
            let started = Instant::now();
            let mut k = 0u32;
            while !done.load(Ordering::Relaxed)
                && started.elapsed() < BROWSER_LIMIT + Duration::from_secs(5)
            {
                for (i, c) in calls.iter_mut().enumerate() {
                    c.b.send_next(c.b_dest);
                    if i == 1 && k % 10 == 5 {
                        c.a.skip();
                    } else {
                        c.a.send_next(c.a_dest);
                    }
                    c.a.drain();
                    c.b.drain();
                }
                k += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };

    let target = root.join("target");
    std::fs::create_dir_all(&target).unwrap();
    let screenshot = target.join("status-page.png");
    let _ = std::fs::remove_file(&screenshot);
    let mut child = Command::new("node")
        .current_dir(&browser_dir)
        .arg("status_page.mjs")
        .arg(format!("http://{}/", daemon.http))
        .arg("status-page-call-1,status-page-call-2")
        .arg(&screenshot)
        .arg("status-page-recorded")
        .arg("status-page-call-1")
        .arg(&media_id)
        .env("CHROMIUM", chromium())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run node");
    let deadline = Instant::now() + BROWSER_LIMIT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    done.store(true, Ordering::Relaxed);
    media.join().unwrap();
    let output = child.wait_with_output().unwrap();
    let (out, err) = (
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    let status =
        status.unwrap_or_else(|| panic!("browser test ran over {BROWSER_LIMIT:?}\n{out}\n{err}"));
    assert!(
        status.success(),
        "browser checks failed ({status}):\n{out}\n{err}"
    );
    assert!(out.starts_with("ok: 2 call(s) shown"), "{out}");
    assert!(out.contains("recordings listed"), "{out}");
    assert!(out.contains("media library listed"), "{out}");
    let _ = std::fs::remove_dir_all(&rec_dir);
    let _ = std::fs::remove_dir_all(&media_dir);
    let png = std::fs::read(&screenshot).expect("screenshot written");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
}
