//! Reading secrets: an interactive prompt or a file descriptor; never argv, never the
//! environment.

use std::io::{IsTerminal, Read};

use anyhow::{Context, Result, bail};
use vault_store::SecretBytes;

/// Where a passphrase comes from.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Source {
    /// Prompt on the terminal.
    Prompt,
    /// Read from this file descriptor (until EOF; one trailing newline is removed).
    Fd(u32),
}

/// Reads a secret from `/dev/fd/N` (no unsafe code needed).
fn read_fd(fd: u32) -> Result<SecretBytes> {
    let path = format!("/dev/fd/{fd}");
    let mut f =
        std::fs::File::open(&path).with_context(|| format!("cannot open file descriptor {fd}"))?;
    let mut buf = zeroize::Zeroizing::new(Vec::new());
    f.read_to_end(&mut buf)
        .with_context(|| format!("cannot read file descriptor {fd}"))?;
    if buf.last() == Some(&b'\n') {
        buf.pop();
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
    }
    if buf.is_empty() {
        bail!("file descriptor {fd} gave an empty passphrase");
    }
    Ok(SecretBytes::new(std::mem::take(&mut *buf)))
}

fn prompt(label: &str) -> Result<SecretBytes> {
    if !std::io::stdin().is_terminal() && !std::path::Path::new("/dev/tty").exists() {
        bail!("no terminal to ask for the {label}; pass it with --passphrase-fd N");
    }
    let p = rpassword::prompt_password(format!("{label}: ")).with_context(|| {
        format!("cannot read the {label} from the terminal; pass it with --passphrase-fd N")
    })?;
    if p.is_empty() {
        bail!("empty {label}");
    }
    Ok(SecretBytes::from(p))
}

/// Reads an existing passphrase.
pub(crate) fn read(source: Source, label: &str) -> Result<SecretBytes> {
    match source {
        Source::Fd(fd) => read_fd(fd),
        Source::Prompt => prompt(label),
    }
}

/// Reads a new passphrase (asked twice when prompting).
pub(crate) fn read_new(source: Source, label: &str) -> Result<SecretBytes> {
    match source {
        Source::Fd(fd) => read_fd(fd),
        Source::Prompt => {
            let a = prompt(label)?;
            let b = prompt(&format!("{label} (again)"))?;
            if a != b {
                bail!("the two entries differ");
            }
            Ok(a)
        }
    }
}
