//! Bounded file reading: every file detection opens goes through here, so size caps and
//! "absent vs. unreadable" are decided in one place.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use crate::report::{Warning, WarningKind};

/// Largest JSON or TOML configuration file read (MCP client configs, `capabilities.json`,
/// `Cargo.toml`, `Cargo.lock`, `package.json`).
pub const MAX_CONFIG_BYTES: u64 = 10 * 1024 * 1024;
/// Largest `~/.claude.json` read: Claude Code keeps per-project state in it, so it grows.
pub const MAX_CLAUDE_CODE_STATE_BYTES: u64 = 64 * 1024 * 1024;
/// Largest Rust source file parsed.
pub const MAX_RUST_FILE_BYTES: u64 = 4 * 1024 * 1024;
/// How much of a Python `METADATA` file is read (only the headers at the top matter).
pub const MAX_METADATA_PREFIX_BYTES: u64 = 64 * 1024;

/// Why a file that exists was not used.
#[derive(Debug)]
pub(crate) enum Skip {
    TooLarge { size: u64, cap: u64 },
    NotAFile,
    Unreadable(std::io::Error),
    NotUtf8,
}

impl Skip {
    /// The warning for `path`.
    pub(crate) fn warning(&self, path: &Path) -> Warning {
        let (kind, message) = match self {
            Skip::TooLarge { size, cap } => (
                WarningKind::TooLarge,
                format!("skipped: {size} bytes exceeds the {cap}-byte limit"),
            ),
            Skip::NotAFile => (
                WarningKind::Unreadable,
                "skipped: not a regular file".to_owned(),
            ),
            Skip::Unreadable(e) => (
                WarningKind::Unreadable,
                format!("skipped: cannot read: {e}"),
            ),
            Skip::NotUtf8 => (
                WarningKind::Malformed,
                "skipped: not valid UTF-8".to_owned(),
            ),
        };
        Warning::at(path, kind, message)
    }
}

/// Reads a UTF-8 text file of at most `cap` bytes. `Ok(None)` when nothing exists at `path`.
pub(crate) fn read_text(path: &Path, cap: u64) -> Result<Option<String>, Skip> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Skip::Unreadable(e)),
    };
    if !meta.is_file() {
        return Err(Skip::NotAFile);
    }
    if meta.len() > cap {
        return Err(Skip::TooLarge {
            size: meta.len(),
            cap,
        });
    }
    let file = File::open(path).map_err(Skip::Unreadable)?;
    let mut buf = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    // `take` guards against files that grow between `metadata` and the read.
    file.take(cap.saturating_add(1))
        .read_to_end(&mut buf)
        .map_err(Skip::Unreadable)?;
    if buf.len() as u64 > cap {
        return Err(Skip::TooLarge {
            size: buf.len() as u64,
            cap,
        });
    }
    String::from_utf8(buf).map(Some).map_err(|_| Skip::NotUtf8)
}

/// Reads at most the first `limit` bytes of a file as (lossy) UTF-8; `Ok(None)` when absent.
pub(crate) fn read_prefix(path: &Path, limit: u64) -> Result<Option<String>, Skip> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Skip::Unreadable(e)),
    };
    let meta = file.metadata().map_err(Skip::Unreadable)?;
    if !meta.is_file() {
        return Err(Skip::NotAFile);
    }
    let mut buf = Vec::new();
    file.take(limit)
        .read_to_end(&mut buf)
        .map_err(Skip::Unreadable)?;
    Ok(Some(String::from_utf8_lossy(&buf).into_owned()))
}

/// The 1-based line number of byte offset `pos` in `text`.
pub(crate) fn line_of(text: &str, pos: usize) -> usize {
    let end = pos.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_is_none_and_directory_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(read_text(&dir.path().join("nope"), 10), Ok(None)));
        assert!(matches!(read_text(dir.path(), 10), Err(Skip::NotAFile)));
    }

    #[test]
    fn cap_is_enforced_and_utf8_checked() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"0123456789").unwrap();
        assert_eq!(read_text(&p, 10).unwrap().as_deref(), Some("0123456789"));
        assert!(matches!(
            read_text(&p, 9),
            Err(Skip::TooLarge { size: 10, cap: 9 })
        ));
        std::fs::write(&p, [0xff, 0xfe]).unwrap();
        assert!(matches!(read_text(&p, 10), Err(Skip::NotUtf8)));
        assert_eq!(
            read_prefix(&p, 1).unwrap().map(|s| s.chars().count()),
            Some(1)
        );
    }

    #[test]
    fn line_numbers_are_one_based() {
        assert_eq!(line_of("a\nb\nc", 0), 1);
        assert_eq!(line_of("a\nb\nc", 2), 2);
        assert_eq!(line_of("a\nb\nc", 99), 3);
    }
}
