//! `Cargo.lock` (format versions 1 to 4) as a dependency graph.

use std::collections::HashMap;

use toml::Value;

use super::manifest::{TomlError, parse_table};

/// One `[[package]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LockPackage {
    pub(crate) name: String,
    pub(crate) version: String,
    /// `None` for path packages (workspace members).
    pub(crate) source: Option<String>,
    /// Indices of the packages this one depends on.
    pub(crate) deps: Vec<usize>,
}

/// The lockfile graph.
#[derive(Debug, Clone, Default)]
pub(crate) struct Lockfile {
    pub(crate) packages: Vec<LockPackage>,
    /// Dependency strings that matched no package (a stale or hand-edited lockfile).
    pub(crate) unresolved: usize,
}

impl Lockfile {
    /// The path package (no `source`) called `name`.
    pub(crate) fn member(&self, name: &str) -> Option<usize> {
        self.packages
            .iter()
            .position(|p| p.name == name && p.source.is_none())
            .or_else(|| self.packages.iter().position(|p| p.name == name))
    }
}

/// Parses a lockfile. Packages without a string `name` and `version` are skipped.
pub(crate) fn parse(text: &str) -> Result<Lockfile, TomlError> {
    let t = parse_table(text)?;
    let raw: Vec<(String, String, Option<String>, Vec<String>)> = t
        .get("package")
        .and_then(Value::as_array)
        .map(|pkgs| {
            pkgs.iter()
                .filter_map(|p| {
                    let name = p.get("name")?.as_str()?.to_owned();
                    let version = p.get("version")?.as_str()?.to_owned();
                    let source = p.get("source").and_then(Value::as_str).map(str::to_owned);
                    let deps = p
                        .get("dependencies")
                        .and_then(Value::as_array)
                        .map(|d| {
                            d.iter()
                                .filter_map(Value::as_str)
                                .map(str::to_owned)
                                .collect()
                        })
                        .unwrap_or_default();
                    Some((name, version, source, deps))
                })
                .collect()
        })
        .unwrap_or_default();
    let mut by_name: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, (name, ..)) in raw.iter().enumerate() {
        by_name.entry(name.as_str()).or_default().push(i);
    }
    let mut unresolved = 0;
    let mut packages = Vec::with_capacity(raw.len());
    for (name, version, source, deps) in &raw {
        let mut idx = Vec::with_capacity(deps.len());
        for d in deps {
            match resolve(d, &raw, &by_name) {
                Some(i) => idx.push(i),
                None => unresolved += 1,
            }
        }
        packages.push(LockPackage {
            name: name.clone(),
            version: version.clone(),
            source: source.clone(),
            deps: idx,
        });
    }
    Ok(Lockfile {
        packages,
        unresolved,
    })
}

/// Resolves `name`, `name version` or `name version (source)` (v1 form).
fn resolve(
    dep: &str,
    raw: &[(String, String, Option<String>, Vec<String>)],
    by_name: &HashMap<&str, Vec<usize>>,
) -> Option<usize> {
    let mut parts = dep.splitn(3, ' ');
    let name = parts.next()?;
    let version = parts.next();
    let source = parts
        .next()
        .map(|s| s.trim_start_matches('(').trim_end_matches(')'));
    let candidates = by_name.get(name)?;
    candidates.iter().copied().find(|&i| {
        let (_, v, s, _) = &raw[i];
        version.is_none_or(|want| want == v) && source.is_none_or(|want| s.as_deref() == Some(want))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_v3_and_v1_dependency_forms() {
        let lock = parse(
            r#"
version = 3
[[package]]
name = "app"
version = "0.1.0"
dependencies = ["reqwest", "log 0.4.20", "log 0.3.9 (registry+https://github.com/rust-lang/crates.io-index)", "ghost"]
[[package]]
name = "reqwest"
version = "0.13.0"
source = "registry+https://github.com/rust-lang/crates.io-index"
[[package]]
name = "log"
version = "0.4.20"
source = "registry+https://github.com/rust-lang/crates.io-index"
[[package]]
name = "log"
version = "0.3.9"
source = "registry+https://github.com/rust-lang/crates.io-index"
[[package]]
name = "broken"
"#,
        )
        .unwrap();
        assert_eq!(lock.packages.len(), 4);
        assert_eq!(lock.packages[0].deps, vec![1, 2, 3]);
        assert_eq!(lock.unresolved, 1);
        assert_eq!(lock.member("app"), Some(0));
    }

    #[test]
    fn malformed_lock_is_an_error_with_a_line() {
        let e = parse("version = 3\n[[package]\nname = 1").unwrap_err();
        assert_eq!(e.line, Some(2));
    }
}
