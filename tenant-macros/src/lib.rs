//! Macros for `tenant`: `#[derive(Model)]`, which turns a struct into SQL templates with
//! schema slots; `query!`/`query_as!`/`query_scalar!`, SQL over model placeholders
//! checked while compiling; and `embed_migrations!`, which embeds checked SQL migrations.
//! Use them through `tenant_runtime`, which re-exports them (and documents them, with
//! examples).

mod ast;
mod attr;
mod check;
mod ctxt;
mod expand;
mod ident;
mod migrations;
mod query;

use proc_macro::TokenStream;
use syn::{parse_macro_input, DeriveInput};

/// Derives `tenant_runtime::Model` (and `Keyed` when a field is a primary key).
///
/// See the `tenant_runtime::Model` documentation for the attributes.
#[proc_macro_derive(Model, attributes(tenant))]
pub fn derive_model(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    expand::derive_model(&input).into()
}

/// SQL over model placeholders, checked while compiling; rows are `tokio_postgres::Row`s.
/// Documented, with examples, as `tenant_runtime::query!`.
#[proc_macro]
pub fn query(input: TokenStream) -> TokenStream {
    query::expand(query::Kind::Rows, input.into())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Like `query!`, with rows decoded into a model. Documented as `tenant_runtime::query_as!`.
#[proc_macro]
pub fn query_as(input: TokenStream) -> TokenStream {
    query::expand(query::Kind::As, input.into())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Like `query!`, with each row one value. Documented as `tenant_runtime::query_scalar!`.
#[proc_macro]
pub fn query_scalar(input: TokenStream) -> TokenStream {
    query::expand(query::Kind::Scalar, input.into())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Embeds the SQL migrations of a directory (relative to the crate's `Cargo.toml`), checked
/// while compiling: `embed_migrations!("migrations")`, or with named slots
/// `embed_migrations!("migrations", slots = ["shared"])`.
///
/// See `tenant_runtime::embed_migrations` for the rules.
#[proc_macro]
pub fn embed_migrations(input: TokenStream) -> TokenStream {
    let args = parse_macro_input!(input as migrations::Args);
    migrations::expand(args).into()
}
