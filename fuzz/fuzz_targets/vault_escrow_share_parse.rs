//! Share parsing must never panic, and every accepted share must re-encode to the same text.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(share) = vault_escrow::Share::parse(text) {
        assert_eq!(share.to_text().as_str(), text.trim());
    }
    // Also parse several lines as a set to combine.
    let lines: Vec<&str> = text.lines().collect();
    let _ = vault_escrow::combine_text(&lines);
});
