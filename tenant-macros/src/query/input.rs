//! The macro input: `[Model,] "SQL", args...`.

use proc_macro2::TokenStream;
use syn::parse::{ParseStream, Parser};
use syn::punctuated::Punctuated;
use syn::{Expr, ExprLit, Lit, LitStr, Token, Type};

/// Which macro: what the rows decode into.
pub enum Kind {
    /// `query!`: `tokio_postgres::Row`s.
    Rows,
    /// `query_as!(Model, ...)`: models.
    As,
    /// `query_scalar!`: the one column's value.
    Scalar,
}

pub struct Input {
    pub kind: Kind,
    /// The model of `query_as!`.
    pub model: Option<Type>,
    pub sql: LitStr,
    pub args: Vec<Expr>,
}

impl Kind {
    pub fn name(&self) -> &'static str {
        match self {
            Kind::Rows => "query!",
            Kind::As => "query_as!",
            Kind::Scalar => "query_scalar!",
        }
    }
}

pub fn parse(kind: Kind, tokens: TokenStream) -> syn::Result<Input> {
    let name = kind.name();
    let parser = |input: ParseStream| {
        let model = match kind {
            Kind::As => {
                if input.is_empty() {
                    return Err(input.error(
                        "`query_as!` needs the model and the SQL: `query_as!(Invoice, \"SELECT {Invoice.*} FROM {Invoice}\")`",
                    ));
                }
                let model: Type = input.parse()?;
                input.parse::<Token![,]>()?;
                Some(model)
            }
            Kind::Rows | Kind::Scalar => None,
        };
        let missing = input.error(format!(
            "`{name}` needs the SQL as a string literal, e.g. `{name}(\"SELECT {{Invoice.*}} FROM {{Invoice}}\")`"
        ));
        let mut exprs = Punctuated::<Expr, Token![,]>::parse_terminated(input)?.into_iter();
        let sql = match exprs.next() {
            Some(Expr::Lit(ExprLit {
                lit: Lit::Str(sql), ..
            })) => sql,
            Some(other) => {
                return Err(syn::Error::new_spanned(
                    other,
                    format!(
                        "`{name}` needs the SQL as a string literal: it is checked while compiling, so it cannot come from a variable, a constant or a macro such as `concat!`/`format!`"
                    ),
                ))
            }
            None => return Err(missing),
        };
        Ok((model, sql, exprs.collect()))
    };
    let (model, sql, args) = parser.parse2(tokens)?;
    Ok(Input {
        kind,
        model,
        sql,
        args,
    })
}
