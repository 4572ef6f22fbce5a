//! SRTP keying state of one party's m= line: which methods (SDES, DTLS) it uses, the
//! `a=crypto` lines and DTLS parameters exchanged with it, and `a=setup`.

use crate::core::dtls::{DtlsRole, Fingerprint};
use crate::core::plan::{DtlsParams, SrtpKeys};
use crate::core::sdes::CryptoAttr;

/// The SRTP keying methods of one party's m= line. The first offer that gives the party an
/// SRTP profile picks them from `DTLS=off` and `SDES=off`; later offers keep the choice
/// whatever their flags say, so a re-INVITE without flags does not bring back what the
/// first one turned off. The party's own SDP updates them: a fingerprint turns DTLS on
/// and its absence off, `a=crypto` lines turn SDES on. A plain profile clears both.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Keying {
    pub dtls: bool,
    pub sdes: bool,
}

impl Keying {
    /// Neither method chosen yet: the next offer to the party decides.
    pub(crate) fn undecided(self) -> bool {
        !self.dtls && !self.sdes
    }
}

/// SDES (`a=crypto`) state of one party's m= line: rtpengine's `sdes_in`/`sdes_out` lists of
/// `call_media` with the selected `crypto_params` of its streams.
#[derive(Debug, Clone, Default)]
pub(crate) struct SdesState {
    /// The lines we offered this party, kept so a re-offer repeats the same keys.
    pub offered: Vec<CryptoAttr>,
    /// The usable lines this party offered us (rtpengine's `sdes_in` before the answer
    /// prunes it): the answer picks the one whose suite the other party accepted.
    pub received: Vec<CryptoAttr>,
    /// Our key towards this party (what we protect with): the offered line it accepted, or
    /// the line we answered its offer with.
    pub local: Option<CryptoAttr>,
    /// The party's key (what it protects with and we unprotect with).
    pub remote: Option<CryptoAttr>,
}

impl SdesState {
    /// The party speaks SDES-SRTP with us: both keys are settled.
    pub(crate) fn active(&self) -> bool {
        self.local.is_some() && self.remote.is_some()
    }

    fn keys(attr: &Option<CryptoAttr>) -> Option<SrtpKeys> {
        attr.as_ref().map(|a| SrtpKeys {
            suite: a.suite,
            key_salt: a.key_salt.clone(),
            mki: a.mki.map(|m| m.bytes()).unwrap_or_default(),
        })
    }

    /// (inbound, outbound) keys for the plan; none until both are settled.
    pub(crate) fn plan_keys(&self) -> (Option<SrtpKeys>, Option<SrtpKeys>) {
        if self.active() {
            (Self::keys(&self.remote), Self::keys(&self.local))
        } else {
            (None, None)
        }
    }
}

/// `a=setup` values (RFC 4145 §4, RFC 5763 §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Setup {
    Active,
    Passive,
    ActPass,
    HoldConn,
}

impl Setup {
    pub(crate) fn parse(value: &str) -> Option<Setup> {
        match value.trim().to_ascii_lowercase().as_str() {
            "active" => Some(Setup::Active),
            "passive" => Some(Setup::Passive),
            "actpass" => Some(Setup::ActPass),
            "holdconn" => Some(Setup::HoldConn),
            _ => None,
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Setup::Active => "active",
            Setup::Passive => "passive",
            Setup::ActPass => "actpass",
            Setup::HoldConn => "holdconn",
        }
    }

    /// Our DTLS role when we take this setup: `active` opens the association (client).
    pub(crate) fn of_role(role: DtlsRole) -> Setup {
        match role {
            DtlsRole::Client => Setup::Active,
            DtlsRole::Server => Setup::Passive,
        }
    }
}

/// DTLS-SRTP state of one party's m= line (rtpengine: the `call_media` DTLS flags, its
/// `fingerprint` and the `dtls_connection` of its streams).
#[derive(Debug, Clone, Default)]
pub(crate) struct DtlsMediaState {
    /// The `a=setup` we offered this party (we offered DTLS to it); its answer settles.
    pub offered: Option<Setup>,
    /// The party's certificate fingerprint from its SDP.
    pub remote: Option<Fingerprint>,
    /// Our role towards a party that offered DTLS, written into the answer to it.
    pub pending_role: Option<DtlsRole>,
    /// The settled association: the workers run it.
    pub active: Option<DtlsParams>,
}
