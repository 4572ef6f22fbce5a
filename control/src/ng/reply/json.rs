//! JSON replies: the bencode reply re-encoded, so both encodings share one writer.

use crate::bencode::{self, Value};

/// Re-encode a bencode reply as a JSON object, keeping key order. Byte strings that are not
/// UTF-8 are converted lossily (JSON strings cannot carry raw bytes).
pub(crate) fn bencode_to_json(reply: &[u8]) -> Option<Vec<u8>> {
    let value = bencode::decode(reply).ok()?;
    let mut out = Vec::with_capacity(reply.len() + reply.len() / 8);
    write_json(&mut out, &value);
    Some(out)
}

fn write_json(out: &mut Vec<u8>, v: &Value<'_>) {
    fn string(out: &mut Vec<u8>, b: &[u8]) {
        // Serialising a &str to a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, &String::from_utf8_lossy(b));
    }
    match v {
        Value::Bytes(b) => string(out, b),
        Value::Int(i) => out.extend_from_slice(i.to_string().as_bytes()),
        Value::List(items) => {
            out.push(b'[');
            for (n, item) in items.iter().enumerate() {
                if n > 0 {
                    out.push(b',');
                }
                write_json(out, item);
            }
            out.push(b']');
        }
        Value::Dict(entries) => {
            out.push(b'{');
            for (n, (k, item)) in entries.iter().enumerate() {
                if n > 0 {
                    out.push(b',');
                }
                string(out, k);
                out.push(b':');
                write_json(out, item);
            }
            out.push(b'}');
        }
    }
}

#[cfg(test)]
mod tests {
    use ngmedia_engine::core::calls::OfferAnswerReply;

    use super::*;
    use crate::ng::reply::tests::EX2_QUERY;
    use crate::ng::reply::{write_offer_answer, write_pong};

    #[test]
    fn json_conversion_keeps_order() {
        let mut out = Vec::new();
        write_offer_answer(
            &mut out,
            &OfferAnswerReply {
                sdp: "v=0\r\n\"x\"".into(),
                warnings: vec![],
            },
        );
        assert_eq!(
            bencode_to_json(&out).unwrap(),
            br#"{"sdp":"v=0\r\n\"x\"","result":"ok"}"#.to_vec()
        );
        out.clear();
        write_pong(&mut out);
        assert_eq!(
            bencode_to_json(&out).unwrap(),
            br#"{"result":"pong"}"#.to_vec()
        );
        let ex2 = bencode_to_json(EX2_QUERY).unwrap();
        let parsed: serde_json::Value = serde_json::from_slice(&ex2).unwrap();
        assert_eq!(
            parsed["tags"]["tagB"]["medias"][0]["streams"][0]["SSRC"],
            572662306
        );
        assert_eq!(parsed["totals"]["RTP"]["bytes"], 3440);
        assert!(String::from_utf8(ex2)
            .unwrap()
            .starts_with(r#"{"created":1795300564,"created_us":312128,"#));
    }
}
