//! Engine configuration: plain values handed in by the daemon, never read from globals.

use std::net::IpAddr;
use std::time::Duration;

/// One network interface media can be bound to (rtpengine's `--interface NAME/ADDR!ADV`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    /// Logical name used by `direction`/`interface` keys; `default` when none was given.
    pub name: String,
    /// Address the media sockets bind to.
    pub local: IpAddr,
    /// Address written into SDP when it differs from `local` (1:1 NAT).
    pub advertised: Option<IpAddr>,
}

impl Interface {
    /// The address peers must send to: the advertised one when set.
    pub fn public(&self) -> IpAddr {
        self.advertised.unwrap_or(self.local)
    }
}

/// Everything the engine needs to run calls.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub interfaces: Vec<Interface>,
    /// Inclusive media port range; RTP takes the even port, RTCP the odd one above it.
    pub port_min: u16,
    pub port_max: u16,
    /// A call with no media at all for this long is ended (rtpengine `--timeout`).
    pub timeout: Duration,
    /// Same, for calls whose every stream is on hold (rtpengine `--silent-timeout`).
    pub silent_timeout: Duration,
    /// Hard limit on a call's life, zero = unlimited (rtpengine `--final-timeout`).
    pub final_timeout: Duration,
    /// How long a deleted call lingers for late queries and retransmitted deletes.
    pub delete_delay: Duration,
    /// Number of media worker threads; 0 = one per core.
    pub workers: usize,
    /// TOS byte set on media sockets unless an offer's `TOS` says otherwise (rtpengine
    /// `--tos`); 0 leaves the kernel's default.
    pub tos: u8,
    /// Silence detection toward parties with comfort noise (rtpengine `--silence-detect`
    /// and `--cn-payload`); `None` = off, the default.
    pub silence_detect: Option<crate::core::transcode::SilenceDetect>,
    /// Playout of decoded streams on a clock: DTX handling and the jitter buffer (rtpengine
    /// `--dtx-delay`, `--max-dtx`, `--dtx-buffer`, `--dtx-lag`, `--dtx-shift`,
    /// `--dtx-cn-params`, `--amr-dtx`, `--jitter-buffer`); off by default.
    pub playout: crate::core::transcode::PlayoutConfig,
    /// Every DTMF digit a party sends (RFC 4733 or detected in-band) is reported here as
    /// rtpengine's JSON over UDP (rtpengine `--dtmf-log-dest`); `None` = off.
    pub dtmf_log_dest: Option<std::net::SocketAddr>,
    /// Kernel fast path for established plain streams (`--fast-path`, rtpengine `--table`).
    pub fast_path: FastPathMode,
    /// Longest pause (ms) between two digits of a DTMF trigger before the match starts
    /// over (rtpengine `--dtmf-digit-delay`, default 2500).
    pub dtmf_digit_delay_ms: u32,
    /// How parties' addresses are learned from their packets unless an offer/answer says
    /// otherwise (rtpengine `--endpoint-learning`, `heuristic` by default as there).
    pub endpoint_learning: crate::core::latch::EndpointLearning,
}

/// Whether established plain RTP streams are forwarded by the eBPF program in the kernel
/// (`io::fastpath`) instead of by the media workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FastPathMode {
    /// When the kernel and privileges allow (CAP_BPF and CAP_NET_ADMIN); otherwise one log
    /// line at start says why not.
    Auto,
    /// Required: the daemon does not start without it.
    On,
    /// User space only (rtpengine `--table=-1`).
    #[default]
    Off,
}

impl FastPathMode {
    /// `auto`, `on`, `off`, or an rtpengine `--table` number (-1: off, a table: auto).
    pub fn parse(s: &str) -> Option<FastPathMode> {
        match s.trim() {
            "auto" => Some(FastPathMode::Auto),
            "on" | "yes" | "true" => Some(FastPathMode::On),
            "off" | "no" | "false" => Some(FastPathMode::Off),
            n => match n.parse::<i64>() {
                Ok(t) if t < 0 => Some(FastPathMode::Off),
                Ok(_) => Some(FastPathMode::Auto),
                Err(_) => None,
            },
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            FastPathMode::Auto => "auto",
            FastPathMode::On => "on",
            FastPathMode::Off => "off",
        }
    }
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            interfaces: vec![Interface {
                name: "default".into(),
                local: IpAddr::from([127, 0, 0, 1]),
                advertised: None,
            }],
            port_min: 30000,
            port_max: 40000,
            timeout: Duration::from_secs(60),
            silent_timeout: Duration::from_secs(3600),
            final_timeout: Duration::ZERO,
            delete_delay: Duration::from_secs(30),
            workers: 0,
            tos: 0,
            silence_detect: None,
            playout: Default::default(),
            dtmf_log_dest: None,
            fast_path: FastPathMode::Off,
            dtmf_digit_delay_ms: crate::core::dtmf_security::DEFAULT_DIGIT_DELAY_MS,
            endpoint_learning: Default::default(),
        }
    }
}
