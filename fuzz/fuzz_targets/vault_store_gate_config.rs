//! Stored gate configuration decoding: never panics; accepted bytes are canonical.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vault_store::GateConfig;

fuzz_target!(|data: &[u8]| {
    if let Ok(c) = GateConfig::decode(data) {
        assert_eq!(c.encode(), data, "non-canonical gate configuration accepted");
    }
});
