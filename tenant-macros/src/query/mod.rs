//! `query!`, `query_as!` and `query_scalar!`: SQL over model placeholders, checked while
//! compiling.
//!
//! Phases, one module each: read the macro input (`input.rs`) → split the literal into SQL
//! text and placeholders (`placeholder.rs`) → check the SQL with sqlparser and tie `$n` to
//! columns (`analyze.rs`) → generate the template and the typed argument bindings
//! (`expand.rs`). What the macro cannot know (does `{Invoice}` name a model? does it have a
//! `paid` column? does an argument bind as that column's type?) it leaves to rustc, through
//! generated code spanned at the literal or the argument.

mod analyze;
mod expand;
mod input;
mod placeholder;

pub use input::Kind;

use proc_macro2::TokenStream;

/// Expands one invocation. `Err` only when the input cannot be read at all.
pub fn expand(kind: Kind, input: TokenStream) -> syn::Result<TokenStream> {
    let input = input::parse(kind, input)?;
    Ok(expand::expand(&input))
}
