//! Macros for `tenant`: `#[derive(Model)]`, which turns a struct into SQL templates with
//! schema slots; `#[derive(SqlEnum)]`, which maps a fieldless enum to a PostgreSQL enum type
//! in the slots of the models using it; `query!`/`query_as!`/`query_scalar!`, SQL over model placeholders
//! checked while compiling; and `embed_migrations!`, which embeds checked SQL migrations.
//! Use them through `tenant_runtime`, which re-exports them (and documents them, with
//! examples).
//!
//! One pipeline for all five: the input is read into a form that keeps the user's tokens
//! for spans, every problem is collected in one `Ctxt` (so one build shows them all), and
//! the output reaches the runtime only through `runtime_path` (`::tenant_runtime::__private`,
//! or `<path>::__private` with `crate = <path>`). With errors, the output is the errors next
//! to a stub of the right type, so they do not cascade.
//!
//! # `crate = path`
//!
//! A library that re-exports `tenant_runtime` (say as `my_lib::tenant`) lets its users
//! derive and query without depending on `tenant_runtime` themselves, by telling every macro
//! where the runtime is, with one syntax, a bare path:
//!
//! ```text
//! #[derive(Model)]
//! #[tenant(table = "invoices", crate = my_lib::tenant)]
//! struct Invoice { .. }
//!
//! my_lib::tenant::query!(crate = my_lib::tenant, "SELECT {Invoice.*} FROM {Invoice}")
//! my_lib::tenant::query_as!(crate = my_lib::tenant, Invoice, "SELECT {Invoice.*} FROM {Invoice}")
//! my_lib::tenant::query_scalar!(crate = my_lib::tenant, "SELECT count(*) FROM {Invoice}")
//! my_lib::tenant::embed_migrations!("migrations", crate = my_lib::tenant)
//! ```
//!
//! In the query macros `crate = path` comes first, before the model and the SQL (so the
//! arguments after the SQL stay the SQL's `$1..$n`); in `embed_migrations!` it is one of
//! the named arguments after the directory. A quoted path (`crate = "my_lib::tenant"`) is
//! an error that says to drop the quotes.
//!
//! # Braces in SQL
//!
//! The query macros and the migrations read braces by one rule, tenant-sql's lexer
//! (`tenant_sql::lex`): inside string literals (`'...'`, `E'...'`), quoted identifiers
//! (`"..."`) and comments (`--`, `/* */`), braces are data, so `'{1,2}'::int[]` and
//! `'{"a": 1}'` are written as they are. In SQL text, `{...}` is a placeholder and `{{` /
//! `}}` are a literal `{` / `}`; any other brace is an error. The body of a dollar quote
//! (`$$ ... $$`, usually a function body) is SQL text by the same rule: its placeholders
//! are placeholders and its string literals, quoted identifiers and comments data.
#![forbid(unsafe_code)]

mod ast;
mod attr;
mod check;
mod ctxt;
mod expand;
mod ident;
mod migrations;
mod query;
mod runtime;
mod schema;
#[cfg(test)]
mod snapshots;
mod sql_enum;

use proc_macro::TokenStream;
use syn::{parse_macro_input, DeriveInput};

/// Derives `tenant_runtime::Model` (and `Keyed` when a field is a primary key).
///
/// See the `tenant_runtime::Model` documentation for the attributes; `crate = path` (a
/// bare path, e.g. `#[tenant(crate = my_lib::tenant)]`) points the generated code at a
/// re-export of the runtime.
#[proc_macro_derive(Model, attributes(tenant))]
pub fn derive_model(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    expand::derive_model(&input).into()
}

/// Derives `tenant_runtime::SqlEnum` (with `SqlType`, `ToSql` and `FromSql`) for a fieldless
/// enum: a PostgreSQL enum type in the slot of each model that uses it.
///
/// See the `tenant_runtime::SqlEnum` documentation for the attributes: `type_name = "..."`,
/// `rename_all = "..."` and `crate = path` on the enum, `rename = "..."` on a variant.
#[proc_macro_derive(SqlEnum, attributes(tenant))]
pub fn derive_sql_enum(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    sql_enum::derive(&input).into()
}

/// SQL over model placeholders, checked while compiling; rows are `tokio_postgres::Row`s.
/// Documented, with examples, as `tenant_runtime::query!`.
///
/// `query!([crate = path,] "SQL", args...)`: placeholders `{Model}`, `{Model AS alias}`,
/// `{Model.column}`, `{alias.column}`, `{Model.*}`, `{alias.*}`; braces follow the rule
/// above (data in literals, `{{`/`}}` literal in SQL text). An unknown column is a compile
/// error that names the column as written, the model, and the model's columns.
#[proc_macro]
pub fn query(input: TokenStream) -> TokenStream {
    query::expand(query::Kind::Rows, input.into()).into()
}

/// Like `query!`, with rows decoded into a model: `query_as!([crate = path,] Model, "SQL",
/// args...)`. Documented as `tenant_runtime::query_as!`.
#[proc_macro]
pub fn query_as(input: TokenStream) -> TokenStream {
    query::expand(query::Kind::As, input.into()).into()
}

/// Like `query!`, with each row one value: `query_scalar!([crate = path,] "SQL", args...)`.
/// Documented as `tenant_runtime::query_scalar!`.
#[proc_macro]
pub fn query_scalar(input: TokenStream) -> TokenStream {
    query::expand(query::Kind::Scalar, input.into()).into()
}

/// Embeds the SQL migrations of a directory (relative to the crate's `Cargo.toml`), checked
/// while compiling: `embed_migrations!("migrations")`, with named slots
/// `embed_migrations!("migrations", slots = ["shared"])` (a slot cannot be called `tenant`,
/// the tenant's own slot), and from a library that re-exports the runtime
/// `embed_migrations!("migrations", crate = my_lib::tenant)`. Every problem of every file
/// is reported in one build.
///
/// See `tenant_runtime::embed_migrations` for the rules.
#[proc_macro]
pub fn embed_migrations(input: TokenStream) -> TokenStream {
    migrations::expand(input.into()).into()
}
