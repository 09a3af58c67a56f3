//! Property tests of signed action statements: every statement a client builds parses and
//! verifies back to itself; changing any single byte of `signedBytes` makes it fail; a PAE whose
//! length fields lie (or are not canonical decimal) is refused as `malformedEnvelope`; and the
//! parser never panics on arbitrary bytes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use aim_crypto::AgentKeypair;
use aim_crypto::canonical::{Number, Value};
use aim_crypto::statement::{
    self, ActionStatement, PAYLOAD_TYPE, Reason, StatementBody, StatementTime,
};
use proptest::prelude::*;

fn agent() -> AgentKeypair {
    AgentKeypair::from_seed(&[11; 32])
}

fn arb_uuid() -> impl Strategy<Value = String> {
    "[0-9a-fA-F]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9A-F]{4}-[0-9a-f]{12}"
}

fn arb_context() -> impl Strategy<Value = Option<Value>> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| Value::Number(Number::from_i64(n))),
        "\\PC{0,12}".prop_map(Value::String),
    ];
    let tree = leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z\\u{e9}\"\\\\]{0,6}", inner, 0..4)
                .prop_map(Value::Object),
        ]
    });
    proptest::option::of(
        prop::collection::btree_map("\\PC{0,8}", tree, 0..4).prop_map(Value::Object),
    )
}

fn arb_statement() -> impl Strategy<Value = ActionStatement> {
    (
        "\\PC{1,24}",
        arb_uuid(),
        proptest::option::of("\\PC{0,24}"),
        (-62_167_219_200i64..=253_402_300_799, 0u32..1_000_000_000),
        any::<[u8; 16]>(),
        arb_context(),
        prop::collection::vec(any::<[u8; 32]>(), 0..3),
        proptest::option::of("[a-z]{0,8}"),
    )
        .prop_map(
            |(action, agent_id, resource, (secs, nanos), nonce, context, digests, risk)| {
                let ts = StatementTime::from_unix(secs, nanos).unwrap();
                let mut s = ActionStatement::new(action, agent_id, resource, ts, nonce);
                s.context = context;
                s.delegation_digests = digests;
                s.risk_level = risk;
                s
            },
        )
}

/// Parses and verifies a wire body with the agent's registered key.
fn check(body: &StatementBody) -> Result<ActionStatement, Reason> {
    StatementBody::parse(body.to_json().as_bytes())
        .and_then(|u| u.verify(&agent().public_key()))
        .map(|v| v.into_statement())
        .map_err(|e| e.reason())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn built_statements_round_trip(stmt in arb_statement()) {
        let body = stmt.sign(&agent()).unwrap();
        prop_assert_eq!(check(&body), Ok(stmt.clone()));
        // The timestamp prints and parses back exactly.
        prop_assert_eq!(StatementTime::parse(&stmt.timestamp.to_string()), Some(stmt.timestamp));
    }

    #[test]
    fn any_single_byte_change_to_signed_bytes_fails(
        stmt in arb_statement(),
        index in any::<prop::sample::Index>(),
        delta in 1u8..=255,
    ) {
        let mut body = stmt.sign(&agent()).unwrap();
        let i = index.index(body.signed_bytes.len());
        body.signed_bytes[i] = body.signed_bytes[i].wrapping_add(delta);
        prop_assert!(check(&body).is_err());
    }

    #[test]
    fn pae_length_lies_are_refused(
        stmt in arb_statement(),
        lie_on_type in any::<bool>(),
        delta in -60i64..=60,
        form in 0u8..3,
    ) {
        let payload = stmt.to_payload_json();
        let (mut type_len, mut body_len) = (PAYLOAD_TYPE.len().to_string(), payload.len().to_string());
        let target = if lie_on_type { &mut type_len } else { &mut body_len };
        let true_len: i64 = target.parse().unwrap();
        // A wrong number, a leading zero, or a sign: never the canonical true length.
        *target = match form {
            0 if delta != 0 && true_len + delta >= 0 => (true_len + delta).to_string(),
            1 => format!("0{target}"),
            _ => format!("+{target}"),
        };
        let frame = format!("DSSEv1 {type_len} {PAYLOAD_TYPE} {body_len} {payload}");
        let mut body = stmt.sign(&agent()).unwrap();
        body.signed_bytes = frame.into_bytes();
        body.signature = agent().sign(&body.signed_bytes);
        // A type length that lands on a later space could, in theory, frame a valid PAE of
        // another type: still refused, as a type mismatch.
        let reason = check(&body).unwrap_err();
        prop_assert!(
            reason == Reason::MalformedEnvelope
                || (lie_on_type && reason == Reason::PayloadTypeMismatch),
            "{:?}", reason
        );
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_never_verify(data in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = statement::parse_signed_bytes(&data);
        if let Ok(u) = StatementBody::parse(&data) {
            prop_assert!(u.verify(&agent().public_key()).is_err());
        }
    }

    #[test]
    fn trailing_or_missing_bytes_after_a_valid_frame_are_refused(
        stmt in arb_statement(),
        extra in prop::collection::vec(any::<u8>(), 1..8),
        cut in 1usize..8,
    ) {
        let mut body = stmt.sign(&agent()).unwrap();
        let good = body.signed_bytes.clone();
        body.signed_bytes = [good.clone(), extra].concat();
        body.signature = agent().sign(&body.signed_bytes);
        prop_assert_eq!(check(&body), Err(Reason::MalformedEnvelope));
        body.signed_bytes = good[..good.len().saturating_sub(cut)].to_vec();
        body.signature = agent().sign(&body.signed_bytes);
        prop_assert_eq!(check(&body), Err(Reason::MalformedEnvelope));
    }
}
