//! HMAC-SHA1, only for interoperable one-time passwords (RFC 4226 HOTP / RFC 6238 TOTP, whose
//! default every authenticator app implements). HMAC-SHA1 is still a secure MAC; do not use
//! SHA-1 for anything else.

use hmac::{KeyInit, Mac};

/// HMAC-SHA1 of `data` under `key` (any length).
pub fn hmac_sha1(key: &[u8], data: &[u8]) -> [u8; 20] {
    // HMAC accepts keys of any length, so this cannot fail.
    match hmac::Hmac::<sha1::Sha1>::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(data);
            mac.finalize().into_bytes().into()
        }
        Err(_) => unreachable!("HMAC-SHA1 accepts keys of any length"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_rfc2202_vectors() {
        // RFC 2202 test cases 1 and 2.
        assert_eq!(
            hex::encode(hmac_sha1(&[0x0b; 20], b"Hi There")),
            "b617318655057264e28bc0b6fb378c8ef146be00"
        );
        assert_eq!(
            hex::encode(hmac_sha1(b"Jefe", b"what do ya want for nothing?")),
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
        );
        // Test case 6: a key longer than the block size.
        assert_eq!(
            hex::encode(hmac_sha1(
                &[0xaa; 80],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            )),
            "aa4ae5e15272d00e95705637ce8a3b55ed402112"
        );
    }
}
