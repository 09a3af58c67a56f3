//! Vault benchmarks with a raw SQLite baseline measured in the same run. Prints `RESULT`
//! lines (medians of 3 timed rounds where it applies).
//!
//! Run with `cargo bench -p vault-store --bench vault` (or `cargo xtask bench`).
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout
)]

use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::Connection;
use vault_store::{
    Argon2Params, Enrollment, KeySource, MemoryId, MemoryInput, RecallRequest, SearchQuery, Vault,
};

const CHILD: &str = "VAULT_BENCH_IMPORT_CHILD";
const IMPORT_N: usize = 1_000_000;
const SEARCH_N: usize = 100_000;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn vocabulary() -> Vec<String> {
    let syl = [
        "ka", "lo", "mi", "ren", "to", "sha", "vel", "dor", "qui", "ne", "ba", "zu", "fen", "gra",
        "ty",
    ];
    let mut out = Vec::new();
    for a in syl {
        for b in syl {
            for c in ["", "n", "s", "ra", "lo"] {
                out.push(format!("{a}{b}{c}"));
            }
        }
    }
    out
}

/// A small memory: 12 words drawn with a skewed (roughly Zipf) distribution.
fn sentence(rng: &mut Rng, vocab: &[String]) -> String {
    (0..12)
        .map(|_| {
            let r = rng.below(vocab.len());
            let skewed = r * rng.below(vocab.len()) / vocab.len();
            vocab[skewed].as_str()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn fast() -> Argon2Params {
    Argon2Params::new(64, 1, 1).unwrap()
}

fn new_vault(dir: &Path, name: &str) -> Vault {
    let v = Vault::open(dir.join(name)).unwrap();
    v.create_profile("agent", Enrollment::passphrase_with("pw", fast()))
        .unwrap()
        .close()
        .unwrap();
    v
}

/// CPU seconds (user + system) this process has used, from /proc/self/stat (clock ticks of
/// 1/100 s, the Linux default), so throughput can be reported independently of machine load.
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = after.split_whitespace().collect();
    let t = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (t(11) + t(12)) / 100.0
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// Raw durable inserts: WAL, synchronous=FULL, one transaction per row.
fn raw_baseline(dir: &Path, n: usize) -> f64 {
    let path = dir.join(format!("raw-{}.db", std::process::id()));
    let c = Connection::open(&path).unwrap();
    c.query_row("PRAGMA journal_mode=WAL", [], |_| Ok(()))
        .unwrap();
    c.pragma_update(None, "synchronous", "FULL").unwrap();
    c.execute_batch(
        "CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, k BLOB NOT NULL, v BLOB NOT NULL)",
    )
    .unwrap();
    let payload = vec![7u8; 140];
    let t = Instant::now();
    for i in 0..n {
        c.execute_batch("BEGIN IMMEDIATE").unwrap();
        c.prepare_cached("INSERT INTO t(k, v) VALUES (?1, ?2)")
            .unwrap()
            .execute(rusqlite::params![
                (i as u64).to_be_bytes().to_vec(),
                payload
            ])
            .unwrap();
        c.execute_batch("COMMIT").unwrap();
    }
    n as f64 / t.elapsed().as_secs_f64()
}

fn import_child() {
    let dir = std::env::var(CHILD).unwrap();
    let v = Vault::options()
        .durability(vault_store::Durability::Full)
        .open(Path::new(&dir).join("import.db"))
        .unwrap();
    let mut s = v
        .create_profile("agent", Enrollment::passphrase_with("pw", fast()))
        .unwrap();
    let vocab = vocabulary();
    let mut rng = Rng(42);
    let t = Instant::now();
    let mut done = 0;
    while done < IMPORT_N {
        let batch: Vec<MemoryInput> = (0..5_000)
            .map(|_| MemoryInput::text(sentence(&mut rng, &vocab)))
            .collect();
        done += s.store_batch(batch).unwrap().len();
    }
    let secs = t.elapsed().as_secs_f64();
    drop(s);
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let hwm = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kib: u64 = hwm.split_whitespace().nth(1).unwrap().parse().unwrap();
    println!("IMPORT {done} {secs} {kib}");
}

fn main() {
    if std::env::var(CHILD).is_ok() {
        import_child();
        return;
    }
    let only = std::env::var("VAULT_BENCH_ONLY").unwrap_or_default();
    let run = |part: &str| only.is_empty() || only.split(',').any(|p| p == part);
    let dir = tempfile::tempdir_in(
        std::env::var("VAULT_BENCH_DIR")
            .unwrap_or_else(|_| std::env::temp_dir().to_string_lossy().into()),
    )
    .unwrap();
    let vocab = vocabulary();
    let mut rng = Rng(7);

    // 1. Single durable operations against the raw baseline, interleaved over 3 rounds.
    if run("single") {
        let n = 400;
        let v = new_vault(dir.path(), "single.db");
        let mut s = v.unlock("agent", KeySource::passphrase("pw")).unwrap();
        let (mut raw, mut stores, mut recalls) = (Vec::new(), Vec::new(), Vec::new());
        let mut ids: Vec<MemoryId> = Vec::new();
        for _ in 0..3 {
            raw.push(raw_baseline(dir.path(), n));
            let t = Instant::now();
            for _ in 0..n {
                ids.push(
                    s.store(MemoryInput::text(sentence(&mut rng, &vocab)))
                        .unwrap(),
                );
            }
            stores.push(n as f64 / t.elapsed().as_secs_f64());
            let t = Instant::now();
            for _ in 0..n {
                let id = ids[rng.below(ids.len())];
                s.recall(id, RecallRequest::new("bench")).unwrap();
            }
            recalls.push(n as f64 / t.elapsed().as_secs_f64());
        }
        let (raw, stores, recalls) = (median(raw), median(stores), median(recalls));
        println!("RESULT vault.raw_sqlite_durable_insert median={raw:.0}/s (baseline)");
        let r = stores / raw;
        println!(
            "RESULT vault.store_durable median={stores:.0}/s ratio={r:.2} target>=0.70 {}",
            if r >= 0.7 { "PASS" } else { "FAIL" }
        );
        let r = recalls / raw;
        println!(
            "RESULT vault.recall_level1_audited median={recalls:.0}/s ratio={r:.2} target>=0.70 {}",
            if r >= 0.7 { "PASS" } else { "FAIL" }
        );
        drop(s);
        drop(v);
    }

    // 2. Batch stores.
    if run("batch") {
        let v = new_vault(dir.path(), "batch.db");
        let mut s = v.unlock("agent", KeySource::passphrase("pw")).unwrap();
        let (mut rates, mut cpu_rates) = (Vec::new(), Vec::new());
        for _ in 0..3 {
            let batch: Vec<MemoryInput> = (0..10_000)
                .map(|_| MemoryInput::text(sentence(&mut rng, &vocab)))
                .collect();
            let (t, c) = (Instant::now(), cpu_secs());
            s.store_batch(batch).unwrap();
            rates.push(10_000.0 / t.elapsed().as_secs_f64());
            cpu_rates.push(10_000.0 / (cpu_secs() - c).max(0.01));
        }
        let (b, bc) = (median(rates), median(cpu_rates));
        println!(
            "RESULT vault.store_batch median={b:.0}/s cpu_rate={bc:.0}/s target>=20000 {}",
            if b >= 20_000.0 { "PASS" } else { "FAIL" }
        );
        drop(s);
        drop(v);
    }

    // 3. Search over 100,000 memories (each search includes its audited commit).
    if run("search") {
        let v = new_vault(dir.path(), "search.db");
        let mut s = v.unlock("agent", KeySource::passphrase("pw")).unwrap();
        for _ in 0..SEARCH_N / 10_000 {
            let batch: Vec<MemoryInput> = (0..10_000)
                .map(|_| MemoryInput::text(sentence(&mut rng, &vocab)))
                .collect();
            s.store_batch(batch).unwrap();
        }
        let mut lat = Vec::new();
        for i in 0..300 {
            let q = if i % 2 == 0 {
                vocab[rng.below(vocab.len())].clone()
            } else {
                format!(
                    "{} {}",
                    vocab[rng.below(vocab.len() / 4)],
                    vocab[rng.below(vocab.len() / 4)]
                )
            };
            let t = Instant::now();
            let _ = s.search(&SearchQuery::new(q).limit(20)).unwrap();
            lat.push(t.elapsed());
        }
        lat.sort();
        let p = |q: f64| lat[((lat.len() as f64 - 1.0) * q) as usize];
        let (p50, p99): (Duration, Duration) = (p(0.5), p(0.99));
        println!(
            "RESULT vault.search_100k p50={:.2}ms p99={:.2}ms target p50<=10ms {}",
            p50.as_secs_f64() * 1e3,
            p99.as_secs_f64() * 1e3,
            if p50 <= Duration::from_millis(10) {
                "PASS"
            } else {
                "FAIL"
            }
        );
        drop(s);
        drop(v);
    }

    // 4. Peak memory while importing 1,000,000 memories, in a child process.
    if !run("import") {
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .env(CHILD, dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with("IMPORT "))
        .expect("import child output");
    let f: Vec<&str> = line.split_whitespace().collect();
    let (count, secs, kib): (f64, f64, f64) = (
        f[1].parse().unwrap(),
        f[2].parse().unwrap(),
        f[3].parse().unwrap(),
    );
    let mib = kib / 1024.0;
    println!(
        "RESULT vault.import_1m peak_rss={mib:.0}MiB rate={:.0}/s target<=200MiB {}",
        count / secs,
        if mib <= 200.0 { "PASS" } else { "FAIL" }
    );
}
