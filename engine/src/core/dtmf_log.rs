//! DTMF event reports (rtpengine's `--dtmf-log-dest`, `dtmf.c`): every digit a party sends,
//! as RFC 4733 events or detected in its in-band audio, reported once, when it ends, as
//! one JSON object in a UDP datagram (what Kamailio's `rtpengine` module reads on its
//! `dtmf_event_sock` and hands to `event_route[rtpengine:dtmf-event]`):
//!
//! ```json
//! {"callid":"…","source_tag":"…","source_label":"","tags":["…","…"],"type":"DTMF",
//!  "timestamp":1700000000,"source_ip":"198.51.100.1","event":8,"duration":60,"volume":15}
//! ```
//!
//! `duration` is in milliseconds, computed as rtpengine does
//! (`units · (1000000 / clock) / 1000`, integer arithmetic), `volume` is the RFC 4733 volume
//! (-dBm0), `timestamp` Unix seconds. An event is reported on its first end packet; the
//! repeats (same timestamp) are not reported again.
//!
//! The identity of the stream ([`DtmfLogSource`]) is built with the plan; the packet path
//! reads it and formats into a stack buffer, so a report allocates nothing.

use std::io::Write;
use std::net::IpAddr;

use ngmedia_codecs::dtmf::TelephoneEvent;

use super::rtp::RtpHeader;

/// Who sends a stream, for its DTMF reports (rtpengine: the `call` and `call_monologue`
/// of the `call_media` the event arrived on).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DtmfLogSource {
    pub call_id: String,
    /// The sending party's tag, and its `set-label` label.
    pub source_tag: String,
    pub source_label: String,
    /// Tags of every party of the call.
    pub tags: Vec<String>,
    /// The party's telephone-event payload types and their clock rates.
    pub events: Vec<(u8, u32)>,
}

/// One digit to report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DtmfReport {
    pub event: u8,
    /// RFC 4733 volume (0-63, -dBm0).
    pub volume: u8,
    /// Length in units of `clock`.
    pub duration: u32,
    pub clock: u32,
}

/// Largest report formatted on the stack; a call with very long ids and many tags is cut
/// off here (the report is then dropped, never truncated JSON).
pub(crate) const MAX_REPORT: usize = 2048;

impl DtmfLogSource {
    /// The report as rtpengine writes it, into `out`; returns its length, `None` when it
    /// does not fit.
    pub fn write_json(
        &self,
        out: &mut [u8],
        report: &DtmfReport,
        source_ip: IpAddr,
        unix_secs: u64,
    ) -> Option<usize> {
        let cap = out.len();
        let mut w = &mut out[..];
        write!(w, "{{\"callid\":").ok()?;
        json_str(&mut w, &self.call_id)?;
        write!(w, ",\"source_tag\":").ok()?;
        json_str(&mut w, &self.source_tag)?;
        write!(w, ",\"source_label\":").ok()?;
        json_str(&mut w, &self.source_label)?;
        write!(w, ",\"tags\":[").ok()?;
        for (i, t) in self.tags.iter().enumerate() {
            if i > 0 {
                write!(w, ",").ok()?;
            }
            json_str(&mut w, t)?;
        }
        let clock = report.clock.max(1);
        // rtpengine's integer arithmetic: µs per unit first, truncated.
        let ms = u64::from(report.duration) * u64::from(1_000_000 / clock) / 1000;
        write!(
            w,
            "],\"type\":\"DTMF\",\"timestamp\":{unix_secs},\"source_ip\":\"{source_ip}\",\
             \"event\":{},\"duration\":{ms},\"volume\":{}}}",
            report.event, report.volume
        )
        .ok()?;
        Some(cap - w.len())
    }

    /// The clock rate of telephone-event payload type `pt` of this stream.
    pub fn event_clock(&self, pt: u8) -> Option<u32> {
        self.events.iter().find(|e| e.0 == pt).map(|e| e.1)
    }
}

/// A JSON string literal of `s`.
fn json_str(w: &mut &mut [u8], s: &str) -> Option<()> {
    write!(w, "\"").ok()?;
    for c in s.chars() {
        match c {
            '"' => write!(w, "\\\""),
            '\\' => write!(w, "\\\\"),
            c if (c as u32) < 0x20 => write!(w, "\\u{:04x}", c as u32),
            c => write!(w, "{c}"),
        }
        .ok()?;
    }
    write!(w, "\"").ok()
}

/// Watches the RFC 4733 events a party sends and yields each digit once, on its first
/// end packet (rtpengine: `dtmf_event_packet` with the media's last event timestamp).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct EventWatch {
    last_end_ts: Option<u32>,
}

impl EventWatch {
    /// Looks at one RTP packet of the party; a report when it is the first end packet of
    /// an event.
    pub(crate) fn on_rtp(&mut self, src: &DtmfLogSource, pkt: &[u8]) -> Option<DtmfReport> {
        let h = RtpHeader::parse(pkt).ok()?;
        let clock = src.event_clock(h.payload_type())?;
        let ev = TelephoneEvent::parse(h.payload().ok()?).ok()?;
        if !ev.end || self.last_end_ts == Some(h.timestamp()) {
            return None;
        }
        self.last_end_ts = Some(h.timestamp());
        Some(DtmfReport {
            event: ev.event,
            volume: ev.volume,
            duration: u32::from(ev.duration),
            clock,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source() -> DtmfLogSource {
        DtmfLogSource {
            call_id: "c\"1".into(),
            source_tag: "a".into(),
            source_label: String::new(),
            tags: vec!["a".into(), "b".into()],
            events: vec![(101, 8000), (96, 16000)],
        }
    }

    fn event(pt: u8, ts: u32, payload: [u8; 4]) -> Vec<u8> {
        let mut p = vec![0x80, pt, 0, 1];
        p.extend_from_slice(&ts.to_be_bytes());
        p.extend_from_slice(&[0, 0, 0, 1]);
        p.extend_from_slice(&payload);
        p
    }

    #[test]
    fn json_is_rtpengines() {
        let mut buf = [0u8; MAX_REPORT];
        let r = DtmfReport {
            event: 8,
            volume: 15,
            duration: 480,
            clock: 8000,
        };
        let n = source()
            .write_json(&mut buf, &r, "198.51.100.1".parse().unwrap(), 1_700_000_000)
            .unwrap();
        assert_eq!(
            std::str::from_utf8(&buf[..n]).unwrap(),
            "{\"callid\":\"c\\\"1\",\"source_tag\":\"a\",\"source_label\":\"\",\
             \"tags\":[\"a\",\"b\"],\"type\":\"DTMF\",\"timestamp\":1700000000,\
             \"source_ip\":\"198.51.100.1\",\"event\":8,\"duration\":60,\"volume\":15}"
        );
        // 16 kHz: 62 µs per unit, truncated first (rtpengine's arithmetic).
        let wide = DtmfReport {
            clock: 16000,
            duration: 960,
            ..r
        };
        let n = source()
            .write_json(&mut buf, &wide, "::1".parse().unwrap(), 1)
            .unwrap();
        assert!(std::str::from_utf8(&buf[..n])
            .unwrap()
            .contains("\"source_ip\":\"::1\",\"event\":8,\"duration\":59,"));
        assert_eq!(
            source().write_json(&mut buf[..40], &r, "::1".parse().unwrap(), 1),
            None
        );
    }

    #[test]
    fn one_report_per_event_on_its_first_end_packet() {
        let src = source();
        let mut w = EventWatch::default();
        assert_eq!(w.on_rtp(&src, &event(101, 100, [5, 10, 0, 160])), None);
        let end = event(101, 100, [5, 0x8a, 1, 0xe0]);
        let r = w.on_rtp(&src, &end).expect("report");
        assert_eq!((r.event, r.volume, r.duration, r.clock), (5, 10, 480, 8000));
        assert_eq!(w.on_rtp(&src, &end), None, "repeat");
        // Audio and unknown payload types are not events.
        assert_eq!(w.on_rtp(&src, &event(0, 260, [0x8a; 4])), None);
        let next = w
            .on_rtp(&src, &event(96, 900, [11, 0x80, 3, 0xc0]))
            .unwrap();
        assert_eq!((next.event, next.clock), (11, 16000));
    }
}
