//! Python-compatible canonical JSON: byte-for-byte what Python's
//! `json.dumps(obj, sort_keys=True)` produces with its default arguments.
//!
//! The AIM Python SDK signs request bodies and the `verify_action` payload in this form
//! (`specs/aim-python-sdk.md` §3.5), so a server that checks those signatures must rebuild it
//! exactly:
//!
//! * separators `", "` and `": "`, no other whitespace;
//! * object keys sorted recursively by code point;
//! * `ensure_ascii`: every character outside 0x20–0x7E escaped, `\" \\ \n \r \t \b \f` in short
//!   form, everything else as `\uXXXX` with lowercase hex, astral characters as surrogate pairs;
//!   `/` is not escaped;
//! * `true`, `false`, `null`; integers printed exactly at any size; floats as Python `repr`
//!   (`100.0`, `1e+16`, `1e-05`, `-0.0`, `NaN`, `Infinity`, `-Infinity`).
//!
//! [`Value`] keeps number *lexemes* as they appeared in parsed input, so re-serializing a
//! request body reproduces the numbers the signer wrote, whatever their size. [`parse`] is
//! strict: it rejects duplicate keys (two parsers could disagree on which one counts), lone
//! UTF-16 surrogates (not representable in a Rust string), unescaped control characters, and
//! nesting deeper than [`MAX_DEPTH`]. Like Python it accepts `NaN`, `Infinity` and `-Infinity`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::{CryptoError, Result};

/// Deepest nesting [`parse`] accepts.
pub const MAX_DEPTH: usize = 128;

/// A JSON value whose numbers keep their textual form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// `null`
    Null,
    /// `true` / `false`
    Bool(bool),
    /// A number, kept as its lexeme.
    Number(Number),
    /// A string.
    String(String),
    /// An array.
    Array(Vec<Value>),
    /// An object; keys are unique and iterate in code-point order.
    Object(BTreeMap<String, Value>),
}

/// A JSON number kept as text: a JSON number lexeme, or Python's `NaN`, `Infinity`, `-Infinity`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Number(String);

impl Number {
    /// An integer.
    pub fn from_i64(n: i64) -> Self {
        Self(n.to_string())
    }

    /// An unsigned integer.
    pub fn from_u64(n: u64) -> Self {
        Self(n.to_string())
    }

    /// A float, written as Python's `repr` writes it.
    pub fn from_f64(f: f64) -> Self {
        Self(python_float_repr(f))
    }

    /// Checks and wraps a lexeme (JSON number grammar, or `NaN` / `Infinity` / `-Infinity`).
    pub fn from_lexeme(text: &str) -> Result<Self> {
        let mut p = Parser {
            input: text.as_bytes(),
            pos: 0,
            depth: 0,
        };
        let n = p.number()?;
        if p.pos != text.len() {
            return Err(p.error("trailing characters after number"));
        }
        Ok(n)
    }

    /// The lexeme.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True when the lexeme is an integer (no fraction or exponent).
    pub fn is_integer(&self) -> bool {
        is_integer_lexeme(&self.0)
    }

    /// The value as a float (Python's `float()` of the lexeme).
    pub fn as_f64(&self) -> f64 {
        match self.0.as_str() {
            "NaN" => f64::NAN,
            "Infinity" => f64::INFINITY,
            "-Infinity" => f64::NEG_INFINITY,
            // The lexeme was validated against the JSON grammar, which Rust's float parser
            // accepts; overflow gives ±inf as in Python.
            s => s.parse().unwrap_or(f64::NAN),
        }
    }
}

impl Value {
    /// Python's `json.dumps(value, sort_keys=True)`.
    pub fn to_python_json(&self) -> String {
        let mut out = String::with_capacity(64);
        write_value(&mut out, self);
        out
    }

    /// The member `key` of an object (`None` for other values or a missing key).
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Object(map) => map.get(key),
            _ => None,
        }
    }

    /// The string, if this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// True for `null`.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// Converts a `serde_json::Value`. Integers keep their digits; other numbers are written as
    /// Python's `repr` of the float.
    pub fn from_serde(value: &serde_json::Value) -> Self {
        match value {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => {
                let text = n.to_string();
                if is_integer_lexeme(&text) {
                    Value::Number(Number(text))
                } else {
                    Value::Number(Number::from_f64(n.as_f64().unwrap_or(f64::NAN)))
                }
            }
            serde_json::Value::String(s) => Value::String(s.clone()),
            serde_json::Value::Array(items) => {
                Value::Array(items.iter().map(Self::from_serde).collect())
            }
            serde_json::Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), Self::from_serde(v)))
                    .collect(),
            ),
        }
    }

    /// Converts to a `serde_json::Value`. Integers that fit i64/u64 stay integers; other numbers
    /// become floats; `NaN` and infinities (which serde_json cannot hold) become `null`.
    pub fn to_serde(&self) -> serde_json::Value {
        match self {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Number(n) => {
                if let Ok(i) = n.0.parse::<i64>() {
                    i.into()
                } else if let Ok(u) = n.0.parse::<u64>() {
                    u.into()
                } else {
                    serde_json::Number::from_f64(n.as_f64())
                        .map_or(serde_json::Value::Null, serde_json::Value::Number)
                }
            }
            Value::String(s) => serde_json::Value::String(s.clone()),
            Value::Array(items) => {
                serde_json::Value::Array(items.iter().map(Self::to_serde).collect())
            }
            Value::Object(map) => serde_json::Value::Object(
                map.iter().map(|(k, v)| (k.clone(), v.to_serde())).collect(),
            ),
        }
    }
}

impl From<&serde_json::Value> for Value {
    fn from(value: &serde_json::Value) -> Self {
        Self::from_serde(value)
    }
}

/// Python's `json.dumps(value, sort_keys=True)` of a `serde_json::Value`.
pub fn to_python_json(value: &serde_json::Value) -> String {
    Value::from_serde(value).to_python_json()
}

/// Parses a JSON document (UTF-8), keeping number lexemes. See the module docs for what is
/// rejected.
pub fn parse(input: &[u8]) -> Result<Value> {
    if std::str::from_utf8(input).is_err() {
        let offset = match std::str::from_utf8(input) {
            Err(e) => e.valid_up_to(),
            Ok(_) => 0,
        };
        return Err(CryptoError::Json {
            offset,
            message: "input is not valid UTF-8",
        });
    }
    let mut p = Parser {
        input,
        pos: 0,
        depth: 0,
    };
    p.skip_ws();
    let value = p.value()?;
    p.skip_ws();
    if p.pos != input.len() {
        return Err(p.error("unexpected data after the JSON value"));
    }
    Ok(value)
}

/// Python's `repr(float)` as `json.dumps` writes it: shortest round-trip digits, fixed notation
/// when the decimal exponent is in [-4, 16), otherwise `d.ddde±XX` with at least two exponent
/// digits; `NaN`, `Infinity`, `-Infinity` for the non-finite values.
pub fn python_float_repr(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 {
            "Infinity".into()
        } else {
            "-Infinity".into()
        };
    }
    if f == 0.0 {
        return if f.is_sign_negative() {
            "-0.0".into()
        } else {
            "0.0".into()
        };
    }
    // Rust's `{:e}` prints the shortest digits that round-trip, e.g. "1.5e-7", "-1e16".
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (negative, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, mantissa),
    };
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let n = digits.len() as i32;
    let decpt = exp + 1; // value = 0.DIGITS × 10^decpt
    let mut out = String::with_capacity(24);
    if negative {
        out.push('-');
    }
    if (-4 < decpt) && (decpt <= 16) {
        if decpt <= 0 {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', (-decpt) as usize));
            out.push_str(&digits);
        } else if decpt >= n {
            out.push_str(&digits);
            out.extend(std::iter::repeat_n('0', (decpt - n) as usize));
            out.push_str(".0");
        } else {
            out.push_str(&digits[..decpt as usize]);
            out.push('.');
            out.push_str(&digits[decpt as usize..]);
        }
    } else {
        out.push_str(&digits[..1]);
        if n > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let _ = write!(
            out,
            "e{}{:02}",
            if exp < 0 { '-' } else { '+' },
            exp.unsigned_abs()
        );
    }
    out
}

fn is_integer_lexeme(s: &str) -> bool {
    let digits = s.strip_prefix('-').unwrap_or(s);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

fn write_value(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(n) => out.push_str(&n.0),
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (key, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_string(out, key);
                out.push_str(": ");
                write_value(out, item);
            }
            out.push('}');
        }
    }
}

/// Writes a string with Python's `ensure_ascii=True` escaping.
fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
        }
    }
    out.push('"');
}

struct Parser<'a> {
    input: &'a [u8],
    pos: usize,
    depth: usize,
}

impl Parser<'_> {
    fn error(&self, message: &'static str) -> CryptoError {
        CryptoError::Json {
            offset: self.pos,
            message,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    fn eat_literal(&mut self, literal: &[u8]) -> bool {
        if self.input[self.pos..].starts_with(literal) {
            self.pos += literal.len();
            true
        } else {
            false
        }
    }

    fn value(&mut self) -> Result<Value> {
        match self.peek() {
            None => Err(self.error("unexpected end of input")),
            Some(b'{') => self.nested(Self::object),
            Some(b'[') => self.nested(Self::array),
            Some(b'"') => Ok(Value::String(self.string()?)),
            Some(b't') if self.eat_literal(b"true") => Ok(Value::Bool(true)),
            Some(b'f') if self.eat_literal(b"false") => Ok(Value::Bool(false)),
            Some(b'n') if self.eat_literal(b"null") => Ok(Value::Null),
            Some(b'-' | b'0'..=b'9' | b'N' | b'I') => Ok(Value::Number(self.number()?)),
            Some(_) => Err(self.error("expected a JSON value")),
        }
    }

    fn nested(&mut self, f: fn(&mut Self) -> Result<Value>) -> Result<Value> {
        if self.depth >= MAX_DEPTH {
            return Err(self.error("nesting is too deep"));
        }
        self.depth += 1;
        let v = f(self);
        self.depth -= 1;
        v
    }

    fn object(&mut self) -> Result<Value> {
        self.pos += 1; // '{'
        let mut map = BTreeMap::new();
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(Value::Object(map));
        }
        loop {
            self.skip_ws();
            if self.peek() != Some(b'"') {
                return Err(self.error("expected a string key"));
            }
            let key_pos = self.pos;
            let key = self.string()?;
            self.skip_ws();
            if self.peek() != Some(b':') {
                return Err(self.error("expected ':' after an object key"));
            }
            self.pos += 1;
            self.skip_ws();
            let value = self.value()?;
            if map.insert(key, value).is_some() {
                return Err(CryptoError::Json {
                    offset: key_pos,
                    message: "duplicate object key",
                });
            }
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(Value::Object(map));
                }
                _ => return Err(self.error("expected ',' or '}' in an object")),
            }
        }
    }

    fn array(&mut self) -> Result<Value> {
        self.pos += 1; // '['
        let mut items = Vec::new();
        self.skip_ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(Value::Array(items));
        }
        loop {
            self.skip_ws();
            items.push(self.value()?);
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(Value::Array(items));
                }
                _ => return Err(self.error("expected ',' or ']' in an array")),
            }
        }
    }

    fn string(&mut self) -> Result<String> {
        self.pos += 1; // opening quote
        let mut out = String::new();
        loop {
            let start = self.pos;
            while let Some(b) = self.peek() {
                if b == b'"' || b == b'\\' || b < 0x20 {
                    break;
                }
                self.pos += 1;
            }
            // The input was checked to be UTF-8 and we stopped on ASCII bytes, so this slice
            // is valid UTF-8.
            out.push_str(
                std::str::from_utf8(&self.input[start..self.pos])
                    .map_err(|_| self.error("invalid UTF-8 in string"))?,
            );
            match self.peek() {
                None => return Err(self.error("unterminated string")),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.pos += 1;
                    self.escape(&mut out)?;
                }
                Some(_) => return Err(self.error("unescaped control character in string")),
            }
        }
    }

    fn escape(&mut self, out: &mut String) -> Result<()> {
        let Some(c) = self.peek() else {
            return Err(self.error("unterminated escape"));
        };
        self.pos += 1;
        match c {
            b'"' => out.push('"'),
            b'\\' => out.push('\\'),
            b'/' => out.push('/'),
            b'b' => out.push('\u{8}'),
            b'f' => out.push('\u{c}'),
            b'n' => out.push('\n'),
            b'r' => out.push('\r'),
            b't' => out.push('\t'),
            b'u' => {
                let first = self.hex4()?;
                let code = if (0xD800..0xDC00).contains(&first) {
                    if !(self.eat_literal(b"\\u")) {
                        return Err(self.error("lone UTF-16 surrogate in string"));
                    }
                    let second = self.hex4()?;
                    if !(0xDC00..0xE000).contains(&second) {
                        return Err(self.error("lone UTF-16 surrogate in string"));
                    }
                    0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
                } else if (0xDC00..0xE000).contains(&first) {
                    return Err(self.error("lone UTF-16 surrogate in string"));
                } else {
                    first
                };
                out.push(char::from_u32(code).ok_or_else(|| self.error("invalid \\u escape"))?);
            }
            _ => return Err(self.error("invalid escape sequence")),
        }
        Ok(())
    }

    fn hex4(&mut self) -> Result<u32> {
        let Some(digits) = self.input.get(self.pos..self.pos + 4) else {
            return Err(self.error("truncated \\u escape"));
        };
        let mut v = 0u32;
        for &d in digits {
            let nibble = (d as char)
                .to_digit(16)
                .ok_or_else(|| self.error("invalid \\u escape"))?;
            v = v * 16 + nibble;
        }
        self.pos += 4;
        Ok(v)
    }

    fn number(&mut self) -> Result<Number> {
        let start = self.pos;
        if self.eat_literal(b"NaN") {
            return Ok(Number("NaN".into()));
        }
        if self.eat_literal(b"Infinity") {
            return Ok(Number("Infinity".into()));
        }
        if self.eat_literal(b"-Infinity") {
            return Ok(Number("-Infinity".into()));
        }
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(self.error("invalid number")),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(self.error("expected digits after the decimal point"));
            }
            self.digits();
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(self.error("expected digits in the exponent"));
            }
            self.digits();
        }
        let text = std::str::from_utf8(&self.input[start..self.pos])
            .map_err(|_| self.error("invalid number"))?;
        Ok(Number(text.to_owned()))
    }

    fn digits(&mut self) {
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn float_repr_matches_python() {
        let cases: &[(f64, &str)] = &[
            (100.0, "100.0"),
            (0.1, "0.1"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (1e-5, "1e-05"),
            (0.0001, "0.0001"),
            (1e20, "1e+20"),
            (1.5e-7, "1.5e-07"),
            (-0.0, "-0.0"),
            (0.0, "0.0"),
            (1e100, "1e+100"),
            (-2.5, "-2.5"),
            (123456789012345678.0, "1.2345678901234568e+17"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (5e-324, "5e-324"),
            (0.3, "0.3"),
            (2.0 / 3.0, "0.6666666666666666"),
            (12345.678, "12345.678"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "Infinity"),
            (f64::NEG_INFINITY, "-Infinity"),
        ];
        for (f, want) in cases {
            assert_eq!(python_float_repr(*f), *want, "repr({f:?})");
        }
    }

    #[test]
    fn dumps_matches_python_layout() {
        let v = json!({"b": [1, {"z": null, "a": true}], "a": "x", "e": {}, "l": []});
        assert_eq!(
            to_python_json(&v),
            r#"{"a": "x", "b": [1, {"a": true, "z": null}], "e": {}, "l": []}"#
        );
    }

    #[test]
    fn escapes_like_ensure_ascii() {
        let v = json!("q\"b\\n\nr\rt\tb\u{8}f\u{c}c\u{1}d\u{7f}é€😀/");
        assert_eq!(
            to_python_json(&v),
            r#""q\"b\\n\nr\rt\tb\bf\fc\u0001d\u007f\u00e9\u20ac\ud83d\ude00/""#
        );
    }

    #[test]
    fn integers_of_any_size_keep_their_digits() {
        let body =
            br#"{"big": 100000000000000000000, "neg": -12345678901234567890123, "f": 1e400}"#;
        let v = parse(body).unwrap();
        assert_eq!(
            v.to_python_json(),
            r#"{"big": 100000000000000000000, "f": 1e400, "neg": -12345678901234567890123}"#
        );
        assert_eq!(to_python_json(&json!(u64::MAX)), "18446744073709551615");
        assert_eq!(to_python_json(&json!(i64::MIN)), "-9223372036854775808");
    }

    #[test]
    fn parse_round_trips_python_output() {
        let text = r#"{"a": [1, 2.5, -0.0, 1e-05, NaN, Infinity, -Infinity, "caf\u00e9 \ud83d\ude00"], "b": {"c": null, "d": false}}"#;
        let v = parse(text.as_bytes()).unwrap();
        assert_eq!(v.to_python_json(), text);
    }

    #[test]
    fn parse_sorts_and_normalizes_whitespace() {
        let v = parse(b" {\"z\":1,\n\"a\" : [ true , null ] ,\"\\/\":\"\\u00E9\"} ").unwrap();
        assert_eq!(
            v.to_python_json(),
            r#"{"/": "\u00e9", "a": [true, null], "z": 1}"#
        );
    }

    #[test]
    fn parse_rejects_bad_input_with_offsets() {
        let cases: &[(&[u8], &str)] = &[
            (b"", "unexpected end of input"),
            (b"{\"a\":1,\"a\":2}", "duplicate object key"),
            (b"\"\\ud800\"", "lone UTF-16 surrogate in string"),
            (b"\"\\udc00\"", "lone UTF-16 surrogate in string"),
            (b"\"\\ud800\\u0041\"", "lone UTF-16 surrogate in string"),
            (b"\"a\nb\"", "unescaped control character in string"),
            (b"[1,]", "expected a JSON value"),
            (b"01", "unexpected data after the JSON value"),
            (b"1.", "expected digits after the decimal point"),
            (b"1e", "expected digits in the exponent"),
            (b"{\"a\" 1}", "expected ':' after an object key"),
            (b"\"abc", "unterminated string"),
            (b"\"\\x\"", "invalid escape sequence"),
            (b"\"\\u12\"", "truncated \\u escape"),
            (b"\"\\u12g4\"", "invalid \\u escape"),
            (b"tru", "expected a JSON value"),
            (b"[1] x", "unexpected data after the JSON value"),
            (b"\xff", "input is not valid UTF-8"),
        ];
        for (input, message) in cases {
            match parse(input) {
                Err(CryptoError::Json { message: m, .. }) => {
                    assert_eq!(m, *message, "input {:?}", String::from_utf8_lossy(input));
                }
                other => panic!(
                    "input {:?}: expected an error, got {other:?}",
                    String::from_utf8_lossy(input)
                ),
            }
        }
    }

    #[test]
    fn depth_is_limited() {
        let deep = "[".repeat(MAX_DEPTH + 1) + &"]".repeat(MAX_DEPTH + 1);
        assert!(matches!(
            parse(deep.as_bytes()),
            Err(CryptoError::Json {
                message: "nesting is too deep",
                ..
            })
        ));
        let ok = "[".repeat(MAX_DEPTH) + &"]".repeat(MAX_DEPTH);
        assert!(parse(ok.as_bytes()).is_ok());
    }

    #[test]
    fn number_lexemes_are_checked() {
        assert!(Number::from_lexeme("-12.5e+3").is_ok());
        assert!(Number::from_lexeme("NaN").is_ok());
        assert!(Number::from_lexeme("1x").is_err());
        assert!(Number::from_lexeme("+1").is_err());
        assert!(Number::from_lexeme("").is_err());
        assert!(Number::from_lexeme("12").unwrap().is_integer());
        assert!(!Number::from_lexeme("1.0").unwrap().is_integer());
    }

    #[test]
    fn serde_conversion_round_trips() {
        let v = json!({"i": -3, "u": 18446744073709551615u64, "f": 100.0, "s": "x", "n": null});
        let ours = Value::from_serde(&v);
        assert_eq!(ours.to_serde(), v);
        assert_eq!(
            ours.get("f").unwrap(),
            &Value::Number(Number("100.0".into()))
        );
    }
}
