//! A strict, non-recursive JSON scanner for untrusted statement bytes.
//!
//! It checks RFC 8259 grammar exactly (no `NaN`/`Infinity`, no lone surrogates, no unescaped
//! control characters), measures nesting depth with an explicit stack (so no input can exhaust
//! the call stack), and finds member names repeated in any object at any depth, comparing the
//! *decoded* names (`"a"` and `"\u0061"` are the same name). serde_json would silently keep the
//! last of two repeated names; two parsers that disagree on which one counts are an attack.

use std::collections::HashSet;

/// What one pass over a JSON document found.
#[derive(Debug, Default)]
pub(crate) struct Scan {
    /// The top-level object's member names, in document order (repeats included).
    pub(crate) top_names: Vec<String>,
    /// The deepest nesting of objects and arrays; the top-level object is level 1.
    pub(crate) max_depth: usize,
    /// Some object, at some depth, repeats a member name.
    pub(crate) duplicate: bool,
}

/// Scans `text`, which must be exactly one JSON object. With `outer_ws`, whitespace may
/// surround it; without, its first byte must be `{` and its last `}`. `None`: not one object.
pub(crate) fn scan_object(text: &str, outer_ws: bool) -> Option<Scan> {
    let bytes = text.as_bytes();
    let mut s = Scanner {
        b: bytes,
        pos: 0,
        scan: Scan::default(),
        stack: Vec::new(),
    };
    if outer_ws {
        s.skip_ws();
    }
    if s.peek() != Some(b'{') {
        return None;
    }
    s.document()?;
    if outer_ws {
        s.skip_ws();
    }
    (s.pos == bytes.len()).then_some(s.scan)
}

/// One open container: an object's names seen so far, or `None` for an array.
type Frame = Option<HashSet<String>>;

struct Scanner<'a> {
    b: &'a [u8],
    pos: usize,
    scan: Scan,
    stack: Vec<Frame>,
}

impl Scanner<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        (self.peek() == Some(c)).then(|| self.pos += 1)
    }

    /// The whole document, driven by an explicit stack of open containers.
    fn document(&mut self) -> Option<()> {
        self.open()?;
        while !self.stack.is_empty() {
            self.skip_ws();
            let is_object = matches!(self.stack.last(), Some(Some(_)));
            let closer = if is_object { b'}' } else { b']' };
            if self.eat(closer).is_some() {
                self.stack.pop();
                self.after_value()?;
                continue;
            }
            if is_object {
                self.member_name()?;
            }
            self.value()?;
        }
        Some(())
    }

    /// After a value inside a container: a comma (then another element) or the closer.
    fn after_value(&mut self) -> Option<()> {
        if self.stack.is_empty() {
            return Some(());
        }
        self.skip_ws();
        let is_object = matches!(self.stack.last(), Some(Some(_)));
        let closer = if is_object { b'}' } else { b']' };
        match self.peek() {
            Some(b',') => {
                self.pos += 1;
                self.skip_ws();
                // A comma must be followed by an element, never by the closer.
                (self.peek() != Some(closer)).then_some(())
            }
            Some(c) if c == closer => Some(()),
            _ => None,
        }
    }

    fn member_name(&mut self) -> Option<()> {
        self.skip_ws();
        let name = self.string()?;
        self.skip_ws();
        self.eat(b':')?;
        if self.stack.len() == 1 {
            self.scan.top_names.push(name.clone());
        }
        if let Some(Some(names)) = self.stack.last_mut()
            && !names.insert(name)
        {
            self.scan.duplicate = true;
        }
        Some(())
    }

    /// One value: a scalar (then the separator after it), or the opening of a container.
    fn value(&mut self) -> Option<()> {
        self.skip_ws();
        match self.peek()? {
            b'{' | b'[' => return self.open(),
            b'"' => {
                self.string()?;
            }
            b't' => self.literal(b"true")?,
            b'f' => self.literal(b"false")?,
            b'n' => self.literal(b"null")?,
            b'-' | b'0'..=b'9' => self.number()?,
            _ => return None,
        }
        self.after_value()
    }

    fn open(&mut self) -> Option<()> {
        let frame = match self.peek()? {
            b'{' => Some(HashSet::new()),
            b'[' => None,
            _ => return None,
        };
        self.pos += 1;
        self.stack.push(frame);
        self.scan.max_depth = self.scan.max_depth.max(self.stack.len());
        self.skip_ws();
        // An empty container closes at once; anything else must not start with a comma.
        (self.peek() != Some(b',')).then_some(())
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        let end = self.pos.checked_add(word.len())?;
        (self.b.get(self.pos..end)? == word).then(|| self.pos = end)
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.pos += 1;
        }
        self.pos - start
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`
    fn number(&mut self) -> Option<()> {
        let _ = self.eat(b'-');
        match self.peek()? {
            b'0' => self.pos += 1,
            b'1'..=b'9' => {
                self.digits();
            }
            _ => return None,
        }
        if self.eat(b'.').is_some() && self.digits() == 0 {
            return None;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return None;
            }
        }
        Some(())
    }

    /// A string, decoded. The input is valid UTF-8, so raw bytes ≥ 0x80 are copied through.
    fn string(&mut self) -> Option<String> {
        self.eat(b'"')?;
        let mut out: Vec<u8> = Vec::new();
        loop {
            let c = self.peek()?;
            self.pos += 1;
            match c {
                b'"' => return String::from_utf8(out).ok(),
                b'\\' => self.escape(&mut out)?,
                0x00..=0x1f => return None,
                _ => out.push(c),
            }
        }
    }

    fn escape(&mut self, out: &mut Vec<u8>) -> Option<()> {
        let c = self.peek()?;
        self.pos += 1;
        let simple = match c {
            b'"' => b'"',
            b'\\' => b'\\',
            b'/' => b'/',
            b'b' => 0x08,
            b'f' => 0x0c,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'u' => {
                let ch = self.unicode_escape()?;
                let mut buf = [0u8; 4];
                out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                return Some(());
            }
            _ => return None,
        };
        out.push(simple);
        Some(())
    }

    /// The code point of `\uXXXX` (after the `u`), joining a surrogate pair; a lone surrogate
    /// is refused.
    fn unicode_escape(&mut self) -> Option<char> {
        let hi = self.hex4()?;
        if (0xDC00..0xE000).contains(&hi) {
            return None;
        }
        if !(0xD800..0xDC00).contains(&hi) {
            return char::from_u32(hi);
        }
        self.literal(b"\\u")?;
        let lo = self.hex4()?;
        if !(0xDC00..0xE000).contains(&lo) {
            return None;
        }
        char::from_u32(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00))
    }

    fn hex4(&mut self) -> Option<u32> {
        let end = self.pos.checked_add(4)?;
        let text = std::str::from_utf8(self.b.get(self.pos..end)?).ok()?;
        if !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        self.pos = end;
        u32::from_str_radix(text, 16).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_strict_json_objects() {
        for (text, depth) in [
            ("{}", 1),
            (
                r#"{"a":1,"b":[true,false,null,-0.5e+3,"x\u00e9\ud83d\ude00"]}"#,
                2,
            ),
            (r#"{"a":{"b":{"c":[[]]}}}"#, 5),
            (r#"{ "a" : [ 1 , 2 ] }"#, 2),
        ] {
            let scan = scan_object(text, false).unwrap();
            assert_eq!(scan.max_depth, depth, "{text}");
            assert!(!scan.duplicate);
        }
        assert_eq!(
            scan_object(r#"{"b":1,"a":{"b":2}}"#, false)
                .unwrap()
                .top_names,
            ["b", "a"]
        );
        assert!(scan_object(" {} \n", true).is_some());
    }

    #[test]
    fn refuses_everything_else() {
        for text in [
            "",
            " {}",
            "{} ",
            "[]",
            "{}{}",
            "{",
            "}",
            r#"{"a":1,}"#,
            r#"{,"a":1}"#,
            "{\"a\"}",
            r#"{"a":[1,]}"#,
            r#"{"a":[,1]}"#,
            r#"{"a":01}"#,
            r#"{"a":1.}"#,
            r#"{"a":.1}"#,
            r#"{"a":1e}"#,
            r#"{"a":+1}"#,
            r#"{"a":NaN}"#,
            r#"{"a":Infinity}"#,
            r#"{"a":tru}"#,
            r#"{"a":"\ud800"}"#,
            r#"{"a":"\udc00"}"#,
            r#"{"a":"\x"}"#,
            "{\"a\":\"\u{1}\"}",
            r#"{"a":1 "b":2}"#,
            r#"{"a":[1 2]}"#,
            r#"{1:2}"#,
            r#"{"a":{"b":1]}"#,
            r#"{"a":"#,
        ] {
            assert!(scan_object(text, false).is_none(), "{text:?}");
        }
    }

    #[test]
    fn finds_repeated_names_at_any_depth_after_decoding() {
        for text in [
            r#"{"a":1,"a":2}"#,
            r#"{"a":1,"\u0061":2}"#,
            r#"{"x":{"a":{"b":[{"c":1,"c":2}]}}}"#,
        ] {
            assert!(scan_object(text, false).unwrap().duplicate, "{text}");
        }
        assert!(
            !scan_object(r#"{"a":{"a":1},"b":[{"a":1},{"a":2}]}"#, false)
                .unwrap()
                .duplicate
        );
    }

    #[test]
    fn deep_nesting_is_measured_not_recursed() {
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(scan_object(&deep, false).unwrap().max_depth, 100_001);
    }
}
