//! µs per 20 ms frame for each codec's encode and decode and for the resampler, on the
//! speech fixtures. A plain `harness = false` bench (no criterion) to keep builds lean:
//! `cargo bench -p ngmedia-codecs`. Time is the thread's CPU time, so other load on a shared
//! machine (preemption) does not inflate the figures; cache and frequency effects remain.

use std::hint::black_box;

use ngmedia_codecs::{Codec, EncoderOptions, Resampler};

#[path = "../examples/support/wav.rs"]
mod wav;

fn read_wav(name: &str) -> Vec<i16> {
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

/// Runs `f` over `frames` frames (cycling through the input) and returns CPU µs per call.
fn time_per_frame(frames: usize, mut f: impl FnMut(usize)) -> f64 {
    for i in 0..frames / 10 {
        f(i); // warm-up
    }
    let start = thread_cpu_us();
    for i in 0..frames {
        f(i);
    }
    (thread_cpu_us() - start) / frames as f64
}

/// `cargo bench -p ngmedia-codecs -- WORD` runs only the rows whose label contains WORD.
fn wanted(label: &str) -> bool {
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    filter.is_none_or(|f| label.contains(&f))
}

fn codec_row(label: &str, codec: Codec, opts: EncoderOptions, speech: &[i16], frames: usize) {
    if !wanted(label) {
        return;
    }
    let mut enc = codec.encoder_with(20, &opts).expect("encoder");
    let rate = opts.pcm_rate.unwrap_or(codec.def.pcm_rate);
    let mut dec = codec.decoder_at(rate).expect("decoder");
    let n = enc.frame_samples();
    let chunks: Vec<&[i16]> = speech.chunks_exact(n).collect();
    let mut payload = vec![0u8; enc.max_payload_len()];
    // Pre-encode the fixture so the decode loop measures decoding only.
    let packets: Vec<Vec<u8>> = chunks
        .iter()
        .map(|c| {
            let len = enc.encode(c, &mut payload).expect("encode");
            payload[..len].to_vec()
        })
        .collect();
    let enc_us = time_per_frame(frames, |i| {
        black_box(
            enc.encode(chunks[i % chunks.len()], &mut payload)
                .expect("encode"),
        );
    });
    let mut pcm = vec![0i16; n];
    let dec_us = time_per_frame(frames, |i| {
        black_box(
            dec.decode(&packets[i % packets.len()], &mut pcm)
                .expect("decode"),
        );
    });
    println!("| {label:<28} | {enc_us:>9.2} | {dec_us:>9.2} |");
}

fn main() {
    let speech8 = read_wav("speech-8k.wav");
    let speech48 = read_wav("speech-48k.wav");
    let default = EncoderOptions::default();
    println!("| 20 ms frame                  | encode µs | decode µs |");
    println!("|------------------------------|-----------|-----------|");
    codec_row(
        "PCMU",
        Codec::from_static_pt(0).unwrap(),
        default,
        &speech8,
        200_000,
    );
    codec_row(
        "PCMA",
        Codec::from_static_pt(8).unwrap(),
        default,
        &speech8,
        200_000,
    );
    if let Ok(g729) = Codec::lookup("G729", 8000, None, Some("annexb=no")) {
        if g729.decoder().is_ok() {
            codec_row("G.729 (2 x 10 ms)", g729, default, &speech8, 5_000);
        }
    }
    let speech16 = ngmedia_codecs::resample::resample_clip(
        &speech48
            .iter()
            .map(|&s| s as f32 / 32768.0)
            .collect::<Vec<_>>(),
        48000,
        16000,
    )
    .expect("16 kHz speech");
    if let Ok(g722) = Codec::lookup("G722", 8000, None, None) {
        if g722.decoder().is_ok() {
            codec_row("G.722 (16 kHz)", g722, default, &speech16, 50_000);
        }
    }
    #[cfg(feature = "t38")]
    spandsp_g722::row(&speech16, 50_000);
    // AMR at rtpengine's default modes (6.7 kbit/s NB, 14.25 kbit/s WB), bandwidth-efficient.
    if let Ok(amr) = Codec::lookup("AMR", 8000, None, None) {
        if amr.decoder().is_ok() {
            codec_row("AMR-NB 6.7 kbit/s", amr, default, &speech8, 20_000);
        }
    }
    if let Ok(amr_wb) = Codec::lookup("AMR-WB", 16000, None, None) {
        if amr_wb.decoder().is_ok() {
            codec_row("AMR-WB 14.25 kbit/s", amr_wb, default, &speech16, 10_000);
        }
    }
    let opus = Codec::lookup("opus", 48000, Some(2), None).unwrap();
    for complexity in [0, 5, 10] {
        let opts = EncoderOptions {
            opus_complexity: complexity,
            ..default
        };
        codec_row(
            &format!("Opus 48k c{complexity}"),
            opus,
            opts,
            &speech48,
            3_000,
        );
    }
    for complexity in [0, 5, 10] {
        let opts = EncoderOptions {
            opus_complexity: complexity,
            pcm_rate: Some(8000),
            ..default
        };
        codec_row(
            &format!("Opus 8k PCM c{complexity}"),
            opus,
            opts,
            &speech8,
            3_000,
        );
    }
    for (from, to, input, frame_ms) in [
        (8000, 48000, &speech8, 20),
        (48000, 8000, &speech48, 20),
        (16000, 48000, &speech16, 20),
        (48000, 16000, &speech48, 20),
        // What a transcoder between G.722 and an 8 kHz codec runs: two 10 ms frames.
        (8000, 16000, &speech8, 10),
        (16000, 8000, &speech16, 10),
    ] {
        let label = format!("resample {}k -> {}k", from / 1000, to / 1000);
        if !wanted(&label) {
            continue;
        }
        let mut r = Resampler::new(from, to, frame_ms).expect("resampler");
        let chunks: Vec<&[i16]> = input.chunks_exact(r.input_frame_len()).collect();
        let mut out = vec![0i16; r.output_frame_len()];
        let per_20ms = (20 / frame_ms) as usize;
        let us = time_per_frame(20_000, |i| {
            for k in 0..per_20ms {
                black_box(
                    r.process(chunks[(i * per_20ms + k) % chunks.len()], &mut out)
                        .expect("resample"),
                );
            }
        });
        println!("| {label:<28} | {us:>9.2} | {:>9} |", "-");
    }
}

/// libspandsp's G.722 coder, the one ngmedia ran through FFI before its own, timed the same
/// way for comparison. The codecs crate links libspandsp for T.38.
#[cfg(feature = "t38")]
mod spandsp_g722 {
    use std::hint::black_box;

    #[repr(C)]
    struct State {
        _private: [u8; 0],
    }

    // /usr/include/spandsp/g722.h (spandsp 0.0.6); a NULL state asks the library for one.
    extern "C" {
        fn g722_encode_init(s: *mut State, rate: i32, options: i32) -> *mut State;
        fn g722_encode(s: *mut State, g722_data: *mut u8, amp: *const i16, len: i32) -> i32;
        fn g722_decode_init(s: *mut State, rate: i32, options: i32) -> *mut State;
        fn g722_decode(s: *mut State, amp: *mut i16, g722_data: *const u8, len: i32) -> i32;
    }

    pub(super) fn row(speech: &[i16], frames: usize) {
        let label = "G.722 libspandsp (reference)";
        if !super::wanted(label) {
            return;
        }
        // SAFETY: NULL states make spandsp allocate them (never freed: the bench exits).
        let (enc, dec) = unsafe {
            (
                g722_encode_init(std::ptr::null_mut(), 64_000, 0),
                g722_decode_init(std::ptr::null_mut(), 64_000, 0),
            )
        };
        assert!(!enc.is_null() && !dec.is_null());
        let chunks: Vec<&[i16]> = speech.chunks_exact(320).collect();
        let mut payload = [0u8; 160];
        let packets: Vec<[u8; 160]> = chunks
            .iter()
            .map(|c| {
                // SAFETY: 320 samples in, 160 bytes out; the state is live.
                unsafe { g722_encode(enc, payload.as_mut_ptr(), c.as_ptr(), 320) };
                payload
            })
            .collect();
        let enc_us = super::time_per_frame(frames, |i| {
            let c = chunks[i % chunks.len()];
            // SAFETY: as above.
            black_box(unsafe { g722_encode(enc, payload.as_mut_ptr(), c.as_ptr(), 320) });
        });
        let mut pcm = [0i16; 320];
        let dec_us = super::time_per_frame(frames, |i| {
            let p = &packets[i % packets.len()];
            // SAFETY: 160 bytes in, 320 samples out; the state is live.
            black_box(unsafe { g722_decode(dec, pcm.as_mut_ptr(), p.as_ptr(), 160) });
        });
        println!("| {label:<28} | {enc_us:>9.2} | {dec_us:>9.2} |");
    }
}
