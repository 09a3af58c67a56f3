//! Criterion benchmarks of every primitive `aim-crypto` offers.
//!
//! `cargo xtask bench` prints their medians with throughput and checks the targets
//! (request-signature verification ≥ 20,000/s on one core).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::Duration;

use aim_crypto::canonical::{self, Value};
use aim_crypto::hybrid::{HybridKeypair, MlDsaKeypair};
use aim_crypto::statement::{ActionStatement, StatementBody, StatementTime};
use aim_crypto::test_vectors::*;
use aim_crypto::{
    ActionPayload, AgentKeypair, Argon2Params, RequestVerifier, SealingKey, SecretKey,
    SignedRequest,
};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

fn ed25519(c: &mut Criterion) {
    let pair = AgentKeypair::from_seed(&SEED);
    let public = pair.public_key();
    let msg = V1_HTTP_BODY.as_bytes();
    let sig = pair.sign(msg);
    let mut g = c.benchmark_group("crypto/ed25519");
    g.throughput(Throughput::Elements(1));
    g.bench_function("sign", |b| b.iter(|| pair.sign(black_box(msg))));
    g.bench_function("verify", |b| {
        b.iter(|| public.verify(black_box(msg), &sig).unwrap())
    });
    g.finish();
}

/// Ed25519 verification alone beside hybrid (Ed25519 + ML-DSA-65) verification of the same
/// request message: the cost hybrid mode adds to every signed request.
fn hybrid(c: &mut Criterion) {
    let keys = HybridKeypair::from_parts(
        AgentKeypair::from_seed(&SEED),
        MlDsaKeypair::from_seed(&[7; 32]),
    );
    let public = keys.public_key();
    let msg = V1_HTTP_BODY.as_bytes();
    let sig = keys.sign(msg).unwrap();
    let mut g = c.benchmark_group("crypto/hybrid");
    g.throughput(Throughput::Elements(1));
    g.bench_function("ed25519_verify", |b| {
        b.iter(|| {
            public
                .ed25519()
                .verify(black_box(msg), sig.ed25519())
                .unwrap()
        })
    });
    g.bench_function("ml_dsa_65_verify", |b| {
        b.iter(|| {
            public
                .ml_dsa()
                .verify(black_box(msg), sig.ml_dsa())
                .unwrap()
        })
    });
    g.bench_function("hybrid_verify", |b| {
        b.iter(|| public.verify(black_box(msg), &sig).unwrap())
    });
    g.bench_function("hybrid_sign", |b| {
        b.iter(|| keys.sign(black_box(msg)).unwrap())
    });
    g.finish();
}

/// A signed action statement from untrusted body bytes to a verified statement.
fn statement(c: &mut Criterion) {
    let agent = AgentKeypair::from_seed(&SEED);
    let ts = StatementTime::from_unix(UNIX_SECONDS as i64, 0).unwrap();
    let mut stmt = ActionStatement::new(
        "read_database",
        AGENT_ID,
        Some("users_table".into()),
        ts,
        [3; 16],
    );
    stmt.risk_level = Some("low".into());
    let wire = stmt.sign(&agent).unwrap().to_json();
    let public = agent.public_key();
    let mut g = c.benchmark_group("crypto/statement");
    g.throughput(Throughput::Elements(1));
    g.bench_function("parse_and_verify", |b| {
        b.iter(|| {
            StatementBody::parse(black_box(wire.as_bytes()))
                .unwrap()
                .verify(&public)
                .unwrap()
        })
    });
    g.finish();
}

fn request_signature(c: &mut Criterion) {
    let pair = AgentKeypair::from_seed(&SEED);
    let public = pair.public_key();
    let body = V1_HTTP_BODY.as_bytes();
    let headers = pair.sign_request(AGENT_ID, "POST", V1_PATH, UNIX_SECONDS, body);
    let verifier = RequestVerifier::default();
    let mut g = c.benchmark_group("crypto/request");
    g.throughput(Throughput::Elements(1));
    g.bench_function("verify", |b| {
        b.iter(|| {
            let request = SignedRequest {
                method: "POST",
                path: V1_PATH,
                timestamp: &headers.timestamp,
                signature: &headers.signature,
                body: black_box(body),
            };
            verifier.verify(&public, &request, UNIX_SECONDS).unwrap()
        })
    });
    g.bench_function("sign", |b| {
        b.iter(|| pair.sign_request(AGENT_ID, "POST", V1_PATH, UNIX_SECONDS, black_box(body)))
    });
    g.finish();
}

fn canonical_json(c: &mut Criterion) {
    let body = canonical::parse(V1_HTTP_BODY.as_bytes()).unwrap();
    let payload = ActionPayload {
        action_type: "read_database".into(),
        agent_id: AGENT_ID.into(),
        context: body.get("context").unwrap().clone(),
        resource: Some("users_table".into()),
        timestamp: "2025-10-24T14:44:21.123456Z".into(),
        risk_level: None,
    };
    let serde_context: serde_json::Value = serde_json::from_str(V1_HTTP_BODY).unwrap();
    let mut g = c.benchmark_group("crypto/canonical");
    g.throughput(Throughput::Elements(1));
    g.bench_function("v1_payload", |b| {
        b.iter(|| black_box(&payload).signing_message())
    });
    g.bench_function("v1_from_serde", |b| {
        b.iter(|| Value::from_serde(black_box(&serde_context)).to_python_json())
    });
    g.bench_function("v1_parse_body", |b| {
        b.iter(|| canonical::parse(black_box(V1_HTTP_BODY.as_bytes())).unwrap())
    });
    g.finish();
}

fn aes_gcm(c: &mut Criterion) {
    let key = SealingKey::new(&SecretKey::from_bytes([7; 32]));
    let aad = b"memory-id|profile|2|v1";
    let mut g = c.benchmark_group("crypto/aes256gcm");
    for size in [64usize, 4 * 1024, 1024 * 1024] {
        let plaintext = vec![0x5au8; size];
        let sealed = key.seal(aad, &plaintext).unwrap();
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_with_input(BenchmarkId::new("seal", size), &plaintext, |b, p| {
            b.iter(|| key.seal(aad, black_box(p)).unwrap())
        });
        g.bench_with_input(BenchmarkId::new("open", size), &sealed, |b, s| {
            b.iter(|| key.open(aad, black_box(s)).unwrap())
        });
    }
    g.finish();
}

fn argon2id(c: &mut Criterion) {
    let mut g = c.benchmark_group("crypto/argon2id");
    g.sample_size(10);
    g.warm_up_time(Duration::from_millis(1));
    for params in [
        Argon2Params::INTERACTIVE,
        Argon2Params::MODERATE,
        Argon2Params::SENSITIVE,
    ] {
        let name = params.name().unwrap();
        g.measurement_time(Duration::from_secs(if name == "sensitive" {
            40
        } else {
            10
        }));
        g.bench_function(name, |b| {
            b.iter(|| {
                params
                    .derive(black_box(b"correct horse battery"), &[1; 16])
                    .unwrap()
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = fast;
    config = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = ed25519, hybrid, statement, request_signature, canonical_json, aes_gcm
}
criterion_group!(slow, argon2id);
criterion_main!(fast, slow);
