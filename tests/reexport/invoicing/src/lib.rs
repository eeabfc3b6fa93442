//! A library crate that ships tenant models and their migrations, and re-exports the
//! runtime as `invoicing::tenant`, so that an application depending on this crate alone
//! (not on `tenant-runtime`) can derive its own models and write checked queries with
//! `crate = reexport_invoicing::tenant`.

pub use tenant_runtime as tenant;

use tenant::{Migrations, Model};

/// A customer of one tenant.
#[derive(Debug, Clone, PartialEq, Model)]
#[tenant(table = "customers")]
pub struct Customer {
    /// Identity key.
    #[tenant(primary_key, identity)]
    pub id: i64,
    /// Display name.
    pub name: String,
}

/// An invoice of one customer.
#[derive(Debug, Clone, PartialEq, Model)]
#[tenant(table = "invoices")]
pub struct Invoice {
    /// Identity key.
    #[tenant(primary_key, identity)]
    pub id: i64,
    /// The customer billed.
    #[tenant(references = Customer)]
    pub customer_id: i64,
    /// Amount in cents.
    pub amount_cents: i64,
    /// Paid yet?
    #[tenant(default = "false")]
    pub paid: bool,
}

/// The library's migrations, embedded and checked when this crate compiles.
pub static MIGRATIONS: Migrations = tenant::embed_migrations!("migrations");
