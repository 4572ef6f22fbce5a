//! A two-party call through the daemon: caller A (from-tag) and callee B (to-tag).

use std::net::SocketAddr;
use std::time::Duration;

use crate::ng::NgClient;
use crate::rtp::RtpEndpoint;
use crate::sdp::{audio_sdp, Sdp};

pub struct TwoPartyCall {
    pub call_id: String,
    pub from_tag: String,
    pub to_tag: String,
    pub a: RtpEndpoint,
    pub b: RtpEndpoint,
    /// Engine address A sends to (from the SDP the engine gave A, i.e. the answer).
    pub a_dest: SocketAddr,
    /// Engine address B sends to (from the SDP the engine gave B, i.e. the offer).
    pub b_dest: SocketAddr,
    /// SDP the engine produced for B and for A.
    pub offer_sdp: Sdp,
    pub answer_sdp: Sdp,
}

impl TwoPartyCall {
    /// Offer from A, answer from B, both `sendrecv`.
    pub fn setup(ng: &NgClient, call_id: &str) -> TwoPartyCall {
        let a = RtpEndpoint::new(0x1000_0000 ^ fnv(call_id));
        let b = RtpEndpoint::new(0x2000_0000 ^ fnv(call_id));
        let (from_tag, to_tag) = (format!("{call_id}-a"), format!("{call_id}-b"));
        let offer = ng.offer(
            call_id,
            &from_tag,
            &audio_sdp(a.addr().ip(), a.port(), 1, "sendrecv"),
        );
        let offer_sdp = parse_reply_sdp(&offer);
        let answer = ng.answer(
            call_id,
            &from_tag,
            &to_tag,
            &audio_sdp(b.addr().ip(), b.port(), 1, "sendrecv"),
        );
        let answer_sdp = parse_reply_sdp(&answer);
        TwoPartyCall {
            call_id: call_id.to_string(),
            from_tag,
            to_tag,
            a,
            b,
            a_dest: answer_sdp.audio_addr(),
            b_dest: offer_sdp.audio_addr(),
            offer_sdp,
            answer_sdp,
        }
    }

    /// Send `count` packets A→B and B→A, alternating, `gap` apart. Returns what each side
    /// sent (A's packets, B's packets).
    pub fn exchange(&mut self, count: usize, gap: Duration) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
        let (mut from_a, mut from_b) = (Vec::with_capacity(count), Vec::with_capacity(count));
        for _ in 0..count {
            from_a.push(self.a.send_next(self.a_dest));
            from_b.push(self.b.send_next(self.b_dest));
            if !gap.is_zero() {
                std::thread::sleep(gap);
            }
        }
        (from_a, from_b)
    }
}

/// The SDP of an offer/answer reply; panics with the reply when there is none.
pub fn parse_reply_sdp(reply: &crate::Value) -> Sdp {
    let text = reply
        .str_at("sdp")
        .unwrap_or_else(|| panic!("reply without sdp: {reply:?}"));
    Sdp::parse(text).unwrap_or_else(|e| panic!("engine SDP does not parse ({e}):\n{text}"))
}

/// Distinct SSRCs per call without randomness: FNV-1a of the call-id.
fn fnv(s: &str) -> u32 {
    s.bytes().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}
