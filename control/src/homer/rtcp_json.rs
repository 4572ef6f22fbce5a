//! A received RTCP compound packet in the JSON form Homer files RTCP reports under (capture
//! protocol 5, as captagent and rtpengine send it): the sender information of an SR, the
//! reporter's SSRC, the packet type and its report blocks, and the SDES items.
//!
//! ```json
//! {"sender_information":{"ntp_timestamp_sec":…,"ntp_timestamp_usec":…,"octets":…,
//!  "rtp_timestamp":…,"packets":…},"ssrc":…,"type":200,"report_count":1,
//!  "report_blocks":[{"source_ssrc":…,"highest_seq_no":…,"fraction_lost":…,"ia_jitter":…,
//!  "packets_lost":…,"lsr":…,"dlsr":…}],"sdes_report_count":1,
//!  "sdes_information":[{"sdes_chunk_ssrc":…,"type":1,"text":"…"}]}
//! ```
//!
//! `ntp_timestamp_usec` carries the NTP fraction word unchanged, as Homer's other sources do.
//! Only the first SR or RR of a compound packet fills the report fields; BYE, APP, feedback
//! and XR add nothing. A packet with nothing to report gives `None`.

use serde_json::{json, Map, Value};

const SR: u8 = 200;
const RR: u8 = 201;
const SDES: u8 = 202;

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// The report of one compound packet, or `None` when it holds no SR, RR or SDES.
pub(super) fn to_json(packet: &[u8]) -> Option<String> {
    let mut out = Map::new();
    let mut rest = packet;
    while rest.len() >= 4 {
        let (first, pt) = (rest[0], rest[1]);
        if first >> 6 != 2 {
            break;
        }
        let count = first & 0x1f;
        let len = (usize::from(u16::from_be_bytes([rest[2], rest[3]])) + 1) * 4;
        let Some(part) = rest.get(..len) else {
            break;
        };
        rest = &rest[len..];
        match pt {
            SR | RR if !out.contains_key("type") => report(&mut out, part, pt, count),
            SDES if !out.contains_key("sdes_information") => sdes(&mut out, part, count),
            _ => {}
        }
    }
    (!out.is_empty()).then(|| Value::Object(out).to_string())
}

fn report(out: &mut Map<String, Value>, part: &[u8], pt: u8, count: u8) {
    let Some(ssrc) = be32(part, 4) else {
        return;
    };
    let mut blocks_at = 8;
    if pt == SR {
        let (Some(msw), Some(lsw), Some(ts), Some(packets), Some(octets)) = (
            be32(part, 8),
            be32(part, 12),
            be32(part, 16),
            be32(part, 20),
            be32(part, 24),
        ) else {
            return;
        };
        out.insert(
            "sender_information".into(),
            json!({
                "ntp_timestamp_sec": msw,
                "ntp_timestamp_usec": lsw,
                "octets": octets,
                "rtp_timestamp": ts,
                "packets": packets,
            }),
        );
        blocks_at = 28;
    }
    let blocks: Vec<Value> = (0..usize::from(count))
        .map_while(|i| {
            let b = part.get(blocks_at + i * 24..blocks_at + (i + 1) * 24)?;
            let lost = u32::from_be_bytes([0, b[5], b[6], b[7]]);
            // 24-bit two's complement: a duplicate-heavy stream reports a negative loss.
            let lost = ((lost << 8) as i32) >> 8;
            Some(json!({
                "source_ssrc": be32(b, 0)?,
                "highest_seq_no": be32(b, 8)?,
                "fraction_lost": b[4],
                "ia_jitter": be32(b, 12)?,
                "packets_lost": lost,
                "lsr": be32(b, 16)?,
                "dlsr": be32(b, 20)?,
            }))
        })
        .collect();
    out.insert("ssrc".into(), ssrc.into());
    out.insert("type".into(), pt.into());
    out.insert("report_count".into(), count.into());
    out.insert("report_blocks".into(), blocks.into());
}

fn sdes(out: &mut Map<String, Value>, part: &[u8], count: u8) {
    let mut items = Vec::new();
    let mut at = 4;
    for _ in 0..count {
        let Some(ssrc) = be32(part, at) else {
            break;
        };
        at += 4;
        // Items until the END item (type 0), then padding to the next 32-bit boundary.
        while let Some(&kind) = part.get(at) {
            if kind == 0 {
                break;
            }
            let Some(&len) = part.get(at + 1) else {
                break;
            };
            let Some(text) = part.get(at + 2..at + 2 + usize::from(len)) else {
                break;
            };
            // Printable ASCII kept, anything else replaced (the text is free-form bytes).
            let text: String = text
                .iter()
                .map(|&c| {
                    if (b' '..=b'~').contains(&c) {
                        c as char
                    } else {
                        '_'
                    }
                })
                .collect();
            items.push(json!({"sdes_chunk_ssrc": ssrc, "type": kind, "text": text}));
            at += 2 + usize::from(len);
        }
        at = (at + 4) & !3;
    }
    out.insert("sdes_report_count".into(), count.into());
    out.insert("sdes_information".into(), items.into());
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SR from SSRC 0x11223344 with one report block about 0x55667788, then SDES CNAME.
    fn compound() -> Vec<u8> {
        let mut p = vec![0x81, SR, 0, 12];
        p.extend_from_slice(&0x1122_3344u32.to_be_bytes());
        for v in [3_900_000_000u32, 0x8000_0000, 160_000, 500, 80_000] {
            p.extend_from_slice(&v.to_be_bytes());
        }
        p.extend_from_slice(&0x5566_7788u32.to_be_bytes());
        p.extend_from_slice(&[25, 0xff, 0xff, 0xfe]); // fraction 25, cumulative -2
        for v in [70_000u32, 33, 0xdead_beef, 65_536] {
            p.extend_from_slice(&v.to_be_bytes());
        }
        p.extend_from_slice(&[0x81, SDES, 0, 4]);
        p.extend_from_slice(&0x1122_3344u32.to_be_bytes());
        p.extend_from_slice(&[1, 7]);
        p.extend_from_slice(b"a\"b@c\x01d");
        p.extend_from_slice(&[0, 0, 0]);
        p
    }

    #[test]
    fn sender_report_with_block_and_cname() {
        let json: Value = serde_json::from_str(&to_json(&compound()).unwrap()).unwrap();
        assert_eq!(
            json,
            json!({
                "sender_information": {
                    "ntp_timestamp_sec": 3_900_000_000u32,
                    "ntp_timestamp_usec": 0x8000_0000u32,
                    "octets": 80_000,
                    "rtp_timestamp": 160_000,
                    "packets": 500,
                },
                "ssrc": 0x1122_3344u32,
                "type": 200,
                "report_count": 1,
                "report_blocks": [{
                    "source_ssrc": 0x5566_7788u32,
                    "highest_seq_no": 70_000,
                    "fraction_lost": 25,
                    "ia_jitter": 33,
                    "packets_lost": -2,
                    "lsr": 0xdead_beefu32,
                    "dlsr": 65_536,
                }],
                "sdes_report_count": 1,
                "sdes_information": [
                    {"sdes_chunk_ssrc": 0x1122_3344u32, "type": 1, "text": "a\"b@c_d"}
                ],
            })
        );
    }

    #[test]
    fn receiver_report_without_blocks() {
        let mut p = vec![0x80, RR, 0, 1];
        p.extend_from_slice(&7u32.to_be_bytes());
        let json: Value = serde_json::from_str(&to_json(&p).unwrap()).unwrap();
        assert_eq!(
            json,
            json!({"ssrc": 7, "type": 201, "report_count": 0, "report_blocks": []})
        );
    }

    #[test]
    fn nothing_to_report() {
        assert_eq!(to_json(&[0x81, 203, 0, 1, 0, 0, 0, 9]), None, "BYE only");
        assert_eq!(to_json(&[]), None);
        assert_eq!(to_json(&[0x81, SR, 0, 200, 1, 2]), None, "lying length");
        // A truncated SR reports nothing rather than garbage.
        assert_eq!(to_json(&[0x80, SR, 0, 1, 0, 0, 0, 1]), None);
    }
}
