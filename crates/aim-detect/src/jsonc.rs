//! JSON with comments (VS Code's `settings.json` and `mcp.json` dialect): `//` and `/* */`
//! comments and trailing commas are removed before `serde_json` parses the text. Strict JSON
//! passes through unchanged.

/// Parses JSON-with-comments into a value. Errors carry only line and column (never content).
pub(crate) fn parse(text: &str) -> Result<serde_json::Value, String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let clean = strip(text);
    serde_json::from_str(&clean)
        .map_err(|e| format!("invalid JSON at line {} column {}", e.line(), e.column()))
}

/// Removes comments and trailing commas outside strings. Removed characters become spaces
/// (newlines are kept) so line and column numbers stay those of the original text.
fn strip(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out: Vec<char> = Vec::with_capacity(chars.len());
    let mut i = 0;
    // Index in `out` of a comma that may turn out to be trailing.
    let mut pending_comma: Option<usize> = None;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '"' => {
                pending_comma = None;
                out.push(c);
                i += 1;
                while i < chars.len() {
                    let d = chars[i];
                    out.push(d);
                    i += 1;
                    if d == '\\' {
                        if let Some(&e) = chars.get(i) {
                            out.push(e);
                            i += 1;
                        }
                    } else if d == '"' {
                        break;
                    }
                }
            }
            '/' if chars.get(i + 1) == Some(&'/') => {
                while i < chars.len() && chars[i] != '\n' {
                    out.push(' ');
                    i += 1;
                }
            }
            '/' if chars.get(i + 1) == Some(&'*') => {
                out.push(' ');
                out.push(' ');
                i += 2;
                while i < chars.len() && !(chars[i] == '*' && chars.get(i + 1) == Some(&'/')) {
                    out.push(if chars[i] == '\n' { '\n' } else { ' ' });
                    i += 1;
                }
                if i < chars.len() {
                    out.push(' ');
                    out.push(' ');
                    i += 2;
                }
            }
            ',' => {
                pending_comma = Some(out.len());
                out.push(c);
                i += 1;
            }
            '}' | ']' => {
                if let Some(p) = pending_comma.take() {
                    out[p] = ' ';
                }
                out.push(c);
                i += 1;
            }
            c if c.is_whitespace() => {
                out.push(c);
                i += 1;
            }
            _ => {
                pending_comma = None;
                out.push(c);
                i += 1;
            }
        }
    }
    out.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn comments_and_trailing_commas_are_accepted() {
        let v =
            parse("{\n // c\n \"a\": [1, 2,], /* x\n y */ \"b\": \"//not a comment\", }").unwrap();
        assert_eq!(v, serde_json::json!({"a": [1, 2], "b": "//not a comment"}));
    }

    #[test]
    fn escaped_quotes_do_not_end_strings() {
        let v = parse(r#"{"a": "x\"// y", "b": 1}"#).unwrap();
        assert_eq!(v["a"], "x\"// y");
    }

    #[test]
    fn errors_keep_original_positions_and_no_content() {
        let e = parse("{\n /* c */ \"a\": sEcReT }").unwrap_err();
        assert!(e.contains("line 2"), "{e}");
        assert!(!e.contains("sEcReT"));
    }

    proptest! {
        #[test]
        fn strict_json_is_unchanged(v in proptest::collection::btree_map("[a-z/*,\"]{0,6}", "[ -~]{0,8}", 0..5)) {
            let text = serde_json::to_string(&v).unwrap();
            let parsed = parse(&text).unwrap();
            prop_assert_eq!(parsed, serde_json::to_value(&v).unwrap());
        }

        #[test]
        fn never_panics(s in "\\PC{0,80}") {
            let _ = parse(&s);
        }
    }
}
