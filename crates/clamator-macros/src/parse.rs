use proc_macro2::{Span, TokenStream};
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{
    Attribute, Error, FnArg, GenericArgument, ItemTrait, LitStr, Meta, Pat, PathArguments,
    ReturnType, Token, TraitItem, TraitItemFn, Type,
};

pub(crate) struct ContractDef {
    pub(crate) service: String,
    /// The trait's doc comment.
    pub(crate) doc: Option<String>,
    pub(crate) item: ItemTrait,
    pub(crate) methods: Vec<MethodDef>,
}

pub(crate) struct MethodDef {
    pub(crate) ident: syn::Ident,
    pub(crate) wire: String,
    pub(crate) attrs: Vec<Attribute>,
    /// The params argument; `None` for a method without params (wire params `{}`).
    pub(crate) params: Option<(Pat, Type)>,
    /// The doc comment's text, if any.
    pub(crate) doc: Option<String>,
    /// `Some((T, full return type))` for requests; `None` for notifications.
    pub(crate) result: Option<(Type, Type)>,
    /// `#[method(idempotent)]`.
    pub(crate) idempotent: bool,
    pub(crate) span: Span,
}

fn is_valid_service(name: &str) -> bool {
    let mut b = name.bytes();
    matches!(b.next(), Some(b'a'..=b'z'))
        && b.all(|c| matches!(c, b'a'..=b'z' | b'0'..=b'9' | b'-'))
}

fn is_valid_method(name: &str) -> bool {
    let mut b = name.bytes();
    matches!(b.next(), Some(b'a'..=b'z')) && b.all(|c| c.is_ascii_alphanumeric())
}

fn snake_to_camel(ident: &str) -> String {
    let mut out = String::with_capacity(ident.len());
    let mut upper = false;
    for c in ident.chars() {
        if c == '_' {
            upper = !out.is_empty();
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

fn parse_service(args: TokenStream) -> syn::Result<String> {
    let metas = Punctuated::<Meta, Token![,]>::parse_terminated.parse2(args)?;
    let mut service = None;
    for meta in metas {
        match meta {
            Meta::NameValue(nv) if nv.path.is_ident("service") => {
                let lit: LitStr = syn::parse2(quote::ToTokens::to_token_stream(&nv.value))?;
                if !is_valid_service(&lit.value()) {
                    return Err(Error::new(
                        lit.span(),
                        format!(
                            "invalid service name \"{}\" (must match ^[a-z][a-z0-9-]*$)",
                            lit.value()
                        ),
                    ));
                }
                service = Some(lit.value());
            }
            other => {
                return Err(Error::new(
                    other.span(),
                    "unknown argument: expected `service = \"<name>\"`",
                ))
            }
        }
    }
    service.ok_or_else(|| {
        Error::new(
            Span::call_site(),
            "missing service name: write #[clamator::contract(service = \"<name>\")]",
        )
    })
}

/// Splits a method's clamator attributes from the ones to keep; returns (is_notification,
/// wire-name override, idempotent).
fn method_attrs(f: &mut TraitItemFn) -> syn::Result<(bool, Option<LitStr>, bool)> {
    let mut notification = false;
    let mut idempotent = false;
    let mut name = None;
    let mut keep = Vec::new();
    for attr in std::mem::take(&mut f.attrs) {
        let is_notification = attr.path().is_ident("notification");
        if is_notification || attr.path().is_ident("method") {
            notification |= is_notification;
            if let Meta::List(_) = attr.meta {
                attr.parse_nested_meta(|nested| {
                    if nested.path.is_ident("name") {
                        name = Some(nested.value()?.parse::<LitStr>()?);
                        Ok(())
                    } else if nested.path.is_ident("idempotent") {
                        idempotent = true;
                        Ok(())
                    } else {
                        Err(nested.error(
                            "unknown argument: expected `name = \"<wireName>\"` or `idempotent`",
                        ))
                    }
                })?;
            }
        } else {
            keep.push(attr);
        }
    }
    f.attrs = keep;
    Ok((notification, name, idempotent))
}

fn result_ok_type(ty: &Type) -> Option<Type> {
    let Type::Path(p) = ty else { return None };
    let last = p.path.segments.last()?;
    if last.ident != "Result" {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    // `Result<T, E>`, or an alias that fixes the error type (`anyhow::Result<T>`, `io::Result<T>`).
    match args.args.first()? {
        GenericArgument::Type(t) if matches!(args.args.len(), 1 | 2) => Some(t.clone()),
        _ => None,
    }
}

fn parse_method(f: &mut TraitItemFn) -> syn::Result<MethodDef> {
    let (notification, name_override, idempotent) = method_attrs(f)?;
    let sig = &f.sig;
    if sig.asyncness.is_none() {
        return Err(Error::new(
            sig.fn_token.span(),
            "contract methods must be `async fn`",
        ));
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        return Err(Error::new(
            sig.generics.span(),
            "contract methods cannot be generic",
        ));
    }
    if let Some(body) = &f.default {
        return Err(Error::new(
            body.span(),
            "contract methods cannot have a default body",
        ));
    }
    let mut inputs = sig.inputs.iter();
    match inputs.next() {
        Some(FnArg::Receiver(r)) if r.reference.is_some() && r.mutability.is_none() => {}
        Some(other) => {
            return Err(Error::new(
                other.span(),
                "the first argument must be `&self`",
            ))
        }
        None => {
            return Err(Error::new(
                sig.paren_token.span.join(),
                "expected `(&self, params: Params)`",
            ))
        }
    }
    let params = match (inputs.next(), inputs.next()) {
        (Some(FnArg::Typed(pt)), None) => Some(((*pt.pat).clone(), (*pt.ty).clone())),
        (None, _) => None,
        (_, Some(extra)) => {
            return Err(Error::new(
                extra.span(),
                "contract methods take at most one params argument: `(&self, params: Params)` \
                 (put several values in one params struct)",
            ))
        }
        (Some(other), None) => return Err(Error::new(other.span(), "expected `params: Params`")),
    };
    if let Some((_, params_ty @ Type::Reference(_))) = &params {
        return Err(Error::new(
            params_ty.span(),
            "params must be an owned type, not a reference",
        ));
    }
    let result = match (&sig.output, notification) {
        (ReturnType::Default, true) => None,
        (ReturnType::Type(_, ty), true) => {
            return Err(Error::new(
                ty.span(),
                "a #[notification] method returns nothing: remove `-> ...`",
            ))
        }
        (ReturnType::Default, false) => return Err(Error::new(
            sig.ident.span(),
            "a method must return `Result<T, E>` (mark fire-and-forget methods #[notification])",
        )),
        (ReturnType::Type(_, ty), false) => {
            let ok = result_ok_type(ty).ok_or_else(|| {
                Error::new(
                    ty.span(),
                    "a method must return `Result<T, E>` (or an alias such as `anyhow::Result<T>`)",
                )
            })?;
            Some((ok, (**ty).clone()))
        }
    };
    let (wire, wire_span) = match name_override {
        Some(lit) => (lit.value(), lit.span()),
        None => (snake_to_camel(&sig.ident.to_string()), sig.ident.span()),
    };
    if !is_valid_method(&wire) {
        return Err(Error::new(
            wire_span,
            format!("invalid method name \"{wire}\" (must match ^[a-z][a-zA-Z0-9]*$)"),
        ));
    }
    Ok(MethodDef {
        ident: sig.ident.clone(),
        wire,
        doc: doc_text(&f.attrs),
        attrs: f.attrs.clone(),
        params,
        result,
        idempotent,
        span: sig.ident.span(),
    })
}

/// The text of `///` comments (`#[doc = "..."]`), one line each, with the one leading space
/// rustdoc strips removed; `None` when there is none.
pub(crate) fn doc_text(attrs: &[Attribute]) -> Option<String> {
    let lines: Vec<String> = attrs
        .iter()
        .filter(|a| a.path().is_ident("doc"))
        .filter_map(|a| match &a.meta {
            Meta::NameValue(nv) => match &nv.value {
                syn::Expr::Lit(syn::ExprLit {
                    lit: syn::Lit::Str(s),
                    ..
                }) => Some(s.value()),
                _ => None,
            },
            _ => None,
        })
        .flat_map(|chunk| {
            // `///` alone is `#[doc = ""]`: a blank line, which `"".lines()` would drop.
            chunk
                .split('\n')
                .map(|l| l.strip_prefix(' ').unwrap_or(l).trim_end().to_owned())
                .collect::<Vec<_>>()
        })
        .collect();
    let text = lines.join("\n").trim().to_owned();
    (!text.is_empty()).then_some(text)
}

pub(crate) fn parse(args: TokenStream, item: TokenStream) -> syn::Result<ContractDef> {
    let service = parse_service(args)?;
    let mut item: ItemTrait = syn::parse2(item)?;
    if !item.generics.params.is_empty() {
        return Err(Error::new(
            item.generics.span(),
            "contract traits cannot be generic",
        ));
    }
    let mut methods: Vec<MethodDef> = Vec::new();
    for trait_item in &mut item.items {
        let TraitItem::Fn(f) = trait_item else {
            return Err(Error::new(
                trait_item.span(),
                "contract traits contain only `async fn` methods",
            ));
        };
        let m = parse_method(f)?;
        if methods.iter().any(|o| o.wire == m.wire) {
            return Err(Error::new(
                m.span,
                format!("duplicate method name \"{}\"", m.wire),
            ));
        }
        methods.push(m);
    }
    Ok(ContractDef {
        service,
        doc: doc_text(&item.attrs),
        item,
        methods,
    })
}
