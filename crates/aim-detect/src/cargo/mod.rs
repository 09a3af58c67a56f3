//! Capabilities from Cargo: every crate reachable from the project's packages through normal
//! dependencies (direct ones from the manifests, transitive ones from `Cargo.lock`), mapped
//! through the crate table, each with the chain that pulls it in.

mod lock;
mod manifest;

use std::collections::{BTreeSet, VecDeque};
use std::path::{Path, PathBuf};

pub(crate) use manifest::{DepKind, Manifest};

use crate::fsread::{self, MAX_CONFIG_BYTES};
use crate::report::{
    CapabilityFinding, Evidence, SourceRecord, SourceStatus, Warning, WarningKind,
};
use crate::tables;

/// How many parent directories are searched for an enclosing workspace.
const MAX_ANCESTORS: usize = 32;

/// Result of the Cargo scan.
#[derive(Debug, Default)]
pub(crate) struct CargoScan {
    pub(crate) capabilities: Vec<CapabilityFinding>,
    pub(crate) warnings: Vec<Warning>,
    pub(crate) sources: Vec<SourceRecord>,
}

impl CargoScan {
    fn record(&mut self, what: &str, path: &Path, status: SourceStatus) {
        self.sources.push(SourceRecord {
            what: what.to_owned(),
            path: path.display().to_string(),
            status,
        });
    }

    /// Reads and parses a manifest, turning every failure into a warning.
    fn manifest(&mut self, path: &Path, what: &str, warn_if_absent: bool) -> Option<Manifest> {
        match fsread::read_text(path, MAX_CONFIG_BYTES) {
            Ok(Some(text)) => match manifest::parse(&text) {
                Ok(m) => {
                    self.record(what, path, SourceStatus::Read);
                    Some(m)
                }
                Err(e) => {
                    self.record(what, path, SourceStatus::Skipped);
                    self.warnings.push(toml_warning(path, &e));
                    None
                }
            },
            Ok(None) => {
                self.record(what, path, SourceStatus::Absent);
                if warn_if_absent {
                    self.warnings.push(Warning::at(
                        path,
                        WarningKind::Incomplete,
                        "workspace member has no Cargo.toml",
                    ));
                }
                None
            }
            Err(skip) => {
                self.record(what, path, SourceStatus::Skipped);
                self.warnings.push(skip.warning(path));
                None
            }
        }
    }
}

fn toml_warning(path: &Path, e: &manifest::TomlError) -> Warning {
    let msg = format!("skipped: invalid TOML: {}", e.message);
    match e.line {
        Some(l) => Warning::at_line(path, l, WarningKind::Malformed, msg),
        None => Warning::at(path, WarningKind::Malformed, msg),
    }
}

/// A package of the scanned project.
struct Member {
    name: String,
    manifest_path: PathBuf,
    manifest: Manifest,
}

/// Scans the Cargo project at `root` (nothing when there is no `Cargo.toml`).
pub(crate) fn scan(root: &Path) -> CargoScan {
    let mut out = CargoScan::default();
    let root_path = root.join("Cargo.toml");
    let Some(root_manifest) = out.manifest(&root_path, "Cargo manifest", false) else {
        return out;
    };

    // The workspace: the root itself, or an enclosing one.
    let (ws_dir, ws_manifest) = if root_manifest.is_workspace {
        (root.to_path_buf(), Some(root_manifest.clone()))
    } else {
        find_enclosing_workspace(root, &mut out)
    };
    let ws_deps = ws_manifest
        .as_ref()
        .map(|m| m.workspace_deps.clone())
        .unwrap_or_default();

    let mut members = Vec::new();
    if root_manifest.package.is_some() {
        members.push((root_path.clone(), root_manifest.clone()));
    }
    if root_manifest.is_workspace {
        for dir in expand_members(root, &root_manifest.members, &root_manifest.exclude) {
            let path = dir.join("Cargo.toml");
            if path == root_path {
                continue;
            }
            if let Some(m) = out.manifest(&path, "Cargo manifest (workspace member)", true) {
                members.push((path, m));
            }
        }
    }
    let mut members: Vec<Member> = members
        .into_iter()
        .filter_map(|(manifest_path, mut manifest)| {
            manifest.resolve(&ws_deps);
            let name = manifest.package.clone()?;
            (!tables::is_own_package(&name)).then_some(Member {
                name,
                manifest_path,
                manifest,
            })
        })
        .collect();
    members.sort_by(|a, b| a.name.cmp(&b.name));

    let lock_path = [ws_dir.join("Cargo.lock"), root.join("Cargo.lock")]
        .into_iter()
        .find(|p| p.exists())
        .unwrap_or_else(|| ws_dir.join("Cargo.lock"));
    let lock = match fsread::read_text(&lock_path, MAX_CONFIG_BYTES) {
        Ok(Some(text)) => match lock::parse(&text) {
            Ok(l) => {
                out.record("Cargo lockfile", &lock_path, SourceStatus::Read);
                if l.unresolved > 0 {
                    out.warnings.push(Warning::at(
                        &lock_path,
                        WarningKind::Incomplete,
                        format!(
                            "{} dependency entries match no package (stale lockfile?)",
                            l.unresolved
                        ),
                    ));
                }
                Some(l)
            }
            Err(e) => {
                out.record("Cargo lockfile", &lock_path, SourceStatus::Skipped);
                out.warnings.push(toml_warning(&lock_path, &e));
                None
            }
        },
        Ok(None) => {
            out.record("Cargo lockfile", &lock_path, SourceStatus::Absent);
            if !members.is_empty() {
                out.warnings.push(Warning::at(
                    &lock_path,
                    WarningKind::Incomplete,
                    "no Cargo.lock: only direct dependencies were scanned (run `cargo generate-lockfile`)",
                ));
            }
            None
        }
        Err(skip) => {
            out.record("Cargo lockfile", &lock_path, SourceStatus::Skipped);
            out.warnings.push(skip.warning(&lock_path));
            None
        }
    };

    let found = match &lock {
        Some(lock) => walk_lock(root, lock, &members, &lock_path, &mut out.warnings),
        None => Vec::new(),
    };
    let in_lock: BTreeSet<&str> = match &lock {
        Some(l) => members
            .iter()
            .filter(|m| l.member(&m.name).is_some())
            .map(|m| m.name.as_str())
            .collect(),
        None => BTreeSet::new(),
    };
    out.capabilities.extend(found);
    // Members the lockfile does not know: direct dependencies only.
    for m in members
        .iter()
        .filter(|m| !in_lock.contains(m.name.as_str()))
    {
        for d in best_decls(&m.manifest) {
            if d.kind != DepKind::Normal || tables::is_own_package(&d.package) {
                continue;
            }
            push_caps(
                &mut out.capabilities,
                root,
                &d.package,
                None,
                vec![m.name.clone(), d.package.clone()],
                &m.manifest_path,
                d.target.clone(),
                d.optional,
            );
        }
    }
    out
}

/// One declaration per package, the most runtime-relevant kind first (normal, build, dev).
fn best_decls(m: &Manifest) -> Vec<manifest::DepDecl> {
    let mut decls = m.deps.clone();
    decls.sort_by(|a, b| {
        a.package
            .cmp(&b.package)
            .then(a.kind.cmp(&b.kind))
            .then(a.target.cmp(&b.target))
    });
    decls.dedup_by(|b, a| a.package == b.package);
    decls
}

#[allow(clippy::too_many_arguments)]
fn push_caps(
    out: &mut Vec<CapabilityFinding>,
    root: &Path,
    crate_name: &str,
    version: Option<String>,
    chain: Vec<String>,
    manifest: &Path,
    target: Option<String>,
    optional: bool,
) {
    for cap in tables::crate_capabilities(crate_name) {
        out.push(CapabilityFinding {
            capability: (*cap).to_owned(),
            evidence: Evidence::Dependency {
                crate_name: crate_name.to_owned(),
                version: version.clone(),
                chain: chain.clone(),
                manifest: crate::source::relative(root, manifest),
                target: target.clone(),
                optional,
            },
        });
    }
}

/// How a lockfile package was first reached.
#[derive(Clone)]
struct Reached {
    parent: Option<usize>,
    member: usize,
    target: Option<String>,
    optional: bool,
}

/// Breadth-first from the members' normal dependencies, so each crate gets a shortest chain.
/// Dev and build dependencies of members are not followed; packages of this toolkit are
/// neither reported nor followed.
fn walk_lock(
    root: &Path,
    lock: &lock::Lockfile,
    members: &[Member],
    lock_path: &Path,
    warnings: &mut Vec<Warning>,
) -> Vec<CapabilityFinding> {
    let n = lock.packages.len();
    let mut reached: Vec<Option<Reached>> = vec![None; n];
    let mut is_member = vec![false; n];
    let mut member_nodes = Vec::new();
    for (mi, m) in members.iter().enumerate() {
        match lock.member(&m.name) {
            Some(idx) => {
                is_member[idx] = true;
                member_nodes.push((mi, idx));
            }
            None => warnings.push(Warning::at(
                lock_path,
                WarningKind::Incomplete,
                format!(
                    "package `{}` is not in Cargo.lock (stale lockfile?): direct dependencies only",
                    m.name
                ),
            )),
        }
    }
    let own: Vec<bool> = lock
        .packages
        .iter()
        .map(|p| tables::is_own_package(&p.name))
        .collect();
    let mut queue = VecDeque::new();
    for &(mi, idx) in &member_nodes {
        let decls = best_decls(&members[mi].manifest);
        for &c in &lock.packages[idx].deps {
            if own[c] || is_member[c] || reached[c].is_some() {
                continue;
            }
            let decl = decls.iter().find(|d| d.package == lock.packages[c].name);
            if decl.is_some_and(|d| d.kind != DepKind::Normal) {
                continue;
            }
            reached[c] = Some(Reached {
                parent: None,
                member: mi,
                target: decl.and_then(|d| d.target.clone()),
                optional: decl.is_some_and(|d| d.optional),
            });
            queue.push_back(c);
        }
    }
    while let Some(p) = queue.pop_front() {
        let Some(via) = reached[p].clone() else {
            continue;
        };
        for &c in &lock.packages[p].deps {
            if own[c] || is_member[c] || reached[c].is_some() {
                continue;
            }
            reached[c] = Some(Reached {
                parent: Some(p),
                ..via.clone()
            });
            queue.push_back(c);
        }
    }
    let mut out = Vec::new();
    for (idx, r) in reached.iter().enumerate() {
        let Some(r) = r else { continue };
        let pkg = &lock.packages[idx];
        if tables::crate_capabilities(&pkg.name).is_empty() {
            continue;
        }
        let mut chain = vec![pkg.name.clone()];
        let mut cur = r.parent;
        while let Some(p) = cur {
            chain.push(lock.packages[p].name.clone());
            cur = reached[p].as_ref().and_then(|x| x.parent);
        }
        let member = &members[r.member];
        chain.push(member.name.clone());
        chain.reverse();
        push_caps(
            &mut out,
            root,
            &pkg.name,
            Some(pkg.version.clone()),
            chain,
            &member.manifest_path,
            r.target.clone(),
            r.optional,
        );
    }
    out
}

/// The nearest ancestor of `root` whose `Cargo.toml` has a `[workspace]` table.
fn find_enclosing_workspace(root: &Path, out: &mut CargoScan) -> (PathBuf, Option<Manifest>) {
    let mut dir = root.parent();
    for _ in 0..MAX_ANCESTORS {
        let Some(d) = dir else { break };
        let path = d.join("Cargo.toml");
        if let Ok(Some(text)) = fsread::read_text(&path, MAX_CONFIG_BYTES) {
            match manifest::parse(&text) {
                Ok(m) if m.is_workspace => {
                    out.record(
                        "Cargo manifest (enclosing workspace)",
                        &path,
                        SourceStatus::Read,
                    );
                    return (d.to_path_buf(), Some(m));
                }
                Ok(_) => {}
                Err(e) => out.warnings.push(toml_warning(&path, &e)),
            }
        }
        dir = d.parent();
    }
    (root.to_path_buf(), None)
}

/// Expands `members` globs (`*` and `?` within a path component) relative to `ws_dir`,
/// minus `exclude`, sorted.
fn expand_members(ws_dir: &Path, members: &[String], exclude: &[String]) -> Vec<PathBuf> {
    let excluded: Vec<PathBuf> = exclude.iter().map(|e| ws_dir.join(e)).collect();
    let mut out = BTreeSet::new();
    for pattern in members {
        let mut dirs = vec![ws_dir.to_path_buf()];
        for comp in pattern
            .split(['/', '\\'])
            .filter(|c| !c.is_empty() && *c != ".")
        {
            let mut next = Vec::new();
            for d in &dirs {
                if comp.contains(['*', '?']) {
                    let Ok(entries) = std::fs::read_dir(d) else {
                        continue;
                    };
                    for e in entries.filter_map(Result::ok) {
                        let name = e.file_name().to_string_lossy().into_owned();
                        if e.path().is_dir() && glob_match(comp.as_bytes(), name.as_bytes()) {
                            next.push(e.path());
                        }
                    }
                } else {
                    next.push(d.join(comp));
                }
            }
            dirs = next;
        }
        out.extend(dirs.into_iter().filter(|d| !excluded.contains(d)));
    }
    out.into_iter().collect()
}

/// `*` (any run, `**` too) and `?` (one byte) matching.
fn glob_match(pat: &[u8], name: &[u8]) -> bool {
    let (mut p, mut n) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while n < name.len() {
        if p < pat.len() && (pat[p] == b'?' || pat[p] == name[n]) {
            p += 1;
            n += 1;
        } else if p < pat.len() && pat[p] == b'*' {
            star = Some(p);
            mark = n;
            p += 1;
        } else if let Some(s) = star {
            p = s + 1;
            mark += 1;
            n = mark;
        } else {
            return false;
        }
    }
    while p < pat.len() && pat[p] == b'*' {
        p += 1;
    }
    p == pat.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match(b"*", b"abc"));
        assert!(glob_match(b"a*c", b"abbbc"));
        assert!(glob_match(b"a?c", b"abc"));
        assert!(!glob_match(b"a?c", b"ac"));
        assert!(glob_match(b"crate-*", b"crate-x"));
        assert!(!glob_match(b"crate-*", b"other"));
    }
}
