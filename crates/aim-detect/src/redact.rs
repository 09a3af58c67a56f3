//! Secret redaction for everything copied out of an MCP client configuration.
//!
//! Structural rules (always applied, whatever the value looks like):
//! - URLs: userinfo and fragment removed; every query value replaced by `REDACTED` (a query key
//!   that is not a short identifier goes too).
//! - The value after a sensitive flag (`--token`, `--api-key`, `--password`, `--header`, `-H`,
//!   ...; see [`is_sensitive_flag`]) and the value of `--sensitive-flag=value`.
//! - `NAME=value` arguments (environment assignments, as in `docker run -e NAME=value`).
//! - `Name: value` arguments (HTTP headers, as in `mcp-remote --header "Authorization: ..."`).
//! - Arguments starting with `Bearer `, `Basic ` or `Token `.
//!
//! Shape rules (for secrets in unexpected places): a URL path segment, host label or argument
//! piece that looks like a credential ([`looks_like_secret`]: a known token prefix, a UUID, or a
//! long mixed letters-and-digits string) is replaced too. Over-redaction is accepted.

/// What replaces a removed value.
pub const REDACTED: &str = "REDACTED";

/// A string after redaction, and whether anything was removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redacted {
    /// The safe text.
    pub text: String,
    /// `true` when something was removed.
    pub changed: bool,
}

/// Redacts a URL (see the module docs). Input that is not `scheme://...` is treated as a
/// free-form value.
pub fn redact_url(url: &str) -> Redacted {
    let Some((scheme, rest)) = split_scheme(url) else {
        // Not `scheme://`: judge the pieces (never back to `redact_value`, which calls us).
        return redact_pieces(url);
    };
    let mut changed = false;
    // Fragment: dropped.
    let rest = match rest.split_once('#') {
        Some((before, _)) => {
            changed = true;
            before
        }
        None => rest,
    };
    let (before_query, query) = match rest.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (rest, None),
    };
    let (authority, path) = match before_query.find('/') {
        Some(i) => before_query.split_at(i),
        None => (before_query, ""),
    };
    // Userinfo: dropped.
    let host_port = match authority.rfind('@') {
        Some(i) => {
            changed = true;
            &authority[i + 1..]
        }
        None => authority,
    };
    let mut out = format!("{scheme}://");
    // Host labels that look like tokens (`<token>.tunnel.example`).
    let (host, port) = split_port(host_port);
    let labels: Vec<String> = host
        .split('.')
        .map(|l| {
            if looks_like_secret(l) {
                changed = true;
                REDACTED.to_owned()
            } else {
                l.to_owned()
            }
        })
        .collect();
    out.push_str(&labels.join("."));
    out.push_str(port);
    for (i, seg) in path.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        if looks_like_secret(seg) || looks_like_secret(&percent_decode_lossy(seg)) {
            changed = true;
            out.push_str(REDACTED);
        } else {
            out.push_str(seg);
        }
    }
    if let Some(q) = query
        && !q.is_empty()
    {
        changed = true;
        let pairs: Vec<String> = q
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|pair| {
                let key = pair.split_once('=').map_or(pair, |(k, _)| k);
                if is_plain_key(key) && !looks_like_secret(key) {
                    format!("{key}={REDACTED}")
                } else {
                    REDACTED.to_owned()
                }
            })
            .collect();
        out.push('?');
        out.push_str(&pairs.join("&"));
    }
    Redacted { text: out, changed }
}

/// Redacts a command's argument list (see the module docs).
pub fn redact_args(args: &[String]) -> (Vec<String>, bool) {
    let mut out = Vec::with_capacity(args.len());
    let mut changed = false;
    let mut next = NextArg::Plain;
    for arg in args {
        let r = match next {
            NextArg::Secret => Redacted {
                text: REDACTED.to_owned(),
                changed: true,
            },
            NextArg::EnvSpec => redact_env_spec(arg),
            NextArg::Plain => redact_arg(arg),
        };
        next = if arg.starts_with('-') && !arg.contains('=') {
            if is_env_flag(arg) {
                NextArg::EnvSpec
            } else if is_sensitive_flag(arg) {
                NextArg::Secret
            } else {
                NextArg::Plain
            }
        } else {
            NextArg::Plain
        };
        changed |= r.changed;
        out.push(r.text);
    }
    (out, changed)
}

/// Redacts a command (a program path, occasionally a URL or an inline assignment).
pub fn redact_command(command: &str) -> Redacted {
    redact_arg(command)
}

#[derive(Clone, Copy)]
enum NextArg {
    Plain,
    Secret,
    EnvSpec,
}

/// One argument on its own.
fn redact_arg(arg: &str) -> Redacted {
    let lower = arg.to_ascii_lowercase();
    if ["bearer ", "basic ", "token "]
        .iter()
        .any(|p| lower.starts_with(p))
    {
        return Redacted {
            text: REDACTED.to_owned(),
            changed: true,
        };
    }
    if let Some(flag) = arg.strip_prefix('-') {
        if let Some((name, value)) = flag.split_once('=') {
            let name = format!("-{name}");
            if is_sensitive_flag(&name) {
                return Redacted {
                    text: format!("{name}={REDACTED}"),
                    changed: true,
                };
            }
            let v = redact_value(value);
            return Redacted {
                text: format!("{name}={}", v.text),
                changed: v.changed,
            };
        }
        return redact_value(arg);
    }
    if let Some((name, _)) = arg.split_once('=')
        && is_env_name(name)
    {
        return Redacted {
            text: format!("{name}={REDACTED}"),
            changed: true,
        };
    }
    if let Some((name, _)) = arg.split_once(':')
        && is_header_name(name)
        && arg[name.len() + 1..].starts_with(' ')
    {
        return Redacted {
            text: format!("{name}: {REDACTED}"),
            changed: true,
        };
    }
    redact_value(arg)
}

/// The value after `-e` / `--env`: `NAME` is kept (a name), `NAME=value` loses its value.
fn redact_env_spec(arg: &str) -> Redacted {
    match arg.split_once('=') {
        Some((name, _)) if is_env_name(name) => Redacted {
            text: format!("{name}={REDACTED}"),
            changed: true,
        },
        None if is_env_name(arg) => Redacted {
            text: arg.to_owned(),
            changed: false,
        },
        _ => Redacted {
            text: REDACTED.to_owned(),
            changed: true,
        },
    }
}

/// A free-form value: embedded URLs are redacted as URLs, other pieces by shape.
fn redact_value(value: &str) -> Redacted {
    if let Some(start) = find_url_start(value) {
        let (head, url) = value.split_at(start);
        let end = url
            .find(|c: char| c.is_whitespace() || c == '"' || c == '\'')
            .unwrap_or(url.len());
        let (url, tail) = url.split_at(end);
        let h = redact_pieces(head);
        let u = redact_url(url);
        let t = redact_value(tail);
        return Redacted {
            text: format!("{}{}{}", h.text, u.text, t.text),
            changed: h.changed || u.changed || t.changed,
        };
    }
    redact_pieces(value)
}

/// Replaces secret-looking pieces between separators, keeping the separators.
fn redact_pieces(value: &str) -> Redacted {
    let mut out = String::with_capacity(value.len());
    let mut changed = false;
    let mut piece = String::new();
    let flush = |piece: &mut String, out: &mut String, changed: &mut bool| {
        if looks_like_secret(piece) {
            out.push_str(REDACTED);
            *changed = true;
        } else {
            out.push_str(piece);
        }
        piece.clear();
    };
    for c in value.chars() {
        if matches!(
            c,
            '/' | '\\' | ',' | ';' | ':' | '@' | '=' | '&' | '?' | '#'
        ) || c.is_whitespace()
        {
            flush(&mut piece, &mut out, &mut changed);
            out.push(c);
        } else {
            piece.push(c);
        }
    }
    flush(&mut piece, &mut out, &mut changed);
    Redacted { text: out, changed }
}

/// Whether a string looks like a credential: a well-known token prefix, a UUID, or a long
/// string mixing letters and digits (or a long run of base64/hex-like characters).
pub fn looks_like_secret(s: &str) -> bool {
    const PREFIXES: &[&str] = &[
        "sk-",
        "sk_",
        "pk_live_",
        "rk_live_",
        "rk_test_",
        "pk_test_",
        "ghp_",
        "gho_",
        "ghu_",
        "ghs_",
        "ghr_",
        "github_pat_",
        "glpat-",
        "xoxb-",
        "xoxp-",
        "xoxa-",
        "xoxr-",
        "xoxs-",
        "xapp-",
        "akia",
        "asia",
        "aiza",
        "ya29.",
        "eyj",
        "npm_",
        "pypi-",
        "hf_",
        "r8_",
        "shpat_",
        "shpss_",
        "sg.",
        "key-",
        "dop_v1_",
        "lin_api_",
    ];
    let lower = s.to_ascii_lowercase();
    if PREFIXES
        .iter()
        .any(|p| lower.starts_with(p) && s.len() >= p.len() + 8)
    {
        return true;
    }
    if is_uuid(s) {
        return true;
    }
    // Split on the separators package names and paths use; judge each part.
    s.split(['-', '_', '.', '~']).any(|part| {
        let n = part.chars().count();
        let letters = part.chars().filter(|c| c.is_ascii_alphabetic()).count();
        let digits = part.chars().filter(|c| c.is_ascii_digit()).count();
        let tokenish = part
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '=');
        tokenish && ((n >= 16 && letters > 0 && digits > 0) || n >= 32)
    })
}

fn is_uuid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && parts.iter().map(|p| p.len()).eq([8, 4, 4, 4, 12])
        && parts
            .iter()
            .all(|p| p.chars().all(|c| c.is_ascii_hexdigit()))
}

/// Whether a flag's value should never be copied. Matching is on the flag's name with
/// dashes and underscores removed, lower-cased.
pub fn is_sensitive_flag(flag: &str) -> bool {
    const EXACT: &[&str] = &["-H", "-u", "-p"];
    if EXACT.contains(&flag) {
        return true;
    }
    let norm: String = flag
        .trim_start_matches('-')
        .chars()
        .filter(|c| *c != '-' && *c != '_')
        .collect::<String>()
        .to_ascii_lowercase();
    const WORDS: &[&str] = &[
        "token",
        "secret",
        "password",
        "passwd",
        "pwd",
        "pass",
        "apikey",
        "key",
        "auth",
        "credential",
        "cred",
        "bearer",
        "cookie",
        "session",
        "header",
        "private",
        "signature",
        "connectionstring",
        "dsn",
    ];
    WORDS.iter().any(|w| norm.contains(w))
}

fn is_env_flag(flag: &str) -> bool {
    matches!(flag, "-e" | "--env")
}

/// `NAME` of an environment assignment: an identifier starting with a letter or `_`.
fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn is_header_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

fn is_plain_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 32
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

fn split_scheme(url: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = url.split_once("://")?;
    let mut chars = scheme.chars();
    let ok = matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    ok.then_some((scheme, rest))
}

/// Byte offset of the first valid `scheme://` (a letter, then letters, digits, `+ - .`).
fn find_url_start(s: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(rel) = s[from..].find("://") {
        let idx = from + rel;
        let start = s[..idx]
            .char_indices()
            .rev()
            .take_while(|(_, c)| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
            .last()
            .map(|(i, _)| i);
        // Skip leading characters a scheme cannot start with (`-x://` starts at `x`).
        if let Some(start) = start
            && let Some(off) = s[start..idx].find(|c: char| c.is_ascii_alphabetic())
        {
            return Some(start + off);
        }
        from = idx + 3;
    }
    None
}

fn split_port(host_port: &str) -> (&str, &str) {
    // IPv6 literal: keep as is.
    if host_port.starts_with('[') {
        return (host_port, "");
    }
    match host_port.rfind(':') {
        Some(i) => host_port.split_at(i),
        None => (host_port, ""),
    }
}

fn percent_decode_lossy(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push(h * 16 + l);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn url_userinfo_query_and_fragment_are_removed() {
        let r = redact_url("https://alice:hunter2@mcp.example.com:8443/sse?token=abc&mode=x#frag");
        assert_eq!(
            r.text,
            "https://mcp.example.com:8443/sse?token=REDACTED&mode=REDACTED"
        );
        assert!(r.changed);
        let r = redact_url("http://localhost:3000/mcp");
        assert_eq!(r.text, "http://localhost:3000/mcp");
        assert!(!r.changed);
    }

    #[test]
    fn secret_path_segments_and_host_labels_are_removed() {
        let r = redact_url("https://actions.zapier.com/mcp/sk-ak-1234567890abcdef/sse");
        assert_eq!(r.text, "https://actions.zapier.com/mcp/REDACTED/sse");
        let r = redact_url("https://a1b2c3d4e5f6a7b8c9d0.tunnel.example/mcp");
        assert_eq!(r.text, "https://REDACTED.tunnel.example/mcp");
    }

    #[test]
    fn ordinary_arguments_survive() {
        let a = args(&[
            "-y",
            "@modelcontextprotocol/server-filesystem",
            "/Users/me/Desktop",
            "--port",
            "8080",
        ]);
        let (out, changed) = redact_args(&a);
        assert_eq!(out, a);
        assert!(!changed);
    }

    #[test]
    fn structural_secrets_in_arguments_are_removed() {
        let a = args(&[
            "--api-key",
            "abc",
            "--token=def",
            "GITHUB_TOKEN=ghi",
            "--header",
            "Authorization: Bearer jkl",
            "-e",
            "SLACK_TOKEN",
            "-e",
            "X=mno",
            "Bearer pqr",
            "X-Api-Key: stu",
            "postgresql://user:vwx@localhost/db",
        ]);
        let (out, changed) = redact_args(&a);
        assert!(changed);
        let joined = out.join(" ");
        for s in ["abc", "def", "ghi", "jkl", "mno", "pqr", "stu", "vwx"] {
            assert!(!joined.contains(s), "{s} leaked in {joined}");
        }
        assert!(joined.contains("SLACK_TOKEN"), "env names stay: {joined}");
        assert!(joined.contains("postgresql://localhost/db"), "{joined}");
    }

    #[test]
    fn malformed_schemes_terminate() {
        // Found by fuzzing: a scheme-less `://` once recursed forever.
        for s in [
            "-:---://'\n",
            "---://",
            "://",
            "1://x",
            "a://b://c",
            "-x://u:p@h/",
        ] {
            let _ = redact_url(s);
            let _ = redact_args(&[s.to_owned()]);
        }
        assert_eq!(
            redact_args(&["-x://u:p@h/".to_owned()]).0,
            vec!["-x://h/".to_owned()]
        );
    }

    #[test]
    fn shaped_secrets_are_removed() {
        for s in [
            "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
            "sk-proj-abcdefgh12345678",
            "550e8400-e29b-41d4-a716-446655440000",
            "a8f5f167f44f4964e6c998dee827110c",
        ] {
            assert!(looks_like_secret(s), "{s}");
            let (out, _) = redact_args(&args(&[s]));
            assert_eq!(out, vec![REDACTED.to_owned()]);
        }
        for s in [
            "mcp-server-everything-2024",
            "@modelcontextprotocol/server-github",
            "filesystem",
            "node",
            "v20.11.1",
        ] {
            assert!(!looks_like_secret(s), "{s}");
        }
    }

    const MARK: &str = "Zq9";

    fn secret() -> impl Strategy<Value = String> {
        "[A-Za-z0-9]{6,30}".prop_map(|s| format!("{MARK}{s}"))
    }

    fn word() -> impl Strategy<Value = String> {
        "[a-z][a-z0-9-]{0,12}"
    }

    proptest! {
        #[test]
        fn planted_url_secrets_never_survive(host in word(), path in word(), user in word(),
                                             pw in secret(), key in "[a-z]{1,8}", qv in secret(), frag in secret()) {
            let url = format!("https://{user}:{pw}@{host}.example/{path}?{key}={qv}#{frag}");
            let r = redact_url(&url);
            prop_assert!(!r.text.contains(MARK), "{}", r.text);
            let want = format!("{host}.example");
            prop_assert!(r.text.contains(&want));
        }

        #[test]
        fn planted_argument_secrets_never_survive(plain in proptest::collection::vec(word(), 0..4),
                                                  s in secret(), flag in "(token|api-key|password|secret|auth|header)",
                                                  name in "[A-Z][A-Z0-9_]{0,10}", form in 0usize..6) {
            let mut a: Vec<String> = plain.clone();
            match form {
                0 => { a.push(format!("--{flag}")); a.push(s.clone()); }
                1 => a.push(format!("--{flag}={s}")),
                2 => a.push(format!("{name}={s}")),
                3 => { a.push("-e".into()); a.push(format!("{name}={s}")); }
                4 => a.push(format!("Authorization: Bearer {s}")),
                _ => a.push(format!("https://x.example/p?{}={s}", name.to_lowercase())),
            }
            a.extend(plain);
            let (out, changed) = redact_args(&a);
            prop_assert!(changed);
            for o in &out {
                prop_assert!(!o.contains(MARK), "{:?}", out);
            }
        }

        #[test]
        fn url_like_text_always_terminates(s in "[-:/a-z0-9' @?=#.]{0,40}") {
            let _ = redact_url(&s);
            let _ = redact_args(std::slice::from_ref(&s));
        }

        #[test]
        fn redaction_never_panics(s in "\\PC{0,64}") {
            let _ = redact_url(&s);
            let _ = redact_args(&[s.clone(), s.clone()]);
            let _ = redact_command(&s);
        }
    }
}
