//! The media library over real HTTP: every accepted format uploads and decodes, the library
//! lists, serves and deletes, bad uploads are refused with the right status and leave
//! nothing on disk, and the library survives a restart.

use std::path::{Path, PathBuf};

use ngmedia_tests::daemon::Daemon;
use ngmedia_tests::http::{request, HttpClient, HttpResponse};

const TOKEN: &str = "moh-test-token";

fn sample(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../samples/media")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn media_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ngmedia-moh-lib-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn upload(
    addr: std::net::SocketAddr,
    name: &str,
    body: &[u8],
    token: Option<&str>,
) -> HttpResponse {
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("Content-Type", "application/octet-stream")];
    if let Some(a) = auth.as_deref() {
        headers.push(("Authorization", a));
    }
    request(addr, "POST", &format!("/media?name={name}"), &headers, body).expect("POST /media")
}

fn files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|r| {
            r.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn every_format_uploads_lists_downloads_and_survives_restart() {
    let dir = media_dir("formats");
    let dir_flag = format!("--media-dir={}", dir.display());
    let token_flag = format!("--http-token={TOKEN}");
    let mut daemon = Daemon::start(&[&dir_flag, &token_flag]);
    let http = HttpClient::new(daemon.http);
    let mut ids = Vec::new();
    for (file, format, rate) in [
        ("speech-2s.wav", "wav", 8000),
        ("speech-2s.flac", "flac", 8000),
        ("speech-2s.ogg", "ogg", 8000),
        ("speech-2s.mp3", "mp3", 16000),
    ] {
        let bytes = sample(file);
        let r = upload(daemon.http, file, &bytes, Some(TOKEN));
        assert_eq!(r.status, 201, "{file}: {}", r.text());
        let item = r.json();
        assert_eq!(item["format"], format, "{file}");
        assert_eq!(item["name"], file);
        assert_eq!(item["sample_rate"], rate, "{file}");
        assert_eq!(item["channels"], 1);
        assert_eq!(item["size"], bytes.len());
        let ms = item["duration_ms"].as_u64().unwrap();
        assert!((1950..=2100).contains(&ms), "{file}: {ms} ms");
        let id = item["id"].as_str().unwrap().to_owned();
        assert_eq!(item["sha256"].as_str().unwrap()[..16], id);
        let got = http.get(&format!("/media/{id}/audio"));
        assert_eq!(got.status, 200);
        assert_eq!(got.body, bytes, "{file} downloads unchanged");
        ids.push(id);
    }
    // The same bytes again: the existing item, 200.
    let again = upload(daemon.http, "dup", &sample("speech-2s.wav"), Some(TOKEN));
    assert_eq!(
        (again.status, again.json()["id"].as_str().unwrap()),
        (200, ids[0].as_str())
    );
    let list = http.get("/media").json();
    assert_eq!(list["count"], 4);

    daemon.terminate(std::time::Duration::from_secs(5));
    let daemon = Daemon::start(&[&dir_flag, &token_flag]);
    let http = HttpClient::with_token(daemon.http, TOKEN);
    let list = http.get("/media").json();
    assert_eq!(list["count"], 4, "the library survives a restart");
    let item = http.get(&format!("/media/{}", ids[2])).json();
    assert_eq!(item["format"], "ogg");
    for id in &ids {
        assert_eq!(http.delete(&format!("/media/{id}")).status, 200);
    }
    assert_eq!(http.get(&format!("/media/{}", ids[0])).status, 404);
    assert!(files(&dir).is_empty(), "{:?}", files(&dir));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_uploads_are_refused_and_leave_nothing() {
    let dir = media_dir("bad");
    let mut daemon = Daemon::start(&[
        &format!("--media-dir={}", dir.display()),
        &format!("--http-token={TOKEN}"),
        "--media-max-bytes=40000",
        "--media-max-seconds=2",
    ]);
    let wav = sample("speech-2s.wav");
    let long = sample("announcement.wav");
    let cases: Vec<(&str, Vec<u8>, Option<&str>, u16)> = vec![
        ("no-token", wav.clone(), None, 401),
        ("wrong-token", wav.clone(), Some("nope"), 401),
        (
            "text",
            b"this is not audio, just text".to_vec(),
            Some(TOKEN),
            415,
        ),
        ("empty", Vec::new(), Some(TOKEN), 400),
        ("truncated", wav[..wav.len() / 2].to_vec(), Some(TOKEN), 422),
        (
            "corrupt-flac",
            {
                let mut f = sample("speech-2s.flac");
                let n = f.len();
                f[200..n]
                    .iter_mut()
                    .for_each(|b| *b = b.wrapping_mul(31).wrapping_add(7));
                f
            },
            Some(TOKEN),
            422,
        ),
        ("oversize", long.clone(), Some(TOKEN), 413),
        ("..%2F..%2Fetc%2Fpasswd", wav.clone(), Some(TOKEN), 400),
        ("sub%2Fdir", wav.clone(), Some(TOKEN), 400),
    ];
    for (name, body, token, status) in cases {
        let r = upload(daemon.http, name, &body, token);
        assert_eq!(r.status, status, "{name}: {}", r.text());
        let err = r.json();
        assert!(
            err["error"].is_string() && err["detail"].is_string(),
            "{name}: {err}"
        );
        assert!(files(&dir).is_empty(), "{name} left {:?}", files(&dir));
    }
    // Too long (3 s > 2 s) but small enough in bytes: 4 kHz.
    let mut tone = sample("hold-tune.wav");
    tone.truncate(44);
    tone[24..28].copy_from_slice(&4000u32.to_le_bytes());
    tone[28..32].copy_from_slice(&8000u32.to_le_bytes());
    let samples = 4000 * 3;
    tone[40..44].copy_from_slice(&(samples as u32 * 2).to_le_bytes());
    tone[4..8].copy_from_slice(&(36 + samples as u32 * 2).to_le_bytes());
    tone.extend(std::iter::repeat_n(0u8, samples * 2));
    let r = upload(daemon.http, "long", &tone, Some(TOKEN));
    assert_eq!(r.status, 422, "{}", r.text());
    assert!(files(&dir).is_empty());
    daemon.terminate(std::time::Duration::from_secs(5));
    let _ = std::fs::remove_dir_all(&dir);
}
