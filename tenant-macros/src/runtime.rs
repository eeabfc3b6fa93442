//! Where generated code finds the runtime: the one helper every expansion uses, so that
//! `crate = path` means the same in the derive and in every function-like macro.

use proc_macro2::TokenStream;
use quote::quote;
use syn::Path;

/// The path generated code uses to reach the runtime's hidden `__private` module:
/// `::tenant_runtime::__private`, or `<krate>::__private` when the user wrote
/// `crate = <krate>` (a library that re-exports the runtime).
pub fn runtime_path(krate: Option<&Path>) -> TokenStream {
    match krate {
        Some(krate) => quote!(#krate::__private),
        None => quote!(::tenant_runtime::__private),
    }
}
