//! Project chores, run as `cargo xtask <task>`.
//!
//! * `ci`      — everything CI checks, in order, failing fast: system packages, fmt, clippy,
//!   tests (nextest when installed, plus doctests), docs, cargo-deny, the Python SDK interop test.
//! * `bench`   — criterion benchmarks and load generators, printing medians and ratios.
//! * `fuzz`    — every `cargo fuzz` target for a bounded time (needs the nightly toolchain).
//! * `interop` — the official AIM Python SDK driven against our server.
//! * `quickstart` — the main job: `aim server` on embedded SQLite plus the Rust quickstart.

mod bench;
mod ci;
mod cmd;
mod deny;
mod fuzz;
mod postgres;
mod quickstart;
mod system;
mod tools;

use std::path::PathBuf;

use anyhow::{Result, bail};

const HELP: &str = "\
cargo xtask <task> [options]

Tasks:
  ci [--advisory-db PATH] [--skip-interop]
        fmt, clippy, tests, docs, cargo-deny and the SDK interop test, failing fast.
        Installs what it needs: system packages (as root on Debian; otherwise it
        prints the apt-get line) and cargo-deny (cargo install, no root needed).
        The RustSec database is taken from --advisory-db, else $AIM_ADVISORY_DB,
        else ../shared/advisory-db when it exists (offline); otherwise it is fetched.
  bench [-p CRATE]... [FILTER]
        criterion benchmarks and load generators of the workspace (or of the given crates);
        prints a summary of medians, throughput, targets and RESULT lines.
  fuzz [--seconds N] [TARGET]
        runs each fuzz target (or TARGET) for N seconds (default 30) with cargo +nightly fuzz.
  interop
        installs the pinned official aim-sdk from PyPI into a virtualenv and drives it
        against our server on a loopback port.
  quickstart [--serve]
        the main job: builds `aim`, starts `aim server` on its embedded SQLite default
        (fresh data dir under target/quickstart, free loopback port), runs the Rust
        quickstart (register, approved, denied, approved by a person), shows the audit
        log, then stops the server (or keeps serving with --serve).
  deny [--advisory-db PATH]
        cargo deny check (licences, bans, sources, advisories), offline when a local
        advisory database is found (same discovery as ci).
  postgres
        starts a throwaway PostgreSQL cluster (data under target/xtask, free loopback
        port, password auth), prints AIM_TEST_DATABASE_URL=..., stops it on Enter.
  system-deps
        checks (and, as root on Debian, installs) the system packages the build needs.
";

fn main() {
    if let Err(err) = run() {
        eprintln!("\nxtask: error: {err:#}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let task = args.next();
    let rest: Vec<String> = args.collect();
    let root = workspace_root()?;
    std::env::set_current_dir(&root)?;
    match task.as_deref() {
        Some("ci") => ci::run(&root, &rest),
        Some("bench") => bench::run(&root, &rest),
        Some("fuzz") => fuzz::run(&root, &rest),
        Some("interop") => interop(&root),
        Some("quickstart") => quickstart::run(&root, &rest),
        Some("system-deps") => system::ensure_packages(),
        Some("postgres") => postgres::serve(&root),
        Some("deny") => {
            let flag = match rest.as_slice() {
                [f, path] if f == "--advisory-db" => Some(path.as_str()),
                [] => None,
                _ => bail!("usage: cargo xtask deny [--advisory-db PATH]"),
            };
            deny::check(&root, &deny::AdvisorySource::discover(&root, flag)?)
        }
        Some("help" | "-h" | "--help") | None => {
            print!("{HELP}");
            Ok(())
        }
        Some(other) => bail!("unknown task `{other}`\n\n{HELP}"),
    }
}

fn interop(root: &std::path::Path) -> Result<()> {
    let script = root.join("xtask/interop/run.sh");
    if !script.exists() {
        bail!(
            "the interop test is not in this checkout yet ({})",
            script.display()
        );
    }
    cmd::run("bash", &[script.to_string_lossy().as_ref()])
}

/// Cargo's target directory (`CARGO_TARGET_DIR` or `ROOT/target`).
pub(crate) fn target_dir(root: &std::path::Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from)
}

/// The directory holding the workspace `Cargo.toml` (the parent of `xtask/`).
fn workspace_root() -> Result<PathBuf> {
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    match manifest_dir.parent() {
        Some(parent) => Ok(parent.to_path_buf()),
        None => bail!("xtask is not inside a workspace"),
    }
}
