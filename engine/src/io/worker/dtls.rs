//! DTLS-SRTP on a media socket (rtpengine's `dtls_connection`): the handshake runs here,
//! on the worker thread, and its exported keys become the stream's SRTP contexts.

use std::net::SocketAddr;

use tracing::{info, warn};

use super::srtp::rekey;
use super::{drop_packet, sys, Entry};
use crate::core::dtls::{DtlsError, DtlsKeys, DtlsRole, DtlsSession, DtlsState};
use crate::core::plan::{DtlsParams, PortKey, SrtpKeys};
use crate::core::stats::{DropReason, WorkerCounters};

/// A stream's DTLS-SRTP association (rtpengine's `dtls_connection`): the plan parameters it
/// was made from, the OpenSSL session and where its handshake datagrams go.
pub(crate) struct DtlsLink {
    pub(super) params: DtlsParams,
    pub(super) session: DtlsSession,
    /// Source of the party's last DTLS record or ICE check: handshake datagrams go there,
    /// else to the latched or signalled address.
    pub(super) peer: Option<SocketAddr>,
    /// The failure was logged (once per association).
    pub(super) logged: bool,
}

impl DtlsLink {
    pub(super) fn new(params: DtlsParams, port: PortKey) -> Option<Box<DtlsLink>> {
        match DtlsSession::new(&params.identity, params.role, params.remote.clone()) {
            Ok(session) => Some(Box::new(DtlsLink {
                params,
                session,
                peer: None,
                logged: false,
            })),
            Err(e) => {
                warn!(port = port.0, error = %e, "cannot set up DTLS; stream carries no media");
                None
            }
        }
    }
}

/// Put keys from a finished handshake into the stream's SRTP slots.
fn install_dtls_keys(entry: &mut Entry, keys: DtlsKeys) {
    entry.stats.set_dtls_keys(Some(keys.clone()));
    key_from_dtls(entry, keys);
    info!(port = entry.port.key.0, "DTLS-SRTP established");
}

/// Key the stream's SRTP contexts from DTLS-SRTP keys (a finished handshake, or one a
/// previous engine finished for the stream it took over).
pub(super) fn key_from_dtls(entry: &mut Entry, keys: DtlsKeys) {
    let key = entry.port.key;
    let suite = keys.suite;
    rekey(
        &mut entry.srtp_in,
        Some(SrtpKeys {
            suite,
            key_salt: keys.remote,
        }),
        key,
    );
    rekey(
        &mut entry.srtp_out,
        Some(SrtpKeys {
            suite,
            key_salt: keys.local,
        }),
        key,
    );
}

/// Handle the outcome of a DTLS step on `entry`: install keys, log a failure once, and send
/// whatever the session queued. Returns false when the step failed.
pub(super) fn after_dtls_step(
    entry: &mut Entry,
    step: Result<Option<DtlsKeys>, DtlsError>,
) -> bool {
    let ok = match step {
        Ok(Some(keys)) => {
            install_dtls_keys(entry, keys);
            true
        }
        Ok(None) => true,
        Err(e) => {
            if let Some(link) = entry.dtls.as_deref_mut() {
                if !link.logged {
                    link.logged = true;
                    warn!(port = entry.port.key.0, error = %e, "DTLS handshake failed; no media on this stream");
                }
            }
            false
        }
    };
    flush_dtls(entry);
    ok
}

/// Send every datagram the stream's DTLS session queued (rare: handshake flights, alerts),
/// one `sendto` each, out of the stream's socket toward the party.
fn flush_dtls(entry: &mut Entry) {
    let fallback = entry.latch.destination();
    let dest = entry.dtls.as_deref().and_then(|l| l.peer).or(fallback);
    // Out of the socket that fits the party's address (see `Entry::out_for`).
    let fd = dest.map_or(entry.port.raw_fd(), |d| entry.out_for(0, d).1);
    let Some(link) = entry.dtls.as_deref_mut() else {
        return;
    };
    while let Some(d) = link.session.poll_datagram() {
        if let Some(dest) = dest {
            sys::send_to(fd, &d, &dest);
        }
    }
}

/// A client that has not said ClientHello yet starts once it knows where the party is.
/// Returns true when the session is still in the handshake (so needs timers).
pub(super) fn kick_dtls(entry: &mut Entry) -> bool {
    let dest_known = entry.latch.destination().is_some();
    let Some(link) = entry.dtls.as_deref_mut() else {
        return false;
    };
    if link.session.state() == DtlsState::New
        && link.params.role == DtlsRole::Client
        && (link.peer.is_some() || dest_known)
    {
        let step = link.session.start();
        after_dtls_step(entry, step);
    }
    entry
        .dtls
        .as_deref()
        .is_some_and(|l| matches!(l.session.state(), DtlsState::New | DtlsState::Handshaking))
}

/// Feed a DTLS record to the stream's association (rtpengine's `dtls()` in
/// `media_socket.c`). Records on a stream without DTLS, and those of a failed association,
/// are dropped and counted.
pub(super) fn handle_dtls(
    entry: &mut Entry,
    counters: &WorkerCounters,
    data: &[u8],
    src: Option<SocketAddr>,
) {
    let Some(link) = entry.dtls.as_deref_mut() else {
        drop_packet(counters, &entry.stats, DropReason::Dtls);
        return;
    };
    if link.session.state() == DtlsState::Failed {
        drop_packet(counters, &entry.stats, DropReason::Dtls);
        return;
    }
    if src.is_some() {
        link.peer = src;
    }
    let step = link.session.handle_datagram(data);
    if !after_dtls_step(entry, step) {
        drop_packet(counters, &entry.stats, DropReason::Dtls);
    }
}
