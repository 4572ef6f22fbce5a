//! The `flags` list and the offer/answer option lists (`replace`, `rtcp-mux`, `SDES`,
//! `OSRTP`, `ICE`, codec lists) stored in `Fields`.

use ngmedia_engine::core::latch::EndpointLearning;
use ngmedia_engine::core::request::{BlockDtmfOptions, IceMode};

use super::values::{lossy, normalize};
use super::Fields;
use crate::bencode::Value;

/// Flags of §4 that this build recognises but does not act on yet.
pub(super) const UNSUPPORTED_FLAGS: &[&[u8]] = &[
    b"force transcoding",
    b"block egress",
    b"early media",
    b"reuse codecs",
    b"static codecs",
    b"allow asymmetric codecs",
    b"allow no codec media",
    b"reject ice",
    b"fragment",
    b"nat wait",
    b"pierce nat",
    b"recrypt",
    b"provisional",
    b"bidirectional",
    b"inactive",
    b"mix",
    b"unidirectional",
    b"debug",
    b"no jitter buffer",
    b"exclude recording",
    b"discard recording",
    b"skip recording db",
    b"recording announcement",
    b"to tag",
    b"ice lite",
    b"no codec renegotiation",
    b"passthrough",
    b"no passthrough",
    b"strict source address",
];

/// Prefix flags (`codec-strip-PCMU`, `SDES-no-…`) whose features this build does not act on.
pub(super) const UNSUPPORTED_FLAG_PREFIXES: &[&[u8]] =
    &[b"bundle ", b"dtls ", b"extmap ", b"ice lite "];

const TRANSPORT_PROTOCOLS: &[&[u8]] = &[
    b"rtp/avp",
    b"rtp/avpf",
    b"rtp/savp",
    b"rtp/savpf",
    b"udp/tls/rtp/savp",
    b"udp/tls/rtp/savpf",
];

impl Fields {
    pub(super) fn flag(&mut self, raw: &[u8]) {
        // `key=value` inside `flags` (rtpp-flags style) is treated as the key itself.
        if let Some(eq) = raw.iter().position(|&b| b == b'=') {
            if eq > 0 {
                self.key(&raw[..eq], &Value::Bytes(&raw[eq + 1..]));
                return;
            }
        }
        let norm = normalize(raw);
        if self.codec_flag(&norm, raw) {
            return;
        }
        if norm.starts_with(b"sdp attr ") && self.sdp_attr_flag(&raw[9..]) {
            return;
        }
        let f = &mut self.oa.flags;
        match norm.as_slice() {
            b"trust address" => f.trust_address = true,
            b"sip source address" | b"sip source" => f.sip_source_address = true,
            // Legacy: symmetric is what every version does by default.
            b"symmetric" => {}
            b"asymmetric" => f.asymmetric = true,
            b"strict source" => f.strict_source = true,
            b"media handover" => f.media_handover = true,
            b"port latching" => f.port_latching = true,
            n if n.starts_with(b"endpoint learning ") => {
                match std::str::from_utf8(&raw[18..])
                    .ok()
                    .and_then(EndpointLearning::parse)
                {
                    Some(l) => f.endpoint_learning = Some(l),
                    None => self.unknown_flags.push(lossy(raw)),
                }
            }
            b"trickle ice" => f.trickle_ice = true,
            b"no port latching" => f.no_port_latching = true,
            b"record call" => f.record_call = true,
            b"loop protect" => f.loop_protect = true,
            b"fatal" => f.fatal = true,
            b"fast" => f.fast = true,
            b"new branch" => {
                f.new_branch = true;
                self.unsupported.push(lossy(raw));
            }
            b"original sendrecv" => f.original_sendrecv = true,
            b"full rtcp attribute" => f.full_rtcp_attribute = true,
            b"no rtcp attribute" => f.no_rtcp_attribute = true,
            b"all" => f.all = true,
            b"reset" => {
                f.reset = true;
                self.unsupported.push(lossy(raw));
            }
            b"generate mid" => f.generate_mid = true,
            b"strip extmap" => f.strip_extmap = true,
            b"egress" => f.egress = true,
            b"rtcp mirror" | b"mirror rtcp" => f.rtcp_mirror = true,
            b"siprec" => f.siprec = true,
            b"allow transcoding" => f.allow_transcoding = true,
            n if n.starts_with(b"from tags ") => self.oa.from_tags.push(lossy(&raw[10..])),
            b"always transcode" => self.oa.codec.always_transcode = true,
            b"single codec" => self.oa.codec.single_codec = true,
            b"detect dtmf" => self.oa.codec.detect_dtmf = true,
            b"pad crypto" => self.oa.sdes.pad = true,
            b"webrtc" => self.webrtc(),
            b"pause" => self.pause = true,
            b"inject dtmf" => self.oa.inject_dtmf = true,
            b"block dtmf" => {
                self.oa.block_dtmf = Some(BlockDtmfOptions {
                    mode: self.dtmf_security,
                    ..BlockDtmfOptions::default()
                })
            }
            // Kamailio's module sends `from-tag` for a directional command; the flag
            // itself adds nothing.
            b"directional" => {}
            b"internal" | b"external" => self.oa.direction.push(lossy(raw)),
            p if TRANSPORT_PROTOCOLS.contains(&p) => self.oa.transport_protocol = Some(lossy(raw)),
            n if n.starts_with(b"replace ") => self.replace(&raw[8..]),
            n if n.starts_with(b"rtcp mux ") => self.rtcp_mux(&raw[9..]),
            n if n.starts_with(b"t.38 ") => self.t38_flag(&raw[5..]),
            n if n.starts_with(b"t38 ") => self.t38_flag(&raw[4..]),
            n if n.starts_with(b"sdes ") => self.sdes(&raw[5..]),
            n if n.starts_with(b"osrtp ") => self.osrtp(&raw[6..]),
            n if UNSUPPORTED_FLAGS.contains(&n)
                || UNSUPPORTED_FLAG_PREFIXES.iter().any(|p| n.starts_with(p)) =>
            {
                f.other.push(lossy(raw));
                self.unsupported.push(lossy(raw));
            }
            _ => {
                f.other.push(lossy(raw));
                self.unknown_flags.push(lossy(raw));
            }
        }
    }

    /// `codec-strip-PCMU`, `codec-transcode-opus`, `transcode-G729`, ...: the argument is
    /// taken verbatim from `raw`. True when the flag was one of those.
    fn codec_flag(&mut self, norm: &[u8], raw: &[u8]) -> bool {
        if norm.starts_with(b"transcode ") {
            return self.codec_list(b"transcode", &[&raw[10..]]);
        }
        let Some(rest) = norm.strip_prefix(b"codec ") else {
            return false;
        };
        let Some(sp) = rest.iter().position(|&b| b == b' ') else {
            return false;
        };
        self.codec_list(&rest[..sp], &[&raw[6 + sp + 1..]])
    }

    /// Add `items` to the codec option list named `list` (normalised: `strip`, `offer`,
    /// `except`, `transcode`, `mask`, `accept`, `consume`, `set`, `ignore`). False for an
    /// unknown list name.
    pub(super) fn codec_list(&mut self, list: &[u8], items: &[&[u8]]) -> bool {
        let c = &mut self.oa.codec;
        let target = match list {
            b"strip" => &mut c.strip,
            b"offer" => &mut c.offer,
            b"except" => &mut c.except,
            b"transcode" => &mut c.transcode,
            b"mask" => &mut c.mask,
            b"accept" => &mut c.accept,
            b"consume" => &mut c.consume,
            b"set" => &mut c.set,
            b"ignore" => &mut c.ignore,
            _ => return false,
        };
        target.extend(items.iter().filter(|i| !i.is_empty()).map(|i| lossy(i)));
        true
    }

    pub(super) fn replace(&mut self, item: &[u8]) {
        let r = &mut self.oa.replace;
        match normalize(item).as_slice() {
            b"origin" => r.origin = true,
            b"origin full" => r.origin_full = true,
            b"username" => r.username = true,
            b"session name" => r.session_name = true,
            b"sdp version" => r.sdp_version = true,
            b"force increment sdp ver" | b"force increment sdp version" => {
                r.force_increment_sdp_ver = true
            }
            b"zero address" => r.zero_address = true,
            b"session connection" => r.session_connection = true,
            _ => self.unknown_flags.push(format!("replace-{}", lossy(item))),
        }
    }

    pub(super) fn rtcp_mux(&mut self, item: &[u8]) {
        let m = &mut self.oa.rtcp_mux;
        match normalize(item).as_slice() {
            b"offer" => m.offer = true,
            b"require" => m.require = true,
            b"demux" => m.demux = true,
            b"accept" => m.accept = true,
            b"reject" => m.reject = true,
            _ => self.unknown_flags.push(format!("rtcp-mux-{}", lossy(item))),
        }
    }

    /// One `T.38` list entry (or what follows `T.38-` in a flag).
    pub(super) fn t38_flag(&mut self, item: &[u8]) {
        if !self.oa.t38.set(&lossy(item)) {
            self.unknown_flags.push(format!("T.38-{}", lossy(item)));
        }
    }

    /// One `SDES` list entry (or what follows `SDES-` in a flag). Suite names stay verbatim.
    pub(super) fn sdes(&mut self, item: &[u8]) {
        let raw = lossy(item);
        if self.oa.sdes.apply(&raw) {
            return;
        }
        match normalize(item).as_slice() {
            b"off" | b"no" | b"disable" => self.oa.sdes_off = true,
            // Session parameters and key reuse policies this build does not implement.
            b"unencrypted srtp"
            | b"unencrypted srtcp"
            | b"unauthenticated srtp"
            | b"encrypted srtp"
            | b"encrypted srtcp"
            | b"authenticated srtp"
            | b"prefer" => {
                let s = format!("SDES-{raw}");
                self.oa.flags.other.push(s.clone());
                self.unsupported.push(s);
            }
            _ => self.unknown_flags.push(format!("SDES-{raw}")),
        }
    }

    /// One `OSRTP` list entry (RFC 8643): the `-RFC`/`-legacy` variants are read as the
    /// plain forms (legacy OSRTP uses two m= lines, which this build does not write).
    pub(super) fn osrtp(&mut self, item: &[u8]) {
        match normalize(item).as_slice() {
            b"offer" | b"offer rfc" | b"offer legacy" => self.oa.osrtp.offer = true,
            b"accept" | b"accept rfc" | b"accept legacy" => self.oa.osrtp.accept = true,
            _ => self.unknown_flags.push(format!("OSRTP-{}", lossy(item))),
        }
    }

    /// `WebRTC`: UDP/TLS/RTP/SAVPF with ICE, rtcp-mux, no a=rtcp, no SDES and a=mid.
    fn webrtc(&mut self) {
        self.oa.transport_protocol = Some("UDP/TLS/RTP/SAVPF".into());
        self.oa.ice = IceMode::Force;
        self.oa.rtcp_mux.offer = true;
        self.oa.rtcp_mux.require = true;
        self.oa.flags.no_rtcp_attribute = true;
        self.oa.sdes_off = true;
        self.oa.flags.generate_mid = true;
    }

    pub(super) fn ice(&mut self, item: &[u8]) {
        match normalize(item).as_slice() {
            b"remove" => self.oa.ice = IceMode::Remove,
            b"force" => self.oa.ice = IceMode::Force,
            b"default" => self.oa.ice = IceMode::Default,
            b"optional" => self.oa.ice = IceMode::Optional,
            b"force relay" => self.oa.ice = IceMode::ForceRelay,
            b"trickle" | b"ice2" | b"lite" | b"lite forward" | b"lite backward" | b"lite both"
            | b"lite off" => {
                let s = format!("ICE={}", lossy(item));
                self.oa.flags.other.push(s.clone());
                self.unsupported.push(s);
            }
            _ => self.unknown_flags.push(format!("ICE={}", lossy(item))),
        }
    }
}
