//! Code generation for `#[derive(Model)]`.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::DeriveInput;

use crate::ast::{self, Container, Field};
use crate::check;
use crate::ctxt::Ctxt;
use crate::ident::screaming;
use crate::runtime::runtime_path;
use crate::schema::{self, Body, Named, NamedIndex};

/// The expansion of `#[derive(Model)]`: every error found, next to the impls (a model with
/// bad attributes still gets its impls, so its uses add no errors of their own; one that is
/// no model at all gets a stub).
pub fn derive_model(input: &DeriveInput) -> TokenStream {
    let cx = Ctxt::new();
    let container = ast::parse(&cx, input);
    check::check(&cx, &container);
    let (named, indexes) = match &container.fields {
        Some(fields) => schema::lower(&cx, &container, fields),
        None => (Vec::new(), Vec::new()),
    };
    check::check_schema(&cx, &container, &named, &indexes);
    let errors = cx.check().err().map(syn::Error::into_compile_error);
    let p = runtime_path(container.krate.as_ref());
    let body = match &container.fields {
        Some(fields) if !container.generic => {
            let schema = schema_consts(&p, &named, &indexes, fields);
            expand(&container, fields, &p, schema)
        }
        // No columns to speak of: a stub impl keeps uses of the model from cascading.
        _ => stub(input, &p),
    };
    quote! { #errors #body }
}

/// SQL text pieces and schema slots, built up into a `&'static [Piece]` expression.
struct Sql<'a> {
    p: &'a TokenStream,
    pieces: Vec<TokenStream>,
    text: String,
}

impl<'a> Sql<'a> {
    fn new(p: &'a TokenStream) -> Self {
        Sql {
            p,
            pieces: Vec::new(),
            text: String::new(),
        }
    }
    fn push(&mut self, s: &str) -> &mut Self {
        self.text.push_str(s);
        self
    }
    fn table(&mut self, slot: &TokenStream, table: &str) -> &mut Self {
        let p = self.p;
        if !self.text.is_empty() {
            let t = std::mem::take(&mut self.text);
            self.pieces
                .push(quote!(#p::Piece::Sql(#p::Cow::Borrowed(#t))));
        }
        self.pieces.push(quote!(#p::Piece::Schema(#slot)));
        self.text.push_str(&format!(".\"{table}\""));
        self
    }
    fn finish(&mut self) -> TokenStream {
        let p = self.p;
        if !self.text.is_empty() {
            let t = std::mem::take(&mut self.text);
            self.pieces
                .push(quote!(#p::Piece::Sql(#p::Cow::Borrowed(#t))));
        }
        let pieces = std::mem::take(&mut self.pieces);
        quote!(#p::Template::from_static(&[#(#pieces),*]))
    }
}

fn quoted_list<'f>(cols: impl Iterator<Item = &'f Field<'f>>) -> String {
    cols.map(|f| format!("\"{}\"", f.column))
        .collect::<Vec<_>>()
        .join(", ")
}

fn expand(
    c: &Container<'_>,
    fields: &[Field<'_>],
    p: &TokenStream,
    (constraints, indexes): (TokenStream, TokenStream),
) -> TokenStream {
    let ident = c.ident;
    let name = ident.to_string();
    let table = &c.table;
    let slot = match &c.slot {
        None => quote!(#p::Slot::Tenant),
        Some(s) => quote!(#p::Slot::Named(#s)),
    };

    let keys: Vec<&Field> = fields.iter().filter(|f| f.primary_key.get()).collect();
    let non_keys: Vec<&Field> = fields.iter().filter(|f| !f.primary_key.get()).collect();
    let inserted: Vec<&Field> = fields.iter().filter(|f| !f.identity.get()).collect();
    let all_cols = quoted_list(fields.iter());

    // Column types, one const per field, spanned at the field's type.
    let mut type_consts = Vec::new();
    let mut column_defs = Vec::new();
    let mut typed_columns = Vec::new();
    let mut decode = Vec::new();
    let mut columns_at = Vec::new();
    for (i, f) in fields.iter().enumerate() {
        let ty = f.ty;
        let ty_const = format_ident!("__TENANT_COLUMN_TYPE_{}", i);
        let type_expr = match &f.sql_type {
            Some(lit) => {
                let nullable = f.is_option();
                quote!(#p::ColumnType { sql_type: #lit, nullable: #nullable, enum_type: ::core::option::Option::None })
            }
            None => quote_spanned!(ty.span()=> #p::column_type::<#ty>()),
        };
        type_consts.push(quote!(const #ty_const: #p::ColumnType = #type_expr;));
        if f.identity.get() && f.identity_type_unknown() {
            // A type alias or a custom type: only the const evaluator knows its SQL type. The
            // list of types is tenant-sql's, the one list.
            let allowed = tenant_sql::IDENTITY_TYPES;
            let check = quote_spanned!(ty.span()=>
                #p::assert_identity_type(#ty_const.sql_type, &[#(#allowed),*]));
            type_consts.push(quote!(const _: () = #check;));
        }
        let column = &f.column;
        let field_name = f.ident.to_string();
        let field_name = field_name.strip_prefix("r#").unwrap_or(&field_name);
        let primary_key = f.primary_key.get();
        let identity = f.identity.get();
        let unique = f.unique;
        let index = f.index;
        let default = match &f.default {
            Some(d) => quote!(::core::option::Option::Some(#d)),
            None => quote!(::core::option::Option::None),
        };
        let references = match &f.references {
            // One generic call, spanned at the target: a non-model target is one error there.
            // The constraint list reads the same const.
            Some(target) => {
                let fk_const = format_ident!("__TENANT_FOREIGN_KEY_{}", i);
                type_consts.push(quote_spanned!(target.span()=>
                    const #fk_const: #p::ForeignKey = #p::foreign_key::<#target>();));
                quote!(::core::option::Option::Some(#fk_const))
            }
            None => quote!(::core::option::Option::None),
        };
        let o = &f.identity_options;
        let always = o.always;
        let start = match &o.start {
            Some(n) => quote!(::core::option::Option::Some(#n)),
            None => quote!(::core::option::Option::None),
        };
        let increment = match &o.increment {
            Some(n) => quote!(::core::option::Option::Some(#n)),
            None => quote!(::core::option::Option::None),
        };
        column_defs.push(quote! {
            #p::ColumnDef {
                name: #column,
                field: #field_name,
                sql_type: #ty_const.sql_type,
                nullable: #ty_const.nullable,
                primary_key: #primary_key,
                identity: #identity,
                identity_options: #p::IdentityOptions {
                    always: #always,
                    start: #start,
                    increment: #increment,
                },
                unique: #unique,
                index: #index,
                default: #default,
                references: #references,
                enum_type: #ty_const.enum_type,
            }
        });
        let const_name = format_ident!("{}", screaming(field_name), span = f.ident.span());
        let doc = format!("The `{column}` column.");
        typed_columns.push(quote! {
            #[doc = #doc]
            pub const #const_name: #p::Column<#ident, #ty> = #p::Column::new(#i, #column);
        });
        // The query macros find `{Model.column}` by name in `COLUMNS`, and its type here.
        columns_at.push(quote! {
            #[automatically_derived]
            impl #p::ColumnAt<#i> for #ident {
                type Type = #ty;
            }
        });
        let field_ident = f.ident;
        // Spanned at the field type, runtime path included, so a missing `FromSql` points there.
        let p_at_ty = respan(p, ty.span());
        decode.push(
            quote_spanned!(ty.span()=> #field_ident: #p_at_ty::decode(row, #i, #name, #column)?),
        );
    }

    // Statement templates.
    let mut sql = Sql::new(p);
    let insert = if inserted.is_empty() {
        sql.push("INSERT INTO ")
            .table(&slot, table)
            .push(&format!(" DEFAULT VALUES RETURNING {all_cols}"))
            .finish()
    } else {
        let placeholders: Vec<String> = (1..=inserted.len()).map(|n| format!("${n}")).collect();
        sql.push("INSERT INTO ")
            .table(&slot, table)
            .push(&format!(
                " ({}) VALUES ({}) RETURNING {all_cols}",
                quoted_list(inserted.iter().copied()),
                placeholders.join(", ")
            ))
            .finish()
    };
    let order_by = if keys.is_empty() {
        String::new()
    } else {
        format!(" ORDER BY {}", quoted_list(keys.iter().copied()))
    };
    let select_all = sql
        .push(&format!("SELECT {all_cols} FROM "))
        .table(&slot, table)
        .push(&order_by)
        .finish();
    let count = sql
        .push("SELECT count(*) FROM ")
        .table(&slot, table)
        .finish();
    let where_keys = |first: usize| {
        keys.iter()
            .enumerate()
            .map(|(n, f)| format!("\"{}\" = ${}", f.column, first + n))
            .collect::<Vec<_>>()
            .join(" AND ")
    };
    let none = quote!(::core::option::Option::None);
    let (get, update, delete) = if keys.is_empty() {
        (none.clone(), none.clone(), none)
    } else {
        let get = sql
            .push(&format!("SELECT {all_cols} FROM "))
            .table(&slot, table)
            .push(&format!(" WHERE {}", where_keys(1)))
            .finish();
        let update = if non_keys.is_empty() {
            none
        } else {
            let sets = non_keys
                .iter()
                .enumerate()
                .map(|(n, f)| format!("\"{}\" = ${}", f.column, n + 1))
                .collect::<Vec<_>>()
                .join(", ");
            let t = sql
                .push("UPDATE ")
                .table(&slot, table)
                .push(&format!(
                    " SET {sets} WHERE {}",
                    where_keys(non_keys.len() + 1)
                ))
                .finish();
            quote!(::core::option::Option::Some(#t))
        };
        let delete = sql
            .push("DELETE FROM ")
            .table(&slot, table)
            .push(&format!(" WHERE {}", where_keys(1)))
            .finish();
        (
            quote!(::core::option::Option::Some(#get)),
            update,
            quote!(::core::option::Option::Some(#delete)),
        )
    };

    let param = |f: &&Field| {
        let id = f.ident;
        let p_at_ty = respan(p, f.ty.span());
        quote_spanned!(f.ty.span()=> &self.#id as &(dyn #p_at_ty::ToSql + ::core::marker::Sync))
    };
    let insert_params = inserted.iter().map(param);
    let key_names: Vec<String> = keys.iter().map(|f| f.column.clone()).collect();

    let keyed = if keys.is_empty() {
        quote!()
    } else {
        let key_tys: Vec<_> = keys.iter().map(|f| f.ty).collect();
        let key_idents: Vec<_> = keys.iter().map(|f| f.ident).collect();
        let (key_ty, key_params, key_value) = if keys.len() == 1 {
            let ty = key_tys[0];
            let id = key_idents[0];
            (
                quote!(#ty),
                quote!(#p::smallvec![key as &(dyn #p::ToSql + ::core::marker::Sync)]),
                quote!(::core::clone::Clone::clone(&self.#id)),
            )
        } else {
            let idx = (0..keys.len()).map(syn::Index::from);
            (
                quote!((#(#key_tys,)*)),
                quote!(#p::smallvec![#(&key.#idx as &(dyn #p::ToSql + ::core::marker::Sync)),*]),
                quote!((#(::core::clone::Clone::clone(&self.#key_idents),)*)),
            )
        };
        let update_params = non_keys.iter().chain(keys.iter()).map(param);
        quote! {
            #[automatically_derived]
            impl #p::Keyed for #ident {
                type Key = #key_ty;
                fn key_params(key: &Self::Key) -> #p::Params<'_> { #key_params }
                fn update_params(&self) -> #p::Params<'_> { #p::smallvec![#(#update_params),*] }
                fn key(&self) -> Self::Key { #key_value }
            }
        }
    };

    quote! {
        #[allow(non_upper_case_globals, clippy::all)]
        const _: () = {
            #(#type_consts)*

            #[automatically_derived]
            impl #p::Model for #ident {
                const NAME: &'static str = #name;
                const TABLE: &'static str = #table;
                const SLOT: #p::Slot = #slot;
                const COLUMNS: &'static [#p::ColumnDef] = &[#(#column_defs),*];
                const PRIMARY_KEY: &'static [&'static str] = &[#(#key_names),*];
                const CONSTRAINTS: &'static [#p::TableConstraint] = #constraints;
                const INDEXES: &'static [#p::IndexDef] = #indexes;

                fn templates() -> &'static #p::ModelTemplates {
                    static TEMPLATES: #p::ModelTemplates = #p::ModelTemplates {
                        insert: #insert,
                        select_all: #select_all,
                        count: #count,
                        get: #get,
                        update: #update,
                        delete: #delete,
                    };
                    &TEMPLATES
                }

                fn from_row(row: &#p::Row) -> #p::Result<Self> {
                    ::core::result::Result::Ok(Self { #(#decode),* })
                }

                fn insert_params(&self) -> #p::Params<'_> {
                    #p::smallvec![#(#insert_params),*]
                }
            }

            #keyed

            #(#columns_at)*

            #[automatically_derived]
            impl #ident {
                #(#typed_columns)*
            }
        };
    }
}

/// The same tokens, every one given `span` (so errors in generated code point at the user's
/// tokens, not at the derive).
fn respan(tokens: &TokenStream, span: proc_macro2::Span) -> TokenStream {
    tokens
        .clone()
        .into_iter()
        .map(|mut tt| {
            tt.set_span(span);
            tt
        })
        .collect()
}

/// A `Model` impl with no columns, emitted next to the errors of a model that could not be
/// read, so that uses of the model do not add errors of their own. It honours `crate = ...`
/// like the full expansion.
fn stub(input: &DeriveInput, p: &TokenStream) -> TokenStream {
    let ident = &input.ident;
    let name = ident.to_string();
    // A generic struct (already an error) gets the bounds `Model` needs, so they add none.
    let mut generics = input.generics.clone();
    let params: Vec<syn::GenericParam> = generics.params.iter().cloned().collect();
    let predicates = &mut generics.make_where_clause().predicates;
    for param in params {
        match param {
            syn::GenericParam::Type(t) => {
                let t = t.ident;
                predicates.push(syn::parse_quote!(
                    #t: ::core::marker::Send + ::core::marker::Sync + 'static
                ));
            }
            syn::GenericParam::Lifetime(l) => {
                let l = l.lifetime;
                predicates.push(syn::parse_quote!(#l: 'static));
            }
            syn::GenericParam::Const(_) => {}
        }
    }
    let (impl_generics, ty_generics, where_clause) = generics.split_for_impl();
    quote! {
        const _: () = {
            #[automatically_derived]
            impl #impl_generics #p::Model for #ident #ty_generics #where_clause {
                const NAME: &'static str = #name;
                const TABLE: &'static str = #name;
                const SLOT: #p::Slot = #p::Slot::Tenant;
                const COLUMNS: &'static [#p::ColumnDef] = &[];
                const PRIMARY_KEY: &'static [&'static str] = &[];
                fn templates() -> &'static #p::ModelTemplates {
                    ::core::unreachable!("this model failed to compile")
                }
                fn from_row(_: &#p::Row) -> #p::Result<Self> {
                    ::core::unreachable!("this model failed to compile")
                }
                fn insert_params(&self) -> #p::Params<'_> {
                    ::core::unreachable!("this model failed to compile")
                }
            }
        };
    }
}

/// `Model::CONSTRAINTS` and `Model::INDEXES` of the lowered schema attributes.
fn schema_consts(
    p: &TokenStream,
    named: &[Named<'_>],
    indexes: &[NamedIndex<'_>],
    fields: &[Field<'_>],
) -> (TokenStream, TokenStream) {
    let action = |a: Option<&schema::Action>| {
        let v = format_ident!("{}", a.map(|a| a.variant()).unwrap_or("NoAction"));
        quote!(#p::FkAction::#v)
    };
    let constraints = named.iter().map(|n| {
        let name = &n.name;
        let def = match &n.body {
            Body::PrimaryKey(cols) => {
                quote!(#p::ConstraintDef::PrimaryKey { columns: &[#(#cols),*] })
            }
            Body::Unique(cols) => quote!(#p::ConstraintDef::Unique { columns: &[#(#cols),*] }),
            Body::Check(expr) => quote!(#p::ConstraintDef::Check { expr: #expr }),
            Body::ForeignKey {
                columns,
                target,
                on_delete,
                on_update,
            } => {
                let on_delete = action(*on_delete);
                let on_update = action(*on_update);
                let single = fields.iter().position(|f| {
                    f.references
                        .as_ref()
                        .is_some_and(|t| std::ptr::eq(t, *target))
                });
                match single {
                    Some(i) => {
                        let fk = format_ident!("__TENANT_FOREIGN_KEY_{}", i);
                        quote!(#p::ConstraintDef::ForeignKey {
                            columns: &[#(#columns),*],
                            model: #fk.model,
                            table: #fk.table,
                            slot: #fk.slot,
                            target_columns: &[#fk.column],
                            on_delete: #on_delete,
                            on_update: #on_update,
                        })
                    }
                    None => {
                        let n = columns.len();
                        quote_spanned!(target.span()=> #p::ConstraintDef::ForeignKey {
                            columns: &[#(#columns),*],
                            model: <#target as #p::Model>::NAME,
                            table: <#target as #p::Model>::TABLE,
                            slot: <#target as #p::Model>::SLOT,
                            target_columns: #p::foreign_key_target::<#target>(#n),
                            on_delete: #on_delete,
                            on_update: #on_update,
                        })
                    }
                }
            }
        };
        quote!(#p::TableConstraint { name: #name, def: #def })
    });
    let index_defs = indexes.iter().map(|i| {
        let name = &i.name;
        let keys = i
            .index
            .keys
            .iter()
            .zip(&i.keys)
            .filter_map(|(k, col)| match (k, col) {
                (schema::IndexKey::Expr(e), _) => Some(quote!(#p::IndexKey::Expr(#e))),
                (schema::IndexKey::Column(_), Some(c)) => Some(quote!(#p::IndexKey::Column(#c))),
                (schema::IndexKey::Column(_), None) => None,
            });
        let unique = i.index.unique;
        let using = schema::opt_str(i.index.using.as_ref());
        let predicate = schema::opt_str(i.index.predicate.as_ref());
        let include = &i.include;
        quote!(#p::IndexDef {
            name: #name,
            keys: &[#(#keys),*],
            unique: #unique,
            using: #using,
            include: &[#(#include),*],
            predicate: #predicate,
        })
    });
    (quote!(&[#(#constraints),*]), quote!(&[#(#index_defs),*]))
}
