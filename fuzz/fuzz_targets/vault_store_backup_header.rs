//! Backup file framing and header parsing: never panics; accepted headers are canonical.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vault_store::backup::{Header, parse_preamble};

fuzz_target!(|data: &[u8]| {
    if let Ok(h) = Header::decode(data) {
        assert_eq!(h.encode(), data, "non-canonical backup header accepted");
    }
    let _ = parse_preamble(data);
});
