//! System packages needed by optional hardware features and by hardware tests.
//!
//! The default build of every crate needs no system library; `--all-features` (which CI uses)
//! needs `libtss2-dev` (feature `tpm`) and `libudev-dev` (feature `fido2`), and the TPM tests
//! need `swtpm`; the server's PostgreSQL tests need Debian's `postgresql` server binaries.

use anyhow::{Result, bail};

use crate::cmd;

/// A Debian package and how to tell whether it is present without dpkg.
struct Package {
    name: &'static str,
    why: &'static str,
    present: fn() -> bool,
}

const PACKAGES: &[Package] = &[
    Package {
        name: "pkg-config",
        why: "locates libtss2 and libudev",
        present: || cmd::succeeds("pkg-config", &["--version"]),
    },
    Package {
        name: "libtss2-dev",
        why: "vault-hw feature `tpm` (tss-esapi)",
        present: || cmd::succeeds("pkg-config", &["--exists", "tss2-esys", "tss2-tctildr"]),
    },
    Package {
        name: "libudev-dev",
        why: "vault-hw feature `fido2` (ctap-hid-fido2 / hidapi)",
        present: || cmd::succeeds("pkg-config", &["--exists", "libudev"]),
    },
    Package {
        name: "swtpm",
        why: "software TPM the TPM tests run against",
        present: || cmd::succeeds("swtpm", &["--version"]),
    },
    Package {
        name: "swtpm-tools",
        why: "swtpm_setup, used to manufacture a fresh software TPM state",
        // `swtpm_setup --version` exits 1; `--help` exits 0.
        present: || cmd::succeeds("swtpm_setup", &["--help"]),
    },
    Package {
        name: "postgresql",
        why: "the PostgreSQL server the server's tests run against (a throwaway cluster)",
        present: || std::path::Path::new("/usr/lib/postgresql").is_dir(),
    },
];

/// Makes sure every package is installed: installs the missing ones with apt-get when running
/// as root on Debian, otherwise stops with the exact command to run.
pub(crate) fn ensure_packages() -> Result<()> {
    let missing: Vec<&Package> = PACKAGES.iter().filter(|p| !(p.present)()).collect();
    if missing.is_empty() {
        eprintln!("==> system packages: all present");
        return Ok(());
    }
    let names: Vec<&str> = missing.iter().map(|p| p.name).collect();
    for p in &missing {
        eprintln!("==> missing system package {} ({})", p.name, p.why);
    }
    let install = format!(
        "apt-get update && apt-get install -y --no-install-recommends {}",
        names.join(" ")
    );
    let is_root = cmd::succeeds("sh", &["-c", "[ \"$(id -u)\" = 0 ]"]);
    let has_apt = cmd::succeeds("apt-get", &["--version"]);
    if !(is_root && has_apt) {
        bail!("missing system packages; run as root:\n    {install}");
    }
    let env = [("DEBIAN_FRONTEND", "noninteractive")];
    cmd::run_env("apt-get", &["update"], &env)?;
    let mut args = vec!["install", "-y", "--no-install-recommends"];
    args.extend(names.iter().copied());
    if cmd::run_env("apt-get", &args, &env).is_err() {
        // A dependency upgrade can fail half-way (seen with libgnutls30); repair and retry once.
        eprintln!("==> apt-get install failed; repairing with --fix-broken and retrying once");
        cmd::run_env("apt-get", &["--fix-broken", "install", "-y"], &env)?;
        cmd::run_env("apt-get", &args, &env)?;
    }
    let still: Vec<&str> = PACKAGES
        .iter()
        .filter(|p| !(p.present)())
        .map(|p| p.name)
        .collect();
    if !still.is_empty() {
        bail!(
            "apt-get finished but these are still missing: {}",
            still.join(", ")
        );
    }
    Ok(())
}
