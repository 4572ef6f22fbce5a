//! CPU µs per 20 ms packet through the engine's transcoder (`core::transcode::Transcoder`:
//! sequencing, decode, resampling where the rates differ, encode, RTP output), one direction
//! at a time, for the codec pairs of the newer codecs (G.722, AMR-NB, AMR-WB, G.722↔Opus)
//! and PCMU↔Opus to compare with. The input is the speech fixture encoded beforehand by the input codec, so
//! only the transcoder is timed. `cargo bench -p ngmedia-engine --bench transcode`. Time is
//! the thread's CPU time: other load on a shared machine (preemption) does not inflate it.

use std::hint::black_box;

use ngmedia_codecs::{Codec, EncoderOptions};
use ngmedia_engine::core::transcode::{CodecEnd, PtSet, TranscodeSpec, Transcoder};

#[path = "../../codecs/examples/support/wav.rs"]
mod wav;

/// Packets per timed run: 40 s of audio, enough for a stable figure on a loaded machine.
const PACKETS: usize = 2_000;

fn speech(name: &str) -> Vec<i16> {
    wav::read(&format!("{}/../samples/{name}", env!("CARGO_MANIFEST_DIR")))
}

/// CPU time this thread has used, in µs.
fn thread_cpu_us() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into the pointer it is given.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 * 1e6 + ts.tv_nsec as f64 / 1e3
}

fn codec(name: &str) -> Codec {
    match name {
        "PCMU" => Codec::from_static_pt(0),
        "PCMA" => Codec::from_static_pt(8),
        "G722" => Codec::from_static_pt(9),
        "AMR" => Codec::lookup("AMR", 8000, None, None).ok(),
        "AMR-WB" => Codec::lookup("AMR-WB", 16000, None, None).ok(),
        _ => Codec::lookup("opus", 48000, Some(2), None).ok(),
    }
    .expect("known codec")
}

fn end(codec: Codec, pt: u8) -> CodecEnd {
    CodecEnd {
        codec,
        pt,
        ptime_ms: 20,
        event_pt: None,
        bitrate: None,
        cn_pt: None,
        dtx: false,
        cmr_interval_ms: 0,
        mode_change_interval_ms: 0,
    }
}

/// The speech at `rate` encoded by `codec` as 20 ms RTP packets (pt 96, consecutive seq and
/// timestamps in the codec's RTP clock).
fn packets(codec: Codec, pcm: &[i16], rate: u32) -> Vec<Vec<u8>> {
    let opts = EncoderOptions {
        pcm_rate: Some(rate),
        ..EncoderOptions::default()
    };
    let mut enc = codec.encoder_with(20, &opts).expect("encoder");
    let mut payload = vec![0u8; enc.max_payload_len()];
    pcm.chunks_exact(enc.frame_samples())
        .enumerate()
        .map(|(k, frame)| {
            let len = enc.encode(frame, &mut payload).expect("encode");
            let mut p = vec![0x80, 96];
            p.extend_from_slice(&(k as u16).to_be_bytes());
            p.extend_from_slice(&(k as u32 * enc.timestamp_step()).to_be_bytes());
            p.extend_from_slice(&0x1234_5678u32.to_be_bytes());
            p.extend_from_slice(&payload[..len]);
            p
        })
        .collect()
}

/// CPU µs per input packet of a transcoder from `from` to `to` (both 20 ms), and the output
/// packets it produced per input packet.
fn per_packet(from: &str, to: &str, input: &[Vec<u8>]) -> (f64, f64) {
    let mut t = Transcoder::new(TranscodeSpec {
        input: end(codec(from), 96),
        output: end(codec(to), 97),
        detect_dtmf: false,
        passthrough: PtSet::NONE,
    })
    .expect("transcoder");
    let mut out = vec![0u8; 1500];
    let mut produced = 0usize;
    let mut packet = input[0].clone();
    // The input repeats, so sequence numbers and timestamps are rewritten to run on.
    let step = u32::from_be_bytes([input[1][4], input[1][5], input[1][6], input[1][7]]);
    let mut run = |k: usize, produced: &mut usize| {
        let src = &input[k % input.len()];
        packet.clear();
        packet.extend_from_slice(src);
        packet[2..4].copy_from_slice(&(k as u16).to_be_bytes());
        packet[4..8].copy_from_slice(&(k as u32).wrapping_mul(step).to_be_bytes());
        t.handle_rtp(k as u64 * 20, &packet);
        while let Some(n) = t.poll_output(&mut out) {
            black_box(&out[..n]);
            *produced += 1;
        }
    };
    for k in 0..PACKETS / 10 {
        run(k, &mut produced); // warm-up
    }
    produced = 0;
    let start = thread_cpu_us();
    for k in PACKETS / 10..PACKETS / 10 + PACKETS {
        run(k, &mut produced);
    }
    let us = (thread_cpu_us() - start) / PACKETS as f64;
    (us, produced as f64 / PACKETS as f64)
}

fn main() {
    let speech8 = speech("speech-8k.wav");
    let speech48 = speech("speech-48k.wav");
    let float48: Vec<f32> = speech48.iter().map(|&s| s as f32 / 32768.0).collect();
    let speech16 =
        ngmedia_codecs::resample::resample_clip(&float48, 48000, 16000).expect("16 kHz speech");
    // What each side sends: narrowband codecs at 8 kHz, G.722 and AMR-WB at 16 kHz, Opus
    // (a browser) at 48 kHz.
    let input = |name: &str| {
        let (pcm, rate) = match name {
            "PCMU" | "PCMA" | "AMR" => (&speech8, 8000),
            "G722" | "AMR-WB" => (&speech16, 16000),
            _ => (&speech48, 48000),
        };
        packets(codec(name), pcm, rate)
    };
    println!("| transcoder, 20 ms packets | µs per packet | packets out per packet in |");
    println!("|---------------------------|---------------|---------------------------|");
    for (a, b) in [
        ("PCMA", "G722"),
        ("PCMU", "AMR"),
        ("opus", "AMR-WB"),
        ("G722", "opus"),
        ("PCMU", "opus"),
    ] {
        for (from, to) in [(a, b), (b, a)] {
            let (us, ratio) = per_packet(from, to, &input(from));
            let label = format!("{from} → {to}");
            println!("| {label:<25} | {us:>13.1} | {ratio:>25.2} |");
        }
    }
}
