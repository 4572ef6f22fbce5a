//! Watching the rates an AMR party sends (rtpengine's `CMR-interval` and
//! `mode-change-interval` decoder options) and what that asks of our encoder toward it.

use super::{AmrBand, NO_CMR};

/// Payloads that carry a CMR we ask of the peer (rtpengine's `cmr_out_seq += 3`).
pub const CMR_SEND_PACKETS: u8 = 3;

/// What a decoder's rate watch asks of the encoder toward the same party.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateRequest {
    /// Ask the peer to send this mode (a CMR in our payloads).
    pub send_cmr: Option<u8>,
    /// No CMR from the peer for `mode-change-interval`: our encoder moves one mode up.
    pub step_up: bool,
}

/// The codec options of an AMR decoder that watch the peer's rates (rtpengine's
/// `CMR-interval` and `mode-change-interval`, in ms; 0 = off), and their state.
/// rtpengine: `amr_bitrate_tracker` and the CMR check of `amr_decoder_input`.
///
/// * `CMR-interval`: the modes of the frames received are gathered; when a frame arrives
///   while the window its predecessor opened is still running, and the peer used only modes
///   below the next one the mode set allows, that mode is asked of the peer; then a new
///   window starts. (rtpengine would never look again once a window ended without a frame;
///   here a frame after an ended window starts a new one.)
/// * `mode-change-interval`: a payload without CMR this long after the last one with a CMR
///   (or after the first payload) moves our encoder toward the peer one mode up.
#[derive(Debug, Clone, Copy, Default)]
pub struct RateWatch {
    pub cmr_interval_ms: u32,
    pub mode_change_interval_ms: u32,
    window_end: Option<u64>,
    seen: u16,
    last_cmr_ms: Option<u64>,
}

impl RateWatch {
    pub fn new(cmr_interval_ms: u32, mode_change_interval_ms: u32) -> Self {
        RateWatch {
            cmr_interval_ms,
            mode_change_interval_ms,
            ..RateWatch::default()
        }
    }

    /// One payload received at `now_ms` with CMR `cmr` and frames of the types in `fts`
    /// (bit N = type N), its modes limited by `mode_set` (0 = all of `band`'s).
    pub fn handle_payload(
        &mut self,
        now_ms: u64,
        band: AmrBand,
        mode_set: u16,
        cmr: u8,
        fts: u16,
    ) -> RateRequest {
        let mut req = RateRequest::default();
        if cmr != NO_CMR {
            self.last_cmr_ms = Some(now_ms);
        } else if self.mode_change_interval_ms > 0 {
            match self.last_cmr_ms {
                None => self.last_cmr_ms = Some(now_ms),
                Some(t) if now_ms.saturating_sub(t) >= self.mode_change_interval_ms as u64 => {
                    req.step_up = true;
                    self.last_cmr_ms = Some(now_ms);
                }
                Some(_) => {}
            }
        }
        if self.cmr_interval_ms == 0 {
            return req;
        }
        let allowed = |m: u8| mode_set == 0 || mode_set & (1 << m) != 0;
        for ft in (0..band.modes()).filter(|&m| fts & (1 << m) != 0) {
            match self.window_end {
                Some(end) if end >= now_ms => {
                    // The first allowed mode above the highest one seen, if any was seen.
                    let mut next = None;
                    let mut used = false;
                    for m in (0..band.modes()).filter(|&m| allowed(m)) {
                        if next.is_none() {
                            next = Some(m);
                        }
                        if self.seen & (1 << m) != 0 {
                            next = None;
                            used = true;
                        }
                    }
                    if let (true, Some(m)) = (used, next) {
                        req.send_cmr = Some(m);
                    }
                    self.window_end = None;
                }
                Some(_) => self.window_end = None,
                None => {}
            }
            if self.window_end.is_none() {
                self.seen = 0;
                self.window_end = Some(now_ms + self.cmr_interval_ms as u64);
            }
            self.seen |= 1 << ft;
        }
        req
    }
}
