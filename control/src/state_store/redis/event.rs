//! Messages on the `P:events` channel, so standbys mirror other instances' calls without
//! polling.
//!
//! Framing: a header line `save <owner-len> <call-id-len>\n` (or `del ...`), then the owner
//! and the call-id as raw bytes of exactly those lengths, then (for `save`) the state JSON
//! up to the end of the message. Lengths make it unambiguous whatever a call-id contains
//! (spaces, newlines).

/// One message on the events channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Event {
    /// `owner` saved the call; `state` is `CallState::encode()` output.
    Save {
        owner: String,
        call_id: String,
        state: Vec<u8>,
    },
    /// `owner` removed the call.
    Remove { owner: String, call_id: String },
}

/// Why a message could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum EventError {
    #[error("no header line")]
    NoHeader,
    #[error("bad header line")]
    BadHeader,
    #[error("unknown verb `{0}`")]
    UnknownVerb(String),
    #[error("message shorter than its header says")]
    Truncated,
    #[error("owner or call-id is not UTF-8")]
    NotUtf8,
    #[error("`del` message has trailing bytes")]
    Trailing,
}

const SAVE: &str = "save";
const REMOVE: &str = "del";
/// Longest header line accepted (`save 4294967295 4294967295` is 27 bytes).
const MAX_HEADER: usize = 64;

fn frame(verb: &str, owner: &str, call_id: &str, state: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(32 + owner.len() + call_id.len() + state.len());
    out.extend_from_slice(format!("{verb} {} {}\n", owner.len(), call_id.len()).as_bytes());
    out.extend_from_slice(owner.as_bytes());
    out.extend_from_slice(call_id.as_bytes());
    out.extend_from_slice(state);
    out
}

/// The message announcing that `owner` saved `call_id` with `state`.
pub(super) fn encode_save(owner: &str, call_id: &str, state: &[u8]) -> Vec<u8> {
    frame(SAVE, owner, call_id, state)
}

/// The message announcing that `owner` removed `call_id`.
pub(super) fn encode_remove(owner: &str, call_id: &str) -> Vec<u8> {
    frame(REMOVE, owner, call_id, &[])
}

/// Read one message.
pub(super) fn decode(msg: &[u8]) -> Result<Event, EventError> {
    let nl = msg
        .iter()
        .take(MAX_HEADER)
        .position(|&b| b == b'\n')
        .ok_or(EventError::NoHeader)?;
    let header = std::str::from_utf8(&msg[..nl]).map_err(|_| EventError::BadHeader)?;
    let mut parts = header.split(' ');
    let (Some(verb), Some(owner_len), Some(id_len), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(EventError::BadHeader);
    };
    let len = |s: &str| s.parse::<usize>().map_err(|_| EventError::BadHeader);
    let (owner_len, id_len) = (len(owner_len)?, len(id_len)?);
    let body = &msg[nl + 1..];
    let split = owner_len.checked_add(id_len).ok_or(EventError::Truncated)?;
    if body.len() < split {
        return Err(EventError::Truncated);
    }
    let text = |b: &[u8]| {
        std::str::from_utf8(b)
            .map(String::from)
            .map_err(|_| EventError::NotUtf8)
    };
    let owner = text(&body[..owner_len])?;
    let call_id = text(&body[owner_len..split])?;
    let rest = &body[split..];
    match verb {
        SAVE => Ok(Event::Save {
            owner,
            call_id,
            state: rest.to_vec(),
        }),
        REMOVE if rest.is_empty() => Ok(Event::Remove { owner, call_id }),
        REMOVE => Err(EventError::Trailing),
        other => Err(EventError::UnknownVerb(other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_frame_bytes_and_round_trip() {
        let msg = encode_save("m1", "a b\nc", br#"{"version":1}"#);
        assert_eq!(msg, b"save 2 5\nm1a b\nc{\"version\":1}".to_vec());
        assert_eq!(
            decode(&msg).unwrap(),
            Event::Save {
                owner: "m1".into(),
                call_id: "a b\nc".into(),
                state: br#"{"version":1}"#.to_vec(),
            }
        );
    }

    #[test]
    fn remove_frame_bytes_and_round_trip() {
        let msg = encode_remove("media-2", "x@y");
        assert_eq!(msg, b"del 7 3\nmedia-2x@y".to_vec());
        assert_eq!(
            decode(&msg).unwrap(),
            Event::Remove {
                owner: "media-2".into(),
                call_id: "x@y".into()
            }
        );
        // Empty call-id and empty state still frame unambiguously.
        assert_eq!(
            decode(&encode_save("o", "", b"")).unwrap(),
            Event::Save {
                owner: "o".into(),
                call_id: String::new(),
                state: Vec::new()
            }
        );
    }

    #[test]
    fn rejects_malformed_messages() {
        assert_eq!(decode(b"save 1 1"), Err(EventError::NoHeader));
        assert_eq!(decode(b"save 1\nab"), Err(EventError::BadHeader));
        assert_eq!(decode(b"save 1 1 1\nab"), Err(EventError::BadHeader));
        assert_eq!(decode(b"save x 1\nab"), Err(EventError::BadHeader));
        assert_eq!(decode(b"save 2 5\nm1a"), Err(EventError::Truncated));
        assert_eq!(
            decode(b"save 18446744073709551615 1\nab"),
            Err(EventError::Truncated)
        );
        assert_eq!(decode(b"del 1 1\nabX"), Err(EventError::Trailing));
        assert_eq!(
            decode(b"put 1 1\nab"),
            Err(EventError::UnknownVerb("put".into()))
        );
        assert_eq!(decode(b"del 1 1\n\xffb"), Err(EventError::NotUtf8));
        let long = [b'a'; 100];
        assert_eq!(decode(&long), Err(EventError::NoHeader));
    }
}
