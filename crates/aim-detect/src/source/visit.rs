//! Finds action names in one Rust file's token stream.
//!
//! The file is lexed by `proc-macro2` (syn's lexer) and walked token by token; only the small
//! pieces that matter (`use` trees, string literals) are handed to `syn` parsers. A full
//! `syn::parse_file` builds the whole syntax tree and costs about eight times as much, which
//! matters at 100,000 lines; the patterns we look for are all visible at the token level:
//!
//! - attributes `#[path(args)]` whose path names the aim `action` attribute;
//! - method calls `.perform_action(args)`;
//! - path calls `Type::perform_action(receiver, args)`, `<T>::perform_action(..)`,
//!   `aim::perform_action(args)` and bare `perform_action(args)` (or a `use` rename of it),
//!   but not `fn perform_action(..)` definitions.

use std::collections::HashSet;

use proc_macro2::{Delimiter, Spacing, Span, TokenStream, TokenTree};
use syn::UseTree;

use crate::report::ActionForm;

/// Crate names under which the action attribute and `perform_action` are reachable.
const AIM_ROOTS: &[&str] = &["aim", "aim_macros", "aim_client"];

/// An action found in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FoundAction {
    pub(crate) name: String,
    pub(crate) line: usize,
    pub(crate) column: usize,
    pub(crate) form: ActionForm,
}

/// Something that names an action in a way we cannot use (a non-literal name, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    pub(crate) line: usize,
    pub(crate) message: String,
}

/// Collects actions from a lexed file.
pub(crate) fn scan_tokens(tokens: TokenStream) -> (Vec<FoundAction>, Vec<Problem>) {
    let tokens = build(tokens);
    let mut uses = Vec::new();
    collect_uses(&tokens, &mut uses);
    let mut aliases = Aliases::default();
    // Twice, so that `use aim as a; use a::action as g;` resolves in any order.
    for _ in 0..2 {
        for u in &uses {
            match u {
                Use::Tree(tree) => aliases.walk_use(&mut Vec::new(), tree),
                Use::ExternCrate(name, alias) => aliases.record(std::slice::from_ref(name), alias),
            }
        }
    }
    let mut v = Finder {
        aliases: &aliases,
        found: Vec::new(),
        problems: Vec::new(),
    };
    v.walk(&tokens);
    (v.found, v.problems)
}

/// A token, with a group's contents lexed once into children (walking `proc_macro2` groups
/// directly would copy every group's contents on each visit).
#[derive(Debug)]
enum Node {
    Group {
        delimiter: Delimiter,
        span: Span,
        kids: Vec<Node>,
    },
    Token(TokenTree),
}

impl Node {
    fn span(&self) -> Span {
        match self {
            Node::Group { span, .. } => *span,
            Node::Token(t) => t.span(),
        }
    }
}

fn build(ts: TokenStream) -> Vec<Node> {
    ts.into_iter()
        .map(|tt| match tt {
            TokenTree::Group(g) => {
                let (delimiter, span, stream) = (g.delimiter(), g.span(), g.stream());
                drop(g);
                Node::Group {
                    delimiter,
                    span,
                    kids: build(stream),
                }
            }
            other => Node::Token(other),
        })
        .collect()
}

/// Back to tokens (for the small pieces handed to `syn`).
fn to_stream(nodes: &[Node]) -> TokenStream {
    nodes
        .iter()
        .map(|n| match n {
            Node::Group {
                delimiter,
                span,
                kids,
            } => {
                let mut g = proc_macro2::Group::new(*delimiter, to_stream(kids));
                g.set_span(*span);
                TokenTree::Group(g)
            }
            Node::Token(t) => t.clone(),
        })
        .collect()
}

/// A `use` tree or `extern crate name as alias;`.
enum Use {
    Tree(UseTree),
    ExternCrate(String, String),
}

/// What the file's `use` items make the action attribute and `perform_action` available as.
#[derive(Debug, Default)]
struct Aliases {
    /// Single identifiers that name the action attribute (`use aim::action as guard;`).
    attr_idents: HashSet<String>,
    /// Single identifiers that name a free `perform_action` function.
    call_idents: HashSet<String>,
    /// Identifiers that stand for an aim crate or one of its items (`use aim as a;`).
    aim_paths: HashSet<String>,
    /// `use aim::*;` (or a module of it) is present: bare `action` is the attribute.
    glob: bool,
}

impl Aliases {
    fn is_aim_root(&self, first: &str) -> bool {
        AIM_ROOTS.contains(&first) || self.aim_paths.contains(first)
    }

    fn record(&mut self, full: &[String], local: &str) {
        let Some(first) = full.first() else { return };
        // `use crate::...` / `self::` / `super::` cannot reach another crate's items.
        if matches!(first.as_str(), "crate" | "self" | "super") || !self.is_aim_root(first) {
            return;
        }
        match full.last().map(String::as_str) {
            Some("action") => {
                self.attr_idents.insert(local.to_owned());
            }
            Some("perform_action") => {
                self.call_idents.insert(local.to_owned());
            }
            _ => {
                self.aim_paths.insert(local.to_owned());
            }
        }
    }

    fn walk_use(&mut self, prefix: &mut Vec<String>, tree: &UseTree) {
        match tree {
            UseTree::Path(p) => {
                prefix.push(p.ident.to_string());
                self.walk_use(prefix, &p.tree);
                prefix.pop();
            }
            UseTree::Name(n) => {
                let ident = n.ident.to_string();
                if ident == "self" {
                    if let Some(last) = prefix.last().cloned() {
                        self.record(prefix, &last);
                    }
                } else {
                    let mut full = prefix.clone();
                    full.push(ident.clone());
                    self.record(&full, &ident);
                }
            }
            UseTree::Rename(r) => {
                let ident = r.ident.to_string();
                let mut full = prefix.clone();
                if ident != "self" {
                    full.push(ident);
                }
                self.record(&full, &r.rename.to_string());
            }
            UseTree::Glob(_) => {
                if prefix.first().is_some_and(|f| self.is_aim_root(f)) {
                    self.glob = true;
                }
            }
            UseTree::Group(g) => {
                for t in &g.items {
                    self.walk_use(prefix, t);
                }
            }
        }
    }
}

fn is_ident(t: Option<&Node>, word: &str) -> bool {
    matches!(t, Some(Node::Token(TokenTree::Ident(i))) if i == word)
}

fn is_punct(t: Option<&Node>, ch: char) -> bool {
    matches!(t, Some(Node::Token(TokenTree::Punct(p))) if p.as_char() == ch)
}

/// `use` items and `extern crate x as y;` anywhere in the file (modules and bodies too).
fn collect_uses(tokens: &[Node], out: &mut Vec<Use>) {
    let mut i = 0;
    while i < tokens.len() {
        match &tokens[i] {
            Node::Group { kids, .. } => collect_uses(kids, out),
            Node::Token(TokenTree::Ident(id)) if id == "use" => {
                let end = tokens[i + 1..]
                    .iter()
                    .position(|t| is_punct(Some(t), ';'))
                    .map_or(tokens.len(), |p| i + 1 + p);
                if let Ok(tree) = syn::parse2::<UseTree>(to_stream(&tokens[i + 1..end])) {
                    out.push(Use::Tree(tree));
                }
                i = end;
            }
            Node::Token(TokenTree::Ident(id))
                if id == "extern" && is_ident(tokens.get(i + 1), "crate") =>
            {
                if let (
                    Some(Node::Token(TokenTree::Ident(name))),
                    true,
                    Some(Node::Token(TokenTree::Ident(alias))),
                ) = (
                    tokens.get(i + 2),
                    is_ident(tokens.get(i + 3), "as"),
                    tokens.get(i + 4),
                ) {
                    out.push(Use::ExternCrate(name.to_string(), alias.to_string()));
                }
            }
            _ => {}
        }
        i += 1;
    }
}

fn line_col(span: Span) -> (usize, usize) {
    let start = span.start();
    (start.line, start.column + 1)
}

fn first_span(tokens: &[Node]) -> Option<Span> {
    tokens.first().map(Node::span)
}

/// Splits a token list on top-level commas.
fn split_args(tokens: &[Node]) -> Vec<&[Node]> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, t) in tokens.iter().enumerate() {
        if is_punct(Some(t), ',') {
            out.push(&tokens[start..i]);
            start = i + 1;
        }
    }
    if start < tokens.len() {
        out.push(&tokens[start..]);
    }
    out
}

/// The string literal an argument consists of, looking through `&` and parentheses.
fn literal(arg: &[Node]) -> Option<(String, Span)> {
    match arg {
        [Node::Token(TokenTree::Punct(p)), rest @ ..] if p.as_char() == '&' => literal(rest),
        [
            Node::Group {
                delimiter: Delimiter::Parenthesis | Delimiter::None,
                kids,
                ..
            },
        ] => literal(kids),
        [Node::Token(TokenTree::Literal(l))] => {
            let lit = syn::parse2::<syn::LitStr>(TokenTree::Literal(l.clone()).into()).ok()?;
            Some((lit.value(), l.span()))
        }
        _ => None,
    }
}

struct Finder<'a> {
    aliases: &'a Aliases,
    found: Vec<FoundAction>,
    problems: Vec<Problem>,
}

impl Finder<'_> {
    fn walk(&mut self, tokens: &[Node]) {
        for (i, t) in tokens.iter().enumerate() {
            match t {
                Node::Group {
                    delimiter,
                    span,
                    kids,
                } => {
                    // `#[...]` (not `#![...]`).
                    if *delimiter == Delimiter::Bracket && i > 0 && is_punct(tokens.get(i - 1), '#')
                    {
                        self.attribute(kids, *span);
                    }
                    self.walk(kids);
                }
                Node::Token(TokenTree::Ident(id)) => {
                    let Some(Node::Group {
                        delimiter: Delimiter::Parenthesis,
                        span,
                        kids,
                    }) = tokens.get(i + 1)
                    else {
                        continue;
                    };
                    let name = id.to_string();
                    if let Some(arg_index) = self.call_arg_index(tokens, i, &name)
                        && let Some(arg) = split_args(kids).get(arg_index)
                    {
                        self.action(arg, ActionForm::Call, *span);
                    }
                }
                Node::Token(_) => {}
            }
        }
    }

    /// For an identifier followed by `( ... )` at `tokens[i]`: which argument names the action,
    /// when this is a `perform_action` call.
    fn call_arg_index(&self, tokens: &[Node], i: usize, name: &str) -> Option<usize> {
        let prev = |k: usize| if i >= k { tokens.get(i - k) } else { None };
        if is_punct(prev(1), '.') {
            return (name == "perform_action").then_some(0);
        }
        let path_call = is_punct(prev(1), ':') && is_punct(prev(2), ':');
        if path_call {
            if name != "perform_action" {
                return None;
            }
            // `Type::perform_action(&client, "x")` / `<T as Tr>::perform_action(..)` pass the
            // receiver first; `aim::perform_action("x")` takes the action first.
            let qualified = match prev(3) {
                Some(Node::Token(TokenTree::Ident(seg))) => {
                    seg.to_string().starts_with(|c: char| c.is_uppercase())
                }
                Some(Node::Token(TokenTree::Punct(p))) => p.as_char() == '>',
                _ => false,
            };
            return Some(usize::from(qualified));
        }
        if is_ident(prev(1), "fn") {
            return None;
        }
        (name == "perform_action" || self.aliases.call_idents.contains(name)).then_some(0)
    }

    fn is_action_path(&self, segs: &[String]) -> bool {
        match segs {
            [only] => {
                self.aliases.attr_idents.contains(only) || (self.aliases.glob && only == "action")
            }
            [first, .., last] => last == "action" && self.aliases.is_aim_root(first),
            [] => false,
        }
    }

    /// The inside of `#[...]`.
    fn attribute(&mut self, inner: &[Node], span: Span) {
        let mut segs = Vec::new();
        let mut k = 0;
        while k < inner.len() {
            match &inner[k] {
                Node::Token(TokenTree::Ident(id)) => segs.push(id.to_string()),
                Node::Token(TokenTree::Punct(p))
                    if p.as_char() == ':' && (p.spacing() == Spacing::Joint || k > 0) => {}
                _ => break,
            }
            k += 1;
        }
        if !self.is_action_path(&segs) {
            return;
        }
        let (line, _) = line_col(span);
        match inner.get(k) {
            Some(Node::Group {
                delimiter: Delimiter::Parenthesis,
                kids,
                ..
            }) if k + 1 == inner.len() => self.attr_args(kids, line),
            _ => self.problem(line, "action attribute names no action"),
        }
    }

    fn attr_args(&mut self, args: &[Node], line: usize) {
        let parts = split_args(args);
        match parts.first() {
            Some(first) if literal(first).is_some() => {
                self.action(first, ActionForm::Attribute, Span::call_site());
                return;
            }
            Some(
                [
                    Node::Token(TokenTree::Ident(_)),
                    Node::Token(TokenTree::Punct(p)),
                    ..,
                ],
            ) if p.as_char() == '=' => {}
            None => {}
            Some(other) => {
                let l = first_span(other).map_or(line, |s| line_col(s).0);
                self.problem(l, "action name is not a string literal; not collected");
                return;
            }
        }
        for part in &parts {
            if let [
                Node::Token(TokenTree::Ident(key)),
                Node::Token(TokenTree::Punct(eq)),
                value @ ..,
            ] = part
                && eq.as_char() == '='
                && matches!(key.to_string().as_str(), "name" | "action" | "action_type")
            {
                self.action(value, ActionForm::Attribute, eq.span());
                return;
            }
        }
        self.problem(line, "action attribute names no action");
    }

    fn action(&mut self, arg: &[Node], form: ActionForm, fallback: Span) {
        let Some((name, span)) = literal(arg) else {
            let (line, _) = line_col(first_span(arg).unwrap_or(fallback));
            self.problem(line, "action name is not a string literal; not collected");
            return;
        };
        let (line, column) = line_col(span);
        if name.trim().is_empty()
            || name.chars().count() > 128
            || name.chars().any(char::is_control)
        {
            self.problem(
                line,
                "action name is empty, longer than 128 characters or has control characters",
            );
            return;
        }
        self.found.push(FoundAction {
            name,
            line,
            column,
            form,
        });
    }

    fn problem(&mut self, line: usize, message: impl Into<String>) {
        self.problems.push(Problem {
            line,
            message: message.into(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(src: &str) -> Vec<(String, usize, ActionForm)> {
        let tokens: TokenStream = src.parse().unwrap();
        scan_tokens(tokens)
            .0
            .into_iter()
            .map(|a| (a.name, a.line, a.form))
            .collect()
    }

    fn problems(src: &str) -> Vec<usize> {
        let tokens: TokenStream = src.parse().unwrap();
        scan_tokens(tokens).1.into_iter().map(|p| p.line).collect()
    }

    use ActionForm::{Attribute as A, Call as C};

    #[test]
    fn attribute_forms() {
        let src = r#"
#[aim::action("read_database", resource = "db")]
fn a() {}
#[::aim::action(name = "send_email")]
async fn b() {}
#[aim_macros::action("run_code")]
fn c() {}
#[other::action("nope")]
fn d() {}
#[action("nope_without_import")]
fn e() {}
"#;
        assert_eq!(
            names(src),
            vec![
                ("read_database".into(), 2, A),
                ("send_email".into(), 4, A),
                ("run_code".into(), 6, A)
            ]
        );
    }

    #[test]
    fn renamed_imports() {
        let src = r#"
use aim::action;
use aim::action as guard;
use aim as a;
use a::action as g2;
#[action("one")] fn f1() {}
#[guard("two")] fn f2() {}
#[a::action("three")] fn f3() {}
#[g2("four")] fn f4() {}
impl S { #[guard("five")] fn m(&self) {} }
trait T { #[action("six")] fn t(&self); }
"#;
        let got: Vec<String> = names(src).into_iter().map(|x| x.0).collect();
        assert_eq!(got, vec!["one", "two", "three", "four", "five", "six"]);
    }

    #[test]
    fn grouped_and_glob_imports() {
        let src = "use aim::{action as act, AimClient};\n#[act(\"x\")] fn f() {}\n";
        assert_eq!(names(src), vec![("x".into(), 2, A)]);
        let src = "use aim::prelude::*;\n#[action(\"y\")] fn f() {}\n";
        assert_eq!(names(src), vec![("y".into(), 2, A)]);
        let src = "extern crate aim as z;\n#[z::action(\"w\")] fn f() {}\n";
        assert_eq!(names(src), vec![("w".into(), 2, A)]);
    }

    #[test]
    fn call_forms() {
        let src = r#"
use aim::AimClient as Client;
fn f(client: &AimClient) {
    client.perform_action("call_api", None);
    AimClient::perform_action(&client, "query_database", None);
    Client::perform_action(client, "send_email");
    <AimClient>::perform_action(client, "qself");
    aim::perform_action("free_fn");
    let x = async { client.perform_action("in_async", ()).await };
    println!("{:?}", client.perform_action("in_macro", ()));
}
"#;
        let got: Vec<(String, usize, ActionForm)> = names(src);
        assert_eq!(
            got,
            vec![
                ("call_api".into(), 4, C),
                ("query_database".into(), 5, C),
                ("send_email".into(), 6, C),
                ("qself".into(), 7, C),
                ("free_fn".into(), 8, C),
                ("in_async".into(), 9, C),
                ("in_macro".into(), 10, C),
            ]
        );
    }

    #[test]
    fn renamed_free_function() {
        let src = "use aim::perform_action as verify;\nfn f() { verify(\"renamed_call\"); other(\"no\"); }\n";
        assert_eq!(names(src), vec![("renamed_call".into(), 2, C)]);
    }

    #[test]
    fn non_literal_names_are_problems_with_lines() {
        let src = r#"
const NAME: &str = "x";
#[aim::action(NAME)]
fn f() {}
fn g(c: &C, n: &str) {
    c.perform_action(n, None);
    C::perform_action(c, &format!("a{}", 1));
}
#[aim::action]
fn h() {}
#[aim::action(name = NAME)]
fn i() {}
"#;
        assert_eq!(problems(src), vec![3, 6, 7, 9, 11]);
        assert!(names(src).is_empty());
    }

    #[test]
    fn bad_literal_names_are_problems() {
        let src = "#[aim::action(\"\")] fn f() {}\nfn g(c: C) { c.perform_action(\"a\\nb\"); }\n";
        assert_eq!(problems(src), vec![1, 2]);
    }
}
