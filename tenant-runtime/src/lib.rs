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
//! - execution: [`Client`], [`Transaction`], [`Db`], [`Executor`], [`StatementCache`],
//!   [`StatementMode`];
//! - pooling: [`TenantPool`], [`PooledClient`]; per-request tenancy in `web` (feature `axum`);
//! - routing beyond one schema: read replicas ([`ReplicatedPool`], [`ReplicaDb`], [`RoutedDb`]),
//!   database per tenant ([`DatabaseRegistry`], [`TenantDatabases`]), vertical partitioning
//!   ([`Partitions`]), and the scale-out path ([`citus`]);
//! - errors: [`Error`](enum@Error).
#![warn(missing_docs)]

mod cache;
pub mod citus;
mod client;
mod databases;
mod db;
pub mod ddl;
mod error;
mod executor;
mod model;
mod partition;
mod pool;
mod replica;
mod schema;
mod template;
mod tenant;
mod types;
#[cfg(feature = "axum")]
pub mod web;

#[doc(hidden)]
#[path = "__private.rs"]
pub mod __private;

pub use cache::{CacheStats, StatementCache, StatementMode};
pub use client::{Client, Transaction};
pub use db::Db;
pub use error::{Error, Result};
pub use databases::{
    DatabaseClient, DatabaseDb, DatabaseRegistry, DatabasesStats, TenantDatabases,
    TenantDatabasesBuilder,
};
pub use executor::{Begin, ConnState, Executor, Writable};
pub use model::{Column, ColumnDef, ForeignKey, Keyed, Model, Params};
pub use partition::Partitions;
pub use pool::{PoolStatus, PooledClient, PooledDb, TenantPool, TenantPoolBuilder};
pub use replica::{
    ReadBalance, ReplicaClient, ReplicaDb, ReplicatedPool, ReplicatedPoolBuilder, RoutedDb,
    ServedBy,
};
pub use schema::{InvalidSchemaName, SchemaName, MAX_SCHEMA_NAME_LEN};
pub use template::{Piece, SchemaMap, Slot, Template};
pub use tenant::{Allowlist, Tenant, MAX_TENANT_KEY_LEN};
pub use types::SqlType;

/// Derives [`Model`] (and [`Keyed`] when a field is `#[tenant(primary_key)]`).
pub use tenant_macros::Model;

// Re-exported so users need no direct dependency to name driver types.
pub use postgres_types;
pub use tokio_postgres;
