//! Expansion snapshots: each macro run on `proc_macro2` input, pretty-printed, compared with
//! the committed snapshot in `src/snapshots/` (review changes with `cargo insta review`, or
//! accept them with `INSTA_UPDATE=always`).

use proc_macro2::TokenStream;
use quote::quote;

/// Pretty-prints item tokens.
fn pretty_items(tokens: TokenStream) -> String {
    let file: syn::File = syn::parse2(tokens).expect("the expansion parses as items");
    prettyplease::unparse(&file)
}

/// Pretty-prints an expression (wrapped in a function, as prettyplease prints files).
fn pretty_expr(tokens: TokenStream) -> String {
    pretty_items(quote!(fn expansion() { #tokens }))
}

fn derive(input: TokenStream) -> String {
    let input: syn::DeriveInput = syn::parse2(input).expect("a struct");
    pretty_items(crate::expand::derive_model(&input))
}

#[test]
fn derive_model_with_keys_identity_rename_and_references() {
    insta::assert_snapshot!(derive(quote! {
        #[tenant(table = "invoices")]
        pub struct Invoice {
            #[tenant(primary_key, identity)]
            pub id: i64,
            #[tenant(references = Customer)]
            pub customer_id: i64,
            #[tenant(index, rename = "amount")]
            pub amount_cents: i64,
            #[tenant(default = "false")]
            pub paid: bool,
            pub note: Option<String>,
        }
    }));
}

#[test]
fn derive_model_with_constraints_indexes_actions_and_identity_options() {
    insta::assert_snapshot!(derive(quote! {
        #[tenant(
            table = "lines",
            primary_key_name = "lines_pk",
            unique(invoice_id, sku, name = "lines_sku_once"),
            check = "qty <= 1000",
            index(sku, qty, using = "btree", where = "qty > 0", include(note)),
            index(expr = "lower(sku)", name = "lines_sku_ci"),
            foreign_key(columns(invoice_id, position), references = Shipment, on_delete = "cascade")
        )]
        pub struct Line {
            #[tenant(primary_key, identity(always, start = 100, increment = 5))]
            pub id: i64,
            #[tenant(references = Invoice, on_delete = "set null", on_update = "cascade", foreign_key_name = "lines_invoice")]
            pub invoice_id: Option<i64>,
            pub position: i32,
            #[tenant(unique(name = "lines_sku_uq"), check(expr = "sku <> ''", name = "lines_sku_nonempty"))]
            pub sku: String,
            #[tenant(check = "qty > 0", index(name = "lines_qty_brin", using = "brin"))]
            pub qty: i32,
            pub note: Option<String>,
        }
    }));
}

#[test]
fn derive_model_in_a_named_slot_through_a_re_exported_runtime() {
    insta::assert_snapshot!(derive(quote! {
        #[tenant(table = "plans", schema = "shared", crate = my_lib::tenant)]
        pub struct Plan {
            #[tenant(primary_key)]
            pub code: String,
            #[tenant(identity)]
            pub seq: Serial,
        }
    }));
}

#[test]
fn derive_stub_next_to_an_error_honours_crate() {
    insta::assert_snapshot!(derive(quote! {
        #[tenant(crate = my_lib::tenant)]
        pub enum NotAModel { A }
    }));
}

#[test]
fn query_with_columns_aliases_star_and_typed_arguments() {
    insta::assert_snapshot!(pretty_expr(crate::query::expand(
        crate::query::Kind::Rows,
        quote!(
            "SELECT {i.*}, {Customer.name} FROM {Invoice AS i} JOIN {Customer} ON {Customer.id} = {i.customer_id} WHERE {i.paid} = $1 AND {i.amount_cents} > $2 AND '{1,2}'::int[] <> $3",
            false,
            limit,
            other
        ),
    )));
}

#[test]
fn query_as_through_a_re_exported_runtime() {
    insta::assert_snapshot!(pretty_expr(crate::query::expand(
        crate::query::Kind::As,
        quote!(
            crate = my_lib::tenant,
            Invoice,
            "SELECT {Invoice.*} FROM {Invoice} WHERE {Invoice.id} = $1",
            id
        ),
    )));
}

#[test]
fn query_scalar_without_arguments() {
    insta::assert_snapshot!(pretty_expr(crate::query::expand(
        crate::query::Kind::Scalar,
        quote!("SELECT count(*) FROM {Invoice}"),
    )));
}

#[test]
fn query_errors_next_to_a_stub_statement() {
    insta::assert_snapshot!(pretty_expr(crate::query::expand(
        crate::query::Kind::Rows,
        quote!(crate = "my_lib::tenant", "SELECT {schema}.t WHERE x = $2"),
    )));
}

#[test]
fn embed_migrations_with_a_slot_through_a_re_exported_runtime() {
    insta::assert_snapshot!(pretty_expr(crate::migrations::expand(quote!(
        "test-migrations",
        slots = ["shared"],
        crate = my_lib::tenant
    ))));
}

#[test]
fn embed_migrations_errors_next_to_an_empty_set() {
    insta::assert_snapshot!(pretty_expr(crate::migrations::expand(quote!(
        "test-migrations",
        slots = ["tenant", "Shared"]
    ))));
}

fn derive_sql_enum(input: TokenStream) -> String {
    let input: syn::DeriveInput = syn::parse2(input).expect("an enum");
    pretty_items(crate::sql_enum::derive(&input))
}

#[test]
fn derive_sql_enum_with_type_name_rename_all_and_rename_through_a_re_exported_runtime() {
    insta::assert_snapshot!(derive_sql_enum(quote! {
        #[tenant(type_name = "ticket_status", rename_all = "kebab-case", crate = my_lib::tenant)]
        pub enum Status {
            Open,
            InProgress,
            #[tenant(rename = "done")]
            Closed,
        }
    }));
}

#[test]
fn derive_sql_enum_errors_next_to_stub_impls() {
    insta::assert_snapshot!(derive_sql_enum(quote! {
        #[tenant(rename_all = "Title Case")]
        pub enum Status {
            Open,
            #[tenant(rename = "open")]
            Reopened,
            Closed(u8),
        }
    }));
}
