//! A tenant's life: the [`Registry`] of tenants, the [`Provisioner`] (install the registry
//! and shared tables, provision a tenant, retire it, restore it, purge it after a grace
//! period), migrations across every tenant schema ([`Migrations`], [`Migrator`], run over
//! [`Connections`]) and the scale-out path on Citus ([`citus`]).
//!
//! A tenant's data as one archive: [`archive`] (export, import, clone, move, and the
//! snapshot purge takes before dropping a schema).

pub mod archive;
pub mod citus;
mod drop;
mod jobs;
mod migrate;
mod provision;
mod registry;

pub use jobs::{connect_many, Connections};
pub(crate) use jobs::{not_started, run_jobs, Job};
pub use migrate::{AppliedMigration, TenantHistory};
pub use migrate::{
    Migration, MigrationReport, Migrations, Migrator, Outcome, OutcomeCounts, Progress,
    TenantReport, VERSION_TABLE,
};
pub use migrate::{DEFAULT_LOCK_TIMEOUT, DEFAULT_STATEMENT_TIMEOUT};
pub(crate) use provision::lock_schema;
// For the archive: a new tenant's version table and rows, as the migrator writes them.
pub(crate) use migrate::{CREATE_VERSION_TABLE, INSERT_APPLIED};
pub use provision::{
    retired_schema_name, Provisioner, PurgeRefused, PurgeReport, Purged, Retired, RETIRED_MARKER,
};
pub(crate) use registry::entry_from_row;
pub use registry::{RefusedRegistryRow, Registry, RegistryEntry, RegistryRefresh, TenantState};

// The drift check (`Migrator::check`): tenant schemas against the models or the migrations.
mod check;
pub use check::{applied_by_newer_build, DriftReport, DriftState, Expected, TenantDrift};
pub(crate) use migrate::apply_all_in;
// Autogenerate (`Migrator::generate`, `Migrator::diff_models`).
mod generate;
pub use generate::GeneratedMigration;
