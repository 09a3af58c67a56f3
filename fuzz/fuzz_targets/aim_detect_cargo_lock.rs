//! The Cargo path end to end: arbitrary bytes as the workspace `Cargo.toml`, `Cargo.lock` and a
//! member's `Cargo.toml` (split at NUL bytes), scanned from a temporary directory. Bad input
//! must become warnings, never a panic.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use aim_detect::{DetectEnv, Detector, Os};
use libfuzzer_sys::fuzz_target;

fn base() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("aim-detect-fuzz-cargo-{}", std::process::id()));
        std::fs::create_dir_all(d.join("project/member")).expect("temp dir");
        std::fs::create_dir_all(d.join("home")).expect("temp dir");
        d
    })
}

fuzz_target!(|data: &[u8]| {
    let base = base();
    let project = base.join("project");
    let mut parts = data.splitn(3, |b| *b == 0);
    let root = parts.next().unwrap_or_default();
    let lock = parts.next().unwrap_or_default();
    let member = parts.next().unwrap_or_default();
    std::fs::write(project.join("Cargo.toml"), root).expect("write");
    std::fs::write(project.join("Cargo.lock"), lock).expect("write");
    std::fs::write(project.join("member/Cargo.toml"), member).expect("write");
    let env = DetectEnv::isolated(base.join("home"), &project, Os::Linux, base.join("home"));
    let report = Detector::new(env).scan(&project).expect("the root exists");
    let _ = serde_json::to_string(&report).expect("reports serialize");
});
