//! Sends a 16 kHz mono 16-bit WAV through one wideband codec (encode, then decode) in 20 ms
//! frames, as a transcoder toward and back from a G.722, AMR-WB or Opus party does with 16 kHz
//! audio, and writes the result as a 16 kHz WAV. `bench/pesq_wideband.py` scores it with
//! wideband PESQ (ITU-T P.862.2):
//!
//!     cargo run -p ngmedia-codecs --example wideband -- G722 in16k.wav out16k.wav [bit/s]

use ngmedia_codecs::{Codec, EncoderOptions};

const RATE: u32 = 16_000;

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
    // PCM, mono, 16000 Hz, 32000 bytes/s, block 2, 16 bits.
    for v in [16u32, 0x0001_0001, RATE, RATE * 2, 0x0010_0002] {
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
        amr_bitrate: bitrate,
        ..EncoderOptions::default()
    };
    let mut enc = codec.encoder_with(20, &opts).expect("encoder");
    let mut dec = codec.decoder_at(RATE).expect("decoder");
    let n = (RATE / 50) as usize;
    let mut payload = vec![0u8; enc.max_payload_len()];
    let mut decoded = vec![0i16; 5760 * 2];
    let mut out = Vec::new();
    for frame in read_wav(input).chunks_exact(n) {
        let len = enc.encode(frame, &mut payload).expect("encode");
        let got = dec.decode(&payload[..len], &mut decoded).expect("decode");
        let ch = dec.channels() as usize;
        out.extend(decoded[..got].chunks(ch).map(|c| c[0]));
    }
    write_wav(output, &out);
}
