//! `RESULT detect.scan_100k_loc_300_deps`: time to scan a generated workspace of 100,000 lines
//! of Rust in 10 crates and a `Cargo.lock` of 300 packages (target: 1 s).
//!
//! Plain `main` (harness = false): builds the tree in a temporary directory, runs the full
//! detector several times with an empty home, prints the median.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use aim_detect::{DetectEnv, Detector, Os};

const CRATES: usize = 10;
const FILES_PER_CRATE: usize = 50;
const LINES_PER_FILE: usize = 200;
const PACKAGES: usize = 300;
const RUNS: usize = 7;
const TARGET: Duration = Duration::from_millis(1000);

/// Deterministic pseudo-random numbers (no dependency, same tree every run).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) as usize) % n.max(1)
    }
}

const ACTIONS: &[&str] = &[
    "read_database",
    "send_email",
    "call_api",
    "write_file",
    "approve_loan",
    "fetchInbox",
];

/// One source file of exactly `LINES_PER_FILE` lines: actions, calls and ordinary code.
fn source_file(rng: &mut Lcg) -> String {
    let mut s = String::from("use aim::action as guard;\nuse std::collections::HashMap;\n");
    let mut lines = 2;
    let mut i = 0;
    while lines + 10 <= LINES_PER_FILE {
        let a = ACTIONS[rng.next(ACTIONS.len())];
        let b = ACTIONS[rng.next(ACTIONS.len())];
        writeln!(s, "#[guard(\"{a}\")]").unwrap();
        writeln!(s, "pub async fn handler_{i}(client: &Client, m: &mut HashMap<String, Vec<u8>>) -> Result<(), Error> {{").unwrap();
        writeln!(s, "    let key = format!(\"k{{}}\", {i});").unwrap();
        writeln!(
            s,
            "    if let Some(v) = m.get_mut(&key) {{ v.push({}); }}",
            i % 256
        )
        .unwrap();
        writeln!(
            s,
            "    let r = client.perform_action(\"{b}\", Some(&key)).await?;"
        )
        .unwrap();
        writeln!(
            s,
            "    for (k, v) in m.iter() {{ if v.len() > {i} {{ tracing::info!(\"{{k}}\"); }} }}"
        )
        .unwrap();
        writeln!(s, "    let total: usize = m.values().map(|v| v.iter().map(|b| *b as usize).sum::<usize>()).sum();").unwrap();
        writeln!(
            s,
            "    match total % 3 {{ 0 => r.ok(), 1 => r.retry(), _ => r.fail(\"x\") }}"
        )
        .unwrap();
        writeln!(s, "    Ok(())").unwrap();
        writeln!(s, "}}").unwrap();
        lines += 10;
        i += 1;
    }
    while lines < LINES_PER_FILE {
        s.push_str("// padding\n");
        lines += 1;
    }
    s
}

fn build(root: &Path) -> usize {
    let mut rng = Lcg(42);
    let mut ws = String::from(
        "[workspace]\nmembers = [\"crates/*\"]\n\n[workspace.dependencies]\nhttp = { package = \"reqwest\", version = \"0.13\" }\n",
    );
    ws.push('\n');
    std::fs::write(root.join("Cargo.toml"), ws).unwrap();
    // 300 registry packages: crate-table names first, then filler, with a random DAG.
    let table: Vec<&str> = aim_detect::tables::CRATE_RULES
        .iter()
        .map(|r| r.pattern)
        .filter(|p| !p.ends_with('*'))
        .collect();
    let names: Vec<String> = (0..PACKAGES)
        .map(|i| {
            table
                .get(i)
                .map_or_else(|| format!("filler-{i}"), |s| (*s).to_owned())
        })
        .collect();
    let mut lock = String::from("version = 4\n\n");
    let mut total_lines = 0;
    for c in 0..CRATES {
        let name = format!("member-{c}");
        let dir = root.join("crates").join(&name);
        std::fs::create_dir_all(dir.join("src")).unwrap();
        let mut manifest = format!(
            "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\n\n[dependencies]\nhttp.workspace = true\n"
        );
        let mut deps = vec!["reqwest".to_owned()];
        for _ in 0..8 {
            let d = &names[rng.next(PACKAGES)];
            if !deps.contains(d) {
                writeln!(manifest, "{d} = \"1\"").unwrap();
                deps.push(d.clone());
            }
        }
        std::fs::write(dir.join("Cargo.toml"), manifest).unwrap();
        lock.push_str(&format!(
            "[[package]]\nname = \"{name}\"\nversion = \"0.1.0\"\ndependencies = [{}]\n\n",
            deps.iter()
                .map(|d| format!("\"{d}\""))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        for f in 0..FILES_PER_CRATE {
            let text = source_file(&mut rng);
            total_lines += text.lines().count();
            std::fs::write(dir.join("src").join(format!("m{f}.rs")), text).unwrap();
        }
    }
    for (i, n) in names.iter().enumerate() {
        let deps: Vec<String> = (0..rng.next(5))
            .map(|_| i + 1 + rng.next(PACKAGES))
            .filter(|&j| j < PACKAGES)
            .map(|j| format!("\"{}\"", names[j]))
            .collect();
        lock.push_str(&format!(
            "[[package]]\nname = \"{n}\"\nversion = \"1.0.0\"\nsource = \"registry+https://github.com/rust-lang/crates.io-index\"\nchecksum = \"{:064x}\"\ndependencies = [{}]\n\n",
            i,
            deps.join(", ")
        ));
    }
    std::fs::write(root.join("Cargo.lock"), lock).unwrap();
    total_lines
}

/// Process CPU time (all threads) in milliseconds, from `/proc/self/stat` (Linux; 100 Hz ticks).
fn cpu_ms() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks * 10)
}

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().join("ws");
    std::fs::create_dir_all(&root).unwrap();
    let lines = build(&root);
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let detector = Detector::new(DetectEnv::isolated(
        &home,
        &root,
        Os::current(),
        dir.path().join("sysroot"),
    ));
    let mut times = Vec::with_capacity(RUNS);
    let mut caps = 0;
    let cpu_before = cpu_ms();
    for _ in 0..RUNS {
        let t = Instant::now();
        let report = detector.scan(&root).expect("scan");
        times.push(t.elapsed());
        caps = report.capabilities.len();
        assert!(report.warnings.is_empty(), "{:?}", report.warnings.first());
    }
    let cpu_per_scan = cpu_before.zip(cpu_ms()).map(|(a, b)| (b - a) / RUNS as u64);
    times.sort();
    let median = times[RUNS / 2];
    let verdict = if median <= TARGET { "PASS" } else { "MISS" };
    if let Some(cpu) = cpu_per_scan {
        eprintln!(
            "CPU time per scan (all threads): {cpu}ms; wall time also depends on machine load"
        );
    }
    eprintln!(
        "generated {lines} lines of Rust in {CRATES} crates, {PACKAGES} locked packages; {caps} capability findings"
    );
    println!(
        "RESULT detect.scan_100k_loc_300_deps median={}ms min={}ms max={}ms target<={}ms {verdict}",
        median.as_millis(),
        times[0].as_millis(),
        times[RUNS - 1].as_millis(),
        TARGET.as_millis()
    );
}
