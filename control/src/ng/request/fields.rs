//! The key dispatch: every key of a request dictionary stored in `Fields`.

use std::net::IpAddr;
use std::time::Duration;

use ngmedia_engine::core::latch::EndpointLearning;
use ngmedia_engine::core::media_control::BlockDtmf;
use ngmedia_engine::core::request::{DtlsMode, Family, FlowSet, IceLite, MediaEcho, MediaSource};

use super::values::{
    boolean, int_lenient, lossy, moh_options, normalize, received_from, strings, text,
};
use super::Fields;
use crate::bencode::Value;

/// Keys of §4 that this build recognises but does not act on yet.
pub(super) const UNSUPPORTED_KEYS: &[&[u8]] = &[
    b"recording file",
    b"recording dir",
    b"recording path",
    b"recording pattern",
    b"drop traffic",
    b"generate rtcp",
    b"audio player",
    b"dtmf log dest",
    b"extmap",
    b"bundle",
    b"alias key",
    b"xmlrpc callback",
    b"sip message type",
    b"sip code",
    b"template",
    b"to call id",
    b"repacketize",
    b"recording meta data",
];

impl Fields {
    pub(super) fn invalid(&mut self, key: &[u8], value: &Value<'_>) {
        let shown = match value {
            Value::Bytes(b) => lossy(b),
            Value::Int(i) => i.to_string(),
            Value::List(_) => "<list>".into(),
            Value::Dict(_) => "<dictionary>".into(),
        };
        self.invalid.push(format!("{}={}", lossy(key), shown));
    }

    pub(super) fn key(&mut self, raw_key: &[u8], value: &Value<'_>) {
        let key = normalize(raw_key);
        match key.as_slice() {
            b"command" => {}
            b"call id" => self.call_id = text(value),
            b"from tag" => self.from_tag = text(value),
            b"to tag" => self.to_tag = text(value),
            b"via branch" => self.via_branch = text(value),
            b"sdp" => self.sdp = value.as_bytes().map(lossy),
            b"file" => match value.as_bytes() {
                Some(b) if !b.is_empty() => self.media_source = Some(MediaSource::File(lossy(b))),
                _ => self.invalid(raw_key, value),
            },
            b"blob" => match value.as_bytes() {
                Some(b) if !b.is_empty() => self.media_source = Some(MediaSource::Blob(b.to_vec())),
                _ => self.invalid(raw_key, value),
            },
            b"blob64" => {
                use base64::Engine as _;
                let decoded = value
                    .as_bytes()
                    .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
                    .filter(|b| !b.is_empty());
                match decoded {
                    Some(b) => self.media_source = Some(MediaSource::Blob(b)),
                    None => self.invalid(raw_key, value),
                }
            }
            b"db id" => match text(value).filter(|t| !t.is_empty()) {
                Some(id) => self.media_source = Some(MediaSource::DbId(id)),
                None => self.invalid(raw_key, value),
            },
            b"repeat times" => match int_lenient(value).and_then(|n| u32::try_from(n).ok()) {
                Some(n) => self.repeat_times = Some(n),
                None => self.invalid(raw_key, value),
            },
            b"start pos" => match int_lenient(value).and_then(|n| u64::try_from(n).ok()) {
                Some(n) => self.start_pos = Some(n),
                None => self.invalid(raw_key, value),
            },
            b"repeat duration" => match int_lenient(value).and_then(|n| u64::try_from(n).ok()) {
                Some(n) => self.repeat_duration = Some(n),
                None => self.invalid(raw_key, value),
            },
            b"all" => match value.as_bytes().map(normalize).as_deref() {
                Some(b"offer answer") => self.flows = Some(FlowSet::OfferAnswer),
                Some(b"except offer answer") | Some(b"non offer answer") => {
                    self.flows = Some(FlowSet::ExceptOfferAnswer)
                }
                Some(b"flows") => self.flows = Some(FlowSet::All),
                _ => self.all = true,
            },
            b"address" => self.address = text(value),
            b"code" | b"digit" => match value.as_bytes() {
                // A one-character string is that character (rtpengine).
                Some([c]) => self.code = Some(i64::from(*c)),
                _ => match int_lenient(value) {
                    Some(n) => self.code = Some(n),
                    None => self.invalid(raw_key, value),
                },
            },
            b"duration" => match int_lenient(value) {
                Some(n) => self.duration = Some(n),
                None => self.invalid(raw_key, value),
            },
            b"volume" => match int_lenient(value) {
                Some(n) => self.volume = Some(n),
                None => self.invalid(raw_key, value),
            },
            b"pause" => match int_lenient(value) {
                Some(n) => self.pause_ms = Some(n),
                None => self.invalid(raw_key, value),
            },
            b"frequency" | b"frequencies" => {
                // An integer, a list of integers, or a comma-separated string of them.
                let mut freqs = Vec::new();
                let ok = match value {
                    Value::List(items) => items.iter().all(|i| {
                        int_lenient(i)
                            .and_then(|n| u32::try_from(n).ok())
                            .filter(|&n| n > 0)
                            .map(|n| freqs.push(n))
                            .is_some()
                    }),
                    Value::Int(_) => int_lenient(value)
                        .and_then(|n| u32::try_from(n).ok())
                        .filter(|&n| n > 0)
                        .map(|n| freqs.push(n))
                        .is_some(),
                    Value::Bytes(b) => std::str::from_utf8(b).is_ok_and(|t| {
                        t.split(',').all(|f| {
                            f.trim()
                                .parse::<u32>()
                                .ok()
                                .filter(|&n| n > 0)
                                .map(|n| freqs.push(n))
                                .is_some()
                        })
                    }),
                    Value::Dict(_) => false,
                };
                if ok && !freqs.is_empty() {
                    self.frequency = freqs.first().copied();
                    self.frequencies = freqs;
                } else {
                    self.invalid(raw_key, value);
                }
            }
            b"delay buffer" => match int_lenient(value).and_then(|n| u32::try_from(n).ok()) {
                Some(n) => self.delay_buffer = Some(n),
                None => self.invalid(raw_key, value),
            },
            b"dtmf delay" => match int_lenient(value).and_then(|n| u32::try_from(n).ok()) {
                Some(n) => self.dtmf_delay = Some(n),
                None => self.invalid(raw_key, value),
            },
            b"trigger" => self.trigger.trigger = text(value).unwrap_or_default(),
            b"trigger end" | b"end trigger" => self.trigger.end = text(value).unwrap_or_default(),
            b"trigger end time" => match int_lenient(value).and_then(|n| u32::try_from(n).ok()) {
                Some(n) => self.trigger.end_ms = n,
                None => self.invalid(raw_key, value),
            },
            b"trigger end digits" => match int_lenient(value).and_then(|n| u32::try_from(n).ok()) {
                Some(n) => self.trigger.end_digits = n,
                None => self.invalid(raw_key, value),
            },
            b"dtmf security trigger" => match value.as_str().and_then(BlockDtmf::parse) {
                Some(m) => self.trigger.mode = Some(m),
                None => self.invalid(raw_key, value),
            },
            b"dtmf security trigger end" => match value.as_str().and_then(BlockDtmf::parse) {
                Some(m) => self.trigger.end_mode = Some(m),
                None => self.invalid(raw_key, value),
            },
            b"dtmf security" => match value.as_str().and_then(BlockDtmf::parse) {
                Some(m) => {
                    self.dtmf_security = Some(m);
                    if let Some(b) = self.oa.block_dtmf.as_mut() {
                        b.mode = Some(m);
                    }
                }
                None => self.invalid(raw_key, value),
            },
            b"moh" => match moh_options(value) {
                Some(m) => self.oa.moh = Some(m),
                None => self.invalid(raw_key, value),
            },
            b"endpoint learning" => match value.as_str().and_then(EndpointLearning::parse) {
                Some(l) => self.oa.flags.endpoint_learning = Some(l),
                None => self.invalid(raw_key, value),
            },
            b"flags" => {
                for flag in strings(value) {
                    self.flag(flag);
                }
            }
            b"replace" => {
                for item in strings(value) {
                    self.replace(item);
                }
            }
            b"direction" => {
                self.oa
                    .direction
                    .extend(strings(value).into_iter().map(lossy));
            }
            b"received from" => match received_from(value) {
                Some(addr) => self.oa.received_from = Some(addr),
                None => self.invalid(raw_key, value),
            },
            b"media address" => {
                match value.as_str().and_then(|s| s.trim().parse::<IpAddr>().ok()) {
                    Some(addr) => self.oa.media_address = Some(addr),
                    None => self.invalid(raw_key, value),
                }
            }
            b"address family" => match value.as_bytes().map(normalize).as_deref() {
                Some(b"ip4") => self.oa.address_family = Some(Family::Ip4),
                Some(b"ip6") => self.oa.address_family = Some(Family::Ip6),
                _ => self.invalid(raw_key, value),
            },
            b"ice" => {
                for item in strings(value) {
                    self.ice(item);
                }
            }
            b"ice lite" => match value.as_str().and_then(IceLite::parse) {
                Some(mode) => self.oa.ice_lite = Some(mode),
                None => self.invalid(raw_key, value),
            },
            b"t.38" | b"t38" => {
                for item in strings(value) {
                    self.t38_flag(item);
                }
            }
            b"rtcp mux" => {
                for item in strings(value) {
                    self.rtcp_mux(item);
                }
            }
            b"transport protocol" => match value.as_bytes() {
                Some(p) if !p.is_empty() => self.oa.transport_protocol = Some(lossy(p)),
                _ => self.invalid(raw_key, value),
            },
            b"sdes" => {
                for item in strings(value) {
                    self.sdes(item);
                }
            }
            b"osrtp" => {
                for item in strings(value) {
                    self.osrtp(item);
                }
            }
            b"dtls" => match value.as_bytes().map(normalize).as_deref() {
                Some(b"off" | b"no" | b"disable") => self.oa.dtls = DtlsMode::Off,
                Some(b"passive") => self.oa.dtls = DtlsMode::Passive,
                Some(b"active") => self.oa.dtls = DtlsMode::Active,
                _ => self.invalid(raw_key, value),
            },
            b"dtls reverse" => match value.as_bytes().map(normalize).as_deref() {
                Some(b"passive") => self.oa.dtls_reverse_passive = true,
                Some(b"active") => self.oa.dtls_reverse_passive = false,
                _ => self.invalid(raw_key, value),
            },
            b"dtls fingerprint" => match value.as_bytes().map(normalize).as_deref() {
                Some(b"sha 1" | b"sha 224" | b"sha 256" | b"sha 384" | b"sha 512") => {
                    self.oa.dtls_fingerprint = text(value)
                }
                _ => self.invalid(raw_key, value),
            },
            b"from tags" => self
                .oa
                .from_tags
                .extend(strings(value).into_iter().map(lossy)),
            b"label" | b"from label" => self.oa.label = text(value),
            b"set label" => self.oa.set_label = text(value),
            b"to label" => self.oa.to_label = text(value),
            b"metadata" => self.oa.metadata = text(value),
            b"output destination" => self.output_destination = text(value),
            b"from interface" => self.oa.from_interface = text(value),
            b"to interface" => self.oa.to_interface = text(value),
            b"interface" => {
                self.oa.from_interface = text(value);
                self.oa.to_interface = text(value);
            }
            b"delete delay" => match int_lenient(value).and_then(|s| u64::try_from(s).ok()) {
                Some(secs) => self.delete_delay = Some(Duration::from_secs(secs)),
                None => self.invalid(raw_key, value),
            },
            b"ptime" => match int_lenient(value).and_then(|p| u32::try_from(p).ok()) {
                Some(p) if p > 0 => self.oa.ptime = Some(p),
                _ => self.invalid(raw_key, value),
            },
            b"ptime reverse" => match int_lenient(value).and_then(|p| u32::try_from(p).ok()) {
                Some(p) if p > 0 => self.oa.ptime_reverse = Some(p),
                _ => self.invalid(raw_key, value),
            },
            b"codec" => match value.as_dict() {
                Some(entries) => {
                    for (k, v) in entries {
                        let items = strings(v);
                        if !self.codec_list(&normalize(k), &items) {
                            self.unknown_keys.push(format!("codec.{}", lossy(k)));
                        }
                    }
                }
                None => self.invalid(raw_key, value),
            },
            // `codec-strip=PCMU` (a flag with a value, or a key of its own).
            k if k.starts_with(b"codec ") && self.codec_list(&k[6..], &strings(value)) => {}
            b"rtpp flags" => match value.as_bytes() {
                // A flag string inside a flag string is not read again.
                Some(flags) if !self.in_rtpp_flags => {
                    self.in_rtpp_flags = true;
                    self.rtpp_flags(flags);
                    self.in_rtpp_flags = false;
                }
                _ => self.invalid(raw_key, value),
            },
            b"sdp attr" => self.sdp_attr(raw_key, value),
            b"sdp media remove" => {
                for item in strings(value) {
                    let kind = lossy(item).to_ascii_lowercase();
                    if ngmedia_engine::core::calls::is_removable_type(&kind) {
                        self.oa.sdp_media_remove.push(kind);
                    } else {
                        self.invalid(raw_key, &Value::Bytes(item));
                    }
                }
            }
            b"media echo" => match value.as_bytes().map(normalize).as_deref() {
                Some(b"blackhole" | b"sinkhole") => self.oa.media_echo = Some(MediaEcho::Blackhole),
                Some(b"forward" | b"fwd" | b"fw") => self.oa.media_echo = Some(MediaEcho::Forward),
                Some(b"backward" | b"backwards" | b"reverse" | b"back" | b"bkw" | b"bk") => {
                    self.oa.media_echo = Some(MediaEcho::Backward)
                }
                Some(b"both") => self.oa.media_echo = Some(MediaEcho::Both),
                _ => self.invalid(raw_key, value),
            },
            b"tos" => match int_lenient(value).and_then(|t| u8::try_from(t).ok()) {
                Some(t) => self.oa.tos = Some(t),
                None => self.invalid(raw_key, value),
            },
            b"record call" => match boolean(value) {
                Some(b) => self.oa.record_call = Some(b),
                None => self.invalid(raw_key, value),
            },
            b"limit" => match int_lenient(value).and_then(|l| usize::try_from(l).ok()) {
                Some(l) => self.limit = Some(l),
                None => self.invalid(raw_key, value),
            },
            // Kamailio always sends `supports: ["load limit"]`; other optional features are
            // ones we do not know (rtpengine logs and ignores them the same way).
            b"supports" => {
                for feature in strings(value) {
                    if feature == b"load limit" {
                        self.supports_load_limit = true;
                    } else {
                        self.unknown_flags
                            .push(format!("supports.{}", lossy(feature)));
                    }
                }
            }
            k if UNSUPPORTED_KEYS.contains(&k) => self.unsupported.push(lossy(raw_key)),
            _ => self.unknown_keys.push(lossy(raw_key)),
        }
    }
}
