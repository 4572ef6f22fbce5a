//! The few MQTT 3.1.1 control packets a publisher needs (OASIS MQTT 3.1.1, section 3): CONNECT,
//! PUBLISH, PUBREL, PINGREQ and DISCONNECT written; CONNACK, PUBACK, PUBREC, PUBCOMP and
//! PINGRESP read. Sans IO: bytes in, bytes out.

/// A packet the broker sends a publisher.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Incoming {
    /// CONNACK with its return code (0: accepted).
    ConnAck {
        code: u8,
    },
    PubAck {
        id: u16,
    },
    PubRec {
        id: u16,
    },
    PubComp {
        id: u16,
    },
    PingResp,
    /// Any other packet type (a publisher has not subscribed, so none is expected).
    Other {
        kind: u8,
    },
}

/// Why bytes from the broker are not a packet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum PacketError {
    #[error("remaining length longer than four bytes")]
    Length,
    #[error("{0} packet of the wrong length")]
    Malformed(&'static str),
}

/// Largest packet read from the broker: a publisher only gets acknowledgements.
const MAX_INCOMING: usize = 64;

/// Protocol level 4 is MQTT 3.1.1.
const PROTOCOL_LEVEL: u8 = 4;

/// What CONNECT says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Connect<'a> {
    pub(crate) client_id: &'a str,
    pub(crate) keep_alive_secs: u16,
    pub(crate) user: Option<&'a str>,
    pub(crate) password: Option<&'a str>,
}

fn remaining_length(out: &mut Vec<u8>, mut n: usize) {
    loop {
        let mut byte = (n % 128) as u8;
        n /= 128;
        if n > 0 {
            byte |= 0x80;
        }
        out.push(byte);
        if n == 0 {
            break;
        }
    }
}

fn string(out: &mut Vec<u8>, s: &[u8]) {
    // Callers bound the lengths (topics, ids, credentials) to u16 before writing.
    out.extend_from_slice(&(s.len().min(usize::from(u16::MAX)) as u16).to_be_bytes());
    out.extend_from_slice(&s[..s.len().min(usize::from(u16::MAX))]);
}

fn packet(kind_and_flags: u8, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 5);
    out.push(kind_and_flags);
    remaining_length(&mut out, body.len());
    out.extend_from_slice(body);
    out
}

/// CONNECT with a clean session.
pub(crate) fn connect(c: &Connect<'_>) -> Vec<u8> {
    let mut body = Vec::with_capacity(64);
    string(&mut body, b"MQTT");
    body.push(PROTOCOL_LEVEL);
    let mut flags = 0x02; // clean session
    if c.user.is_some() {
        flags |= 0x80;
        if c.password.is_some() {
            flags |= 0x40;
        }
    }
    body.push(flags);
    body.extend_from_slice(&c.keep_alive_secs.to_be_bytes());
    string(&mut body, c.client_id.as_bytes());
    if let Some(user) = c.user {
        string(&mut body, user.as_bytes());
        if let Some(password) = c.password {
            string(&mut body, password.as_bytes());
        }
    }
    packet(0x10, &body)
}

/// PUBLISH of `payload` to `topic`; `id` is used (and required) for QoS 1 and 2.
pub(crate) fn publish(topic: &str, payload: &[u8], qos: u8, id: u16, dup: bool) -> Vec<u8> {
    let mut body = Vec::with_capacity(topic.len() + payload.len() + 4);
    string(&mut body, topic.as_bytes());
    if qos > 0 {
        body.extend_from_slice(&id.to_be_bytes());
    }
    body.extend_from_slice(payload);
    let flags = (u8::from(dup) << 3) | ((qos & 3) << 1);
    packet(0x30 | flags, &body)
}

/// PUBREL, the second step of a QoS 2 publication.
pub(crate) fn pubrel(id: u16) -> Vec<u8> {
    packet(0x62, &id.to_be_bytes())
}

pub(crate) fn pingreq() -> Vec<u8> {
    vec![0xC0, 0]
}

pub(crate) fn disconnect() -> Vec<u8> {
    vec![0xE0, 0]
}

/// The first whole packet at the start of `buf` and its length; `Ok(None)` when more bytes
/// are needed.
pub(crate) fn read(buf: &[u8]) -> Result<Option<(Incoming, usize)>, PacketError> {
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    let mut len = 0usize;
    let mut header = 1;
    loop {
        let Some(&byte) = buf.get(header) else {
            return Ok(None);
        };
        len |= usize::from(byte & 0x7f) << (7 * (header - 1));
        header += 1;
        if byte & 0x80 == 0 {
            break;
        }
        if header > 4 {
            return Err(PacketError::Length);
        }
    }
    if len > MAX_INCOMING {
        // Not an acknowledgement: skip it once it is all there.
        return Ok((buf.len() >= header + len)
            .then_some((Incoming::Other { kind: first >> 4 }, header + len)));
    }
    let Some(body) = buf.get(header..header + len) else {
        return Ok(None);
    };
    let id = |what| match body {
        [hi, lo] => Ok(u16::from_be_bytes([*hi, *lo])),
        _ => Err(PacketError::Malformed(what)),
    };
    let packet = match first >> 4 {
        2 => match body {
            [_, code] => Incoming::ConnAck { code: *code },
            _ => return Err(PacketError::Malformed("CONNACK")),
        },
        4 => Incoming::PubAck { id: id("PUBACK")? },
        5 => Incoming::PubRec { id: id("PUBREC")? },
        7 => Incoming::PubComp { id: id("PUBCOMP")? },
        13 => Incoming::PingResp,
        kind => Incoming::Other { kind },
    };
    Ok(Some((packet, header + len)))
}

/// The broker's words for a CONNACK return code (MQTT 3.1.1, 3.2.2.3).
pub(crate) fn connack_reason(code: u8) -> &'static str {
    match code {
        1 => "unacceptable protocol version",
        2 => "client identifier rejected",
        3 => "server unavailable",
        4 => "bad user name or password",
        5 => "not authorized",
        _ => "refused",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_says_clean_session_keep_alive_and_credentials() {
        let bytes = connect(&Connect {
            client_id: "ng",
            keep_alive_secs: 30,
            user: Some("u"),
            password: Some("p"),
        });
        assert_eq!(
            bytes,
            [
                0x10, 20, 0, 4, b'M', b'Q', b'T', b'T', 4, 0xC2, 0, 30, 0, 2, b'n', b'g', 0, 1,
                b'u', 0, 1, b'p'
            ]
        );
        let anonymous = connect(&Connect {
            client_id: "",
            keep_alive_secs: 0,
            user: None,
            password: Some("ignored without a user"),
        });
        assert_eq!(
            anonymous,
            [0x10, 12, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 0, 0, 0]
        );
    }

    #[test]
    fn publish_flags_id_and_long_remaining_lengths() {
        assert_eq!(publish("t", b"x", 0, 7, false), [0x30, 4, 0, 1, b't', b'x']);
        assert_eq!(
            publish("t", b"x", 1, 0x0102, false),
            [0x32, 6, 0, 1, b't', 1, 2, b'x']
        );
        assert_eq!(publish("t", b"", 2, 1, true)[0], 0x3C);
        let big = publish("t", &[0u8; 200], 0, 0, false);
        assert_eq!(&big[..3], [0x30, 0xCB, 0x01], "203 = 0x4B + 1 * 128");
        assert_eq!(big.len(), 3 + 203);
        let huge = publish("t", &vec![0u8; 2_097_152], 0, 0, false);
        assert_eq!(&huge[..5], [0x30, 0x83, 0x80, 0x80, 0x01]);
    }

    #[test]
    fn acknowledgements_are_read_and_partial_input_waits() {
        assert_eq!(read(&[]), Ok(None));
        assert_eq!(read(&[0x20]), Ok(None));
        assert_eq!(read(&[0x20, 2, 0]), Ok(None));
        assert_eq!(
            read(&[0x20, 2, 0, 5, 0xD0]),
            Ok(Some((Incoming::ConnAck { code: 5 }, 4)))
        );
        assert_eq!(
            read(&[0x40, 2, 1, 2]),
            Ok(Some((Incoming::PubAck { id: 0x0102 }, 4)))
        );
        assert_eq!(
            read(&[0x50, 2, 0, 9]),
            Ok(Some((Incoming::PubRec { id: 9 }, 4)))
        );
        assert_eq!(
            read(&[0x70, 2, 0, 9]),
            Ok(Some((Incoming::PubComp { id: 9 }, 4)))
        );
        assert_eq!(read(&[0xD0, 0]), Ok(Some((Incoming::PingResp, 2))));
        assert_eq!(read(&[0x40, 1, 1]), Err(PacketError::Malformed("PUBACK")));
        assert_eq!(
            read(&[0x20, 3, 0, 0, 0]),
            Err(PacketError::Malformed("CONNACK"))
        );
        assert_eq!(
            read(&[0x30, 0x80, 0x80, 0x80, 0x80, 1]),
            Err(PacketError::Length)
        );
        let mut other = vec![0x30, 100];
        other.extend_from_slice(&[0u8; 99]);
        assert_eq!(read(&other), Ok(None));
        other.push(0);
        assert_eq!(read(&other), Ok(Some((Incoming::Other { kind: 3 }, 102))));
    }

    #[test]
    fn small_control_packets() {
        assert_eq!(pubrel(0x0a0b), [0x62, 2, 0x0a, 0x0b]);
        assert_eq!(pingreq(), [0xC0, 0]);
        assert_eq!(disconnect(), [0xE0, 0]);
        assert_eq!(connack_reason(4), "bad user name or password");
    }
}
