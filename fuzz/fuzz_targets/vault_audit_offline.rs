//! The offline verifiers' inputs: an export file, an existence proof and a published head, as
//! arbitrary bytes. None may panic, and a forged existence proof must never check out.
#![no_main]

use aim_crypto::AgentKeypair;
use libfuzzer_sys::fuzz_target;
use vault_audit::{ExistenceProof, PublishedHead, VerifyOptions, verify_export, witness::judge};

fuzz_target!(|data: &[u8]| {
    let key = AgentKeypair::from_seed(&[5; 32]);
    let opts = VerifyOptions {
        trusted_keys: vec![key.public_key()],
        ..Default::default()
    };
    if let Ok(report) = verify_export(data, &opts) {
        // Nothing the fuzzer writes is signed by this key.
        assert_eq!(report.heads_verified, 0, "fuzzer forged a signed head");
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(proof) = serde_json::from_str::<ExistenceProof>(text) {
            assert!(proof.check(&key.public_key()).is_err(), "forged existence proof");
        }
        if let Ok(record) = serde_json::from_str::<PublishedHead>(text) {
            let _ = judge(&[], &record);
        }
    }
});
