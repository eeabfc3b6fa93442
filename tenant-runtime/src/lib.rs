//! Schema-per-tenant PostgreSQL for Rust.
//!
//! Models derive SQL templates whose schemas are *slots*; a statement's slots are filled,
//! when it runs, from a [`Tenant`], which only an [`Allowlist`] hands out. No string can
//! become a schema in SQL: the types forbid it.
//!
//! ```no_run
//! use tenant_runtime::{Allowlist, Client, Model, SchemaMap};
//!
//! #[derive(Debug, Model)]
//! #[tenant(table = "invoices")]
//! struct Invoice {
//!     #[tenant(primary_key, identity)]
//!     id: i64,
//!     #[tenant(index)]
//!     amount_cents: i64,
//!     note: Option<String>,
//! }
//!
//! # async fn run() -> Result<(), tenant_runtime::Error> {
//! let allowlist = Allowlist::from_pairs([("acme", "tenant_acme"), ("globex", "tenant_globex")])?;
//! let mut client = Client::connect("postgres://postgres@127.0.0.1/postgres").await?;
//!
//! let acme = allowlist.resolve("acme")?;            // the one door
//! let db = client.for_tenant(&acme);
//! Invoice::create_table(&db).await?;                // in "tenant_acme"
//! let saved = Invoice { id: 0, amount_cents: 1200, note: None }.insert(&db).await?;
//! assert_eq!(Invoice::get(&db, saved.id).await?.unwrap().amount_cents, 1200);
//! let big = Invoice::query().filter(Invoice::AMOUNT_CENTS.gt(1000)).fetch_all(&db).await?;
//! # Ok(()) }
//! ```
//!
//! # Layout
//!
//! One folder per layer; each layer uses only the ones above it in this list, and every
//! trait impl sits beside its type. The names most applications use are re-exported here;
//! everything else is in its room.
//!
//! | room | what is in it | at the root |
//! |---|---|---|
//! | [`door`] | the only way from a string to a schema: validated names, the allowlist | [`SchemaName`], [`Tenant`], [`Allowlist`] |
//! | [`error`] | the one [`Error`](enum@Error), the causes request handling matches at its top, the rest nested by area | [`Error`](enum@Error), [`Result`] |
//! | [`sql`] | templates with schema slots, the one template builder, schema maps | [`Slot`], [`SchemaMap`] |
//! | [`exec`] | everything that runs statements: the executor traits, [`Client`], [`Transaction`], the [`Db`] handle and its one run path, the statement cache and mode, row streams | [`Executor`], [`Writable`], [`Begin`], [`Client`], [`Transaction`], [`Db`], [`StatementMode`] |
//! | [`model`] | [`Model`] and [`Keyed`], typed [`Column`]s and their filters, the [`Select`] builder, PostgreSQL enum types ([`SqlEnum`](trait@SqlEnum)), bulk loads ([`model::bulk`]), DDL ([`model::ddl`]), [`ModelSet`], the live-schema reader and diff | [`Model`], [`Keyed`], [`Column`], [`Select`], [`ModelSet`], [`SqlEnum`](trait@SqlEnum) |
//! | `query.rs` | what [`query!`], [`query_as!`] and [`query_scalar!`] expand to | [`Query`], [`QueryAs`], [`QueryScalar`] |
//! | [`pool`] | [`TenantPool`], read replicas, a database per tenant, vertical partitions | [`TenantPool`] |
//! | [`lifecycle`] | the tenant [`Registry`], the [`Provisioner`], [`Migrations`] and the [`Migrator`], Citus | [`Registry`], [`Provisioner`], [`Migrations`], [`Migrator`] |
//! | `web` | per-request tenancy for axum (feature `axum`) | |
//!
//! # One name per act
//!
//! Every query kind finishes with the same words: `fetch_all`, `fetch_one` (exactly one row:
//! [`Error::RowNotFound`] if none, [`Error::TooManyRows`] if more), `fetch_optional` (at most
//! one), `stream` (rows as they arrive) and `execute` (rows affected); the builder adds
//! `count` and `exists`. They are the same on [`Select`], on [`Query`], [`QueryAs`] and
//! [`QueryScalar`], and on [`Db`] for a template built by hand.
#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod door;
pub mod error;
pub mod exec;
pub mod lifecycle;
pub mod model;
pub mod pool;
mod query;
pub mod sql;
#[cfg(feature = "axum")]
pub mod web;

#[doc(hidden)]
#[path = "__private.rs"]
pub mod __private;

pub use door::{Allowlist, SchemaName, Tenant};
pub use error::{Error, Result};
pub use exec::{Begin, Client, Db, Executor, StatementMode, Transaction, Writable};
pub use lifecycle::{Migrations, Migrator, Provisioner, Registry};
pub use model::{Column, Keyed, Model, ModelSet, Select};
pub use pool::TenantPool;
pub use query::{Query, QueryAs, QueryScalar};
pub use sql::{SchemaMap, Slot};

/// Derives [`Model`] (and [`Keyed`] when a field is `#[tenant(primary_key)]`).
///
/// ```
/// use tenant_runtime::{Keyed, Model};
///
/// #[derive(Debug, Clone, PartialEq, Model)]
/// #[tenant(table = "invoices")]
/// struct Invoice {
///     #[tenant(primary_key, identity)] id: i64,
///     amount_cents: i64,
///     note: Option<String>,
/// }
///
/// let invoice = Invoice { id: 7, amount_cents: 1200, note: None };
/// assert_eq!(invoice.key(), 7);
/// assert_eq!(Invoice::ID.name(), "id");
/// ```
pub use tenant_macros::Model;

pub use model::SqlEnum;
/// Derives [`SqlEnum`](trait@SqlEnum) (with [`model::SqlType`], `ToSql` and `FromSql`) for a
/// fieldless enum: a PostgreSQL enum type that lives in the slot of each model with a column
/// of it, created before their tables (see the trait for the attributes).
///
/// ```
/// use tenant_runtime::{Model, SqlEnum};
///
/// #[derive(Debug, Clone, Copy, PartialEq, SqlEnum)]
/// #[tenant(type_name = "ticket_status", rename_all = "SCREAMING_SNAKE_CASE")]
/// enum Status { Open, InProgress, #[tenant(rename = "done")] Closed }
///
/// #[derive(Model)]
/// #[tenant(table = "tickets")]
/// struct Ticket { #[tenant(primary_key)] id: i64, status: Status }
///
/// assert_eq!(<Status as SqlEnum>::LABELS, ["OPEN", "IN_PROGRESS", "done"]);
/// let types = tenant_runtime::model::ddl::enum_types::<Ticket>();
/// assert_eq!(
///     tenant_runtime::model::ddl::create_enum_type(Ticket::SLOT, types[0]).to_string(),
///     "DO $tenant_enum$ BEGIN CREATE TYPE {tenant}.\"ticket_status\" AS ENUM ('OPEN', 'IN_PROGRESS', 'done'); \
///      EXCEPTION WHEN duplicate_object THEN NULL; END $tenant_enum$"
/// );
/// ```
pub use tenant_macros::SqlEnum;

/// Embeds a directory of SQL migrations, checked while compiling, as [`Migrations`].
///
/// `embed_migrations!("migrations")` reads `<crate dir>/migrations/*.sql`;
/// `embed_migrations!("migrations", slots = ["shared"])` also allows the named slot
/// `{shared}`. Every file must be named `<version>_<name>.sql` (versions unique, not zero,
/// all of one width: `0001_create_invoices.sql`, `0002_add_paid.sql`), use only `{tenant}`
/// and declared slots as schema placeholders, parse as PostgreSQL (placeholders replaced by
/// identifiers; several statements per file are fine) and leave transaction control to the
/// runner (no `BEGIN`, `COMMIT`, `CREATE INDEX CONCURRENTLY`...). A file with a line
/// `-- tenant:unchecked` skips the parser. Each problem is a compile error at the macro call
/// naming the file, line and column. Each migration is emitted as a `'static` [`Template`](sql::Template)
/// with its SHA-256 checksum; nothing is parsed at run time.
///
/// Cargo rebuilds when an embedded file changes; to pick up a *new* file without touching
/// Rust code, add a build script with `println!("cargo:rerun-if-changed=migrations");`.
///
/// ```
/// use tenant_runtime::{embed_migrations, Migrations};
///
/// static MIGRATIONS: Migrations = embed_migrations!("examples/migrations");
/// assert_eq!(MIGRATIONS.iter().next().unwrap().name(), "create_notes");
/// ```
pub use tenant_macros::embed_migrations;

/// Runs SQL that names models, not schemas; checked while compiling. Rows are
/// `tokio_postgres::Row`s (see [`Query`]).
///
/// `query!("SQL", args...)`: the SQL is a string literal with placeholders:
///
/// | placeholder | renders as |
/// |---|---|
/// | `{Invoice}` | the schema-qualified table in the model's slot: `"tenant_acme"."invoices"` |
/// | `{Invoice AS i}` | the same, aliased: `"tenant_acme"."invoices" AS "i"` |
/// | `{Invoice.paid}` | the quoted column, bare: `"paid"` (valid in `SET` and `INSERT` lists) |
/// | `{i.paid}` | the column qualified by an alias declared in the same literal: `"i"."paid"` |
/// | `{Invoice.*}` | every column in decode order, qualified by the table: `"invoices"."id", ...` |
/// | `{i.*}` | every column, qualified by the alias: `"i"."id", ...` |
/// | `{{`, `}}` | a literal `{`, `}` in SQL text; inside string literals, quoted identifiers and comments braces are data (`'{1,2}'::int[]` as written) |
///
/// A column is named by its SQL name or its field name (they differ only with
/// `#[tenant(rename = "...")]`). A model is a type path (`Invoice`, `models::Invoice`); a
/// lowercase single name is an alias. There is no placeholder for a schema: schemas come
/// only from a model's slot, filled from the [`Tenant`] and the [`SchemaMap`]. Tenant-slot
/// and named-slot models mix freely in one statement.
///
/// Checked while compiling, each failure a compile error at the literal (or the argument):
/// the SQL parses (sqlparser, PostgreSQL dialect) and is one statement; every placeholder
/// names a model and one of its columns; `$1..$n` are numbered without gaps and match the
/// arguments; an argument compared with (`=`, `<>`, `<`, `<=`, `>`, `>=`, `IN`, `BETWEEN`,
/// `IS [NOT] DISTINCT FROM`), assigned to (`SET col = $n`) or inserted into (`(col) VALUES
/// ($n)`) a column must [`Bind`](model::Bind) as that column's type. Other arguments need only be
/// `ToSql + Sync`; PostgreSQL checks them when the statement is prepared.
///
/// Arguments are captured by reference: they must outlive the query, so build and run it in
/// one expression (or bind temporaries to variables first). The SQL is a `static` template,
/// rendered once per (statement, schemas) on each connection and then served from the
/// statement cache. Terminals: `fetch_all`, `fetch_one`, `fetch_optional`, `execute`,
/// `stream`; `schema_map(&map)` sets the statement-level [`SchemaMap`].
///
/// ```no_run
/// use tenant_runtime::{query, Allowlist, Client, Model, SchemaMap};
///
/// #[derive(Model)]
/// #[tenant(table = "customers")]
/// struct Customer { #[tenant(primary_key, identity)] id: i64, name: String, plan_code: String }
///
/// #[derive(Model)]
/// #[tenant(table = "plans", schema = "shared")]
/// struct Plan { #[tenant(primary_key)] code: String, monthly_cents: i64 }
///
/// # async fn run() -> Result<(), tenant_runtime::Error> {
/// let mut client = Client::connect("postgres://postgres@127.0.0.1/postgres")
///     .await?
///     .with_schema_map(SchemaMap::new().with("shared", "public")?);
/// let acme = Allowlist::from_pairs([("acme", "tenant_acme")])?.resolve("acme")?;
/// let db = client.for_tenant(&acme);
///
/// // "tenant_acme"."customers" joined with "public"."plans", in one statement.
/// let rows = query!(
///     "SELECT {c.name}, {p.monthly_cents} FROM {Customer AS c} \
///      JOIN {Plan AS p} ON {p.code} = {c.plan_code} WHERE {p.monthly_cents} > $1",
///     0i64
/// )
/// .fetch_all(&db)
/// .await?;
/// for row in &rows {
///     let (name, cents): (String, i64) = (row.get(0), row.get(1));
/// }
///
/// let renamed = query!("UPDATE {Customer} SET {Customer.name} = $1 WHERE {Customer.id} = $2", "ACME Corp", 1i64)
///     .execute(&db)
///     .await?;
/// # Ok(()) }
/// ```
///
/// Mistakes do not compile:
///
/// ```compile_fail
/// # use tenant_runtime::{query, Model};
/// # #[derive(Model)] #[tenant(table = "invoices")] struct Invoice { #[tenant(primary_key)] id: i64, paid: bool }
/// let q = query!("SELECT {Invoice.id} FROM {Invoice} WHERE {Invoice.paid} = $1", "yes"); // `&str` is not a `bool`
/// ```
///
/// ```compile_fail
/// # use tenant_runtime::{query, Model};
/// # #[derive(Model)] #[tenant(table = "invoices")] struct Invoice { #[tenant(primary_key)] id: i64 }
/// let q = query!("SELECT * FROM {schema}.invoices"); // no placeholder for a schema
/// ```
pub use tenant_macros::query;

/// Like [`query!`], with each row decoded into a model: `query_as!(Model, "SQL", args...)`
/// (see [`QueryAs`]). Rows decode by position, so select `{Model.*}` (or the same columns
/// in the same order). `Model` must be a [`Model`].
///
/// ```no_run
/// use tenant_runtime::{query_as, Allowlist, Client, Model};
///
/// #[derive(Debug, Model)]
/// #[tenant(table = "invoices")]
/// struct Invoice { #[tenant(primary_key, identity)] id: i64, amount_cents: i64, paid: bool }
///
/// # async fn run() -> Result<(), tenant_runtime::Error> {
/// let mut client = Client::connect("postgres://postgres@127.0.0.1/postgres").await?;
/// let acme = Allowlist::from_pairs([("acme", "tenant_acme")])?.resolve("acme")?;
/// let db = client.for_tenant(&acme);
///
/// let unpaid: Vec<Invoice> = query_as!(
///     Invoice,
///     "SELECT {Invoice.*} FROM {Invoice} WHERE {Invoice.paid} = $1 ORDER BY {Invoice.id}",
///     false
/// )
/// .fetch_all(&db)
/// .await?;
///
/// let gone: Option<Invoice> =
///     query_as!(Invoice, "DELETE FROM {Invoice} WHERE {Invoice.id} = $1 RETURNING {Invoice.*}", 7i64)
///         .fetch_optional(&db)
///         .await?;
/// # Ok(()) }
/// ```
///
/// ```compile_fail
/// # use tenant_runtime::{query_as, Model};
/// # #[derive(Model)] #[tenant(table = "invoices")] struct Invoice { #[tenant(primary_key)] id: i64 }
/// let q = query_as!(String, "SELECT {Invoice.*} FROM {Invoice}"); // `String` is not a tenant model
/// ```
pub use tenant_macros::query_as;

/// Like [`query!`], with each row one value, of the type the caller asks for
/// (`T: FromSql`; see [`QueryScalar`]). The statement must return exactly one column.
///
/// ```no_run
/// use tenant_runtime::{query_scalar, Allowlist, Client, Model};
///
/// #[derive(Model)]
/// #[tenant(table = "invoices")]
/// struct Invoice { #[tenant(primary_key, identity)] id: i64, amount_cents: i64 }
///
/// # async fn run() -> Result<(), tenant_runtime::Error> {
/// let mut client = Client::connect("postgres://postgres@127.0.0.1/postgres").await?;
/// let acme = Allowlist::from_pairs([("acme", "tenant_acme")])?.resolve("acme")?;
/// let db = client.for_tenant(&acme);
///
/// let n: i64 = query_scalar!("SELECT count(*) FROM {Invoice} WHERE {Invoice.amount_cents} > $1", 100i64)
///     .fetch_one(&db)
///     .await?;
/// # Ok(()) }
/// ```
///
/// ```compile_fail
/// # use tenant_runtime::{query_scalar, Model};
/// # #[derive(Model)] #[tenant(table = "invoices")] struct Invoice { #[tenant(primary_key)] id: i64 }
/// let q = query_scalar!("SELECT {Invoice.*} FROM {Invoice}"); // more than one column
/// ```
pub use tenant_macros::query_scalar;

// Re-exported so users need no direct dependency to name driver types.
pub use postgres_types;
pub use tokio_postgres;
