//! Fax machines made by libspandsp: an analogue one (T.30 over V.21/V.27ter/V.29/V.17
//! modem tones, `fax_state_t`) and a T.38 terminal (the same T.30 session over IFP packets,
//! `t38_terminal_state_t`). They are the other ends a gateway is tested against, the way
//! rtpengine tests its gateway with spandsp's own terminals (`t/spandsp_*_fax_*.c`).
//!
//! A terminal sends or receives one TIFF file. Drive an analogue one with 8 kHz samples
//! ([`FaxTerminal::tx_audio`]/[`FaxTerminal::rx_audio`]); drive a T.38 one with its
//! clock ([`FaxTerminal::advance`]), the IFP packets it receives ([`FaxTerminal::rx_ifp`])
//! and those it sends ([`FaxTerminal::poll_ifp`]). When the session ends, T.30 phase E,
//! [`FaxTerminal::outcome`] holds spandsp's completion code and page counts.

use std::ffi::CString;
use std::os::raw::{c_char, c_int, c_void};
use std::path::Path;
use std::ptr::NonNull;

use super::{ffi as core_ffi, on_ifp, Outbox};
use crate::CodecError;

mod ffi {
    use super::core_ffi::{CoreState, TxPacketHandler};
    use std::os::raw::{c_char, c_int, c_void};

    #[repr(C)]
    pub(super) struct FaxState {
        _private: [u8; 0],
    }
    #[repr(C)]
    pub(super) struct TerminalState {
        _private: [u8; 0],
    }
    #[repr(C)]
    pub(super) struct T30State {
        _private: [u8; 0],
    }

    /// `t30_stats_t` (spandsp/t30.h, 0.0.6), followed by room for fields later releases add
    /// at its end.
    #[repr(C)]
    #[derive(Default)]
    pub(super) struct T30Stats {
        pub(super) bit_rate: c_int,
        pub(super) error_correcting_mode: c_int,
        pub(super) pages_tx: c_int,
        pub(super) pages_rx: c_int,
        pub(super) pages_in_file: c_int,
        pub(super) x_resolution: c_int,
        pub(super) y_resolution: c_int,
        pub(super) width: c_int,
        pub(super) length: c_int,
        pub(super) image_size: c_int,
        pub(super) encoding: c_int,
        pub(super) bad_rows: c_int,
        pub(super) longest_bad_row_run: c_int,
        pub(super) error_correcting_mode_retries: c_int,
        pub(super) current_status: c_int,
        pub(super) spare: [c_int; 16],
    }

    pub(super) type PhaseEHandler =
        unsafe extern "C" fn(s: *mut T30State, user_data: *mut c_void, code: c_int);

    // spandsp/fax.h, t38_terminal.h, t30_api.h, t30.h (0.0.6).
    extern "C" {
        pub(super) fn fax_init(s: *mut FaxState, calling_party: c_int) -> *mut FaxState;
        pub(super) fn fax_tx(s: *mut FaxState, amp: *mut i16, max_len: c_int) -> c_int;
        pub(super) fn fax_rx(s: *mut FaxState, amp: *mut i16, len: c_int) -> c_int;
        pub(super) fn fax_set_transmit_on_idle(s: *mut FaxState, transmit_on_idle: c_int);
        pub(super) fn fax_get_t30_state(s: *mut FaxState) -> *mut T30State;
        pub(super) fn fax_free(s: *mut FaxState) -> c_int;
        pub(super) fn t38_terminal_init(
            s: *mut TerminalState,
            calling_party: c_int,
            tx_packet_handler: TxPacketHandler,
            tx_packet_user_data: *mut c_void,
        ) -> *mut TerminalState;
        pub(super) fn t38_terminal_send_timeout(s: *mut TerminalState, samples: c_int) -> c_int;
        pub(super) fn t38_terminal_get_t30_state(s: *mut TerminalState) -> *mut T30State;
        pub(super) fn t38_terminal_get_t38_core_state(s: *mut TerminalState) -> *mut CoreState;
        pub(super) fn t38_terminal_free(s: *mut TerminalState) -> c_int;
        pub(super) fn t30_set_tx_file(
            s: *mut T30State,
            file: *const c_char,
            start: c_int,
            stop: c_int,
        );
        pub(super) fn t30_set_rx_file(s: *mut T30State, file: *const c_char, stop: c_int);
        pub(super) fn t30_set_phase_e_handler(
            s: *mut T30State,
            handler: PhaseEHandler,
            user_data: *mut c_void,
        );
        pub(super) fn t30_get_transfer_statistics(s: *mut T30State, t: *mut T30Stats);
    }
}

/// How a fax session ended (T.30 phase E).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FaxOutcome {
    /// spandsp's completion code: 0 (`T30_ERR_OK`) for a successful session.
    pub status: i32,
    pub pages_tx: u32,
    pub pages_rx: u32,
}

impl FaxOutcome {
    pub fn ok(&self) -> bool {
        self.status == 0
    }
}

/// Written by the phase E callback.
struct Done(Option<FaxOutcome>);

unsafe extern "C" fn on_phase_e(s: *mut ffi::T30State, user_data: *mut c_void, code: c_int) {
    if s.is_null() || user_data.is_null() {
        return;
    }
    let mut stats = ffi::T30Stats::default();
    // SAFETY: `s` is the live T.30 state spandsp calls back from; `stats` has room for the
    // structure it fills. `user_data` is the terminal's boxed `Done`, to which no other
    // reference is live while spandsp runs (every call into it takes `&mut FaxTerminal`).
    unsafe {
        ffi::t30_get_transfer_statistics(s, &mut stats);
        (*(user_data as *mut Done)).0 = Some(FaxOutcome {
            status: code,
            pages_tx: stats.pages_tx.max(0) as u32,
            pages_rx: stats.pages_rx.max(0) as u32,
        });
    }
}

enum Kind {
    Audio(NonNull<ffi::FaxState>),
    T38 {
        state: NonNull<ffi::TerminalState>,
        core: NonNull<core_ffi::CoreState>,
    },
}

/// One spandsp fax machine, analogue or T.38.
pub struct FaxTerminal {
    kind: Kind,
    t30: NonNull<ffi::T30State>,
    outbox: Box<Outbox>,
    done: Box<Done>,
    /// The file names spandsp keeps pointers to.
    files: Vec<CString>,
}

// SAFETY: the states are heap memory owned by this value alone; spandsp keeps no global
// state for them, and every call takes `&mut self`.
unsafe impl Send for FaxTerminal {}

impl std::fmt::Debug for FaxTerminal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaxTerminal")
            .field("t38", &matches!(self.kind, Kind::T38 { .. }))
            .field("outcome", &self.done.0)
            .finish_non_exhaustive()
    }
}

impl FaxTerminal {
    /// An analogue fax machine; `calling`: it places the call (sends CNG) rather than
    /// answering (sends CED).
    pub fn audio(calling: bool) -> Result<FaxTerminal, CodecError> {
        // SAFETY: a NULL state makes spandsp allocate one; NULL back means it failed.
        let state = unsafe { ffi::fax_init(std::ptr::null_mut(), c_int::from(calling)) };
        let state = NonNull::new(state).ok_or(CodecError::T38Init)?;
        // SAFETY: `state` is live; the T.30 state belongs to it.
        let t30 = unsafe {
            ffi::fax_set_transmit_on_idle(state.as_ptr(), 1);
            ffi::fax_get_t30_state(state.as_ptr())
        };
        let kind = Kind::Audio(state);
        FaxTerminal::finish(kind, t30, Outbox::new())
    }

    /// A T.38 terminal.
    pub fn t38(calling: bool) -> Result<FaxTerminal, CodecError> {
        let mut outbox = Outbox::new();
        let user = (&mut *outbox) as *mut Outbox as *mut c_void;
        // SAFETY: as for `audio`; the outbox is boxed (does not move) and outlives the
        // state (freed in Drop before the box).
        let state = unsafe {
            ffi::t38_terminal_init(std::ptr::null_mut(), c_int::from(calling), on_ifp, user)
        };
        let state = NonNull::new(state).ok_or(CodecError::T38Init)?;
        // SAFETY: `state` is live; both sub-states belong to it.
        let (t30, core) = unsafe {
            (
                ffi::t38_terminal_get_t30_state(state.as_ptr()),
                ffi::t38_terminal_get_t38_core_state(state.as_ptr()),
            )
        };
        let Some(core) = NonNull::new(core) else {
            // SAFETY: allocated above, released once.
            unsafe { ffi::t38_terminal_free(state.as_ptr()) };
            return Err(CodecError::T38Init);
        };
        FaxTerminal::finish(Kind::T38 { state, core }, t30, outbox)
    }

    fn finish(
        kind: Kind,
        t30: *mut ffi::T30State,
        outbox: Box<Outbox>,
    ) -> Result<FaxTerminal, CodecError> {
        let mut term = FaxTerminal {
            kind,
            t30: NonNull::dangling(),
            outbox,
            done: Box::new(Done(None)),
            files: Vec::new(),
        };
        // Dropping `term` on the error path frees the state.
        term.t30 = NonNull::new(t30).ok_or(CodecError::T38Init)?;
        let user = (&mut *term.done) as *mut Done as *mut c_void;
        // SAFETY: the T.30 state is live; `done` is boxed and lives as long as the state.
        unsafe { ffi::t30_set_phase_e_handler(term.t30.as_ptr(), on_phase_e, user) };
        Ok(term)
    }

    fn path(&mut self, path: &Path) -> Result<*const c_char, CodecError> {
        let name =
            CString::new(path.as_os_str().as_encoded_bytes()).map_err(|_| CodecError::T38Init)?;
        let ptr = name.as_ptr();
        // The CString's buffer does not move when the CString itself does.
        self.files.push(name);
        Ok(ptr)
    }

    /// Send the pages of the TIFF file at `path`.
    pub fn send_file(&mut self, path: &Path) -> Result<(), CodecError> {
        let name = self.path(path)?;
        // SAFETY: the T.30 state is live; `name` stays alive in `self.files`.
        unsafe { ffi::t30_set_tx_file(self.t30.as_ptr(), name, -1, -1) };
        Ok(())
    }

    /// Write the pages received into a TIFF file at `path`.
    pub fn receive_file(&mut self, path: &Path) -> Result<(), CodecError> {
        let name = self.path(path)?;
        // SAFETY: as above.
        unsafe { ffi::t30_set_rx_file(self.t30.as_ptr(), name, -1) };
        Ok(())
    }

    /// An analogue machine hears `pcm` (8 kHz); a T.38 terminal ignores it.
    pub fn rx_audio(&mut self, pcm: &mut [i16]) {
        if let Kind::Audio(s) = self.kind {
            let len = pcm.len().min(c_int::MAX as usize) as c_int;
            // SAFETY: `pcm` holds `len` samples.
            unsafe { ffi::fax_rx(s.as_ptr(), pcm.as_mut_ptr(), len) };
        }
    }

    /// What an analogue machine sends next, into `out`; returns how many samples (0 for a
    /// T.38 terminal).
    pub fn tx_audio(&mut self, out: &mut [i16]) -> usize {
        let Kind::Audio(s) = self.kind else {
            return 0;
        };
        let len = out.len().min(c_int::MAX as usize) as c_int;
        // SAFETY: `out` has room for `len` samples.
        let n = unsafe { ffi::fax_tx(s.as_ptr(), out.as_mut_ptr(), len) };
        n.clamp(0, len) as usize
    }

    /// Let `samples` (at 8 kHz) of time pass for a T.38 terminal: it runs its timers and
    /// queues what it sends. An analogue machine's clock is its audio.
    pub fn advance(&mut self, samples: usize) {
        if let Kind::T38 { state, .. } = self.kind {
            let n = samples.min(c_int::MAX as usize) as c_int;
            // SAFETY: the state is live.
            unsafe { ffi::t38_terminal_send_timeout(state.as_ptr(), n) };
        }
    }

    /// A T.38 terminal takes IFP packet number `seq` (in sequence).
    pub fn rx_ifp(&mut self, ifp: &[u8], seq: u16) {
        if let Kind::T38 { core, .. } = self.kind {
            let len = ifp.len().min(c_int::MAX as usize) as c_int;
            // SAFETY: `ifp` holds `len` bytes; spandsp only reads them.
            unsafe { core_ffi::t38_core_rx_ifp_packet(core.as_ptr(), ifp.as_ptr(), len, seq) };
        }
    }

    /// The next IFP packet a T.38 terminal sends, with how many times to send it.
    pub fn poll_ifp(&mut self) -> Option<(&[u8], u8)> {
        self.outbox.pop()
    }

    /// How the session ended, once it has.
    pub fn outcome(&self) -> Option<FaxOutcome> {
        self.done.0
    }
}

impl Drop for FaxTerminal {
    fn drop(&mut self) {
        // SAFETY: allocated by the matching init, released once; the boxes its callbacks
        // point at are still alive here.
        unsafe {
            match self.kind {
                Kind::Audio(s) => {
                    ffi::fax_free(s.as_ptr());
                }
                Kind::T38 { state, .. } => {
                    ffi::t38_terminal_free(state.as_ptr());
                }
            }
        }
    }
}

/// Write a one-page fax document to `path`: a TIFF of `rows` rows 1728 pixels wide at
/// 204 × 196 dpi (fine resolution, A4 width), uncompressed, one bit per pixel, with a
/// pattern of black bars that depends on `seed`, so a received page can be told from an
/// empty one.
pub fn write_test_page(path: &Path, rows: u32, seed: u8) -> std::io::Result<()> {
    const WIDTH: u32 = 1728;
    let row_bytes = WIDTH / 8;
    let mut image = Vec::with_capacity((row_bytes * rows) as usize);
    for r in 0..rows {
        for b in 0..row_bytes {
            let on = ((r / 16) + b / 12 + u32::from(seed)) % 3 == 0;
            image.push(if on { 0xff } else { 0x00 });
        }
    }
    // Little-endian TIFF: header, image data, then one IFD with its resolution values.
    let entries: u16 = 14;
    let data_at = 8u32;
    let ifd_at = data_at + image.len() as u32;
    let values_at = ifd_at + 2 + u32::from(entries) * 12 + 4;
    let mut f = Vec::new();
    f.extend_from_slice(b"II");
    f.extend_from_slice(&42u16.to_le_bytes());
    f.extend_from_slice(&ifd_at.to_le_bytes());
    f.extend_from_slice(&image);
    f.extend_from_slice(&entries.to_le_bytes());
    let mut entry = |tag: u16, kind: u16, value: u32| {
        f.extend_from_slice(&tag.to_le_bytes());
        f.extend_from_slice(&kind.to_le_bytes());
        f.extend_from_slice(&1u32.to_le_bytes());
        f.extend_from_slice(&value.to_le_bytes());
    };
    const SHORT: u16 = 3;
    const LONG: u16 = 4;
    const RATIONAL: u16 = 5;
    entry(254, LONG, 2); // NewSubfileType: a page of a multi-page document
    entry(256, LONG, WIDTH); // ImageWidth
    entry(257, LONG, rows); // ImageLength
    entry(258, SHORT, 1); // BitsPerSample
    entry(259, SHORT, 1); // Compression: none
    entry(262, SHORT, 0); // PhotometricInterpretation: 0 is white
    entry(266, SHORT, 1); // FillOrder: most significant bit first
    entry(273, LONG, data_at); // StripOffsets
    entry(277, SHORT, 1); // SamplesPerPixel
    entry(278, LONG, rows); // RowsPerStrip
    entry(279, LONG, image.len() as u32); // StripByteCounts
    entry(282, RATIONAL, values_at); // XResolution
    entry(283, RATIONAL, values_at + 8); // YResolution
    entry(296, SHORT, 2); // ResolutionUnit: inch
    f.extend_from_slice(&0u32.to_le_bytes()); // no next IFD
    for (num, den) in [(204u32, 1u32), (196, 1)] {
        f.extend_from_slice(&num.to_le_bytes());
        f.extend_from_slice(&den.to_le_bytes());
    }
    std::fs::write(path, f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::t38::{GatewayOptions, T38Gateway};

    /// An analogue machine sends a page through a gateway to a T.38 terminal, all in
    /// memory and faster than real time: 20 ms steps, IFP packets handed over directly.
    #[test]
    fn a_page_crosses_a_gateway_from_audio_to_t38() {
        let dir = std::env::temp_dir().join(format!("ngmedia-fax-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (page, out) = (dir.join("page.tif"), dir.join("received.tif"));
        write_test_page(&page, 200, 1).unwrap();
        let mut sender = FaxTerminal::audio(true).unwrap();
        sender.send_file(&page).unwrap();
        let mut receiver = FaxTerminal::t38(false).unwrap();
        receiver.receive_file(&out).unwrap();
        let mut gw = T38Gateway::new(&GatewayOptions::default()).unwrap();
        let (mut a, mut b) = ([0i16; 160], [0i16; 160]);
        let mut seq_to_t38 = 0u16;
        let mut seq_to_gw = 0u16;
        // 120 s of fax time at most.
        for _ in 0..6000 {
            let n = sender.tx_audio(&mut a);
            a[n..].fill(0);
            gw.rx_audio(&mut a);
            let n = gw.tx_audio(&mut b);
            b[n..].fill(0);
            sender.rx_audio(&mut b);
            while let Some((ifp, _)) = gw.poll_ifp() {
                let ifp = ifp.to_vec();
                receiver.rx_ifp(&ifp, seq_to_t38);
                seq_to_t38 = seq_to_t38.wrapping_add(1);
            }
            receiver.advance(160);
            while let Some((ifp, _)) = receiver.poll_ifp() {
                let ifp = ifp.to_vec();
                gw.rx_ifp(&ifp, seq_to_gw);
                seq_to_gw = seq_to_gw.wrapping_add(1);
            }
            if sender.outcome().is_some() && receiver.outcome().is_some() {
                break;
            }
        }
        let (sent, got) = (sender.outcome(), receiver.outcome());
        let _ = std::fs::remove_dir_all(&dir);
        let sent = sent.expect("sender finished");
        let got = got.expect("receiver finished");
        assert!(sent.ok() && got.ok(), "{sent:?} {got:?}");
        assert_eq!((sent.pages_tx, got.pages_rx), (1, 1));
    }
}
