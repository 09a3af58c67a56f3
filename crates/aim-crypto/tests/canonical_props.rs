//! Property tests of the Python-compatible canonical JSON against two references:
//! an independent in-test model of `ensure_ascii` escaping and key order, and CPython's own
//! `json.dumps(sort_keys=True)` run on a batch of random values.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns

use std::io::Write;
use std::process::{Command, Stdio};

use aim_crypto::canonical::{self, Value, python_float_repr};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use serde_json::Value as J;

/// Strings mixing ASCII, escapes, controls, DEL, BMP and astral characters.
fn arb_string() -> impl Strategy<Value = String> {
    let ch = prop_oneof![
        4 => proptest::char::range(' ', '~'),
        1 => proptest::char::range('\u{0}', '\u{1f}'),
        1 => Just('\u{7f}'),
        1 => Just('"'),
        1 => Just('\\'),
        2 => proptest::char::range('\u{80}', '\u{d7ff}'),
        1 => proptest::char::range('\u{e000}', '\u{ffff}'),
        2 => proptest::char::range('\u{10000}', '\u{10ffff}'),
    ];
    proptest::collection::vec(ch, 0..12).prop_map(|v| v.into_iter().collect())
}

fn arb_float() -> impl Strategy<Value = f64> {
    prop_oneof![
        proptest::num::f64::NORMAL | proptest::num::f64::SUBNORMAL | proptest::num::f64::ZERO,
        (-1_000_000i64..1_000_000).prop_map(|i| i as f64),
        (-20i32..25).prop_map(|e| 10f64.powi(e)),
        (1u32..1000, -30i32..30).prop_map(|(m, e)| m as f64 * 10f64.powi(e)),
    ]
}

fn arb_json() -> impl Strategy<Value = J> {
    let leaf = prop_oneof![
        Just(J::Null),
        any::<bool>().prop_map(J::Bool),
        any::<i64>().prop_map(J::from),
        any::<u64>().prop_map(J::from),
        arb_float().prop_map(J::from),
        arb_string().prop_map(J::String),
    ];
    leaf.prop_recursive(4, 40, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(J::Array),
            proptest::collection::btree_map(arb_string(), inner, 0..6)
                .prop_map(|m| J::Object(m.into_iter().collect())),
        ]
    })
}

/// Reference model: escape one string the way CPython's `py_encode_basestring_ascii` does,
/// written independently (table of short escapes, UTF-16 code units for the rest).
fn model_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        let short = match c {
            '\\' => Some("\\\\"),
            '"' => Some("\\\""),
            '\u{8}' => Some("\\b"),
            '\u{c}' => Some("\\f"),
            '\n' => Some("\\n"),
            '\r' => Some("\\r"),
            '\t' => Some("\\t"),
            _ => None,
        };
        if let Some(e) = short {
            out += e;
        } else if (c as u32) >= 0x20 && (c as u32) < 0x7f {
            out.push(c);
        } else {
            let mut buf = [0u16; 2];
            for u in c.encode_utf16(&mut buf).iter() {
                out += &format!("\\u{:04x}", u);
            }
        }
    }
    out.push('"');
    out
}

fn model(v: &J) -> String {
    match v {
        J::Null => "null".into(),
        J::Bool(b) => b.to_string(),
        J::Number(n) if n.is_i64() || n.is_u64() => n.to_string(),
        J::Number(n) => python_float_repr(n.as_f64().unwrap()),
        J::String(s) => model_string(s),
        J::Array(items) => {
            format!(
                "[{}]",
                items.iter().map(model).collect::<Vec<_>>().join(", ")
            )
        }
        J::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_by(|a, b| a.chars().cmp(b.chars()));
            let parts: Vec<String> = keys
                .iter()
                .map(|k| format!("{}: {}", model_string(k), model(&map[*k])))
                .collect();
            format!("{{{}}}", parts.join(", "))
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn serializer_matches_the_reference_model(v in arb_json()) {
        prop_assert_eq!(canonical::to_python_json(&v), model(&v));
    }

    #[test]
    fn output_is_printable_ascii_and_reparses_to_the_same_value(v in arb_json()) {
        let text = canonical::to_python_json(&v);
        prop_assert!(text.bytes().all(|b| (0x20..0x7f).contains(&b)), "{}", text);
        let parsed = canonical::parse(text.as_bytes()).unwrap();
        prop_assert_eq!(parsed.to_python_json(), text);
        prop_assert_eq!(parsed, Value::from_serde(&v));
    }

    #[test]
    fn float_repr_round_trips(f in proptest::num::f64::ANY) {
        let text = python_float_repr(f);
        if f.is_nan() {
            prop_assert_eq!(text, "NaN");
        } else {
            let back: f64 = match text.as_str() {
                "Infinity" => f64::INFINITY,
                "-Infinity" => f64::NEG_INFINITY,
                t => t.parse().unwrap(),
            };
            prop_assert_eq!(back.to_bits(), f.to_bits());
        }
    }

    #[test]
    fn parser_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        let _ = canonical::parse(&bytes);
    }
}

/// CPython is the ground truth: feed it a batch of random values and compare its
/// `json.dumps(v, sort_keys=True)` with ours, line by line.
#[test]
fn matches_cpython_json_dumps() {
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let values: Vec<J> = (0..400)
        .map(|_| arb_json().new_tree(&mut runner).unwrap().current())
        .collect();
    let input: String = values
        .iter()
        .map(|v| serde_json::to_string(v).unwrap() + "\n")
        .collect();
    let script = "import json,sys\nfor line in sys.stdin:\n    print(json.dumps(json.loads(line), sort_keys=True))\n";
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 is required for the CPython cross-check (it is also used by the SDK interop test)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let python = String::from_utf8(out.stdout).unwrap();
    let python: Vec<&str> = python.lines().collect();
    assert_eq!(python.len(), values.len());
    for (v, want) in values.iter().zip(python) {
        assert_eq!(canonical::to_python_json(v), want, "value {v}");
    }
}
