//! Macros for `tenant`: `#[derive(Model)]`, which turns a struct into SQL templates with
//! schema slots, and `embed_migrations!`, which embeds checked SQL migrations. Use them
//! through `tenant_runtime`, which re-exports them.

mod ast;
mod attr;
mod check;
mod ctxt;
mod expand;
mod ident;
mod migrations;

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
