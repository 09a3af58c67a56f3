//! `#[aim::action("read_database", resource = "customers")]`: run a sync or async function (or
//! method) only after the AIM server approved the action, and report its outcome.
//!
//! This crate only generates code; the guard itself is `aim_client`'s
//! `AimClient::perform_blocking` / `AimClient::perform`.
//!
//! Arguments (the first is required):
//!
//! | argument | meaning |
//! |---|---|
//! | `"action_type"` | the action to verify (string literal) |
//! | `resource = expr` | the resource (anything `Into<String>`; may use the function's arguments) |
//! | `context = expr` | a `serde_json::Value` object (may use the function's arguments) |
//! | `risk_level = "high"` | sent and signed with the verification |
//! | `client = expr` | an `AimClient`, `&AimClient` or `Result<AimClient, Error>`; default: the process-wide default client |
//! | `crate = path` | where the runtime lives: `::aim` (default, the facade) or `::aim_client` |
//!
//! The function must return `Result<T, E>` with `E: From<aim_client::Error> + Display`: a
//! verification failure is returned as `Err(E::from(error))` without running the body.
//!
//! ```no_run
//! #[aim_macros::action("read_database", resource = "customers", crate = ::aim_client)]
//! fn count_customers() -> Result<u64, aim_client::Error> {
//!     Ok(42)
//! }
//! ```
//!
//! A function that cannot return the verification error does not compile:
//!
//! ```compile_fail
//! #[aim_macros::action("read_database", crate = ::aim_client)]
//! fn no_result() {}
//! ```
//!
//! ```compile_fail
//! #[aim_macros::action("read_database", crate = ::aim_client)]
//! fn not_a_result() -> u64 { 1 }
//! ```
//!
//! ```compile_fail
//! struct Plain;
//! impl std::fmt::Display for Plain {
//!     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str("x") }
//! }
//! // `Plain` has no `From<aim_client::Error>`.
//! #[aim_macros::action("read_database", crate = ::aim_client)]
//! fn wrong_error() -> Result<u64, Plain> { Ok(1) }
//! ```
//!
//! Arguments are checked:
//!
//! ```compile_fail
//! #[aim_macros::action(resource = "customers", crate = ::aim_client)]
//! fn missing_action() -> Result<u64, aim_client::Error> { Ok(1) }
//! ```
//!
//! ```compile_fail
//! #[aim_macros::action("read_database", resorce = "typo", crate = ::aim_client)]
//! fn typo() -> Result<u64, aim_client::Error> { Ok(1) }
//! ```

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::quote;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{Expr, ItemFn, LitStr, Path, ReturnType, Token, parse_macro_input};

/// Guards a function with AIM action verification. See the crate documentation.
///
/// ```text
/// #[aim::action("read_database", resource = "customers")]
/// fn count_customers() -> Result<u64, aim::client::Error> {
///     Ok(42)
/// }
/// ```
#[proc_macro_attribute]
pub fn action(args: TokenStream, item: TokenStream) -> TokenStream {
    let args = parse_macro_input!(args as Args);
    let func = parse_macro_input!(item as ItemFn);
    expand(args, func)
        .unwrap_or_else(|e| e.to_compile_error())
        .into()
}

struct Args {
    action: LitStr,
    resource: Option<Expr>,
    context: Option<Expr>,
    risk_level: Option<Expr>,
    client: Option<Expr>,
    krate: Option<Path>,
}

enum Arg {
    Named(syn::Ident, Expr),
    Crate(Path),
}

impl Parse for Arg {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        if input.peek(Token![crate]) {
            input.parse::<Token![crate]>()?;
            input.parse::<Token![=]>()?;
            return Ok(Arg::Crate(Path::parse_mod_style(input)?));
        }
        let name: syn::Ident = input.parse()?;
        input.parse::<Token![=]>()?;
        Ok(Arg::Named(name, input.parse()?))
    }
}

impl Parse for Args {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        if input.is_empty() {
            return Err(syn::Error::new(
                Span::call_site(),
                "#[aim::action] needs the action type first, e.g. #[aim::action(\"read_database\")]",
            ));
        }
        let action: LitStr = input.parse().map_err(|e| {
            syn::Error::new(
                e.span(),
                "the first argument of #[aim::action] is the action type as a string literal",
            )
        })?;
        if action.value().trim().is_empty() {
            return Err(syn::Error::new(action.span(), "the action type is empty"));
        }
        let mut args = Args {
            action,
            resource: None,
            context: None,
            risk_level: None,
            client: None,
            krate: None,
        };
        if input.is_empty() {
            return Ok(args);
        }
        input.parse::<Token![,]>()?;
        let rest = Punctuated::<Arg, Token![,]>::parse_terminated(input)?;
        for arg in rest {
            match arg {
                Arg::Crate(p) => set(&mut args.krate, p, "crate")?,
                Arg::Named(name, value) => {
                    let slot = match name.to_string().as_str() {
                        "resource" => &mut args.resource,
                        "context" => &mut args.context,
                        "risk_level" => &mut args.risk_level,
                        "client" => &mut args.client,
                        other => {
                            return Err(syn::Error::new(
                                name.span(),
                                format!(
                                    "unknown #[aim::action] argument `{other}` (expected resource, \
                                     context, risk_level, client or crate)"
                                ),
                            ));
                        }
                    };
                    if slot.is_some() {
                        return Err(syn::Error::new(
                            name.span(),
                            format!("`{name}` given twice"),
                        ));
                    }
                    *slot = Some(value);
                }
            }
        }
        Ok(args)
    }
}

fn set<T>(slot: &mut Option<T>, value: T, name: &str) -> syn::Result<()> {
    if slot.is_some() {
        return Err(syn::Error::new(
            Span::call_site(),
            format!("`{name}` given twice"),
        ));
    }
    *slot = Some(value);
    Ok(())
}

fn expand(args: Args, func: ItemFn) -> syn::Result<TokenStream2> {
    let ItemFn {
        attrs,
        vis,
        sig,
        block,
    } = func;
    let output = match &sig.output {
        ReturnType::Type(_, ty) => ty.clone(),
        ReturnType::Default => {
            return Err(syn::Error::new_spanned(
                &sig.ident,
                "#[aim::action] needs a function returning Result<T, E> where \
                 E: From<aim_client::Error> + Display (a denial is returned as Err)",
            ));
        }
    };
    if sig.constness.is_some() {
        return Err(syn::Error::new_spanned(
            sig.constness,
            "#[aim::action] cannot guard a const fn",
        ));
    }
    let krate = args
        .krate
        .map(|p| quote!(#p))
        .unwrap_or_else(|| quote!(::aim));
    let private = quote!(#krate::__private);
    let action = &args.action;
    let mut request = quote!(#private::ActionRequest::new(#action));
    if let Some(r) = &args.resource {
        request = quote!(#request.resource(#r));
    }
    if let Some(c) = &args.context {
        request = quote!(#request.context(#private::context(#c)));
    }
    if let Some(r) = &args.risk_level {
        request = quote!(#request.risk_level(#r));
    }
    let client = args
        .client
        .map(|c| quote!(#c))
        .unwrap_or_else(|| quote!(#private::DefaultClient));
    let body = if sig.asyncness.is_some() {
        quote!({
            let __aim_client = #private::ClientSource::aim_client(#client);
            let __aim_request = #request;
            #private::guard_async(__aim_client, __aim_request, move || {
                #private::typed_future::<_, _, _>(async move {
                    let __aim_out: #output = #block;
                    __aim_out
                })
            })
            .await
        })
    } else {
        quote!({
            let __aim_client = #private::ClientSource::aim_client(#client);
            let __aim_request = #request;
            #private::guard_blocking(__aim_client, __aim_request, move || -> #output #block)
        })
    };
    Ok(quote! {
        #(#attrs)*
        #vis #sig #body
    })
}
