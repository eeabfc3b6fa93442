//! Code generation: a `static` template whose pieces are built at compile time from the
//! models' consts, and the arguments bound by reference with their types checked against
//! the columns they are compared with.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;

use super::analyze::{analyze, Analysis};
use super::input::{Input, Kind};
use super::placeholder::{self, Segment, Sql, Target};
use crate::ident::screaming;

pub fn expand(input: &Input) -> TokenStream {
    let span = input.sql.span();
    let mut errors = Vec::new();
    let sql = placeholder::scan(&input.sql, &mut errors);
    let analysis = sql.as_ref().and_then(|sql| {
        let mut messages = Vec::new();
        let scalar = matches!(input.kind, Kind::Scalar);
        let analysis = analyze(
            sql,
            input.args.len(),
            scalar,
            input.kind.name(),
            &mut messages,
        );
        errors.extend(messages.into_iter().map(|m| syn::Error::new(span, m)));
        analysis
    });
    if let Some(analysis) = &analysis {
        if let Some(extra) = input.args.get(analysis.max_param) {
            let max = analysis.max_param;
            let given = input.args.len();
            let uses = match max {
                0 => "no parameters".to_owned(),
                1 => "one parameter, `$1`".to_owned(),
                n => format!("{n} parameters, `$1` to `${n}`"),
            };
            errors.push(syn::Error::new(
                extra.span(),
                format!(
                    "{given} arguments given but the SQL uses {uses}: remove this argument, or use it in the SQL as `${}`",
                    max + 1
                ),
            ));
        }
    }
    match (sql, analysis) {
        (Some(sql), Some(analysis)) if errors.is_empty() => generate(input, &sql, &analysis),
        _ => stub(input, errors),
    }
}

/// Tokens of `::tenant_runtime::__private`.
fn private() -> TokenStream {
    quote!(::tenant_runtime::__private)
}

fn generate(input: &Input, sql: &Sql, analysis: &Analysis) -> TokenStream {
    let p = private();
    let span = placeholder::code_span(&input.sql);
    let mut items = Vec::new();
    let mut pieces = Vec::new();
    let mut text = String::new();
    let flush = |text: &mut String, pieces: &mut Vec<TokenStream>| {
        if !text.is_empty() {
            let t = std::mem::take(text);
            pieces.push(quote!(#p::Piece::Sql(#p::Cow::Borrowed(#t))));
        }
    };
    for segment in &sql.segments {
        let index = match segment {
            Segment::Text(t) => {
                text.push_str(t);
                continue;
            }
            Segment::Placeholder(index) => *index,
        };
        match &sql.placeholders[index].target {
            Target::Table { model, alias } => {
                flush(&mut text, &mut pieces);
                pieces.push(quote_spanned!(span=> #p::Piece::Schema(<#model as #p::Model>::SLOT)));
                text.push_str(".\"");
                flush(&mut text, &mut pieces);
                pieces.push(
                    quote_spanned!(span=> #p::Piece::Sql(#p::Cow::Borrowed(<#model as #p::Model>::TABLE))),
                );
                text.push('"');
                if let Some(alias) = alias {
                    text.push_str(&format!(" AS \"{alias}\""));
                }
            }
            Target::Column {
                model,
                qualifier,
                column,
            } => {
                if let Some(q) = qualifier {
                    text.push_str(&format!("\"{q}\"."));
                }
                text.push('"');
                flush(&mut text, &mut pieces);
                let column = column_const(column, span);
                pieces.push(quote_spanned!(span=>
                    #p::Piece::Sql(#p::Cow::Borrowed(#p::column_name::<#model, _>(#model::#column)))
                ));
                text.push('"');
            }
            Target::Star { model, qualifier } => {
                flush(&mut text, &mut pieces);
                let len = format_ident!("__TENANT_STAR_LEN_{}", index);
                let bytes = format_ident!("__TENANT_STAR_BYTES_{}", index);
                let star = format_ident!("__TENANT_STAR_{}", index);
                let qualifier = match qualifier {
                    Some(q) => quote!(#q),
                    None => quote_spanned!(span=> <#model as #p::Model>::TABLE),
                };
                let columns = quote_spanned!(span=> <#model as #p::Model>::COLUMNS);
                items.push(quote! {
                    const #len: usize = #p::star_len(#columns, #qualifier);
                    const #bytes: [u8; #len] = #p::star_bytes::<#len>(#columns, #qualifier);
                    const #star: &str = #p::utf8(&#bytes);
                });
                pieces.push(quote!(#p::Piece::Sql(#p::Cow::Borrowed(#star))));
            }
        }
    }
    flush(&mut text, &mut pieces);
    let template = quote! {
        {
            #(#items)*
            static __TENANT_TEMPLATE: #p::Template = #p::Template::from_static(&[#(#pieces),*]);
            &__TENANT_TEMPLATE
        }
    };

    let args = input.args.iter().enumerate().map(|(i, arg)| {
        let arg_span = arg.span();
        let column = analysis
            .ties
            .get(&(i + 1))
            .map(|&index| &sql.placeholders[index].target);
        match column {
            Some(Target::Column { model, column, .. }) => {
                let column = column_const(column, span);
                quote_spanned!(arg_span=> #p::bind_as(#model::#column, &(#arg)))
            }
            _ => quote_spanned!(arg_span=> #p::bind(&(#arg))),
        }
    });
    let args: Vec<TokenStream> = args.collect();
    constructor(input, template, &args)
}

/// The typed-column const `{Model.column}` refers to: `Model::COLUMN`.
fn column_const(column: &str, span: Span) -> syn::Ident {
    format_ident!("{}", screaming(column), span = span)
}

fn constructor(input: &Input, template: TokenStream, args: &[TokenStream]) -> TokenStream {
    let p = private();
    let n = args.len();
    let args = quote!([#(#args),*]);
    match (&input.kind, &input.model) {
        (Kind::As, Some(model)) => {
            // A free function, so a non-model is reported with `Model`'s own message.
            let ctor = quote_spanned!(model.span()=> #p::query_as::<#model, #n>);
            quote!(#ctor(#template, #args))
        }
        (Kind::Scalar, _) => quote!(#p::QueryScalar::__new(#template, #args)),
        _ => quote!(#p::Query::__new(#template, #args)),
    }
}

/// The errors, and a statement of the right type so that the caller's code type-checks
/// without errors of its own.
fn stub(input: &Input, errors: Vec<syn::Error>) -> TokenStream {
    let p = private();
    let errors = errors.iter().map(syn::Error::to_compile_error);
    let template = quote! {
        {
            static __TENANT_TEMPLATE: #p::Template = #p::Template::from_static(&[]);
            &__TENANT_TEMPLATE
        }
    };
    let statement = constructor(input, template, &[]);
    quote! {
        {
            #(#errors)*
            #statement
        }
    }
}
