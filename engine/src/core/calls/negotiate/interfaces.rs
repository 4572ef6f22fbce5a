//! Which configured interface addresses a party's media is bound on: the interface named
//! by `direction`/`from-interface`/`to-interface` and the logical interface it belongs to.

use super::super::{CallError, Calls};
use crate::core::request::{Family, OfferAnswer};

impl Calls {
    /// The addresses of the logical interface `primary` belongs to (the configured
    /// interfaces of its name), in rtpengine's order: `primary` first, then the others of
    /// its address family, then those of the other family, each in configuration order.
    pub(crate) fn logical_interface(&self, primary: usize) -> Vec<usize> {
        let ifs = &self.config.interfaces;
        let Some(p) = ifs.get(primary) else {
            return vec![primary];
        };
        let family = Family::of(&p.local);
        let mut out = vec![primary];
        for same_family in [true, false] {
            out.extend((0..ifs.len()).filter(|&i| {
                i != primary
                    && ifs[i].name == p.name
                    && (Family::of(&ifs[i].local) == family) == same_family
            }));
        }
        out
    }

    /// Pick an interface by logical name, preferring the address family asked for.
    pub(crate) fn pick_interface(
        &self,
        name: Option<&str>,
        family: Option<Family>,
    ) -> Result<usize, CallError> {
        let ifs = &self.config.interfaces;
        let named: Vec<usize> = match name {
            // `internal`/`external` are legacy selectors that only mean something when an
            // interface carries that name; otherwise they fall back to the default.
            Some(n) if ifs.iter().any(|i| i.name == n) => {
                (0..ifs.len()).filter(|&i| ifs[i].name == n).collect()
            }
            Some(n) if n != "internal" && n != "external" => {
                return Err(CallError::UnknownInterface(n.to_owned()));
            }
            _ => (0..ifs.len()).collect(),
        };
        let by_family = |f: Family| {
            named
                .iter()
                .copied()
                .find(|&i| Family::of(&ifs[i].local) == f)
        };
        match family {
            Some(f) => by_family(f)
                .or_else(|| {
                    // No interface of that family under this name: any interface of it.
                    (0..ifs.len()).find(|&i| Family::of(&ifs[i].local) == f)
                })
                .or(named.first().copied())
                .ok_or(CallError::NoUsableInterface),
            None => named.first().copied().ok_or(CallError::NoUsableInterface),
        }
    }
}

/// `direction: [from, to]`, or `from-interface`/`to-interface`.
pub(super) fn interface_names(req: &OfferAnswer) -> (Option<&str>, Option<&str>) {
    let from = req
        .from_interface
        .as_deref()
        .or(req.direction.first().map(String::as_str));
    let to = req
        .to_interface
        .as_deref()
        .or(req.direction.get(1).map(String::as_str));
    (from, to)
}
