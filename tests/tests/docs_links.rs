//! The documentation's links: every relative link in README.md and docs/*.md names a file
//! that exists and, with a `#fragment`, a heading of that file (GitHub's anchor rules), and
//! every page of docs/ is reachable from the README's map.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate sits in the workspace")
        .to_path_buf()
}

/// The Markdown files the check covers: README.md and every `.md` under docs/.
fn pages(root: &Path) -> Vec<PathBuf> {
    let mut out = vec![root.join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .expect("docs/ exists")
        .map(|e| e.expect("docs/ entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    out.extend(docs);
    out
}

/// The lines of `text` outside fenced code blocks, with their line numbers.
fn prose(text: &str) -> Vec<(usize, &str)> {
    let mut fenced = false;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if !fenced {
            out.push((i + 1, line));
        }
    }
    out
}

/// `line` without its inline code spans (a link inside backticks is not a link).
fn without_code(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut in_code = false;
    for c in line.chars() {
        if c == '`' {
            in_code = !in_code;
            out.push(' ');
        } else if !in_code {
            out.push(c);
        }
    }
    out
}

/// The targets of the inline links `[text](target)` of one line.
fn link_targets(line: &str) -> Vec<String> {
    let line = without_code(line);
    let mut out = Vec::new();
    let mut rest = line.as_str();
    while let Some(at) = rest.find("](") {
        let after = &rest[at + 2..];
        match after.find(')') {
            Some(end) => {
                out.push(after[..end].trim().to_owned());
                rest = &after[end..];
            }
            None => break,
        }
    }
    out
}

/// GitHub's anchor for a heading: lower case, everything but letters, digits, spaces, `-` and
/// `_` removed, spaces turned into `-`.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .chars()
        .filter_map(|c| {
            if c == ' ' {
                Some('-')
            } else if c.is_alphanumeric() || c == '-' || c == '_' {
                Some(c)
            } else {
                None
            }
        })
        .flat_map(char::to_lowercase)
        .collect()
}

/// The anchors of a Markdown file's headings; a repeated heading gets `-1`, `-2`, ….
fn anchors(text: &str) -> HashSet<String> {
    let mut out = HashSet::new();
    for (_, line) in prose(text) {
        let hashes = line.bytes().take_while(|&b| b == b'#').count();
        if !(1..=6).contains(&hashes) || line.as_bytes().get(hashes) != Some(&b' ') {
            continue;
        }
        let base = slug(&line[hashes..]);
        let mut anchor = base.clone();
        let mut n = 0;
        while out.contains(&anchor) {
            n += 1;
            anchor = format!("{base}-{n}");
        }
        out.insert(anchor);
    }
    out
}

/// Every broken link of `page`, as `file:line: target (why)`.
fn broken_links(root: &Path, page: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(page).expect("page readable");
    let dir = page.parent().expect("a page is in a folder");
    let name = page
        .strip_prefix(root)
        .unwrap_or(page)
        .display()
        .to_string();
    let mut broken = Vec::new();
    for (n, line) in prose(&text) {
        for target in link_targets(line) {
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let (file, fragment) = match target.split_once('#') {
                Some((f, a)) => (f, Some(a)),
                None => (target.as_str(), None),
            };
            let path = if file.is_empty() {
                page.to_path_buf()
            } else {
                dir.join(file)
            };
            if !path.exists() {
                broken.push(format!("{name}:{n}: {target} (no such file)"));
                continue;
            }
            if let Some(fragment) = fragment {
                let is_md = path.extension().is_some_and(|e| e == "md");
                let target_text = std::fs::read_to_string(&path).unwrap_or_default();
                if !is_md || !anchors(&target_text).contains(fragment) {
                    broken.push(format!("{name}:{n}: {target} (no such heading)"));
                }
            }
        }
    }
    broken
}

#[test]
fn slugs_follow_github() {
    assert_eq!(
        slug(" Forked calls (`via-branch`)"),
        "forked-calls-via-branch"
    );
    assert_eq!(
        slug(" Subscriptions (publish / subscribe)"),
        "subscriptions-publish--subscribe"
    );
    assert_eq!(slug(" SRTP↔RTP relay"), "srtprtp-relay");
    assert_eq!(slug(" G.722"), "g722");
    let a = anchors("# A\n\n```\n# not a heading\n```\n## A\n#nospace\n");
    assert_eq!(a, HashSet::from(["a".to_owned(), "a-1".to_owned()]));
    assert_eq!(
        link_targets("see [x](a.md#b) and `[y](not-a-link)`, [z](c.md)"),
        ["a.md#b", "c.md"]
    );
}

#[test]
fn every_relative_link_resolves() {
    let root = repo_root();
    let broken: Vec<String> = pages(&root)
        .iter()
        .flat_map(|p| broken_links(&root, p))
        .collect();
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn readme_maps_every_page_of_docs() {
    let root = repo_root();
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    let linked: HashSet<String> = prose(&readme)
        .into_iter()
        .flat_map(|(_, l)| link_targets(l))
        .map(|t| t.split('#').next().unwrap_or_default().to_owned())
        .collect();
    let missing: Vec<String> = pages(&root)
        .iter()
        .skip(1)
        .map(|p| format!("docs/{}", p.file_name().unwrap().to_string_lossy()))
        .filter(|p| !linked.contains(p))
        .collect();
    assert!(missing.is_empty(), "not in the README's map: {missing:?}");
}
