//! Shared helpers: copy a fixture tree into a temporary directory so that scans never see the
//! real machine or this repository's own `Cargo.toml`.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use aim_detect::{DetectEnv, Os};

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("fixtures")
}

pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let dest = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &dest);
        } else {
            std::fs::copy(entry.path(), dest).unwrap();
        }
    }
}

/// A copy of the workspace, home and system-root fixtures, and an environment pointing at them.
pub struct Machine {
    pub dir: tempfile::TempDir,
    pub project: PathBuf,
    pub home: PathBuf,
    pub sysroot: PathBuf,
}

impl Machine {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let base = std::fs::canonicalize(dir.path()).unwrap();
        let project = base.join("project");
        let home = base.join("home");
        let sysroot = base.join("sysroot");
        copy_tree(&fixtures().join("workspace"), &project);
        copy_tree(&fixtures().join("home"), &home);
        copy_tree(&fixtures().join("sysroot"), &sysroot);
        let state = home.join(".claude.json");
        let text = std::fs::read_to_string(&state).unwrap();
        let project_json = serde_json::to_string(&project.display().to_string()).unwrap();
        std::fs::write(&state, text.replace("\"__PROJECT__\"", &project_json)).unwrap();
        Self {
            dir,
            project,
            home,
            sysroot,
        }
    }

    pub fn env(&self) -> DetectEnv {
        DetectEnv::isolated(&self.home, &self.project, Os::Linux, &self.sysroot)
            .with_var("VIRTUAL_ENV", self.home.join("venv").display().to_string())
    }
}
