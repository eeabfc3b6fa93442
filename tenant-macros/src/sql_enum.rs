//! `#[derive(SqlEnum)]`: a fieldless Rust enum as a PostgreSQL enum type that lives in the
//! slot of each model using it. The same pipeline as the model derive: read the input into
//! a form that keeps the user's tokens (`parse`), check it (`check`), generate (`expand`);
//! every error in one `Ctxt`, and the impls next to the errors so that uses of the enum do
//! not cascade.

use proc_macro2::TokenStream;
use quote::quote;
use syn::{Data, DeriveInput, Fields, Ident, LitStr, Path};

use crate::attr::{self, for_each_tenant_meta, parse_crate, parse_lit_str, Attr};
use crate::ctxt::Ctxt;
use crate::ident::{identifier_problem, snake};
use crate::runtime::runtime_path;

/// `rename_all` conventions, as written in the attribute.
const RENAME_RULES: &[&str] = &[
    "snake_case",
    "lowercase",
    "UPPERCASE",
    "SCREAMING_SNAKE_CASE",
    "kebab-case",
    "SCREAMING-KEBAB-CASE",
    "camelCase",
    "PascalCase",
];

/// PostgreSQL keeps at most this many bytes of an enum label (`NAMEDATALEN - 1`).
const MAX_LABEL_LEN: usize = 63;

struct Enum<'a> {
    ident: &'a Ident,
    type_name: String,
    type_name_lit: Option<LitStr>,
    krate: Option<Path>,
    /// `None` when the input is no enum (a struct, a union).
    variants: Option<Vec<Variant<'a>>>,
    /// Whether every variant is a unit variant (so the full impls can be generated).
    fieldless: bool,
    generic: bool,
}

struct Variant<'a> {
    ident: &'a Ident,
    label: String,
    rename: Option<LitStr>,
}

/// The expansion of `#[derive(SqlEnum)]`.
pub fn derive(input: &DeriveInput) -> TokenStream {
    let cx = Ctxt::new();
    let e = parse(&cx, input);
    check(&cx, &e);
    let errors = cx.check().err().map(syn::Error::into_compile_error);
    let p = runtime_path(e.krate.as_ref());
    let body = match &e.variants {
        Some(variants) if e.fieldless && !e.generic => expand(&e, variants, &p),
        // A generic enum (already an error) gets no impls; anything else that is no
        // fieldless enum gets impls with unreachable bodies, so its uses add no errors.
        _ if e.generic => quote!(),
        _ => stub(&e, &p),
    };
    quote! { #errors #body }
}

fn parse<'a>(cx: &Ctxt, input: &'a DeriveInput) -> Enum<'a> {
    let mut type_name = Attr::<LitStr>::none(attr::TYPE_NAME);
    let mut rename_all = Attr::<LitStr>::none(attr::RENAME_ALL);
    let mut krate = Attr::<Path>::none(attr::CRATE);
    for_each_tenant_meta(
        cx,
        &input.attrs,
        |meta| {
            if meta.path.is_ident(attr::TYPE_NAME) {
                let v = parse_lit_str(meta)?;
                type_name.set(cx, meta, v);
            } else if meta.path.is_ident(attr::RENAME_ALL) {
                let v = parse_lit_str(meta)?;
                rename_all.set(cx, meta, v);
            } else if meta.path.is_ident(attr::CRATE) {
                let v = parse_crate(cx, meta.value()?)?;
                krate.set(cx, meta, v);
            } else {
                return Ok(false);
            }
            Ok(true)
        },
        attr::ENUM_KEYS,
    );
    let rule = rename_all.get();
    let rule_name = rule.as_ref().map(LitStr::value);
    if let Some(lit) = &rule {
        if !RENAME_RULES.contains(&lit.value().as_str()) {
            cx.error_spanned_by(
                lit,
                format!(
                    "unknown `rename_all` rule {:?}; expected one of: {}",
                    lit.value(),
                    RENAME_RULES.join(", ")
                ),
            );
        }
    }

    let mut fieldless = true;
    let variants = match &input.data {
        Data::Enum(data) => Some(
            data.variants
                .iter()
                .map(|v| {
                    if !matches!(v.fields, Fields::Unit) {
                        fieldless = false;
                        cx.error_spanned_by(
                            &v.fields,
                            format!(
                                "SqlEnum variants cannot have fields: each variant is one label of the PostgreSQL enum type; make `{}` a unit variant, or store the data in columns of a model",
                                v.ident
                            ),
                        );
                    }
                    parse_variant(cx, v, rule_name.as_deref())
                })
                .collect::<Vec<_>>(),
        ),
        Data::Struct(s) => {
            cx.error_spanned_by(
                s.struct_token,
                "SqlEnum can only be derived for a fieldless enum (each variant one label of the PostgreSQL enum type); for a table derive `Model`",
            );
            None
        }
        Data::Union(u) => {
            cx.error_spanned_by(
                u.union_token,
                "SqlEnum can only be derived for a fieldless enum, not a union",
            );
            None
        }
    };
    let generic = !input.generics.params.is_empty();
    if generic {
        cx.error_spanned_by(
            &input.generics,
            "SqlEnum cannot be derived for a generic enum: a PostgreSQL enum type has one fixed list of labels",
        );
    }
    let type_name_lit = type_name.get();
    Enum {
        ident: &input.ident,
        type_name: type_name_lit
            .as_ref()
            .map(LitStr::value)
            .unwrap_or_else(|| snake(&input.ident.to_string())),
        type_name_lit,
        krate: krate.get(),
        variants,
        fieldless,
        generic,
    }
}

fn parse_variant<'a>(cx: &Ctxt, v: &'a syn::Variant, rule: Option<&str>) -> Variant<'a> {
    let mut rename = Attr::<LitStr>::none(attr::RENAME);
    for_each_tenant_meta(
        cx,
        &v.attrs,
        |meta| {
            if meta.path.is_ident(attr::RENAME) {
                let lit = parse_lit_str(meta)?;
                rename.set(cx, meta, lit);
                Ok(true)
            } else {
                Ok(false)
            }
        },
        attr::VARIANT_KEYS,
    );
    let rename = rename.get();
    let name = v.ident.to_string();
    let name = name.strip_prefix("r#").unwrap_or(&name).to_owned();
    let label = match &rename {
        Some(lit) => lit.value(),
        None => apply_rule(&name, rule.unwrap_or("snake_case")),
    };
    Variant {
        ident: &v.ident,
        label,
        rename,
    }
}

/// The label of variant `name` under `rule` (serde's word rule: a word starts at each
/// upper-case letter).
fn apply_rule(name: &str, rule: &str) -> String {
    let snake = snake(name);
    match rule {
        "lowercase" => name.to_lowercase(),
        "UPPERCASE" => name.to_uppercase(),
        "SCREAMING_SNAKE_CASE" => snake.to_uppercase(),
        "kebab-case" => snake.replace('_', "-"),
        "SCREAMING-KEBAB-CASE" => snake.replace('_', "-").to_uppercase(),
        "camelCase" => {
            let mut chars = name.chars();
            match chars.next() {
                Some(first) => first.to_lowercase().chain(chars).collect(),
                None => String::new(),
            }
        }
        "PascalCase" => name.to_owned(),
        _ => snake,
    }
}

fn check(cx: &Ctxt, e: &Enum<'_>) {
    let Some(variants) = &e.variants else {
        return;
    };
    match &e.type_name_lit {
        Some(lit) => {
            if let Some(problem) = identifier_problem(&e.type_name) {
                cx.error_spanned_by(
                    lit,
                    format!("invalid enum type name {:?}: {problem}", e.type_name),
                );
            }
        }
        None => {
            if let Some(problem) = identifier_problem(&e.type_name) {
                cx.error_spanned_by(
                    e.ident,
                    format!(
                        "the default enum type name {:?} is invalid ({problem}); set one with `#[tenant(type_name = \"...\")]`",
                        e.type_name
                    ),
                );
            }
        }
    }
    if variants.is_empty() {
        cx.error_spanned_by(
            e.ident,
            "an enum type needs at least one label: add a variant",
        );
    }
    let mut seen: Vec<(&str, &Ident)> = Vec::new();
    for v in variants {
        let span = match &v.rename {
            Some(lit) => lit.span(),
            None => v.ident.span(),
        };
        let label = v.label.as_str();
        if label.is_empty() {
            cx.error_at(span, "an enum label cannot be empty");
        } else if label.len() > MAX_LABEL_LEN {
            cx.error_at(
                span,
                format!(
                    "enum label {label:?} is {} bytes long; PostgreSQL keeps at most {MAX_LABEL_LEN}: pick a shorter one with `#[tenant(rename = \"...\")]`",
                    label.len()
                ),
            );
        } else if label.chars().any(char::is_control) {
            cx.error_at(
                span,
                format!("enum label {label:?} has a control character"),
            );
        }
        match seen.iter().find(|(l, _)| *l == label) {
            Some((_, first)) => cx.error_at(
                span,
                format!(
                    "duplicate enum label {label:?}: variant `{first}` already has it; give one of them another label with `#[tenant(rename = \"...\")]`"
                ),
            ),
            None => seen.push((label, v.ident)),
        }
    }
}

fn expand(e: &Enum<'_>, variants: &[Variant<'_>], p: &TokenStream) -> TokenStream {
    let ident = e.ident;
    let name = &e.type_name;
    let array = format!("{name}[]");
    let labels: Vec<&str> = variants.iter().map(|v| v.label.as_str()).collect();
    let idents: Vec<&Ident> = variants.iter().map(|v| v.ident).collect();
    // Duplicate labels are an error already: keep the first, so the match has no
    // unreachable arm to warn about.
    let mut unique: Vec<(&str, &Ident)> = Vec::new();
    for (l, i) in labels.iter().zip(&idents) {
        if !unique.iter().any(|(u, _)| u == l) {
            unique.push((l, i));
        }
    }
    let (from_labels, from_idents): (Vec<&str>, Vec<&Ident>) = unique.into_iter().unzip();
    let label_body = if idents.is_empty() {
        quote!(match *self {})
    } else {
        quote!(match self { #(Self::#idents => #labels,)* })
    };
    let sql_impls = sql_impls(ident, p);
    quote! {
        #[allow(non_upper_case_globals, clippy::all)]
        const _: () = {
            const __TENANT_ENUM_TYPE: #p::EnumType = #p::EnumType {
                name: #name,
                labels: &[#(#labels),*],
            };

            #[automatically_derived]
            impl #p::SqlEnum for #ident {
                const TYPE_NAME: &'static str = #name;
                const LABELS: &'static [&'static str] = __TENANT_ENUM_TYPE.labels;
                fn label(&self) -> &'static str {
                    #label_body
                }
                fn from_label(label: &str) -> ::core::option::Option<Self> {
                    match label {
                        #(#from_labels => ::core::option::Option::Some(Self::#from_idents),)*
                        _ => ::core::option::Option::None,
                    }
                }
            }

            #[automatically_derived]
            impl #p::SqlType for #ident {
                const SQL_TYPE: &'static str = #name;
                const ARRAY_TYPE: ::core::option::Option<&'static str> =
                    ::core::option::Option::Some(#array);
                const ENUM_TYPE: ::core::option::Option<&'static #p::EnumType> =
                    ::core::option::Option::Some(&__TENANT_ENUM_TYPE);
            }

            #sql_impls
        };
    }
}

/// `ToSql` and `FromSql` through the runtime's helpers: by type name and kind, the label's
/// bytes on the wire.
fn sql_impls(ident: &Ident, p: &TokenStream) -> TokenStream {
    quote! {
        #[automatically_derived]
        impl #p::ToSql for #ident {
            fn to_sql(
                &self,
                _ty: &#p::Type,
                out: &mut #p::BytesMut,
            ) -> ::core::result::Result<#p::IsNull, #p::BoxError> {
                #p::enum_to_sql(#p::SqlEnum::label(self), out)
            }
            fn accepts(ty: &#p::Type) -> bool {
                #p::enum_accepts::<Self>(ty)
            }
            fn to_sql_checked(
                &self,
                ty: &#p::Type,
                out: &mut #p::BytesMut,
            ) -> ::core::result::Result<#p::IsNull, #p::BoxError> {
                #p::enum_to_sql_checked(self, ty, out)
            }
        }

        #[automatically_derived]
        impl<'__tenant_raw> #p::FromSql<'__tenant_raw> for #ident {
            fn from_sql(
                _ty: &#p::Type,
                raw: &'__tenant_raw [u8],
            ) -> ::core::result::Result<Self, #p::BoxError> {
                #p::enum_from_sql::<Self>(raw)
            }
            fn accepts(ty: &#p::Type) -> bool {
                #p::enum_accepts::<Self>(ty)
            }
        }
    }
}

/// The impls of an input that is no fieldless enum (already an error), with unreachable
/// bodies, so that its uses as a column type add no errors of their own.
fn stub(e: &Enum<'_>, p: &TokenStream) -> TokenStream {
    let ident = e.ident;
    let name = &e.type_name;
    let sql_impls = sql_impls(ident, p);
    quote! {
        const _: () = {
            #[automatically_derived]
            impl #p::SqlEnum for #ident {
                const TYPE_NAME: &'static str = #name;
                const LABELS: &'static [&'static str] = &[];
                fn label(&self) -> &'static str {
                    ::core::unreachable!("this enum failed to compile")
                }
                fn from_label(_: &str) -> ::core::option::Option<Self> {
                    ::core::option::Option::None
                }
            }
            #[automatically_derived]
            impl #p::SqlType for #ident {
                const SQL_TYPE: &'static str = #name;
            }
            #sql_impls
        };
    }
}
