//! The macro input: `[crate = path,] [Model,] "SQL", args...`.

use proc_macro2::TokenStream;
use syn::parse::{ParseStream, Parser};
use syn::punctuated::Punctuated;
use syn::{Expr, ExprLit, Lit, LitStr, Path, Token, Type};

use crate::attr::parse_crate;
use crate::ctxt::Ctxt;

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
    /// `crate = path`, first of all arguments.
    pub krate: Option<Path>,
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

/// Reads the input. `Err` when it cannot be read at all; a quoted `crate = "..."` is an
/// error in `cx` (the input is read on).
pub fn parse(cx: &Ctxt, kind: Kind, tokens: TokenStream) -> syn::Result<Input> {
    let name = kind.name();
    let parser = |input: ParseStream| {
        let krate = if input.peek(Token![crate]) && input.peek2(Token![=]) {
            input.parse::<Token![crate]>()?;
            input.parse::<Token![=]>()?;
            let krate = parse_crate(cx, input)?;
            input.parse::<Token![,]>()?;
            Some(krate)
        } else {
            None
        };
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
        // `crate = path` among the arguments is reported and taken as meant, so the argument
        // count and the paths come out as the user wants.
        let mut krate = krate;
        let mut args = Vec::new();
        for expr in exprs {
            match crate_argument(&expr) {
                Some(path) => {
                    cx.error_spanned_by(
                        &expr,
                        format!(
                            "`crate = ...` comes first, before the SQL: `{name}(crate = my_lib::tenant, \"SELECT ...\", args...)`"
                        ),
                    );
                    krate.get_or_insert(path);
                }
                None => args.push(expr),
            }
        }
        Ok((krate, model, sql, args))
    };
    let (krate, model, sql, args) = parser.parse2(tokens)?;
    Ok(Input {
        kind,
        krate,
        model,
        sql,
        args,
    })
}

/// The path of `crate = path` written as an argument (it goes first).
fn crate_argument(expr: &Expr) -> Option<Path> {
    let Expr::Assign(assign) = expr else {
        return None;
    };
    match (&*assign.left, &*assign.right) {
        (Expr::Path(left), Expr::Path(right)) if left.path.is_ident("crate") => {
            Some(right.path.clone())
        }
        _ => None,
    }
}
