//! Cargo subcommands the checks need, installed with `cargo install` when missing.
//!
//! `cargo install` needs no root, so `cargo xtask ci` installs what it needs itself; a fresh
//! clone on a machine with only a Rust toolchain gets every tool from crates.io.

use anyhow::{Context, Result};

use crate::cmd;

/// A cargo subcommand, the crate that provides it and the version we checked.
pub(crate) struct CargoTool {
    /// The subcommand (`cargo <subcommand> --version` tells whether it is installed).
    pub(crate) subcommand: &'static str,
    /// The crates.io package to install.
    pub(crate) package: &'static str,
    /// The version the project was checked with.
    pub(crate) version: &'static str,
    /// Roughly how long `cargo install` takes on two cores, for the progress line.
    pub(crate) install_time: &'static str,
}

/// cargo-deny: licences, bans, sources and RustSec advisories.
pub(crate) const CARGO_DENY: CargoTool = CargoTool {
    subcommand: "deny",
    package: "cargo-deny",
    version: "0.20.2",
    install_time: "about 3 minutes",
};

impl CargoTool {
    /// True when `cargo <subcommand>` runs.
    pub(crate) fn installed(&self) -> bool {
        cmd::succeeds("cargo", &[self.subcommand, "--version"])
    }

    /// Installs the tool with `cargo install --locked` when it is missing.
    pub(crate) fn ensure(&self) -> Result<()> {
        if self.installed() {
            return Ok(());
        }
        eprintln!(
            "==> installing {} {} ({} on 2 cores)",
            self.package, self.version, self.install_time
        );
        cmd::cargo(&[
            "install",
            self.package,
            "--version",
            self.version,
            "--locked",
        ])
        .with_context(|| {
            format!(
                "could not install {}; run: cargo install {} --version {} --locked",
                self.package, self.package, self.version
            )
        })
    }
}
