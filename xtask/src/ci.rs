//! `cargo xtask ci`: every check, in order, stopping at the first failure.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::cmd;
use crate::deny::{self, AdvisorySource};
use crate::system;

/// Parses the `ci` options and runs every step.
pub(crate) fn run(root: &Path, args: &[String]) -> Result<()> {
    let mut advisory_flag = None;
    let mut skip_interop = false;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--advisory-db" => {
                advisory_flag = Some(it.next().context("--advisory-db needs a path")?.clone());
            }
            "--skip-interop" => skip_interop = true,
            other => bail!("unknown option for ci: {other}"),
        }
    }
    let advisories = AdvisorySource::discover(root, advisory_flag.as_deref())?;
    let started = Instant::now();

    step("system packages", system::ensure_packages)?;
    step("cargo tools", || crate::tools::CARGO_DENY.ensure())?;
    step("formatting", || cmd::cargo(&["fmt", "--all", "--check"]))?;
    step("clippy", || {
        cmd::cargo(&[
            "clippy",
            "--workspace",
            "--all-targets",
            "--all-features",
            "--",
            "-D",
            "warnings",
        ])
    })?;
    step("tests", run_tests)?;
    step("docs", || {
        cmd::run_env(
            "cargo",
            &["doc", "--workspace", "--no-deps", "--all-features"],
            &[("RUSTDOCFLAGS", "-D warnings")],
        )
    })?;
    step("cargo deny", || deny::check(root, &advisories))?;
    if skip_interop {
        eprintln!("\n==> interop: skipped (--skip-interop)");
    } else if root.join("xtask/interop/run.sh").exists() {
        step("Python SDK interop", || crate::interop(root))?;
    }
    eprintln!("\nci: all checks passed in {:.0?}", started.elapsed());
    Ok(())
}

fn step(name: &str, f: impl FnOnce() -> Result<()>) -> Result<()> {
    let started = Instant::now();
    eprintln!("\n=== ci: {name}");
    f().with_context(|| format!("ci step `{name}` failed"))?;
    eprintln!("=== ci: {name} ok ({:.0?})", started.elapsed());
    Ok(())
}

/// Unit, integration and doc tests of every crate with all features.
fn run_tests() -> Result<()> {
    if cmd::succeeds("cargo", &["nextest", "--version"]) {
        cmd::cargo(&[
            "nextest",
            "run",
            "--workspace",
            "--all-features",
            "--no-fail-fast",
            "--failure-output",
            "final",
        ])?;
    } else {
        eprintln!("==> cargo-nextest not installed; using cargo test");
        cmd::cargo(&[
            "test",
            "--workspace",
            "--all-features",
            "--lib",
            "--bins",
            "--tests",
        ])?;
    }
    cmd::cargo(&["test", "--workspace", "--all-features", "--doc"])
}
