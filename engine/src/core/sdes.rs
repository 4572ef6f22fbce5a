//! SDES key exchange: the SDP `a=crypto` attribute (RFC 4568) and rtpengine's rules for
//! which suites to offer and which to accept.
//!
//! Parsing follows rtpengine's `parse_attribute_crypto` (`sdp.c`): case-insensitive suite
//! names and `inline:` method, padded or unpadded base64 that must decode to exactly the
//! suite's key + salt length, an optional lifetime (`2^N` or a number, at most 2^48) and an
//! optional `MKI:LENGTH`, then session parameters. Writing follows rtpengine's output:
//! unpadded base64 unless `pad` is asked for, `|2^31` with the `lifetime` option.
//!
//! MKI: a line's `|VALUE:LENGTH` is kept with its key, copied on to the other party with the
//! line as rtpengine does, and carried in every packet protected with that key (the value
//! big-endian in LENGTH bytes, see `core::srtp`).
//!
//! Suites offered: [`SrtpSuite::ALL`], rtpengine's preference order with its tags 1..=12
//! (GCM, AES-CM 256/192/128, AES-f8 128, NULL).

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;
use rand::rngs::OsRng;
use rand::RngCore;

use crate::core::srtp::{SrtpContext, SrtpError, SrtpSuite};

/// Decoder accepting both padded and unpadded keys, and non-zero trailing bits as glib's
/// decoder (used by rtpengine) does.
const B64_DECODE: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);
const B64_PADDED: GeneralPurpose = base64::engine::general_purpose::STANDARD;
const B64_UNPADDED: GeneralPurpose = base64::engine::general_purpose::STANDARD_NO_PAD;

/// Largest key lifetime accepted: the SRTP index space (rtpengine's `srtp_lifetime`).
const MAX_LIFETIME: u64 = 1 << 48;
/// Longest MKI RFC 4568 §9.1 allows, in bytes.
const MAX_MKI_LEN: u8 = 128;

/// Why an `a=crypto` line or an SDES negotiation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdesError {
    #[error("a=crypto: missing {0}")]
    Missing(&'static str),
    #[error("a=crypto: invalid tag {0:?}")]
    BadTag(String),
    #[error("a=crypto: unknown crypto suite {0:?}")]
    UnknownSuite(String),
    #[error("a=crypto: unknown key method (only inline: is supported)")]
    UnknownKeyMethod,
    #[error("a=crypto: invalid base64 key")]
    BadBase64,
    #[error("a=crypto: key material is {got} bytes, {suite} needs {expected}")]
    KeyLength {
        suite: SrtpSuite,
        got: usize,
        expected: usize,
    },
    #[error("a=crypto: invalid key lifetime {0:?}")]
    BadLifetime(String),
    #[error("a=crypto: invalid MKI specification {0:?}")]
    BadMki(String),
    #[error("no acceptable a=crypto line")]
    NoAcceptableCrypto,
    #[error("OS random number generator failed")]
    Random,
    #[error(transparent)]
    Srtp(#[from] SrtpError),
}

/// A master key identifier (RFC 4568 §6.1): value and length in bytes on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Mki {
    pub value: u64,
    pub len: u8,
}

/// One `a=crypto` attribute; rtpengine's `struct attribute_crypto` /
/// `struct crypto_params_sdes`.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CryptoAttr {
    pub tag: u32,
    pub suite: SrtpSuite,
    /// Master key followed by master salt.
    #[serde(with = "crate::core::state::b64")]
    pub key_salt: Vec<u8>,
    /// Key lifetime in packets, if the line gave one.
    pub lifetime: Option<u64>,
    pub mki: Option<Mki>,
    pub unencrypted_srtp: bool,
    pub unencrypted_srtcp: bool,
    pub unauthenticated_srtp: bool,
}

impl Mki {
    /// The identifier as it travels in packets: the value big-endian, right-aligned in
    /// `len` bytes (zeros before it when longer than the value; rtpengine's `mki`).
    pub fn bytes(self) -> Vec<u8> {
        let len = usize::from(self.len);
        let be = self.value.to_be_bytes();
        let mut out = vec![0u8; len];
        let n = len.min(be.len());
        out[len - n..].copy_from_slice(&be[be.len() - n..]);
        out
    }
}

impl std::fmt::Debug for CryptoAttr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Key material stays out of logs.
        f.debug_struct("CryptoAttr")
            .field("tag", &self.tag)
            .field("suite", &self.suite)
            .field("lifetime", &self.lifetime)
            .field("mki", &self.mki)
            .finish_non_exhaustive()
    }
}

/// Output options for [`CryptoAttr::write`]: rtpengine's `SDES-pad` and `SDES-lifetime`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteOptions {
    /// Keep base64 `=` padding.
    pub pad: bool,
    /// Append `|2^31` (when the attribute has no lifetime of its own).
    pub lifetime: bool,
}

impl CryptoAttr {
    /// A fresh attribute with key and salt from the OS CSPRNG.
    pub fn generate(tag: u32, suite: SrtpSuite) -> Result<CryptoAttr, SdesError> {
        let mut key_salt = vec![0u8; suite.key_salt_len()];
        OsRng
            .try_fill_bytes(&mut key_salt)
            .map_err(|_| SdesError::Random)?;
        Ok(CryptoAttr {
            tag,
            suite,
            key_salt,
            lifetime: None,
            mki: None,
            unencrypted_srtp: false,
            unencrypted_srtcp: false,
            unauthenticated_srtp: false,
        })
    }

    /// Parse the attribute value (the text after `a=crypto:`).
    pub fn parse(value: &str) -> Result<CryptoAttr, SdesError> {
        let mut fields = value.split_ascii_whitespace();
        let tag_str = fields.next().ok_or(SdesError::Missing("tag"))?;
        let tag = tag_str
            .parse::<u32>()
            .map_err(|_| SdesError::BadTag(tag_str.to_owned()))?;
        let suite_str = fields.next().ok_or(SdesError::Missing("crypto suite"))?;
        let suite = SrtpSuite::from_name(suite_str)
            .ok_or_else(|| SdesError::UnknownSuite(suite_str.to_owned()))?;
        let key_params = fields.next().ok_or(SdesError::Missing("key parameters"))?;
        // Several key parameters may be listed (RFC 4568 §5.1); like rtpengine we use the
        // first.
        let first = key_params.split(';').next().unwrap_or_default();
        let inline = first
            .get(..7)
            .filter(|m| m.eq_ignore_ascii_case("inline:"))
            .map(|_| &first[7..])
            .ok_or(SdesError::UnknownKeyMethod)?;

        let mut parts = inline.split('|');
        let key_b64 = parts.next().unwrap_or_default();
        let key_salt = B64_DECODE
            .decode(key_b64)
            .map_err(|_| SdesError::BadBase64)?;
        if key_salt.len() != suite.key_salt_len() {
            return Err(SdesError::KeyLength {
                suite,
                got: key_salt.len(),
                expected: suite.key_salt_len(),
            });
        }
        let mut lifetime = None;
        let mut mki = None;
        for (i, part) in parts.enumerate() {
            if part.contains(':') && mki.is_none() {
                mki = Some(parse_mki(part)?);
            } else if i == 0 {
                lifetime = Some(parse_lifetime(part)?);
            } else {
                return Err(SdesError::BadMki(part.to_owned()));
            }
        }

        let mut attr = CryptoAttr {
            tag,
            suite,
            key_salt,
            lifetime,
            mki,
            unencrypted_srtp: false,
            unencrypted_srtcp: false,
            unauthenticated_srtp: false,
        };
        for param in fields {
            match param {
                "UNENCRYPTED_SRTCP" => attr.unencrypted_srtcp = true,
                "UNENCRYPTED_SRTP" => attr.unencrypted_srtp = true,
                "UNAUTHENTICATED_SRTP" => attr.unauthenticated_srtp = true,
                // KDR, FEC_ORDER, WSH and unknown parameters are ignored, as rtpengine does.
                _ => {}
            }
        }
        Ok(attr)
    }

    /// The attribute value as rtpengine writes it: `TAG SUITE inline:KEY[|LIFETIME][|MKI:LEN]
    /// [params]`.
    pub fn write(&self, opts: WriteOptions) -> String {
        let engine = if opts.pad { B64_PADDED } else { B64_UNPADDED };
        let mut out = format!(
            "{} {} inline:{}",
            self.tag,
            self.suite,
            engine.encode(&self.key_salt)
        );
        match self.lifetime {
            Some(l) if l.is_power_of_two() => out.push_str(&format!("|2^{}", l.trailing_zeros())),
            Some(l) => out.push_str(&format!("|{l}")),
            None if opts.lifetime => out.push_str("|2^31"),
            None => {}
        }
        if let Some(m) = self.mki {
            out.push_str(&format!("|{}:{}", m.value, m.len));
        }
        for (set, name) in [
            (self.unencrypted_srtcp, "UNENCRYPTED_SRTCP"),
            (self.unencrypted_srtp, "UNENCRYPTED_SRTP"),
            (self.unauthenticated_srtp, "UNAUTHENTICATED_SRTP"),
        ] {
            if set {
                out.push(' ');
                out.push_str(name);
            }
        }
        out
    }

    pub fn master_key(&self) -> &[u8] {
        &self.key_salt[..self.suite.master_key_len().min(self.key_salt.len())]
    }

    pub fn master_salt(&self) -> &[u8] {
        &self.key_salt[self.suite.master_key_len().min(self.key_salt.len())..]
    }

    /// An SRTP context keyed from this line.
    pub fn context(&self) -> Result<SrtpContext, SdesError> {
        let ctx = SrtpContext::from_key_salt(self.suite, &self.key_salt)?;
        Ok(match self.mki {
            Some(m) => ctx.with_mki(&m.bytes()),
            None => ctx,
        })
    }

    /// Usable by ngmedia as it stands (the unencrypted/unauthenticated session parameters
    /// are not implemented, so such lines are passed over).
    pub fn is_usable(&self) -> bool {
        !self.unencrypted_srtp && !self.unencrypted_srtcp && !self.unauthenticated_srtp
    }
}

fn parse_lifetime(s: &str) -> Result<u64, SdesError> {
    let bad = || SdesError::BadLifetime(s.to_owned());
    let value = if let Some(exp) = s.strip_prefix("2^") {
        let exp: u32 = exp.parse().map_err(|_| bad())?;
        if exp == 0 || exp >= 64 {
            return Err(bad());
        }
        1u64 << exp
    } else {
        s.parse::<u64>().map_err(|_| bad())?
    };
    if value == 0 || value > MAX_LIFETIME {
        return Err(bad());
    }
    Ok(value)
}

fn parse_mki(s: &str) -> Result<Mki, SdesError> {
    let bad = || SdesError::BadMki(s.to_owned());
    let (value, len) = s.split_once(':').ok_or_else(bad)?;
    let value: u64 = value.parse().map_err(|_| bad())?;
    let len: u8 = len.parse().map_err(|_| bad())?;
    if len == 0 || len > MAX_MKI_LEN {
        return Err(bad());
    }
    Ok(Mki { value, len })
}

/// rtpengine's `SDES-*` options that shape the crypto lists (`sdes_no`, `sdes_only`,
/// `sdes_order`, `sdes_offerer_pref`, `sdes_nonew`, `sdes_pad`, `sdes_lifetime`,
/// `sdes_static`). Suite
/// names are kept as given so unknown ones behave as in rtpengine: `no-` of one
/// is a no-op, `only-` of one leaves nothing to offer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SdesFlags {
    pub no: Vec<String>,
    pub only: Vec<String>,
    pub order: Vec<String>,
    pub offerer_pref: Vec<String>,
    pub nonew: bool,
    pub pad: bool,
    pub lifetime: bool,
    /// `SDES-static`: an answer keeps the key it gave the offerer before, as long as the
    /// offerer still offers that tag and suite.
    pub keep: bool,
}

impl SdesFlags {
    /// Take one `SDES` list entry (or the part after `SDES-` in a flag); false when it is
    /// not one of the options handled here (`off`, `unencrypted_srtp`, ... belong to the
    /// caller).
    pub fn apply(&mut self, option: &str) -> bool {
        let names = |list: &str| -> Vec<String> {
            list.split(';')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        };
        if let Some(s) = option.strip_prefix("no-") {
            self.no.push(s.to_owned());
        } else if let Some(s) = option.strip_prefix("only-") {
            self.only.push(s.to_owned());
        } else if let Some(s) = option.strip_prefix("order:") {
            self.order.extend(names(s));
        } else if let Some(s) = option.strip_prefix("offerer_pref:") {
            self.offerer_pref.extend(names(s));
        } else {
            match option {
                "nonew" => self.nonew = true,
                "pad" => self.pad = true,
                "lifetime" => self.lifetime = true,
                "static" => self.keep = true,
                _ => return false,
            }
        }
        true
    }

    /// An offerer's lines without the suites named by `no-` (rtpengine's `__sdes_accept`
    /// prunes the received list so): what we pick its key from and answer it with.
    pub fn prune_offered(&self, lines: &[CryptoAttr]) -> Vec<CryptoAttr> {
        lines
            .iter()
            .filter(|l| !named(&self.no, l.suite))
            .cloned()
            .collect()
    }

    pub fn write_options(&self) -> WriteOptions {
        WriteOptions {
            pad: self.pad,
            lifetime: self.lifetime,
        }
    }
}

fn named(list: &[String], suite: SrtpSuite) -> bool {
    list.iter().any(|n| n.eq_ignore_ascii_case(suite.name()))
}

/// The suites to generate keys for, in preference order, before `order:` is applied:
/// nothing with `nonew`; otherwise [`SrtpSuite::ALL`] narrowed by `only-` (which wins over
/// `no-`) or by `no-`.
pub fn offer_suites(flags: &SdesFlags) -> Vec<SrtpSuite> {
    if flags.nonew {
        return Vec::new();
    }
    SrtpSuite::ALL
        .into_iter()
        .filter(|&s| {
            if flags.only.is_empty() {
                !named(&flags.no, s)
            } else {
                named(&flags.only, s)
            }
        })
        .collect()
}

/// Apply `order:` to a list of crypto lines: the named suites move to the front in the
/// given order, the rest follow in their existing order. Tags are not renumbered
/// (rtpengine: "it doesn't change the crypto suite tag").
pub fn apply_order(attrs: &mut [CryptoAttr], order: &[String]) {
    let rank = |a: &CryptoAttr| {
        order
            .iter()
            .position(|n| n.eq_ignore_ascii_case(a.suite.name()))
            .unwrap_or(order.len())
    };
    // Stable: unnamed suites keep their relative order.
    attrs.sort_by_key(rank);
}

/// The `a=crypto` lines of an offer we generate: one fresh key per suite from
/// [`offer_suites`], tags 1.. in preference order, then `order:` applied.
pub fn generate_offer(flags: &SdesFlags) -> Result<Vec<CryptoAttr>, SdesError> {
    let mut attrs = offer_suites(flags)
        .into_iter()
        .zip(1u32..)
        .map(|(suite, tag)| CryptoAttr::generate(tag, suite))
        .collect::<Result<Vec<_>, _>>()?;
    apply_order(&mut attrs, &flags.order);
    Ok(attrs)
}

/// The `a=crypto` lines we offer when the offer came with its own SDES lines (SRTP on both
/// sides, terminated here), as rtpengine's `__generate_crypto` builds them: the offerer's
/// usable lines first, narrowed by `no-`/`only-`, each a copy of the offerer's own line
/// (same tag, suite and key, so that a callee picking it shares the key with the caller);
/// then the lines of `previous` (what this party was offered or answered with before) whose
/// suite is not among them, with their keys and with tags raised past the copied ones; then,
/// unless `nonew`, fresh keys for the remaining suites of [`offer_suites`]; then `order:`.
pub fn generate_offer_following(
    offerer: &[CryptoAttr],
    previous: &[CryptoAttr],
    flags: &SdesFlags,
) -> Result<Vec<CryptoAttr>, SdesError> {
    let allowed = |s: SrtpSuite| {
        if flags.only.is_empty() {
            !named(&flags.no, s)
        } else {
            named(&flags.only, s)
        }
    };
    let mut attrs: Vec<CryptoAttr> = Vec::new();
    let mut next_tag = 1;
    for theirs in offerer.iter().filter(|a| allowed(a.suite)) {
        next_tag = next_tag.max(theirs.tag + 1);
        if theirs.is_usable() {
            attrs.push(CryptoAttr {
                lifetime: None,
                ..theirs.clone()
            });
        }
    }
    for before in previous {
        if attrs.iter().any(|a| a.suite == before.suite) || !allowed(before.suite) {
            continue;
        }
        let tag = before.tag.max(next_tag);
        next_tag = tag + 1;
        attrs.push(CryptoAttr {
            tag,
            ..before.clone()
        });
    }
    for suite in offer_suites(flags) {
        if !attrs.iter().any(|a| a.suite == suite) {
            attrs.push(CryptoAttr::generate(next_tag, suite)?);
            next_tag += 1;
        }
    }
    apply_order(&mut attrs, &flags.order);
    Ok(attrs)
}

/// SRTP on both sides: the line we answer the offerer with once the callee accepted one of
/// the lines we offered it. As rtpengine does, when the offerer offered the callee's suite
/// too, the answer carries that line's tag with the callee's own key (both parties share
/// one key, as they would without us in between). Returns (the offerer's line we decrypt
/// with, our answer line), or `None` when the offerer did not offer that suite.
pub fn answer_following(
    offerer: &[CryptoAttr],
    callee: &CryptoAttr,
) -> Option<(CryptoAttr, CryptoAttr)> {
    let theirs = offerer
        .iter()
        .find(|a| a.suite == callee.suite && a.is_usable())?;
    let ours = CryptoAttr {
        tag: theirs.tag,
        lifetime: None,
        ..callee.clone()
    };
    Some((theirs.clone(), ours))
}

/// Pick the answerer's line among what we offered: the first answer line whose tag and
/// suite match one of our offered lines (RFC 4568 §7.1.2). Returns (our offered line,
/// the answerer's line); the first keys what we send, the second what we receive.
pub fn select_answer<'a, 'b>(
    offered: &'a [CryptoAttr],
    answer: &'b [CryptoAttr],
) -> Result<(&'a CryptoAttr, &'b CryptoAttr), SdesError> {
    answer
        .iter()
        .filter(|theirs| theirs.is_usable())
        .find_map(|theirs| {
            offered
                .iter()
                .find(|o| o.tag == theirs.tag && o.suite == theirs.suite)
                .map(|ours| (ours, theirs))
        })
        .ok_or(SdesError::NoAcceptableCrypto)
}

/// Choose which of an offerer's lines we answer it with: the first usable line whose suite
/// is named in `offerer_pref:` (in that list's order), else the offerer's first usable
/// line (rtpengine decides this when the offer is processed).
pub fn select_offerer_crypto<'a>(
    offered: &'a [CryptoAttr],
    offerer_pref: &[String],
) -> Result<&'a CryptoAttr, SdesError> {
    offerer_pref
        .iter()
        .filter_map(|name| SrtpSuite::from_name(name))
        .find_map(|suite| offered.iter().find(|a| a.suite == suite && a.is_usable()))
        .or_else(|| offered.iter().find(|a| a.is_usable()))
        .ok_or(SdesError::NoAcceptableCrypto)
}

#[cfg(test)]
mod tests;
