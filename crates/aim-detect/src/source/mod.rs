//! Capabilities from Rust source: action names in `#[aim::action("...")]` attributes and
//! `perform_action("...", ...)` calls, mapped through the action tables.

mod guard;
mod visit;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::fsread::{self, MAX_RUST_FILE_BYTES};
use crate::report::{
    CapabilityFinding, Evidence, SourceRecord, SourceStatus, Warning, WarningKind,
};
use crate::tables;

/// Stack of each scan worker: generous, so that what passes the nesting guard always parses.
pub(crate) const WORKER_STACK_BYTES: usize = 64 * 1024 * 1024;
/// Most `.rs` files scanned in one project.
pub const MAX_SOURCE_FILES: usize = 200_000;
/// Most worker threads.
const MAX_WORKERS: usize = 8;

/// Result of the source scan.
#[derive(Debug, Default)]
pub(crate) struct SourceScan {
    pub(crate) capabilities: Vec<CapabilityFinding>,
    pub(crate) warnings: Vec<Warning>,
    pub(crate) sources: Vec<SourceRecord>,
}

/// Scans every `.rs` file under `root` (see [`collect_files`] for what is skipped).
pub(crate) fn scan(root: &Path) -> SourceScan {
    let mut out = SourceScan::default();
    let files = collect_files(root, &mut out);
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, FileResult)>> = Mutex::new(Vec::with_capacity(files.len()));
    let workers = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .clamp(1, MAX_WORKERS)
        .min(files.len().max(1));
    std::thread::scope(|s| {
        let mut handles = Vec::new();
        for _ in 0..workers {
            let spawned = std::thread::Builder::new()
                .name("aim-detect-scan".into())
                .stack_size(WORKER_STACK_BYTES)
                .spawn_scoped(s, || {
                    let mut local = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(path) = files.get(i) else { break };
                        local.push((i, scan_one(root, path)));
                    }
                    if let Ok(mut all) = results.lock() {
                        all.extend(local);
                    }
                });
            match spawned {
                Ok(h) => handles.push(h),
                Err(e) => out.warnings.push(Warning {
                    path: None,
                    line: None,
                    kind: WarningKind::Incomplete,
                    message: format!("could not start a scan thread: {e}"),
                }),
            }
        }
        for h in handles {
            if h.join().is_err() {
                out.warnings.push(Warning {
                    path: None,
                    line: None,
                    kind: WarningKind::Incomplete,
                    message: "a scan thread failed; some files were not scanned".into(),
                });
            }
        }
    });
    let mut results = results.into_inner().unwrap_or_default();
    results.sort_by_key(|(i, _)| *i);
    for (_, r) in results {
        out.capabilities.extend(r.capabilities);
        out.warnings.extend(r.warnings);
    }
    out
}

#[derive(Debug, Default)]
struct FileResult {
    capabilities: Vec<CapabilityFinding>,
    warnings: Vec<Warning>,
}

fn scan_one(root: &Path, path: &Path) -> FileResult {
    let mut r = FileResult::default();
    let text = match fsread::read_text(path, MAX_RUST_FILE_BYTES) {
        Ok(Some(t)) => t,
        Ok(None) => return r,
        Err(skip) => {
            r.warnings.push(skip.warning(path));
            return r;
        }
    };
    // Every form we collect contains the word "action"; the rest need no parse.
    if !text.contains("action") {
        return r;
    }
    if let Some(pos) = guard::exceeds(&text, guard::MAX_NESTING) {
        r.warnings.push(Warning::at_line(
            path,
            fsread::line_of(&text, pos),
            WarningKind::TooDeep,
            format!("skipped: nested deeper than {} levels", guard::MAX_NESTING),
        ));
        return r;
    }
    let tokens: proc_macro2::TokenStream = match text.parse() {
        Ok(t) => t,
        Err(e) => {
            r.warnings.push(Warning::at_line(
                path,
                e.span().start().line,
                WarningKind::Malformed,
                format!("skipped: not valid Rust tokens: {e}"),
            ));
            return r;
        }
    };
    let (found, problems) = visit::scan_tokens(tokens);
    let rel = relative(root, path);
    for p in problems {
        r.warnings.push(Warning::at_line(
            path,
            p.line,
            WarningKind::NonLiteralAction,
            p.message,
        ));
    }
    for a in found {
        let (capability, mapping) = tables::action_capability(&a.name);
        r.capabilities.push(CapabilityFinding {
            capability,
            evidence: Evidence::SourceAction {
                file: rel.clone(),
                line: a.line,
                column: a.column,
                action: a.name,
                form: a.form,
                mapping,
            },
        });
    }
    r
}

/// `path` relative to `root`, `/`-separated.
pub(crate) fn relative(root: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(root).unwrap_or(path);
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// Lists `.rs` files under `root`, skipping `target/`, `node_modules/`, hidden directories,
/// symbolic links to directories, and packages of this toolkit (a directory whose
/// `Cargo.toml` names an `aim`, `aim-*` or `vault-*` package).
fn collect_files(root: &Path, out: &mut SourceScan) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        if let Some(name) = own_package_in(&dir) {
            out.sources.push(SourceRecord {
                what: format!("Rust sources of `{name}` (part of this toolkit, not evidence)"),
                path: dir.display().to_string(),
                status: SourceStatus::Skipped,
            });
            continue;
        }
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) => {
                out.warnings.push(Warning::at(
                    &dir,
                    WarningKind::Unreadable,
                    format!("skipped: cannot list: {e}"),
                ));
                continue;
            }
        };
        let mut names: Vec<(PathBuf, std::fs::FileType)> = entries
            .filter_map(Result::ok)
            .filter_map(|e| e.file_type().ok().map(|t| (e.path(), t)))
            .collect();
        names.sort_by(|a, b| a.0.cmp(&b.0));
        for (path, ty) in names.into_iter().rev() {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if ty.is_dir() {
                if name.starts_with('.') || name == "target" || name == "node_modules" {
                    continue;
                }
                stack.push(path);
            } else if name.ends_with(".rs") && (ty.is_file() || ty.is_symlink()) {
                if files.len() >= MAX_SOURCE_FILES {
                    out.warnings.push(Warning::at(
                        root,
                        WarningKind::Incomplete,
                        format!(
                            "more than {MAX_SOURCE_FILES} Rust files; the rest were not scanned"
                        ),
                    ));
                    return files;
                }
                files.push(path);
            }
        }
    }
    files.sort();
    out.sources.push(SourceRecord {
        what: format!("Rust sources ({} files)", files.len()),
        path: root.display().to_string(),
        status: SourceStatus::Read,
    });
    files
}

/// The package name when `dir/Cargo.toml` declares a package of this toolkit.
fn own_package_in(dir: &Path) -> Option<String> {
    let text = fsread::read_text(&dir.join("Cargo.toml"), fsread::MAX_CONFIG_BYTES).ok()??;
    let table: toml::Table = toml::from_str(&text).ok()?;
    let name = table.get("package")?.get("name")?.as_str()?;
    tables::is_own_package(name).then(|| name.to_owned())
}
