//! The `sdp-attr` dictionary and the `sdp-attr-add|remove|substitute-<level>-…` flags
//! (rtpengine `ng_sdp_attr_manipulations` and `call_ng_flags_sdp_attr_helper_*`).
//!
//! Dictionary form: `{<level>: {add: [..], remove: [..], substitute: [[from, to], ..]}}`,
//! where a level is `none`/`global` (session) or a media type; a `substitute` entry may
//! also be the string `from>to`. Flag form: `sdp-attr-add-audio-foo`,
//! `sdp-attr-remove-none-quux`, `sdp-attr-substitute-audio-fmtp:101>fmtp:101..0-15`.
//! In every text `--` stands for `=` and `..` for a space, as rtpengine unescapes them.

use ngmedia_engine::core::sdp::AttrEdits;

use super::values::{lossy, normalize};
use super::Fields;
use crate::bencode::Value;

/// rtpengine's escapes: `--` is `=`, `..` is a space (both scanned left to right).
fn unescape(s: &[u8]) -> String {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match (s[i], s.get(i + 1)) {
            (b'-', Some(b'-')) => {
                out.push(b'=');
                i += 2;
            }
            (b'.', Some(b'.')) => {
                out.push(b' ');
                i += 2;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    lossy(&out)
}

/// `from>to` split at the first `>`.
fn pair(s: &[u8]) -> Option<(String, String)> {
    let text = unescape(s);
    let (from, to) = text.split_once('>')?;
    (!from.is_empty()).then(|| (from.to_owned(), to.to_owned()))
}

impl Fields {
    fn sdp_attr_level(&mut self, level: &[u8]) -> Option<&mut AttrEdits> {
        let name = lossy(level);
        let edits = self.oa.sdp_attr.level_mut(&name);
        if edits.is_none() {
            self.invalid.push(format!("sdp-attr level '{name}'"));
        }
        edits
    }

    /// The `sdp-attr` dictionary.
    pub(super) fn sdp_attr(&mut self, raw_key: &[u8], value: &Value<'_>) {
        let Some(levels) = value.as_dict() else {
            self.invalid(raw_key, value);
            return;
        };
        for (level, commands) in levels {
            let Some(commands) = commands.as_dict() else {
                self.invalid
                    .push(format!("sdp-attr.{}: not a dictionary", lossy(level)));
                continue;
            };
            for (command, items) in commands {
                let command = normalize(command);
                let mut bad = Vec::new();
                let Some(edits) = self.sdp_attr_level(level) else {
                    break;
                };
                // A string instead of a list is a comma-separated list, as rtpengine reads it.
                let split: Vec<Value<'_>>;
                let list: &[Value<'_>] = match items {
                    Value::List(l) => l,
                    Value::Bytes(b) => {
                        split = b
                            .split(|&c| c == b',')
                            .filter(|t| !t.is_empty())
                            .map(Value::Bytes)
                            .collect();
                        &split
                    }
                    single => std::slice::from_ref(single),
                };
                for item in list {
                    match (command.as_slice(), item) {
                        (b"add", Value::Bytes(b)) => edits.add.push(unescape(b)),
                        (b"remove", Value::Bytes(b)) => edits.remove.push(unescape(b)),
                        (b"substitute", Value::Bytes(b)) => match pair(b) {
                            Some(p) => edits.substitute.push(p),
                            None => bad.push(lossy(b)),
                        },
                        (b"substitute", Value::List(p)) => match p.as_slice() {
                            [Value::Bytes(from), Value::Bytes(to)] if !from.is_empty() => {
                                edits.substitute.push((unescape(from), unescape(to)))
                            }
                            _ => bad.push("<pair>".into()),
                        },
                        _ => bad.push(format!("{}:<{}>", lossy(&command), kind(item))),
                    }
                }
                self.invalid.extend(
                    bad.into_iter()
                        .map(|b| format!("sdp-attr.{}={b}", lossy(level))),
                );
            }
        }
    }

    /// `sdp-attr-<command>-<level>-<text>` (what follows `sdp-attr-` in `rest`). False when
    /// the command is not one of `add`, `remove`, `substitute`.
    pub(super) fn sdp_attr_flag(&mut self, rest: &[u8]) -> bool {
        let norm = normalize(rest);
        let (command, after) = if norm.starts_with(b"add ") {
            ("add", &rest[4..])
        } else if norm.starts_with(b"remove ") {
            ("remove", &rest[7..])
        } else if norm.starts_with(b"substitute ") {
            ("substitute", &rest[11..])
        } else {
            return false;
        };
        let Some(dash) = after.iter().position(|&b| b == b'-') else {
            self.invalid.push(format!("sdp-attr-{}", lossy(rest)));
            return true;
        };
        let (level, text) = (&after[..dash], &after[dash + 1..]);
        let substitution = if command == "substitute" {
            match pair(text) {
                Some(p) => Some(p),
                None => {
                    self.invalid.push(format!("sdp-attr-{}", lossy(rest)));
                    return true;
                }
            }
        } else {
            None
        };
        let Some(edits) = self.sdp_attr_level(level) else {
            return true;
        };
        match (command, substitution) {
            ("add", _) => edits.add.push(unescape(text)),
            ("remove", _) => edits.remove.push(unescape(text)),
            (_, Some(p)) => edits.substitute.push(p),
            _ => {}
        }
        true
    }
}

fn kind(v: &Value<'_>) -> &'static str {
    match v {
        Value::Bytes(_) => "string",
        Value::Int(_) => "integer",
        Value::List(_) => "list",
        Value::Dict(_) => "dictionary",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        assert_eq!(unescape(b"fmtp:101..0-16"), "fmtp:101 0-16");
        assert_eq!(unescape(b"foo--bar"), "foo=bar");
        assert_eq!(unescape(b"a---b"), "a=-b");
        assert_eq!(unescape(b"x...y"), "x .y");
        assert_eq!(
            pair(b"fmtp:101>fmtp:101..0-15,32,36"),
            Some(("fmtp:101".into(), "fmtp:101 0-15,32,36".into()))
        );
        assert_eq!(pair(b"nothing"), None);
        assert_eq!(pair(b">x"), None);
    }
}
