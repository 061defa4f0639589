use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;

use crate::parse::ContractDef;

pub(crate) fn expand(def: &ContractDef) -> TokenStream {
    let vis = &def.item.vis;
    let name = &def.item.ident;
    let service = &def.service;
    let trait_attrs = &def.item.attrs;
    let contract_ty = format_ident!("{}Contract", name);
    let server_ty = format_ident!("{}Server", name);
    let client_ty = format_ident!("{}Client", name);
    let krate = quote!(::clamator);

    let no_params = quote!(#krate::NoParams);
    // The params type on the wire, the trait method's params argument, and the argument list
    // a handler passes on (empty for a method without params).
    let params_of = |m: &crate::parse::MethodDef| match &m.params {
        Some((pat, ty)) => (quote!(#ty), quote!(#pat: #ty), quote!(params)),
        None => (no_params.clone(), quote!(), quote!()),
    };

    let trait_methods = def.methods.iter().map(|m| {
        let ident = &m.ident;
        let attrs = &m.attrs;
        let (_, arg, _) = params_of(m);
        let output = match &m.result {
            Some((_, full)) => quote!(#full),
            None => quote!(()),
        };
        quote_spanned! {m.span=>
            #(#attrs)*
            fn #ident(&self, #arg) -> impl ::core::future::Future<Output = #output> + ::core::marker::Send;
        }
    });

    let declare = def.methods.iter().map(|m| {
        let wire = &m.wire;
        let (pty, _, _) = params_of(m);
        let idempotent = m.idempotent.then(|| quote!(.idempotent()));
        let describe = m.doc.as_ref().map(|d| quote!(.describe(#d)));
        match &m.result {
            Some((ok, _)) => quote!(.typed_method::<#pty, #ok>(#wire) #idempotent #describe),
            None => quote!(.typed_notification::<#pty>(#wire) #idempotent #describe),
        }
    });
    let service_description = def.doc.as_ref().map(|d| quote!(.service_description(#d)));

    let handlers = def.methods.iter().map(|m| {
        let wire = &m.wire;
        let ident = &m.ident;
        let (pty, _, pass) = params_of(m);
        match &m.result {
            Some((_, full)) => {
                // The handler's error type converts by autoref specialisation (see
                // `clamator_protocol::__private`), spanned at the return type so a type that does
                // not convert is reported there.
                let convert = quote_spanned! {full.span()=>
                    {
                        #[allow(unused_imports)]
                        use #krate::__private::{ViaBox as _, ViaDeref as _, ViaFrom as _};
                        (&&#krate::__private::ErrorWrap::new(e)).convert_error()
                    }
                };
                quote! {
                    .handle(#wire, {
                        let inner = ::std::sync::Arc::clone(&inner);
                        move |params: #pty| {
                            let inner = ::std::sync::Arc::clone(&inner);
                            async move {
                                let _ = &params;
                                inner.#ident(#pass).await.map_err(|e| #convert)
                            }
                        }
                    })
                }
            }
            None => quote! {
                .handle_notification(#wire, {
                    let inner = ::std::sync::Arc::clone(&inner);
                    move |params: #pty| {
                        let inner = ::std::sync::Arc::clone(&inner);
                        async move {
                            let _ = &params;
                            inner.#ident(#pass).await
                        }
                    }
                })
            },
        }
    });

    let client_methods = def.methods.iter().map(|m| {
        let wire = &m.wire;
        let ident = &m.ident;
        let (arg, send) = match &m.params {
            Some((_, ty)) => (quote!(params: #ty), quote!(&params)),
            None => (quote!(), quote!(&#no_params {})),
        };
        let docs: Vec<_> = m.attrs.iter().filter(|a| a.path().is_ident("doc")).collect();
        let fallback = docs.is_empty().then(|| {
            let text = format!("Calls `{service}.{wire}`.");
            quote!(#[doc = #text])
        });
        let attrs = docs.into_iter().map(|a| quote!(#a)).chain(fallback);
        match &m.result {
            Some((ok, _)) => quote! {
                #(#attrs)*
                pub async fn #ident(&self, #arg) -> ::core::result::Result<#ok, #krate::CallError> {
                    #krate::RpcClient::call(&self.client, #service, #wire, #send, self.timeout).await
                }
            },
            None => quote! {
                #(#attrs)*
                pub async fn #ident(&self, #arg) -> ::core::result::Result<(), #krate::CallError> {
                    #krate::RpcClient::notify(&self.client, #service, #wire, #send).await
                }
            },
        }
    });

    let server_doc = format!(
        "Serves a [`{name}`] implementation: give `{server_ty}::new(impl)` to a server builder's `service`."
    );
    let client_doc = format!("Typed client of the `{service}` service over any clamator client.");
    let contract_doc =
        format!("The `{service}` contract descriptor: methods, kinds and JSON Schemas.");

    quote! {
        #(#trait_attrs)*
        #vis trait #name: ::core::marker::Send + ::core::marker::Sync + 'static {
            #(#trait_methods)*
        }

        #[doc = #contract_doc]
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        #vis struct #contract_ty;

        impl #contract_ty {
            /// The service name.
            pub const SERVICE: &'static str = #service;

            /// The contract descriptor (built once, then cloned cheaply).
            pub fn descriptor() -> #krate::Contract {
                static CONTRACT: ::std::sync::OnceLock<#krate::Contract> = ::std::sync::OnceLock::new();
                CONTRACT
                    .get_or_init(|| {
                        #krate::Contract::builder(#service)
                            #service_description
                            #(#declare)*
                            .build()
                            .expect("names are checked by #[clamator::contract] at compile time")
                    })
                    .clone()
            }
        }

        #[doc = #server_doc]
        #vis struct #server_ty<T> {
            inner: ::std::sync::Arc<T>,
        }

        impl<T> ::core::fmt::Debug for #server_ty<T> {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.debug_struct(stringify!(#server_ty)).finish_non_exhaustive()
            }
        }

        impl<T: #name> #server_ty<T> {
            /// Wraps an implementation.
            pub fn new(inner: T) -> Self {
                Self { inner: ::std::sync::Arc::new(inner) }
            }

            /// Wraps a shared implementation.
            pub fn from_arc(inner: ::std::sync::Arc<T>) -> Self {
                Self { inner }
            }
        }

        impl<T: #name> #krate::IntoRpcService for #server_ty<T> {
            fn into_rpc_service(self) -> #krate::RpcService {
                let inner = self.inner;
                #krate::RpcService::for_contract(#contract_ty::descriptor())
                    #(#handlers)*
                    .build()
                    .expect("handlers are generated from the same contract")
            }
        }

        #[doc = #client_doc]
        #[derive(Debug, Clone)]
        #vis struct #client_ty<C> {
            client: C,
            timeout: ::core::option::Option<::std::time::Duration>,
        }

        impl<C: #krate::RpcClient> #client_ty<C> {
            /// Wraps a clamator client (memory, Redis, ...).
            pub fn new(client: C) -> Self {
                Self { client, timeout: ::core::option::Option::None }
            }

            /// A copy whose calls use `timeout` instead of the client's default.
            #[must_use]
            pub fn with_timeout(&self, timeout: ::std::time::Duration) -> Self {
                Self { client: self.client.clone(), timeout: ::core::option::Option::Some(timeout) }
            }

            /// The underlying client.
            pub fn inner(&self) -> &C {
                &self.client
            }

            #(#client_methods)*
        }
    }
}
