//! The list of accepted-but-not-acted-on keys, flags and values in docs/ng-reference.md is
//! checked against the parser both ways: each entry of the page still comes back as not
//! supported, and each entry of the parser's own lists is on the page.

use super::fields::UNSUPPORTED_KEYS;
use super::flags::{UNSUPPORTED_FLAGS, UNSUPPORTED_FLAG_PREFIXES};
use super::{decode_bencode, normalize, parse_request};

const BEGIN: &str = "<!-- BEGIN accepted, not acted on -->";
const END: &str = "<!-- END accepted, not acted on -->";

/// The backticked entries of each `- Kind: …` item of the page's list.
fn inventory() -> Vec<(String, Vec<String>)> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/ng-reference.md");
    let page = std::fs::read_to_string(&path).expect("docs/ng-reference.md");
    let block = page
        .split_once(BEGIN)
        .and_then(|(_, rest)| rest.split_once(END))
        .map(|(block, _)| block)
        .expect("docs/ng-reference.md has the list between its BEGIN and END lines");
    let mut items: Vec<(String, String)> = Vec::new();
    for line in block.lines() {
        match line.strip_prefix("- ") {
            Some(item) => {
                let (kind, rest) = item.split_once(':').expect("`- Kind: …` items");
                items.push((kind.to_owned(), rest.to_owned()));
            }
            None => {
                if let Some(last) = items.last_mut() {
                    last.1.push(' ');
                    last.1.push_str(line);
                }
            }
        }
    }
    items
        .into_iter()
        .map(|(kind, text)| {
            let entries = text
                .split('`')
                .skip(1)
                .step_by(2)
                .map(str::to_owned)
                .collect();
            (kind, entries)
        })
        .collect()
}

fn entries(kind: &str) -> Vec<String> {
    inventory()
        .into_iter()
        .find(|(k, _)| k == kind)
        .map(|(_, e)| e)
        .unwrap_or_else(|| panic!("the list has no `- {kind}:` item"))
}

/// What the parser reports as not supported for an offer carrying `token` in `rtpp-flags`.
fn unsupported(token: &str) -> Vec<String> {
    let mut body = Vec::new();
    crate::bencode::Encoder::new(&mut body).dict(|d| {
        d.str("command", "offer")
            .str("call-id", "c")
            .str("from-tag", "a")
            .str("sdp", ngmedia_test_support::sdp_fixture!("minimal-audio"))
            .str("rtpp-flags", token);
    });
    parse_request(&decode_bencode(&body).expect("bencode"))
        .expect("the offer parses")
        .unsupported
}

/// The page's `…` stands for any value or suffix.
fn sample(entry: &str) -> String {
    entry.replace('…', "x")
}

#[test]
fn every_listed_entry_is_still_not_acted_on() {
    let mut acted = Vec::new();
    for kind in ["Keys", "Flags", "Flag families", "Values"] {
        for entry in entries(kind) {
            if unsupported(&sample(&entry)).is_empty() {
                acted.push(entry);
            }
        }
    }
    assert!(
        acted.is_empty(),
        "docs/ng-reference.md lists as not acted on what the parser now takes: {acted:?}"
    );
}

#[test]
fn the_parsers_lists_are_on_the_page() {
    let norm = |s: &str| normalize(s.as_bytes());
    let keys: Vec<Vec<u8>> = entries("Keys")
        .iter()
        .map(|e| norm(e.trim_end_matches("=…")))
        .collect();
    let flags: Vec<Vec<u8>> = entries("Flags").iter().map(|e| norm(e)).collect();
    let families: Vec<Vec<u8>> = entries("Flag families")
        .iter()
        .map(|e| norm(e.trim_end_matches('…')))
        .collect();
    let missing: Vec<String> = UNSUPPORTED_KEYS
        .iter()
        .filter(|k| !keys.contains(&k.to_vec()))
        .chain(
            UNSUPPORTED_FLAGS
                .iter()
                .filter(|f| !flags.contains(&f.to_vec())),
        )
        .chain(
            UNSUPPORTED_FLAG_PREFIXES
                .iter()
                .filter(|p| !families.contains(&p.to_vec())),
        )
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .collect();
    assert!(
        missing.is_empty(),
        "not listed in docs/ng-reference.md (Accepted, not acted on): {missing:?}"
    );
}
