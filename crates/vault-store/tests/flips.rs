//! Random single-byte flips in a closed vault file (issue 11, point 9): every flip that changes
//! the file's logical content (any row of any table, SQLite's schema and the FTS5 shadow tables
//! included) must be reported by `verify --deep` (or refused when opening or unlocking), with
//! its location. Seeded and bounded so it runs in seconds in debug builds.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use common::*;
use rusqlite::types::Value;
use rusqlite::{Connection, OpenFlags};
use vault_store::{
    Durability, Enrollment, GateConfig, MemoryInput, RecallRequest, Sealing, Vault, VaultError,
};

/// Memories in the vault (the experiment used 200).
const MEMORIES: usize = 200;
/// Flips tried.
const FLIPS: usize = 300;

/// splitmix64: a tiny deterministic generator (no dependency).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

fn build(path: &Path, clock: &vault_store::ManualClock) {
    let v = Vault::options()
        .clock(std::sync::Arc::new(clock.clone()))
        .durability(Durability::Normal)
        .open(path)
        .unwrap();
    let mut s = v
        .create_profile("agent", Enrollment::passphrase_with("pw", fast()))
        .unwrap();
    let mut inputs = Vec::new();
    for i in 0..MEMORIES {
        let mut m = MemoryInput::text(format!(
            "memory {i} about topic{} and word{}",
            i % 7,
            i % 13
        ))
        .classification(u8::try_from(i % 3).unwrap())
        .tag(format!("tag{}", i % 5));
        if i % 4 == 0 {
            m = m
                .metadata(format!("{{\"n\":{i}}}").into_bytes())
                .intent("plan");
        }
        if i % 10 == 0 {
            m = m.cooldown_ms(1_000);
        }
        inputs.push(m);
    }
    let ids = s.store_batch(inputs).unwrap();
    for id in ids.iter().step_by(10).take(5) {
        s.recall(*id, RecallRequest::new("warm up")).unwrap();
    }
    s.tombstone(ids[1], "gone").unwrap();
    s.put_record("presence", "totp.last_step", b"42", Sealing::Sealed)
        .unwrap();
    s.put_record("escrow", "holders", b"public", Sealing::Public)
        .unwrap();
    let mut cfg = GateConfig::default();
    cfg.levels[1].justification = true;
    s.set_gate_config(&cfg).unwrap();
    s.close().unwrap();
}

/// Every row of every table (schema included), as sorted text: the logical content.
fn dump(path: &Path) -> Result<Vec<String>, String> {
    let c = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    let tables: Vec<String> = c
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .and_then(|mut s| {
            s.query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<Vec<String>>>()
        })
        .map_err(|e| e.to_string())?;
    for t in std::iter::once("sqlite_master".to_owned()).chain(tables) {
        if t == "memory_fts" {
            continue;
        }
        let mut stmt = c
            .prepare(&format!("SELECT * FROM \"{t}\""))
            .map_err(|e| format!("{t}: {e}"))?;
        let n = stmt.column_count();
        let mut rows = stmt.query([]).map_err(|e| format!("{t}: {e}"))?;
        let mut lines = Vec::new();
        while let Some(r) = rows.next().map_err(|e| format!("{t}: {e}"))? {
            let vals = (0..n)
                .map(|i| r.get::<_, Value>(i).map(|v| format!("{v:?}")))
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(|e| format!("{t}: {e}"))?;
            lines.push(format!("{t}|{}", vals.join("|")));
        }
        lines.sort();
        out.extend(lines);
    }
    Ok(out)
}

/// What `verify --deep` says about the file at `path` (None: nothing reported).
fn verdict(path: &Path, clock: &vault_store::ManualClock) -> Option<String> {
    let v = match Vault::options()
        .clock(std::sync::Arc::new(clock.clone()))
        .open(path)
    {
        Ok(v) => v,
        Err(e) => return Some(format!("open: {e}")),
    };
    let mut s = match v.unlock("agent", pw()) {
        Ok(s) => s,
        Err(e) => return Some(format!("unlock: {e}")),
    };
    match s.verify(true, &[]) {
        Ok(r) => r.first_problem,
        Err(VaultError::Denied(d)) => Some(format!("denied: {d}")),
        Err(e) => Some(format!("verify: {e}")),
    }
}

#[test]
fn every_flip_that_changes_data_is_reported() {
    let f = Fixture::new();
    std::fs::create_dir_all(f.path.parent().unwrap()).unwrap();
    build(&f.path, &f.clock);
    let original = std::fs::read(&f.path).unwrap();
    assert!(
        !f.path.with_extension("db-wal").exists()
            || std::fs::metadata(f.path.with_extension("db-wal"))
                .unwrap()
                .len()
                == 0
    );
    let before = dump(&f.path).unwrap();
    assert!(
        verdict(&f.path, &f.clock).is_none(),
        "the untouched vault verifies"
    );
    let mut rng = Rng(std::env::var("FLIP_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5EED_0011));
    let (mut changed, mut missed) = (0usize, Vec::new());
    let work = f.dir.path().join("flip.db");
    for _ in 0..FLIPS {
        let at = usize::try_from(rng.next() % original.len() as u64).unwrap();
        let mask = u8::try_from(rng.next() % 255).unwrap() + 1;
        let mut bytes = original.clone();
        bytes[at] ^= mask;
        for ext in ["db", "db-wal", "db-shm"] {
            let _ = std::fs::remove_file(work.with_extension(ext));
        }
        std::fs::write(&work, &bytes).unwrap();
        let after = dump(&work);
        if after.as_ref() == Ok(&before) {
            continue;
        }
        changed += 1;
        let diff = match &after {
            Err(e) => format!("unreadable: {e}"),
            Ok(a) => a
                .iter()
                .find(|l| !before.contains(l))
                .or_else(|| before.iter().find(|l| !a.contains(l)))
                .map(|l| l.chars().take(120).collect())
                .unwrap_or_default(),
        };
        match verdict(&work, &f.clock) {
            Some(_) => {}
            None => missed.push(format!("offset {at} ^ {mask:#04x}: {diff}")),
        }
    }
    assert!(changed > 0);
    assert!(
        missed.is_empty(),
        "{} of {changed} data-changing flips went unreported:\n{}",
        missed.len(),
        missed.join("\n")
    );
}
