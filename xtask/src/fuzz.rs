//! `cargo xtask fuzz`: runs every cargo-fuzz target for a bounded time.
//!
//! Fuzz targets live in `fuzz/` (its own workspace, built by `cargo +nightly fuzz`); stable Rust
//! cannot run libFuzzer, so this task checks for the nightly toolchain and cargo-fuzz first.

use std::path::Path;

use anyhow::{Context, Result, bail};

use crate::cmd;

/// Runs `cargo +nightly fuzz run TARGET -- -max_total_time=N` for each target.
pub(crate) fn run(root: &Path, args: &[String]) -> Result<()> {
    let mut seconds = 30u32;
    let mut only: Option<String> = None;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--seconds" => {
                seconds = it
                    .next()
                    .context("--seconds needs a number")?
                    .parse()
                    .context("--seconds needs a whole number")?;
            }
            other if !other.starts_with('-') => only = Some(other.to_string()),
            other => bail!("unknown option for fuzz: {other}"),
        }
    }
    if !cmd::succeeds("cargo", &["+nightly", "--version"]) {
        bail!("the nightly toolchain is missing; fuzzing needs `cargo +nightly` (libFuzzer)");
    }
    if !cmd::succeeds("cargo", &["+nightly", "fuzz", "--version"]) {
        cmd::cargo(&["install", "cargo-fuzz", "--locked"])?;
    }
    let fuzz_dir = root.join("fuzz");
    let targets = list_targets(&fuzz_dir)?;
    if targets.is_empty() {
        bail!(
            "no fuzz targets found in {}",
            fuzz_dir.join("fuzz_targets").display()
        );
    }
    let max_time = format!("-max_total_time={seconds}");
    for target in targets
        .iter()
        .filter(|t| only.as_deref().is_none_or(|o| o == t.as_str()))
    {
        cmd::cargo(&[
            "+nightly",
            "fuzz",
            "run",
            "--fuzz-dir",
            "fuzz",
            target,
            "--",
            &max_time,
        ])?;
    }
    Ok(())
}

fn list_targets(fuzz_dir: &Path) -> Result<Vec<String>> {
    let dir = fuzz_dir.join("fuzz_targets");
    let mut targets = Vec::new();
    if !dir.is_dir() {
        return Ok(targets);
    }
    for entry in std::fs::read_dir(&dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "rs")
            && let Some(stem) = path.file_stem()
        {
            targets.push(stem.to_string_lossy().into_owned());
        }
    }
    targets.sort();
    Ok(targets)
}
