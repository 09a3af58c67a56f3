//! The v2 request-signature parsers and message builder (`origin_of`, `check_nonce`,
//! `SignatureVersion::parse`, `signing_message_v2`) on arbitrary text: never panic; a message is
//! built only from fields without control characters, and two different field lists never give
//! the same message.
#![no_main]

use aim_crypto::request_v2::{RequestV2, SignatureVersion, check_nonce, origin_of, signing_message_v2};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let f: Vec<&str> = text.split('\u{0}').chain(std::iter::repeat("")).take(7).collect();
    let _ = SignatureVersion::parse(Some(f[0]));
    let _ = check_nonce(f[1]);
    if let Ok(o) = origin_of(f[2]) {
        // Normalising is idempotent.
        assert_eq!(origin_of(&o).as_deref(), Ok(o.as_str()));
    }
    let request = RequestV2 {
        agent_id: f[0],
        method: f[1],
        path_and_query: f[2],
        origin: f[3],
        timestamp: f[4],
        nonce: f[5],
        body: f[6].as_bytes(),
    };
    if let Ok(message) = signing_message_v2(&request) {
        let message = String::from_utf8(message).unwrap();
        // Exactly eight lines: the fields cannot smuggle a line break.
        assert_eq!(message.split('\n').count(), 8);
    }
});
