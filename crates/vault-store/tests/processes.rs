//! Real processes: kill -9 during a store loop and during a rotation, and two processes
//! writing at once. The test binary re-executes itself (`child_entry`) to act as the child.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use common::*;
use vault_store::{Durability, Enrollment, KeySource, MemoryId, MemoryInput, RecallRequest, Vault};

const ROLE: &str = "VAULT_STORE_TEST_CHILD";
const PATH: &str = "VAULT_STORE_TEST_PATH";

fn spawn(role: &str, path: &Path) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_entry", "--nocapture", "--test-threads=1"])
        .env(ROLE, role)
        .env(PATH, path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Entry point of the child processes; does nothing in a normal test run.
#[test]
fn child_entry() {
    let Ok(role) = std::env::var(ROLE) else {
        return;
    };
    let path = std::env::var(PATH).unwrap();
    let v = Vault::options()
        .durability(Durability::Full)
        .open_existing(&path)
        .unwrap();
    let mut s = v.unlock("agent", pw()).unwrap();
    match role.as_str() {
        "store-loop" => loop {
            let id = s
                .store(MemoryInput::text("loop memory").tag("loop"))
                .unwrap();
            println!("ID {id}");
        },
        r if r.starts_with("store-n:") => {
            let n: usize = r[8..].parse().unwrap();
            for i in 0..n {
                let id = s
                    .store(MemoryInput::text(format!(
                        "writer {} item {i}",
                        std::process::id()
                    )))
                    .unwrap();
                println!("ID {id}");
            }
        }
        "rotate" => {
            s.rotate(&[Enrollment::passphrase_with("pw", fast())], 25, &mut |p| {
                println!("PROGRESS {} {}", p.done, p.total);
            })
            .unwrap();
            println!("DONE");
        }
        other => panic!("unknown role {other}"),
    }
}

/// The id in a child's `ID <uuid>` line (libtest may prefix the first line).
fn parse_id(line: &str) -> Option<MemoryId> {
    let i = line.find("ID ")?;
    line.get(i + 3..i + 39)?.parse().ok()
}

fn pseudo_random(lo: usize, hi: usize) -> usize {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as usize;
    lo + n % (hi - lo)
}

fn check_all(path: &Path, ids: &[MemoryId]) {
    let v = Vault::open(path).unwrap();
    let mut s = v.unlock("agent", pw()).unwrap();
    for id in ids {
        s.recall(*id, RecallRequest::new("after crash")).unwrap();
    }
    let r = s.verify(false, &[]).unwrap();
    assert!(r.is_ok(), "{:?}", r.first_problem);
    let memories: i64 = v
        .connection()
        .query_row("SELECT count(*) FROM memories", [], |r| r.get(0))
        .unwrap();
    let stores = event_kinds(&v)
        .iter()
        .filter(|k| *k == "memory.store")
        .count();
    assert_eq!(
        memories as usize, stores,
        "every memory has its leaf and every leaf its memory"
    );
}

#[test]
fn kill_9_during_store_loop_loses_no_committed_memory() {
    let f = Fixture::new();
    drop(f.with_profile());
    for round in 0..2 {
        let mut child = spawn("store-loop", &f.path);
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let stop = pseudo_random(5, 60);
        let mut ids = Vec::new();
        let mut line = String::new();
        while ids.len() < stop {
            line.clear();
            assert!(out.read_line(&mut line).unwrap() > 0, "child died early");
            if let Some(id) = parse_id(&line) {
                ids.push(id);
            }
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        // Lines printed before the kill were committed too.
        for l in out.lines() {
            if let Some(id) = parse_id(&l.unwrap()) {
                ids.push(id);
            }
        }
        assert!(ids.len() >= stop, "round {round}");
        check_all(&f.path, &ids);
    }
}

#[test]
fn two_processes_write_concurrently() {
    let f = Fixture::new();
    drop(f.with_profile());
    let children: Vec<Child> = (0..2).map(|_| spawn("store-n:40", &f.path)).collect();
    let mut ids = Vec::new();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success());
        for l in String::from_utf8(out.stdout).unwrap().lines() {
            if let Some(id) = parse_id(l) {
                ids.push(id);
            }
        }
    }
    assert_eq!(ids.len(), 80);
    check_all(&f.path, &ids);
}

#[test]
fn kill_9_during_rotation_reopens_and_resumes() {
    let f = Fixture::new();
    drop(f.with_profile());
    let ids = {
        let v = Vault::open(&f.path).unwrap();
        let mut s = v.unlock("agent", pw()).unwrap();
        let (rec, _) = s.create_recovery_key("esc").unwrap();
        drop(rec);
        s.store_batch(
            (0..300)
                .map(|i| MemoryInput::text(format!("rotating {i}")).tag("r"))
                .collect(),
        )
        .unwrap()
    };
    let mut child = spawn("rotate", &f.path);
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let stop = pseudo_random(1, 250) as u64;
    let mut line = String::new();
    loop {
        line.clear();
        assert!(
            out.read_line(&mut line).unwrap() > 0,
            "child ended before the kill point"
        );
        let Some(i) = line.find("PROGRESS ") else {
            continue;
        };
        let mut it = line[i..].split_whitespace();
        if it.next() == Some("PROGRESS") && it.next().unwrap().parse::<u64>().unwrap() >= stop {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    {
        // Reopens with the old key; every memory is readable on whichever epoch it is.
        let v = Vault::open(&f.path).unwrap();
        let mut s = v.unlock("agent", pw()).unwrap();
        let epochs: Vec<i64> = v
            .connection()
            .prepare("SELECT DISTINCT key_epoch FROM memories ORDER BY 1")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert!(s.rotation_pending() || epochs == vec![2], "{epochs:?}");
        for id in &ids {
            s.recall(*id, RecallRequest::new("mid-rotation")).unwrap();
        }
        assert_eq!(
            s.search(&vault_store::SearchQuery::new("rotating").limit(1000))
                .unwrap()
                .len(),
            300
        );
        let report = s.rotate(&[], 40, &mut |_| {}).unwrap();
        assert_eq!((report.from_epoch, report.to_epoch), (1, 2));
        assert_eq!(report.invalidated_escrows, vec!["esc".to_string()]);
        assert!(!s.rotation_pending());
    }
    let v = Vault::open(&f.path).unwrap();
    let epochs: i64 = v
        .connection()
        .query_row(
            "SELECT count(*) FROM memories WHERE key_epoch <> 2",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(epochs, 0);
    assert!(matches!(
        v.unlock("agent", KeySource::passphrase("wrong")),
        Err(vault_store::VaultError::WrongKey { .. })
    ));
    check_all(&f.path, &ids);
}
