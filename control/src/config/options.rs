//! The option table: every option ngmedia takes, on the command line and in a configuration
//! file, in one place. `--help`, the command-line parser (`cli`), the file reader (`file`) and
//! the option reference in docs/configuration.md are all made from it or checked against it,
//! so they cannot drift apart.
//!
//! The table holds ngmedia's own options and every option rtpengine (10.5 and current) has, so
//! an rtpengine command line or rtpengine.conf works unchanged. An option either
//! - **acts** (`Action::Set`): its setter parses the value into a [`Layer`] (one layer for the
//!   command line, one for the file; `resolve` merges them), or
//! - is **ignored** (`Action::Ignore`): the value is checked (numbers must be numbers) and the
//!   option is named in one warning at start-up, with the reason ngmedia does not act on it, or
//! - is used **before** the layers exist (`Action::Startup`: config file, version, codecs).
//!
//! To make an ignored rtpengine option act: add a field to [`Layer`], move its `ignored(…)`
//! entry from `ignored.rs` to its group as an `Opt { action: Action::Set(|l, v| …), … }`, then
//! read the field in `resolve`. The file key and the command-line flag then both work. Its help text goes to
//! `--help` and to the option reference of docs/configuration.md, which is rendered from this
//! table (`reference.rs`; a new option is listed under the section that names it there, else
//! under "Other options"): run `NGMEDIA_WRITE_DOCS=1 cargo test -p ngmedia-control
//! configuration_reference` to rewrite the page; the test fails while it is stale.
//!
//! The table is cut by option group, one file each: `process` (start-up, logging), `network`
//! (interfaces, ng listeners, ports), `calls` (call lifetime, workers, fast path, DTLS, load
//! limits), `transcoding` (jitter buffer, DTX, comfort noise, DTMF), `recording` (and
//! forwarding), `li`, `media_library`, `ha` (Redis), `events` (Homer, webhooks, MQTT) and
//! `ignored` (rtpengine's options ngmedia does not act on, with the reasons). This file holds
//! what an option is, the constructors the groups use, and [`all`], the groups in order.
//!
//! Short options are rtpengine's own (its source, which differs from its manual in places:
//! `-T` is `--tos`, `-N` is `--listen-tcp-ng`, `-G` is `--graphite-interval`).

mod calls;
mod events;
mod ha;
mod ignored;
mod li;
mod media_library;
mod network;
mod process;
mod recording;
mod transcoding;

use std::path::PathBuf;

use super::parse::parse_bool;
use super::{invalid, InvalidValue, Layer};

/// Stores one value of an acting option into a layer. Flags get `true`/`false`; options
/// that may repeat get one call per value.
pub(super) type Setter = fn(&mut Layer, &str) -> Result<(), InvalidValue>;

/// What an option takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Value {
    /// Present or not; `true`/`false` in a file.
    Flag,
    /// One value (the placeholder shown in `--help`); given twice, the last one wins.
    One(&'static str),
    /// May be repeated; `;`-separated in an rtpengine.conf, an array in TOML.
    Many(&'static str),
}

#[derive(Debug, Clone, Copy)]
pub(super) enum Action {
    Set(Setter),
    /// Accepted for rtpengine compatibility, not acted on; the text says why.
    Ignore(&'static str),
    /// Read by the daemon itself before configuration is resolved.
    Startup,
}

/// One option.
#[derive(Debug, Clone, Copy)]
pub(super) struct Opt {
    pub long: &'static str,
    pub short: Option<char>,
    /// Other long names for the same option (shown in `--help`).
    pub aliases: &'static [&'static str],
    /// Long names accepted but not shown (misspellings in rtpengine's manual).
    pub hidden_aliases: &'static [&'static str],
    pub value: Value,
    /// Environment variable that supplies the value when the flag is absent.
    pub env: Option<&'static str>,
    pub help: &'static str,
    pub action: Action,
}

impl Opt {
    /// Does `key` (a long option name, as in a file) name this option?
    pub(super) fn is_named(&self, key: &str) -> bool {
        self.long == key || self.aliases.contains(&key) || self.hidden_aliases.contains(&key)
    }

    /// For an ignored option: is the value of the kind rtpengine expects?
    pub(super) fn check_ignored(&self, value: &str) -> Result<(), InvalidValue> {
        let v = value.trim();
        match self.value {
            Value::One("INT") | Value::Many("INT") => v
                .parse::<i64>()
                .map(drop)
                .map_err(|_| invalid("expected a whole number")),
            Value::One("FLOAT") => v
                .parse::<f64>()
                .map(drop)
                .map_err(|_| invalid("expected a number")),
            Value::Flag => parse_bool(v).map(drop),
            _ => Ok(()),
        }
    }
}

/// The start-up remark for ignored options (long names, in table order): grouped by reason.
pub(super) fn ignored_summary(names: &[&'static str]) -> String {
    let mut groups: Vec<(&'static str, Vec<String>)> = Vec::new();
    for name in names {
        let Some(Opt {
            action: Action::Ignore(why),
            ..
        }) = find(name)
        else {
            continue;
        };
        match groups.iter_mut().find(|(w, _)| w == why) {
            Some((_, list)) => list.push(format!("--{name}")),
            None => groups.push((why, vec![format!("--{name}")])),
        }
    }
    let parts: Vec<String> = groups
        .iter()
        .map(|(why, list)| format!("{} ({why})", list.join(", ")))
        .collect();
    parts.join("; ")
}

/// Find an option by long name or alias.
pub(super) fn find(key: &str) -> Option<&'static Opt> {
    all().find(|o| o.is_named(key))
}

/// The option groups, in the order `--help` lists them (ignored rtpengine options last, under
/// their own heading).
static GROUPS: [&[Opt]; 10] = [
    process::OPTIONS,
    network::OPTIONS,
    calls::OPTIONS,
    transcoding::OPTIONS,
    recording::OPTIONS,
    li::OPTIONS,
    media_library::OPTIONS,
    ha::OPTIONS,
    events::OPTIONS,
    ignored::OPTIONS,
];

/// Every option, ngmedia's and rtpengine's, group by group.
pub(super) fn all() -> impl Iterator<Item = &'static Opt> {
    GROUPS.iter().flat_map(|group| group.iter())
}

const fn opt(
    long: &'static str,
    short: Option<char>,
    value: Value,
    help: &'static str,
    set: Setter,
) -> Opt {
    Opt {
        long,
        short,
        aliases: &[],
        hidden_aliases: &[],
        value,
        env: None,
        help,
        action: Action::Set(set),
    }
}

const fn ignored(long: &'static str, short: Option<char>, value: Value, why: &'static str) -> Opt {
    Opt {
        long,
        short,
        aliases: &[],
        hidden_aliases: &[],
        value,
        env: None,
        help: why,
        action: Action::Ignore(why),
    }
}

const fn with_env(mut o: Opt, env: &'static str) -> Opt {
    o.env = Some(env);
    o
}

const fn with_hidden(mut o: Opt, names: &'static [&'static str]) -> Opt {
    o.hidden_aliases = names;
    o
}

/// `IP:PORT` or `HOST:PORT` (resolved once, at start), with a port.
fn parse_socket_addr(v: &str) -> Result<std::net::SocketAddr, InvalidValue> {
    use std::net::ToSocketAddrs;
    v.trim()
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .filter(|a| a.port() != 0)
        .ok_or_else(|| invalid("expected IP:PORT or HOST:PORT"))
}

fn nonempty_path(v: &str) -> Result<PathBuf, InvalidValue> {
    if v.is_empty() {
        Err(invalid("empty file or folder name"))
    } else {
        Ok(PathBuf::from(v))
    }
}

/// Empty means "not set" (the sample files list such keys with empty values).
fn optional_path(v: &str) -> Option<PathBuf> {
    (!v.is_empty()).then(|| PathBuf::from(v))
}
