//! Transcoded streams on the worker: building transcoders from the plan, and the RTCP
//! reports we send for them (feeding a transcoder is `core::stream::transcode`).

use std::net::SocketAddr;
use std::os::fd::RawFd;

use tracing::warn;

use super::{Core, Entry, Now};
use crate::core::delay_buffer::DelayBuffer;
use crate::core::dtmf_security::DtmfGuard;
use crate::core::media_control::{BlockDtmf, StreamControl};
use crate::core::stats::DropReason;
use crate::core::stream::{self, protect, target, Route, Slot};
use crate::core::transcode::{write_rtcp_report, PlayoutConfig, TranscodeSpec, Transcoder};
use crate::io::ports::Role;

/// Interval of the RTCP reports we send for transcoded streams (RFC 3550's 5 s minimum).
pub(crate) const RTCP_INTERVAL_MS: u64 = 5_000;
/// How often the worker looks for due RTCP reports. The check runs on the worker's
/// wake-ups (a transcoded stream has packets every 10-60 ms), so no timer is needed.
const RTCP_SCAN_MS: u64 = 500;

/// Install the plan's media control; a transcoder masks in-band digits while DTMF is
/// blocked.
pub(super) fn set_control(e: &mut Entry, mut control: StreamControl, digit_delay_ms: u32) {
    if let Some(s) = control.security.as_mut() {
        s.digit_delay_ms = digit_delay_ms;
    }
    // The delay buffer follows the settings; what it holds goes on at once when they
    // change (rtpengine flushes it whenever the party's handlers are rebuilt).
    let changed = e.guard.as_ref().map(|g| g.config()) != control.security.as_ref();
    let delay = (control.security.as_ref())
        .filter(|s| s.delayed() && e.port.role == Role::Rtp)
        .map(|s| s.delay_ms);
    match (delay, e.delay.as_deref_mut()) {
        (Some(ms), Some(b)) if b.fits(ms) || !b.is_empty() => {
            if changed {
                b.expedite();
            }
            b.set_delay(ms);
        }
        (Some(ms), Some(_)) => e.delay = Some(Box::new(DelayBuffer::new(ms))),
        (Some(ms), None) => e.delay = Some(Box::new(DelayBuffer::new(ms))),
        (None, Some(b)) => b.expedite(),
        (None, None) => {}
    }
    // The guard keeps its state (a trigger's progress) while its settings stay the same.
    match control.security.as_ref() {
        Some(cfg) if e.guard.as_ref().is_some_and(|g| g.config() == cfg) => {}
        Some(cfg) => match e.guard.as_mut() {
            Some(g) => g.reconfigure(cfg.clone()),
            None => e.guard = Some(Box::new(DtmfGuard::new(cfg.clone()))),
        },
        None => e.guard = None,
    }
    // A trigger that matched already keeps the mode it switched to; in-band digits drive
    // the party's triggers.
    let mode = e.guard.as_ref().map_or(control.block_dtmf, |g| g.mode());
    let watch = e.guard.as_ref().is_some_and(|g| g.wants_inband_digits());
    if let Some(t) = e.transcoder.as_mut() {
        // Behind a delay buffer the guard replaces digits before the transcoder sees them.
        let delayed = control.security.as_ref().is_some_and(|s| s.delayed());
        t.watch_digits(watch);
        t.set_block_dtmf(
            if delayed { BlockDtmf::Off } else { mode },
            control.tone_freq,
            control.digit,
            control.volume,
        );
    }
    e.control = control;
}

/// NTP timestamp (RFC 3550 §4) of a Unix time in milliseconds.
pub(super) fn ntp_from_unix_ms(ms: u64) -> u64 {
    const NTP_UNIX_OFFSET: u64 = 2_208_988_800;
    let secs = ms / 1000 + NTP_UNIX_OFFSET;
    let frac = ((ms % 1000) << 32) / 1000;
    (secs << 32) | frac
}

/// Build, replace or remove the entry's transcoder as the plan says. Building happens here,
/// on the worker, once per stream: codec state never crosses threads.
pub(super) fn set_transcoder(
    e: &mut Entry,
    spec: Option<TranscodeSpec>,
    now: Now,
    silence_detect: Option<crate::core::transcode::SilenceDetect>,
    playout: Option<PlayoutConfig>,
) {
    e.terminate_rtcp = spec.is_some();
    let wanted = match spec {
        Some(s) if e.port.role == Role::Rtp => s,
        _ => {
            e.transcoder = None;
            return;
        }
    };
    if let Some(t) = e.transcoder.as_mut().filter(|t| *t.spec() == wanted) {
        t.set_playout(playout);
        return;
    }
    match Transcoder::new(wanted) {
        Ok(mut t) => {
            t.set_silence_detect(silence_detect);
            t.set_playout(playout);
            e.transcoder = Some(Box::new(t));
            e.rtcp_due_ms = now.mono_ms + RTCP_INTERVAL_MS;
        }
        Err(err) => {
            // Negotiation only plans what the codecs support; relay rather than go silent.
            warn!(error = %err, "cannot build transcoder; relaying unchanged");
            e.transcoder = None;
        }
    }
}

impl Core {
    /// How long the backend may sleep before a transcoder's playout tick is due, in µs
    /// (`None`: no clock runs).
    pub(crate) fn playout_timeout_us(&self) -> Option<u64> {
        if self.playouts.is_empty() {
            return None;
        }
        let now_us = Now::read().mono_us;
        self.playouts
            .iter()
            .filter_map(|&i| {
                self.slab
                    .get(i)?
                    .as_ref()?
                    .transcoder
                    .as_ref()?
                    .poll_timeout()
            })
            .min()
            .map(|due_ms| (due_ms * 1000).saturating_sub(now_us))
    }

    /// Run the playout ticks due at `now` and send what they make through
    /// `send(fd, slot, dest, bytes)` (see [`stream::transcode_tick`]).
    pub(crate) fn poll_playouts(
        &mut self,
        now: Now,
        mut send: impl FnMut(RawFd, usize, SocketAddr, &[u8]) -> bool,
    ) {
        let now_ms = now.mono_us / 1000;
        let mut i = 0;
        while i < self.playouts.len() {
            let idx = self.playouts[i];
            let due = match self.slab.get(idx) {
                Some(Some(e)) => match e.transcoder.as_ref() {
                    Some(t) => t.poll_timeout(),
                    None => {
                        self.playouts.swap_remove(i);
                        continue;
                    }
                },
                _ => {
                    self.playouts.swap_remove(i);
                    continue;
                }
            };
            if due.is_some_and(|t| t <= now_ms) {
                stream::transcode_tick(
                    &mut self.slab,
                    &self.counters,
                    idx,
                    now,
                    &mut self.out_buf,
                    &mut self.copy_buf,
                    &mut send,
                );
            }
            i += 1;
        }
    }

    /// Send the RTCP reports of transcoded streams that are due (checked every
    /// [`RTCP_SCAN_MS`] at most). Toward each party that receives transcoded RTP we send an
    /// SR from our output SSRC with the transcoder's packet and octet counts, plus a report
    /// block about the RTP that party sends us (its own transcoder's input). Sent from the
    /// sink's RTCP socket (its RTP socket under rtcp-mux) to the latched RTCP address.
    pub(crate) fn send_rtcp_reports(
        &mut self,
        now: Now,
        mut send: impl FnMut(RawFd, usize, SocketAddr, &[u8]) -> bool,
    ) {
        if now.mono_ms < self.next_rtcp_scan_ms {
            return;
        }
        self.next_rtcp_scan_ms = now.mono_ms + RTCP_SCAN_MS;
        for idx in 0..self.slab.len() {
            let due = match &self.slab[idx] {
                Some(e) => e.transcoder.is_some() && e.rtcp_due_ms <= now.mono_ms,
                None => false,
            };
            if !due {
                continue;
            }
            let Some(e) = self.slab[idx].as_mut() else {
                continue;
            };
            e.rtcp_due_ms = now.mono_ms + RTCP_INTERVAL_MS;
            let rtp_sink = e.rtp_sink;
            // What the peer (the sink's party) sends us, as our transcoder there sees it.
            let report = rtp_sink.and_then(|s| {
                self.slab
                    .get_mut(s)?
                    .as_mut()?
                    .transcoder
                    .as_mut()?
                    .reception()
            });
            let Some(Some(e)) = self.slab.get(idx) else {
                continue;
            };
            let Some(t) = e.transcoder.as_ref() else {
                continue;
            };
            let c = t.counters();
            let sender = (c.sent_packets > 0).then_some((
                t.output_timestamp(),
                c.sent_packets,
                c.sent_octets,
            ));
            let len = write_rtcp_report(
                &mut self.out_buf,
                t.ssrc(),
                ntp_from_unix_ms(now.wall_ms),
                sender,
                report.as_ref(),
                &self.rtcp_cname,
            );
            let Some((sink, dest)) = target(&self.slab, idx, Route::Rtcp) else {
                continue;
            };
            let Some(s) = self.slab[sink].as_mut() else {
                continue;
            };
            let (out, fd) = s.out_for(sink, dest);
            // SRTCP toward a party that gets SRTP.
            let Ok(len) = protect(s, Route::Rtcp, &mut self.out_buf, len) else {
                self.counters.count_drop(DropReason::SendFailed);
                continue;
            };
            if len > 0 && !send(fd, out, dest, &self.out_buf[..len]) {
                self.counters.count_drop(DropReason::SendFailed);
            }
        }
    }
}
