//! Audit log benchmarks with their targets (plain `main`, prints `RESULT` lines):
//!
//! * `audit.append_1k` / `audit.append_1m`: median cost of one append to a log of 1,000 and of
//!   1,000,000 leaves (target: the larger ≤ 2× the smaller);
//! * `audit.inclusion_proof_1m`: median inclusion-proof generation at 1,000,000 leaves
//!   (target ≤ 1 ms);
//! * `audit.verify_1m`: full verification of a 1,000,000-event log (target ≤ 30 s).
//!
//! The logs live in temporary SQLite files in WAL mode, built with the real `AuditLog::append`
//! in transactions of 100,000 events. Appends are timed inside an open transaction (the
//! caller's), so commit and fsync costs, which belong to the vault's operation, are excluded.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark binary

use std::time::{Duration, Instant};

use aim_crypto::AgentKeypair;
use rusqlite::Connection;
use vault_audit::{AuditLog, Event, VerifyOptions, create_schema};

const BIG: i64 = 1_000_000;
const SMALL: i64 = 1_000;
const SAMPLES: i64 = 2_000;

fn event(i: i64) -> Event {
    Event::new("memory.recall.allowed", 1_761_317_061_000 + i)
        .with("memory_id", format!("0199e0a4-7c1e-7000-8000-{i:012}"))
        .with("requester", "agent")
        .with("classification", 2i64)
        .with("gate", "cooldown")
}

fn open(path: &std::path::Path) -> Connection {
    let conn = Connection::open(path).unwrap();
    conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")
        .unwrap();
    create_schema(&conn).unwrap();
    conn
}

/// Builds a log of `n` events (plus one key epoch), signing a head every `head_every` events.
fn build(conn: &Connection, key: &AgentKeypair, n: i64, head_every: i64) {
    let tx = conn.unchecked_transaction().unwrap();
    AuditLog::announce_key(&tx, &key.public_key(), None, 0).unwrap();
    tx.commit().unwrap();
    let mut i = 0;
    while i < n {
        let tx = conn.unchecked_transaction().unwrap();
        let end = (i + 100_000).min(n);
        while i < end {
            AuditLog::append(&tx, &event(i)).unwrap();
            i += 1;
            if i % head_every == 0 {
                AuditLog::sign_head(&tx, key, i).unwrap();
            }
        }
        tx.commit().unwrap();
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort_unstable();
    v[v.len() / 2]
}

fn p99(mut v: Vec<Duration>) -> Duration {
    v.sort_unstable();
    v[v.len() * 99 / 100]
}

/// Times `SAMPLES` appends inside one transaction that is rolled back afterwards; returns the
/// median and the 99th percentile.
fn time_appends(conn: &Connection) -> (Duration, Duration) {
    let tx = conn.unchecked_transaction().unwrap();
    let events: Vec<Event> = (0..SAMPLES).map(|i| event(10_000_000 + i)).collect();
    let mut times = Vec::with_capacity(SAMPLES as usize);
    for e in &events {
        let t = Instant::now();
        AuditLog::append(&tx, e).unwrap();
        times.push(t.elapsed());
    }
    tx.rollback().unwrap();
    (median(times.clone()), p99(times))
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn verdict(ok: bool) -> &'static str {
    if ok { "PASS" } else { "MISS" }
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let key = AgentKeypair::from_seed(&[7; 32]);

    let small = open(&dir.path().join("small.db"));
    build(&small, &key, SMALL, 100);
    let (small_median, small_p99) = time_appends(&small);
    println!(
        "RESULT audit.append_1k median={:.1}µs p99={:.1}µs",
        us(small_median),
        us(small_p99)
    );

    let big_path = dir.path().join("big.db");
    let big = open(&big_path);
    let t = Instant::now();
    build(&big, &key, BIG, 10_000);
    println!(
        "RESULT audit.build_1m total={:.1}s (1,000,000 appends + 100 heads in 10 transactions)",
        t.elapsed().as_secs_f64()
    );
    let (big_median, big_p99) = time_appends(&big);
    let ratio = us(big_median) / us(small_median);
    println!(
        "RESULT audit.append_1m median={:.1}µs p99={:.1}µs ratio={ratio:.2} target<=2.0 {}",
        us(big_median),
        us(big_p99),
        verdict(ratio <= 2.0)
    );

    let size = AuditLog::tree_size(&big).unwrap();
    let mut times = Vec::new();
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..2_000 {
        // xorshift: spread indices over the whole log.
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let index = x % size;
        let t = Instant::now();
        let proof = AuditLog::inclusion_proof(&big, index, size).unwrap();
        times.push(t.elapsed());
        assert_eq!(proof.index, index);
    }
    let m = median(times);
    println!(
        "RESULT audit.inclusion_proof_1m median={:.1}µs target<=1000µs {}",
        us(m),
        verdict(m <= Duration::from_millis(1))
    );

    let opts = VerifyOptions {
        trusted_keys: vec![key.public_key()],
        ..Default::default()
    };
    let t = Instant::now();
    let report = AuditLog::verify(&big, &opts).unwrap();
    let took = t.elapsed();
    assert!(report.is_ok(), "{:?}", report.discrepancy);
    assert_eq!(report.heads_verified, 100);
    println!(
        "RESULT audit.verify_1m median={:.1}s target<=30s {} (single run; {} leaves, {} heads)",
        took.as_secs_f64(),
        verdict(took <= Duration::from_secs(30)),
        report.leaves_verified,
        report.heads_verified
    );
}
