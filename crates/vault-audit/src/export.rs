//! The export file for offline verification: JSON lines, versioned.
//!
//! ```text
//! {"format":"aim-vault-audit-log","version":1,"tree_size":N,"head_count":H}
//! {"head":{...signed tree head...}}            × H, by seq
//! {"leaf":0,"data":"<base64 of the encoded event>"}   × N, by index
//! {"end":N}
//! ```
//! The verifier needs only this file and the trusted public key(s).

use std::io::{BufRead, Write};

use rusqlite::Connection;
use serde::{Deserialize, Serialize};

use crate::error::{AuditError, Result};
use crate::head::{SignedTreeHead, serde_b64};
use crate::log::{AuditLog, from_i64};
use crate::verify::{Discrepancy, Engine, HeadSlot, VerifyOptions, VerifyReport};

/// The `format` value of an export's first line.
pub const EXPORT_FORMAT: &str = "aim-vault-audit-log";
/// The export format version this build writes and reads.
pub const EXPORT_VERSION: u32 = 1;
/// Longest line the reader accepts (a leaf is at most ~9 MiB of base64 in theory; events in
/// practice are small, so lines are capped well above any valid one).
const MAX_LINE: usize = 16 << 20;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    format: String,
    version: u32,
    tree_size: u64,
    head_count: u64,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct HeadLine {
    head: SignedTreeHead,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct LeafLine {
    leaf: u64,
    #[serde(with = "serde_b64")]
    data: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EndLine {
    end: u64,
}

fn line<T: Serialize>(w: &mut dyn Write, value: &T) -> Result<()> {
    serde_json::to_writer(&mut *w, value).map_err(std::io::Error::other)?;
    w.write_all(b"\n")?;
    Ok(())
}

impl AuditLog {
    /// Writes the whole log (heads, then leaves) in the export format, streaming.
    pub fn export(conn: &Connection, writer: &mut dyn Write) -> Result<()> {
        let heads = AuditLog::heads(conn)?;
        let tree_size = AuditLog::tree_size(conn)?;
        line(
            writer,
            &Header {
                format: EXPORT_FORMAT.into(),
                version: EXPORT_VERSION,
                tree_size,
                head_count: heads.len() as u64,
            },
        )?;
        for head in heads {
            line(writer, &HeadLine { head })?;
        }
        let mut stmt = conn.prepare("SELECT idx, data FROM audit_leaves ORDER BY idx")?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let leaf = from_i64(row.get(0)?, "leaf index")?;
            line(
                writer,
                &LeafLine {
                    leaf,
                    data: row.get(1)?,
                },
            )?;
        }
        line(writer, &EndLine { end: tree_size })?;
        writer.flush()?;
        Ok(())
    }
}

struct Lines<R> {
    reader: R,
    number: u64,
    buf: String,
}

impl<R: BufRead> Lines<R> {
    fn next<T: for<'de> Deserialize<'de>>(&mut self, what: &str) -> Result<T> {
        self.buf.clear();
        self.number += 1;
        let n = std::io::Read::take(self.reader.by_ref(), MAX_LINE as u64 + 1)
            .read_line(&mut self.buf)?;
        if n == 0 {
            return Err(self.err(format!("file ends where {what} was expected")));
        }
        if n > MAX_LINE {
            return Err(self.err("line is too long".into()));
        }
        serde_json::from_str(self.buf.trim_end_matches('\n'))
            .map_err(|e| self.err(format!("expected {what}: {e}")))
    }

    fn err(&self, reason: String) -> AuditError {
        AuditError::ExportMalformed {
            line: self.number,
            reason,
        }
    }
}

/// Verifies an export offline, with only the file and `opts` (the trusted keys). Leaves and
/// heads get the same checks as [`AuditLog::verify`] except the stored-node and record checks,
/// which an export does not carry. A file not in the format is an `Err`.
pub fn verify_export(reader: impl BufRead, opts: &VerifyOptions) -> Result<VerifyReport> {
    let mut lines = Lines {
        reader,
        number: 0,
        buf: String::new(),
    };
    let header: Header = lines.next("the header")?;
    if header.format != EXPORT_FORMAT {
        return Err(lines.err(format!("format is {:?}", header.format)));
    }
    if header.version != EXPORT_VERSION {
        return Err(lines.err(format!("unknown version {}", header.version)));
    }
    let mut heads: Vec<HeadSlot> = Vec::new();
    for _ in 0..header.head_count {
        let h: HeadLine = lines.next("a head")?;
        heads.push(Ok(h.head));
    }
    let mut engine = Engine::new(opts, heads);
    let mut stream = None;
    let mut hook = None;
    let mut no_nodes = |_: u32, _: u64, _: &crate::hash::Hash| Ok(None);
    for _ in 0..header.tree_size {
        let leaf: LeafLine = lines.next("a leaf")?;
        if stream.is_some() {
            continue;
        }
        if leaf.leaf >= header.tree_size {
            return Err(lines.err(format!(
                "leaf {} is beyond tree_size {}",
                leaf.leaf, header.tree_size
            )));
        }
        stream = engine.leaf(leaf.leaf, &leaf.data, None, &mut hook, &mut no_nodes)?;
    }
    let end: EndLine = lines.next("the end line")?;
    if end.end != header.tree_size {
        return Err(lines.err("end line disagrees with the header".into()));
    }
    if stream.is_none() && engine.size() != header.tree_size {
        stream = Some(Discrepancy::LeafMissing {
            index: engine.size(),
        });
    }
    let mut extra = String::new();
    if lines.reader.read_line(&mut extra)? != 0 {
        return Err(AuditError::ExportMalformed {
            line: lines.number + 1,
            reason: "content after the end line".into(),
        });
    }
    Ok(engine.finish(header.tree_size, stream, None))
}
