//! The server's agent-signature header check (v1 and v2 schemes) on arbitrary header values,
//! method, path, origin and body: never panics, and never accepts a request the fixed key did
//! not sign.
#![no_main]

use libfuzzer_sys::fuzz_target;

/// The public key of the SDK test-vector seed (0x00..0x1f).
const KEY: &str = "A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=";
const NOW: u64 = 1_761_317_061;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.split('\u{0}');
    let mut field = || parts.next().unwrap_or("").to_owned();
    let (agent, sig, ts, pk, method, path) = (field(), field(), field(), field(), field(), field());
    let (version, nonce, origin) = (field(), field(), field());
    let body = field();
    let mut headers = vec![
        ("x-agent-id", agent.as_str()),
        ("x-signature", sig.as_str()),
        ("x-timestamp", ts.as_str()),
        ("x-public-key", pk.as_str()),
    ];
    if !version.is_empty() {
        headers.push(("x-aim-signature-version", version.as_str()));
    }
    if !nonce.is_empty() {
        headers.push(("x-aim-nonce", nonce.as_str()));
    }
    let result = aim_server::wire::verify_signed_headers(
        &headers,
        &method,
        &path,
        body.as_bytes(),
        &origin,
        KEY,
        NOW,
        300,
    );
    let Ok(agent_id) = result else { return };
    // Only a genuine signature by the vector key passes: re-check it independently.
    let key = aim_crypto::AgentPublicKey::from_b64(KEY).unwrap();
    let verifier = aim_crypto::RequestVerifier::default();
    if version.trim() == "2" {
        let request = aim_crypto::RequestV2 {
            agent_id: &agent_id,
            method: &method,
            path_and_query: &path,
            origin: &origin,
            timestamp: ts.trim(),
            nonce: nonce.trim(),
            body: body.as_bytes(),
        };
        assert!(verifier.verify_v2(&key, &request, sig.trim(), &origin, NOW).is_ok());
    } else {
        let request = aim_crypto::SignedRequest {
            method: &method,
            path: path.split('?').next().unwrap_or(&path),
            timestamp: ts.trim(),
            signature: sig.trim(),
            body: body.as_bytes(),
        };
        assert!(verifier.verify(&key, &request, NOW).is_ok());
    }
});
