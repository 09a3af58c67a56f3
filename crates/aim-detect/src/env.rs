//! Where detection looks: home directory, working directory, environment and OS flavour,
//! all injectable so tests never read the real machine.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The environment variables detection reads. [`DetectEnv::from_process`] copies only these,
/// so a `DetectEnv` never holds unrelated (possibly secret) variables.
pub const RELEVANT_VARS: &[&str] = &[
    "HOME",
    "USERPROFILE",
    "APPDATA",
    "XDG_CONFIG_HOME",
    "NPM_CONFIG_PREFIX",
    "npm_config_prefix",
    "NVM_DIR",
    "VIRTUAL_ENV",
    "CONDA_PREFIX",
];

/// The operating-system flavour whose conventional file locations are searched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Os {
    /// Linux and other Unix-likes following the XDG conventions.
    Linux,
    /// macOS (`~/Library/Application Support`, Homebrew).
    #[serde(rename = "macos")]
    MacOs,
    /// Windows (`%APPDATA%`, `%USERPROFILE%`).
    Windows,
}

impl Os {
    /// The flavour this binary was built for.
    pub fn current() -> Self {
        if cfg!(windows) {
            Os::Windows
        } else if cfg!(target_os = "macos") {
            Os::MacOs
        } else {
            Os::Linux
        }
    }
}

/// Every input of detection that is not the project tree itself.
///
/// Build it with [`DetectEnv::from_process`] in a program, or field by field in tests.
#[derive(Debug, Clone)]
pub struct DetectEnv {
    /// The user's home directory (`$HOME`, `%USERPROFILE%`); `None` skips per-user locations.
    pub home: Option<PathBuf>,
    /// The working directory (Claude Code keys project-local servers by absolute path).
    pub cwd: PathBuf,
    /// Environment variables (only [`RELEVANT_VARS`] are consulted).
    pub env: BTreeMap<String, String>,
    /// Which OS's conventional paths to search.
    pub os: Os,
    /// Prefix for system-wide absolute locations such as `/usr/local/lib/node_modules`:
    /// `/` for the real machine, a temporary directory in tests.
    pub fs_root: PathBuf,
}

impl DetectEnv {
    /// Reads the current process: home directory, working directory, the relevant environment
    /// variables, and the OS this binary was built for.
    pub fn from_process() -> Self {
        let env: BTreeMap<String, String> = RELEVANT_VARS
            .iter()
            .filter_map(|name| std::env::var(name).ok().map(|v| ((*name).to_owned(), v)))
            .collect();
        let os = Os::current();
        let home_var = if os == Os::Windows {
            "USERPROFILE"
        } else {
            "HOME"
        };
        let home = env
            .get(home_var)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(std::env::home_dir);
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
        let fs_root = if os == Os::Windows {
            PathBuf::from("C:\\")
        } else {
            PathBuf::from("/")
        };
        Self {
            home,
            cwd,
            env,
            os,
            fs_root,
        }
    }

    /// An environment with no variables, rooted at `root` for system paths (for tests and tools
    /// that scan a prepared tree).
    pub fn isolated(
        home: impl Into<PathBuf>,
        cwd: impl Into<PathBuf>,
        os: Os,
        fs_root: impl Into<PathBuf>,
    ) -> Self {
        Self {
            home: Some(home.into()),
            cwd: cwd.into(),
            env: BTreeMap::new(),
            os,
            fs_root: fs_root.into(),
        }
    }

    /// Sets one environment variable (builder style).
    #[must_use]
    pub fn with_var(mut self, name: &str, value: impl Into<String>) -> Self {
        self.env.insert(name.to_owned(), value.into());
        self
    }

    /// A non-empty environment variable.
    pub(crate) fn var(&self, name: &str) -> Option<&str> {
        self.env
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// `home/rel...` when the home directory is known.
    pub(crate) fn in_home(&self, rel: &[&str]) -> Option<PathBuf> {
        self.home.as_ref().map(|h| join_all(h, rel))
    }

    /// A system-wide absolute location (given as components below the root), under `fs_root`.
    pub(crate) fn system(&self, rel: &[&str]) -> PathBuf {
        join_all(&self.fs_root, rel)
    }

    /// The per-user configuration directory: `%APPDATA%` on Windows,
    /// `~/Library/Application Support` on macOS, `$XDG_CONFIG_HOME` or `~/.config` elsewhere.
    pub(crate) fn config_dir(&self) -> Option<PathBuf> {
        match self.os {
            Os::Windows => self
                .var("APPDATA")
                .map(PathBuf::from)
                .or_else(|| self.in_home(&["AppData", "Roaming"])),
            Os::MacOs => self.in_home(&["Library", "Application Support"]),
            Os::Linux => self
                .var("XDG_CONFIG_HOME")
                .map(PathBuf::from)
                .filter(|p| p.is_absolute())
                .or_else(|| self.in_home(&[".config"])),
        }
    }
}

/// `base` joined with each component in turn (portable across path separators).
pub(crate) fn join_all(base: &Path, rel: &[&str]) -> PathBuf {
    let mut p = base.to_path_buf();
    for c in rel {
        p.push(c);
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_dir_follows_os_conventions() {
        let env = DetectEnv::isolated("/h", "/w", Os::Linux, "/r");
        assert_eq!(env.config_dir(), Some(PathBuf::from("/h/.config")));
        let env = env.with_var("XDG_CONFIG_HOME", "/x");
        assert_eq!(env.config_dir(), Some(PathBuf::from("/x")));
        let env = DetectEnv::isolated("/h", "/w", Os::MacOs, "/r");
        assert_eq!(
            env.config_dir(),
            Some(PathBuf::from("/h/Library/Application Support"))
        );
        let env = DetectEnv::isolated("/h", "/w", Os::Windows, "/r");
        assert_eq!(env.config_dir(), Some(PathBuf::from("/h/AppData/Roaming")));
        let env = env.with_var("APPDATA", "/appdata");
        assert_eq!(env.config_dir(), Some(PathBuf::from("/appdata")));
    }

    #[test]
    fn relative_xdg_config_home_is_ignored() {
        let env =
            DetectEnv::isolated("/h", "/w", Os::Linux, "/r").with_var("XDG_CONFIG_HOME", "rel");
        assert_eq!(env.config_dir(), Some(PathBuf::from("/h/.config")));
    }

    #[test]
    fn from_process_keeps_only_relevant_variables() {
        let env = DetectEnv::from_process();
        assert!(env.env.keys().all(|k| RELEVANT_VARS.contains(&k.as_str())));
    }
}
