//! Opus settings for a 16 kHz (wideband) party, measured: sends a 16 kHz mono 16-bit WAV
//! through an optional first codec (what the other party speaks: G.722 or AMR-WB 14.25 kbit/s,
//! encoded and decoded at 16 kHz), then through libopus with the given settings (and with
//! `after=` through that codec again, as the first party hears it back), and writes the
//! result as a 16 kHz WAV. Prints the Opus encoder's and decoder's
//! thread CPU µs per 20 ms frame (best of five passes, resampling included where the settings
//! ask for 48 kHz) and the share of packets in each Opus mode, as one line of JSON.
//! `bench/pesq_wideband.py --sweep` scores the WAV with wideband PESQ (ITU-T P.862.2):
//!
//!     cargo run --release -p ngmedia-codecs --example opus_wideband -- in16k.wav out16k.wav \
//!         before=AMR-WB c=3 b=32000 enc=16000 dec=16000 bw=auto app=voip signal=voice
//!
//! `enc=48000` upsamples to 48 kHz before encoding (as rtpengine does), `dec=48000` decodes at
//! 48 kHz and resamples to 16 kHz; `bw` is `OPUS_SET_MAX_BANDWIDTH` (nb, mb, wb, swb, fb).

use std::hint::black_box;

use audiopus::coder::{Decoder as RawDecoder, Encoder as RawEncoder};
use audiopus::ffi;
use audiopus::{Application, Bitrate, Channels, SampleRate, Signal};
use ngmedia_codecs::{Codec, EncoderOptions, Resampler};

#[path = "support/wav.rs"]
mod wav;

const RATE: u32 = 16_000;
const FRAME: usize = 320;

struct Settings {
    before: String,
    after: String,
    complexity: u8,
    bitrate: i32,
    enc_rate: u32,
    dec_rate: u32,
    bandwidth: Option<i32>,
    app: Application,
    signal: Signal,
}

fn parse(args: &[String]) -> Settings {
    let mut s = Settings {
        before: "none".into(),
        after: "none".into(),
        complexity: 5,
        bitrate: 32_000,
        enc_rate: RATE,
        dec_rate: RATE,
        bandwidth: None,
        app: Application::Voip,
        signal: Signal::Voice,
    };
    for arg in args {
        let (key, value) = arg.split_once('=').expect("key=value");
        match key {
            "before" => s.before = value.to_string(),
            "after" => s.after = value.to_string(),
            "c" => s.complexity = value.parse().expect("complexity 0-10"),
            "b" => s.bitrate = value.parse().expect("bit/s"),
            "enc" => s.enc_rate = value.parse().expect("16000 or 48000"),
            "dec" => s.dec_rate = value.parse().expect("16000 or 48000"),
            "bw" => {
                s.bandwidth = match value {
                    "nb" => Some(ffi::OPUS_BANDWIDTH_NARROWBAND),
                    "mb" => Some(ffi::OPUS_BANDWIDTH_MEDIUMBAND),
                    "wb" => Some(ffi::OPUS_BANDWIDTH_WIDEBAND),
                    "swb" => Some(ffi::OPUS_BANDWIDTH_SUPERWIDEBAND),
                    "fb" => Some(ffi::OPUS_BANDWIDTH_FULLBAND),
                    _ => None,
                }
            }
            "app" => {
                s.app = match value {
                    "audio" => Application::Audio,
                    "lowdelay" => Application::LowDelay,
                    _ => Application::Voip,
                }
            }
            "signal" => {
                s.signal = match value {
                    "music" => Signal::Music,
                    "auto" => Signal::Auto,
                    _ => Signal::Voice,
                }
            }
            other => panic!("unknown setting {other}"),
        }
    }
    s
}

fn rate(hz: u32) -> SampleRate {
    if hz == 48_000 {
        SampleRate::Hz48000
    } else {
        SampleRate::Hz16000
    }
}

fn encoder(s: &Settings) -> RawEncoder {
    let mut enc = RawEncoder::new(rate(s.enc_rate), Channels::Mono, s.app).expect("encoder");
    enc.set_complexity(s.complexity).expect("complexity");
    enc.set_bitrate(Bitrate::BitsPerSecond(s.bitrate))
        .expect("bitrate");
    enc.set_signal(s.signal).expect("signal");
    if let Some(bw) = s.bandwidth {
        enc.set_encoder_ctl_request(ffi::OPUS_SET_MAX_BANDWIDTH_REQUEST, bw)
            .expect("max bandwidth");
    }
    enc
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

/// The speech as the other party's codec leaves it: encoded and decoded at 16 kHz (also what
/// that party hears of the Opus side's audio, `after=`).
fn through_first_codec(name: &str, pcm: &[i16]) -> Vec<i16> {
    let codec = match name {
        "AMR-WB" => Codec::lookup("AMR-WB", 16000, None, Some("octet-align=1")),
        "G722" => Codec::lookup("G722", 8000, None, None),
        _ => return pcm.to_vec(),
    }
    .expect("known codec");
    let mut enc = codec
        .encoder_with(20, &EncoderOptions::default())
        .expect("encoder");
    let mut dec = codec.decoder_at(RATE).expect("decoder");
    let mut payload = vec![0u8; enc.max_payload_len()];
    let mut decoded = vec![0i16; FRAME * 2];
    let mut out = Vec::with_capacity(pcm.len());
    for frame in pcm.chunks_exact(FRAME) {
        let len = enc.encode(frame, &mut payload).expect("encode");
        let got = dec.decode(&payload[..len], &mut decoded).expect("decode");
        out.extend_from_slice(&decoded[..got]);
    }
    out
}

/// One pass of the Opus stage over `input` (16 kHz frames): the packets, the 16 kHz output,
/// and the encode and decode CPU µs per frame (resampling included).
fn opus_pass(s: &Settings, input: &[i16]) -> (Vec<u8>, Vec<i16>, f64, f64) {
    let enc = encoder(s);
    let mut dec = RawDecoder::new(rate(s.dec_rate), Channels::Mono).expect("decoder");
    let mut up = (s.enc_rate != RATE).then(|| Resampler::new(RATE, s.enc_rate, 20).unwrap());
    let mut down = (s.dec_rate != RATE).then(|| Resampler::new(s.dec_rate, RATE, 20).unwrap());
    let mut wide = vec![0i16; s.enc_rate.max(s.dec_rate) as usize / 50];
    let mut payload = [0u8; 1275];
    let mut decoded = vec![0i16; s.dec_rate as usize / 50];
    let mut narrow = [0i16; FRAME];
    let (mut enc_us, mut dec_us) = (0.0, 0.0);
    let mut tocs = Vec::new();
    let mut out = Vec::with_capacity(input.len());
    let frames = input.chunks_exact(FRAME);
    let count = frames.len() as f64;
    for frame in frames {
        let t0 = thread_cpu_us();
        let len = match &mut up {
            Some(r) => {
                let n = r.process(frame, &mut wide).expect("resample");
                enc.encode(&wide[..n], &mut payload).expect("encode")
            }
            None => enc.encode(frame, &mut payload).expect("encode"),
        };
        let t1 = thread_cpu_us();
        let packet = black_box(&payload[..len]);
        let n = dec
            .decode(Some(packet), &mut decoded[..], false)
            .expect("decode");
        let pcm = match &mut down {
            Some(r) => {
                let m = r.process(&decoded[..n], &mut narrow).expect("resample");
                &narrow[..m]
            }
            None => &decoded[..n],
        };
        let t2 = thread_cpu_us();
        enc_us += t1 - t0;
        dec_us += t2 - t1;
        tocs.push(payload[0]);
        out.extend_from_slice(pcm);
    }
    (tocs, out, enc_us / count, dec_us / count)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 2 {
        eprintln!("usage: opus_wideband <in16k.wav> <out16k.wav> [key=value ...]");
        std::process::exit(2);
    }
    let s = parse(&args[2..]);
    let input = through_first_codec(&s.before, &wav::read(&args[0]));
    let (tocs, out, mut enc_us, mut dec_us) = opus_pass(&s, &input);
    for _ in 0..4 {
        let (_, _, e, d) = opus_pass(&s, &input);
        enc_us = enc_us.min(e);
        dec_us = dec_us.min(d);
    }
    wav::write(&args[1], &through_first_codec(&s.after, &out), RATE);
    // RFC 6716 §3.1: the TOC byte's configuration number gives mode and bandwidth.
    let mut modes = std::collections::BTreeMap::new();
    for toc in &tocs {
        let mode = match toc >> 3 {
            0..=3 => "SILK NB",
            4..=7 => "SILK MB",
            8..=11 => "SILK WB",
            12..=13 => "hybrid SWB",
            14..=15 => "hybrid FB",
            16..=19 => "CELT NB",
            20..=23 => "CELT WB",
            24..=27 => "CELT SWB",
            _ => "CELT FB",
        };
        *modes.entry(mode).or_insert(0usize) += 1;
    }
    let modes: Vec<String> = modes
        .iter()
        .map(|(m, n)| format!("\"{m}\": {:.3}", *n as f64 / tocs.len() as f64))
        .collect();
    println!(
        "{{\"enc_us\": {enc_us:.2}, \"dec_us\": {dec_us:.2}, \"modes\": {{{}}}}}",
        modes.join(", ")
    );
}
