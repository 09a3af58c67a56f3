//! Running commands with a visible banner and a clear failure message.

use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

/// Runs `cargo ARGS`, streaming its output; fails with the command line when it fails.
pub(crate) fn cargo(args: &[&str]) -> Result<()> {
    run_env("cargo", args, &[])
}

/// Runs `program ARGS`, streaming its output.
pub(crate) fn run(program: &str, args: &[&str]) -> Result<()> {
    run_env(program, args, &[])
}

/// Runs `program ARGS` with extra environment variables, streaming its output.
pub(crate) fn run_env(program: &str, args: &[&str], env: &[(&str, &str)]) -> Result<()> {
    let line = format!("{program} {}", args.join(" "));
    eprintln!("\n==> {line}");
    let status = Command::new(program)
        .args(args)
        .envs(env.iter().copied())
        .status()
        .with_context(|| format!("could not start `{program}` (is it installed?)"))?;
    if !status.success() {
        bail!("`{line}` failed ({status})");
    }
    Ok(())
}

/// True when `program ARGS` runs and exits successfully (output discarded).
pub(crate) fn succeeds(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}
