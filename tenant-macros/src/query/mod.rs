//! `query!`, `query_as!` and `query_scalar!`: SQL over model placeholders, checked while
//! compiling.
//!
//! Phases, one module each: read the macro input (`input.rs`) → split the literal into SQL
//! text and placeholders with tenant-sql's lexer (`placeholder.rs`) → check the SQL with
//! sqlparser and tie `$n` to columns (`analyze.rs`) → generate the template and the typed
//! argument bindings (`expand.rs`). What the macro cannot know (does `{Invoice}` name a
//! model? does it have a `paid` column? does an argument bind as that column's type?) it
//! leaves to rustc, through generated code spanned at the literal or the argument: the
//! column check is a `const` that fails with a message naming the column and listing the
//! model's columns.
//!
//! Every error goes to one [`Ctxt`]; with any, the output is the errors next to a statement
//! of the right type, so the caller's code adds no errors of its own.

mod analyze;
mod expand;
mod input;
mod placeholder;

pub use input::Kind;

use proc_macro2::TokenStream;

use crate::ctxt::Ctxt;

/// Expands one invocation.
pub fn expand(kind: Kind, tokens: TokenStream) -> TokenStream {
    let cx = Ctxt::new();
    let input = input::parse(&cx, kind, tokens);
    let generated = input
        .as_ref()
        .ok()
        .and_then(|input| expand::expand(&cx, input));
    match (input, cx.check()) {
        (Ok(_), Ok(())) => generated.expect("a statement is generated unless there is an error"),
        (Ok(input), Err(errors)) => expand::stub(&input, errors),
        // Nothing to build a statement from.
        (Err(e), errors) => {
            let mut e = e;
            if let Err(more) = errors {
                e.combine(more);
            }
            e.into_compile_error()
        }
    }
}
