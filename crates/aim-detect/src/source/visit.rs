//! The `syn` visitor that finds action names in one Rust file.

use std::collections::HashSet;

use proc_macro2::Span;
use syn::punctuated::Punctuated;
use syn::visit::Visit;
use syn::{Expr, Lit, Token, UseTree};

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

/// Something the visitor could not use (a non-literal action name, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    pub(crate) line: usize,
    pub(crate) message: String,
}

/// Collects actions from a parsed file.
pub(crate) fn scan_file(file: &syn::File) -> (Vec<FoundAction>, Vec<Problem>) {
    let mut aliases = Aliases::default();
    // Two passes so that `use aim as a; use a::action as g;` resolves in any order.
    for _ in 0..2 {
        let mut collector = UseCollector {
            aliases: &mut aliases,
        };
        collector.visit_file(file);
    }
    let mut v = ActionVisitor {
        aliases: &aliases,
        found: Vec::new(),
        problems: Vec::new(),
    };
    v.visit_file(file);
    (v.found, v.problems)
}

/// What the file's `use` items make the action attribute and `perform_action` available as.
#[derive(Debug, Default)]
struct Aliases {
    /// Single identifiers that name the action attribute (`use aim::action as guard;`).
    attr_idents: HashSet<String>,
    /// Single identifiers that name a free `perform_action` function.
    call_idents: HashSet<String>,
    /// Identifiers that stand for an aim crate or one of its modules (`use aim as a;`).
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
        let first = if first == "crate" || first == "self" || first == "super" {
            // `use crate::...` cannot reach another crate's macro; ignore.
            return;
        } else {
            first.as_str()
        };
        if !self.is_aim_root(first) {
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
}

struct UseCollector<'a> {
    aliases: &'a mut Aliases,
}

impl UseCollector<'_> {
    fn walk(&mut self, prefix: &mut Vec<String>, tree: &UseTree) {
        match tree {
            UseTree::Path(p) => {
                prefix.push(p.ident.to_string());
                self.walk(prefix, &p.tree);
                prefix.pop();
            }
            UseTree::Name(n) => {
                let ident = n.ident.to_string();
                if ident == "self" {
                    if let Some(last) = prefix.last().cloned() {
                        self.aliases.record(prefix, &last);
                    }
                } else {
                    let mut full = prefix.clone();
                    full.push(ident.clone());
                    self.aliases.record(&full, &ident);
                }
            }
            UseTree::Rename(r) => {
                let ident = r.ident.to_string();
                let mut full = prefix.clone();
                if ident != "self" {
                    full.push(ident);
                }
                self.aliases.record(&full, &r.rename.to_string());
            }
            UseTree::Glob(_) => {
                if prefix.first().is_some_and(|f| self.aliases.is_aim_root(f)) {
                    self.aliases.glob = true;
                }
            }
            UseTree::Group(g) => {
                for t in &g.items {
                    self.walk(prefix, t);
                }
            }
        }
    }
}

impl<'ast> Visit<'ast> for UseCollector<'_> {
    fn visit_item_use(&mut self, i: &'ast syn::ItemUse) {
        self.walk(&mut Vec::new(), &i.tree);
    }

    fn visit_item_extern_crate(&mut self, i: &'ast syn::ItemExternCrate) {
        if let Some((_, rename)) = &i.rename {
            let full = vec![i.ident.to_string()];
            self.aliases.record(&full, &rename.to_string());
        }
    }
}

struct ActionVisitor<'a> {
    aliases: &'a Aliases,
    found: Vec<FoundAction>,
    problems: Vec<Problem>,
}

fn line_col(span: Span) -> (usize, usize) {
    let start = span.start();
    (start.line, start.column + 1)
}

/// A string literal, looking through parentheses and `&`.
fn literal(expr: &Expr) -> Option<&syn::LitStr> {
    match expr {
        Expr::Lit(l) => match &l.lit {
            Lit::Str(s) => Some(s),
            _ => None,
        },
        Expr::Paren(p) => literal(&p.expr),
        Expr::Group(g) => literal(&g.expr),
        Expr::Reference(r) => literal(&r.expr),
        _ => None,
    }
}

fn expr_span(expr: &Expr) -> Span {
    syn::spanned::Spanned::span(expr)
}

impl ActionVisitor<'_> {
    fn is_action_attr(&self, path: &syn::Path) -> bool {
        let segs: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
        match segs.as_slice() {
            [only] => {
                self.aliases.attr_idents.contains(only) || (self.aliases.glob && only == "action")
            }
            [first, .., last] => last == "action" && self.aliases.is_aim_root(first),
            [] => false,
        }
    }

    fn check_attrs(&mut self, attrs: &[syn::Attribute]) {
        for attr in attrs {
            if !self.is_action_attr(attr.path()) {
                continue;
            }
            let (line, _) = line_col(syn::spanned::Spanned::span(attr));
            let list = match &attr.meta {
                syn::Meta::List(list) => list,
                _ => {
                    self.problem(line, "action attribute names no action");
                    continue;
                }
            };
            let args = match list.parse_args_with(Punctuated::<Expr, Token![,]>::parse_terminated) {
                Ok(a) => a,
                Err(e) => {
                    self.problem(
                        line,
                        format!("action attribute arguments do not parse: {e}"),
                    );
                    continue;
                }
            };
            self.take_attr_name(line, &args);
        }
    }

    fn take_attr_name(&mut self, line: usize, args: &Punctuated<Expr, Token![,]>) {
        let mut first = args.iter();
        match first.next() {
            Some(e) if literal(e).is_some() => {
                self.action(e, ActionForm::Attribute);
                return;
            }
            Some(Expr::Assign(_)) | None => {}
            Some(e) => {
                let (l, _) = line_col(expr_span(e));
                self.problem(l, "action name is not a string literal; not collected");
                return;
            }
        }
        for e in args {
            if let Expr::Assign(a) = e {
                let key = match &*a.left {
                    Expr::Path(p) => p.path.get_ident().map(ToString::to_string),
                    _ => None,
                };
                if matches!(key.as_deref(), Some("name" | "action" | "action_type")) {
                    if literal(&a.right).is_some() {
                        self.action(&a.right, ActionForm::Attribute);
                    } else {
                        let (l, _) = line_col(expr_span(&a.right));
                        self.problem(l, "action name is not a string literal; not collected");
                    }
                    return;
                }
            }
        }
        self.problem(line, "action attribute names no action");
    }

    fn action(&mut self, expr: &Expr, form: ActionForm) {
        let Some(lit) = literal(expr) else {
            let (line, _) = line_col(expr_span(expr));
            self.problem(line, "action name is not a string literal; not collected");
            return;
        };
        let (line, column) = line_col(lit.span());
        let name = lit.value();
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

    /// Expressions inside a macro invocation, when its tokens are a comma-separated list.
    fn visit_macro_tokens(&mut self, mac: &syn::Macro) {
        if mac.path.is_ident("macro_rules") {
            return;
        }
        if let Ok(exprs) = mac.parse_body_with(Punctuated::<Expr, Token![,]>::parse_terminated) {
            for e in &exprs {
                self.visit_expr(e);
            }
        }
    }
}

impl<'ast> Visit<'ast> for ActionVisitor<'_> {
    fn visit_item_fn(&mut self, i: &'ast syn::ItemFn) {
        self.check_attrs(&i.attrs);
        syn::visit::visit_item_fn(self, i);
    }

    fn visit_impl_item_fn(&mut self, i: &'ast syn::ImplItemFn) {
        self.check_attrs(&i.attrs);
        syn::visit::visit_impl_item_fn(self, i);
    }

    fn visit_trait_item_fn(&mut self, i: &'ast syn::TraitItemFn) {
        self.check_attrs(&i.attrs);
        syn::visit::visit_trait_item_fn(self, i);
    }

    fn visit_expr_closure(&mut self, i: &'ast syn::ExprClosure) {
        self.check_attrs(&i.attrs);
        syn::visit::visit_expr_closure(self, i);
    }

    fn visit_expr_method_call(&mut self, i: &'ast syn::ExprMethodCall) {
        if i.method == "perform_action"
            && let Some(first) = i.args.first()
        {
            self.action(first, ActionForm::Call);
        }
        syn::visit::visit_expr_method_call(self, i);
    }

    fn visit_expr_call(&mut self, i: &'ast syn::ExprCall) {
        if let Expr::Path(p) = &*i.func {
            let segs = &p.path.segments;
            let last = segs.last().map(|s| s.ident.to_string());
            let is_call = match (segs.len(), last.as_deref()) {
                (_, Some("perform_action")) => true,
                (1, Some(name)) => self.aliases.call_idents.contains(name),
                _ => false,
            };
            if is_call {
                // `Type::perform_action(&client, "x", ..)` (or `<T as Tr>::perform_action`)
                // passes the receiver first; a free function takes the action first.
                let type_qualified = p.qself.is_some()
                    || (segs.len() >= 2
                        && segs.iter().nth(segs.len() - 2).is_some_and(|s| {
                            s.ident.to_string().starts_with(|c: char| c.is_uppercase())
                        }));
                let arg = if type_qualified {
                    i.args.iter().nth(1)
                } else {
                    i.args.first()
                };
                if let Some(arg) = arg {
                    self.action(arg, ActionForm::Call);
                }
            }
        }
        syn::visit::visit_expr_call(self, i);
    }

    fn visit_macro(&mut self, i: &'ast syn::Macro) {
        self.visit_macro_tokens(i);
        syn::visit::visit_macro(self, i);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(src: &str) -> Vec<(String, usize, ActionForm)> {
        let file = syn::parse_file(src).unwrap();
        scan_file(&file)
            .0
            .into_iter()
            .map(|a| (a.name, a.line, a.form))
            .collect()
    }

    fn problems(src: &str) -> Vec<usize> {
        let file = syn::parse_file(src).unwrap();
        scan_file(&file).1.into_iter().map(|p| p.line).collect()
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
