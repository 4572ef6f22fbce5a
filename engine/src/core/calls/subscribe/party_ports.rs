//! Sockets for a party without a peer (a subscriber or a publisher): what it lacks,
//! allocated all or nothing, then installed on its media.

use crate::core::calls::model::{AltPorts, Call, LegId};
use crate::core::calls::{CallError, Calls};
use crate::core::plan::{PortKey, PortPair};

impl Calls {
    /// The sockets party `leg` still lacks, all or nothing: for each m= line that `needs`
    /// any (`Some(ice)`), the main pair when it has none and, with ICE, one on each other
    /// address of its logical interface (rtpengine binds every address of the interface
    /// for ICE, one candidate each). `(m= index, Some(interface) for another address,
    /// pair)`, for [`Calls::install_party_ports`].
    pub(super) fn allocate_party_ports(
        &mut self,
        call: &Call,
        leg: LegId,
        needs: &[Option<bool>],
    ) -> Result<Vec<(usize, Option<usize>, PortPair)>, CallError> {
        let primary = call.leg(leg).interface;
        let logical = self.logical_interface(primary);
        let mut wanted: Vec<(usize, Option<usize>)> = Vec::new();
        for (k, need) in needs.iter().enumerate() {
            let Some(ice) = *need else { continue };
            let existing = call.leg(leg).medias.get(k);
            if existing.is_none_or(|m| m.ports.is_none()) {
                wanted.push((k, None));
            }
            if ice {
                for &alt in &logical[1..] {
                    if existing.is_none_or(|m| m.alt_ports.iter().all(|a| a.interface != alt)) {
                        wanted.push((k, Some(alt)));
                    }
                }
            }
        }
        let mut got = Vec::with_capacity(wanted.len());
        for (k, alt) in wanted {
            match self
                .media
                .allocate_pair(&self.config.interfaces[alt.unwrap_or(primary)])
            {
                Ok(p) => got.push((k, alt, p)),
                Err(e) => {
                    let keys: Vec<PortKey> = got
                        .iter()
                        .flat_map(|(_, _, p): &(usize, Option<usize>, PortPair)| {
                            [p.rtp.key, p.rtcp.key]
                        })
                        .collect();
                    self.media.release(&keys);
                    return Err(e.into());
                }
            }
        }
        self.totals.streams += got.iter().filter(|g| g.1.is_none()).count() as u64;
        Ok(got)
    }

    /// Give party `leg` the sockets [`Calls::allocate_party_ports`] got (its medias exist).
    pub(super) fn install_party_ports(
        &self,
        call: &mut Call,
        leg: LegId,
        got: Vec<(usize, Option<usize>, PortPair)>,
    ) {
        let logical = self.logical_interface(call.leg(leg).interface);
        for (k, alt, pair) in got {
            let m = &mut call.leg_mut(leg).medias[k];
            match alt {
                Some(interface) => {
                    m.alt_ports.push(AltPorts {
                        interface,
                        ports: pair,
                    });
                    // Candidate order: the logical interface's order.
                    m.alt_ports
                        .sort_by_key(|a| logical.iter().position(|&x| x == a.interface));
                }
                None => m.ports = Some(pair),
            }
        }
    }
}
