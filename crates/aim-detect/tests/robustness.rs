//! Missing, unreadable, huge and malformed inputs become warnings, never crashes, and what
//! can still be used is used.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use aim_detect::{
    DetectEnv, DetectError, Detector, Evidence, MAX_CONFIG_BYTES, MAX_RUST_FILE_BYTES, Os, Report,
    Warning, WarningKind,
};

struct Tree {
    _dir: tempfile::TempDir,
    project: PathBuf,
    home: PathBuf,
}

fn tree() -> Tree {
    let dir = tempfile::tempdir().unwrap();
    let base = std::fs::canonicalize(dir.path()).unwrap();
    let project = base.join("project");
    let home = base.join("home");
    std::fs::create_dir_all(&project).unwrap();
    std::fs::create_dir_all(&home).unwrap();
    Tree {
        _dir: dir,
        project,
        home,
    }
}

fn write(path: &Path, bytes: impl AsRef<[u8]>) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

fn scan(t: &Tree) -> Report {
    let env = DetectEnv::isolated(&t.home, &t.project, Os::Linux, t.home.join("no-sysroot"));
    Detector::new(env).scan(&t.project).unwrap()
}

fn warning_for<'a>(r: &'a Report, suffix: &str) -> &'a Warning {
    r.warnings
        .iter()
        .find(|w| w.path.as_deref().is_some_and(|p| p.ends_with(suffix)))
        .unwrap_or_else(|| panic!("no warning for {suffix}: {:#?}", r.warnings))
}

#[test]
fn an_empty_machine_gives_an_empty_report_without_warnings() {
    let t = tree();
    let r = scan(&t);
    assert!(r.capabilities.is_empty() && r.mcp_servers.is_empty());
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    assert!(!r.sources.is_empty());
}

#[test]
fn a_missing_root_is_an_error() {
    let t = tree();
    let env = DetectEnv::isolated(&t.home, &t.project, Os::Linux, &t.home);
    let err = Detector::new(env.clone())
        .scan(&t.project.join("nope"))
        .unwrap_err();
    assert!(matches!(err, DetectError::BadRoot { .. }));
    write(&t.project.join("file"), "x");
    assert!(Detector::new(env).scan(&t.project.join("file")).is_err());
}

#[test]
fn unusable_mcp_configs_are_warnings_and_the_rest_still_counts() {
    let t = tree();
    // Too large.
    let big = format!(
        "{{\"mcpServers\": {{}}, \"pad\": \"{}\"}}",
        "x".repeat(MAX_CONFIG_BYTES as usize)
    );
    write(&t.project.join(".mcp.json"), big);
    // A directory where a file should be.
    std::fs::create_dir_all(t.home.join(".cursor/mcp.json")).unwrap();
    // Not UTF-8.
    write(
        &t.home.join(".codeium/windsurf/mcp_config.json"),
        [0xff, 0xfe, 0x7b],
    );
    // Nested far beyond serde_json's recursion limit.
    write(&t.home.join(".claude.json"), "[".repeat(200_000));
    // Wrong shapes inside an otherwise valid file, next to a good entry.
    write(
        &t.home.join(".config/Claude/claude_desktop_config.json"),
        r#"{"mcpServers": {"odd": {"command": ["x"], "args": {"a": 1}, "url": 5, "env": "s"},
                           "fine": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-memory", 3, null]}}}"#,
    );
    let r = scan(&t);
    assert_eq!(warning_for(&r, ".mcp.json").kind, WarningKind::TooLarge);
    assert_eq!(
        warning_for(&r, ".cursor/mcp.json").kind,
        WarningKind::Unreadable
    );
    assert_eq!(
        warning_for(&r, "windsurf/mcp_config.json").kind,
        WarningKind::Malformed
    );
    assert_eq!(warning_for(&r, ".claude.json").kind, WarningKind::Malformed);
    let names: Vec<&str> = r.mcp_servers.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, vec!["fine", "odd"]);
    let fine = &r.mcp_servers[0].details;
    assert_eq!(
        fine.args.as_ref().unwrap(),
        &["-y", "@modelcontextprotocol/server-memory", "3", "REDACTED"]
    );
    let odd_warnings = r
        .warnings
        .iter()
        .filter(|w| {
            w.path
                .as_deref()
                .is_some_and(|p| p.ends_with("claude_desktop_config.json"))
        })
        .count();
    assert_eq!(odd_warnings, 3, "{:#?}", r.warnings);
}

#[test]
fn unusable_rust_files_are_warnings_and_others_still_count() {
    let t = tree();
    let src = t.project.join("src");
    write(
        &src.join("good.rs"),
        "#[aim::action(\"send_email\")] fn f() {}\n",
    );
    write(&src.join("broken.rs"), "#[aim::action(\"x\")] fn f( {\n");
    write(&src.join("latin1.rs"), b"// action \xe9\n");
    let mut huge = String::from("// action\n");
    while huge.len() as u64 <= MAX_RUST_FILE_BYTES {
        huge.push_str("fn f() {}\n");
    }
    write(&src.join("huge.rs"), huge);
    write(
        &src.join("deep.rs"),
        format!("// action\nfn f() {{ let x = {}1; }}", "!".repeat(500_000)),
    );
    write(
        &src.join("deep2.rs"),
        format!(
            "// action\nconst X: u8 = {}1{};",
            "(".repeat(100_000),
            ")".repeat(100_000)
        ),
    );
    let r = scan(&t);
    assert_eq!(r.capability_names(), vec!["send_email"]);
    assert_eq!(warning_for(&r, "broken.rs").kind, WarningKind::Malformed);
    assert_eq!(warning_for(&r, "broken.rs").line, Some(1));
    assert_eq!(warning_for(&r, "latin1.rs").kind, WarningKind::Malformed);
    assert_eq!(warning_for(&r, "huge.rs").kind, WarningKind::TooLarge);
    assert_eq!(warning_for(&r, "deep.rs").kind, WarningKind::TooDeep);
    assert_eq!(warning_for(&r, "deep.rs").line, Some(2));
    assert_eq!(warning_for(&r, "deep2.rs").kind, WarningKind::TooDeep);
}

#[cfg(unix)]
#[test]
fn symlinked_directories_are_not_followed() {
    let t = tree();
    write(
        &t.project.join("src/lib.rs"),
        "#[aim::action(\"run_code\")] fn f() {}\n",
    );
    std::os::unix::fs::symlink(&t.project, t.project.join("src/loop")).unwrap();
    let r = scan(&t);
    assert_eq!(r.capabilities.len(), 1);
}

#[test]
fn malformed_manifest_is_a_warning_with_a_line() {
    let t = tree();
    write(
        &t.project.join("Cargo.toml"),
        "[package]\nname = \"app\"\n[dependencies\nreqwest = \"1\"\n",
    );
    let r = scan(&t);
    let w = warning_for(&r, "Cargo.toml");
    assert_eq!((w.kind, w.line), (WarningKind::Malformed, Some(3)));
    assert!(r.capabilities.is_empty());
}

#[test]
fn without_a_usable_lockfile_direct_dependencies_still_count() {
    for lock in [
        None,
        Some("not [toml"),
        Some("version = 3\n[[package]]\nname = 5\n"),
    ] {
        let t = tree();
        write(
            &t.project.join("Cargo.toml"),
            "[package]\nname = \"app\"\n[dependencies]\nhttp = { package = \"reqwest\", version = \"1\" }\n[dev-dependencies]\nsqlx = \"1\"\n",
        );
        if let Some(l) = lock {
            write(&t.project.join("Cargo.lock"), l);
        }
        let r = scan(&t);
        let crates: Vec<(String, Vec<String>)> = r
            .capabilities
            .iter()
            .filter_map(|c| match &c.evidence {
                Evidence::Dependency {
                    crate_name, chain, ..
                } => Some((crate_name.clone(), chain.clone())),
                _ => None,
            })
            .collect();
        assert_eq!(
            crates,
            vec![(
                "reqwest".to_owned(),
                vec!["app".to_owned(), "reqwest".to_owned()]
            )],
            "{lock:?}"
        );
        let w = warning_for(&r, "Cargo.lock");
        assert!(
            matches!(w.kind, WarningKind::Incomplete | WarningKind::Malformed),
            "{w:?}"
        );
    }
}

#[test]
fn deeply_nested_toml_does_not_crash() {
    let t = tree();
    write(
        &t.project.join("Cargo.toml"),
        format!("[package]\nname = \"a\"\nx = {}", "[".repeat(100_000)),
    );
    write(
        &t.project.join("Cargo.lock"),
        format!("x = {}", "{a=".repeat(100_000)),
    );
    let r = scan(&t);
    assert_eq!(warning_for(&r, "Cargo.toml").kind, WarningKind::Malformed);
}

#[test]
fn stale_lockfile_is_reported() {
    let t = tree();
    write(
        &t.project.join("Cargo.toml"),
        "[package]\nname = \"app\"\n[dependencies]\nlettre = \"1\"\n",
    );
    write(
        &t.project.join("Cargo.lock"),
        "version = 4\n[[package]]\nname = \"other\"\nversion = \"0.1.0\"\ndependencies = [\"ghost\"]\n",
    );
    let r = scan(&t);
    assert_eq!(r.capability_names(), vec!["send_email"]);
    assert!(
        r.warnings
            .iter()
            .any(|w| w.message.contains("not in Cargo.lock"))
    );
    assert!(
        r.warnings
            .iter()
            .any(|w| w.message.contains("match no package"))
    );
}

#[test]
fn capabilities_json_problems_are_warnings() {
    for (text, want) in [
        ("nope", WarningKind::Malformed),
        ("[]", WarningKind::Malformed),
        ("{}", WarningKind::Malformed),
        ("{\"capabilities\": {}}", WarningKind::Malformed),
        (
            "{\"capabilities\": [\"ok\", \"bad name with spaces\"], \"mcpServers\": 3}",
            WarningKind::Malformed,
        ),
    ] {
        let t = tree();
        write(&t.project.join(".aim/capabilities.json"), text);
        let r = scan(&t);
        assert_eq!(warning_for(&r, "capabilities.json").kind, want, "{text}");
    }
}
