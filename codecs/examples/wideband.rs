//! Sends a 16 kHz mono 16-bit WAV through one wideband codec (encode, then decode) in 20 ms
//! frames, as a transcoder toward and back from a G.722, AMR-WB or Opus party does with 16 kHz
//! audio, and writes the result as a 16 kHz WAV. `bench/pesq_wideband.py` scores it with
//! wideband PESQ (ITU-T P.862.2):
//!
//!     cargo run -p ngmedia-codecs --example wideband -- G722 in16k.wav out16k.wav [bit/s]

use ngmedia_codecs::{Codec, EncoderOptions};

const RATE: u32 = 16_000;

#[path = "support/wav.rs"]
mod wav;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (name, input, output, bitrate) = match &args[..] {
        [_, n, i, o] => (n, i, o, None),
        [_, n, i, o, b] => (n, i, o, Some(b.parse::<u32>().expect("bit/s"))),
        _ => {
            eprintln!("usage: wideband <G722|AMR-WB|opus> <in16k.wav> <out16k.wav> [bit/s]");
            std::process::exit(2);
        }
    };
    let codec = match name.to_ascii_lowercase().as_str() {
        "opus" => Codec::lookup("opus", 48000, Some(2), None),
        "amr-wb" => Codec::lookup("AMR-WB", 16000, None, Some("octet-align=1")),
        _ => Codec::lookup("G722", 8000, None, None),
    }
    .expect("known codec");
    let opts = EncoderOptions {
        pcm_rate: Some(RATE),
        opus_bitrate: bitrate.map(|b| b as i32),
        bitrate,
        ..EncoderOptions::default()
    };
    let mut enc = codec.encoder_with(20, &opts).expect("encoder");
    let mut dec = codec.decoder_at(RATE).expect("decoder");
    let n = (RATE / 50) as usize;
    let mut payload = vec![0u8; enc.max_payload_len()];
    let mut decoded = vec![0i16; 5760 * 2];
    let mut out = Vec::new();
    for frame in wav::read(input).chunks_exact(n) {
        let len = enc.encode(frame, &mut payload).expect("encode");
        let got = dec.decode(&payload[..len], &mut decoded).expect("decode");
        let ch = dec.channels() as usize;
        out.extend(decoded[..got].chunks(ch).map(|c| c[0]));
    }
    wav::write(output, &out, RATE);
}
