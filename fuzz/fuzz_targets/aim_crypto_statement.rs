//! Signed action statements: parsing arbitrary bytes (as a request body and as decoded
//! `signedBytes`) never panics; whatever parses as a body never verifies under a key the fuzzer
//! does not hold; and whatever parses as signed bytes re-serializes to a statement that parses
//! back to the same content.
#![no_main]

use aim_crypto::AgentKeypair;
use aim_crypto::statement::{StatementBody, parse_signed_bytes};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let registered = AgentKeypair::from_seed(&[42; 32]).public_key();
    if let Ok(unverified) = StatementBody::parse(data) {
        assert!(unverified.verify(&registered).is_err(), "forged statement verified");
    }
    if let Ok(statement) = parse_signed_bytes(data) {
        let again = parse_signed_bytes(&statement.signed_bytes()).expect("rebuilt statement parses");
        assert_eq!(again, statement);
    }
});
