//! Table-level schema facts a model declares: constraints ([`TableConstraint`]) and indexes
//! ([`IndexDef`]), each with its final name, as `#[derive(Model)]` lowers both the field-level
//! attributes (`unique`, `index`, `check`, `references`) and the container-level ones
//! (`unique(..)`, `index(..)`, `check`, `foreign_key(..)`) into [`Model::CONSTRAINTS`] and
//! [`Model::INDEXES`](crate::Model::INDEXES).
//!
//! [`Model::CONSTRAINTS`]: crate::Model::CONSTRAINTS

use std::fmt;

use crate::sql::Slot;

/// A named table constraint.
///
/// ```
/// use tenant_runtime::model::{ConstraintDef, FkAction};
/// use tenant_runtime::Model;
///
/// #[derive(Model)]
/// #[tenant(table = "invoices")]
/// struct Invoice { #[tenant(primary_key)] id: i64 }
///
/// #[derive(Model)]
/// #[tenant(table = "lines", unique(invoice_id, sku, name = "lines_sku_once"))]
/// struct Line {
///     #[tenant(primary_key)] id: i64,
///     #[tenant(references = Invoice, on_delete = "cascade")] invoice_id: i64,
///     #[tenant(check = "qty > 0")] qty: i32,
///     sku: String,
/// }
///
/// let names: Vec<_> = Line::CONSTRAINTS.iter().map(|c| c.name).collect();
/// assert_eq!(names, ["lines_pkey", "lines_invoice_id_fkey", "lines_qty_check", "lines_sku_once"]);
/// assert!(matches!(
///     Line::CONSTRAINTS[1].def,
///     ConstraintDef::ForeignKey { on_delete: FkAction::Cascade, .. }
/// ));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableConstraint {
    /// The constraint name (user-picked with `name = "..."`, or PostgreSQL's default naming:
    /// `<table>_pkey`, `<table>_<cols>_key`, `<table>_<cols>_fkey`, `<table>_<col>_check`,
    /// `<table>_check<n>`).
    pub name: &'static str,
    /// What it constrains.
    pub def: ConstraintDef,
}

/// The body of a [`TableConstraint`].
///
/// ```
/// use tenant_runtime::model::{ConstraintDef, IndexKey};
/// use tenant_runtime::Model;
///
/// #[derive(Model)]
/// #[tenant(table = "users", index(expr = "lower(email)", name = "users_email_lower_idx"))]
/// struct User { #[tenant(primary_key)] id: i64, #[tenant(check = "email <> ''")] email: String }
///
/// assert!(User::CONSTRAINTS.iter().any(|c| matches!(c.def, ConstraintDef::PrimaryKey { columns: &["id"] })));
/// assert!(User::CONSTRAINTS.iter().any(|c| matches!(c.def, ConstraintDef::Check { .. })));
/// assert_eq!(User::INDEXES[0].keys, &[IndexKey::Expr("lower(email)")]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConstraintDef {
    /// `PRIMARY KEY (columns)`.
    PrimaryKey {
        /// Key columns, in key order.
        columns: &'static [&'static str],
    },
    /// `UNIQUE (columns)`.
    Unique {
        /// The columns.
        columns: &'static [&'static str],
    },
    /// `CHECK (expr)`; the expression is a compile-time literal, written into DDL as is.
    Check {
        /// The boolean expression.
        expr: &'static str,
    },
    /// `FOREIGN KEY (columns) REFERENCES target (target columns) ON DELETE .. ON UPDATE ..`.
    ForeignKey {
        /// The referencing columns.
        columns: &'static [&'static str],
        /// The referenced model's Rust name.
        model: &'static str,
        /// The referenced table.
        table: &'static str,
        /// The referenced table's slot.
        slot: Slot,
        /// The referenced columns (the target's primary key), in key order.
        target_columns: &'static [&'static str],
        /// `ON DELETE`.
        on_delete: FkAction,
        /// `ON UPDATE`.
        on_update: FkAction,
    },
}

/// A referential action (`on_delete = "..."`, `on_update = "..."`).
///
/// ```
/// assert_eq!(tenant_runtime::model::FkAction::SetNull.as_sql(), "SET NULL");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum FkAction {
    /// `NO ACTION` (the default: checked at the end of the statement).
    #[default]
    NoAction,
    /// `RESTRICT` (checked at once).
    Restrict,
    /// `CASCADE`.
    Cascade,
    /// `SET NULL`.
    SetNull,
    /// `SET DEFAULT`.
    SetDefault,
}

impl FkAction {
    /// The SQL words.
    pub const fn as_sql(self) -> &'static str {
        match self {
            FkAction::NoAction => "NO ACTION",
            FkAction::Restrict => "RESTRICT",
            FkAction::Cascade => "CASCADE",
            FkAction::SetNull => "SET NULL",
            FkAction::SetDefault => "SET DEFAULT",
        }
    }
}

impl fmt::Display for FkAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_sql())
    }
}

/// A named index (not one backing a primary-key or unique constraint).
///
/// ```
/// use tenant_runtime::model::IndexKey;
/// use tenant_runtime::Model;
///
/// #[derive(Model)]
/// #[tenant(table = "users", index(expr = "lower(email)", name = "users_email_ci"),
///          index(tags, using = "gin"))]
/// struct User { #[tenant(primary_key)] id: i64, email: String, tags: Vec<String> }
///
/// assert_eq!(User::INDEXES[0].name, "users_email_ci");
/// assert_eq!(User::INDEXES[0].keys, [IndexKey::Expr("lower(email)")]);
/// assert_eq!((User::INDEXES[1].name, User::INDEXES[1].using), ("users_tags_idx", Some("gin")));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexDef {
    /// The index name (`name = "..."`, or `<table>_<cols>_idx`).
    pub name: &'static str,
    /// Key columns and expressions, in order.
    pub keys: &'static [IndexKey],
    /// `UNIQUE INDEX`.
    pub unique: bool,
    /// The access method (`USING gin`); `None`: PostgreSQL's default, btree.
    pub using: Option<&'static str>,
    /// `INCLUDE (columns)`.
    pub include: &'static [&'static str],
    /// `WHERE predicate` of a partial index.
    pub predicate: Option<&'static str>,
}

/// One key of an [`IndexDef`].
///
/// ```
/// use tenant_runtime::model::{ConstraintDef, IndexKey};
/// use tenant_runtime::Model;
///
/// #[derive(Model)]
/// #[tenant(table = "users", index(expr = "lower(email)", name = "users_email_lower_idx"))]
/// struct User { #[tenant(primary_key)] id: i64, #[tenant(check = "email <> ''")] email: String }
///
/// assert!(User::CONSTRAINTS.iter().any(|c| matches!(c.def, ConstraintDef::PrimaryKey { columns: &["id"] })));
/// assert!(User::CONSTRAINTS.iter().any(|c| matches!(c.def, ConstraintDef::Check { .. })));
/// assert_eq!(User::INDEXES[0].keys, &[IndexKey::Expr("lower(email)")]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexKey {
    /// A column.
    Column(&'static str),
    /// An expression (`index(expr = "lower(email)")`), written into DDL in parentheses.
    Expr(&'static str),
}

/// Options of an identity column (`#[tenant(identity(always, start = 1000, increment = 10))]`).
///
/// ```
/// use tenant_runtime::Model;
///
/// #[derive(Model)]
/// #[tenant(table = "tickets")]
/// struct Ticket { #[tenant(primary_key, identity(always, start = 1000))] id: i64 }
///
/// let id = Ticket::COLUMNS[0].identity_options;
/// assert!(id.always);
/// assert_eq!((id.start, id.increment), (Some(1000), None));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IdentityOptions {
    /// `GENERATED ALWAYS` (an explicit value is refused) instead of `BY DEFAULT`.
    pub always: bool,
    /// `START WITH`.
    pub start: Option<i64>,
    /// `INCREMENT BY`.
    pub increment: Option<i64>,
}
