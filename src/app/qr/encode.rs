//! A QR code encoder (ISO/IEC 18004, model 2) for what the page needs: one byte-mode segment,
//! error-correction level M or L, versions 1–40, the mask with the lowest penalty. About a
//! tenth of a general encoder's code in the WebGPU build (its 2 MB budget); checked by
//! decoding with `rqrr` in the tests.

/// Error-correction level.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ecc {
    /// Recovers about 7% of the codewords.
    L,
    /// Recovers about 15%.
    M,
}

impl Ecc {
    /// The two format bits (L = 01, M = 00).
    fn format_bits(self) -> u32 {
        match self {
            Ecc::L => 1,
            Ecc::M => 0,
        }
    }

    /// Error-correction codewords per block, by version (index 0 unused).
    fn ecc_per_block(self, v: usize) -> usize {
        const L: [u8; 41] = [
            0, 7, 10, 15, 20, 26, 18, 20, 24, 30, 18, 20, 24, 26, 30, 22, 24, 28, 30, 28, 28, 28,
            28, 30, 30, 26, 28, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30,
        ];
        const M: [u8; 41] = [
            0, 10, 16, 26, 18, 24, 16, 18, 22, 22, 26, 30, 22, 22, 24, 24, 28, 28, 26, 26, 26, 26,
            28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28,
        ];
        usize::from(match self {
            Ecc::L => L[v],
            Ecc::M => M[v],
        })
    }

    /// Error-correction blocks, by version (index 0 unused).
    fn blocks(self, v: usize) -> usize {
        const L: [u8; 41] = [
            0, 1, 1, 1, 1, 1, 2, 2, 2, 2, 4, 4, 4, 4, 4, 6, 6, 6, 6, 7, 8, 8, 9, 9, 10, 12, 12, 12,
            13, 14, 15, 16, 17, 18, 19, 19, 20, 21, 22, 24, 25,
        ];
        const M: [u8; 41] = [
            0, 1, 1, 1, 2, 2, 4, 4, 4, 5, 5, 5, 8, 9, 9, 10, 10, 11, 13, 14, 16, 17, 17, 18, 20,
            21, 23, 25, 26, 28, 29, 31, 33, 35, 37, 38, 40, 43, 45, 47, 49,
        ];
        usize::from(match self {
            Ecc::L => L[v],
            Ecc::M => M[v],
        })
    }

    /// Data codewords of version `v` at this level.
    fn data_codewords(self, v: usize) -> usize {
        raw_modules(v) / 8 - self.ecc_per_block(v) * self.blocks(v)
    }
}

/// Modules of version `v` left for codewords (all but the function patterns).
fn raw_modules(v: usize) -> usize {
    let mut r = (16 * v + 128) * v + 64;
    if v >= 2 {
        let align = v / 7 + 2;
        r -= (25 * align - 10) * align - 55;
        if v >= 7 {
            r -= 36;
        }
    }
    r
}

/// Bytes one byte-mode segment holds at version `v` and level `ecc`.
pub fn capacity(v: usize, ecc: Ecc) -> usize {
    let count_bits = if v < 10 { 8 } else { 16 };
    (ecc.data_codewords(v) * 8 - 4 - count_bits) / 8
}

/// An encoded symbol: `width`² modules, row-major, `true` = dark.
pub struct Symbol {
    pub version: usize,
    pub width: usize,
    pub dark: Vec<bool>,
}

/// Encode `data` at the smallest version that holds it at level M, else at L; `None` when
/// even version 40 at level L is too small.
pub fn encode(data: &[u8]) -> Option<Symbol> {
    let (v, ecc) = [Ecc::M, Ecc::L].into_iter().find_map(|e| {
        (1..=40)
            .find(|&v| capacity(v, e) >= data.len())
            .map(|v| (v, e))
    })?;
    let codewords = add_ecc(&data_codewords(data, v, ecc), v, ecc);
    let mut m = Matrix::new(v);
    m.function_patterns(ecc);
    m.place(&codewords);
    let best = (0..8)
        .min_by_key(|&mask| {
            let mut t = m.clone();
            t.apply_mask(mask);
            t.format_bits(ecc, mask);
            t.penalty()
        })
        .expect("eight masks");
    m.apply_mask(best);
    m.format_bits(ecc, best);
    Some(Symbol {
        version: v,
        width: m.size,
        dark: m.dark,
    })
}

/// Mode, count, data, terminator and pad codewords.
fn data_codewords(data: &[u8], v: usize, ecc: Ecc) -> Vec<u8> {
    let mut bits = Bits::default();
    bits.push(0b0100, 4);
    bits.push(data.len() as u32, if v < 10 { 8 } else { 16 });
    for &b in data {
        bits.push(u32::from(b), 8);
    }
    let cap = ecc.data_codewords(v) * 8;
    bits.push(0, (cap - bits.len).min(4));
    bits.push(0, (8 - bits.len % 8) % 8);
    let mut out = bits.bytes;
    for pad in [0xEC, 0x11].into_iter().cycle() {
        if out.len() * 8 >= cap {
            break;
        }
        out.push(pad);
    }
    out
}

#[derive(Default)]
struct Bits {
    bytes: Vec<u8>,
    len: usize,
}

impl Bits {
    fn push(&mut self, value: u32, n: usize) {
        for i in (0..n).rev() {
            if self.len.is_multiple_of(8) {
                self.bytes.push(0);
            }
            if (value >> i) & 1 == 1 {
                *self.bytes.last_mut().expect("pushed") |= 0x80 >> (self.len % 8);
            }
            self.len += 1;
        }
    }
}

/// Split into blocks, append each block's Reed–Solomon codewords, interleave.
fn add_ecc(data: &[u8], v: usize, ecc: Ecc) -> Vec<u8> {
    let n_blocks = ecc.blocks(v);
    let ecc_len = ecc.ecc_per_block(v);
    let raw = raw_modules(v) / 8;
    let n_short = n_blocks - raw % n_blocks;
    let short_len = raw / n_blocks;
    let divisor = rs_divisor(ecc_len);
    let mut blocks = Vec::with_capacity(n_blocks);
    let mut k = 0;
    for i in 0..n_blocks {
        let len = short_len - ecc_len + usize::from(i >= n_short);
        let d = &data[k..k + len];
        k += len;
        let mut b = d.to_vec();
        if i < n_short {
            b.push(0); // a placeholder, skipped when interleaving
        }
        b.extend(rs_remainder(d, &divisor));
        blocks.push(b);
    }
    let mut out = Vec::with_capacity(raw);
    for i in 0..blocks[0].len() {
        for (j, b) in blocks.iter().enumerate() {
            if i != short_len - ecc_len || j >= n_short {
                out.push(b[i]);
            }
        }
    }
    out
}

/// Product in GF(2⁸) modulo x⁸ + x⁴ + x³ + x² + 1.
fn gf_mul(x: u8, y: u8) -> u8 {
    let mut z: u32 = 0;
    for i in (0..8).rev() {
        z = (z << 1) ^ ((z >> 7) * 0x11D);
        z ^= ((u32::from(y) >> i) & 1) * u32::from(x);
    }
    z as u8
}

/// The generator polynomial Π (x − αⁱ), i < degree, without its leading 1.
fn rs_divisor(degree: usize) -> Vec<u8> {
    let mut r = vec![0u8; degree];
    r[degree - 1] = 1;
    let mut root = 1u8;
    for _ in 0..degree {
        for j in 0..degree {
            r[j] = gf_mul(r[j], root);
            if j + 1 < degree {
                r[j] ^= r[j + 1];
            }
        }
        root = gf_mul(root, 2);
    }
    r
}

fn rs_remainder(data: &[u8], divisor: &[u8]) -> Vec<u8> {
    let mut r = vec![0u8; divisor.len()];
    for &b in data {
        let f = b ^ r.remove(0);
        r.push(0);
        for (x, &d) in r.iter_mut().zip(divisor) {
            *x ^= gf_mul(d, f);
        }
    }
    r
}

#[derive(Clone)]
struct Matrix {
    version: usize,
    size: usize,
    dark: Vec<bool>,
    function: Vec<bool>,
}

impl Matrix {
    fn new(version: usize) -> Self {
        let size = 17 + 4 * version;
        Self {
            version,
            size,
            dark: vec![false; size * size],
            function: vec![false; size * size],
        }
    }

    fn set(&mut self, x: usize, y: usize, dark: bool) {
        self.dark[y * self.size + x] = dark;
        self.function[y * self.size + x] = true;
    }

    fn function_patterns(&mut self, ecc: Ecc) {
        let s = self.size;
        for i in 0..s {
            self.set(6, i, i % 2 == 0);
            self.set(i, 6, i % 2 == 0);
        }
        for (cx, cy) in [(3, 3), (s - 4, 3), (3, s - 4)] {
            for dy in -4i32..=4 {
                for dx in -4i32..=4 {
                    let (x, y) = (cx as i32 + dx, cy as i32 + dy);
                    if (0..s as i32).contains(&x) && (0..s as i32).contains(&y) {
                        let d = dx.abs().max(dy.abs());
                        self.set(x as usize, y as usize, d != 2 && d != 4);
                    }
                }
            }
        }
        let pos = self.alignment_positions();
        let last = pos.len().saturating_sub(1);
        for (i, &ax) in pos.iter().enumerate() {
            for (j, &ay) in pos.iter().enumerate() {
                if (i == 0 || j == 0) && (i + j == 0 || i + j == last) {
                    continue; // the finder corners
                }
                for dy in -2i32..=2 {
                    for dx in -2i32..=2 {
                        let (x, y) = ((ax as i32 + dx) as usize, (ay as i32 + dy) as usize);
                        self.set(x, y, dx.abs().max(dy.abs()) != 1);
                    }
                }
            }
        }
        self.format_bits(ecc, 0); // reserves the format areas (rewritten with the mask)
        if self.version >= 7 {
            let v = self.version as u32;
            let mut rem = v;
            for _ in 0..12 {
                rem = (rem << 1) ^ ((rem >> 11) * 0x1F25);
            }
            let bits = (v << 12) | rem;
            for i in 0..18 {
                let bit = (bits >> i) & 1 == 1;
                let (a, b) = (s - 11 + i % 3, i / 3);
                self.set(a, b, bit);
                self.set(b, a, bit);
            }
        }
    }

    fn alignment_positions(&self) -> Vec<usize> {
        let v = self.version;
        if v == 1 {
            return Vec::new();
        }
        let n = v / 7 + 2;
        let step = if v == 32 {
            26
        } else {
            (v * 4 + n * 2 + 1) / (n * 2 - 2) * 2
        };
        let mut pos: Vec<usize> = (0..n - 1).map(|i| self.size - 7 - i * step).collect();
        pos.push(6);
        pos.reverse();
        pos
    }

    fn format_bits(&mut self, ecc: Ecc, mask: u32) {
        let data = (ecc.format_bits() << 3) | mask;
        let mut rem = data;
        for _ in 0..10 {
            rem = (rem << 1) ^ ((rem >> 9) * 0x537);
        }
        let bits = ((data << 10) | rem) ^ 0x5412;
        let bit = |i: usize| (bits >> i) & 1 == 1;
        let s = self.size;
        for i in 0..6 {
            self.set(8, i, bit(i));
        }
        self.set(8, 7, bit(6));
        self.set(8, 8, bit(7));
        self.set(7, 8, bit(8));
        for i in 9..15 {
            self.set(14 - i, 8, bit(i));
        }
        for i in 0..8 {
            self.set(s - 1 - i, 8, bit(i));
        }
        for i in 8..15 {
            self.set(8, s - 15 + i, bit(i));
        }
        self.set(8, s - 8, true);
    }

    /// The codewords' bits in the zigzag order, right to left in column pairs.
    fn place(&mut self, codewords: &[u8]) {
        let s = self.size;
        let mut i = 0;
        let mut right = s as i32 - 1;
        while right >= 1 {
            if right == 6 {
                right = 5;
            }
            for vert in 0..s {
                for j in 0..2 {
                    let x = right as usize - j;
                    let upward = (right + 1) & 2 == 0;
                    let y = if upward { s - 1 - vert } else { vert };
                    if !self.function[y * s + x] && i < codewords.len() * 8 {
                        self.dark[y * s + x] = (codewords[i / 8] >> (7 - i % 8)) & 1 == 1;
                        i += 1;
                    }
                }
            }
            right -= 2;
        }
    }

    fn apply_mask(&mut self, mask: u32) {
        let s = self.size;
        for y in 0..s {
            for x in 0..s {
                let flip = match mask {
                    0 => (x + y) % 2 == 0,
                    1 => y % 2 == 0,
                    2 => x % 3 == 0,
                    3 => (x + y) % 3 == 0,
                    4 => (x / 3 + y / 2) % 2 == 0,
                    5 => x * y % 2 + x * y % 3 == 0,
                    6 => (x * y % 2 + x * y % 3) % 2 == 0,
                    _ => ((x + y) % 2 + x * y % 3) % 2 == 0,
                };
                if flip && !self.function[y * s + x] {
                    self.dark[y * s + x] ^= true;
                }
            }
        }
    }

    /// The standard's four penalty rules: runs of 5+, 2×2 blocks, finder-like 1:1:3:1:1
    /// patterns with 4 light modules on a side, and the dark proportion's distance from half.
    fn penalty(&self) -> usize {
        let s = self.size;
        let at = |x: usize, y: usize| self.dark[y * s + x];
        let mut p = 0;
        for transpose in [false, true] {
            let get = |i: usize, j: usize| if transpose { at(i, j) } else { at(j, i) };
            for i in 0..s {
                let mut run = 1;
                for j in 1..=s {
                    if j < s && get(i, j) == get(i, j - 1) {
                        run += 1;
                    } else {
                        if run >= 5 {
                            p += run - 2;
                        }
                        run = 1;
                    }
                }
                const FINDER: [bool; 7] = [true, false, true, true, true, false, true];
                for j in 0..s.saturating_sub(6) {
                    if (0..7).all(|k| get(i, j + k) == FINDER[k]) {
                        let light = |r: std::ops::Range<usize>| r.into_iter().all(|k| !get(i, k));
                        if (j >= 4 && light(j - 4..j)) || (j + 11 <= s && light(j + 7..j + 11)) {
                            p += 40;
                        }
                    }
                }
            }
        }
        for y in 0..s - 1 {
            for x in 0..s - 1 {
                let c = at(x, y);
                if at(x + 1, y) == c && at(x, y + 1) == c && at(x + 1, y + 1) == c {
                    p += 3;
                }
            }
        }
        let dark = self.dark.iter().filter(|&&d| d).count();
        let total = s * s;
        let k = (dark * 20)
            .abs_diff(total * 10)
            .div_ceil(total)
            .saturating_sub(1);
        p + k * 10
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_give_the_standard_capacities() {
        // Byte-mode capacities from the standard's table 7 (version, M, L).
        for (v, m, l) in [(1, 14, 17), (7, 122, 154), (10, 213, 271), (23, 857, 1091)] {
            assert_eq!(capacity(v, Ecc::M), m, "version {v} M");
            assert_eq!(capacity(v, Ecc::L), l, "version {v} L");
        }
        assert_eq!(capacity(40, Ecc::L), 2953);
        assert_eq!(capacity(40, Ecc::M), 2331);
    }

    #[test]
    fn reed_solomon_matches_the_standards_example() {
        // ISO/IEC 18004 annex I: "01234567" at 1-M, its 16 data codewords and 10 EC codewords.
        let data = [
            0x10, 0x20, 0x0C, 0x56, 0x61, 0x80, 0xEC, 0x11, 0xEC, 0x11, 0xEC, 0x11, 0xEC, 0x11,
            0xEC, 0x11,
        ];
        let ecc = rs_remainder(&data, &rs_divisor(10));
        assert_eq!(
            ecc,
            [0xA5, 0x24, 0xD4, 0xC1, 0xED, 0x36, 0xC7, 0x87, 0x2C, 0x55]
        );
    }

    /// Every version at level M, and at level L where M cannot hold it (versions 36–40),
    /// filled to capacity with varied bytes (URL characters, every byte value), decodes with an
    /// independent decoder (rqrr) to the same bytes, version and level.
    #[test]
    fn every_version_decodes_with_rqrr() {
        let chars = b"http://127.0.0.1:8080/#s=AbC-_~%20xyz0123456789";
        let most_m = capacity(40, Ecc::M);
        let cases = (1..=40).map(|v| (v, Ecc::M)).chain(
            (1..=40)
                .filter(|&v| capacity(v, Ecc::L) > most_m)
                .map(|v| (v, Ecc::L)),
        );
        let mut l_cases = 0;
        for (v, ecc) in cases {
            let n = capacity(v, ecc);
            let data: Vec<u8> = (0..n)
                .map(|i| {
                    if v % 2 == 0 {
                        chars[(i * 7 + v) % chars.len()]
                    } else {
                        (i * 31 + v) as u8
                    }
                })
                .collect();
            let sym = encode(&data).expect("fits");
            assert_eq!(sym.version, v, "{n} bytes");
            assert_eq!(sym.width, 17 + 4 * v);
            let scale = 3;
            let side = (sym.width + 8) * scale;
            let w = sym.width as i64;
            let mut img = rqrr::PreparedImage::prepare_from_greyscale(side, side, |x, y| {
                let (mx, my) = ((x / scale) as i64 - 4, (y / scale) as i64 - 4);
                let dark = (0..w).contains(&mx)
                    && (0..w).contains(&my)
                    && sym.dark[(my * w + mx) as usize];
                if dark {
                    0
                } else {
                    255
                }
            });
            let grids = img.detect_grids();
            assert_eq!(grids.len(), 1, "version {v} {ecc:?}: one code found");
            let mut out = Vec::new();
            let meta = grids[0]
                .decode_to(&mut out)
                .unwrap_or_else(|e| panic!("version {v} {ecc:?}: {e:?}"));
            assert_eq!(out, data, "version {v} {ecc:?}: the bytes");
            assert_eq!(meta.version.0, v);
            assert_eq!(u32::from(meta.ecc_level), ecc.format_bits(), "version {v}");
            l_cases += usize::from(ecc == Ecc::L);
        }
        assert!(l_cases >= 3, "{l_cases} versions at level L");
    }
}
