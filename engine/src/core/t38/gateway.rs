//! One running T.38 gateway on the packet path (rtpengine: `struct t38_gateway` with its
//! PCM player, `t38_gateway_input_samples` and `t38_gateway_input_udptl` in daemon/t38.c),
//! sans IO: the worker hands it what each party sends and asks it, on a 20 ms clock, for
//! what to send them.
//!
//! The audio party's G.711 RTP is decoded and fed to spandsp as 8 kHz samples; the T.38
//! party's UDPTL datagrams are unframed (redundancy and FEC recover lost ones) and their
//! IFP packets fed in sequence. Every 20 ms the gateway writes one G.711 RTP packet of what
//! spandsp has for the audio party (silence when it has nothing: an RTP stream does not
//! pause), and between packets it frames the IFP packets spandsp produced into UDPTL with
//! the error correction the T.38 party asked for.
//!
//! Only G.711 reaches a gateway: T.30 modems do not survive a compressing codec, and
//! rtpengine's gateway offers PCMU and PCMA too.

use ngmedia_codecs::g711::Law;
use ngmedia_codecs::t38::{GatewayOptions, T38Gateway, PCM_RATE};
use ngmedia_codecs::CodecError;

use super::udptl::{UdptlError, UdptlPacket, UdptlReceiver, UdptlSender};
use super::T38Options;
use crate::core::rtp::RtpHeader;

/// Audio per RTP packet toward the audio party: 20 ms, the ptime every fax-capable
/// gateway and ATA uses.
pub const FRAME_MS: u64 = 20;
/// Samples per packet at 8 kHz.
const FRAME: usize = (PCM_RATE as usize) * FRAME_MS as usize / 1000;
const RTP_HEADER: usize = 12;
/// A clock this far behind (a worker stalled, a suspended host) restarts from now instead
/// of sending a burst of catch-up packets.
const MAX_LAG_US: u64 = 200_000;
/// Samples decoded per spandsp call: a 60 ms packet at most in one go.
const DECODE_CHUNK: usize = 480;
/// Largest UDPTL datagram the gateway writes; the T.38 party's `T38FaxMaxDatagram` may
/// lower it, never raise it.
const MAX_DATAGRAM: usize = 1400;

/// What a gateway is built from (decided by offer/answer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewaySpec {
    /// The T.38 party's options (its SDP, with the `T.38` flags' modem restrictions).
    pub options: T38Options,
    /// The audio party's codec and its payload type.
    pub law: Law,
    pub pt: u8,
}

impl GatewaySpec {
    /// The spec for a settled audio codec, if the gateway can speak it.
    pub fn new(options: T38Options, codec_name: &str, pt: u8) -> Option<GatewaySpec> {
        let law = if codec_name.eq_ignore_ascii_case("PCMU") {
            Law::Ulaw
        } else if codec_name.eq_ignore_ascii_case("PCMA") {
            Law::Alaw
        } else {
            return None;
        };
        Some(GatewaySpec { options, law, pt })
    }
}

/// What a gateway counted (for logs at teardown and tests).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GatewayStats {
    /// RTP packets of the audio party decoded.
    pub audio_in: u64,
    /// RTP packets of other payload types, late or out of order, not fed to spandsp.
    pub audio_ignored: u64,
    /// IFP packets fed to spandsp (received or recovered).
    pub ifp_in: u64,
    /// Datagrams from the T.38 party that were not UDPTL.
    pub udptl_bad: u64,
    /// RTP packets written toward the audio party.
    pub audio_out: u64,
    /// UDPTL datagrams written toward the T.38 party (repeats included).
    pub udptl_out: u64,
}

/// A T.38 gateway between one T.38 party and one G.711 party.
pub struct FaxGateway {
    spec: GatewaySpec,
    gw: T38Gateway,
    tx: UdptlSender,
    rx: UdptlReceiver,
    pcm: Box<[i16; DECODE_CHUNK]>,
    /// The audio line we send: SSRC, next sequence number and timestamp.
    ssrc: u32,
    seq: u16,
    ts: u32,
    first: bool,
    /// When the next audio packet is due (monotonic µs).
    due_us: u64,
    /// Last sequence number of the audio party fed to spandsp.
    last_in: Option<u16>,
    /// A UDPTL datagram spandsp asked to send more than once, and the repeats left.
    repeat: Box<[u8; MAX_DATAGRAM]>,
    repeat_len: usize,
    repeats_left: u8,
    stats: GatewayStats,
}

impl std::fmt::Debug for FaxGateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaxGateway")
            .field("spec", &self.spec)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl FaxGateway {
    /// A gateway whose first audio packet is due at `now_us`; `ssrc` and `seq`/`ts` start
    /// the audio line (random in the worker).
    pub fn new(
        spec: GatewaySpec,
        now_us: u64,
        ssrc: u32,
        seq: u16,
        ts: u32,
    ) -> Result<FaxGateway, CodecError> {
        let o = &spec.options;
        let gw = T38Gateway::new(&GatewayOptions {
            version: o.version,
            local_tcf: o.local_tcf,
            fill_bit_removal: o.fill_bit_removal,
            transcoding_mmr: o.transcoding_mmr,
            transcoding_jbig: o.transcoding_jbig,
            no_ecm: o.no_ecm,
            no_v17: o.no_v17,
            no_v27ter: o.no_v27ter,
            no_v29: o.no_v29,
            no_v34: o.no_v34,
            no_iaf: o.no_iaf,
        })?;
        let max_datagram = usize::from(o.max_datagram).min(MAX_DATAGRAM);
        Ok(FaxGateway {
            tx: UdptlSender::new(o.error_correction(), max_datagram),
            rx: UdptlReceiver::new(),
            spec,
            gw,
            pcm: Box::new([0; DECODE_CHUNK]),
            ssrc,
            seq,
            ts,
            first: true,
            due_us: now_us,
            last_in: None,
            repeat: Box::new([0; MAX_DATAGRAM]),
            repeat_len: 0,
            repeats_left: 0,
            stats: GatewayStats::default(),
        })
    }

    pub fn spec(&self) -> &GatewaySpec {
        &self.spec
    }

    pub fn stats(&self) -> GatewayStats {
        self.stats
    }

    /// IFP packets spandsp produced that could not be queued.
    pub fn dropped_ifp(&self) -> u64 {
        self.gw.dropped()
    }

    /// Take one plain RTP packet from the audio party. Other payload types (DTMF events,
    /// comfort noise) and packets older than the last one fed are left out: spandsp takes
    /// samples in order and a modem cannot use a late block.
    pub fn handle_audio(&mut self, pkt: &[u8]) {
        let Ok(h) = RtpHeader::parse(pkt) else {
            self.stats.audio_ignored += 1;
            return;
        };
        let seq = h.sequence_number();
        let newer = self
            .last_in
            .is_none_or(|last| (seq.wrapping_sub(last) as i16) > 0);
        let payload = match h.payload() {
            Ok(p) if h.payload_type() == self.spec.pt && newer => p,
            _ => {
                self.stats.audio_ignored += 1;
                return;
            }
        };
        self.last_in = Some(seq);
        self.stats.audio_in += 1;
        for chunk in payload.chunks(DECODE_CHUNK) {
            let pcm = &mut self.pcm[..chunk.len()];
            if self.spec.law.decode(chunk, pcm).is_ok() {
                self.gw.rx_audio(pcm);
            }
        }
    }

    /// Take one UDPTL datagram from the T.38 party: its IFP packet, and those it carries
    /// again for lost datagrams, go to spandsp in sequence.
    pub fn handle_udptl(&mut self, datagram: &[u8]) -> Result<(), UdptlError> {
        let pkt = match UdptlPacket::parse(datagram) {
            Ok(p) => p,
            Err(e) => {
                self.stats.udptl_bad += 1;
                return Err(e);
            }
        };
        let gw = &mut self.gw;
        let n = self.rx.handle(&pkt, |seq, ifp| gw.rx_ifp(ifp, seq));
        self.stats.ifp_in += n as u64;
        Ok(())
    }

    /// When the next audio packet is due (monotonic µs).
    pub fn due_us(&self) -> u64 {
        self.due_us
    }

    /// Write the audio packet due at `now_us` (an RTP packet of 20 ms of G.711) into `out`;
    /// `None` when none is due yet or `out` is too small.
    pub fn poll_audio(&mut self, now_us: u64, out: &mut [u8]) -> Option<usize> {
        if now_us < self.due_us || out.len() < RTP_HEADER + FRAME {
            return None;
        }
        self.due_us = if now_us - self.due_us > MAX_LAG_US {
            now_us + FRAME_MS * 1000
        } else {
            self.due_us + FRAME_MS * 1000
        };
        let pcm = &mut self.pcm[..FRAME];
        let n = self.gw.tx_audio(pcm);
        pcm[n..].fill(0);
        out[0] = 0x80;
        out[1] = self.spec.pt | if self.first { 0x80 } else { 0 };
        out[2..4].copy_from_slice(&self.seq.to_be_bytes());
        out[4..8].copy_from_slice(&self.ts.to_be_bytes());
        out[8..12].copy_from_slice(&self.ssrc.to_be_bytes());
        let len = self.spec.law.encode(pcm, &mut out[RTP_HEADER..]).ok()?;
        self.first = false;
        self.seq = self.seq.wrapping_add(1);
        self.ts = self.ts.wrapping_add(FRAME as u32);
        self.stats.audio_out += 1;
        Some(RTP_HEADER + len)
    }

    /// Write the next UDPTL datagram for the T.38 party into `out`; `None` when spandsp
    /// has nothing to send. A datagram spandsp wants repeated (indicators) comes out that
    /// many times, with the same sequence number.
    pub fn poll_udptl(&mut self, out: &mut [u8]) -> Option<usize> {
        loop {
            if self.repeats_left > 0 {
                let n = self.repeat_len;
                if out.len() < n {
                    self.repeats_left = 0;
                    return None;
                }
                self.repeats_left -= 1;
                out[..n].copy_from_slice(&self.repeat[..n]);
                self.stats.udptl_out += 1;
                return Some(n);
            }
            let (ifp, count) = self.gw.poll_ifp()?;
            let room = out.len().min(MAX_DATAGRAM);
            // A packet that does not fit is lost like one lost on the way; the next
            // datagrams' redundancy carries it again.
            if let Ok(n) = self.tx.write(ifp, &mut out[..room]) {
                self.repeat[..n].copy_from_slice(&out[..n]);
                self.repeat_len = n;
                self.repeats_left = count.saturating_sub(1);
                self.stats.udptl_out += 1;
                return Some(n);
            }
        }
    }
}

#[cfg(test)]
mod tests;
