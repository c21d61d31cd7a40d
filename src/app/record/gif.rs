//! An animated-GIF encoder for the recorded clip (GIF89a, one global palette, LZW): small
//! code for the WebGPU build's size budget, checked by decoding with the `gif` crate in the
//! tests.
//!
//! The palette is fixed: a 6×6×6 colour cube and 40 greys (a plot's backgrounds and grid
//! lines are grey: they come out within 2 levels; colours within the cube's step).

/// Grey levels after the colour cube.
const GREYS: usize = 40;

/// A GIF being written frame by frame.
pub struct GifWriter {
    width: u16,
    height: u16,
    bytes: Vec<u8>,
    palette: Option<Palette>,
    frames: usize,
    /// The LZW table, kept between frames (2 MiB; only its filled slots are reset).
    table: Lzw,
}

struct Palette {
    rgb: Vec<[u8; 3]>,
}

impl Palette {
    /// A 6×6×6 colour cube and 40 greys (no per-clip palette: its sorting or hashing costs
    /// the WebGPU build kilobytes).
    fn fixed() -> Self {
        let mut rgb = Vec::with_capacity(256);
        for r in 0..6u8 {
            for g in 0..6u8 {
                for b in 0..6u8 {
                    rgb.push([r * 51, g * 51, b * 51]);
                }
            }
        }
        for i in 0..GREYS {
            let v = ((i * 255 + (GREYS - 1) / 2) / (GREYS - 1)) as u8;
            rgb.push([v, v, v]);
        }
        Palette { rgb }
    }

    fn index(&self, c: [u8; 3]) -> u8 {
        let [r, g, b] = c.map(u16::from);
        if r == g && g == b {
            return (216 + (r * (GREYS as u16 - 1) + 127) / 255) as u8;
        }
        let q = |v: u16| (v + 25) / 51;
        (q(r) * 36 + q(g) * 6 + q(b)) as u8
    }
}

impl GifWriter {
    /// A GIF of `width` × `height` pixels that loops forever.
    pub fn new(width: u16, height: u16) -> Self {
        Self {
            width,
            height,
            bytes: Vec::new(),
            palette: None,
            frames: 0,
            table: Lzw::default(),
        }
    }

    /// Frames written so far.
    pub fn frames(&self) -> usize {
        self.frames
    }

    /// Bytes written so far (the file is this plus one trailer byte).
    pub fn len(&self) -> usize {
        self.bytes.len() + 1
    }

    /// Whether no frame was written yet.
    pub fn is_empty(&self) -> bool {
        self.frames == 0
    }

    /// Add a frame of `width × height` RGB pixels (row-major) shown for `delay_cs`
    /// hundredths of a second.
    pub fn frame(&mut self, rgb: &[[u8; 3]], delay_cs: u16) {
        assert_eq!(
            rgb.len(),
            usize::from(self.width) * usize::from(self.height)
        );
        if self.palette.is_none() {
            let palette = Palette::fixed();
            self.header(&palette);
            self.palette = Some(palette);
        }
        let palette = self.palette.as_ref().expect("set above");
        let indices: Vec<u8> = rgb.iter().map(|&c| palette.index(c)).collect();
        let b = &mut self.bytes;
        // Graphic control extension: the delay, no transparency.
        b.extend_from_slice(&[0x21, 0xF9, 4, 0]);
        b.extend_from_slice(&delay_cs.to_le_bytes());
        b.extend_from_slice(&[0, 0]);
        // Image descriptor: the whole canvas, no local palette.
        b.push(0x2C);
        for v in [0, 0, self.width, self.height] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        b.push(0);
        b.push(8); // LZW minimum code size
        for chunk in self.table.encode(&indices).chunks(255) {
            b.push(chunk.len() as u8);
            b.extend_from_slice(chunk);
        }
        b.push(0);
        self.frames += 1;
    }

    fn header(&mut self, palette: &Palette) {
        let b = &mut self.bytes;
        b.extend_from_slice(b"GIF89a");
        b.extend_from_slice(&self.width.to_le_bytes());
        b.extend_from_slice(&self.height.to_le_bytes());
        b.extend_from_slice(&[0xF7, 0, 0]); // global palette of 256 colours
        for c in &palette.rgb {
            b.extend_from_slice(c);
        }
        // NETSCAPE2.0: loop forever.
        b.extend_from_slice(&[0x21, 0xFF, 11]);
        b.extend_from_slice(b"NETSCAPE2.0");
        b.extend_from_slice(&[3, 1, 0, 0, 0]);
    }

    /// The finished file.
    pub fn finish(mut self) -> Vec<u8> {
        self.bytes.push(0x3B);
        self.bytes
    }
}

/// GIF's LZW table: the code of (prefix, byte) at prefix·256 + byte (0: none), and the
/// filled slots, so a clear resets only those.
#[derive(Default)]
struct Lzw {
    table: Vec<u16>,
    filled: Vec<usize>,
}

impl Lzw {
    fn clear(&mut self) {
        for &f in &self.filled {
            self.table[f] = 0;
        }
        self.filled.clear();
    }

    /// GIF's variable-width LZW of 8-bit indices (codes up to 12 bits, a clear code when
    /// the table is full), packed least-significant bit first.
    fn encode(&mut self, data: &[u8]) -> Vec<u8> {
        if self.table.is_empty() {
            self.table = vec![0; 4096 * 256];
        }
        self.clear();
        lzw(data, self)
    }
}

fn lzw(data: &[u8], lz: &mut Lzw) -> Vec<u8> {
    const CLEAR: u16 = 256;
    const END: u16 = 257;
    let mut out = Vec::with_capacity(data.len() / 2);
    let (mut acc, mut nbits) = (0u32, 0u32);
    let mut width = 9u32;
    let mut emit = |code: u16, width: u32, out: &mut Vec<u8>| {
        acc |= u32::from(code) << nbits;
        nbits += width;
        while nbits >= 8 {
            out.push(acc as u8);
            acc >>= 8;
            nbits -= 8;
        }
    };
    let mut next = 258u16;
    emit(CLEAR, width, &mut out);
    let Some((&first, rest)) = data.split_first() else {
        emit(END, width, &mut out);
        if nbits > 0 {
            out.push(acc as u8);
        }
        return out;
    };
    let mut prefix = u16::from(first);
    for &k in rest {
        let slot = usize::from(prefix) * 256 + usize::from(k);
        if lz.table[slot] != 0 {
            prefix = lz.table[slot];
            continue;
        }
        emit(prefix, width, &mut out);
        if next == 4096 {
            emit(CLEAR, width, &mut out);
            lz.clear();
            next = 258;
            width = 9;
        } else {
            lz.table[slot] = next;
            lz.filled.push(slot);
            // The decoder widens its codes when its table reaches 2^width (it adds its
            // entries one code later than the encoder).
            if u32::from(next) == 1 << width && width < 12 {
                width += 1;
            }
            next += 1;
        }
        prefix = u16::from(k);
    }
    emit(prefix, width, &mut out);
    // The decoder adds an entry for this last code too: END comes at its width.
    if u32::from(next) == 1 << width && width < 12 {
        width += 1;
    }
    emit(END, width, &mut out);
    if nbits > 0 {
        out.push(acc as u8);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Frames of flat colours, gradients and noise decode (the `gif` crate) to the frame count,
    /// size and delays written; the grey background comes back within the greys' step and the
    /// rest within the cube's.
    #[test]
    fn frames_decode_with_the_gif_crate() {
        let (w, h) = (97u16, 61u16);
        let mut g = GifWriter::new(w, h);
        let mut frames = Vec::new();
        for f in 0..7u32 {
            let px: Vec<[u8; 3]> = (0..u32::from(w) * u32::from(h))
                .map(|i| {
                    let (x, y) = (i % u32::from(w), i / u32::from(w));
                    if y < 20 {
                        [27, 27, 27] // background
                    } else if y < 40 {
                        [(x * 255 / 96) as u8, (f * 30) as u8, (y * 4) as u8]
                    } else {
                        let r = (i.wrapping_mul(2_654_435_761).wrapping_add(f * 97)) >> 8;
                        [r as u8, (r >> 8) as u8, (r >> 16) as u8]
                    }
                })
                .collect();
            g.frame(&px, 10 + f as u16);
            frames.push(px);
        }
        assert_eq!(g.frames(), 7);
        let bytes = g.finish();
        let mut opts = ::gif::DecodeOptions::new();
        opts.set_color_output(::gif::ColorOutput::RGBA);
        let mut dec = opts.read_info(bytes.as_slice()).expect("a GIF header");
        assert_eq!((dec.width(), dec.height()), (w, h));
        let mut n = 0;
        while let Some(fr) = dec.read_next_frame().expect("a frame decodes") {
            assert_eq!((fr.width, fr.height), (w, h));
            assert_eq!(fr.delay, 10 + n as u16);
            for (i, (got, want)) in fr.buffer.chunks(4).zip(&frames[n]).enumerate() {
                let tol = if i < 20 * usize::from(w) { 4 } else { 26 };
                for c in 0..3 {
                    assert!(
                        got[c].abs_diff(want[c]) <= tol,
                        "frame {n} pixel {i}: {got:?} vs {want:?}"
                    );
                }
            }
            n += 1;
        }
        assert_eq!(n, 7);
    }

    /// An empty frame list and a long run (past the 4096-code table) still decode.
    #[test]
    fn a_long_frame_clears_the_table_and_decodes() {
        let (w, h) = (300u16, 200u16);
        let mut g = GifWriter::new(w, h);
        let px: Vec<[u8; 3]> = (0..u32::from(w) * u32::from(h))
            .map(|i| {
                let r = i.wrapping_mul(2_246_822_519) >> 13;
                [
                    (r % 6 * 51) as u8,
                    (r / 6 % 6 * 51) as u8,
                    (r / 36 % 6 * 51) as u8,
                ]
            })
            .collect();
        g.frame(&px, 5);
        let bytes = g.finish();
        let mut opts = ::gif::DecodeOptions::new();
        opts.set_color_output(::gif::ColorOutput::RGBA);
        let mut dec = opts.read_info(bytes.as_slice()).unwrap();
        let fr = dec.read_next_frame().unwrap().expect("one frame");
        let got: Vec<[u8; 3]> = fr.buffer.chunks(4).map(|c| [c[0], c[1], c[2]]).collect();
        // Cube colours come back exactly, its greys as the nearest of the 40 greys.
        for (i, (g, p)) in got.iter().zip(&px).enumerate() {
            let tol = if p[0] == p[1] && p[1] == p[2] { 3 } else { 0 };
            assert!(
                (0..3).all(|c| g[c].abs_diff(p[c]) <= tol),
                "pixel {i}: {g:?} vs {p:?}"
            );
        }
    }

    /// Every image length from 1 to 1500 pixels (so the last code falls on each width
    /// change) over a few alphabets decodes to the same indices.
    #[test]
    fn lzw_round_trips_at_every_length() {
        for alphabet in [2u32, 7, 256] {
            for len in 1..=1500u32 {
                let data: Vec<u8> = (0..len)
                    .map(|i| (i.wrapping_mul(2_654_435_761) >> 20) % alphabet)
                    .map(|v| v as u8)
                    .collect();
                let mut d = ::gif::DecodeOptions::new();
                d.set_color_output(::gif::ColorOutput::Indexed);
                let mut g = GifWriter::new(len as u16, 1);
                let px: Vec<[u8; 3]> = data.iter().map(|&v| [v, v, v]).collect();
                let palette = Palette::fixed();
                let want: Vec<u8> = px.iter().map(|&c| palette.index(c)).collect();
                g.frame(&px, 1);
                let bytes = g.finish();
                let mut dec = d.read_info(bytes.as_slice()).unwrap();
                let fr = dec.read_next_frame().unwrap().expect("a frame");
                assert_eq!(
                    &fr.buffer[..],
                    &want[..],
                    "alphabet {alphabet}, length {len}"
                );
            }
        }
    }
}
