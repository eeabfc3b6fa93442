//! Schema attributes beyond columns: constraints and indexes, at field and container level.
//! Parsed into [`Constraint`]s and [`Index`]es here, checked in `check.rs`, emitted as
//! `Model::CONSTRAINTS` / `Model::INDEXES` in `expand.rs`.

use proc_macro2::{Span, TokenStream};
use syn::meta::ParseNestedMeta;
use syn::{Ident, LitInt, LitStr, Path, Token};

use crate::attr::parse_lit_str;
use crate::ctxt::Ctxt;

/// Index access methods PostgreSQL ships.
pub const INDEX_METHODS: &[&str] = &["btree", "hash", "gist", "spgist", "gin", "brin"];
/// Referential actions, as written in attributes.
pub const FK_ACTIONS: &[&str] = &[
    "no action",
    "restrict",
    "cascade",
    "set null",
    "set default",
];

/// A column named in an attribute: the field identifier it was written as.
#[derive(Clone)]
pub struct ColumnRef {
    pub ident: Ident,
}

/// `on_delete = "..."` / `on_update = "..."`.
#[derive(Clone)]
pub struct Action {
    pub lit: LitStr,
    /// Index into [`FK_ACTIONS`], `None` if invalid (an error was reported).
    pub action: Option<usize>,
}

impl Action {
    fn parse(cx: &Ctxt, lit: LitStr) -> Action {
        let v = lit.value().to_ascii_lowercase();
        let action = FK_ACTIONS.iter().position(|a| *a == v);
        if action.is_none() {
            cx.error_spanned_by(
                &lit,
                format!(
                    "unknown referential action {:?}; expected one of: {}",
                    lit.value(),
                    FK_ACTIONS
                        .iter()
                        .map(|a| format!("\"{a}\""))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
        }
        Action { lit, action }
    }
    pub fn is(&self, name: &str) -> bool {
        self.action.is_some_and(|i| FK_ACTIONS[i] == name)
    }
    pub fn variant(&self) -> &'static str {
        match self.action.map(|i| FK_ACTIONS[i]) {
            Some("restrict") => "Restrict",
            Some("cascade") => "Cascade",
            Some("set null") => "SetNull",
            Some("set default") => "SetDefault",
            _ => "NoAction",
        }
    }
}

/// What a constraint is, before naming.
pub enum ConstraintKind {
    Unique(Vec<ColumnRef>),
    Check(LitStr),
    ForeignKey {
        columns: Vec<ColumnRef>,
        target: Path,
        on_delete: Option<Action>,
        on_update: Option<Action>,
    },
}

pub struct Constraint {
    pub kind: ConstraintKind,
    /// `name = "..."`.
    pub name: Option<LitStr>,
    /// Where to point errors about the constraint as a whole.
    pub span: Span,
}

pub enum IndexKey {
    Column(ColumnRef),
    Expr(LitStr),
}

pub struct Index {
    pub keys: Vec<IndexKey>,
    pub name: Option<LitStr>,
    pub using: Option<LitStr>,
    pub predicate: Option<LitStr>,
    pub include: Vec<ColumnRef>,
    pub unique: bool,
    pub span: Span,
}

/// `identity(always, start = N, increment = N)`.
#[derive(Default)]
pub struct IdentityOptions {
    pub always: bool,
    pub start: Option<LitInt>,
    pub increment: Option<LitInt>,
}

fn span_of(meta: &ParseNestedMeta<'_>) -> Span {
    syn::spanned::Spanned::span(&meta.path)
}

fn columns(meta: &ParseNestedMeta<'_>) -> syn::Result<Vec<ColumnRef>> {
    let mut out = Vec::new();
    meta.parse_nested_meta(|m| {
        let ident = m.path.require_ident()?.clone();
        out.push(ColumnRef { ident });
        Ok(())
    })?;
    Ok(out)
}

/// Container `unique(a, b, name = "...")`.
pub fn parse_unique(meta: &ParseNestedMeta<'_>) -> syn::Result<Constraint> {
    let mut cols = Vec::new();
    let mut name = None;
    meta.parse_nested_meta(|m| {
        if m.path.is_ident("name") {
            name = Some(parse_lit_str(&m)?);
        } else {
            cols.push(ColumnRef {
                ident: m.path.require_ident()?.clone(),
            });
        }
        Ok(())
    })?;
    Ok(Constraint {
        kind: ConstraintKind::Unique(cols),
        name,
        span: span_of(meta),
    })
}

/// Options of a field-level `unique(name = "...")`.
pub fn parse_field_unique(meta: &ParseNestedMeta<'_>) -> syn::Result<Option<LitStr>> {
    let mut name = None;
    if meta.input.peek(syn::token::Paren) {
        meta.parse_nested_meta(|m| {
            if m.path.is_ident("name") {
                name = Some(parse_lit_str(&m)?);
                Ok(())
            } else {
                Err(m.error("`unique(..)` on a field takes only `name = \"...\"`"))
            }
        })?;
    }
    Ok(name)
}

/// `index(a, expr = "...", name = "...", using = "...", where = "...", include(c), unique)`;
/// on a field (`field = Some(column)`) the keys are that column and none may be listed.
pub fn parse_index(meta: &ParseNestedMeta<'_>, field: Option<&Ident>) -> syn::Result<Index> {
    let mut index = Index {
        keys: field
            .map(|f| vec![IndexKey::Column(ColumnRef { ident: f.clone() })])
            .unwrap_or_default(),
        name: None,
        using: None,
        predicate: None,
        include: Vec::new(),
        unique: false,
        span: span_of(meta),
    };
    if field.is_some() && !meta.input.peek(syn::token::Paren) {
        return Ok(index);
    }
    meta.parse_nested_meta(|m| {
        if m.path.is_ident("name") {
            index.name = Some(parse_lit_str(&m)?);
        } else if m.path.is_ident("using") {
            index.using = Some(parse_lit_str(&m)?);
        } else if m.path.is_ident("where") {
            index.predicate = Some(parse_lit_str(&m)?);
        } else if m.path.is_ident("include") {
            index.include = columns(&m)?;
        } else if m.path.is_ident("unique") {
            index.unique = true;
        } else if m.path.is_ident("expr") && field.is_none() {
            index.keys.push(IndexKey::Expr(parse_lit_str(&m)?));
        } else if m.input.is_empty() || m.input.peek(Token![,]) {
            if field.is_some() {
                return Err(m.error(
                    "`index(..)` on a field indexes that field; list columns in a container-level `#[tenant(index(a, b))]`",
                ));
            }
            index.keys.push(IndexKey::Column(ColumnRef {
                ident: m.path.require_ident()?.clone(),
            }));
        } else {
            return Err(m.error(
                "unknown `index` option; expected columns, `expr = \"...\"`, `name`, `using`, `where`, `include(..)` or `unique`",
            ));
        }
        Ok(())
    })?;
    Ok(index)
}

/// `check = "expr"` or `check(expr = "...", name = "...")`.
pub fn parse_check(meta: &ParseNestedMeta<'_>) -> syn::Result<Constraint> {
    let span = span_of(meta);
    if meta.input.peek(Token![=]) {
        return Ok(Constraint {
            kind: ConstraintKind::Check(parse_lit_str(meta)?),
            name: None,
            span,
        });
    }
    let mut expr = None;
    let mut name = None;
    meta.parse_nested_meta(|m| {
        if m.path.is_ident("expr") {
            expr = Some(parse_lit_str(&m)?);
        } else if m.path.is_ident("name") {
            name = Some(parse_lit_str(&m)?);
        } else {
            return Err(m.error("`check(..)` takes `expr = \"...\"` and `name = \"...\"`"));
        }
        Ok(())
    })?;
    let Some(expr) = expr else {
        return Err(meta.error("`check(..)` needs `expr = \"...\"`"));
    };
    Ok(Constraint {
        kind: ConstraintKind::Check(expr),
        name,
        span,
    })
}

/// Container `foreign_key(columns(a, b), references = T, on_delete = "...", on_update = "...",
/// name = "...")`.
pub fn parse_foreign_key(cx: &Ctxt, meta: &ParseNestedMeta<'_>) -> syn::Result<Constraint> {
    let mut cols = None;
    let mut target = None;
    let mut on_delete = None;
    let mut on_update = None;
    let mut name = None;
    meta.parse_nested_meta(|m| {
        if m.path.is_ident("columns") {
            cols = Some(columns(&m)?);
        } else if m.path.is_ident("references") {
            target = Some(m.value()?.parse::<Path>()?);
        } else if m.path.is_ident("on_delete") {
            on_delete = Some(Action::parse(cx, parse_lit_str(&m)?));
        } else if m.path.is_ident("on_update") {
            on_update = Some(Action::parse(cx, parse_lit_str(&m)?));
        } else if m.path.is_ident("name") {
            name = Some(parse_lit_str(&m)?);
        } else {
            return Err(m.error(
                "unknown `foreign_key` option; expected `columns(..)`, `references = Model`, `on_delete`, `on_update` or `name`",
            ));
        }
        Ok(())
    })?;
    let (Some(columns), Some(target)) = (cols, target) else {
        return Err(meta.error("`foreign_key(..)` needs `columns(a, b)` and `references = Model`"));
    };
    Ok(Constraint {
        kind: ConstraintKind::ForeignKey {
            columns,
            target,
            on_delete,
            on_update,
        },
        name,
        span: span_of(meta),
    })
}

pub fn parse_action(cx: &Ctxt, meta: &ParseNestedMeta<'_>) -> syn::Result<Action> {
    Ok(Action::parse(cx, parse_lit_str(meta)?))
}

/// `identity` or `identity(always, start = N, increment = N)`.
pub fn parse_identity(meta: &ParseNestedMeta<'_>) -> syn::Result<IdentityOptions> {
    let mut o = IdentityOptions::default();
    if meta.input.peek(syn::token::Paren) {
        meta.parse_nested_meta(|m| {
            if m.path.is_ident("always") {
                o.always = true;
            } else if m.path.is_ident("start") {
                o.start = Some(m.value()?.parse()?);
            } else if m.path.is_ident("increment") {
                o.increment = Some(m.value()?.parse()?);
            } else {
                return Err(
                    m.error("`identity(..)` takes `always`, `start = N` and `increment = N`")
                );
            }
            Ok(())
        })?;
    }
    Ok(o)
}

/// The tokens of an optional string literal.
pub fn opt_str(lit: Option<&LitStr>) -> TokenStream {
    match lit {
        Some(l) => quote::quote!(::core::option::Option::Some(#l)),
        None => quote::quote!(::core::option::Option::None),
    }
}

/// A constraint with its final name and its columns resolved.
pub struct Named<'a> {
    pub name: String,
    /// The user's `name = "..."` (for spans), if any.
    pub name_lit: Option<&'a LitStr>,
    pub span: Span,
    pub body: Body<'a>,
}

pub enum Body<'a> {
    PrimaryKey(Vec<String>),
    Unique(Vec<String>),
    Check(&'a LitStr),
    ForeignKey {
        columns: Vec<String>,
        target: &'a Path,
        on_delete: Option<&'a Action>,
        on_update: Option<&'a Action>,
    },
}

pub struct NamedIndex<'a> {
    pub name: String,
    pub name_lit: Option<&'a LitStr>,
    pub span: Span,
    pub index: &'a Index,
    /// Key columns (`None` for an expression key), in order.
    pub keys: Vec<Option<String>>,
    pub include: Vec<String>,
}

/// Every constraint and index of the model, named, with columns resolved (unknown columns
/// are reported here, at the identifier). `None` entries are left out.
pub fn lower<'a>(
    cx: &Ctxt,
    c: &'a crate::ast::Container<'a>,
    fields: &'a [crate::ast::Field<'a>],
) -> (Vec<Named<'a>>, Vec<NamedIndex<'a>>) {
    let table = &c.table;
    let resolve = |refs: &[ColumnRef], what: &str| -> Vec<String> {
        refs.iter()
            .filter_map(|r| {
                let found = fields.iter().find(|f| {
                    let name = f.ident.to_string();
                    r.ident == name.strip_prefix("r#").unwrap_or(&name)
                });
                if found.is_none() {
                    let known: Vec<String> =
                        fields.iter().map(|f| format!("`{}`", f.ident)).collect();
                    cx.error_spanned_by(
                        &r.ident,
                        format!(
                            "unknown column `{}` in `{what}(..)`; name fields of this model: {}",
                            r.ident,
                            known.join(", ")
                        ),
                    );
                }
                found.map(|f| f.column.clone())
            })
            .collect()
    };
    let mut out = Vec::new();
    let keys: Vec<&crate::ast::Field> = fields.iter().filter(|f| f.primary_key.get()).collect();
    if !keys.is_empty() {
        out.push(Named {
            name: c
                .primary_key_name
                .as_ref()
                .map(LitStr::value)
                .unwrap_or_else(|| format!("{table}_pkey")),
            name_lit: c.primary_key_name.as_ref(),
            span: c.ident.span(),
            body: Body::PrimaryKey(keys.iter().map(|f| f.column.clone()).collect()),
        });
    } else if let Some(lit) = &c.primary_key_name {
        cx.error_spanned_by(
            lit,
            "`primary_key_name` names the primary key, but no field is `#[tenant(primary_key)]`",
        );
    }
    for f in fields {
        if let Some(target) = &f.references {
            let name_lit = f.foreign_key_name.as_ref().map(|(_, l)| l);
            out.push(Named {
                name: name_lit
                    .map(LitStr::value)
                    .unwrap_or_else(|| format!("{table}_{}_fkey", f.column)),
                name_lit,
                span: f.ident.span(),
                body: Body::ForeignKey {
                    columns: vec![f.column.clone()],
                    target,
                    on_delete: f.on_delete.as_ref().map(|(_, a)| a),
                    on_update: f.on_update.as_ref().map(|(_, a)| a),
                },
            });
        }
        if f.unique {
            out.push(Named {
                name: f
                    .unique_name
                    .as_ref()
                    .map(LitStr::value)
                    .unwrap_or_else(|| format!("{table}_{}_key", f.column)),
                name_lit: f.unique_name.as_ref(),
                span: f.ident.span(),
                body: Body::Unique(vec![f.column.clone()]),
            });
        }
        if let Some(check) = &f.check {
            if let ConstraintKind::Check(expr) = &check.kind {
                out.push(Named {
                    name: check
                        .name
                        .as_ref()
                        .map(LitStr::value)
                        .unwrap_or_else(|| format!("{table}_{}_check", f.column)),
                    name_lit: check.name.as_ref(),
                    span: check.span,
                    body: Body::Check(expr),
                });
            }
        }
    }
    let mut unnamed_checks = 0;
    for k in &c.constraints {
        let (default_name, body) = match &k.kind {
            ConstraintKind::Unique(cols) => {
                if cols.is_empty() {
                    cx.error_at(
                        k.span,
                        "`unique(..)` needs at least one column: `unique(a, b)`",
                    );
                }
                let cols = resolve(cols, "unique");
                (
                    format!("{table}_{}_key", cols.join("_")),
                    Body::Unique(cols),
                )
            }
            ConstraintKind::Check(expr) => {
                let name = if unnamed_checks == 0 {
                    format!("{table}_check")
                } else {
                    format!("{table}_check{unnamed_checks}")
                };
                if k.name.is_none() {
                    unnamed_checks += 1;
                }
                (name, Body::Check(expr))
            }
            ConstraintKind::ForeignKey {
                columns,
                target,
                on_delete,
                on_update,
                ..
            } => {
                if columns.is_empty() {
                    cx.error_at(
                        k.span,
                        "`foreign_key(columns(..))` needs at least one column",
                    );
                }
                let cols = resolve(columns, "foreign_key(columns");
                (
                    format!("{table}_{}_fkey", cols.join("_")),
                    Body::ForeignKey {
                        columns: cols,
                        target,
                        on_delete: on_delete.as_ref(),
                        on_update: on_update.as_ref(),
                    },
                )
            }
        };
        out.push(Named {
            name: k.name.as_ref().map(LitStr::value).unwrap_or(default_name),
            name_lit: k.name.as_ref(),
            span: k.span,
            body,
        });
    }
    let mut indexes = Vec::new();
    for (f, index) in fields
        .iter()
        .filter_map(|f| f.index_def.as_ref().map(|i| (Some(f), i)))
        .chain(c.indexes.iter().map(|i| (None, i)))
    {
        let keys: Vec<Option<String>> = match f {
            Some(f) => vec![Some(f.column.clone())],
            None => index
                .keys
                .iter()
                .map(|k| match k {
                    IndexKey::Column(r) => resolve(std::slice::from_ref(r), "index").pop(),
                    IndexKey::Expr(_) => None,
                })
                .collect(),
        };
        if index.keys.is_empty() {
            cx.error_at(
                index.span,
                "`index(..)` needs at least one column or `expr = \"...\"`",
            );
        }
        let has_expr = index.keys.iter().any(|k| matches!(k, IndexKey::Expr(_)));
        if has_expr && index.name.is_none() {
            cx.error_at(
                index.span,
                "an expression index needs a name: add `name = \"...\"` to `index(..)`",
            );
        }
        let include = resolve(&index.include, "include");
        let cols: Vec<&str> = keys.iter().flatten().map(String::as_str).collect();
        indexes.push(NamedIndex {
            name: index
                .name
                .as_ref()
                .map(LitStr::value)
                .unwrap_or_else(|| format!("{table}_{}_idx", cols.join("_"))),
            name_lit: index.name.as_ref(),
            span: index.span,
            index,
            keys,
            include,
        });
    }
    (out, indexes)
}
