//! Rules a model must satisfy that attribute parsing alone does not catch.

use std::collections::HashMap;

use crate::ast::Container;
use crate::ctxt::Ctxt;
use crate::ident::{identifier_problem, slot_name_problem};

/// Checks a model whose shape could be read (`c.fields` is `Some`).
pub fn check(cx: &Ctxt, c: &Container<'_>) {
    let Some(fields) = &c.fields else {
        return;
    };
    match &c.table_lit {
        Some(lit) => {
            if let Some(problem) = identifier_problem(&c.table) {
                cx.error_spanned_by(lit, format!("invalid table name {:?}: {problem}", c.table));
            }
        }
        None => {
            if let Some(problem) = identifier_problem(&c.table) {
                cx.error_spanned_by(
                    c.ident,
                    format!(
                        "the default table name {:?} is invalid ({problem}); set one with `#[tenant(table = \"...\")]`",
                        c.table
                    ),
                );
            }
        }
    }
    if let Some(slot) = &c.slot {
        if let Some(problem) = slot_name_problem(&slot.value()) {
            let hint = if slot.value() == tenant_sql::TENANT_PLACEHOLDER {
                "; or remove `schema = ...`: a model lives in the tenant's schema by default"
            } else {
                ""
            };
            cx.error_spanned_by(
                slot,
                format!(
                    "invalid schema slot name {:?}: {problem}{hint}",
                    slot.value()
                ),
            );
        }
    }
    if fields.is_empty() {
        cx.error_spanned_by(c.ident, "a model needs at least one field (column)");
    }

    let mut seen: HashMap<&str, &syn::Ident> = HashMap::new();
    for f in fields {
        let ident = f.ident;
        let span_tokens = match &f.rename {
            Some(lit) => quote::quote!(#lit),
            None => quote::quote!(#ident),
        };
        if let Some(problem) = identifier_problem(&f.column) {
            cx.error_spanned_by(
                &span_tokens,
                format!(
                    "invalid column name {:?}: {problem}; rename the column with `#[tenant(rename = \"...\")]`",
                    f.column
                ),
            );
        }
        if let Some(first) = seen.insert(&f.column, f.ident) {
            cx.error_spanned_by(
                &span_tokens,
                format!(
                    "duplicate column name {:?}: field `{}` already maps to it",
                    f.column, first
                ),
            );
        }
        if let Some(tokens) = f.identity.tokens() {
            if f.default.is_some() {
                cx.error_spanned_by(
                    tokens,
                    "an `identity` column gets its values from PostgreSQL; remove `default`",
                );
            }
            if f.is_option() {
                cx.error_spanned_by(
                    f.ty,
                    "an `identity` column is never NULL; drop the `Option`",
                );
            } else if f.identity_type_is_wrong() {
                cx.error_spanned_by(
                    f.ty,
                    "`#[tenant(identity)]` needs an integer column: use i16, i32 or i64",
                );
            }
        }
        if let Some(tokens) = f.primary_key.tokens() {
            if f.is_option() {
                cx.error_spanned_by(
                    tokens,
                    "a primary-key column cannot be NULL; drop the `Option` from its type",
                );
            }
        }
        if let Some(default) = &f.default {
            let v = default.value();
            if v.trim().is_empty() || v.contains(';') || v.contains("--") || v.contains("/*") {
                cx.error_spanned_by(
                    default,
                    "`default` must be one SQL expression, without `;` or comments",
                );
            }
        }
        if let Some(ty) = &f.sql_type {
            let v = ty.value();
            let ok = !v.trim().is_empty()
                && v.chars()
                    .all(|c| c.is_ascii_alphanumeric() || " _(),[]".contains(c));
            if !ok {
                cx.error_spanned_by(
                    ty,
                    "`sql_type` must be a PostgreSQL type name such as \"TEXT\", \"NUMERIC(12,2)\" or \"INTEGER[]\"",
                );
            }
        }
    }
}
