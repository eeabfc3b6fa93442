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

/// Rules of the schema attributes (constraints, indexes, referential actions, identity
/// options), over the lowered lists.
pub fn check_schema(
    cx: &Ctxt,
    c: &Container<'_>,
    named: &[crate::schema::Named<'_>],
    indexes: &[crate::schema::NamedIndex<'_>],
) {
    use crate::schema::{Body, INDEX_METHODS};
    let Some(fields) = &c.fields else {
        return;
    };
    let field_of = |column: &str| fields.iter().find(|f| f.column == column);
    // Names: valid identifiers, and no two alike (indexes and the key/unique constraints
    // share one namespace in PostgreSQL; the others must differ within the table).
    let mut seen: HashMap<String, ()> = HashMap::new();
    let all = named
        .iter()
        .map(|n| (n.name.as_str(), n.name_lit, n.span))
        .chain(
            indexes
                .iter()
                .map(|i| (i.name.as_str(), i.name_lit, i.span)),
        );
    // A default name made of an invalid table name is that error already: only its length
    // can make a default name from valid names invalid.
    let table_ok = identifier_problem(&c.table).is_none();
    for (name, lit, span) in all {
        if let Some(problem) = identifier_problem(name) {
            match lit {
                Some(lit) => cx.error_spanned_by(lit, format!("invalid constraint or index name {name:?}: {problem}")),
                None if table_ok => cx.error_at(span, format!("the default name {name:?} is invalid ({problem}); pick one with `name = \"...\"`")),
                None => {}
            }
        }
        if seen.insert(name.to_owned(), ()).is_some() {
            let message = format!("duplicate constraint or index name {name:?}: another constraint or index of this table already has it; pick another with `name = \"...\"`");
            match lit {
                Some(lit) => cx.error_spanned_by(lit, message),
                None => cx.error_at(span, message),
            }
        }
    }
    let sql_text = |lit: &syn::LitStr, what: &str| {
        let v = lit.value();
        if v.trim().is_empty() || v.contains(';') || v.contains("--") || v.contains("/*") {
            cx.error_spanned_by(
                lit,
                format!("{what} must be one SQL expression, without `;` or comments"),
            );
        }
    };
    for n in named {
        match &n.body {
            Body::Check(expr) => sql_text(expr, "`check`"),
            Body::ForeignKey {
                columns,
                on_delete,
                on_update,
                ..
            } => {
                for action in [on_delete, on_update].into_iter().flatten() {
                    if action.is("set null") {
                        for col in columns {
                            if let Some(f) = field_of(col) {
                                if !f.is_option() {
                                    cx.error_spanned_by(
                                        &action.lit,
                                        format!("\"set null\" needs NULL-able columns, but `{}` is NOT NULL; make it an `Option<..>` or pick another action", f.ident),
                                    );
                                }
                            }
                        }
                    }
                    if action.is("set default") {
                        for col in columns {
                            if let Some(f) = field_of(col) {
                                if f.default.is_none() && !f.is_option() {
                                    cx.error_spanned_by(
                                        &action.lit,
                                        format!("\"set default\" needs a default on `{}` (it is NOT NULL without one); add `default = \"...\"` or pick another action", f.ident),
                                    );
                                }
                            }
                        }
                    }
                }
            }
            Body::PrimaryKey(_) | Body::Unique(_) => {}
        }
    }
    for f in fields {
        if f.references.is_none() {
            let stray = [
                f.on_delete.as_ref().map(|(t, _)| (t, "on_delete")),
                f.on_update.as_ref().map(|(t, _)| (t, "on_update")),
                f.foreign_key_name
                    .as_ref()
                    .map(|(t, _)| (t, "foreign_key_name")),
            ];
            for (tokens, key) in stray.into_iter().flatten() {
                cx.error_spanned_by(
                    tokens,
                    format!("`{key}` belongs to a foreign key, but this field has no `references = Model`"),
                );
            }
        }
        let o = &f.identity_options;
        for (lit, is_increment) in [(&o.start, false), (&o.increment, true)]
            .into_iter()
            .filter_map(|(l, inc)| l.as_ref().map(|l| (l, inc)))
        {
            match lit.base10_parse::<i64>() {
                Ok(0) if is_increment => {
                    cx.error_spanned_by(lit, "an identity `increment` cannot be 0")
                }
                Ok(_) => {}
                Err(_) => {
                    cx.error_spanned_by(lit, "identity `start` and `increment` must fit in an i64")
                }
            }
        }
    }
    for i in indexes {
        if let Some(using) = &i.index.using {
            if !INDEX_METHODS.contains(&using.value().as_str()) {
                cx.error_spanned_by(
                    using,
                    format!(
                        "unknown index method {:?}; expected one of: {}",
                        using.value(),
                        INDEX_METHODS.join(", ")
                    ),
                );
            }
        }
        if let Some(p) = &i.index.predicate {
            sql_text(p, "`where`");
        }
        for key in &i.index.keys {
            if let crate::schema::IndexKey::Expr(e) = key {
                sql_text(e, "`expr`");
            }
        }
    }
}
