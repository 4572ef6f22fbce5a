//! Replays every file of the fuzz corpora (`fuzz/corpus/<target>/`) through the fuzz
//! targets' entry points (`fuzz/src/targets.rs`, compiled here as a module), on the stable
//! toolchain and without libFuzzer: what the fuzzers once found stays fixed. Bounded: the
//! corpora are kept small, and the replay stops after `BUDGET` whatever is left.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[path = "../../fuzz/src/targets.rs"]
#[allow(dead_code)]
pub mod targets;

/// CI time this replay may take at most.
const BUDGET: Duration = Duration::from_secs(50);

type Entry = fn(&[u8]);

const TARGETS: &[(&str, Entry)] = &[
    ("ng", targets::ng),
    ("sdp", targets::sdp),
    ("packets", targets::packets),
    ("srtp", targets::srtp),
    ("stun", targets::stun),
    ("rtp_rtcp", targets::rtp_rtcp),
    ("dtls", targets::dtls),
    ("media_decode", targets::media_decode),
    ("li_task", targets::li_task),
    ("x3", targets::x3),
];

fn corpus(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("corpus entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

#[test]
fn every_corpus_file_replays_cleanly() {
    let started = Instant::now();
    let mut replayed = 0;
    for (name, entry) in TARGETS {
        let files = corpus(name);
        assert!(!files.is_empty(), "fuzz/corpus/{name} has no seeds");
        for file in files {
            if started.elapsed() > BUDGET {
                eprintln!("replay budget spent after {replayed} files");
                return;
            }
            let data = std::fs::read(&file).expect("corpus file");
            let result = std::panic::catch_unwind(|| entry(&data));
            assert!(result.is_ok(), "{name}: {} fails", file.display());
            replayed += 1;
        }
    }
    eprintln!(
        "{replayed} corpus files replayed in {:?}",
        started.elapsed()
    );
}
