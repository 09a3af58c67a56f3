//! AES-256-GCM envelopes: opening arbitrary bytes never panics and never succeeds unless the
//! bytes are a genuine envelope for this key and associated data.
#![no_main]

use aim_crypto::{SealingKey, SecretKey};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let key = SealingKey::new(&SecretKey::from_bytes([42; 32]));
    if let Ok(plain) = key.open(b"fuzz", data) {
        // Only a forgery could get here: fail loudly.
        panic!("opened a forged envelope of {} bytes", plain.len());
    }
});
