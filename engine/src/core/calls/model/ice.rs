//! Our ICE candidates toward a party and the party's own ICE parameters (rtpengine's
//! `ice_agent` and `insert_candidates`).

use std::net::{IpAddr, SocketAddr};

use super::Media;
use crate::core::plan::{FullIce, PortPair};
use crate::core::sdp::IceCandidate;

/// What our ICE candidates say about one configured interface address (rtpengine's
/// `local_intf`): the address written in SDP and the candidate foundation, 16 random
/// alphanumerics chosen once per address and daemon run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CandidateBase {
    pub address: IpAddr,
    pub foundation: String,
}

/// Type preference of a host candidate (RFC 8445 §5.1.2.2).
pub(crate) const HOST_TYPE_PREF: u32 = 126;

/// RFC 8445 §5.1.2.1 priority as rtpengine computes it: the local preference counts down
/// from 65535 with the address's position in the logical interface (`local_index` 0 for
/// the first address), and the component takes the low byte.
pub(crate) fn candidate_priority(type_pref: u32, local_index: usize, component: u8) -> u32 {
    let local_pref = 65535u32.saturating_sub(local_index as u32);
    (type_pref << 24) | (local_pref << 8) | (256 - u32::from(component))
}

/// A party's own ICE parameters from its SDP (rtpengine: the remote side of `ice_agent`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RemoteIce {
    pub ufrag: String,
    pub pwd: String,
    /// The party said `a=ice-lite`: it never checks, we must nominate.
    pub lite: bool,
    /// UDP candidates: (component, address).
    pub candidates: Vec<(u16, SocketAddr)>,
}

impl RemoteIce {
    /// The party's ICE from one m= section (credentials may be at session level).
    pub(crate) fn from_sdp(sdp: &crate::core::sdp::Sdp, i: usize) -> Option<RemoteIce> {
        let section = sdp.media.get(i)?;
        let get = |name: &str| {
            section
                .attribute(name)
                .or_else(|| sdp.session_attribute(name))
                .map(str::to_owned)
        };
        let (ufrag, pwd) = (get("ice-ufrag")?, get("ice-pwd")?);
        let lite = sdp.session_attribute("ice-lite").is_some() || section.has_attribute("ice-lite");
        let candidates = section
            .attributes("candidate")
            .filter_map(|v| {
                // foundation component transport priority address port typ type ...
                let f: Vec<&str> = v.split_ascii_whitespace().collect();
                if f.len() < 6 || !f[2].eq_ignore_ascii_case("udp") {
                    return None;
                }
                let component: u16 = f[1].parse().ok()?;
                let ip: IpAddr = f[4].parse().ok()?;
                let port: u16 = f[5].parse().ok()?;
                Some((component, SocketAddr::new(ip, port)))
            })
            .collect();
        Some(RemoteIce {
            ufrag,
            pwd,
            lite,
            candidates,
        })
    }
}

impl Media {
    /// The full-agent part of the ICE plan toward this party: when we did not say
    /// `a=ice-lite` and the party does ICE itself.
    pub(super) fn full_ice_plan(&self) -> Option<FullIce> {
        let remote = self.remote_ice.as_ref().filter(|_| self.ice_full)?;
        // The offerer controls, unless it is lite (RFC 8445 §6.1.1).
        let controlling = self.ice_we_offered || remote.lite;
        let component = |c: u16| {
            remote
                .candidates
                .iter()
                .filter(|(comp, _)| *comp == c)
                .map(|(_, a)| *a)
                .collect::<Vec<_>>()
        };
        Some(FullIce {
            remote_ufrag: remote.ufrag.clone(),
            remote_pwd: remote.pwd.clone(),
            controlling,
            rtp_candidates: component(1),
            rtcp_candidates: component(2),
        })
    }

    /// Our host candidates toward this party (rtpengine's `insert_candidates`): for each
    /// component, one per socket, the primary address (`interface`, the leg's) first and
    /// then `alt_ports` in order. `bases` describes every configured interface address.
    pub(crate) fn ice_candidates(
        &self,
        interface: usize,
        bases: &[CandidateBase],
    ) -> Vec<IceCandidate> {
        let Some(ports) = self.ports else {
            return Vec::new();
        };
        let sockets: Vec<(usize, PortPair)> = std::iter::once((interface, ports))
            .chain(self.alt_ports.iter().map(|a| (a.interface, a.ports)))
            .collect();
        let components: &[u8] = if self.rtcp_mux { &[1] } else { &[1, 2] };
        let mut out = Vec::with_capacity(sockets.len() * components.len());
        for &component in components {
            for (local_index, (iface, pair)) in sockets.iter().enumerate() {
                let Some(base) = bases.get(*iface) else {
                    continue;
                };
                let port = if component == 1 { pair.rtp } else { pair.rtcp };
                out.push(IceCandidate {
                    foundation: base.foundation.clone(),
                    component,
                    priority: candidate_priority(HOST_TYPE_PREF, local_index, component),
                    address: base.address,
                    port: port.addr.port(),
                    relay: false,
                });
            }
        }
        out
    }
}
