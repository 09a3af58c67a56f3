//! Backup chunk body decoding (the plaintext of an authenticated chunk): never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = vault_store::backup::decode_items(data);
});
