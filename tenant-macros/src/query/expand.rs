//! Code generation: a `static` template whose pieces are built at compile time from the
//! models' consts, and the arguments bound by reference with their types checked against
//! the columns they are compared with.
//!
//! A column placeholder `{Model.column}` becomes a `const` index into `Model::COLUMNS`,
//! found by name at compile time; when there is no such column, evaluating it fails with a
//! message that names what was written, the model and its columns. The index gives the
//! column's SQL name (for the template) and its type (`ColumnAt<I>`, for the arguments).

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Ident, Path};

use super::analyze::{analyze, Analysis};
use super::input::{Input, Kind};
use super::placeholder::{self, Segment, Sql, Target};
use crate::ctxt::Ctxt;
use crate::runtime::runtime_path;

/// Checks the input; the generated statement, or `None` with the errors in `cx`.
pub fn expand(cx: &Ctxt, input: &Input) -> Option<TokenStream> {
    let span = input.sql.span();
    let sql = placeholder::scan(&input.sql, cx)?;
    let scalar = matches!(input.kind, Kind::Scalar);
    let analysis = analyze(&sql, input.args.len(), scalar, input.kind.name(), cx, span)?;
    if let Some(extra) = input.args.get(analysis.max_param) {
        let max = analysis.max_param;
        let given = input.args.len();
        let uses = match max {
            0 => "no parameters".to_owned(),
            1 => "one parameter, `$1`".to_owned(),
            n => format!("{n} parameters, `$1` to `${n}`"),
        };
        cx.error_spanned_by(
            extra,
            format!(
                "{given} argument{} given but the SQL uses {uses}: remove this argument, or use it in the SQL as `${}`",
                if given == 1 { "" } else { "s" },
                max + 1
            ),
        );
    }
    if cx.has_errors() {
        return None;
    }
    Some(generate(input, &sql, &analysis))
}

fn path_text(path: &Path) -> String {
    quote!(#path).to_string().replace(' ', "")
}

fn generate(input: &Input, sql: &Sql, analysis: &Analysis) -> TokenStream {
    let p = runtime_path(input.krate.as_ref());
    let span = placeholder::code_span(&input.sql);

    // One checked column index per distinct `{Model.column}` (by model and column), so an
    // unknown column is one error however often it is used.
    let mut column_items = Vec::new();
    let mut column_keys: Vec<(String, String)> = Vec::new();
    // Per placeholder: the consts of its column's index and SQL name.
    let mut column_index: Vec<Option<(Ident, Ident)>> = Vec::new();
    for ph in &sql.placeholders {
        let Target::Column {
            model,
            qualifier,
            column,
        } = &ph.target
        else {
            column_index.push(None);
            continue;
        };
        let key = (path_text(model), column.clone());
        let n = match column_keys.iter().position(|k| *k == key) {
            Some(n) => n,
            None => {
                let n = column_keys.len();
                let written = format!(
                    "{{{}.{column}}}",
                    qualifier.clone().unwrap_or_else(|| key.0.clone())
                );
                let name = format_ident!("__TENANT_COLUMN_{}", n, span = Span::mixed_site());
                let sql_name =
                    format_ident!("__TENANT_COLUMN_NAME_{}", n, span = Span::mixed_site());
                // A `const` panic is a compile error at the literal; the message is built
                // at compile time from `Model::COLUMNS`. The name is a `const` of its own so
                // that the template's pieces can borrow it for `'static`.
                let check = quote_spanned! {span=>
                    const #name: usize = {
                        const LEN: usize = #p::unknown_column_len::<#model>(#column, #written);
                        const MESSAGE: [u8; LEN] =
                            #p::unknown_column_message::<#model, LEN>(#column, #written);
                        if LEN != 0 {
                            ::core::panic!("{}", #p::utf8(&MESSAGE));
                        }
                        #p::column_index::<#model>(#column)
                    };
                    const #sql_name: &str = <#model as #p::Model>::COLUMNS[#name].name;
                };
                column_items.push(check);
                column_keys.push(key);
                n
            }
        };
        column_index.push(Some((
            format_ident!("__TENANT_COLUMN_{}", n, span = Span::mixed_site()),
            format_ident!("__TENANT_COLUMN_NAME_{}", n, span = Span::mixed_site()),
        )));
    }

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
            Target::Column { qualifier, .. } => {
                if let Some(q) = qualifier {
                    text.push_str(&format!("\"{q}\"."));
                }
                text.push('"');
                flush(&mut text, &mut pieces);
                let (_, name) = column_index[index].as_ref().expect("a column placeholder");
                pieces.push(quote!(#p::Piece::Sql(#p::Cow::Borrowed(#name))));
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

    // The arguments are borrowed in the scrutinee of a `match`, where temporaries live to
    // the end of the caller's statement (as before), and bound by name in its one arm,
    // next to the column indexes they are checked against.
    let refs = input.args.iter().map(|arg| quote!(&(#arg)));
    let names: Vec<Ident> = input
        .args
        .iter()
        .enumerate()
        .map(|(i, arg)| {
            Ident::new(
                &format!("__tenant_arg_{i}"),
                Span::mixed_site().located_at(arg.span()),
            )
        })
        .collect();
    let binds: Vec<TokenStream> = input
        .args
        .iter()
        .zip(&names)
        .enumerate()
        .map(|(i, (arg, name))| {
            let arg_span = arg.span();
            let tied = analysis.ties.get(&(i + 1)).map(|&index| {
                (
                    &sql.placeholders[index].target,
                    column_index[index].as_ref().map(|(index, _)| index),
                )
            });
            match tied {
                Some((Target::Column { model, .. }, Some(column))) => {
                    quote_spanned!(arg_span=> #p::bind_at::<#model, #column, _>(#name))
                }
                _ => quote_spanned!(arg_span=> #p::bind(#name)),
            }
        })
        .collect();
    let statement = constructor(input, &p, template, &binds);
    quote! {
        match (#(#refs,)*) {
            (#(#names,)*) => {
                #(#column_items)*
                #statement
            }
        }
    }
}

fn constructor(
    input: &Input,
    p: &TokenStream,
    template: TokenStream,
    args: &[TokenStream],
) -> TokenStream {
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
pub fn stub(input: &Input, errors: syn::Error) -> TokenStream {
    let p = runtime_path(input.krate.as_ref());
    let errors = errors.into_compile_error();
    let template = quote! {
        {
            static __TENANT_TEMPLATE: #p::Template = #p::Template::from_static(&[]);
            &__TENANT_TEMPLATE
        }
    };
    let statement = constructor(input, &p, template, &[]);
    quote! {
        {
            #errors
            #statement
        }
    }
}
