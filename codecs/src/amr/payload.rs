//! The RFC 4867 payload formats (bandwidth-efficient and octet-aligned) to and from the
//! libraries' storage layout, without allocating.

use super::*;

/// Reads bits MSB-first from a byte slice.
struct BitReader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl BitReader<'_> {
    fn bits_left(&self) -> usize {
        self.data.len() * 8 - self.pos
    }

    fn read(&mut self, n: usize) -> Option<u8> {
        debug_assert!(n <= 8);
        if self.bits_left() < n {
            return None;
        }
        let mut v = 0u8;
        for _ in 0..n {
            let bit = (self.data[self.pos / 8] >> (7 - self.pos % 8)) & 1;
            v = (v << 1) | bit;
            self.pos += 1;
        }
        Some(v)
    }

    /// Copies `n` bits into `out`, MSB first, zero-padding the last octet.
    fn copy(&mut self, n: usize, out: &mut [u8]) -> Option<()> {
        if self.bits_left() < n || out.len() * 8 < n {
            return None;
        }
        if self.pos.is_multiple_of(8) {
            let start = self.pos / 8;
            let whole = n / 8;
            out[..whole].copy_from_slice(&self.data[start..start + whole]);
            self.pos += whole * 8;
            let rest = n % 8;
            if rest > 0 {
                out[whole] = self.read(rest)? << (8 - rest);
            }
            return Some(());
        }
        let mut left = n;
        let mut i = 0;
        while left > 0 {
            let take = left.min(8);
            out[i] = self.read(take)? << (8 - take);
            left -= take;
            i += 1;
        }
        Some(())
    }

    fn align(&mut self) {
        self.pos = self.pos.div_ceil(8) * 8;
    }
}

/// Writes bits MSB-first into a byte slice.
struct BitWriter<'a> {
    out: &'a mut [u8],
    pos: usize,
}

impl BitWriter<'_> {
    fn write(&mut self, v: u8, n: usize) -> Result<(), CodecError> {
        if self.out.len() * 8 < self.pos + n {
            return Err(CodecError::OutputTooSmall {
                needed: (self.pos + n).div_ceil(8),
                got: self.out.len(),
            });
        }
        for i in (0..n).rev() {
            let byte = &mut self.out[self.pos / 8];
            let shift = 7 - self.pos % 8;
            if (v >> i) & 1 != 0 {
                *byte |= 1 << shift;
            } else {
                *byte &= !(1 << shift);
            }
            self.pos += 1;
        }
        Ok(())
    }

    fn write_bits(&mut self, data: &[u8], n: usize) -> Result<(), CodecError> {
        let mut left = n;
        for &b in data {
            if left == 0 {
                break;
            }
            let take = left.min(8);
            self.write(b >> (8 - take), take)?;
            left -= take;
        }
        Ok(())
    }

    fn pad(&mut self) -> Result<(), CodecError> {
        let rest = (8 - self.pos % 8) % 8;
        self.write(0, rest)
    }

    fn len(&self) -> usize {
        self.pos.div_ceil(8)
    }
}

fn malformed(band: AmrBand, len: usize) -> CodecError {
    CodecError::PayloadLength {
        codec: band.name(),
        len,
    }
}

/// Unpacks an RFC 4867 payload: calls `frame` with each frame in storage layout, in order,
/// and returns the CMR. A payload that is too short, lists more than [`MAX_FRAMES`] frames,
/// a reserved frame type or interleaved frames (ILL > 0) is an error (rtpengine:
/// `amr_decoder_input`). Trailing bytes after the last frame are ignored.
pub fn unpack(
    band: AmrBand,
    params: &AmrParams,
    payload: &[u8],
    mut frame: impl FnMut(&StorageFrame) -> Result<(), CodecError>,
) -> Result<u8, CodecError> {
    let bad = || malformed(band, payload.len());
    let aligned = params.octet_aligned();
    let mut r = BitReader {
        data: payload,
        pos: 0,
    };
    let cmr = r.read(4).ok_or_else(bad)?;
    if aligned {
        r.read(4).ok_or_else(bad)?;
        if params.interleaving > 0 {
            let ill_ilp = r.read(8).ok_or_else(bad)?;
            let (ill, ilp) = (ill_ilp >> 4, ill_ilp & 0x0f);
            if ill > 0 || ilp > ill {
                return Err(bad());
            }
        }
    }
    let mut toc = [0u8; MAX_FRAMES];
    let mut count = 0;
    let mut with_data = 0;
    loop {
        let entry = r.read(6).ok_or_else(bad)?;
        if aligned {
            r.read(2).ok_or_else(bad)?;
        }
        if count == MAX_FRAMES {
            return Err(bad());
        }
        let ft = (entry >> 1) & 0x0f;
        let bits = band.frame_bits(ft).ok_or_else(bad)?;
        if bits > 0 {
            with_data += 1;
        }
        toc[count] = (entry & 0x1f) << 2;
        count += 1;
        if entry & 0x20 == 0 {
            break;
        }
    }
    if params.crc {
        // One CRC octet per frame with data (RFC 4867 §4.4.2.1); not checked, as rtpengine.
        for _ in 0..with_data {
            r.read(8).ok_or_else(bad)?;
        }
    }
    let mut buf: StorageFrame = [0; STORAGE_MAX];
    for &t in &toc[..count] {
        let ft = toc_ft(t);
        let bits = band.frame_bits(ft).unwrap_or(0) as usize;
        buf[0] = t;
        r.copy(bits, &mut buf[1..]).ok_or_else(bad)?;
        if aligned {
            r.align();
        }
        frame(&buf)?;
    }
    Ok(cmr)
}

/// Packs storage-layout frames into an RFC 4867 payload with the given CMR; returns its
/// length. rtpengine: `packetizer_amr` (which packs one frame per packet).
pub fn pack(
    band: AmrBand,
    params: &AmrParams,
    cmr: u8,
    frames: &[StorageFrame],
    out: &mut [u8],
) -> Result<usize, CodecError> {
    if frames.is_empty() || frames.len() > MAX_FRAMES {
        return Err(CodecError::PayloadLength {
            codec: band.name(),
            len: frames.len(),
        });
    }
    let aligned = params.octet_aligned();
    let mut w = BitWriter { out, pos: 0 };
    w.write(cmr & 0x0f, 4)?;
    if aligned {
        w.write(0, 4)?;
        if params.interleaving > 0 {
            w.write(0, 8)?;
        }
    }
    for (i, f) in frames.iter().enumerate() {
        let more = (i + 1 < frames.len()) as u8;
        w.write(more << 5 | (f[0] >> 2) & 0x1f, 6)?;
        if aligned {
            w.write(0, 2)?;
        }
    }
    if params.crc {
        for f in frames {
            if band.frame_bits(toc_ft(f[0])).unwrap_or(0) > 0 {
                w.write(0, 8)?;
            }
        }
    }
    for f in frames {
        let bits = band
            .frame_bits(toc_ft(f[0]))
            .ok_or_else(|| malformed(band, 0))? as usize;
        w.write_bits(&f[1..], bits)?;
        if aligned {
            w.pad()?;
        }
    }
    w.pad()?;
    Ok(w.len())
}
