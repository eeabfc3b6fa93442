//! What a schema holds, as one description type ([`SchemaShape`]), from two sources: the
//! models of a [`ModelSet`] rendered for one schema ([`ModelSet::expected_shape`]), and a
//! live schema read from `pg_catalog` ([`SchemaSnapshot::read`], many schemas at once).
//! [`SchemaShape::diff`] compares the two.

use std::collections::BTreeMap;

use postgres_types::Type;

use crate::door::SchemaName;
use crate::error::Result;
use crate::exec::{Db, Executor};
use crate::model::{ConstraintDef, FkAction, IndexKey, ModelInfo, ModelSet};
use crate::sql::Slot;

/// Everything tenant compares in one schema: its tables and its enum types.
///
/// The same type describes what the models expect ([`ModelSet::expected_shape`]) and what a
/// live schema holds ([`SchemaSnapshot::read`]), so the two can be
/// [diffed](SchemaShape::diff).
///
/// ```no_run
/// use tenant_runtime::{Allowlist, Client, Model, ModelSet, Slot};
///
/// #[derive(Model)]
/// #[tenant(table = "notes")]
/// struct Note { #[tenant(primary_key, identity)] id: i64, #[tenant(index)] body: Option<String> }
///
/// # async fn run(client: &Client) -> tenant_runtime::Result<()> {
/// let acme = Allowlist::from_pairs([("acme", "tenant_acme")])?.resolve("acme")?;
/// let db = tenant_runtime::Db::new(client, &acme);
/// let shape = ModelSet::new().with::<Note>().expected_shape(&db, Slot::Tenant)?;
/// let notes = &shape.tables["notes"];
/// assert_eq!(notes.columns[0].sql_type, "bigint");
/// assert!(notes.constraints.contains_key("notes_pkey"));
/// assert!(notes.indexes.contains_key("notes_body_idx"));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct SchemaShape {
    /// The schema's name.
    pub schema: String,
    /// Ordinary and partitioned tables, by name.
    pub tables: BTreeMap<String, TableShape>,
    /// Enum types owned by the schema, by name, with their labels in sort order.
    pub enums: BTreeMap<String, Vec<String>>,
}

/// One table: columns in position order, constraints and (non-constraint) indexes by name.
///
/// ```no_run
/// use tenant_runtime::model::inspect::{ConstraintKind, SchemaSnapshot};
/// use tenant_runtime::{Client, SchemaName};
/// # async fn run() -> tenant_runtime::Result<()> {
/// let client = Client::connect("postgres://postgres@127.0.0.1/postgres").await?;
/// let acme = SchemaName::parse("tenant_acme")?;
/// let snapshot = SchemaSnapshot::read(&client, &[acme]).await?;
/// for (name, table) in &snapshot.get(acme).expect("the schema exists").tables {
///     for column in &table.columns {
///         println!("{name}.{}: {} (null: {})", column.name, column.sql_type, column.nullable);
///     }
///     for (cname, c) in &table.constraints {
///         if c.kind == ConstraintKind::ForeignKey {
///             let target = c.references.as_ref().expect("a foreign key has a target");
///             println!("{cname}: -> {}.{} on delete {:?}", target.schema, target.table, target.on_delete);
///         }
///     }
///     for (iname, index) in &table.indexes {
///         println!("{iname}: {} ({})", index.method, index.columns.join(", "));
///     }
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct TableShape {
    /// Columns, in position order.
    pub columns: Vec<ColumnShape>,
    /// Primary-key, unique, foreign-key and check constraints, by name.
    pub constraints: BTreeMap<String, ConstraintShape>,
    /// Indexes that do not back a primary-key or unique constraint, by name.
    pub indexes: BTreeMap<String, IndexShape>,
}

impl TableShape {
    /// The column called `name`.
    pub fn column(&self, name: &str) -> Option<&ColumnShape> {
        self.columns.iter().find(|c| c.name == name)
    }
}

/// One column.
///
/// ```no_run
/// use tenant_runtime::model::inspect::{ConstraintKind, SchemaSnapshot};
/// use tenant_runtime::{Client, SchemaName};
/// # async fn run() -> tenant_runtime::Result<()> {
/// let client = Client::connect("postgres://postgres@127.0.0.1/postgres").await?;
/// let acme = SchemaName::parse("tenant_acme")?;
/// let snapshot = SchemaSnapshot::read(&client, &[acme]).await?;
/// for (name, table) in &snapshot.get(acme).expect("the schema exists").tables {
///     for column in &table.columns {
///         println!("{name}.{}: {} (null: {})", column.name, column.sql_type, column.nullable);
///     }
///     for (cname, c) in &table.constraints {
///         if c.kind == ConstraintKind::ForeignKey {
///             let target = c.references.as_ref().expect("a foreign key has a target");
///             println!("{cname}: -> {}.{} on delete {:?}", target.schema, target.table, target.on_delete);
///         }
///     }
///     for (iname, index) in &table.indexes {
///         println!("{iname}: {} ({})", index.method, index.columns.join(", "));
///     }
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ColumnShape {
    /// Column name.
    pub name: String,
    /// The type as PostgreSQL's `format_type` spells it (`bigint`, `character varying(20)`,
    /// `timestamp with time zone`, `text[]`); types written in models are normalized to
    /// this spelling ([`normalize_type`]). An enum type is `schema.type` (`tenant_acme.status`,
    /// `tenant_acme.status[]`) whatever the `search_path`: the same name in another schema is
    /// another type.
    pub sql_type: String,
    /// Whether NULL is allowed.
    pub nullable: bool,
    /// The default expression, normalized by [`normalize_default`] (`'x'::text` is `'x'`,
    /// keywords are lower case); identity columns have none.
    pub default: Option<String>,
    /// An identity column (`GENERATED ... AS IDENTITY`).
    pub identity: bool,
}

/// The kind of a [`ConstraintShape`].
///
/// ```no_run
/// use tenant_runtime::model::inspect::{ConstraintKind, SchemaSnapshot};
/// use tenant_runtime::{Client, SchemaName};
/// # async fn run() -> tenant_runtime::Result<()> {
/// let client = Client::connect("postgres://postgres@127.0.0.1/postgres").await?;
/// let acme = SchemaName::parse("tenant_acme")?;
/// let snapshot = SchemaSnapshot::read(&client, &[acme]).await?;
/// for (name, table) in &snapshot.get(acme).expect("the schema exists").tables {
///     for column in &table.columns {
///         println!("{name}.{}: {} (null: {})", column.name, column.sql_type, column.nullable);
///     }
///     for (cname, c) in &table.constraints {
///         if c.kind == ConstraintKind::ForeignKey {
///             let target = c.references.as_ref().expect("a foreign key has a target");
///             println!("{cname}: -> {}.{} on delete {:?}", target.schema, target.table, target.on_delete);
///         }
///     }
///     for (iname, index) in &table.indexes {
///         println!("{iname}: {} ({})", index.method, index.columns.join(", "));
///     }
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConstraintKind {
    /// `PRIMARY KEY`.
    PrimaryKey,
    /// `UNIQUE`.
    Unique,
    /// `FOREIGN KEY`.
    ForeignKey,
    /// `CHECK`.
    Check,
}

impl ConstraintKind {
    /// The SQL words for the kind (`PRIMARY KEY`, ...).
    ///
    /// ```
    /// assert_eq!(tenant_runtime::model::ConstraintKind::ForeignKey.as_sql(), "FOREIGN KEY");
    /// ```
    pub fn as_sql(self) -> &'static str {
        match self {
            ConstraintKind::PrimaryKey => "PRIMARY KEY",
            ConstraintKind::Unique => "UNIQUE",
            ConstraintKind::ForeignKey => "FOREIGN KEY",
            ConstraintKind::Check => "CHECK",
        }
    }
}

/// One table constraint.
///
/// ```no_run
/// use tenant_runtime::model::inspect::{ConstraintKind, SchemaSnapshot};
/// use tenant_runtime::{Client, SchemaName};
/// # async fn run() -> tenant_runtime::Result<()> {
/// let client = Client::connect("postgres://postgres@127.0.0.1/postgres").await?;
/// let acme = SchemaName::parse("tenant_acme")?;
/// let snapshot = SchemaSnapshot::read(&client, &[acme]).await?;
/// for (name, table) in &snapshot.get(acme).expect("the schema exists").tables {
///     for column in &table.columns {
///         println!("{name}.{}: {} (null: {})", column.name, column.sql_type, column.nullable);
///     }
///     for (cname, c) in &table.constraints {
///         if c.kind == ConstraintKind::ForeignKey {
///             let target = c.references.as_ref().expect("a foreign key has a target");
///             println!("{cname}: -> {}.{} on delete {:?}", target.schema, target.table, target.on_delete);
///         }
///     }
///     for (iname, index) in &table.indexes {
///         println!("{iname}: {} ({})", index.method, index.columns.join(", "));
///     }
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConstraintShape {
    /// What kind of constraint.
    pub kind: ConstraintKind,
    /// The constrained columns, in constraint order.
    pub columns: Vec<String>,
    /// For a foreign key: the referenced table and columns.
    pub references: Option<Reference>,
    /// `pg_get_constraintdef` of a live constraint; `None` in shapes rendered from models.
    /// Shown in differences, never compared.
    pub definition: Option<String>,
}

/// The target of a foreign key.
///
/// ```no_run
/// use tenant_runtime::model::inspect::{ConstraintKind, SchemaSnapshot};
/// use tenant_runtime::{Client, SchemaName};
/// # async fn run() -> tenant_runtime::Result<()> {
/// let client = Client::connect("postgres://postgres@127.0.0.1/postgres").await?;
/// let acme = SchemaName::parse("tenant_acme")?;
/// let snapshot = SchemaSnapshot::read(&client, &[acme]).await?;
/// for (name, table) in &snapshot.get(acme).expect("the schema exists").tables {
///     for column in &table.columns {
///         println!("{name}.{}: {} (null: {})", column.name, column.sql_type, column.nullable);
///     }
///     for (cname, c) in &table.constraints {
///         if c.kind == ConstraintKind::ForeignKey {
///             let target = c.references.as_ref().expect("a foreign key has a target");
///             println!("{cname}: -> {}.{} on delete {:?}", target.schema, target.table, target.on_delete);
///         }
///     }
///     for (iname, index) in &table.indexes {
///         println!("{iname}: {} ({})", index.method, index.columns.join(", "));
///     }
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Reference {
    /// Schema of the referenced table.
    pub schema: String,
    /// Referenced table.
    pub table: String,
    /// Referenced columns, in key order.
    pub columns: Vec<String>,
    /// `ON DELETE`.
    pub on_delete: FkAction,
    /// `ON UPDATE`.
    pub on_update: FkAction,
}

/// One index.
///
/// ```no_run
/// use tenant_runtime::model::inspect::{ConstraintKind, SchemaSnapshot};
/// use tenant_runtime::{Client, SchemaName};
/// # async fn run() -> tenant_runtime::Result<()> {
/// let client = Client::connect("postgres://postgres@127.0.0.1/postgres").await?;
/// let acme = SchemaName::parse("tenant_acme")?;
/// let snapshot = SchemaSnapshot::read(&client, &[acme]).await?;
/// for (name, table) in &snapshot.get(acme).expect("the schema exists").tables {
///     for column in &table.columns {
///         println!("{name}.{}: {} (null: {})", column.name, column.sql_type, column.nullable);
///     }
///     for (cname, c) in &table.constraints {
///         if c.kind == ConstraintKind::ForeignKey {
///             let target = c.references.as_ref().expect("a foreign key has a target");
///             println!("{cname}: -> {}.{} on delete {:?}", target.schema, target.table, target.on_delete);
///         }
///     }
///     for (iname, index) in &table.indexes {
///         println!("{iname}: {} ({})", index.method, index.columns.join(", "));
///     }
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct IndexShape {
    /// Key columns (or expressions, as `pg_get_indexdef` prints them), in index order.
    pub columns: Vec<String>,
    /// A unique index.
    pub unique: bool,
    /// The access method (`btree`, `gin`, ...).
    pub method: String,
    /// `INCLUDE` columns.
    pub include: Vec<String>,
    /// A partial index (`WHERE ...`; the predicate itself is not compared).
    pub partial: bool,
    /// `pg_get_indexdef` of a live index; `None` in shapes rendered from models. Shown in
    /// differences, never compared.
    pub definition: Option<String>,
}

impl ConstraintShape {
    /// The constraint in words, e.g. `FOREIGN KEY (customer_id) REFERENCES s.customers (id)`.
    pub(crate) fn describe(&self) -> String {
        if let Some(def) = &self.definition {
            return def.clone();
        }
        let mut s = format!("{} ({})", self.kind.as_sql(), self.columns.join(", "));
        if let Some(r) = &self.references {
            s.push_str(&format!(
                " REFERENCES {}.{}({})",
                r.schema,
                r.table,
                r.columns.join(", ")
            ));
            if r.on_delete != FkAction::NoAction {
                s.push_str(&format!(" ON DELETE {}", r.on_delete));
            }
            if r.on_update != FkAction::NoAction {
                s.push_str(&format!(" ON UPDATE {}", r.on_update));
            }
        }
        s
    }

    fn same_as(&self, other: &ConstraintShape) -> bool {
        // A check constraint's expression is not compared (PostgreSQL rewrites it).
        self.kind == other.kind
            && (self.kind == ConstraintKind::Check
                || (self.columns == other.columns && self.references == other.references))
    }
}

impl IndexShape {
    pub(crate) fn describe(&self) -> String {
        if let Some(def) = &self.definition {
            return def.clone();
        }
        let mut s = format!(
            "{}INDEX USING {} ({})",
            if self.unique { "UNIQUE " } else { "" },
            self.method,
            self.columns.join(", ")
        );
        if !self.include.is_empty() {
            s.push_str(&format!(" INCLUDE ({})", self.include.join(", ")));
        }
        if self.partial {
            s.push_str(" WHERE ...");
        }
        s
    }

    fn same_as(&self, other: &IndexShape) -> bool {
        self.unique == other.unique
            && self.columns == other.columns
            && self.method == other.method
            && self.include == other.include
            && self.partial == other.partial
    }
}

pub(crate) fn same_constraint(a: &ConstraintShape, b: &ConstraintShape) -> bool {
    a.same_as(b)
}

pub(crate) fn same_index(a: &IndexShape, b: &IndexShape) -> bool {
    a.same_as(b)
}

/// A type name in `format_type`'s spelling: lower case, aliases resolved (`INT8` and `BIGINT`
/// are `bigint`, `VARCHAR(20)` is `character varying(20)`, `TIMESTAMPTZ` is `timestamp with
/// time zone`), array brackets kept. Quoted or schema-qualified names are kept as written.
///
/// ```
/// use tenant_runtime::model::inspect::normalize_type;
/// assert_eq!(normalize_type("BIGINT"), "bigint");
/// assert_eq!(normalize_type("VARCHAR(20)"), "character varying(20)");
/// assert_eq!(normalize_type("TIMESTAMPTZ"), "timestamp with time zone");
/// assert_eq!(normalize_type("INT4[]"), "integer[]");
/// ```
pub fn normalize_type(sql_type: &str) -> String {
    let t = sql_type.trim();
    if t.contains('"') {
        return t.to_owned();
    }
    let lower = t.to_ascii_lowercase();
    let (base, arrays) = match lower.find("[]") {
        Some(i) => (lower[..i].trim_end(), &lower[i..]),
        None => (lower.as_str(), ""),
    };
    let (name, args) = match base.find('(') {
        Some(i) => (base[..i].trim_end(), base[i..].replace(' ', "")),
        None => (base, String::new()),
    };
    let name = name.split_whitespace().collect::<Vec<_>>().join(" ");
    let name = match name.as_str() {
        "int8" => "bigint",
        "int" | "int4" => "integer",
        "int2" => "smallint",
        "float8" => "double precision",
        "float4" => "real",
        "bool" => "boolean",
        "varchar" => "character varying",
        "char" | "bpchar" => "character",
        "decimal" => "numeric",
        "timestamptz" | "timestamp with time zone" => "timestamp with time zone",
        "timestamp" | "timestamp without time zone" => "timestamp without time zone",
        "timetz" | "time with time zone" => "time with time zone",
        "time" | "time without time zone" => "time without time zone",
        other => other,
    };
    format!("{name}{args}{arrays}")
}

/// A default expression as compared: outside string literals lower case and without blanks
/// around punctuation, and a cast that follows a string literal (`'x'::text`,
/// `'x'::character varying`) removed, since PostgreSQL adds it when it stores the default.
///
/// ```
/// use tenant_runtime::model::inspect::normalize_default;
/// assert_eq!(normalize_default("'draft'::text"), "'draft'");
/// assert_eq!(normalize_default("NOW()"), "now()");
/// assert_eq!(normalize_default("'It''s'"), "'It''s'");
/// ```
pub fn normalize_default(default: &str) -> String {
    let mut out = String::new();
    let mut chars = default.trim().chars().peekable();
    let mut after_literal = false;
    while let Some(c) = chars.next() {
        if c == '\'' {
            out.push(c);
            while let Some(d) = chars.next() {
                out.push(d);
                if d == '\'' {
                    if chars.peek() == Some(&'\'') {
                        out.push(chars.next().expect("peeked"));
                    } else {
                        break;
                    }
                }
            }
            after_literal = true;
            continue;
        }
        if after_literal && c == ':' && chars.peek() == Some(&':') {
            chars.next();
            // Skip the type name (words, spaces, parentheses, brackets).
            while let Some(&d) = chars.peek() {
                if d.is_ascii_alphanumeric() || matches!(d, '_' | ' ' | '(' | ')' | '[' | ']' | '"')
                {
                    chars.next();
                } else {
                    break;
                }
            }
            after_literal = false;
            continue;
        }
        after_literal = false;
        out.push(c.to_ascii_lowercase());
    }
    out.trim().to_owned()
}

impl ModelSet {
    /// What the schema that `slot` resolves to through `db` should hold: the tables of the
    /// models in `slot` (the tenant slot: the handle's tenant schema), with the columns,
    /// constraints and indexes their DDL creates, foreign keys resolved to the schemas of their
    /// targets. No I/O; compare it with a [`SchemaSnapshot`] through [`SchemaShape::diff`].
    ///
    /// ```no_run
    /// # use tenant_runtime::{Allowlist, Client, Model, ModelSet, Slot};
    /// # #[derive(Model)] #[tenant(table = "customers")] struct Customer { #[tenant(primary_key, identity)] id: i64 }
    /// # #[derive(Model)] #[tenant(table = "invoices")] struct Invoice { #[tenant(primary_key, identity)] id: i64, #[tenant(references = Customer)] customer_id: i64 }
    /// # async fn run(client: &Client) -> tenant_runtime::Result<()> {
    /// let acme = Allowlist::from_pairs([("acme", "tenant_acme")])?.resolve("acme")?;
    /// let shape = ModelSet::new().with::<Customer>().with::<Invoice>()
    ///     .expected_shape(&tenant_runtime::Db::new(client, &acme), Slot::Tenant)?;
    /// let fk = &shape.tables["invoices"].constraints["invoices_customer_id_fkey"];
    /// assert_eq!(fk.references.as_ref().unwrap().schema, "tenant_acme");
    /// # Ok(()) }
    /// ```
    pub fn expected_shape<E: Executor>(&self, db: &Db<E>, slot: Slot) -> Result<SchemaShape> {
        self.validate()?;
        let schema = db.resolve(slot, None)?;
        let mut shape = SchemaShape {
            schema: schema.as_str().to_owned(),
            ..SchemaShape::default()
        };
        for model in self.models().iter().filter(|m| m.slot == slot) {
            shape
                .tables
                .insert(model.table.to_owned(), table_shape(model, db)?);
        }
        for (_, ty) in self.enum_types(|s| s == slot)? {
            shape.enums.insert(
                ty.name.to_owned(),
                ty.labels.iter().map(|l| l.to_string()).collect(),
            );
        }
        Ok(shape)
    }
}

fn table_shape<E: Executor>(m: &ModelInfo, db: &Db<E>) -> Result<TableShape> {
    let mut t = TableShape::default();
    let own = |s: &str| s.to_owned();
    let owns = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let schema = db.resolve(m.slot, None)?;
    for c in m.columns {
        let sql_type = match c.enum_type {
            // As the catalog query spells an enum column: `schema.type`, `[]` for an array.
            Some(ty) => {
                let array = if c.sql_type.trim_end().ends_with("[]") {
                    "[]"
                } else {
                    ""
                };
                format!("{}.{}{array}", schema.as_str(), ty.name)
            }
            None => normalize_type(c.sql_type),
        };
        t.columns.push(ColumnShape {
            name: own(c.name),
            sql_type,
            nullable: c.nullable && !c.identity && !m.primary_key.contains(&c.name),
            default: c.default.map(normalize_default),
            identity: c.identity,
        });
    }
    for k in m.constraints {
        let (kind, columns, references) = match k.def {
            ConstraintDef::PrimaryKey { columns } => {
                (ConstraintKind::PrimaryKey, owns(columns), None)
            }
            ConstraintDef::Unique { columns } => (ConstraintKind::Unique, owns(columns), None),
            ConstraintDef::Check { .. } => (ConstraintKind::Check, Vec::new(), None),
            ConstraintDef::ForeignKey {
                columns,
                table,
                slot,
                target_columns,
                on_delete,
                on_update,
                ..
            } => (
                ConstraintKind::ForeignKey,
                owns(columns),
                Some(Reference {
                    schema: db.resolve(slot, None)?.as_str().to_owned(),
                    table: own(table),
                    columns: owns(target_columns),
                    on_delete,
                    on_update,
                }),
            ),
        };
        t.constraints.insert(
            own(k.name),
            ConstraintShape {
                kind,
                columns,
                references,
                definition: None,
            },
        );
    }
    for i in m.indexes {
        t.indexes.insert(
            own(i.name),
            IndexShape {
                columns: i
                    .keys
                    .iter()
                    .map(|k| match k {
                        IndexKey::Column(c) => own(c),
                        IndexKey::Expr(e) => own(e),
                    })
                    .collect(),
                unique: i.unique,
                method: i.using.unwrap_or("btree").to_ascii_lowercase(),
                include: owns(i.include),
                partial: i.predicate.is_some(),
                definition: None,
            },
        );
    }
    Ok(t)
}

/// The live shapes of many schemas, read from `pg_catalog` with one query per kind of object
/// (tables and columns, constraints, indexes, enum types) for all the schemas at once, the
/// four sent pipelined: one round trip for any number of schemas.
///
/// ```no_run
/// use tenant_runtime::model::SchemaSnapshot;
/// use tenant_runtime::{Client, SchemaName};
///
/// # async fn run() -> tenant_runtime::Result<()> {
/// let client = Client::connect("postgres://postgres@127.0.0.1/postgres").await?;
/// let schemas = [SchemaName::parse("tenant_acme")?, SchemaName::parse("tenant_globex")?];
/// let snapshot = SchemaSnapshot::read(&client, &schemas).await?;
/// for shape in snapshot.schemas() {
///     println!("{}: {} tables", shape.schema, shape.tables.len());
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Default)]
pub struct SchemaSnapshot {
    schemas: BTreeMap<String, SchemaShape>,
}

const TABLES_SQL: &str = "\
SELECT n.nspname::text, c.relname::text, a.attname::text,
       CASE WHEN et.oid IS NULL THEN format_type(a.atttypid, a.atttypmod)
            ELSE en.nspname || '.' || et.typname || CASE WHEN et.oid <> a.atttypid THEN '[]' ELSE '' END
       END,
       NOT a.attnotnull, pg_get_expr(d.adbin, d.adrelid), a.attidentity <> ''
FROM pg_catalog.pg_namespace n
LEFT JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relkind IN ('r', 'p')
LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
LEFT JOIN pg_catalog.pg_type ty ON ty.oid = a.atttypid
LEFT JOIN pg_catalog.pg_type et ON et.typtype = 'e'
      AND et.oid = CASE WHEN ty.typtype = 'e' THEN ty.oid ELSE ty.typelem END
LEFT JOIN pg_catalog.pg_namespace en ON en.oid = et.typnamespace
WHERE n.nspname = ANY($1)
ORDER BY n.nspname, c.relname, a.attnum";

const CONSTRAINTS_SQL: &str = "\
SELECT n.nspname::text, c.relname::text, k.conname::text, k.contype::text,
       ARRAY(SELECT a.attname::text FROM unnest(k.conkey) WITH ORDINALITY AS u(attnum, ord)
             JOIN pg_catalog.pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.attnum
             ORDER BY u.ord),
       fn.nspname::text, fc.relname::text,
       ARRAY(SELECT a.attname::text FROM unnest(k.confkey) WITH ORDINALITY AS u(attnum, ord)
             JOIN pg_catalog.pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = u.attnum
             ORDER BY u.ord),
       pg_get_constraintdef(k.oid), k.confdeltype::text, k.confupdtype::text
FROM pg_catalog.pg_constraint k
JOIN pg_catalog.pg_class c ON c.oid = k.conrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_catalog.pg_class fc ON fc.oid = k.confrelid
LEFT JOIN pg_catalog.pg_namespace fn ON fn.oid = fc.relnamespace
WHERE n.nspname = ANY($1) AND k.contype IN ('p', 'u', 'f', 'c')";

const INDEXES_SQL: &str = "\
SELECT n.nspname::text, t.relname::text, i.relname::text, x.indisunique,
       ARRAY(SELECT pg_get_indexdef(x.indexrelid, s, true)
             FROM generate_series(1, x.indnkeyatts::int) AS s ORDER BY s),
       pg_get_indexdef(x.indexrelid), am.amname::text,
       ARRAY(SELECT pg_get_indexdef(x.indexrelid, s, true)
             FROM generate_series(x.indnkeyatts::int + 1, x.indnatts::int) AS s ORDER BY s),
       x.indpred IS NOT NULL
FROM pg_catalog.pg_index x
JOIN pg_catalog.pg_class i ON i.oid = x.indexrelid
JOIN pg_catalog.pg_am am ON am.oid = i.relam
JOIN pg_catalog.pg_class t ON t.oid = x.indrelid
JOIN pg_catalog.pg_namespace n ON n.oid = t.relnamespace
WHERE n.nspname = ANY($1)
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint k
                  WHERE k.conindid = x.indexrelid AND k.conrelid = x.indrelid
                    AND k.contype IN ('p', 'u', 'x'))";

const ENUMS_SQL: &str = "\
SELECT n.nspname::text, t.typname::text,
       ARRAY(SELECT e.enumlabel::text FROM pg_catalog.pg_enum e
             WHERE e.enumtypid = t.oid ORDER BY e.enumsortorder)
FROM pg_catalog.pg_type t
JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
WHERE t.typtype = 'e' AND n.nspname = ANY($1)";

impl SchemaSnapshot {
    /// Reads `schemas` (schemas that do not exist are left out of the snapshot). Four
    /// catalog queries, pipelined on one connection, whatever the number of schemas.
    pub async fn read<E: Executor>(exec: &E, schemas: &[SchemaName]) -> Result<SchemaSnapshot> {
        let names: Vec<&str> = schemas.iter().map(|s| s.as_str()).collect();
        let pg = exec.pg();
        let param: [(&(dyn postgres_types::ToSql + Sync), Type); 1] = [(&names, Type::TEXT_ARRAY)];
        let (tables, constraints, indexes, enums) = futures_util::try_join!(
            pg.query_typed(TABLES_SQL, &param),
            pg.query_typed(CONSTRAINTS_SQL, &param),
            pg.query_typed(INDEXES_SQL, &param),
            pg.query_typed(ENUMS_SQL, &param),
        )?;
        let mut out: BTreeMap<String, SchemaShape> = BTreeMap::new();
        for row in &tables {
            let schema: String = row.try_get(0)?;
            let shape = out.entry(schema.clone()).or_insert_with(|| SchemaShape {
                schema,
                ..SchemaShape::default()
            });
            let Some(table) = row.try_get::<_, Option<String>>(1)? else {
                continue;
            };
            let t = shape.tables.entry(table).or_default();
            let Some(name) = row.try_get::<_, Option<String>>(2)? else {
                continue;
            };
            let identity: bool = row.try_get(6)?;
            t.columns.push(ColumnShape {
                name,
                sql_type: normalize_type(&row.try_get::<_, String>(3)?),
                nullable: row.try_get(4)?,
                default: row
                    .try_get::<_, Option<String>>(5)?
                    .filter(|_| !identity)
                    .map(|d| normalize_default(&d)),
                identity,
            });
        }
        for row in &constraints {
            let Some(t) = table_mut(&mut out, row.try_get(0)?, row.try_get(1)?) else {
                continue;
            };
            let kind = match row.try_get::<_, String>(3)?.as_str() {
                "p" => ConstraintKind::PrimaryKey,
                "u" => ConstraintKind::Unique,
                "f" => ConstraintKind::ForeignKey,
                _ => ConstraintKind::Check,
            };
            let references = match (
                row.try_get::<_, Option<String>>(5)?,
                row.try_get::<_, Option<String>>(6)?,
            ) {
                (Some(schema), Some(table)) if kind == ConstraintKind::ForeignKey => {
                    Some(Reference {
                        schema,
                        table,
                        columns: row.try_get(7)?,
                        on_delete: action(&row.try_get::<_, String>(9)?),
                        on_update: action(&row.try_get::<_, String>(10)?),
                    })
                }
                _ => None,
            };
            t.constraints.insert(
                row.try_get(2)?,
                ConstraintShape {
                    kind,
                    columns: row.try_get(4)?,
                    references,
                    definition: row.try_get(8)?,
                },
            );
        }
        for row in &indexes {
            let Some(t) = table_mut(&mut out, row.try_get(0)?, row.try_get(1)?) else {
                continue;
            };
            t.indexes.insert(
                row.try_get(2)?,
                IndexShape {
                    unique: row.try_get(3)?,
                    columns: row.try_get(4)?,
                    definition: row.try_get(5)?,
                    method: row.try_get(6)?,
                    include: row.try_get(7)?,
                    partial: row.try_get(8)?,
                },
            );
        }
        for row in &enums {
            let schema: String = row.try_get(0)?;
            if let Some(shape) = out.get_mut(&schema) {
                shape.enums.insert(row.try_get(1)?, row.try_get(2)?);
            }
        }
        Ok(SchemaSnapshot { schemas: out })
    }

    /// The shape of `schema`, if it exists.
    pub fn get(&self, schema: SchemaName) -> Option<&SchemaShape> {
        self.schemas.get(schema.as_str())
    }

    /// Every schema read, by name.
    pub fn schemas(&self) -> impl Iterator<Item = &SchemaShape> {
        self.schemas.values()
    }

    /// Number of schemas read that exist.
    pub fn len(&self) -> usize {
        self.schemas.len()
    }

    /// Whether none of the schemas read exists.
    pub fn is_empty(&self) -> bool {
        self.schemas.is_empty()
    }
}

/// `pg_constraint.confdeltype` / `confupdtype` as an action.
fn action(code: &str) -> FkAction {
    match code {
        "r" => FkAction::Restrict,
        "c" => FkAction::Cascade,
        "n" => FkAction::SetNull,
        "d" => FkAction::SetDefault,
        _ => FkAction::NoAction,
    }
}

fn table_mut(
    out: &mut BTreeMap<String, SchemaShape>,
    schema: String,
    table: String,
) -> Option<&mut TableShape> {
    out.get_mut(&schema)?.tables.get_mut(&table)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_normalize_to_format_type_spelling() {
        for (written, canonical) in [
            ("BIGINT", "bigint"),
            ("int8", "bigint"),
            ("DOUBLE PRECISION", "double precision"),
            ("NUMERIC(10, 2)", "numeric(10,2)"),
            ("varchar(20)", "character varying(20)"),
            ("TIMESTAMP", "timestamp without time zone"),
            ("TEXT[]", "text[]"),
            ("JSONB", "jsonb"),
        ] {
            assert_eq!(normalize_type(written), canonical, "{written}");
        }
    }

    #[test]
    fn defaults_lose_literal_casts_and_case() {
        assert_eq!(normalize_default("'a'::character varying"), "'a'");
        assert_eq!(normalize_default("'{}'::jsonb"), "'{}'");
        assert_eq!(normalize_default("CURRENT_TIMESTAMP"), "current_timestamp");
        assert_eq!(normalize_default("false"), "false");
        assert_eq!(normalize_default("'A''B'"), "'A''B'");
    }
}
