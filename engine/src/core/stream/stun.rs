//! ICE-lite STUN answers on a media socket (rtpengine's `stun.c`).

use std::net::SocketAddr;

use super::dtls::kick_dtls;
use super::{drop_packet, Absorbed, Route, Stream, Verdict};
use crate::core::stats::{DropReason, WorkerCounters};
use crate::core::stun::agent::{RequestOutcome, ResponseOutcome};
use crate::core::stun::{self, StunClass, StunMessage};

/// ICE-lite (RFC 8445 §2.5, rtpengine `stun.c`): check a STUN Binding request in
/// `buf[..len]` against our credentials and overwrite it with the response (success with
/// XOR-MAPPED-ADDRESS, or the error the check calls for), to go back to `src` from this
/// socket. A nominating request (USE-CANDIDATE) moves the party's address to `src`.
///
/// With a full agent on the socket, a valid request also queues a triggered check back to
/// `src` (learning it as a peer-reflexive candidate), responses go to the agent, and the
/// party's address moves when the agent selects a pair.
pub(super) fn answer_stun(
    entry: &mut Stream,
    counters: &WorkerCounters,
    buf: &mut [u8],
    len: usize,
    src: Option<SocketAddr>,
    now_ms: u64,
) -> Result<(Route, usize), Verdict> {
    let refused = Err(Verdict::Drop(DropReason::Stun));
    let (Some(ice), Some(src)) = (entry.ice.as_deref(), src) else {
        return refused;
    };
    let Ok(msg) = StunMessage::parse(&buf[..len]) else {
        return refused;
    };
    if matches!(msg.class, StunClass::Success | StunClass::Error) {
        // A response to one of our checks.
        let outcome = entry
            .agent
            .as_deref_mut()
            .map(|a| a.handle_response(now_ms, src, &msg));
        return match outcome {
            Some(Ok(ResponseOutcome::Succeeded { selected: true })) => {
                select(entry, src);
                Err(Verdict::Absorbed(Absorbed::StunResponse))
            }
            Some(Ok(_)) => Err(Verdict::Absorbed(Absorbed::StunResponse)),
            Some(Err(_)) | None => refused,
        };
    }
    let tid = msg.transaction_id;
    let checked = stun::check_ice_binding_request(&msg, ice.ufrag.as_bytes(), ice.pwd.as_bytes())
        .map(|req| (req.use_candidate, req.role));
    let written = match checked {
        Ok((use_candidate, role)) => {
            match entry.agent.as_deref_mut() {
                Some(agent) => {
                    if agent.handle_request(now_ms, src, use_candidate, role)
                        == RequestOutcome::RoleConflict
                    {
                        let Some(ice) = entry.ice.as_deref() else {
                            return refused;
                        };
                        return match stun::write_binding_error(
                            buf,
                            &tid,
                            487,
                            Some(ice.pwd.as_bytes()),
                        ) {
                            Ok(n) => Ok((Route::Reply, n)),
                            Err(_) => Err(Verdict::Absorbed(Absorbed::StunRefused)),
                        };
                    }
                    if agent.selected() == Some(src) {
                        select(entry, src);
                    }
                }
                None if use_candidate => select(entry, src),
                None => {}
            }
            let Some(ice) = entry.ice.as_deref() else {
                return refused;
            };
            let written = stun::write_binding_success(buf, &tid, src, ice.pwd.as_bytes());
            // A checked path to the party: a DTLS client can say ClientHello on it now.
            if let Some(link) = entry.dtls.as_deref_mut() {
                if link.peer.is_none() || use_candidate {
                    link.peer = Some(src);
                }
                kick_dtls(entry);
            }
            written
        }
        Err(e) => {
            // Refused, and counted so, but still answered with the error the check calls
            // for.
            drop_packet(counters, &entry.stats, DropReason::Stun);
            match e.response_code() {
                Some(code) => stun::write_binding_error(buf, &tid, code, None),
                None => return Err(Verdict::Absorbed(Absorbed::StunRefused)),
            }
        }
    };
    match written {
        Ok(n) => Ok((Route::Reply, n)),
        Err(_) => Err(Verdict::Absorbed(Absorbed::StunRefused)),
    }
}

/// ICE settled on `src` (a nomination, or our agent's selected pair): media to the party
/// goes there from now on.
fn select(entry: &mut Stream, src: SocketAddr) {
    if entry.latch.nominate(src) {
        entry.stats.set_endpoint(Some(src));
    }
}
