//! Strict RFC 4648 base32, lowercase alphabet, no padding.
//!
//! Decoding accepts exactly one spelling per byte string: lowercase letters and the digits
//! `2`–`7`, no padding, no whitespace, and zero bits in the unused low bits of the last
//! character. So any change of a character either fails to decode or decodes to different
//! bytes, which the share checksum then rejects.

const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// Why a base32 string did not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Base32Error {
    /// A character outside the lowercase base32 alphabet, at this character offset.
    InvalidCharacter { offset: usize },
    /// The length (in characters) cannot come from encoding whole bytes.
    InvalidLength { len: usize },
    /// The last character carries non-zero padding bits.
    NonCanonical,
}

fn value(c: u8) -> Option<u8> {
    match c {
        b'a'..=b'z' => Some(c - b'a'),
        b'2'..=b'7' => Some(c - b'2' + 26),
        _ => None,
    }
}

/// Encodes `bytes`.
pub(crate) fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let mut buffer: u16 = 0;
    let mut bits = 0u32;
    for &b in bytes {
        buffer = (buffer << 8) | u16::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[usize::from((buffer >> bits) & 0x1f)]));
        }
        buffer &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(char::from(
            ALPHABET[usize::from((buffer << (5 - bits)) & 0x1f)],
        ));
    }
    out
}

/// Decodes `text` strictly (see the module docs).
pub(crate) fn decode(text: &str) -> Result<Vec<u8>, Base32Error> {
    // Lengths mod 8 that whole bytes produce: 0, 2, 4, 5, 7.
    if matches!(text.len() % 8, 1 | 3 | 6) {
        return Err(Base32Error::InvalidLength { len: text.len() });
    }
    let mut out = Vec::with_capacity(text.len() * 5 / 8);
    let mut buffer: u16 = 0;
    let mut bits = 0u32;
    for (offset, c) in text.bytes().enumerate() {
        let v = value(c).ok_or(Base32Error::InvalidCharacter { offset })?;
        buffer = (buffer << 5) | u16::from(v);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push(((buffer >> bits) & 0xff) as u8);
        }
        buffer &= (1 << bits) - 1;
    }
    if buffer != 0 {
        return Err(Base32Error::NonCanonical);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rfc4648_vectors_lowercase_unpadded() {
        for (plain, enc) in [
            ("", ""),
            ("f", "my"),
            ("fo", "mzxq"),
            ("foo", "mzxw6"),
            ("foob", "mzxw6yq"),
            ("fooba", "mzxw6ytb"),
            ("foobar", "mzxw6ytboi"),
        ] {
            assert_eq!(encode(plain.as_bytes()), enc);
            assert_eq!(decode(enc).unwrap(), plain.as_bytes());
        }
    }

    #[test]
    fn rejects_uppercase_padding_bad_lengths_and_stray_bits() {
        assert_eq!(
            decode("MZXW6"),
            Err(Base32Error::InvalidCharacter { offset: 0 })
        );
        assert_eq!(
            decode("my======"),
            Err(Base32Error::InvalidCharacter { offset: 2 })
        );
        assert_eq!(decode("m"), Err(Base32Error::InvalidLength { len: 1 }));
        assert_eq!(decode("mzx"), Err(Base32Error::InvalidLength { len: 3 }));
        // "f" = "my"; "mz" differs only in the unused low bits.
        assert_eq!(decode("mz"), Err(Base32Error::NonCanonical));
    }

    proptest! {
        #[test]
        fn round_trip(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let text = encode(&bytes);
            prop_assert_eq!(decode(&text).unwrap(), bytes);
        }

        #[test]
        fn decode_never_panics(text in "\\PC{0,64}") {
            let _ = decode(&text);
        }
    }
}
