//! Sends an 8 kHz mono 16-bit WAV through PCMU → codec → PCMU in 20 ms frames, the way the
//! engine's transcoder does (Opus at an 8 kHz PCM rate), writes the result as a WAV and
//! prints the codec's encode + decode µs per frame. `bench/pesq.py` uses it to weigh Opus
//! complexity against PESQ:
//!
//!     cargo run --release -p ngmedia-codecs --example roundtrip -- opus 5 in.wav out.wav [bitrate]

use std::time::Instant;

use ngmedia_codecs::g711::{ulaw_decode, ulaw_encode};
use ngmedia_codecs::{Codec, EncoderOptions};

fn read_wav(path: &str) -> Vec<i16> {
    let data = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let at = data
        .windows(4)
        .position(|w| w == b"data")
        .expect("data chunk")
        + 8;
    data[at..]
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect()
}

fn write_wav(path: &str, pcm: &[i16]) {
    let len = (pcm.len() * 2) as u32;
    let mut out = Vec::with_capacity(44 + len as usize);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    // PCM, mono, 8000 Hz, 16000 bytes/s, block 2, 16 bits.
    for v in [16u32, 0x0001_0001, 8000, 16000, 0x0010_0002] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(b"data");
    out.extend_from_slice(&len.to_le_bytes());
    for s in pcm {
        out.extend_from_slice(&s.to_le_bytes());
    }
    std::fs::write(path, out).unwrap_or_else(|e| panic!("{path}: {e}"));
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (name, complexity, input, output, bitrate) = match &args[..] {
        [_, n, c, i, o] => (n, c, i, o, None),
        [_, n, c, i, o, b] => (n, c, i, o, Some(b.parse().expect("bitrate in bit/s"))),
        _ => {
            eprintln!(
                "usage: roundtrip <opus|G729|PCMA> <opus complexity 0-10> <in.wav> <out.wav> [opus bit/s]"
            );
            std::process::exit(2);
        }
    };
    let codec = match name.to_ascii_lowercase().as_str() {
        "opus" => Codec::lookup("opus", 48000, Some(2), None),
        "g729" => Codec::lookup("G729", 8000, None, Some("annexb=no")),
        other => Codec::lookup(other, 8000, None, None),
    }
    .expect("known codec");
    let opts = EncoderOptions {
        pcm_rate: (codec.name() == "opus").then_some(8000),
        opus_complexity: complexity.parse().expect("complexity 0-10"),
        opus_bitrate: bitrate,
        ..EncoderOptions::default()
    };
    let mut enc = codec.encoder_with(20, &opts).expect("encoder");
    let mut dec = codec.decoder_at(8000).expect("decoder");
    let pcm = read_wav(input);
    let mut out = Vec::with_capacity(pcm.len());
    let mut payload = vec![0u8; enc.max_payload_len()];
    let mut decoded = vec![0i16; 5760 * 2];
    let mut frame = [0i16; 160];
    let mut spent = 0.0;
    let mut frames = 0;
    for chunk in pcm.chunks_exact(160) {
        // The caller's PCMU.
        for (f, &s) in frame.iter_mut().zip(chunk) {
            *f = ulaw_decode(ulaw_encode(s));
        }
        let start = Instant::now();
        let len = enc.encode(&frame, &mut payload).expect("encode");
        let n = dec.decode(&payload[..len], &mut decoded).expect("decode");
        spent += start.elapsed().as_secs_f64();
        frames += 1;
        let ch = dec.channels() as usize;
        // Back to PCMU for the far end.
        out.extend(
            decoded[..n]
                .chunks(ch)
                .map(|c| ulaw_decode(ulaw_encode(c[0]))),
        );
    }
    write_wav(output, &out);
    println!("{:.2}", spent * 1e6 / frames as f64);
}
