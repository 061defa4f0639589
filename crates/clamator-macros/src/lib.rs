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

/// Declares a clamator service contract on a trait. See the `clamator` crate docs.
#[proc_macro_attribute]
pub fn contract(args: TokenStream, item: TokenStream) -> TokenStream {
    match parse::parse(args.into(), item.into()) {
        Ok(def) => expand::expand(&def).into(),
        Err(e) => e.to_compile_error().into(),
    }
}
