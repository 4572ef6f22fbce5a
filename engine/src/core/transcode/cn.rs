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
fn widen(buf: &mut [i16], n: usize, factor: usize) {
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
