//! DTLS-SRTP on a media socket (rtpengine's `dtls_connection`): the handshake runs here,
//! on the worker thread, and its exported keys become the stream's SRTP contexts.

use std::net::SocketAddr;

use tracing::{info, warn};

use super::srtp::rekey;
use super::Stream;
use crate::core::dtls::{DtlsError, DtlsKeys, DtlsRole, DtlsSession, DtlsState};
use crate::core::plan::{DtlsParams, PortKey, SrtpKeys};
use crate::core::stats::DropReason;

/// A stream's DTLS-SRTP association (rtpengine's `dtls_connection`): the plan parameters it
/// was made from, the OpenSSL session and where its handshake datagrams go.
pub(crate) struct DtlsLink {
    pub(crate) params: DtlsParams,
    pub(crate) session: DtlsSession,
    /// Source of the party's last DTLS record or ICE check: handshake datagrams go there,
    /// else to the latched or signalled address.
    pub(crate) peer: Option<SocketAddr>,
    /// The failure was logged (once per association).
    pub(crate) logged: bool,
}

impl DtlsLink {
    /// The next datagram the association wants sent (handshake flights, alerts) and where
    /// to: the party's last DTLS source or ICE check, else `fallback` (the latched or
    /// signalled address); `None` for the address when neither is known (the datagram is
    /// then discarded).
    pub(crate) fn poll_datagram(
        &mut self,
        fallback: Option<SocketAddr>,
    ) -> Option<(Option<SocketAddr>, Vec<u8>)> {
        let d = self.session.poll_datagram()?;
        Some((self.peer.or(fallback), d))
    }

    pub(crate) fn new(params: DtlsParams, port: PortKey) -> Option<Box<DtlsLink>> {
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
fn install_dtls_keys(entry: &mut Stream, keys: DtlsKeys) {
    entry.stats.set_dtls_keys(Some(keys.clone()));
    key_from_dtls(entry, keys);
    info!(port = entry.key.0, "DTLS-SRTP established");
}

/// Key the stream's SRTP contexts from DTLS-SRTP keys (a finished handshake, or one a
/// previous engine finished for the stream it took over).
pub(crate) fn key_from_dtls(entry: &mut Stream, keys: DtlsKeys) {
    let key = entry.key;
    let suite = keys.suite;
    rekey(
        &mut entry.srtp_in,
        Some(SrtpKeys {
            suite,
            key_salt: keys.remote,
            mki: Vec::new(),
        }),
        key,
    );
    rekey(
        &mut entry.srtp_out,
        Some(SrtpKeys {
            suite,
            key_salt: keys.local,
            mki: Vec::new(),
        }),
        key,
    );
}

/// Handle the outcome of a DTLS step on `entry`: install keys and log a failure once.
/// Whatever the session queued to send waits in it for the IO layer
/// ([`DtlsLink::poll_datagram`]). Returns false when the step failed.
pub(crate) fn after_dtls_step(
    entry: &mut Stream,
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
                    warn!(port = entry.key.0, error = %e, "DTLS handshake failed; no media on this stream");
                }
            }
            false
        }
    };
    ok
}

/// A client that has not said ClientHello yet starts once it knows where the party is.
/// Returns true when the session is still in the handshake (so needs timers).
pub(crate) fn kick_dtls(entry: &mut Stream) -> bool {
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
/// are refused (the caller drops and counts them).
pub(crate) fn handle_dtls(
    entry: &mut Stream,
    data: &[u8],
    src: Option<SocketAddr>,
) -> Result<(), DropReason> {
    let Some(link) = entry.dtls.as_deref_mut() else {
        return Err(DropReason::Dtls);
    };
    if link.session.state() == DtlsState::Failed {
        return Err(DropReason::Dtls);
    }
    if src.is_some() {
        link.peer = src;
    }
    let step = link.session.handle_datagram(data);
    if after_dtls_step(entry, step) {
        Ok(())
    } else {
        Err(DropReason::Dtls)
    }
}
