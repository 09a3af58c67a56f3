//! Keyed search tokens: words, tags and intent references are indexed only as HMACs under
//! the profile's search key, so the index reveals no words.
//!
//! Words are lowercased and split on anything that is not a letter or digit; each distinct
//! word of a memory becomes the base32 text of the first 10 bytes of
//! HMAC-SHA256(search key, "w" ‖ 0 ‖ word) and is stored once per memory, sorted, in an FTS5
//! table (`detail=none`, bm25 ranking). Tags and intents become 16-byte
//! HMAC(search key, "t"/"i" ‖ 0 ‖ label) tokens in an ordinary index.
//!
//! What still leaks to someone holding the file: how many distinct words each memory has,
//! how often each (unknown) token occurs across memories and which tokens occur together,
//! and, for tags and intents, which memories share one.

use std::collections::BTreeSet;

use aim_crypto::hash::HmacSha256;

use crate::codec::base32;
use crate::keys::KeySet;

/// Longest word indexed (longer words are cut).
pub const MAX_WORD_CHARS: usize = 64;
/// Most distinct words indexed per memory.
pub const MAX_WORDS: usize = 4096;

/// Label kinds in `memory_labels`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LabelKind {
    Tag = 1,
    Intent = 2,
}

/// The normalized words of `text`, in order of appearance (with repeats).
pub fn normalize(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| {
            w.chars()
                .flat_map(char::to_lowercase)
                .take(MAX_WORD_CHARS)
                .collect()
        })
}

/// The keyed token of one normalized word.
pub(crate) fn word_token(key: &HmacSha256, word: &str) -> String {
    let tag = KeySet::mac(key, &[b"w\0", word.as_bytes()]);
    base32(&tag[..10])
}

/// The sorted, distinct keyed tokens of `text`, joined by spaces (the FTS5 document).
pub(crate) fn document(key: &HmacSha256, texts: &[&str]) -> String {
    let mut set = BTreeSet::new();
    for t in texts {
        for w in normalize(t) {
            if set.len() >= MAX_WORDS {
                break;
            }
            set.insert(word_token(key, &w));
        }
    }
    let mut out = String::with_capacity(set.len() * 17);
    for (i, t) in set.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(t);
    }
    out
}

/// The keyed token of a tag or intent reference.
pub(crate) fn label_token(key: &HmacSha256, kind: LabelKind, label: &str) -> [u8; 16] {
    let prefix: &[u8] = match kind {
        LabelKind::Tag => b"t\0",
        LabelKind::Intent => b"i\0",
    };
    let tag = KeySet::mac(key, &[prefix, label.as_bytes()]);
    let mut out = [0u8; 16];
    out.copy_from_slice(&tag[..16]);
    out
}

/// An FTS5 query matching memories that contain all (or any) of the query's words.
pub(crate) fn match_expression(key: &HmacSha256, query: &str, any: bool) -> Option<String> {
    let tokens: BTreeSet<String> = normalize(query).map(|w| word_token(key, &w)).collect();
    if tokens.is_empty() {
        return None;
    }
    let sep = if any { " OR " } else { " AND " };
    Some(
        tokens
            .iter()
            .map(|t| format!("\"{t}\""))
            .collect::<Vec<_>>()
            .join(sep),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalization_lowercases_and_splits() {
        let w: Vec<String> = normalize("Hello, WORLD! Ünïcode-ok x_y 42").collect();
        assert_eq!(w, ["hello", "world", "ünïcode", "ok", "x", "y", "42"]);
    }

    #[test]
    fn documents_contain_no_words_and_are_deterministic() {
        let k = HmacSha256::new(b"key");
        let d = document(&k, &["The secret launch code is banana", "banana"]);
        assert!(!d.contains("banana") && !d.contains("secret"));
        assert_eq!(d.split(' ').count(), 6, "distinct words only: {d}");
        assert_eq!(d, document(&k, &["banana is the code launch secret"]));
        assert_ne!(
            d,
            document(
                &HmacSha256::new(b"other"),
                &["The secret launch code is banana"]
            )
        );
        let q = match_expression(&k, "BANANA code", false).unwrap();
        assert!(q.contains(" AND ") && !q.contains("banana"));
        assert!(match_expression(&k, "  ,, ", false).is_none());
        assert_ne!(
            label_token(&k, LabelKind::Tag, "x"),
            label_token(&k, LabelKind::Intent, "x")
        );
    }
}
