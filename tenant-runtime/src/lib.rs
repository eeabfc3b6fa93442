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
//! # Ok(()) }
//! ```
//!
//! Layers, one module each:
//! - the door: [`SchemaName`], [`Tenant`], [`Allowlist`];
//! - templates: [`Template`], [`Slot`], [`SchemaMap`];
//! - models: [`Model`] (derive), [`Keyed`], [`Column`], [`SqlType`], [`ddl`];
//! - execution: [`Client`], [`Transaction`], [`Db`], [`Executor`], [`StatementCache`];
//! - lifecycle: [`ModelSet`], [`Registry`], [`Provisioner`] (provision, retire, restore,
//!   purge), [`Migrations`] ([`embed_migrations!`]) and [`Migrator`];
//! - errors: [`Error`](enum@Error).
#![warn(missing_docs)]

mod cache;
mod client;
mod db;
pub mod ddl;
mod error;
mod executor;
mod jobs;
mod lifecycle;
mod migrate;
mod model;
mod model_set;
mod registry;
mod schema;
mod template;
mod tenant;
mod types;

#[doc(hidden)]
#[path = "__private.rs"]
pub mod __private;

pub use cache::{CacheStats, StatementCache};
pub use client::{Client, Transaction};
pub use db::Db;
pub use error::{Error, Result};
pub use executor::{Begin, ConnState, Executor};
pub use jobs::connect_many;
pub use lifecycle::{retired_schema_name, Provisioner, Purged, Retired, RETIRED_MARKER};
pub use migrate::{
    Migration, MigrationReport, Migrations, Migrator, Outcome, OutcomeCounts, Progress,
    TenantReport, VERSION_TABLE,
};
pub use model::{Column, ColumnDef, ForeignKey, Keyed, Model, Params};
pub use model_set::{ModelInfo, ModelSet};
pub use registry::{Registry, RegistryEntry, TenantState};
pub use schema::{InvalidSchemaName, SchemaName, MAX_SCHEMA_NAME_LEN};
pub use template::{Piece, SchemaMap, Slot, Template};
pub use tenant::{Allowlist, Tenant, MAX_TENANT_KEY_LEN};
pub use types::SqlType;

/// Derives [`Model`] (and [`Keyed`] when a field is `#[tenant(primary_key)]`).
pub use tenant_macros::Model;

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
/// naming the file, line and column. Each migration is emitted as a `'static` [`Template`]
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

// Re-exported so users need no direct dependency to name driver types.
pub use postgres_types;
pub use tokio_postgres;
