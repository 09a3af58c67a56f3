//! Standard base64 with padding, the encoding the AIM SDK uses for keys and signatures.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

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
