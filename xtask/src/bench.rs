//! `cargo xtask bench`: run every benchmark, then print one summary of medians, throughput and
//! targets.
//!
//! Two kinds of figures are collected:
//! * criterion benchmarks: their median (from `target/criterion/<id>/new/estimates.json`) and
//!   throughput, for every benchmark measured in this run;
//! * `RESULT ...` lines printed by load generators (harness=false benches) for figures criterion
//!   cannot express: ratios to a baseline measured in the same run, p50/p99 latency, peak memory.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::SystemTime;

use anyhow::{Context, Result, bail};

/// A target on a criterion benchmark: `id` is `group/function[/parameter]`.
struct Target {
    id: &'static str,
    /// Minimum operations per second.
    min_ops_per_sec: f64,
    what: &'static str,
}

const TARGETS: &[Target] = &[
    Target {
        id: "crypto/request/verify",
        min_ops_per_sec: 20_000.0,
        what: "request-signature verification on one core",
    },
    // The decision engine's target is checked by its own RESULT line (benches/decision.rs).
];

/// Runs the benchmarks (optionally only those matching `filter`) and prints the summary.
pub(crate) fn run(root: &Path, rest: &[String]) -> Result<()> {
    let started = SystemTime::now();
    let mut args: Vec<String> = vec!["bench".into(), "--all-features".into()];
    let mut packages = Vec::new();
    let mut filter = None;
    let mut it = rest.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "-p" | "--package" => {
                packages.push(it.next().context("-p needs a crate name")?.clone())
            }
            other if other.starts_with('-') => bail!("unknown option for bench: {other}"),
            other => filter = Some(other.to_string()),
        }
    }
    if packages.is_empty() {
        args.push("--workspace".into());
    }
    for p in packages {
        args.push("-p".into());
        args.push(p);
    }
    if let Some(filter) = filter {
        args.push("--".into());
        args.push(filter);
    }
    eprintln!("\n==> cargo {}", args.join(" "));
    let mut child = Command::new("cargo")
        .args(&args)
        .stdout(Stdio::piped())
        .spawn()
        .context("could not start cargo bench")?;
    let mut results = Vec::new();
    if let Some(out) = child.stdout.take() {
        for line in BufReader::new(out).lines() {
            let line = line?;
            println!("{line}");
            if line.starts_with("RESULT ") {
                results.push(line);
            }
        }
    }
    let status = child.wait()?;
    if !status.success() {
        bail!("cargo bench failed ({status})");
    }
    let criterion = collect_criterion(&crate::target_dir(root).join("criterion"), started)?;
    print_summary(&criterion, &results);
    Ok(())
}

/// One criterion measurement.
struct Measured {
    id: String,
    median_ns: f64,
    /// Elements or bytes per iteration, when the benchmark declared a throughput.
    throughput: Option<(f64, &'static str)>,
}

fn collect_criterion(dir: &Path, since: SystemTime) -> Result<Vec<Measured>> {
    let mut found = Vec::new();
    if dir.is_dir() {
        walk(dir, since, &mut found)?;
    }
    found.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(found)
}

fn walk(dir: &Path, since: SystemTime, found: &mut Vec<Measured>) -> Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if !path.is_dir() {
            continue;
        }
        let estimates = path.join("new/estimates.json");
        let bench = path.join("new/benchmark.json");
        if estimates.is_file() && bench.is_file() {
            let fresh = std::fs::metadata(&estimates)?.modified()? >= since;
            if fresh && let Some(m) = read_measurement(&estimates, &bench)? {
                found.push(m);
            }
        } else {
            walk(&path, since, found)?;
        }
    }
    Ok(())
}

fn read_measurement(estimates: &Path, bench: &Path) -> Result<Option<Measured>> {
    let est = std::fs::read_to_string(estimates)?;
    let meta = std::fs::read_to_string(bench)?;
    let Some(median_ns) = json_number_after(&est, "\"median\"", "\"point_estimate\"") else {
        return Ok(None);
    };
    let Some(id) = json_string_after(&meta, "\"full_id\"") else {
        return Ok(None);
    };
    let throughput = if let Some(n) = json_number_after(&meta, "\"Elements\"", "") {
        Some((n, "ops"))
    } else {
        json_number_after(&meta, "\"Bytes\"", "").map(|n| (n, "B"))
    };
    Ok(Some(Measured {
        id,
        median_ns,
        throughput,
    }))
}

/// The number following `key` (and then `inner`, when given) in a small JSON document. Enough
/// for criterion's fixed output without pulling a JSON parser into xtask.
fn json_number_after(text: &str, key: &str, inner: &str) -> Option<f64> {
    let mut at = text.find(key)? + key.len();
    if !inner.is_empty() {
        at += text[at..].find(inner)? + inner.len();
    }
    let rest = text[at..].trim_start_matches(|c: char| c == ':' || c == '{' || c.is_whitespace());
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | '-' | 'e' | 'E' | '+')))
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

fn json_string_after(text: &str, key: &str) -> Option<String> {
    let at = text.find(key)? + key.len();
    let rest = text[at..].trim_start_matches(|c: char| c == ':' || c.is_whitespace());
    let rest = rest.strip_prefix('"')?;
    Some(rest[..rest.find('"')?].to_string())
}

fn print_summary(criterion: &[Measured], results: &[String]) {
    println!("\n================ benchmark summary (medians) ================");
    if !criterion.is_empty() {
        println!(
            "{:<44} {:>12} {:>16}",
            "criterion benchmark", "median", "throughput"
        );
        for m in criterion {
            let tput = match m.throughput {
                Some((n, "ops")) => format!("{:.0} ops/s", n * 1e9 / m.median_ns),
                Some((n, _)) => format!("{:.1} MiB/s", n * 1e9 / m.median_ns / 1_048_576.0),
                None => format!("{:.0} /s", 1e9 / m.median_ns),
            };
            println!("{:<44} {:>12} {:>16}", m.id, human_time(m.median_ns), tput);
        }
    }
    let mut checked = Vec::new();
    for t in TARGETS {
        if let Some(m) = criterion.iter().find(|m| m.id == t.id) {
            let ops = 1e9 / m.median_ns * m.throughput.map_or(1.0, |(n, _)| n);
            let ratio = ops / t.min_ops_per_sec;
            let verdict = if ratio >= 1.0 { "PASS" } else { "MISS" };
            checked.push(format!(
                "TARGET {:<32} {:>10.0}/s  target >= {:.0}/s  ratio {:.2}  {verdict}  ({})",
                t.id, ops, t.min_ops_per_sec, ratio, t.what
            ));
        }
    }
    if !checked.is_empty() {
        println!();
        for line in &checked {
            println!("{line}");
        }
    }
    if !results.is_empty() {
        println!();
        for line in results {
            println!("{line}");
        }
    }
    println!("==============================================================");
}

fn human_time(ns: f64) -> String {
    if ns >= 1e9 {
        format!("{:.2} s", ns / 1e9)
    } else if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_criterion_json() {
        let est = r#"{"mean":{"point_estimate":12.5},"median":{"confidence_interval":{"lower_bound":1.0},"point_estimate":42.25,"standard_error":0.1}}"#;
        assert_eq!(
            json_number_after(est, "\"median\"", "\"point_estimate\""),
            Some(42.25)
        );
        let meta =
            r#"{"group_id":"crypto/x","full_id":"crypto/x/seal/64","throughput":{"Bytes":64}}"#;
        assert_eq!(
            json_string_after(meta, "\"full_id\"").as_deref(),
            Some("crypto/x/seal/64")
        );
        assert_eq!(json_number_after(meta, "\"Bytes\"", ""), Some(64.0));
        assert_eq!(json_number_after(meta, "\"Elements\"", ""), None);
    }
}
