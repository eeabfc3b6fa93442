//! The door: the only way from a string to a schema in SQL.
//!
//! A request's tenant key goes through [`Allowlist::resolve`] and comes out as a
//! [`Tenant`], the only thing a statement executes against; user code cannot build one
//! from a string. [`SchemaName`] is a validated PostgreSQL identifier, always emitted
//! quoted.

mod schema;
mod tenant;

pub(crate) use schema::validate_identifier;
pub use schema::{SchemaName, MAX_SCHEMA_NAME_LEN};
pub(crate) use tenant::check_pair;
pub(crate) use tenant::validate_key;
pub use tenant::{Allowlist, Tenant, MAX_TENANT_KEY_LEN};
