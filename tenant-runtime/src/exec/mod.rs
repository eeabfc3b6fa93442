//! Execution: the [`Executor`] trait (everything that runs statements; [`Writable`] for the
//! ones that may write, [`Begin`] for the ones that open transactions), [`Client`] and
//! [`Transaction`], the [`Db`] handle (an executor plus a [`Tenant`](crate::Tenant) and a
//! handle-level [`SchemaMap`](crate::SchemaMap)) with the one path every statement takes,
//! the bounded [`StatementCache`], the [`StatementMode`] and the row stream
//! ([`QueryStream`]).
//!
//! Other executors (pooled, replica and per-database connections) implement the traits
//! beside their own types, in `pool` (e.g. [`TenantPool`](crate::TenantPool)).

mod cache;
mod client;
mod db;
mod executor;
mod param_types;
mod stream;

pub use cache::{CacheStats, StatementCache, StatementMode};
pub(crate) use cache::{CachedStatement, StatementKey};
pub use client::{Client, Transaction};
pub use db::Db;
pub(crate) use db::{at_most_one, exactly_one, Affected, Rows, RowsStream};
pub(crate) use executor::sealed;
pub use executor::{Begin, Executor, Writable};
pub(crate) use executor::{ConnState, PgRef};
pub(crate) use param_types::typed_params;
pub(crate) use param_types::{schema_enum_types, EnumTypeCache};
pub use stream::QueryStream;
