//! The `#[clamator::contract]` attribute macro. Use it through the `clamator` crate.
//!
//! ```ignore
//! #[clamator::contract(service = "arith")]
//! pub trait Arith {
//!     async fn add(&self, params: AddParams) -> Result<AddResult, RpcError>;
//!     #[notification]
//!     async fn ping(&self, params: PingParams);
//! }
//! ```
//!
//! generates the server-side trait `Arith` (implement it with plain `async fn`s), the typed
//! client `ArithClient<C>`, the service wrapper `ArithServer<T>` and the descriptor
//! `ArithContract`. See the `clamator` crate docs.

use proc_macro::TokenStream;

mod expand;
mod parse;

/// Expands a contract document (OpenRPC, as written by `clamator_codegen::to_openrpc`) into
/// the same items `clamator codegen --out-rust` writes: the params/result types and a
/// `#[clamator::contract]` trait (so `<Name>Server`, `<Name>Client`, `<Name>Contract` too).
/// The path is relative to the crate's `Cargo.toml`; the document is tracked for rebuilds.
#[proc_macro]
pub fn include_contract(input: TokenStream) -> TokenStream {
    let lit = syn::parse_macro_input!(input as syn::LitStr);
    let err = |msg: String| syn::Error::new(lit.span(), msg).to_compile_error().into();
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
    let path = std::path::Path::new(&dir).join(lit.value());
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) => return err(format!("cannot read {}: {e}", path.display())),
    };
    let value: serde_json::Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(e) => return err(format!("{} is not JSON: {e}", path.display())),
    };
    let doc = match clamator_codegen::from_openrpc(&value) {
        Ok(doc) => doc,
        Err(e) => return err(format!("{}: {e}", path.display())),
    };
    let items: proc_macro2::TokenStream = match clamator_codegen::rust_items(&doc).parse() {
        Ok(items) => items,
        Err(e) => return err(format!("generated code does not parse: {e}")),
    };
    let tracked = path.to_string_lossy().into_owned();
    quote::quote! {
        const _: &str = include_str!(#tracked);
        #items
    }
    .into()
}

/// Derives what a contract's params and result types need (`Serialize`, `Deserialize`,
/// `JsonSchema`) through the `clamator` crate's re-exports, so a crate needs no `serde` or
/// `schemars` dependency of its own. See the `clamator` crate docs.
#[proc_macro_attribute]
pub fn model(args: TokenStream, item: TokenStream) -> TokenStream {
    if !args.is_empty() {
        let args = proc_macro2::TokenStream::from(args);
        return syn::Error::new_spanned(args, "#[clamator::model] takes no arguments")
            .to_compile_error()
            .into();
    }
    let item = syn::parse_macro_input!(item as syn::DeriveInput);
    quote::quote! {
        #[derive(::clamator::serde::Serialize, ::clamator::serde::Deserialize, ::clamator::schemars::JsonSchema)]
        #[serde(crate = "::clamator::serde")]
        #[schemars(crate = "::clamator::schemars")]
        #item
    }
    .into()
}

/// Declares a clamator service contract on a trait. See the `clamator` crate docs.
#[proc_macro_attribute]
pub fn contract(args: TokenStream, item: TokenStream) -> TokenStream {
    match parse::parse(args.into(), item.into()) {
        Ok(def) => expand::expand(&def).into(),
        Err(e) => e.to_compile_error().into(),
    }
}
