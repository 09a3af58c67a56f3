//! The server's agent-signature header check on arbitrary header values, method, path and body:
//! never panics, and never accepts a request the fixed key did not sign.
#![no_main]

use libfuzzer_sys::fuzz_target;

/// The public key of the SDK test-vector seed (0x00..0x1f).
const KEY: &str = "A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=";

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.split('\u{0}');
    let mut field = || parts.next().unwrap_or("").to_owned();
    let (agent, sig, ts, pk, method, path) = (field(), field(), field(), field(), field(), field());
    let body = field();
    let headers = [
        ("x-agent-id", agent.as_str()),
        ("x-signature", sig.as_str()),
        ("x-timestamp", ts.as_str()),
        ("x-public-key", pk.as_str()),
    ];
    let result = aim_server::wire::verify_signed_headers(
        &headers,
        &method,
        &path,
        body.as_bytes(),
        KEY,
        1_761_317_061,
        300,
    );
    if result.is_ok() {
        // Only a genuine signature by the vector key passes: re-check it independently.
        let key = aim_crypto::AgentPublicKey::from_b64(KEY).unwrap();
        let request = aim_crypto::SignedRequest {
            method: &method,
            path: &path,
            timestamp: ts.trim(),
            signature: sig.trim(),
            body: body.as_bytes(),
        };
        assert!(aim_crypto::RequestVerifier::default()
            .verify(&key, &request, 1_761_317_061)
            .is_ok());
    }
});
