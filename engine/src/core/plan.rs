//! The contract between the call model (control plane) and the media workers (packet path).
//!
//! Negotiation decides, once per offer/answer, how packets of a call move: which local
//! socket forwards to which, where each party is expected and how latching behaves. That
//! decision is a [`CallPlan`]; the media plane applies it and from then on forwards without
//! asking anyone. Plans are declarative and idempotent: applying the same plan twice changes
//! nothing, and a re-INVITE simply applies the new plan (latched addresses of ports that stay
//! are kept unless the plan says otherwise).

use std::net::SocketAddr;
use std::sync::Arc;

use super::config::Interface;
use super::dtls::{DtlsIdentity, DtlsKeys, DtlsRole, Fingerprint};
use super::dtmf_inject::{DtmfDigit, InjectTarget};
use super::latch::EndpointLearning;
use super::media_control::StreamControl;
use super::srtp::SrtpSuite;
use super::stats::{PacketTotals, StreamStats};
use super::t38::gateway::GatewaySpec;
use super::tap::TapStream;
use super::transcode::TranscodeSpec;

/// Identifies one bound local socket for its whole life (unique per daemon run).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortKey(pub u64);

/// Identifies one call towards the media plane (unique per daemon run).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallKey(pub u64);

/// One bound local socket as the control plane sees it (rtpengine's `stream_fd`/local port).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalPort {
    pub key: PortKey,
    /// The address the socket is bound to.
    pub addr: SocketAddr,
}

/// An RTP/RTCP pair of local sockets: RTP on an even port, RTCP on the next (odd) one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortPair {
    pub rtp: LocalPort,
    pub rtcp: LocalPort,
}

/// How a stream learns and checks its party's address (rtpengine's endpoint learning).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LatchPolicy {
    /// Learn the return address from received packets (false with `asymmetric`).
    pub learn: bool,
    /// After latching, drop packets from any other source (`strict-source`).
    pub strict_source: bool,
    /// After latching, move to a new source when one appears (`media-handover`).
    pub handover: bool,
    /// The learning algorithm for this stream (ng `endpoint-learning`); `None`: the
    /// daemon's `--endpoint-learning`.
    #[serde(default)]
    pub learning: Option<EndpointLearning>,
}

impl Default for LatchPolicy {
    fn default() -> Self {
        LatchPolicy {
            learn: true,
            strict_source: false,
            handover: false,
            learning: None,
        }
    }
}

/// What one local socket does with what it receives.
#[derive(Debug, Clone)]
pub struct StreamPlan {
    pub port: PortKey,
    /// The stream's sockets on the other addresses of its logical interface (rtpengine: the
    /// other `sfds` of a `packet_stream`; only while the party does ICE with us). What they
    /// receive is handled as if received on `port`, and what goes to the party leaves
    /// through the one it was last heard on (or that matches the address family).
    pub alternates: Vec<PortKey>,
    /// The party's address as signalled in SDP (`None`: unknown or `c=0.0.0.0`). Packets for
    /// the party go here until one of its packets fixes the real address.
    pub expected: Option<SocketAddr>,
    pub latch: LatchPolicy,
    /// Forget a learned address and learn again (the party's SDP address changed).
    pub relatch: bool,
    /// RTP received on this socket leaves through this port, towards that port's party.
    pub rtp_sink: Option<PortKey>,
    /// RTCP received on this socket (on the RTCP port, or muxed on the RTP port) leaves through
    /// this port. With rtcp-mux on the far side it is the far side's RTP port.
    pub rtcp_sink: Option<PortKey>,
    /// When false, packets are counted but not forwarded (media blocked, or direction
    /// says the party does not send).
    pub forward: bool,
    pub stats: Arc<StreamStats>,
    /// RTP from this party is transcoded (set on both its RTP and RTCP port): the RTP port
    /// runs a [`Transcoder`](super::transcode::Transcoder) built from this, and RTCP of the
    /// stream is terminated (not relayed; the worker sends its own reports).
    pub transcode: Option<TranscodeSpec>,
    /// Keys of what this party sends (SRTP/SRTCP received on this socket is authenticated
    /// and decrypted with them); `None`: the party sends plain RTP.
    pub srtp_in: Option<SrtpKeys>,
    /// Keys we protect with what leaves through this socket towards the party; `None`: the
    /// party receives plain RTP.
    pub srtp_out: Option<SrtpKeys>,
    /// Our ICE credentials towards the party when we wrote ICE to it: STUN Binding requests
    /// on this socket checked with them are answered (ICE-lite), and a nominating one
    /// (USE-CANDIDATE) fixes the party's address. `None`: STUN is dropped.
    pub ice: Option<IceCredentials>,
    /// DTLS-SRTP with the party on this socket: the worker runs the handshake and keys the
    /// stream from it (`srtp_in`/`srtp_out` are then ignored). `None`: no DTLS; DTLS
    /// records received are dropped.
    pub dtls: Option<DtlsParams>,
    /// Which party and m= line of the call this socket carries.
    pub stream: TapStream,
    /// Copy accepted RTP to the tap sink (recording) as this stream of the call.
    pub tap: Option<TapStream>,
    /// Copy accepted RTP (decrypted) to the interception sink (lawful interception,
    /// `start forwarding`) as this stream of the call. Independent of `tap`.
    pub intercept: Option<TapStream>,
    /// The party negotiated an AVPF profile (RFC 4585): RTCP feedback (RTPFB/PSFB) may be
    /// sent to it. Without it, feedback from the other side is stripped from the RTCP that
    /// leaves through this socket.
    pub rtcp_feedback: bool,
    /// The stream was taken over from stored state (restart, standby): a socket the worker
    /// does not know yet starts from where the previous engine left it.
    pub resume: Option<StreamResume>,
    /// Subscribers of this party's media (rtpengine's `subscribers` of a `call_monologue`):
    /// each accepted packet is also sent, decrypted and protected anew, out of these
    /// sockets of the same call toward their parties. Empty for most streams.
    pub copies: Vec<CopySink>,
    /// On a subscriber's RTP socket: RTP copied to it from a subscription is transcoded with
    /// this first (the subscriber accepted another codec than the source sends).
    pub feed: Option<TranscodeSpec>,
    /// `block media`, `block DTMF`, `silence media` of what the party sends here.
    pub control: StreamControl,
    /// Whether the socket carries RTP or datagrams relayed as they are.
    pub mode: StreamMode,
    /// The socket's part in a T.38 fax gateway (`T.38: decode`/`force`); `None`: none.
    pub fax: Option<FaxPlan>,
}

/// One socket's part in a T.38 gateway (rtpengine: the `t38_media` and `pcm_media` a
/// `t38_gateway` joins). Both parts are on the parties' RTP sockets, each the other's
/// `rtp_sink`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaxPlan {
    /// The party speaks T.38 over UDPTL: the gateway runs on this socket, and sends the
    /// audio party G.711 out of `rtp_sink` every 20 ms.
    Gateway(GatewaySpec),
    /// The party faxes over G.711: its RTP goes to the gateway on `rtp_sink`.
    Audio,
}

/// What a media socket carries, from the m= line's transport protocol (rtpengine's
/// `transport_protocol.rtp`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum StreamMode {
    /// RTP and RTCP (`RTP/AVP`, `RTP/SAVPF`, `UDP/TLS/RTP/SAVP`, ...): parsed, counted as
    /// RTP, SRTP/DTLS/STUN demultiplexed, transcoded or offloaded as negotiated.
    #[default]
    Rtp,
    /// Anything else carried over UDP (`udptl` for T.38 fax, or a protocol the engine does
    /// not know): every datagram from the party is latched onto, counted and relayed
    /// byte for byte; only STUN is taken out, and only where ICE was negotiated. Nothing
    /// is parsed as RTP (a UDPTL sequence number below 1024 looks like a STUN header's
    /// first bytes, one above 32767 like an RTP version).
    Opaque,
}

impl StreamMode {
    /// The mode for an m= line's transport protocol.
    pub fn of_protocol(protocol: &str) -> StreamMode {
        if super::sdp::proto_is_rtp(protocol) {
            StreamMode::Rtp
        } else {
            StreamMode::Opaque
        }
    }
}

/// One subscriber socket that receives copies of a stream (rtpengine: a `sink_handler` of
/// a subscription).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CopySink {
    pub port: PortKey,
    /// Copy what leaves toward the source's peer (after its transcoder) instead of what the
    /// source sent (rtpengine's `egress` subscription flag).
    pub egress: bool,
    /// `block media`/`silence media` of this one flow (`to-tag` naming the subscriber).
    pub block: bool,
    pub silence: bool,
}

/// Where a stream was when its call was last stored: the packet path starts there instead
/// of learning from scratch, so media flows at once and SRTP stays in sequence.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamResume {
    /// The party's learned address: latched and confirmed from the first moment.
    pub latched: Option<SocketAddr>,
    /// Last SRTP packet authenticated from the party, `ssrc << 32 | roc << 16 | seq`
    /// (0: none).
    pub srtp_in: u64,
    /// Last SRTP packet protected towards the party, packed the same way.
    pub srtp_out: u64,
    /// Last SRTCP packet protected towards the party, `ssrc << 32 | index`.
    pub srtcp_out: u64,
    /// Keys of the DTLS-SRTP association the party has with us: the stream is keyed from
    /// them and no new handshake is started.
    pub dtls_keys: Option<DtlsKeys>,
}

/// How one socket does DTLS-SRTP with its party (rtpengine's `dtls_connection` settings of
/// a `packet_stream`): our role from `a=setup`, the fingerprint the party's certificate must
/// match, and our certificate. A re-applied plan with equal parameters keeps the running
/// association and its keys; different ones start a new handshake.
#[derive(Clone, Debug)]
pub struct DtlsParams {
    pub role: DtlsRole,
    pub remote: Fingerprint,
    pub identity: Arc<DtlsIdentity>,
}

impl PartialEq for DtlsParams {
    fn eq(&self, other: &Self) -> bool {
        self.role == other.role
            && self.remote == other.remote
            && Arc::ptr_eq(&self.identity, &other.identity)
    }
}

impl Eq for DtlsParams {}

/// Our short-term ICE credentials for one m= line (`a=ice-ufrag`/`a=ice-pwd`; rtpengine's
/// `ice_agent` local credentials).
#[derive(Clone, PartialEq, Eq)]
pub struct IceCredentials {
    pub ufrag: String,
    pub pwd: String,
    /// We are a full agent toward the party (no `a=ice-lite` sent, the party does ICE):
    /// the worker checks its candidates as well as answering.
    pub full: Option<FullIce>,
}

/// The party's side of a full ICE agent (rtpengine: `ice_agent`'s remote credentials and
/// candidates).
#[derive(Clone, PartialEq, Eq)]
pub struct FullIce {
    pub remote_ufrag: String,
    pub remote_pwd: String,
    pub controlling: bool,
    /// The party's candidates for component 1 (RTP) and 2 (RTCP).
    pub rtp_candidates: Vec<SocketAddr>,
    pub rtcp_candidates: Vec<SocketAddr>,
}

impl std::fmt::Debug for FullIce {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The password stays out of logs.
        f.debug_struct("FullIce")
            .field("remote_ufrag", &self.remote_ufrag)
            .field("controlling", &self.controlling)
            .field("rtp_candidates", &self.rtp_candidates)
            .field("rtcp_candidates", &self.rtcp_candidates)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for IceCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The password stays out of logs.
        f.debug_struct("IceCredentials")
            .field("ufrag", &self.ufrag)
            .finish_non_exhaustive()
    }
}

/// The master key of one SRTP direction (rtpengine's `crypto_params`): plain data, so a
/// worker applying a plan can tell whether keys changed and rebuild its context only then.
#[derive(Clone, PartialEq, Eq)]
pub struct SrtpKeys {
    pub suite: SrtpSuite,
    /// Master key followed by master salt.
    pub key_salt: Vec<u8>,
    /// Master key identifier carried in each packet (SDES `|MKI:LEN`); empty: none.
    pub mki: Vec<u8>,
}

impl std::fmt::Debug for SrtpKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Key material stays out of logs.
        f.debug_struct("SrtpKeys")
            .field("suite", &self.suite)
            .finish_non_exhaustive()
    }
}

/// The complete forwarding state of one call: every socket the call holds appears once.
#[derive(Debug, Clone)]
pub struct CallPlan {
    pub call: CallKey,
    /// The call's Call-ID, for sinks that correlate by it (Homer).
    pub call_id: Arc<str>,
    pub streams: Vec<StreamPlan>,
    /// IP TOS byte (DSCP << 2 | ECN) on every socket of the call, IPv6 traffic class alike
    /// (rtpengine's `call->tos`); 0 leaves the kernel's default.
    pub tos: u8,
}

/// Why ports could not be allocated.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum PortError {
    /// Exact text Kamailio matches to fail over to another engine.
    #[error("Ran out of ports")]
    Exhausted,
    #[error("failed to bind media port on {addr}: {reason}")]
    Bind {
        addr: std::net::IpAddr,
        reason: String,
    },
}

/// The media plane as the call model sees it. Implemented by `io::MediaWorkers`; tests
/// implement it with plain in-memory bookkeeping.
pub trait MediaPlane: Send + Sync {
    /// Bind an RTP/RTCP socket pair on the interface. The sockets stay idle (received packets
    /// are counted as errors) until a plan that uses them is applied.
    fn allocate_pair(&self, interface: &Interface) -> Result<PortPair, PortError>;

    /// Bind the pair whose RTP port is `rtp_port` (an even port; RTCP on the next one), to
    /// take over a stored call on the ports its parties know.
    fn allocate_pair_at(&self, interface: &Interface, rtp_port: u16)
        -> Result<PortPair, PortError>;

    /// Install or replace the forwarding state of a call. Ports the call held before and that
    /// are missing from the plan are closed and returned to the pool.
    fn apply(&self, plan: CallPlan);

    /// Close and release every port of the call.
    fn remove(&self, call: CallKey);

    /// Release ports allocated for a call that never had a plan applied (a failed offer).
    fn release(&self, ports: &[PortKey]);

    /// Engine-wide packet counters summed over the workers.
    fn totals(&self) -> PacketTotals;

    /// Start (`Some`) or stop (`None`) playing media out of `port` (an RTP port of `call`)
    /// toward its party. The default does nothing (media planes without a player).
    fn play(&self, _call: CallKey, _port: PortKey, _play: Option<super::player::PlaySpec>) {}

    /// Queue a DTMF digit into what the party of `port` (an RTP port of `call`) sends
    /// toward its peer (`play DTMF`); `target` says what the peer understands and
    /// `ptime_ms` the line's packet duration. The default does nothing.
    fn play_dtmf(
        &self,
        _call: CallKey,
        _port: PortKey,
        _digit: DtmfDigit,
        _target: InjectTarget,
        _ptime_ms: u32,
    ) {
    }
}
