use super::*;
use crate::hybrid::HybridKeypair;

const AGENT: &str = "550e8400-e29b-41d4-a716-446655440000";

fn agent() -> AgentKeypair {
    AgentKeypair::from_seed(&[5; 32])
}

fn ts() -> StatementTime {
    StatementTime::parse("2026-10-05T12:00:00.123456Z").unwrap()
}

/// A payload with every required member, `extra` spliced in before the closing brace.
fn payload(extra: &str) -> String {
    format!(
        r#"{{"action_type":"db:read","agent_id":"{AGENT}","resource":"orders","timestamp":"2026-10-05T12:00:00Z","nonce":"AAECAwQFBgcICQoLDA0ODw"{extra}}}"#
    )
}

/// The wire body of `signed_bytes` signed by `agent()`.
fn body_of(signed_bytes: &[u8]) -> String {
    let pair = agent();
    StatementBody {
        signature: pair.sign(signed_bytes),
        public_key: *pair.public_key().as_bytes(),
        signed_bytes: signed_bytes.to_vec(),
    }
    .to_json()
}

fn refusal(body: &str) -> StatementError {
    match StatementBody::parse(body.as_bytes()) {
        Ok(u) => u.verify(&agent().public_key()).unwrap_err(),
        Err(e) => e,
    }
}

fn reason_of_payload(p: &str) -> Reason {
    refusal(&body_of(&pae(PAYLOAD_TYPE, p.as_bytes()))).reason()
}

#[test]
fn signed_statement_round_trips_with_every_member() {
    let mut stmt = ActionStatement::new("db:read", AGENT, Some("orders".into()), ts(), [9; 16]);
    stmt.context = Some(
        canonical::parse(br#"{"big":9007199254740993,"one":1.0,"word":"caf\u00e9"}"#).unwrap(),
    );
    stmt.delegation_digests = vec![[1; 32], [2; 32]];
    stmt.risk_level = Some("low".into());
    let wire = stmt.sign(&agent()).unwrap().to_json();
    let verified = StatementBody::parse(wire.as_bytes())
        .unwrap()
        .verify(&agent().public_key())
        .unwrap();
    assert_eq!(verified.statement(), &stmt);
    assert_eq!(verified.signed_bytes(), stmt.signed_bytes());
    // Numbers keep the digits they were signed with.
    let ctx = verified.statement().context.as_ref().unwrap();
    assert_eq!(
        ctx.to_python_json(),
        r#"{"big": 9007199254740993, "one": 1.0, "word": "caf\u00e9"}"#
    );
}

#[test]
fn upstream_shaped_payload_parses_and_null_resource_is_none() {
    let p = payload(r#","context":{"k":"v"},"risk_level":"low""#)
        .replace(r#""resource":"orders""#, r#""resource":null"#);
    let stmt = StatementBody::parse(body_of(&pae(PAYLOAD_TYPE, p.as_bytes())).as_bytes())
        .unwrap()
        .verify(&agent().public_key())
        .unwrap()
        .into_statement();
    assert_eq!(stmt.resource, None);
    assert_eq!(stmt.nonce, core::array::from_fn::<u8, 16, _>(|i| i as u8));
    assert_eq!(stmt.timestamp.to_string(), "2026-10-05T12:00:00Z");
}

#[test]
fn another_payload_type_is_refused() {
    for t in [
        "application/vnd.opena2a.revocation.v1+json",
        "application/vnd.opena2a.action-request.v1+jsonx",
        "APPLICATION/VND.OPENA2A.ACTION-REQUEST.V1+JSON",
        "",
    ] {
        let err = refusal(&body_of(&pae(t, payload("").as_bytes())));
        assert_eq!(err.reason(), Reason::PayloadTypeMismatch, "{t}");
        assert_eq!(err.code(), "payloadTypeMismatch");
        assert_eq!(err.reason().upstream_code(), "invalidRequest");
    }
    // The S1 request-signing string is no statement.
    let s1 = format!(
        "POST\n/api/v1/sdk-api/verifications\n1759600000\n{}",
        payload("")
    );
    assert_eq!(
        refusal(&body_of(s1.as_bytes())).reason(),
        Reason::MalformedEnvelope
    );
}

#[test]
fn pae_lengths_that_lie_are_refused() {
    let p = payload("");
    let n = p.len();
    for frame in [
        format!("DSSEv1 46 {PAYLOAD_TYPE} {} {p}", n + 1),
        format!("DSSEv1 46 {PAYLOAD_TYPE} {} {p}", n - 1),
        format!("DSSEv1 46 {PAYLOAD_TYPE} {n} {p} "),
        format!("DSSEv1 46 {PAYLOAD_TYPE} 0{n} {p}"),
        format!("DSSEv1 046 {PAYLOAD_TYPE} {n} {p}"),
        format!("DSSEv1 4.6e1 {PAYLOAD_TYPE} {n} {p}"),
        format!("DSSEv1 47 {PAYLOAD_TYPE} {n} {p}"),
    ] {
        let err = refusal(&body_of(frame.as_bytes()));
        assert_eq!(err.reason(), Reason::MalformedEnvelope, "{frame}");
        assert_eq!(err.code(), "malformedEnvelope");
    }
}

#[test]
fn missing_short_or_malformed_nonce_is_refused() {
    let without = payload("").replace(r#","nonce":"AAECAwQFBgcICQoLDA0ODw""#, "");
    assert_eq!(reason_of_payload(&without), Reason::NonceRequired);
    assert_eq!(Reason::NonceRequired.code(), "nonceRequired");
    for nonce in [
        "AAECAwQFBgcICQoLDA0O",     // 15 bytes
        "AAECAwQFBgcICQoLDA0ODxA",  // 17 bytes
        "AAECAwQFBgcICQoLDA0ODw==", // padded
        "AAAAAAAAAAAAAAAAAAAAAB",   // trailing bits
        "000102030405060708090a0b0c0d0e0f",
        "",
    ] {
        let p = payload("").replace("AAECAwQFBgcICQoLDA0ODw", nonce);
        assert_eq!(reason_of_payload(&p), Reason::NonceInvalid, "{nonce}");
    }
    let p = payload("").replace(r#""AAECAwQFBgcICQoLDA0ODw""#, "16");
    assert_eq!(reason_of_payload(&p), Reason::NonceInvalid);
}

#[test]
fn duplicate_keys_are_refused_wherever_they_are() {
    for extra in [
        r#","risk_level":"low","risk_level":"high""#,
        r#","nonce":"AAECAwQFBgcICQoLDA0ODw""#,
        r#","context":{"a":{"b":[{"c":1,"c":2}]}}"#,
        r#","context":{"a":1,"\u0061":2}"#,
    ] {
        let err = refusal(&body_of(&pae(PAYLOAD_TYPE, payload(extra).as_bytes())));
        assert_eq!(err.reason(), Reason::DuplicateKey, "{extra}");
        assert_eq!(err.code(), "duplicateKey");
    }
    // In the body too: serde_json would silently keep the last signature.
    let wire = body_of(&pae(PAYLOAD_TYPE, payload("").as_bytes()));
    let sig = wire.split('"').nth(7).unwrap();
    let twice = wire.replacen(
        r#","publicKey""#,
        &format!(r#","signature":"{sig}","publicKey""#),
        1,
    );
    assert_eq!(refusal(&twice).reason(), Reason::DuplicateKey);
}

#[test]
fn a_body_that_is_not_one_object_is_refused() {
    let good = pae(PAYLOAD_TYPE, payload("").as_bytes());
    for p in [
        format!(" {}", payload("")),
        format!("{} ", payload("")),
        format!("{}{{}}", payload("")),
        format!("[{}]", payload("")),
        payload("").replace("orders", "ord\u{0}ers"),
        format!("{},}}", payload("").trim_end_matches('}')),
        r#"{"action_type":"db:read}"#.to_string(),
        "null".to_string(),
        "\"text\"".to_string(),
        String::new(),
    ] {
        assert_eq!(reason_of_payload(&p), Reason::MalformedPayload, "{p}");
    }
    let mut invalid_utf8 = payload("").into_bytes();
    invalid_utf8[40] = 0xff;
    assert_eq!(
        refusal(&body_of(&pae_bytes(&invalid_utf8))).reason(),
        Reason::MalformedPayload
    );
    assert!(StatementBody::parse(body_of(&good).as_bytes()).is_ok());
}

fn pae_bytes(payload: &[u8]) -> Vec<u8> {
    pae(PAYLOAD_TYPE, payload)
}

#[test]
fn unknown_missing_and_malformed_members_are_refused() {
    assert_eq!(
        reason_of_payload(&payload(r#","riskLevel":"low""#)),
        Reason::UnknownMember
    );
    let p = payload("").replace(r#""action_type":"db:read","#, "");
    assert_eq!(reason_of_payload(&p), Reason::MissingMember);
    let p = payload("").replace(r#","resource":"orders""#, "");
    assert_eq!(reason_of_payload(&p), Reason::MissingMember);
    for (from, to) in [
        (r#""action_type":"db:read""#, r#""action_type":"""#),
        (r#""action_type":"db:read""#, r#""action_type":7"#),
        (AGENT, "550e8400e29b41d4a716446655440000"),
        (AGENT, "urn:uuid:550e8400-e29b-41d4-a716-446655440000"),
        (AGENT, "550e8400-e29b-41d4-a716-44665544000g"),
        (r#""resource":"orders""#, r#""resource":3"#),
        ("2026-10-05T12:00:00Z", "now"),
        ("2026-10-05T12:00:00Z", "2026-10-05T12:00:00+00:00"),
        (
            r#""timestamp":"2026-10-05T12:00:00Z""#,
            r#""timestamp":1759600000"#,
        ),
    ] {
        let p = payload("").replace(from, to);
        assert_eq!(reason_of_payload(&p), Reason::InvalidMember, "{to}");
    }
    let digest = b64::encode_url(&[0; 32]);
    for extra in [
        r#","context":[]"#.to_string(),
        r#","context":null"#.to_string(),
        r#","risk_level":1"#.to_string(),
        r#","delegation_digests":[]"#.to_string(),
        r#","delegation_digests":null"#.to_string(),
        format!(r#","delegation_digests":"{digest}""#),
        format!(r#","delegation_digests":["{digest}","abc"]"#),
        format!(r#","delegation_digests":["{digest}="]"#),
        r#","delegation_digests":[1]"#.to_string(),
    ] {
        assert_eq!(
            reason_of_payload(&payload(&extra)),
            Reason::InvalidMember,
            "{extra}"
        );
    }
}

#[test]
fn depth_is_capped_at_32_levels() {
    let nest =
        |depth: usize| (1..depth).fold("1".to_string(), |inner, _| format!(r#"{{"n":{inner}}}"#));
    assert!(
        StatementBody::parse(
            body_of(&pae_bytes(
                payload(&format!(r#","context":{}"#, nest(32))).as_bytes()
            ))
            .as_bytes()
        )
        .is_ok()
    );
    let err = refusal(&body_of(&pae_bytes(
        payload(&format!(r#","context":{}"#, nest(33))).as_bytes(),
    )));
    assert_eq!(err.reason(), Reason::LimitExceeded);
    assert_eq!(err.limit(), Some("statementDepth"));
    let deep = format!(
        r#","context":{{"a":{}{}}}"#,
        "[".repeat(20_000),
        "]".repeat(20_000)
    );
    let err = refusal(&body_of(&pae_bytes(payload(&deep).as_bytes())));
    assert_eq!(err.limit(), Some("statementDepth"));
}

#[test]
fn oversized_input_is_refused_before_decoding() {
    assert_eq!(MAX_SIGNED_BYTES_CHARS, 87_382);
    assert_eq!(MAX_BODY_BYTES, 88_406);
    let huge = format!(
        r#"{{"signedBytes":"{}","signature":"x","publicKey":"y"}}"#,
        "*".repeat(MAX_SIGNED_BYTES_CHARS + 1)
    );
    let err = refusal(&huge);
    assert_eq!(
        (err.reason(), err.limit()),
        (Reason::LimitExceeded, Some("statementBytes"))
    );
    assert_eq!(err.reason().http_status(), 422);
    let padded = format!("{}{}", body_of(b"x"), " ".repeat(MAX_BODY_BYTES));
    assert_eq!(refusal(&padded).reason(), Reason::LimitExceeded);
    // Exactly at the ceiling is accepted as far as size goes (then refused as a frame).
    let at = body_of(&vec![b'x'; MAX_SIGNED_BYTES]);
    assert_eq!(refusal(&at).reason(), Reason::MalformedEnvelope);
    let over = body_of(&vec![b'x'; MAX_SIGNED_BYTES + 1]);
    assert_eq!(refusal(&over).reason(), Reason::LimitExceeded);
    assert_eq!(refusal(&over).limit(), Some("statementBytes"));
    assert_eq!(refusal(&padded).limit(), Some("statementBytes"));
    assert_eq!(refusal(&at).limit(), None);
}

#[test]
fn bad_base64_and_bad_bodies_are_refused() {
    let wire = body_of(&pae_bytes(payload("").as_bytes()));
    let parts: Vec<&str> = wire.split('"').collect();
    let (signed, sig, key) = (parts[3], parts[7], parts[11]);
    let rebuild = |s: &str, g: &str, k: &str| {
        format!(r#"{{"signedBytes":"{s}","signature":"{g}","publicKey":"{k}"}}"#)
    };
    for body in [
        rebuild(&format!("{signed}="), sig, key),
        rebuild(&signed.replacen('R', "+", 1), sig, key),
        rebuild(signed, &format!("{}\\n{}", &sig[..40], &sig[40..]), key),
        rebuild(signed, &format!("{}B", &sig[..sig.len() - 1]), key),
        rebuild(signed, sig, &format!("{}B", &key[..42])),
        rebuild(signed, &sig[..84], key),
        rebuild(signed, sig, &b64::encode(&[1u8; 32])),
    ] {
        assert_eq!(refusal(&body).reason(), Reason::BadEncoding, "{body}");
    }
    for body in [
        format!(r#"{{"signedBytes":"{signed}","signature":"{sig}"}}"#),
        format!(
            r#"{{"signedBytes":"{signed}","signature":"{sig}","publicKey":"{key}","nonce":"x"}}"#
        ),
        format!(r#"{{"signedBytes":"{signed}","signature":12,"publicKey":"{key}"}}"#),
        format!(r#"[{wire}]"#),
        "not json".to_string(),
        String::new(),
    ] {
        assert_eq!(refusal(&body).reason(), Reason::MalformedBody, "{body}");
    }
    // Whitespace around a body is JSON and accepted.
    assert!(StatementBody::parse(format!(" {wire}\n").as_bytes()).is_ok());
}

#[test]
fn a_signature_by_another_key_is_refused() {
    let stmt = ActionStatement::new("db:read", AGENT, None, ts(), [1; 16]);
    let mallory = AgentKeypair::from_seed(&[6; 32]);
    // Signed and presented by Mallory, checked against the agent's registered key.
    let wire = stmt.sign(&mallory).unwrap().to_json();
    let err = StatementBody::parse(wire.as_bytes())
        .unwrap()
        .verify(&agent().public_key())
        .unwrap_err();
    assert_eq!(err.reason(), Reason::KeyNotRecognized);
    assert_eq!(err.code(), "agentKeyNotRecognized");
    // Signed by Mallory but presenting the agent's key.
    let mut body = stmt.sign(&mallory).unwrap();
    body.public_key = *agent().public_key().as_bytes();
    let err = StatementBody::parse(body.to_json().as_bytes())
        .unwrap()
        .verify(&agent().public_key())
        .unwrap_err();
    assert_eq!(
        (err.reason(), err.code(), err.reason().http_status()),
        (Reason::SignatureInvalid, "signatureInvalid", 401)
    );
}

#[test]
fn hybrid_statements_need_both_signatures() {
    let keys = HybridKeypair::from_parts(agent(), crate::hybrid::MlDsaKeypair::from_seed(&[8; 32]));
    let stmt = ActionStatement::new("db:read", AGENT, None, ts(), [2; 16]);
    let body = stmt.sign(keys.ed25519()).unwrap();
    let ml = keys.ml_dsa().sign(&body.signed_bytes).unwrap();
    let parse = || StatementBody::parse(body.to_json().as_bytes()).unwrap();
    parse().verify_hybrid(&keys.public_key(), &ml).unwrap();
    let other = crate::hybrid::MlDsaKeypair::from_seed(&[9; 32])
        .sign(&body.signed_bytes)
        .unwrap();
    let err = parse()
        .verify_hybrid(&keys.public_key(), &other)
        .unwrap_err();
    assert_eq!(err.reason(), Reason::SignatureInvalid);
    let wrong_msg = keys.ml_dsa().sign(b"something else").unwrap();
    assert!(
        parse()
            .verify_hybrid(&keys.public_key(), &wrong_msg)
            .is_err()
    );
}

#[test]
fn reason_codes_are_distinct_camel_case_ascii() {
    let all = [
        Reason::LimitExceeded,
        Reason::MalformedBody,
        Reason::BadEncoding,
        Reason::MalformedEnvelope,
        Reason::PayloadTypeMismatch,
        Reason::MalformedPayload,
        Reason::DuplicateKey,
        Reason::UnknownMember,
        Reason::MissingMember,
        Reason::NonceRequired,
        Reason::NonceInvalid,
        Reason::InvalidMember,
        Reason::KeyNotRecognized,
        Reason::SignatureInvalid,
        Reason::TimestampOutsideWindow,
        Reason::HybridSignatureRequired,
    ];
    let codes: std::collections::HashSet<_> = all.iter().map(|r| r.code()).collect();
    for r in all {
        assert!([400, 401, 422].contains(&r.http_status()), "{r}");
        assert!(r.upstream_code() == "invalidRequest" || r.upstream_code() == r.code());
    }
    assert_eq!(codes.len(), all.len());
    for code in codes {
        assert!(code.bytes().all(|b| b.is_ascii_alphabetic()), "{code}");
        assert!(code.as_bytes()[0].is_ascii_lowercase(), "{code}");
    }
}

#[test]
fn a_statement_the_server_would_refuse_is_never_signed() {
    let good = ActionStatement::new("db:read", AGENT, None, ts(), [1; 16]);
    let mut empty_action = good.clone();
    empty_action.action_type.clear();
    let mut not_uuid = good.clone();
    not_uuid.agent_id = "agent-7".into();
    let mut deep = good.clone();
    let nested = (0..40).fold("1".to_string(), |inner, _| format!(r#"{{"n":{inner}}}"#));
    deep.context = Some(canonical::parse(nested.as_bytes()).unwrap());
    let mut huge = good.clone();
    huge.resource = Some("x".repeat(MAX_SIGNED_BYTES));
    for (stmt, reason) in [
        (empty_action, Reason::InvalidMember),
        (not_uuid, Reason::InvalidMember),
        (deep, Reason::LimitExceeded),
        (huge, Reason::LimitExceeded),
    ] {
        assert_eq!(stmt.sign(&agent()).unwrap_err().reason(), reason);
    }
    assert!(good.sign(&agent()).is_ok());
}

#[test]
fn dispatch_recognises_statement_bodies() {
    let wire = body_of(&pae_bytes(payload("").as_bytes()));
    assert!(StatementBody::is_statement(wire.as_bytes()));
    assert!(StatementBody::is_statement(
        br#" {"signedBytes": 1, "extra": 2} "#
    ));
    assert!(StatementBody::is_statement(
        br#"{"a":1,"\u0073ignedBytes":"x"}"#
    ));
    assert!(!StatementBody::is_statement(
        br#"{"action_type":"db:read","context":{"signedBytes":"x"}}"#
    ));
    assert!(!StatementBody::is_statement(b"not json"));
}
