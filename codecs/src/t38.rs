//! T.38 fax gateway through the system `libspandsp` (`t38_gateway_*`), the library rtpengine
//! and Asterisk use for the same job (rtpengine: `daemon/t38.c`).
//!
//! A gateway joins a fax machine on an audio line (T.30 modem tones, 8 kHz 16-bit PCM) to a
//! T.38 party (IFP packets): [`T38Gateway::rx_audio`] takes the audio party's samples,
//! [`T38Gateway::tx_audio`] gives the samples to send it, [`T38Gateway::rx_ifp`] takes the
//! T.38 party's IFP packets in sequence, and [`T38Gateway::poll_ifp`] hands out the IFP
//! packets to send it (UDPTL framing is the caller's: `engine::core::t38::udptl`).
//!
//! spandsp calls back with each IFP packet it wants sent while one of the calls above runs;
//! the callback copies it into a fixed ring owned by the gateway, so nothing allocates per
//! packet. A packet longer than [`MAX_IFP`] or one that finds the ring full is counted in
//! [`T38Gateway::dropped`] instead.

use std::os::raw::{c_int, c_void};
use std::ptr::NonNull;

use crate::CodecError;

/// Sample rate of the audio side (T.30 modems run at 8 kHz).
pub const PCM_RATE: u32 = 8000;
/// Largest IFP packet the gateway produces (spandsp's `max_datagram_size`): far above what
/// 14.4 kbit/s image data needs per packet, below rtpengine's advertised 512-byte datagrams
/// once UDPTL redundancy is added by the caller.
pub const MAX_IFP: usize = 400;
/// IFP packets held between polls: a burst of indicator repeats plus data fits.
const OUTBOX: usize = 32;

pub mod terminal;

mod ffi {
    use std::os::raw::{c_int, c_void};

    #[repr(C)]
    pub(super) struct GatewayState {
        _private: [u8; 0],
    }
    #[repr(C)]
    pub(super) struct CoreState {
        _private: [u8; 0],
    }

    pub(super) type TxPacketHandler = unsafe extern "C" fn(
        s: *mut CoreState,
        user_data: *mut c_void,
        buf: *const u8,
        len: c_int,
        count: c_int,
    ) -> c_int;

    // /usr/include/spandsp/t38_gateway.h and t38_core.h (spandsp 0.0.6). A NULL state asks
    // the library to allocate one; `t38_gateway_free` releases it.
    extern "C" {
        pub(super) fn t38_gateway_init(
            s: *mut GatewayState,
            tx_packet_handler: TxPacketHandler,
            tx_packet_user_data: *mut c_void,
        ) -> *mut GatewayState;
        pub(super) fn t38_gateway_free(s: *mut GatewayState) -> c_int;
        pub(super) fn t38_gateway_rx(s: *mut GatewayState, amp: *mut i16, len: c_int) -> c_int;
        pub(super) fn t38_gateway_tx(s: *mut GatewayState, amp: *mut i16, max_len: c_int) -> c_int;
        pub(super) fn t38_gateway_set_ecm_capability(s: *mut GatewayState, ecm_allowed: c_int);
        pub(super) fn t38_gateway_set_transmit_on_idle(
            s: *mut GatewayState,
            transmit_on_idle: c_int,
        );
        pub(super) fn t38_gateway_set_supported_modems(
            s: *mut GatewayState,
            supported_modems: c_int,
        );
        pub(super) fn t38_gateway_get_t38_core_state(s: *mut GatewayState) -> *mut CoreState;
        pub(super) fn t38_core_rx_ifp_packet(
            s: *mut CoreState,
            buf: *const u8,
            len: c_int,
            seq_no: u16,
        ) -> c_int;
        pub(super) fn t38_set_t38_version(s: *mut CoreState, t38_version: c_int);
        pub(super) fn t38_set_data_rate_management_method(s: *mut CoreState, method: c_int);
        pub(super) fn t38_set_fill_bit_removal(s: *mut CoreState, fill_bit_removal: c_int);
        pub(super) fn t38_set_mmr_transcoding(s: *mut CoreState, mmr_transcoding: c_int);
        pub(super) fn t38_set_jbig_transcoding(s: *mut CoreState, jbig_transcoding: c_int);
        pub(super) fn t38_set_max_datagram_size(s: *mut CoreState, max_datagram_size: c_int);
    }

    // enum t30_modem_support_types_e (spandsp/t30.h).
    pub(super) const T30_SUPPORT_V27TER: c_int = 0x01;
    pub(super) const T30_SUPPORT_V29: c_int = 0x02;
    pub(super) const T30_SUPPORT_V17: c_int = 0x04;
    pub(super) const T30_SUPPORT_V34HDX: c_int = 0x08;
    pub(super) const T30_SUPPORT_IAF: c_int = 0x10;
}

/// What the gateway runs with (the T.30/T.38 part of rtpengine's `t38_options`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GatewayOptions {
    /// T.38 version spoken on the IFP side.
    pub version: u8,
    /// TCF is generated locally (`localTCF`) instead of transferred.
    pub local_tcf: bool,
    pub fill_bit_removal: bool,
    pub transcoding_mmr: bool,
    pub transcoding_jbig: bool,
    pub no_ecm: bool,
    pub no_v17: bool,
    pub no_v27ter: bool,
    pub no_v29: bool,
    pub no_v34: bool,
    pub no_iaf: bool,
}

/// IFP packets spandsp asked to send, copied out of its callback.
struct Outbox {
    packets: [[u8; MAX_IFP]; OUTBOX],
    /// (length, repeat count) per packet.
    meta: [(u16, u8); OUTBOX],
    head: usize,
    len: usize,
    dropped: u64,
}

impl Outbox {
    fn new() -> Box<Outbox> {
        Box::new(Outbox {
            packets: [[0; MAX_IFP]; OUTBOX],
            meta: [(0, 0); OUTBOX],
            head: 0,
            len: 0,
            dropped: 0,
        })
    }

    /// The oldest packet not taken yet, with its repeat count.
    fn pop(&mut self) -> Option<(&[u8], u8)> {
        if self.len == 0 {
            return None;
        }
        let at = self.head;
        self.head = (self.head + 1) % OUTBOX;
        self.len -= 1;
        let (len, count) = self.meta[at];
        Some((&self.packets[at][..usize::from(len)], count))
    }

    fn push(&mut self, data: &[u8], count: u8) {
        if data.len() > MAX_IFP || self.len == OUTBOX {
            self.dropped += 1;
            return;
        }
        let at = (self.head + self.len) % OUTBOX;
        self.packets[at][..data.len()].copy_from_slice(data);
        self.meta[at] = (data.len() as u16, count);
        self.len += 1;
    }
}

unsafe extern "C" fn on_ifp(
    _s: *mut ffi::CoreState,
    user_data: *mut c_void,
    buf: *const u8,
    len: c_int,
    count: c_int,
) -> c_int {
    if user_data.is_null() || buf.is_null() || len < 0 {
        return -1;
    }
    // SAFETY: `user_data` is the `Outbox` boxed by the gateway that registered this
    // callback; spandsp calls it only from inside the gateway's own functions, which all
    // take `&mut T38Gateway`, so no other reference to the outbox is live. `buf` holds
    // `len` bytes for the duration of the call.
    let (outbox, data) = unsafe {
        (
            &mut *(user_data as *mut Outbox),
            std::slice::from_raw_parts(buf, len as usize),
        )
    };
    outbox.push(data, count.clamp(1, 255) as u8);
    0
}

/// One spandsp T.38 gateway (rtpengine: the `gw` of its `t38_gateway`).
pub struct T38Gateway {
    state: NonNull<ffi::GatewayState>,
    core: NonNull<ffi::CoreState>,
    outbox: Box<Outbox>,
}

impl std::fmt::Debug for T38Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("T38Gateway")
            .field("queued", &self.outbox.len)
            .field("dropped", &self.outbox.dropped)
            .finish_non_exhaustive()
    }
}

// SAFETY: the gateway state is heap memory owned exclusively by this value; spandsp keeps no
// global or thread-local state for it, and every call takes `&mut self`.
unsafe impl Send for T38Gateway {}

impl T38Gateway {
    pub fn new(opts: &GatewayOptions) -> Result<T38Gateway, CodecError> {
        let mut outbox = Outbox::new();
        let user = (&mut *outbox) as *mut Outbox as *mut c_void;
        // SAFETY: a NULL state makes spandsp allocate one; NULL back means it failed. The
        // outbox outlives the state (dropped after `t38_gateway_free`, see Drop) and does
        // not move (boxed).
        let state = unsafe { ffi::t38_gateway_init(std::ptr::null_mut(), on_ifp, user) };
        let state = NonNull::new(state).ok_or(CodecError::T38Init)?;
        // SAFETY: `state` is a live gateway; the core state belongs to it.
        let core = unsafe { ffi::t38_gateway_get_t38_core_state(state.as_ptr()) };
        let Some(core) = NonNull::new(core) else {
            // SAFETY: allocated above, released once.
            unsafe { ffi::t38_gateway_free(state.as_ptr()) };
            return Err(CodecError::T38Init);
        };
        let modems = [
            (opts.no_v17, ffi::T30_SUPPORT_V17),
            (opts.no_v27ter, ffi::T30_SUPPORT_V27TER),
            (opts.no_v29, ffi::T30_SUPPORT_V29),
            (opts.no_v34, ffi::T30_SUPPORT_V34HDX),
            (opts.no_iaf, ffi::T30_SUPPORT_IAF),
        ]
        .iter()
        .filter(|(off, _)| !off)
        .fold(0, |acc, (_, bit)| acc | bit);
        let (s, c) = (state.as_ptr(), core.as_ptr());
        // SAFETY: both pointers are live and belong to this gateway.
        unsafe {
            ffi::t38_gateway_set_ecm_capability(s, c_int::from(!opts.no_ecm));
            // Audio goes out continuously (silence between signals), as an RTP stream must.
            ffi::t38_gateway_set_transmit_on_idle(s, 1);
            ffi::t38_gateway_set_supported_modems(s, modems);
            ffi::t38_set_t38_version(c, c_int::from(opts.version));
            ffi::t38_set_data_rate_management_method(c, if opts.local_tcf { 1 } else { 2 });
            ffi::t38_set_fill_bit_removal(c, c_int::from(opts.fill_bit_removal));
            ffi::t38_set_mmr_transcoding(c, c_int::from(opts.transcoding_mmr));
            ffi::t38_set_jbig_transcoding(c, c_int::from(opts.transcoding_jbig));
            ffi::t38_set_max_datagram_size(c, MAX_IFP as c_int);
        }
        Ok(T38Gateway {
            state,
            core,
            outbox,
        })
    }

    /// Take 8 kHz samples from the audio party. Returns how many spandsp did not use.
    pub fn rx_audio(&mut self, pcm: &mut [i16]) -> usize {
        let len = pcm.len().min(c_int::MAX as usize) as c_int;
        // SAFETY: `pcm` holds `len` samples; spandsp reads them (its prototype is not const).
        let left = unsafe { ffi::t38_gateway_rx(self.state.as_ptr(), pcm.as_mut_ptr(), len) };
        left.max(0) as usize
    }

    /// Fill `out` with up to `out.len()` samples to send the audio party; returns how many.
    pub fn tx_audio(&mut self, out: &mut [i16]) -> usize {
        let len = out.len().min(c_int::MAX as usize) as c_int;
        // SAFETY: `out` has room for `len` samples.
        let n = unsafe { ffi::t38_gateway_tx(self.state.as_ptr(), out.as_mut_ptr(), len) };
        n.clamp(0, len) as usize
    }

    /// Take the T.38 party's IFP packet number `seq`, in sequence order.
    pub fn rx_ifp(&mut self, ifp: &[u8], seq: u16) {
        let len = ifp.len().min(c_int::MAX as usize) as c_int;
        // SAFETY: `ifp` holds `len` bytes; spandsp only reads them.
        unsafe { ffi::t38_core_rx_ifp_packet(self.core.as_ptr(), ifp.as_ptr(), len, seq) };
    }

    /// The next IFP packet to send the T.38 party and how many times spandsp wants it sent
    /// (indicator packets are repeated); `None` when there is none.
    pub fn poll_ifp(&mut self) -> Option<(&[u8], u8)> {
        self.outbox.pop()
    }

    /// IFP packets lost because the outbox was full or a packet too long.
    pub fn dropped(&self) -> u64 {
        self.outbox.dropped
    }
}

impl Drop for T38Gateway {
    fn drop(&mut self) {
        // SAFETY: allocated by `t38_gateway_init`, released exactly once; the outbox it
        // points at is still alive here.
        unsafe { ffi::t38_gateway_free(self.state.as_ptr()) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Energy of `freq` in `pcm` relative to the total (Goertzel), 0..1.
    fn tone_share(pcm: &[i16], freq: f64) -> f64 {
        let w = 2.0 * std::f64::consts::PI * freq / f64::from(PCM_RATE);
        let (mut s1, mut s2) = (0.0f64, 0.0f64);
        let mut total = 0.0;
        for &x in pcm {
            let x = f64::from(x);
            let s = x + 2.0 * w.cos() * s1 - s2;
            s2 = s1;
            s1 = s;
            total += x * x;
        }
        let power = s1 * s1 + s2 * s2 - 2.0 * w.cos() * s1 * s2;
        if total == 0.0 {
            return 0.0;
        }
        power * 2.0 / (pcm.len() as f64 * total)
    }

    #[test]
    fn ced_indicator_becomes_a_2100_hz_answer_tone() {
        let mut gw = T38Gateway::new(&GatewayOptions::default()).unwrap();
        let mut out = [0i16; 160];
        // Idle: the gateway still sends (silence), 20 ms at a time.
        assert_eq!(gw.tx_audio(&mut out), 160);
        // T38_IND_CED (2): a T.38 answering machine's answer tone.
        gw.rx_ifp(&[2 << 1], 0);
        let mut tone = Vec::new();
        for _ in 0..25 {
            let n = gw.tx_audio(&mut out);
            tone.extend_from_slice(&out[..n]);
        }
        let share = tone_share(&tone[800..], 2100.0);
        let other = tone_share(&tone[800..], 1100.0);
        assert!(
            share > 0.5 && other < 0.05,
            "2100 Hz share {share:.2}, 1100 Hz {other:.2}"
        );
        assert_eq!(gw.dropped(), 0);
    }

    #[test]
    fn an_answering_fax_machines_dis_is_sent_as_ifp() {
        let mut gw = T38Gateway::new(&GatewayOptions::default()).unwrap();
        let mut fax = terminal::FaxTerminal::audio(false).unwrap();
        let mut sent: Vec<Vec<u8>> = Vec::new();
        let mut frame = [0i16; 160];
        let mut back = [0i16; 160];
        for _ in 0..250 {
            fax.tx_audio(&mut frame);
            gw.rx_audio(&mut frame);
            let n = gw.tx_audio(&mut back);
            fax.rx_audio(&mut back[..n]);
            while let Some((ifp, count)) = gw.poll_ifp() {
                assert!(count >= 1);
                sent.push(ifp.to_vec());
            }
        }
        // The answer tone itself is regenerated on the far side; what crosses is the V.21
        // preamble indicator (t30-indicator 3) of the machine's DIS, then V.21 HDLC data IFPs
        // (data type, bit 0x80) carrying the frame: address 0xff, control 0xc8 (final), FCF
        // 0x01 (DIS, bit-reversed 0x80).
        let v21 = sent
            .iter()
            .position(|s| s.as_slice() == [3 << 1])
            .unwrap_or_else(|| panic!("no V.21 preamble in {sent:02x?}"));
        let hdlc: Vec<u8> = sent[v21..]
            .iter()
            .filter(|p| p[0] & 0x80 != 0 && p.len() == 6)
            .map(|p| p[5])
            .collect();
        assert_eq!(hdlc[..3], [0xff, 0xc8, 0x01], "{sent:02x?}");
    }
}
