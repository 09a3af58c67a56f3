//! The server's verification-body parser on arbitrary bytes: never panics; whatever it accepts
//! has a UUID agent id, a non-empty action, an object context, and a signed payload whose
//! canonical message is stable.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(body) = aim_server::wire::parse_verification_body(data) {
        assert!(uuid_like(&body.agent_id));
        assert!(!body.action_type.is_empty());
        let message = body.payload().signing_message();
        assert_eq!(message, body.payload().signing_message());
        assert!(message.is_ascii(), "Python-canonical JSON is ASCII");
    }
    // Detection reports go through serde and the server's validation.
    if let Ok(report) = serde_json::from_slice::<aim_server::wire::DetectionReport>(data) {
        let _ = aim_server::wire::validate_report(&report);
    }
});

fn uuid_like(s: &str) -> bool {
    s.len() == 36 && s.bytes().filter(|b| *b == b'-').count() == 4
}
