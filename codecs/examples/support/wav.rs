//! Mono 16-bit WAV files for the codec examples and benches (the speech fixtures and what
//! the examples write for PESQ), shared through `#[path]` as examples are separate crates.

#![allow(dead_code)]

/// The samples of a mono 16-bit WAV (its data chunk, wherever the header puts it).
pub(crate) fn read(path: &str) -> Vec<i16> {
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

/// Write `pcm` as a mono 16-bit WAV at `rate` Hz.
pub(crate) fn write(path: &str, pcm: &[i16], rate: u32) {
    let len = (pcm.len() * 2) as u32;
    let mut out = Vec::with_capacity(44 + len as usize);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    // PCM, mono, `rate` Hz, 2 bytes a sample, block 2, 16 bits.
    for v in [16u32, 0x0001_0001, rate, rate * 2, 0x0010_0002] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(b"data");
    out.extend_from_slice(&len.to_le_bytes());
    for s in pcm {
        out.extend_from_slice(&s.to_le_bytes());
    }
    std::fs::write(path, out).unwrap_or_else(|e| panic!("{path}: {e}"));
}
