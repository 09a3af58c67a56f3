//! Canonical JSON: parsing arbitrary bytes never panics, and whatever parses re-serializes to
//! printable ASCII that parses back to the same value (serialization is a fixed point).
#![no_main]

use aim_crypto::canonical;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(value) = canonical::parse(data) {
        let text = value.to_python_json();
        assert!(text.bytes().all(|b| (0x20..0x7f).contains(&b)));
        let again = canonical::parse(text.as_bytes()).expect("serializer output must parse");
        assert_eq!(again, value);
        assert_eq!(again.to_python_json(), text);
        let _ = canonical::Value::from_serde(&value.to_serde()).to_python_json();
    }
});
