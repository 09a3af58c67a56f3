//! Audit event decoding: arbitrary bytes never panic, and whatever decodes is canonical (it
//! re-encodes to exactly the same bytes), so one event has one leaf hash.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vault_audit::Event;

fuzz_target!(|data: &[u8]| {
    if let Ok(event) = Event::decode(data) {
        match event.encode() {
            Ok(again) => assert_eq!(again, data, "decoded event re-encodes differently"),
            Err(e) => panic!("decoded event does not encode: {e}"),
        }
    }
});
