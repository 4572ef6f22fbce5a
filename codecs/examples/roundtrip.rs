//! Sends an 8 kHz mono 16-bit WAV through PCMU → codec → PCMU in 20 ms frames, the way the
//! engine's transcoder does (Opus at an 8 kHz PCM rate), writes the result as a WAV and
//! prints the codec's encode + decode µs per frame. `bench/pesq.py` uses it to weigh Opus
//! complexity against PESQ:
//!
//!     cargo run --release -p ngmedia-codecs --example roundtrip -- opus 5 in.wav out.wav [bitrate]

use std::time::Instant;

use ngmedia_codecs::g711::{ulaw_decode, ulaw_encode};
use ngmedia_codecs::{Codec, EncoderOptions};

#[path = "support/wav.rs"]
mod wav;

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
    let pcm = wav::read(input);
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
    wav::write(output, &out, 8000);
    println!("{:.2}", spent * 1e6 / frames as f64);
}
