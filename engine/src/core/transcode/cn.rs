//! Comfort noise in a [`Transcoder`] (RFC 3389; rtpengine's CN decoder handler and its
//! silence detection in `codec.c`).
//!
//! * **CN from the input** (the input side's `cn_pt`): when the output side has CN too, the
//!   packet is forwarded under the output's CN payload type, on the output's sequence and
//!   timestamp line. Otherwise its noise description goes to a [`NoiseGenerator`] and one
//!   input packet time of noise (the input's ptime) joins the PCM FIFO like decoded audio,
//!   so the other side hears the noise the sender described, in its own codec. As in
//!   rtpengine, one CN packet gives one packet time of noise; senders repeat CN packets
//!   while the silence lasts (RFC 3389 §4), each one updating the level.
//! * **CN toward the output** (the output side's `cn_pt` with [`SilenceDetect`] configured):
//!   an output frame whose every sample is within the threshold of zero leaves as a CN
//!   packet with the configured payload instead of audio, with the sequence number and
//!   timestamp the audio would have had.
//!
//! The generator is built with the transcoder; noise is written into the transcoder's
//! scratch buffer: nothing here allocates.

use ngmedia_codecs::cn::{CnPayload, NoiseGenerator};

use super::{write_header, SilenceDetect, Transcoder, FIFO, SLOT};
use crate::core::rtp::{RtpHeader, RTP_HEADER_LEN};

impl Transcoder {
    /// One CN packet from the input, in sequence order.
    pub(super) fn handle_cn(&mut self, h: &RtpHeader<'_>, payload: &[u8]) {
        let ptime = self.spec.input.ptime_ms.clamp(1, 200);
        if let Some(st) = &mut self.input {
            let units = self.spec.input.codec.clock_rate / 1000 * ptime;
            st.have_audio = true;
            st.next_ts = h.timestamp().wrapping_add(units);
        }
        if let Some(out_pt) = self.spec.output.cn_pt {
            self.forward_cn(out_pt, payload, ptime);
            return;
        }
        let (Some(generator), Ok(cn)) = (self.noise.as_mut(), CnPayload::parse(payload)) else {
            self.counters.errors += 1;
            return;
        };
        generator.update(&cn);
        // Noise at 8 kHz, widened to the internal rate (an integer multiple of 8000) by
        // linear interpolation.
        let factor = (self.pcm_rate / NoiseGenerator::PCM_RATE).max(1) as usize;
        let n8 = (NoiseGenerator::PCM_RATE / 1000 * ptime) as usize;
        let n8 = n8.min(self.scratch.len() / factor).min(FIFO / factor);
        generator.generate(&mut self.scratch[..n8]);
        if factor > 1 {
            widen(&mut self.scratch[..n8 * factor], n8, factor);
        }
        let n = n8 * factor;
        if FIFO - self.fifo_len < n {
            let drop = n - (FIFO - self.fifo_len);
            self.fifo.copy_within(drop..self.fifo_len, 0);
            self.fifo_len -= drop;
        }
        self.fifo[self.fifo_len..self.fifo_len + n].copy_from_slice(&self.scratch[..n]);
        self.fifo_len += n;
        self.encode_ready();
    }

    /// Pass a CN packet on to an output side that has CN: same payload, output's PT.
    fn forward_cn(&mut self, pt: u8, payload: &[u8], ptime: u32) {
        let len = RTP_HEADER_LEN + payload.len();
        if len > SLOT {
            self.counters.errors += 1;
            return;
        }
        let seq = self.cur_seq.wrapping_add(self.seq_diff);
        self.seq_diff = self.seq_diff.wrapping_add(1);
        let (ts, ssrc) = (self.ts, self.ssrc);
        self.queue_packet(|out| {
            write_header(out, false, pt, seq, ts, ssrc);
            out[RTP_HEADER_LEN..len].copy_from_slice(payload);
            len
        });
        self.ts = self
            .ts
            .wrapping_add(self.spec.output.codec.clock_rate / 1000 * ptime);
        self.counters.sent_packets = self.counters.sent_packets.wrapping_add(1);
        self.counters.sent_octets = self.counters.sent_octets.wrapping_add(payload.len() as u32);
    }

    /// Silence detection toward a side with CN; see [`silence_payload`].
    pub fn set_silence_detect(&mut self, detect: Option<SilenceDetect>) {
        self.silence = detect;
    }
}

/// For an output frame `pcm` about to leave: when silence detection is on, the output has
/// CN and every sample is silent, write the CN payload into `out` and return its payload
/// type and length.
pub(super) fn silence_payload(
    detect: Option<&SilenceDetect>,
    cn_pt: Option<u8>,
    pcm: &[i16],
    out: &mut [u8],
) -> Option<(u8, usize)> {
    let (detect, pt) = (detect?, cn_pt?);
    let t = detect.threshold as i32;
    if pcm.is_empty() || !pcm.iter().all(|&s| (s as i32).abs() <= t) {
        return None;
    }
    let len = detect.payload.write(out).ok()?;
    Some((pt, len))
}

/// Spread `n` samples at the start of `buf` over `n * factor`, interpolating linearly
/// between neighbours (the last one is held). Works from the end, so in place.
pub(super) fn widen(buf: &mut [i16], n: usize, factor: usize) {
    if n == 0 {
        return;
    }
    let mut next = buf[n - 1] as i32;
    for i in (0..n).rev() {
        let cur = buf[i] as i32;
        for j in 0..factor {
            let v = cur + (next - cur) * j as i32 / factor as i32;
            buf[i * factor + j] = v as i16;
        }
        next = cur;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::transcode::{CodecEnd, TranscodeSpec};
    use ngmedia_codecs::Codec;

    fn end(name: &str, pt: u8, cn_pt: Option<u8>) -> CodecEnd {
        CodecEnd {
            codec: Codec::lookup(name, 8000, None, None).unwrap(),
            pt,
            ptime_ms: 20,
            event_pt: None,
            bitrate: None,
            cn_pt,
            dtx: false,
            cmr_interval_ms: 0,
            mode_change_interval_ms: 0,
        }
    }

    fn transcoder(input: CodecEnd, output: CodecEnd) -> Transcoder {
        Transcoder::new(TranscodeSpec {
            input,
            output,
            detect_dtmf: false,
            passthrough: crate::core::transcode::PtSet::NONE,
        })
        .unwrap()
    }

    fn rtp(pt: u8, seq: u16, ts: u32, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0u8; RTP_HEADER_LEN];
        write_header(&mut p, false, pt, seq, ts, 0x3456);
        p.extend_from_slice(payload);
        p
    }

    /// (pt, seq, ts, payload) of every queued output packet.
    fn drain(t: &mut Transcoder) -> Vec<(u8, u16, u32, Vec<u8>)> {
        let mut buf = [0u8; 2048];
        let mut v = Vec::new();
        while let Some(n) = t.poll_output(&mut buf) {
            let h = RtpHeader::parse(&buf[..n]).unwrap();
            v.push((
                h.payload_type(),
                h.sequence_number(),
                h.timestamp(),
                h.payload().unwrap().to_vec(),
            ));
        }
        v
    }

    const CN: [u8; 5] = [0x12, 0x23, 0x23, 0x34, 0x56];

    #[test]
    fn cn_packets_become_noise_on_the_audio_line() {
        // rtpengine's "add CN, accept second PT": PCMU with CN in, PCMU without out.
        let mut t = transcoder(end("PCMU", 0, Some(13)), end("PCMU", 0, None));
        t.handle_rtp(0, &rtp(0, 2000, 4000, &[0; 160]));
        t.handle_rtp(20, &rtp(13, 2001, 4160, &CN));
        t.handle_rtp(40, &rtp(0, 2002, 4320, &[0; 160]));
        t.handle_rtp(60, &rtp(13, 2003, 4480, &CN));
        let out = drain(&mut t);
        let line: Vec<(u8, u16, u32)> = out.iter().map(|o| (o.0, o.1, o.2)).collect();
        assert_eq!(
            line,
            [
                (0, 2000, 4000),
                (0, 2001, 4160),
                (0, 2002, 4320),
                (0, 2003, 4480)
            ]
        );
        // The bytes rtpengine sends for the same packets (its test file's first ones), and
        // the second CN frame continues the generator rather than restarting it.
        assert_eq!(&out[1].3[..6], &[0xce, 0x56, 0x69, 0xcc, 0x61, 0xca]);
        assert_eq!(&out[3].3[..6], &[0x7a, 0x4d, 0x44, 0x42, 0x42, 0x3a]);
        assert_eq!(out[2].3, [0; 160]);
        assert_eq!(t.counters().errors, 0);
    }

    #[test]
    fn cn_is_forwarded_to_a_side_with_cn() {
        let mut t = transcoder(end("PCMA", 8, Some(13)), end("PCMU", 0, Some(96)));
        t.handle_rtp(0, &rtp(8, 10, 800, &[0xd5; 160]));
        t.handle_rtp(20, &rtp(13, 11, 960, &[40]));
        t.handle_rtp(40, &rtp(8, 12, 1120, &[0xd5; 160]));
        let out = drain(&mut t);
        let line: Vec<(u8, u16, u32, usize)> =
            out.iter().map(|o| (o.0, o.1, o.2, o.3.len())).collect();
        assert_eq!(
            line,
            [(0, 10, 800, 160), (96, 11, 960, 1), (0, 12, 1120, 160)]
        );
        assert_eq!(out[1].3, [40]);
    }

    #[test]
    fn silence_toward_a_cn_side_leaves_as_cn() {
        let mut t = transcoder(end("PCMU", 0, None), end("PCMA", 8, Some(13)));
        let loud = [0x80u8; 160];
        let quiet = [ngmedia_codecs::g711::ULAW_SILENCE; 160];
        // Off until configured.
        t.handle_rtp(0, &rtp(0, 1, 160, &quiet));
        t.set_silence_detect(SilenceDetect::from_options(1.0, &[]));
        t.handle_rtp(20, &rtp(0, 2, 320, &loud));
        t.handle_rtp(40, &rtp(0, 3, 480, &quiet));
        t.handle_rtp(60, &rtp(0, 4, 640, &quiet));
        t.handle_rtp(80, &rtp(0, 5, 800, &loud));
        let out = drain(&mut t);
        let line: Vec<(u8, u16, u32, usize)> =
            out.iter().map(|o| (o.0, o.1, o.2, o.3.len())).collect();
        assert_eq!(
            line,
            [
                (8, 1, 160, 160),
                (8, 2, 320, 160),
                (13, 3, 480, 1),
                (13, 4, 640, 1),
                (8, 5, 800, 160)
            ]
        );
        assert_eq!(out[2].3, [32]);
        // A side without CN never gets CN, silence detection or not.
        let mut t = transcoder(end("PCMU", 0, None), end("PCMA", 8, None));
        t.set_silence_detect(SilenceDetect::from_options(1.0, &[]));
        t.handle_rtp(0, &rtp(0, 1, 160, &quiet));
        assert_eq!(drain(&mut t)[0].0, 8);
    }

    #[test]
    fn silence_toward_opus_with_dtx_is_suppressed() {
        // The receiver asked for DTX (`usedtx=1`): silence and quiet comfort noise from a
        // PCMU sender with CN leave as nothing (or Opus' own 1-2 byte DTX frames, which are
        // not sent either); the next talk spurt starts with the marker bit and the
        // timestamps that passed.
        let opus = Codec::lookup("opus", 48000, Some(2), Some("usedtx=1")).unwrap();
        let out_end = CodecEnd {
            codec: opus,
            pt: 96,
            ptime_ms: 20,
            event_pt: None,
            bitrate: None,
            cn_pt: None,
            dtx: false,
            cmr_interval_ms: 0,
            mode_change_interval_ms: 0,
        };
        let mut t = transcoder(end("PCMU", 0, Some(13)), out_end);
        let tone: Vec<u8> = (0..160)
            .map(|i| {
                let x = 8000.0 * (2.0 * std::f64::consts::PI * 440.0 * i as f64 / 8000.0).sin();
                ngmedia_codecs::g711::ulaw_encode(x as i16)
            })
            .collect();
        let mut seq = 0u16;
        let mut ts = 0u32;
        let mut send = |t: &mut Transcoder, pt: u8, payload: &[u8]| {
            t.handle_rtp(seq as u64 * 20, &rtp(pt, seq, ts, payload));
            seq += 1;
            ts += 160;
        };
        for _ in 0..25 {
            send(&mut t, 0, &tone);
        }
        let talk = drain(&mut t);
        assert_eq!(talk.len(), 25);
        // One second of silence: a CN packet at −90 dBov, then digital silence.
        send(&mut t, 13, &[90]);
        for _ in 0..49 {
            send(&mut t, 0, &[ngmedia_codecs::g711::ULAW_SILENCE; 160]);
        }
        let quiet = drain(&mut t);
        assert!(quiet.len() < 25, "{} of 50 silent frames sent", quiet.len());
        send(&mut t, 0, &tone);
        let mut buf = [0u8; 2048];
        let n = t.poll_output(&mut buf).expect("talk spurt resumes");
        let h = RtpHeader::parse(&buf[..n]).unwrap();
        assert!(h.marker(), "new talk spurt marked");
        // Opus counts 48 kHz: 75 frames of 960 after the first packet's timestamp.
        assert_eq!(h.timestamp().wrapping_sub(talk[0].2), 75 * 960);
    }

    #[test]
    fn cn_from_a_side_without_cn_is_an_unknown_payload_type() {
        let mut t = transcoder(end("PCMU", 0, None), end("PCMA", 8, None));
        t.handle_rtp(0, &rtp(13, 1, 160, &CN));
        assert!(drain(&mut t).is_empty());
        assert_eq!(t.counters().errors, 1);
        // An empty CN payload is counted, not fatal.
        let mut t = transcoder(end("PCMU", 0, Some(13)), end("PCMA", 8, None));
        t.handle_rtp(0, &rtp(0, 1, 160, &[0xff; 160]));
        t.handle_rtp(20, &rtp(13, 2, 320, &[]));
        t.handle_rtp(40, &rtp(0, 3, 480, &[0xff; 160]));
        assert_eq!(drain(&mut t).len(), 2);
    }

    #[test]
    fn widen_interpolates_in_place() {
        let mut buf = [0i16, 10, 20, 0, 0, 0, 0, 0, 0];
        widen(&mut buf, 3, 3);
        assert_eq!(buf, [0, 3, 6, 10, 13, 16, 20, 20, 20]);
    }

    #[test]
    fn silence_needs_every_sample_quiet() {
        let d = SilenceDetect::from_options(1.0, &[]).unwrap();
        assert_eq!(d.threshold, 655);
        let mut out = [0u8; 16];
        assert_eq!(
            silence_payload(Some(&d), Some(13), &[0, 655, -655], &mut out),
            Some((13, 1))
        );
        assert_eq!(out[0], 32);
        assert_eq!(
            silence_payload(Some(&d), Some(13), &[0, 656], &mut out),
            None
        );
        assert_eq!(silence_payload(Some(&d), None, &[0; 4], &mut out), None);
        assert_eq!(silence_payload(None, Some(13), &[0; 4], &mut out), None);
        assert!(SilenceDetect::from_options(0.0, &[]).is_none());
        let custom = SilenceDetect::from_options(0.5, &[40, 120]).unwrap();
        assert_eq!(custom.payload.level, 40);
        assert_eq!(custom.payload.order, 1);
    }
}
