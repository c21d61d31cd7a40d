//! Base64 (RFC 4648), one encoder for both alphabets: base64url without padding for share
//! links (§5) and standard base64 with padding for PNG data URLs (§4).

/// The URL- and filename-safe alphabet.
pub const URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
/// The standard alphabet.
pub const STANDARD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Encode `bytes` with `alphabet`, padding the last group with `=` when `pad`.
pub fn encode(bytes: &[u8], alphabet: &[u8; 64], pad: bool) -> String {
    let mut s = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for c in bytes.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for k in 0..4 {
            if k <= c.len() {
                s.push(alphabet[(n >> (18 - 6 * k)) as usize & 63] as char);
            } else if pad {
                s.push('=');
            }
        }
    }
    s
}

/// base64url without padding (share links).
pub fn base64url_encode(bytes: &[u8]) -> String {
    encode(bytes, URL, false)
}

/// Standard base64 with padding (data URLs).
pub fn base64(bytes: &[u8]) -> String {
    encode(bytes, STANDARD, true)
}

/// Decode base64url (padding optional); refuses any other character.
pub fn base64url_decode(s: &str) -> Result<Vec<u8>, String> {
    let s = s.trim_end_matches('=');
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for ch in s.bytes() {
        let v = URL
            .iter()
            .position(|&c| c == ch)
            .ok_or_else(|| format!("the state is not base64url (found {:?})", ch as char))?
            as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    if bits >= 6 {
        return Err("the state has a truncated base64url tail".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_known_vectors() {
        for (raw, enc) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(raw.as_bytes()), enc);
        }
    }

    #[test]
    fn base64url_round_trips_every_length() {
        for len in 0..40 {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            let enc = base64url_encode(&bytes);
            assert!(enc.bytes().all(|c| URL.contains(&c)));
            assert_eq!(base64url_decode(&enc).expect("decodes"), bytes);
        }
        assert!(base64url_decode("ab+c").is_err());
        assert!(base64url_decode("a").is_err());
    }
}
