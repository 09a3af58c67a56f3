//! A lexical pre-check that keeps the lexer-driven scan (the token walk, and the `syn` parsers
//! run on `use` trees) from overflowing the stack on pathological input.
//!
//! Walking token groups is recursive, and so is `syn`: each bracket, generic argument list,
//! prefix operator (`!`, `-`, `*`, `&`, closure `|`), right-associative operator (`=`, `+=`,
//! `..`) and `else`/`return`/`break`/`move` nests one level. The guard is calibrated against a
//! full `syn::parse_file` (a test parses the deepest accepted input of each kind), which is
//! stricter than what the scan needs. A file crafted with a million of them would crash the
//! process. This pass estimates the deepest nesting without parsing: open brackets plus, for
//! each open bracket, the recursion-prone tokens seen since the last `;`, `,` or `=>` at that
//! level. Files above [`MAX_NESTING`] are skipped with a warning. Real code stays far below.

/// The nesting estimate above which a file is not parsed.
pub(crate) const MAX_NESTING: usize = 256;

/// Returns the byte offset where the estimate first exceeds `limit`, or `None` when the file
/// is safe to parse.
pub(crate) fn exceeds(text: &str, limit: usize) -> Option<usize> {
    let b = text.as_bytes();
    let mut i = 0;
    // One counter per open bracket level (index 0 = top level).
    let mut counters: Vec<usize> = vec![0];
    let mut angle: usize = 0;
    let mut sum: usize = 0;
    // Whether the previous significant token ended an operand (so `*`, `&`, `-`, `|` are binary).
    let mut operand = false;
    // Set after a `}` that returned to this level: the next token decides if the chain goes on.
    let mut after_block = false;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if c == b'/' && b.get(i + 1) == Some(&b'/') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        if c == b'/' && b.get(i + 1) == Some(&b'*') {
            i = skip_block_comment(b, i);
            continue;
        }
        let was_after_block = std::mem::replace(&mut after_block, false);
        let mut bump = 0usize;
        match c {
            b'"' => {
                i = skip_string(b, i + 1);
                operand = true;
                continue;
            }
            b'\'' => {
                i = skip_quote(b, i);
                operand = true;
                continue;
            }
            b'(' | b'[' | b'{' => {
                counters.push(0);
                operand = false;
                if c == b'{' {
                    sum -= angle.min(sum);
                    angle = 0;
                }
                i += 1;
            }
            b')' | b']' | b'}' => {
                if counters.len() > 1
                    && let Some(top) = counters.pop()
                {
                    sum -= top.min(sum);
                }
                if c == b'}' {
                    sum -= angle.min(sum);
                    angle = 0;
                    after_block = true;
                }
                operand = true;
                i += 1;
            }
            b';' | b',' => {
                reset_top(&mut counters, &mut sum);
                if c == b';' {
                    sum -= angle.min(sum);
                    angle = 0;
                }
                operand = false;
                i += 1;
            }
            b'=' if b.get(i + 1) == Some(&b'>') => {
                reset_top(&mut counters, &mut sum);
                operand = false;
                i += 2;
            }
            b'=' if b.get(i + 1) == Some(&b'=') => {
                operand = false;
                i += 2;
            }
            b'=' => {
                bump = 1;
                operand = false;
                i += 1;
            }
            b'.' if b.get(i + 1) == Some(&b'.') => {
                bump = 1;
                operand = false;
                i += 2;
            }
            b'<' => {
                if matches!(b.get(i + 1), Some(b'=' | b'<' | b'-')) {
                    i += 2;
                } else {
                    angle += 1;
                    sum += 1;
                    i += 1;
                }
                operand = false;
            }
            b'>' => {
                if matches!(b.get(i + 1), Some(b'=')) {
                    i += 2;
                } else {
                    if angle > 0 {
                        angle -= 1;
                        sum = sum.saturating_sub(1);
                    }
                    i += 1;
                }
                operand = true;
            }
            b'-' if b.get(i + 1) == Some(&b'>') => {
                operand = false;
                i += 2;
            }
            b'!' | b'-' | b'*' | b'&' | b'|' => {
                let compound = b.get(i + 1) == Some(&b'=') && c != b'!';
                if compound {
                    bump = 1;
                    i += 2;
                } else {
                    if !operand {
                        bump = 1;
                    }
                    i += 1;
                }
                operand = false;
            }
            c if c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80 => {
                let start = i;
                // Raw strings: r"..", r#".."#, br"..", cr#".."#.
                if let Some(end) = skip_raw_string(b, i) {
                    i = end;
                    operand = true;
                    continue;
                }
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] >= 0x80)
                {
                    i += 1;
                }
                let word = &b[start..i];
                if was_after_block && word != b"else" && word != b"as" {
                    reset_top(&mut counters, &mut sum);
                }
                match word {
                    b"else" | b"return" | b"break" | b"move" | b"box" | b"yield" | b"let"
                    | b"static" | b"async" => {
                        bump = 1;
                        operand = false;
                    }
                    b"if" | b"while" | b"match" | b"for" | b"in" | b"mut" | b"dyn" | b"impl"
                    | b"const" | b"ref" => {
                        operand = false;
                    }
                    _ => operand = true,
                }
            }
            _ => {
                operand = false;
                i += 1;
            }
        }
        if bump > 0 {
            if let Some(top) = counters.last_mut() {
                *top += bump;
            }
            sum += bump;
        }
        if counters.len() + sum > limit {
            return Some(i.min(b.len()));
        }
    }
    None
}

fn reset_top(counters: &mut [usize], sum: &mut usize) {
    if let Some(top) = counters.last_mut() {
        *sum -= (*top).min(*sum);
        *top = 0;
    }
}

fn skip_block_comment(b: &[u8], mut i: usize) -> usize {
    let mut depth = 0usize;
    while i < b.len() {
        if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
            depth += 1;
            i += 2;
        } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
            depth -= 1;
            i += 2;
            if depth == 0 {
                return i;
            }
        } else {
            i += 1;
        }
    }
    i
}

/// From just after an opening `"` to just after the closing one.
fn skip_string(b: &[u8], mut i: usize) -> usize {
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    b.len()
}

/// A char literal (`'a'`, `'\n'`, `'\u{..}'`, `'é'`) or a lifetime (`'a`).
fn skip_quote(b: &[u8], i: usize) -> usize {
    if b.get(i + 1) == Some(&b'\\') {
        let mut j = i + 2;
        while j < b.len() && j < i + 16 {
            if b[j] == b'\'' {
                return j + 1;
            }
            j += 1;
        }
        return i + 2;
    }
    // One (possibly multi-byte) character followed by `'` is a char literal.
    let ch_len = b.get(i + 1).map_or(1, |&c| utf8_len(c));
    if b.get(i + 1 + ch_len) == Some(&b'\'') {
        return i + 2 + ch_len;
    }
    let mut j = i + 1;
    while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
        j += 1;
    }
    j.max(i + 1)
}

fn utf8_len(first: u8) -> usize {
    match first {
        0xF0..=0xFF => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
}

fn skip_raw_string(b: &[u8], i: usize) -> Option<usize> {
    let mut j = i;
    if matches!(b[j], b'b' | b'c') {
        j += 1;
    }
    if b.get(j) != Some(&b'r') {
        return None;
    }
    j += 1;
    let mut hashes = 0;
    while b.get(j) == Some(&b'#') {
        hashes += 1;
        j += 1;
    }
    if b.get(j) != Some(&b'"') {
        return None;
    }
    j += 1;
    while j < b.len() {
        if b[j] == b'"'
            && b[j + 1..]
                .iter()
                .take(hashes)
                .filter(|&&h| h == b'#')
                .count()
                == hashes
        {
            return Some(j + 1 + hashes);
        }
        j += 1;
    }
    Some(b.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pathological inputs, nested `n` times.
    pub(crate) fn nested(kind: usize, n: usize) -> String {
        match kind {
            0 => format!("fn f() {{ let x = {}1{}; }}", "(".repeat(n), ")".repeat(n)),
            1 => format!("fn f() {{ let x = {}true; }}", "!".repeat(n)),
            2 => format!("fn f() {{ {}x = 1; }}", "x = ".repeat(n)),
            3 => format!("fn f() {{ if a {{}} {} }}", "else if a {} ".repeat(n)),
            4 => format!("type T = {}u8{};", "Vec<".repeat(n), ">".repeat(n)),
            5 => format!("fn f() {{ let c = {}1; }}", "|| ".repeat(n)),
            6 => format!("fn f() {{ {}; }}", "return ".repeat(n)),
            7 => format!("fn f() {{ let x = {}y; }}", "&*-".repeat(n)),
            8 => format!("type T = {}u8;", "&".repeat(n)),
            9 => format!("fn f() {{ let x = {}0; }}", "[".repeat(n) + &"]".repeat(0)),
            _ => format!("fn f() {{ let x = {}; }}", "{".repeat(n) + &"}".repeat(n)),
        }
    }

    const KINDS: usize = 11;

    #[test]
    fn pathological_nesting_is_rejected() {
        for kind in 0..KINDS {
            let text = nested(kind, 100_000);
            assert!(
                exceeds(&text, MAX_NESTING).is_some(),
                "kind {kind} not caught"
            );
        }
    }

    #[test]
    fn what_passes_the_guard_parses_on_a_scan_thread() {
        // The largest nesting each construct can have while passing the guard must parse
        // (and drop) without overflowing the stack of a scan worker, even in debug builds.
        for kind in 0..KINDS {
            let mut n = 1;
            while exceeds(&nested(kind, n * 2), MAX_NESTING).is_none() && n < 100_000 {
                n *= 2;
            }
            while exceeds(&nested(kind, n + 1), MAX_NESTING).is_none() && n < 100_000 {
                n += 1;
            }
            let text = nested(kind, n);
            assert!(exceeds(&text, MAX_NESTING).is_none());
            let handle = std::thread::Builder::new()
                .stack_size(crate::source::WORKER_STACK_BYTES)
                .spawn(move || {
                    let parsed = syn::parse_file(&text).map(|f| f.items.len());
                    parsed.is_ok()
                })
                .unwrap();
            let parsed = handle.join().unwrap();
            // Kind 9 is unbalanced on purpose (a parse error is fine, a crash is not).
            assert!(
                parsed || kind == 9,
                "kind {kind} at depth {n} did not parse"
            );
        }
    }

    #[test]
    fn ordinary_code_passes() {
        let code = r##"
            use std::collections::HashMap;
            /* nested /* comment */ ( ( ( */
            fn main() -> Result<(), Box<dyn std::error::Error>> {
                let s = "(((((((((("; let r = r#"[[[[["#; let c = '('; let l: &'static str = "x";
                let mut m: HashMap<String, Vec<Option<u8>>> = HashMap::new();
                if a < b && c > d { x = !y; } else if e { z -= 1; } else { return Ok(()); }
                let f = move |a: &mut u8| *a += 1;
                for i in 0..10 { m.insert(format!("{i}"), vec![Some(1)]); }
                match v { Some(x) if x > 1 => -x, _ => 0 };
                Ok(())
            }
        "##;
        assert_eq!(exceeds(code, MAX_NESTING), None);
        let many_statements: String = (0..10_000)
            .map(|i| format!("if x == {i} {{ y = !z; }}\n"))
            .collect();
        assert_eq!(
            exceeds(&format!("fn f() {{ {many_statements} }}"), MAX_NESTING),
            None
        );
    }
}
