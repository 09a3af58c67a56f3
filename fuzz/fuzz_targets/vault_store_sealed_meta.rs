//! Sealed metadata decoding (the plaintext inside a memory's metadata envelope): never panics,
//! and whatever decodes re-encodes to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vault_store::record::SealedMeta;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = SealedMeta::decode(data) {
        assert_eq!(m.encode(), data, "non-canonical sealed metadata accepted");
    }
});
