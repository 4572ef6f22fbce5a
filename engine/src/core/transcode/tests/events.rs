//! telephone-event through the transcoder: the other side's payload type and clock, in-band
//! rendering and detection.

use super::*;
use ngmedia_codecs::dtmf::{TelephoneEvent, ToneGenerator};

#[test]
fn telephone_event_gets_the_other_sides_pt_and_clock() {
    let mut t = Transcoder::new(TranscodeSpec {
        input: end(pcmu(), 0, 20, Some(101)),
        output: end(opus(), 96, 20, Some(97)),
        detect_dtmf: false,
        passthrough: PtSet::NONE,
    })
    .unwrap();
    let pk = pcmu_packets(440.0, 2, 160);
    t.handle_rtp(0, &pk[0]);
    t.handle_rtp(20, &pk[1]);
    let audio = drain(&mut t);
    assert_eq!(audio.len(), 2);
    // Digit 5 at input ts 1320, three reports and the end (sent three times).
    let ev_ts = 1320;
    let mut seq = 102;
    for (d, end) in [
        (160, false),
        (320, false),
        (480, false),
        (640, true),
        (640, true),
        (640, true),
    ] {
        t.handle_rtp(
            0,
            &rtp(101, d == 160, seq, ev_ts, 0xabc, &event_payload(5, end, d)),
        );
        seq += 1;
    }
    let ev = drain(&mut t);
    assert_eq!(ev.len(), 6);
    assert!(ev.iter().all(|e| e.pt == 97 && e.ts == audio[1].ts + 960));
    assert!(ev[0].marker && !ev[1].marker);
    let parsed: Vec<TelephoneEvent> = ev
        .iter()
        .map(|e| TelephoneEvent::parse(&e.payload).unwrap())
        .collect();
    assert_eq!(parsed[0].duration, 960);
    assert_eq!(parsed[3].duration, 3840);
    assert!(parsed[3].end && parsed[0].event == 5);
    for w in ev.windows(2) {
        assert_eq!(w[1].seq, w[0].seq.wrapping_add(1));
    }
    // Audio after the event continues after its end on the output timeline.
    let payload = vec![0xffu8; 160];
    t.handle_rtp(0, &rtp(0, true, seq, ev_ts + 640, 0xabc, &payload));
    let after = drain(&mut t);
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].ts, ev[0].ts + 3840);
    assert_eq!(after[0].seq, ev[5].seq.wrapping_add(1));
    assert_eq!((audio[0].seq, ev[0].seq), (100, 102));
    assert!(!after[0].marker);
}

#[test]
fn telephone_event_rendered_in_band_without_peer_events() {
    let mut t = Transcoder::new(TranscodeSpec {
        input: end(pcmu(), 0, 20, Some(101)),
        output: end(pcma(), 8, 20, None),
        detect_dtmf: false,
        passthrough: PtSet::NONE,
    })
    .unwrap();
    let mut out = Vec::new();
    let reports = [
        (160, false),
        (320, false),
        (480, false),
        (800, true),
        (800, true),
    ];
    for (seq, (d, end)) in (1u16..).zip(reports) {
        t.handle_rtp(
            0,
            &rtp(101, d == 160, seq, 5000, 7, &event_payload(1, end, d)),
        );
        out.extend(drain(&mut t));
    }
    assert_eq!(out.len(), 5);
    assert!(out.iter().all(|o| o.pt == 8));
    let pcm: Vec<i16> = out
        .iter()
        .flat_map(|o| o.payload.iter().map(|&b| alaw_decode(b)))
        .collect();
    let mut det = ngmedia_codecs::dtmf::DtmfDetector::new(8000).unwrap();
    let mut seen = Vec::new();
    det.process(&pcm, |tr, _| seen.push(tr));
    assert_eq!(
        seen.first(),
        Some(&ngmedia_codecs::dtmf::DtmfTransition::Start(1))
    );
}

#[test]
fn in_band_digit_detected_and_sent_as_events() {
    let mut t = Transcoder::new(TranscodeSpec {
        input: end(pcmu(), 0, 20, None),
        output: end(pcma(), 8, 20, Some(101)),
        detect_dtmf: true,
        passthrough: PtSet::NONE,
    })
    .unwrap();
    // 200 ms of 440 Hz, 200 ms of digit 5 at -10 dBm0, 200 ms of 440 Hz.
    let mut gen = ToneGenerator::new(5, 10, 8000).unwrap();
    let mut out = Vec::new();
    for k in 0..30usize {
        let pcm = if (10..20).contains(&k) {
            let mut f = [0i16; 160];
            gen.fill(&mut f);
            f.to_vec()
        } else {
            sine(440.0, 6000.0, k * 160, 160)
        };
        let payload: Vec<u8> = pcm.iter().map(|&s| ulaw_encode(s)).collect();
        let pkt = rtp(0, k == 0, 10 + k as u16, 4000 + k as u32 * 160, 9, &payload);
        t.handle_rtp(k as u64 * 20, &pkt);
        out.extend(drain(&mut t));
    }
    // One packet per 20 ms frame (the end report replaces one), plus the end report's
    // two retransmissions.
    assert_eq!(out.len(), 32);
    for w in out.windows(2) {
        assert_eq!(w[1].seq, w[0].seq.wrapping_add(1));
    }
    let first_ev = out.iter().position(|o| o.pt == 101).expect("events sent");
    let events: Vec<&Out> = out.iter().filter(|o| o.pt == 101).collect();
    let last_ev = first_ev + events.len() - 1;
    assert!(out[first_ev..=last_ev].iter().all(|o| o.pt == 101));
    // Confirmed within three frames of the tone's start (two 12.75 ms blocks, sent from
    // the next frame on).
    assert!(
        (11..=13).contains(&first_ev),
        "first event at frame {first_ev}"
    );
    assert!(out[first_ev].marker && !out[first_ev + 1].marker);
    let ev_ts = out[first_ev].ts;
    assert_eq!(ev_ts, out[first_ev - 1].ts + 160);
    assert!(events.iter().all(|e| e.ts == ev_ts && e.payload.len() == 4));
    let reports: Vec<TelephoneEvent> = events
        .iter()
        .map(|e| TelephoneEvent::parse(&e.payload).unwrap())
        .collect();
    // The detector's level of the tone: volume 10, give or take its rounding.
    assert!(reports
        .iter()
        .all(|r| r.event == 5 && (9..=11).contains(&r.volume)));
    let n = reports.len() - 3;
    for (i, r) in reports[..n].iter().enumerate() {
        assert_eq!((r.end, r.duration), (false, 160 * (i as u16 + 1)));
    }
    // The end report covers the frame it replaces too.
    let last = reports[n].duration;
    assert_eq!(last, reports[n - 1].duration + 160);
    assert!(reports[n..].iter().all(|r| r.end && r.duration == last));
    // About the tone's 200 ms, give or take the detector's confirmation delay.
    assert!((1120..=1920).contains(&last), "digit lasted {last}");
    // Audio resumes right after the reported duration (no marker, as rtpengine).
    let resume = &out[last_ev + 1];
    assert_eq!(resume.pt, 8);
    assert!(!resume.marker);
    assert_eq!(resume.ts, ev_ts + last as u32);
    assert!(out[last_ev + 1..].iter().all(|o| o.pt == 8 && !o.marker));
    assert_eq!(t.counters().sent_packets, 32);
}

#[test]
fn no_detection_without_the_option_or_peer_events() {
    for (detect, event_pt) in [(false, Some(101)), (true, None)] {
        let mut t = Transcoder::new(TranscodeSpec {
            input: end(pcmu(), 0, 20, None),
            output: end(pcma(), 8, 20, event_pt),
            detect_dtmf: detect,
            passthrough: PtSet::NONE,
        })
        .unwrap();
        let mut gen = ToneGenerator::new(1, 10, 8000).unwrap();
        let mut out = Vec::new();
        for k in 0..10usize {
            let mut f = [0i16; 160];
            gen.fill(&mut f);
            let payload: Vec<u8> = f.iter().map(|&s| ulaw_encode(s)).collect();
            t.handle_rtp(0, &rtp(0, false, k as u16, k as u32 * 160, 9, &payload));
            out.extend(drain(&mut t));
        }
        assert_eq!(out.len(), 10);
        assert!(out.iter().all(|o| o.pt == 8), "{detect} {event_pt:?}");
    }
}
