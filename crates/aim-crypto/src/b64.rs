//! Standard base64 with padding, the encoding the AIM SDK uses for keys and signatures.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

use crate::{CryptoError, Result};

/// Encodes bytes as standard base64 with padding.
pub fn encode(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// Decodes standard base64 with canonical padding; `what` names the value in the error.
pub fn decode(text: &str, what: &'static str) -> Result<Vec<u8>> {
    STANDARD
        .decode(text.trim())
        .map_err(|_| CryptoError::InvalidBase64 { what })
}

/// Decodes standard base64 into exactly `N` bytes.
pub fn decode_array<const N: usize>(
    text: &str,
    what: &'static str,
    expected: &'static str,
) -> Result<[u8; N]> {
    let bytes = decode(text, what)?;
    let got = bytes.len();
    bytes.try_into().map_err(|_| CryptoError::InvalidLength {
        what,
        expected,
        got,
    })
}

/// Encodes bytes as unpadded base64url (RFC 4648 §5), the encoding of signed action statements.
pub fn encode_url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes unpadded base64url strictly: no `=`, no whitespace or line breaks, no non-zero
/// trailing bits (so every byte string has exactly one accepted text).
pub fn decode_url_strict(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_decoding_is_strict() {
        assert_eq!(
            decode_url_strict("AAAAAAAAAAAAAAAAAAAAAA").unwrap(),
            [0u8; 16]
        );
        assert_eq!(encode_url(&[0xfb, 0xff]), "-_8");
        for bad in [
            "AAAAAAAAAAAAAAAAAAAAAB",   // non-zero trailing bits
            "AAAAAAAAAAAAAAAAAAAAAA==", // padding
            "AAAAAAAAAAA\nAAAAAAAAAAA", // line break
            " AAAAAAAAAAAAAAAAAAAAAA",  // whitespace
            "+/8",                      // standard alphabet
            "A",                        // impossible length
        ] {
            assert!(decode_url_strict(bad).is_none(), "{bad:?}");
        }
    }
}
