//! SRTP contexts of a stream (rtpengine's `crypto_context`): built from the plan's keys and
//! rebuilt only when they change, and protection of what leaves towards a party.

use tracing::warn;

use super::{Route, Stream};
use std::sync::atomic::Ordering::Relaxed;

use crate::core::plan::{PortKey, SrtpKeys, StreamResume};
use crate::core::srtp::{SrtpContext, SrtpPosition};
use crate::core::stats::DropReason;

/// An SRTP context with the keys it was made from (rtpengine's `crypto_context`), so a
/// re-applied plan rebuilds it only when the keys change (keeping ROC and replay state).
pub(crate) struct Srtp {
    pub(crate) keys: SrtpKeys,
    pub(crate) ctx: SrtpContext,
}

/// Continue the contexts of a stream taken over from stored state where they stood.
pub(crate) fn resume(
    srtp_in: &mut Option<Box<Srtp>>,
    srtp_out: &mut Option<Box<Srtp>>,
    from: &StreamResume,
) {
    if let Some(s) = srtp_in {
        s.ctx.resume(SrtpPosition {
            rx_rtp: from.srtp_in,
            ..SrtpPosition::default()
        });
    }
    if let Some(s) = srtp_out {
        s.ctx.resume(SrtpPosition {
            tx_rtp: from.srtp_out,
            tx_rtcp: from.srtcp_out,
            ..SrtpPosition::default()
        });
    }
}

/// Make `slot` match `keys`: unchanged keys keep the context and its state.
pub(crate) fn rekey(slot: &mut Option<Box<Srtp>>, keys: Option<SrtpKeys>, port: PortKey) {
    match keys {
        None => *slot = None,
        Some(k) if slot.as_ref().is_some_and(|s| s.keys == k) => {}
        Some(k) => match SrtpContext::from_key_salt(k.suite, &k.key_salt) {
            Ok(ctx) => {
                let ctx = ctx.with_mki(&k.mki);
                *slot = Some(Box::new(Srtp { keys: k, ctx }))
            }
            Err(e) => {
                warn!(port = port.0, error = %e, "cannot key SRTP context; stream left unkeyed");
                *slot = None;
            }
        },
    }
}

/// SRTP-protect a generated RTP packet with a sink's outbound context (`dtls`: the party
/// uses DTLS-SRTP, so without keys yet nothing may be sent).
#[inline]
pub(crate) fn srtp_protect_parts(
    srtp_out: &mut Option<Box<Srtp>>,
    dtls: bool,
    buf: &mut [u8],
    len: usize,
) -> Result<usize, DropReason> {
    match srtp_out.as_deref_mut() {
        None if dtls => Err(DropReason::Dtls),
        None => Ok(len),
        Some(srtp) => srtp
            .ctx
            .protect_rtp(buf, len)
            .map_err(DropReason::from_srtp),
    }
}

/// The SRTP half of [`protect`].
#[inline]
pub(super) fn srtp_protect(
    sink: &mut Stream,
    route: Route,
    buf: &mut [u8],
    len: usize,
) -> Result<usize, DropReason> {
    let Some(srtp) = sink.srtp_out.as_deref_mut() else {
        // Plain RTP must not reach a DTLS-SRTP party whose keys are not settled yet.
        if sink.dtls.is_some() && route != Route::Reply {
            return Err(DropReason::Dtls);
        }
        return Ok(len);
    };
    let r = match route {
        Route::Rtp | Route::Transcode => srtp.ctx.protect_rtp(buf, len),
        Route::Rtcp => srtp.ctx.protect_rtcp(buf, len),
        Route::Reply | Route::Opaque | Route::Gateway => return Ok(len),
    };
    let position = srtp.ctx.position();
    sink.stats.srtp_out.store(position.tx_rtp, Relaxed);
    sink.stats.srtcp_out.store(position.tx_rtcp, Relaxed);
    r.map_err(DropReason::from_srtp)
}
