//! The Rust source scan (nesting guard, lexer, token walk, `use` and literal parsing) on
//! arbitrary text: never a panic or a stack overflow, whatever the nesting.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use aim_detect::{DetectEnv, Detector, Os};
use libfuzzer_sys::fuzz_target;

fn base() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("aim-detect-fuzz-rust-{}", std::process::id()));
        std::fs::create_dir_all(d.join("project/src")).expect("temp dir");
        std::fs::create_dir_all(d.join("home")).expect("temp dir");
        d
    })
}

fuzz_target!(|data: &[u8]| {
    let base = base();
    let project = base.join("project");
    // Make sure the scan lexes the file: every input "mentions" an action.
    let mut text = b"// action\n".to_vec();
    text.extend_from_slice(data);
    std::fs::write(project.join("src/lib.rs"), &text).expect("write");
    let env = DetectEnv::isolated(base.join("home"), &project, Os::Linux, base.join("home"));
    let report = Detector::new(env).scan(&project).expect("the root exists");
    for c in &report.capabilities {
        assert!(!c.capability.is_empty());
    }
});
