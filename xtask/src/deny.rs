//! `cargo deny check` with the RustSec database taken from a local copy when one is given.
//!
//! cargo-deny wants the database as a git checkout at `<db-path>/advisory-db-<hash of URL>`; the
//! workplace copy (`../shared/advisory-db`) is plain files. We copy it into `target/xtask/` as a
//! one-commit git repository and point a generated copy of `deny.toml` at it, then run offline.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::cmd;

/// Directory name cargo-deny derives from the default advisory URL
/// (`https://github.com/rustsec/advisory-db`).
const DEFAULT_DB_DIR: &str = "advisory-db-3157b0e258782691";

/// Where the advisory database comes from.
pub(crate) enum AdvisorySource {
    /// A local copy (plain folder or git checkout): run offline.
    Local(PathBuf),
    /// No local copy: let cargo-deny fetch it.
    Online,
}

impl AdvisorySource {
    /// `--advisory-db`, else `$AIM_ADVISORY_DB`, else `../shared/advisory-db` beside the checkout.
    pub(crate) fn discover(root: &Path, flag: Option<&str>) -> Result<Self> {
        if let Some(path) = flag {
            return Self::local(PathBuf::from(path), "--advisory-db");
        }
        if let Ok(path) = std::env::var("AIM_ADVISORY_DB")
            && !path.is_empty()
        {
            return Self::local(PathBuf::from(path), "AIM_ADVISORY_DB");
        }
        let workplace = root.join("../shared/advisory-db");
        if workplace.join("crates").is_dir() {
            return Ok(Self::Local(workplace));
        }
        Ok(Self::Online)
    }

    fn local(path: PathBuf, origin: &str) -> Result<Self> {
        if !path.join("crates").is_dir() {
            bail!(
                "{origin} = {} is not a RustSec advisory database (no `crates/` folder in it)",
                path.display()
            );
        }
        Ok(Self::Local(path))
    }
}

/// Runs every cargo-deny check (licences, bans, sources, advisories).
pub(crate) fn check(root: &Path, source: &AdvisorySource) -> Result<()> {
    crate::tools::CARGO_DENY.ensure()?;
    match source {
        AdvisorySource::Online => cmd::cargo(&["deny", "check"]),
        AdvisorySource::Local(db) => {
            let work = root.join("target/xtask/deny");
            let db_path = work.join("advisory-dbs");
            prepare_git_copy(db, &db_path.join(DEFAULT_DB_DIR))?;
            let config = work.join("deny.toml");
            write_config(&root.join("deny.toml"), &config, &db_path)?;
            let config_arg = config.to_string_lossy().into_owned();
            eprintln!("==> advisories from the local copy {}", db.display());
            // `--offline` also keeps cargo metadata offline: download every crate first.
            cmd::cargo(&["fetch", "--quiet"])?;
            cmd::cargo(&["deny", "--offline", "--config", &config_arg, "check"])
        }
    }
}

/// Copies the database into `dest` as a git repository with one commit (skipped when `dest`
/// already holds a copy of the same source).
fn prepare_git_copy(src: &Path, dest: &Path) -> Result<()> {
    let stamp = dest.join(".xtask-source");
    let wanted = src.canonicalize().unwrap_or_else(|_| src.to_path_buf());
    let wanted = wanted.to_string_lossy().into_owned();
    if std::fs::read_to_string(&stamp).is_ok_and(|s| s == wanted) && dest.join(".git").is_dir() {
        return Ok(());
    }
    if dest.exists() {
        std::fs::remove_dir_all(dest).with_context(|| format!("removing {}", dest.display()))?;
    }
    std::fs::create_dir_all(dest)?;
    if src.join(".git").is_dir() {
        let (s, d) = (src.to_string_lossy(), dest.to_string_lossy());
        cmd::run("git", &["clone", "--quiet", "--local", &s, &d])?;
    } else {
        copy_dir(src, dest)?;
        let d = dest.to_string_lossy();
        let git = |args: &[&str]| {
            let mut full = vec![
                "-C",
                &d,
                "-c",
                "user.name=xtask",
                "-c",
                "user.email=xtask@localhost",
            ];
            full.extend_from_slice(args);
            cmd::run("git", &full)
        };
        git(&["init", "--quiet"])?;
        git(&["add", "--all"])?;
        git(&["commit", "--quiet", "-m", "advisory-db snapshot"])?;
    }
    std::fs::write(&stamp, wanted)?;
    Ok(())
}

fn copy_dir(src: &Path, dest: &Path) -> Result<()> {
    for entry in std::fs::read_dir(src).with_context(|| format!("reading {}", src.display()))? {
        let entry = entry?;
        let target = dest.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            std::fs::create_dir_all(&target)?;
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

/// Writes `deny.toml` with `[advisories] db-path` pointing at the local copy.
fn write_config(template: &Path, out: &Path, db_path: &Path) -> Result<()> {
    let text = std::fs::read_to_string(template)
        .with_context(|| format!("reading {}", template.display()))?;
    let marker = "[advisories]";
    let Some(at) = text.find(marker) else {
        bail!("{} has no [advisories] section", template.display());
    };
    let insert = format!("\ndb-path = {:?}", db_path.to_string_lossy());
    let mut patched = text.clone();
    patched.insert_str(at + marker.len(), &insert);
    std::fs::write(out, patched)?;
    Ok(())
}
