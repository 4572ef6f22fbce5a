//! Interception tasks (X1-like administration objects): who is targeted, where content goes,
//! and how a task is matched against a call.

use std::net::{IpAddr, SocketAddr};

use ngmedia_engine::core::tap::{InterceptCall, LegMask};
use serde::{Deserialize, Serialize};

use super::x3::Xid;

/// Longest string accepted in a target field.
const MAX_FIELD: usize = 256;

/// What a task intercepts. Every field given must match (at least one is required); the
/// target legs are those that satisfy all of them (`call_id` alone targets every leg).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_id: Option<String>,
    /// A SIP tag: the leg whose from-tag or to-tag it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// The ng `label` of a leg.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// A `key=value` (or `key:value`) item in the leg's ng `metadata` (items separated by
    /// `|`, `;` or `&`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<MetadataMatch>,
    /// A media address of the leg: `IP` or `IP:PORT`, signalled in SDP or learned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetadataMatch {
    pub key: String,
    pub value: String,
}

/// Where a task's content is delivered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum Destination {
    /// X3 PDUs over TCP, optionally TLS (with the LI listener's certificate and CA).
    X3 {
        address: SocketAddr,
        #[serde(default)]
        tls: bool,
    },
    /// The RTP packets themselves over UDP.
    Udp { address: SocketAddr },
}

/// A task as created through the API and persisted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskSpec {
    /// UUID text.
    pub xid: String,
    pub target: Target,
    pub destination: Destination,
    /// The 64-bit correlation id written into every PDU.
    pub correlation_id: u64,
    /// Unix seconds from which content is delivered (inclusive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_from: Option<u64>,
    /// Unix seconds after which nothing is delivered (exclusive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<u64>,
}

/// Why a task cannot be accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TaskError {
    #[error("xid: {0}")]
    Xid(#[from] super::x3::BadUuid),
    #[error("target: at least one of call_id, tag, label, metadata, address is required")]
    EmptyTarget,
    #[error("target.{0}: must be 1 to {MAX_FIELD} characters")]
    Field(&'static str),
    #[error("target.address: expected IP or IP:PORT")]
    Address,
    #[error("valid_until must be after valid_from")]
    Window,
    #[error("destination: port 0 is not a destination")]
    Port,
}

/// A validated task: the spec plus what matching needs parsed.
#[derive(Debug, Clone)]
pub struct Task {
    pub spec: TaskSpec,
    pub xid: Xid,
    address: Option<AddressMatch>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AddressMatch {
    Ip(IpAddr),
    Socket(SocketAddr),
}

impl Task {
    pub fn new(spec: TaskSpec) -> Result<Task, TaskError> {
        let xid = Xid::parse(&spec.xid)?;
        let t = &spec.target;
        if t.call_id.is_none()
            && t.tag.is_none()
            && t.label.is_none()
            && t.metadata.is_none()
            && t.address.is_none()
        {
            return Err(TaskError::EmptyTarget);
        }
        let ok = |s: &Option<String>| {
            s.as_ref()
                .is_none_or(|s| (1..=MAX_FIELD).contains(&s.len()))
        };
        for (name, field) in [
            ("call_id", &t.call_id),
            ("tag", &t.tag),
            ("label", &t.label),
            ("address", &t.address),
        ] {
            if !ok(field) {
                return Err(TaskError::Field(name));
            }
        }
        if let Some(m) = &t.metadata {
            if !(1..=MAX_FIELD).contains(&m.key.len()) || m.value.len() > MAX_FIELD {
                return Err(TaskError::Field("metadata"));
            }
        }
        let address = match &t.address {
            None => None,
            Some(a) => Some(match (a.parse::<SocketAddr>(), a.parse::<IpAddr>()) {
                (Ok(s), _) => AddressMatch::Socket(s),
                (_, Ok(ip)) => AddressMatch::Ip(ip),
                _ => return Err(TaskError::Address),
            }),
        };
        if let (Some(from), Some(until)) = (spec.valid_from, spec.valid_until) {
            if until <= from {
                return Err(TaskError::Window);
            }
        }
        let port = match &spec.destination {
            Destination::X3 { address, .. } | Destination::Udp { address } => address.port(),
        };
        if port == 0 {
            return Err(TaskError::Port);
        }
        Ok(Task { spec, xid, address })
    }

    /// Whether content is delivered at `unix_secs`.
    pub fn active_at(&self, unix_secs: u64) -> bool {
        self.spec.valid_from.is_none_or(|f| unix_secs >= f)
            && self.spec.valid_until.is_none_or(|u| unix_secs < u)
    }

    /// Whether the window has closed for good at `unix_secs`.
    pub fn expired_at(&self, unix_secs: u64) -> bool {
        self.spec.valid_until.is_some_and(|u| unix_secs >= u)
    }

    /// The legs of `call` this task targets (bit i = leg i).
    pub fn targets(&self, call: &InterceptCall) -> LegMask {
        let t = &self.spec.target;
        if t.call_id.as_ref().is_some_and(|id| *id != call.call_id) {
            return 0;
        }
        let mut mask = 0;
        for (i, leg) in call.legs.iter().enumerate().take(64) {
            let tag = t.tag.as_ref().is_none_or(|tag| leg.tags.contains(tag));
            let label = t.label.is_none() || t.label == leg.label;
            let metadata = t.metadata.as_ref().is_none_or(|m| {
                leg.metadata
                    .as_deref()
                    .is_some_and(|md| metadata_has(md, &m.key, &m.value))
            });
            let address = self.address.is_none_or(|want| {
                leg.addresses.iter().any(|a| match want {
                    AddressMatch::Ip(ip) => a.ip() == ip,
                    AddressMatch::Socket(s) => *a == s,
                })
            });
            if tag && label && metadata && address {
                mask |= 1 << i;
            }
        }
        mask
    }
}

/// Whether ng `metadata` text holds `key` with `value` (`k=v|k2=v2`, also `;`/`&` and `:`).
pub fn metadata_has(metadata: &str, key: &str, value: &str) -> bool {
    metadata.split(['|', ';', '&']).any(|item| {
        let item = item.trim();
        let Some((k, v)) = item.split_once(['=', ':']) else {
            return false;
        };
        k.trim() == key && v.trim() == value
    })
}

/// The legs whose streams carry content of `targets`: the targets and their peers.
pub fn copy_mask(call: &InterceptCall, targets: LegMask) -> LegMask {
    let mut mask = targets;
    for (i, leg) in call.legs.iter().enumerate().take(64) {
        if targets & (1 << i) != 0 {
            if let Some(p) = leg.peer.filter(|&p| p < 64) {
                mask |= 1 << p;
            }
        }
    }
    mask
}

#[cfg(test)]
mod tests {
    use super::*;
    use ngmedia_engine::core::plan::CallKey;
    use ngmedia_engine::core::tap::InterceptLeg;

    fn call() -> InterceptCall {
        InterceptCall {
            call: CallKey(1),
            call_id: "c1@host".into(),
            legs: vec![
                InterceptLeg {
                    tags: vec!["ta".into()],
                    label: Some("caller".into()),
                    metadata: Some("case=42|unit=blue".into()),
                    peer: Some(1),
                    addresses: vec!["192.0.2.1:4000".parse().unwrap()],
                },
                InterceptLeg {
                    tags: vec!["tb".into(), "tb2".into()],
                    label: None,
                    metadata: None,
                    peer: Some(0),
                    addresses: vec!["198.51.100.9:5000".parse().unwrap()],
                },
            ],
            forwarding: false,
        }
    }

    fn task(target: Target) -> Result<Task, TaskError> {
        Task::new(TaskSpec {
            xid: "1b4e28ba-2fa1-11d2-883f-0016d3cca427".into(),
            target,
            destination: Destination::Udp {
                address: "127.0.0.1:9".parse().unwrap(),
            },
            correlation_id: 1,
            valid_from: None,
            valid_until: None,
        })
    }

    fn mask(target: Target) -> LegMask {
        task(target).unwrap().targets(&call())
    }

    #[test]
    fn matching_by_each_criterion() {
        let s = |v: &str| Some(v.to_owned());
        assert_eq!(
            mask(Target {
                call_id: s("c1@host"),
                ..Default::default()
            }),
            0b11
        );
        assert_eq!(
            mask(Target {
                call_id: s("other"),
                ..Default::default()
            }),
            0
        );
        assert_eq!(
            mask(Target {
                tag: s("ta"),
                ..Default::default()
            }),
            0b01
        );
        assert_eq!(
            mask(Target {
                tag: s("tb2"),
                ..Default::default()
            }),
            0b10,
            "fork alias"
        );
        assert_eq!(
            mask(Target {
                label: s("caller"),
                ..Default::default()
            }),
            0b01
        );
        let md = |k: &str, v: &str| {
            Some(MetadataMatch {
                key: k.into(),
                value: v.into(),
            })
        };
        assert_eq!(
            mask(Target {
                metadata: md("unit", "blue"),
                ..Default::default()
            }),
            0b01
        );
        assert_eq!(
            mask(Target {
                metadata: md("unit", "red"),
                ..Default::default()
            }),
            0
        );
        assert_eq!(
            mask(Target {
                address: s("198.51.100.9"),
                ..Default::default()
            }),
            0b10
        );
        assert_eq!(
            mask(Target {
                address: s("198.51.100.9:5000"),
                ..Default::default()
            }),
            0b10
        );
        assert_eq!(
            mask(Target {
                address: s("198.51.100.9:5002"),
                ..Default::default()
            }),
            0
        );
        // All given fields must hold.
        assert_eq!(
            mask(Target {
                call_id: s("c1@host"),
                tag: s("tb"),
                ..Default::default()
            }),
            0b10
        );
        assert_eq!(
            mask(Target {
                tag: s("ta"),
                label: s("nope"),
                ..Default::default()
            }),
            0
        );
        assert_eq!(copy_mask(&call(), 0b10), 0b11);
        assert_eq!(copy_mask(&call(), 0), 0);
    }

    #[test]
    fn metadata_forms() {
        assert!(metadata_has("a=1|b=2", "b", "2"));
        assert!(metadata_has("a:1; b : 2", "b", "2"));
        assert!(metadata_has("x=1&y=z", "y", "z"));
        assert!(!metadata_has("a=1", "a", "2"));
        assert!(!metadata_has("a", "a", ""));
    }

    #[test]
    fn validation() {
        assert_eq!(task(Target::default()).unwrap_err(), TaskError::EmptyTarget);
        assert_eq!(
            task(Target {
                address: Some("host:1".into()),
                ..Default::default()
            })
            .unwrap_err(),
            TaskError::Address
        );
        assert_eq!(
            task(Target {
                tag: Some(String::new()),
                ..Default::default()
            })
            .unwrap_err(),
            TaskError::Field("tag")
        );
        let mut spec = task(Target {
            tag: Some("t".into()),
            ..Default::default()
        })
        .unwrap()
        .spec;
        spec.valid_from = Some(100);
        spec.valid_until = Some(100);
        assert_eq!(Task::new(spec.clone()).unwrap_err(), TaskError::Window);
        spec.valid_until = Some(200);
        let t = Task::new(spec.clone()).unwrap();
        assert!(!t.active_at(99) && t.active_at(100) && t.active_at(199) && !t.active_at(200));
        assert!(t.expired_at(200) && !t.expired_at(150));
        spec.xid = "nope".into();
        assert!(matches!(Task::new(spec).unwrap_err(), TaskError::Xid(_)));
    }

    #[test]
    fn json_shape() {
        let spec: TaskSpec = serde_json::from_str(
            r#"{"xid":"1b4e28ba-2fa1-11d2-883f-0016d3cca427","target":{"tag":"ta"},
                "destination":{"type":"x3","address":"127.0.0.1:7000","tls":true},
                "correlation_id":5}"#,
        )
        .unwrap();
        assert_eq!(
            spec.destination,
            Destination::X3 {
                address: "127.0.0.1:7000".parse().unwrap(),
                tls: true
            }
        );
        assert!(serde_json::from_str::<TaskSpec>(r#"{"xid":"x","target":{"bogus":1},"destination":{"type":"udp","address":"127.0.0.1:1"},"correlation_id":1}"#).is_err());
    }
}
