//! What detection needs from a `Cargo.toml`: the package name, workspace members and
//! inherited dependencies, and each declared dependency with its kind, target and rename.

use std::collections::BTreeMap;

use toml::{Table, Value};

/// Dependency kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum DepKind {
    Normal,
    Build,
    Dev,
}

/// One declared dependency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DepDecl {
    /// The key in the table (the name the code uses).
    pub(crate) key: String,
    /// The real package name (after `package = "..."`, also when inherited from the workspace).
    pub(crate) package: String,
    pub(crate) kind: DepKind,
    /// `cfg(...)` or triple of a `[target.X.dependencies]` table.
    pub(crate) target: Option<String>,
    pub(crate) optional: bool,
}

/// The parts of a manifest detection uses.
#[derive(Debug, Clone, Default)]
pub(crate) struct Manifest {
    pub(crate) package: Option<String>,
    pub(crate) is_workspace: bool,
    pub(crate) members: Vec<String>,
    pub(crate) exclude: Vec<String>,
    /// `[workspace.dependencies]` key → real package name.
    pub(crate) workspace_deps: BTreeMap<String, String>,
    /// Declared dependencies; `package` of inherited ones is resolved by [`Manifest::resolve`].
    pub(crate) deps: Vec<DepDecl>,
    /// Keys of dependencies with `workspace = true`.
    inherited: Vec<String>,
}

/// A syntax error with its 1-based line (the message never quotes the file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TomlError {
    pub(crate) line: Option<usize>,
    pub(crate) message: String,
}

/// Parses TOML text into a table.
pub(crate) fn parse_table(text: &str) -> Result<Table, TomlError> {
    toml::from_str::<Table>(text).map_err(|e| TomlError {
        line: e.span().map(|s| crate::fsread::line_of(text, s.start)),
        message: e
            .message()
            .lines()
            .next()
            .unwrap_or("invalid TOML")
            .to_owned(),
    })
}

/// Parses a manifest. Unknown or ill-typed fields are ignored (the shape errors are reported
/// by the caller only when they matter).
pub(crate) fn parse(text: &str) -> Result<Manifest, TomlError> {
    let t = parse_table(text)?;
    let mut m = Manifest {
        package: t
            .get("package")
            .and_then(|p| p.get("name"))
            .and_then(Value::as_str)
            .map(str::to_owned),
        ..Manifest::default()
    };
    if let Some(ws) = t.get("workspace").and_then(Value::as_table) {
        m.is_workspace = true;
        m.members = strings(ws.get("members"));
        m.exclude = strings(ws.get("exclude"));
        if let Some(deps) = ws.get("dependencies").and_then(Value::as_table) {
            for (key, v) in deps {
                let package = v.get("package").and_then(Value::as_str).unwrap_or(key);
                m.workspace_deps.insert(key.clone(), package.to_owned());
            }
        }
    }
    collect_deps(&t, None, &mut m);
    if let Some(targets) = t.get("target").and_then(Value::as_table) {
        for (cfg, tt) in targets {
            if let Some(tt) = tt.as_table() {
                collect_deps(tt, Some(cfg), &mut m);
            }
        }
    }
    Ok(m)
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

fn collect_deps(t: &Table, target: Option<&str>, m: &mut Manifest) {
    let sections: [(&str, DepKind); 5] = [
        ("dependencies", DepKind::Normal),
        ("build-dependencies", DepKind::Build),
        ("build_dependencies", DepKind::Build),
        ("dev-dependencies", DepKind::Dev),
        ("dev_dependencies", DepKind::Dev),
    ];
    for (section, kind) in sections {
        let Some(deps) = t.get(section).and_then(Value::as_table) else {
            continue;
        };
        for (key, v) in deps {
            let inherits = v.get("workspace").and_then(Value::as_bool) == Some(true);
            if inherits {
                m.inherited.push(key.clone());
            }
            let package = v.get("package").and_then(Value::as_str).unwrap_or(key);
            m.deps.push(DepDecl {
                key: key.clone(),
                package: package.to_owned(),
                kind,
                target: target.map(str::to_owned),
                optional: v.get("optional").and_then(Value::as_bool) == Some(true),
            });
        }
    }
}

impl Manifest {
    /// Resolves `workspace = true` dependencies through the workspace's
    /// `[workspace.dependencies]` (renames declared there apply).
    pub(crate) fn resolve(&mut self, workspace_deps: &BTreeMap<String, String>) {
        for d in &mut self.deps {
            if self.inherited.contains(&d.key)
                && d.package == d.key
                && let Some(real) = workspace_deps.get(&d.key)
            {
                d.package.clone_from(real);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_targets_renames_and_inheritance() {
        let ws = parse(
            r#"
[workspace]
members = ["crates/*", "app"]
exclude = ["crates/old"]
[workspace.dependencies]
http = { package = "reqwest", version = "0.13" }
db = { version = "0.39", package = "rusqlite" }
"#,
        )
        .unwrap();
        assert!(ws.is_workspace);
        assert_eq!(ws.members, vec!["crates/*", "app"]);
        assert_eq!(ws.exclude, vec!["crates/old"]);
        let mut m = parse(
            r#"
[package]
name = "app"
[dependencies]
http.workspace = true
mail = { package = "lettre", version = "0.11", optional = true }
serde = "1"
[dev-dependencies]
tempfile = "3"
[build-dependencies]
cc = "1"
[target.'cfg(windows)'.dependencies]
winreg = "0.5"
"#,
        )
        .unwrap();
        m.resolve(&ws.workspace_deps);
        let got: Vec<(&str, &str, DepKind, Option<&str>, bool)> = m
            .deps
            .iter()
            .map(|d| {
                (
                    d.key.as_str(),
                    d.package.as_str(),
                    d.kind,
                    d.target.as_deref(),
                    d.optional,
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("http", "reqwest", DepKind::Normal, None, false),
                ("mail", "lettre", DepKind::Normal, None, true),
                ("serde", "serde", DepKind::Normal, None, false),
                ("cc", "cc", DepKind::Build, None, false),
                ("tempfile", "tempfile", DepKind::Dev, None, false),
                (
                    "winreg",
                    "winreg",
                    DepKind::Normal,
                    Some("cfg(windows)"),
                    false
                ),
            ]
        );
        assert_eq!(m.package.as_deref(), Some("app"));
    }

    #[test]
    fn syntax_errors_have_lines_and_no_content() {
        let e = parse("[package]\nname = \"x\"\nsecret = sEcReT-VaLuE\n").unwrap_err();
        assert_eq!(e.line, Some(3));
        assert!(!e.message.contains("sEcReT"), "{}", e.message);
    }
}
