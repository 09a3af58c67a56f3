//! Property tests of the v2 request signature: a signature verifies for exactly the request it
//! was made for; changing any covered field (agent id, method, path or query, origin, timestamp,
//! nonce, one body byte) makes it fail.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use aim_crypto::request_v2::{RequestV2, origin_of};
use aim_crypto::{AgentKeypair, RequestVerifier};
use proptest::prelude::*;

const NOW: u64 = 1_761_317_061;

fn arb_path() -> impl Strategy<Value = String> {
    "/[a-z0-9/_-]{0,30}(\\?[a-z0-9=&]{0,20})?"
}

fn arb_nonce() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_-]{16,64}"
}

fn arb_origin() -> impl Strategy<Value = String> {
    (
        "(http|https)",
        "[a-z0-9.-]{1,20}",
        proptest::option::of(1u16..),
    )
        .prop_map(|(s, h, p)| {
            let url = match p {
                Some(p) => format!("{s}://{h}:{p}"),
                None => format!("{s}://{h}"),
            };
            origin_of(&url).unwrap()
        })
}

#[derive(Debug, Clone)]
struct Req {
    agent: String,
    method: String,
    path: String,
    origin: String,
    ts: u64,
    nonce: String,
    body: Vec<u8>,
}

impl Req {
    fn view<'a>(&'a self, ts: &'a str) -> RequestV2<'a> {
        RequestV2 {
            agent_id: &self.agent,
            method: &self.method,
            path_and_query: &self.path,
            origin: &self.origin,
            timestamp: ts,
            nonce: &self.nonce,
            body: &self.body,
        }
    }
}

fn arb_req() -> impl Strategy<Value = Req> {
    (
        "[0-9a-f-]{8,36}",
        "(GET|POST|PUT|DELETE|PATCH)",
        arb_path(),
        arb_origin(),
        (NOW - 200)..(NOW + 200),
        arb_nonce(),
        proptest::collection::vec(any::<u8>(), 0..64),
    )
        .prop_map(|(agent, method, path, origin, ts, nonce, body)| Req {
            agent,
            method,
            path,
            origin,
            ts,
            nonce,
            body,
        })
}

fn verifies(keys: &AgentKeypair, signed_for: &Req, presented: &Req, signature: &str) -> bool {
    let ts = presented.ts.to_string();
    RequestVerifier::default()
        .verify_v2(
            &keys.public_key(),
            &presented.view(&ts),
            signature,
            &presented.origin,
            NOW,
        )
        .is_ok()
        && signed_for.origin == presented.origin
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn a_signature_covers_every_field(req in arb_req(), other in arb_req(), field in 0usize..7) {
        let keys = AgentKeypair::from_seed(&[7; 32]);
        let ts = req.ts.to_string();
        let signature = keys.sign_request_v2(&req.view(&ts)).unwrap().signature;
        prop_assert!(verifies(&keys, &req, &req, &signature));
        let mut moved = req.clone();
        match field {
            0 => moved.agent = other.agent.clone(),
            1 => moved.method = other.method.clone(),
            2 => moved.path = other.path.clone(),
            3 => moved.origin = other.origin.clone(),
            4 => moved.ts = other.ts,
            5 => moved.nonce = other.nonce.clone(),
            _ => moved.body.push(1),
        }
        let same = moved.agent == req.agent
            && moved.method == req.method
            && moved.path == req.path
            && moved.origin == req.origin
            && moved.ts == req.ts
            && moved.nonce == req.nonce
            && moved.body == req.body;
        // The verifier expects the moved request's own origin, as a server would for itself.
        let ts2 = moved.ts.to_string();
        let ok = RequestVerifier::default()
            .verify_v2(&keys.public_key(), &moved.view(&ts2), &signature, &moved.origin, NOW)
            .is_ok();
        prop_assert_eq!(ok, same);
    }

    #[test]
    fn another_key_never_verifies(req in arb_req()) {
        let keys = AgentKeypair::from_seed(&[7; 32]);
        let other = AgentKeypair::from_seed(&[8; 32]);
        let ts = req.ts.to_string();
        let signature = keys.sign_request_v2(&req.view(&ts)).unwrap().signature;
        prop_assert!(!verifies(&other, &req, &req, &signature));
    }
}
