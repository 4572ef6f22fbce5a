//! From datagram to typed engine request (rtpengine `control_ng.c` framing and
//! `call_interfaces.c` `call_ng_process_flags`).
//!
//! Kamailio and other clients spell keys and flags in several ways (`call-id`, `call id`,
//! `call_id`; `trust-address`, `trust address`; `SIP-source-address`), so every key and flag
//! is compared in a normal form: ASCII lowercase with `-` and `_` read as a space. The
//! normal form is byte-for-byte the same length as the original, so a prefix flag such as
//! `codec-strip-PCMU` or `SDES-no-AES_CM_128_HMAC_SHA1_80` is recognised on its normalised
//! prefix while its argument is kept verbatim.
//!
//! Nothing here rejects a request for an unknown key, flag or value: those are collected in
//! [`NgRequest`] so the server can log them, as rtpengine does. Only a missing command or a
//! missing required key is an error.
//!
//! Split by concern: `framing` (datagram, encodings, JSON to bencode), `values` (value
//! readers shared by every key), `fields` (the key dispatch into `Fields`) and `flags`
//! (the `flags` list and the offer/answer option lists); this module holds the command types
//! and builds each command from the collected fields.

mod fields;
mod flags;
mod framing;
mod rtpp;
mod sdp_attr;
mod values;

use std::time::Duration;

use ngmedia_engine::core::dtmf_security::DtmfTrigger;
use ngmedia_engine::core::media_control::BlockDtmf;
use ngmedia_engine::core::request::{
    BlockDtmfOptions, ControlAction, ControlTarget, Delete, FlowSet, List, MediaControlRequest,
    MediaSource, OfferAnswer, PartySelector, PlayDtmf, PlayMedia, Query, Recording,
    RecordingAction, StopMedia,
};

use super::NgError;
use crate::bencode::Value;
use crate::call_control::Forwarding;

pub(crate) use framing::{
    decode_bencode, detect_encoding, json_to_value, parse_json, split_datagram, Encoding,
};
pub(crate) use values::normalize;

/// Every ng command rtpengine knows (rtpengine `enum call_opmode` / `ng_command_strings`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CommandKind {
    Ping,
    Offer,
    Answer,
    Delete,
    Query,
    List,
    Statistics,
    StartRecording,
    StopRecording,
    PauseRecording,
    StartForwarding,
    StopForwarding,
    BlockDtmf,
    UnblockDtmf,
    BlockMedia,
    UnblockMedia,
    SilenceMedia,
    UnsilenceMedia,
    PlayMedia,
    StopMedia,
    PlayDtmf,
    Publish,
    SubscribeRequest,
    SubscribeAnswer,
    Unsubscribe,
    Connect,
}

impl CommandKind {
    pub const ALL: [CommandKind; 26] = [
        CommandKind::Ping,
        CommandKind::Offer,
        CommandKind::Answer,
        CommandKind::Delete,
        CommandKind::Query,
        CommandKind::List,
        CommandKind::Statistics,
        CommandKind::StartRecording,
        CommandKind::StopRecording,
        CommandKind::PauseRecording,
        CommandKind::StartForwarding,
        CommandKind::StopForwarding,
        CommandKind::BlockDtmf,
        CommandKind::UnblockDtmf,
        CommandKind::BlockMedia,
        CommandKind::UnblockMedia,
        CommandKind::SilenceMedia,
        CommandKind::UnsilenceMedia,
        CommandKind::PlayMedia,
        CommandKind::StopMedia,
        CommandKind::PlayDtmf,
        CommandKind::Publish,
        CommandKind::SubscribeRequest,
        CommandKind::SubscribeAnswer,
        CommandKind::Unsubscribe,
        CommandKind::Connect,
    ];

    /// The command as rtpengine spells it.
    pub fn name(self) -> &'static str {
        match self {
            CommandKind::Ping => "ping",
            CommandKind::Offer => "offer",
            CommandKind::Answer => "answer",
            CommandKind::Delete => "delete",
            CommandKind::Query => "query",
            CommandKind::List => "list",
            CommandKind::Statistics => "statistics",
            CommandKind::StartRecording => "start recording",
            CommandKind::StopRecording => "stop recording",
            CommandKind::PauseRecording => "pause recording",
            CommandKind::StartForwarding => "start forwarding",
            CommandKind::StopForwarding => "stop forwarding",
            CommandKind::BlockDtmf => "block DTMF",
            CommandKind::UnblockDtmf => "unblock DTMF",
            CommandKind::BlockMedia => "block media",
            CommandKind::UnblockMedia => "unblock media",
            CommandKind::SilenceMedia => "silence media",
            CommandKind::UnsilenceMedia => "unsilence media",
            CommandKind::PlayMedia => "play media",
            CommandKind::StopMedia => "stop media",
            CommandKind::PlayDtmf => "play DTMF",
            CommandKind::Publish => "publish",
            CommandKind::SubscribeRequest => "subscribe request",
            CommandKind::SubscribeAnswer => "subscribe answer",
            CommandKind::Unsubscribe => "unsubscribe",
            CommandKind::Connect => "connect",
        }
    }

    /// Look a command up in any spelling (`block DTMF`, `block_DTMF`, `block-dtmf`).
    pub fn from_name(name: &[u8]) -> Option<CommandKind> {
        let n = normalize(name);
        CommandKind::ALL
            .into_iter()
            .find(|c| normalize(c.name().as_bytes()) == n)
    }

    /// Position in [`CommandKind::ALL`], for counter arrays.
    pub fn index(self) -> usize {
        self as usize
    }
}

/// A decoded ng request, ready for the engine.
#[derive(Debug, Clone)]
pub(crate) enum Command {
    Ping,
    Offer(Box<OfferAnswer>),
    Answer(Box<OfferAnswer>),
    Delete(Delete),
    Query(Query),
    List(List),
    Statistics,
    /// `start recording`, `stop recording`, `pause recording`.
    Recording(CommandKind, Recording),
    PlayMedia(PlayMedia),
    StopMedia(StopMedia),
    /// `start forwarding`, `stop forwarding`.
    Forwarding(Forwarding),
    /// `publish`: an offer answered by the engine itself.
    Publish(Box<OfferAnswer>),
    /// `subscribe request`: sources in `from_tag`/`from_tags`/`label`/`all`, the
    /// subscriber's tag (if given) in `to_tag`.
    SubscribeRequest(Box<OfferAnswer>),
    /// `subscribe answer`: the subscriber's SDP and its `to_tag`.
    SubscribeAnswer(Box<OfferAnswer>),
    /// `unsubscribe`: the subscriber's `to_tag`.
    Unsubscribe(Box<OfferAnswer>),
    /// `block DTMF`, `unblock DTMF`, `block media`, `unblock media`, `silence media`,
    /// `unsilence media`.
    MediaControl(CommandKind, MediaControlRequest),
    PlayDtmf(PlayDtmf),
}

impl Command {
    pub(crate) fn kind(&self) -> CommandKind {
        match self {
            Command::Ping => CommandKind::Ping,
            Command::Offer(_) => CommandKind::Offer,
            Command::Answer(_) => CommandKind::Answer,
            Command::Delete(_) => CommandKind::Delete,
            Command::Query(_) => CommandKind::Query,
            Command::List(_) => CommandKind::List,
            Command::Statistics => CommandKind::Statistics,
            Command::Recording(kind, _) => *kind,
            Command::PlayMedia(_) => CommandKind::PlayMedia,
            Command::StopMedia(_) => CommandKind::StopMedia,
            Command::Forwarding(f) if f.start => CommandKind::StartForwarding,
            Command::Forwarding(_) => CommandKind::StopForwarding,
            Command::Publish(_) => CommandKind::Publish,
            Command::SubscribeRequest(_) => CommandKind::SubscribeRequest,
            Command::SubscribeAnswer(_) => CommandKind::SubscribeAnswer,
            Command::Unsubscribe(_) => CommandKind::Unsubscribe,
            Command::MediaControl(kind, _) => *kind,
            Command::PlayDtmf(_) => CommandKind::PlayDtmf,
        }
    }

    /// The call the request is about, for logs.
    pub(crate) fn call_id(&self) -> Option<&str> {
        match self {
            Command::Offer(oa)
            | Command::Answer(oa)
            | Command::Publish(oa)
            | Command::SubscribeRequest(oa)
            | Command::SubscribeAnswer(oa)
            | Command::Unsubscribe(oa) => Some(&oa.call_id),
            Command::Delete(d) => Some(&d.call_id),
            Command::Query(q) => Some(&q.call_id),
            Command::Recording(_, r) => Some(&r.call_id),
            Command::PlayMedia(p) => Some(&p.call_id),
            Command::StopMedia(p) => Some(&p.call_id),
            Command::Forwarding(f) => Some(&f.call_id),
            Command::MediaControl(_, m) => Some(&m.call_id),
            Command::PlayDtmf(p) => Some(&p.call_id),
            Command::Ping | Command::List(_) | Command::Statistics => None,
        }
    }
}

/// A request plus what the parser noticed but did not act on; the server logs the lists.
#[derive(Debug, Clone)]
pub(crate) struct NgRequest {
    pub command: Command,
    /// Keys no version of the protocol we know defines.
    pub unknown_keys: Vec<String>,
    /// Flags (and list values such as `replace` entries) we do not know.
    pub unknown_flags: Vec<String>,
    /// Keys, flags and values that are part of the protocol but not acted on by this build.
    pub unsupported: Vec<String>,
    /// Values of known keys that could not be understood and were ignored.
    pub invalid: Vec<String>,
    /// `supports` lists `load limit`: a refused offer gets `result: load limit`.
    pub supports_load_limit: bool,
}

impl NgRequest {
    /// The reply's `warning` text for what the request asked for but this build did not act
    /// on: options not supported yet, unknown keys and flags, values that could not be read.
    /// `None` when everything was taken.
    pub(crate) fn ignored_summary(&self) -> Option<String> {
        let mut parts = Vec::new();
        if !self.unsupported.is_empty() {
            parts.push(format!(
                "not supported, ignored: {}",
                self.unsupported.join(", ")
            ));
        }
        let unknown: Vec<&str> = self
            .unknown_keys
            .iter()
            .chain(&self.unknown_flags)
            .map(String::as_str)
            .collect();
        if !unknown.is_empty() {
            parts.push(format!("unknown, ignored: {}", unknown.join(", ")));
        }
        if !self.invalid.is_empty() {
            parts.push(format!("invalid, ignored: {}", self.invalid.join(", ")));
        }
        (!parts.is_empty()).then(|| parts.join("; "))
    }
}

/// Everything the dictionary said, before the command decides what it needs
/// (rtpengine's `sdp_ng_flags`).
#[derive(Default)]
struct Fields {
    /// `supports: ["load limit"]`.
    supports_load_limit: bool,
    call_id: Option<String>,
    from_tag: Option<String>,
    to_tag: Option<String>,
    via_branch: Option<String>,
    sdp: Option<String>,
    limit: Option<usize>,
    delete_delay: Option<Duration>,
    /// `output-destination` (recording commands).
    output_destination: Option<String>,
    /// `pause` flag: `stop recording` pauses instead.
    pause: bool,
    /// `file` / `blob` / `blob64` / `db-id` (play media).
    media_source: Option<MediaSource>,
    repeat_times: Option<u32>,
    start_pos: Option<u64>,
    repeat_duration: Option<u64>,
    /// The `all` key (`all: all`) of media commands.
    all: bool,
    /// `all` naming a party's flows (`offer-answer`, `except-offer-answer`, `flows`).
    flows: Option<FlowSet>,
    /// Reading an `rtpp-flags` string (one inside it is not read again).
    in_rtpp_flags: bool,
    /// `address` (media control commands: the party advertising it).
    address: Option<String>,
    /// `code`/`digit` as rtpengine reads it: a one-character string is that character's
    /// byte, anything else an integer.
    code: Option<i64>,
    duration: Option<i64>,
    volume: Option<i64>,
    /// `pause` key of `play DTMF` (ms); the `pause` *flag* is `pause` above.
    pause_ms: Option<i64>,
    frequency: Option<u32>,
    /// `frequency`/`frequencies` as a list.
    frequencies: Vec<u32>,
    /// `trigger` and its companions (`trigger` empty: none).
    trigger: DtmfTrigger,
    /// `DTMF-security`.
    dtmf_security: Option<BlockDtmf>,
    /// `delay-buffer` and `DTMF-delay` of `block DTMF`/`unblock DTMF` (ms).
    delay_buffer: Option<u32>,
    dtmf_delay: Option<u32>,
    /// Holds every offer/answer option; ids above are copied in at the end.
    oa: OfferAnswer,
    unknown_keys: Vec<String>,
    unknown_flags: Vec<String>,
    unsupported: Vec<String>,
    invalid: Vec<String>,
}

impl Fields {
    /// The replacement and trigger keys of `block DTMF` (and of the `block-DTMF` flag).
    fn block_dtmf_options(&mut self, mode: Option<BlockDtmf>) -> BlockDtmfOptions {
        let trigger = std::mem::take(&mut self.trigger);
        BlockDtmfOptions {
            mode,
            frequency: self.frequency,
            frequencies: self.frequencies.clone(),
            digit: self
                .code
                .and_then(|c| u8::try_from(c).ok())
                .and_then(|c| ngmedia_engine::core::calls::dtmf_code(i64::from(c))),
            volume: self.volume.map(|v| v.unsigned_abs().min(63) as u8),
            trigger: (!trigger.trigger.is_empty()).then_some(trigger),
            delay_buffer: self.delay_buffer,
            dtmf_delay: self.dtmf_delay,
        }
    }

    /// The party a media control command names (rtpengine reads `label`, `address` and
    /// `from-tag`, in that order, and `all`).
    fn control_target(&mut self) -> ControlTarget {
        ControlTarget {
            from_tag: self.from_tag.take().filter(|t| !t.is_empty()),
            label: self.oa.label.take(),
            address: self.address.take(),
            all: self.all || self.oa.flags.all,
            set_label: self.oa.set_label.take().filter(|l| !l.is_empty()),
            to_tag: None,
            to_label: None,
            flows: None,
        }
    }
}

/// The command a dictionary asks for (the last `command` key, as every key: later wins).
pub(crate) fn command_kind(dict: &Value<'_>) -> Result<CommandKind, NgError> {
    let entries = dict.as_dict().ok_or(NgError::BadBencode)?;
    let mut command = None;
    for (k, v) in entries {
        if normalize(k) == b"command" {
            command = Some(v.as_bytes().ok_or(NgError::NoCommand)?);
        }
    }
    let command = command.ok_or(NgError::NoCommand)?;
    CommandKind::from_name(command).ok_or(NgError::UnknownCommand)
}

/// Convert a decoded dictionary into a typed request.
pub(crate) fn parse_request(dict: &Value<'_>) -> Result<NgRequest, NgError> {
    let kind = command_kind(dict)?;
    let entries = dict.as_dict().ok_or(NgError::BadBencode)?;

    let mut f = Fields::default();
    for (k, v) in entries {
        f.key(k, v);
    }

    let command = match kind {
        CommandKind::Ping => Command::Ping,
        CommandKind::Statistics => Command::Statistics,
        CommandKind::List => Command::List(List {
            limit: f.limit.unwrap_or(List::default().limit),
        }),
        CommandKind::Offer | CommandKind::Answer => {
            // The order of checks is rtpengine's: SDP, call-id, from-tag, to-tag.
            let sdp = f
                .sdp
                .take()
                .filter(|s| !s.is_empty())
                .ok_or(NgError::NoSdp)?;
            let call_id = f
                .call_id
                .take()
                .filter(|c| !c.is_empty())
                .ok_or(NgError::NoCallId)?;
            let from_tag = f.from_tag.take().ok_or(NgError::NoFromTag)?;
            let to_tag = f.to_tag.take().filter(|t| !t.is_empty());
            if kind == CommandKind::Answer && to_tag.is_none() {
                return Err(NgError::NoToTag);
            }
            let mut oa = std::mem::take(&mut f.oa);
            oa.sdp = sdp;
            oa.call_id = call_id;
            oa.from_tag = from_tag;
            oa.to_tag = to_tag;
            oa.via_branch = f.via_branch.take();
            oa.delete_delay = f.delete_delay;
            oa.output_destination = f.output_destination.take();
            // `block-DTMF` takes the replacement of the same request, as `block DTMF` does.
            if let Some(mode) = oa.block_dtmf.as_ref().map(|b| b.mode) {
                oa.block_dtmf = Some(f.block_dtmf_options(mode));
            }
            if oa.set_label.is_some() {
                // rtpengine reads `set-label` for subscriptions and media commands only; an
                // offer or answer labels its party with `label`.
                f.unsupported
                    .push("set-label (use label on offer/answer)".into());
            }
            if kind == CommandKind::Answer && !oa.sdp_media_remove.is_empty() {
                // rtpengine reads it on offers only.
                f.unsupported.push("sdp-media-remove (offers only)".into());
            }
            if kind == CommandKind::Offer {
                Command::Offer(Box::new(oa))
            } else {
                Command::Answer(Box::new(oa))
            }
        }
        CommandKind::Delete => Command::Delete(Delete {
            call_id: f
                .call_id
                .take()
                .filter(|c| !c.is_empty())
                .ok_or(NgError::NoCallId)?,
            from_tag: f.from_tag.take(),
            to_tag: f.to_tag.take().filter(|t| !t.is_empty()),
            via_branch: f.via_branch.take(),
            delete_delay: f.delete_delay,
            flags: std::mem::take(&mut f.oa.flags),
        }),
        CommandKind::Query => Command::Query(Query {
            call_id: f
                .call_id
                .take()
                .filter(|c| !c.is_empty())
                .ok_or(NgError::NoCallId)?,
            from_tag: f.from_tag.take(),
            to_tag: f.to_tag.take().filter(|t| !t.is_empty()),
        }),
        CommandKind::StartRecording | CommandKind::StopRecording | CommandKind::PauseRecording => {
            let action = match kind {
                CommandKind::StartRecording => RecordingAction::Start,
                CommandKind::StopRecording if !f.pause => RecordingAction::Stop,
                _ => RecordingAction::Pause,
            };
            Command::Recording(
                kind,
                Recording {
                    call_id: f
                        .call_id
                        .take()
                        .filter(|c| !c.is_empty())
                        .ok_or(NgError::NoCallId)?,
                    from_tag: f.from_tag.take().filter(|t| !t.is_empty()),
                    to_tag: f.to_tag.take().filter(|t| !t.is_empty()),
                    action,
                    metadata: f.oa.metadata.take(),
                    output_destination: f.output_destination.take(),
                },
            )
        }
        CommandKind::PlayMedia | CommandKind::StopMedia => {
            let call_id = f
                .call_id
                .take()
                .filter(|c| !c.is_empty())
                .ok_or(NgError::NoCallId)?;
            let target = PartySelector {
                to_tag: f.to_tag.take().filter(|t| !t.is_empty()),
                to_label: f.oa.to_label.take().filter(|l| !l.is_empty()),
                party: f.control_target(),
            };
            if kind == CommandKind::PlayMedia {
                Command::PlayMedia(PlayMedia {
                    call_id,
                    target,
                    source: f.media_source.take(),
                    repeat_times: f.repeat_times,
                    start_pos_ms: f.start_pos,
                    repeat_duration_ms: f.repeat_duration,
                })
            } else {
                Command::StopMedia(StopMedia { call_id, target })
            }
        }
        CommandKind::StartForwarding | CommandKind::StopForwarding => {
            Command::Forwarding(Forwarding {
                call_id: f
                    .call_id
                    .take()
                    .filter(|c| !c.is_empty())
                    .ok_or(NgError::NoCallId)?,
                from_tag: f.from_tag.take().filter(|t| !t.is_empty()),
                to_tag: f.to_tag.take().filter(|t| !t.is_empty()),
                start: kind == CommandKind::StartForwarding,
            })
        }
        CommandKind::Publish
        | CommandKind::SubscribeRequest
        | CommandKind::SubscribeAnswer
        | CommandKind::Unsubscribe => {
            // rtpengine's checks: publish wants SDP, call-id and from-tag; subscribe
            // answer call-id, to-tag and SDP; unsubscribe call-id and to-tag; a subscribe
            // request names its sources in one of several ways (checked by the engine).
            let sdp = f.sdp.take().filter(|s| !s.is_empty());
            if kind == CommandKind::Publish && sdp.is_none() {
                return Err(NgError::NoSdp);
            }
            let call_id = f
                .call_id
                .take()
                .filter(|c| !c.is_empty())
                .ok_or(NgError::NoCallId)?;
            let from_tag = f.from_tag.take();
            if kind == CommandKind::Publish && from_tag.as_deref().is_none_or(str::is_empty) {
                return Err(NgError::NoFromTag);
            }
            let to_tag = f.to_tag.take().filter(|t| !t.is_empty());
            if matches!(
                kind,
                CommandKind::SubscribeAnswer | CommandKind::Unsubscribe
            ) && to_tag.is_none()
            {
                return Err(NgError::NoToTag);
            }
            if kind == CommandKind::SubscribeAnswer && sdp.is_none() {
                return Err(NgError::NoSdp);
            }
            let mut oa = std::mem::take(&mut f.oa);
            oa.sdp = sdp.unwrap_or_default();
            oa.call_id = call_id;
            oa.from_tag = from_tag.unwrap_or_default();
            oa.to_tag = to_tag;
            oa.via_branch = f.via_branch.take();
            oa.flags.all |= f.all;
            let oa = Box::new(oa);
            match kind {
                CommandKind::Publish => Command::Publish(oa),
                CommandKind::SubscribeRequest => Command::SubscribeRequest(oa),
                CommandKind::SubscribeAnswer => Command::SubscribeAnswer(oa),
                _ => Command::Unsubscribe(oa),
            }
        }
        CommandKind::BlockDtmf
        | CommandKind::UnblockDtmf
        | CommandKind::BlockMedia
        | CommandKind::UnblockMedia
        | CommandKind::SilenceMedia
        | CommandKind::UnsilenceMedia => {
            let call_id = f
                .call_id
                .take()
                .filter(|c| !c.is_empty())
                .ok_or(NgError::NoCallId)?;
            let action = match kind {
                CommandKind::BlockDtmf => {
                    ControlAction::BlockDtmf(f.block_dtmf_options(f.dtmf_security))
                }
                CommandKind::UnblockDtmf => ControlAction::UnblockDtmf {
                    delay_buffer: f.delay_buffer,
                },
                CommandKind::BlockMedia => ControlAction::BlockMedia,
                CommandKind::UnblockMedia => ControlAction::UnblockMedia,
                CommandKind::SilenceMedia => ControlAction::SilenceMedia,
                _ => ControlAction::UnsilenceMedia,
            };
            let mut target = f.control_target();
            // `block`/`silence media` act on one media flow when a `to-tag`/`to-label`
            // (or `all` with a flow keyword) names it.
            if matches!(
                kind,
                CommandKind::BlockMedia
                    | CommandKind::UnblockMedia
                    | CommandKind::SilenceMedia
                    | CommandKind::UnsilenceMedia
            ) {
                target.to_tag = f.to_tag.take().filter(|t| !t.is_empty());
                target.to_label = f.oa.to_label.take().filter(|t| !t.is_empty());
                target.flows = f.flows;
            }
            Command::MediaControl(
                kind,
                MediaControlRequest {
                    call_id,
                    target,
                    action,
                },
            )
        }
        CommandKind::PlayDtmf => Command::PlayDtmf(PlayDtmf {
            call_id: f
                .call_id
                .take()
                .filter(|c| !c.is_empty())
                .ok_or(NgError::NoCallId)?,
            target: f.control_target(),
            code: f.code,
            duration_ms: f.duration,
            volume: f.volume,
            pause_ms: f.pause_ms,
        }),
        other => return Err(NgError::NotSupported(other.name())),
    };
    Ok(NgRequest {
        command,
        unknown_keys: f.unknown_keys,
        unknown_flags: f.unknown_flags,
        unsupported: f.unsupported,
        invalid: f.invalid,
        supports_load_limit: f.supports_load_limit,
    })
}

#[cfg(test)]
mod inventory_tests;
#[cfg(test)]
mod tests;
