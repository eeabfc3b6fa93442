//! Errors: one [`Error`](enum@Error) for the whole runtime, with the causes request
//! handling matches at its top level and the rest nested by area, as sqlx nests its
//! `MigrateError`:
//!
//! | variant | area | raised by |
//! |---|---|---|
//! | `UnknownTenant`, `InvalidTenantKey`, `InvalidSchemaName` | the door | [`Allowlist::resolve`](crate::Allowlist::resolve), [`SchemaName::parse`](crate::SchemaName::parse) |
//! | `RowNotFound`, `TooManyRows`, `Decode`, `UntypedParameter`, `CopySource`, `Db` | statements | every `fetch_*`, `execute`, `stream`, bulk load |
//! | `PoolTimeout`, `PoolClosed`, `TenantPoolsBusy`, `UnknownTenantDatabase`, `NoReplicaAvailable` | getting a connection | `pool` |
//! | `InvalidRoleName` | provisioning | [`Provisioner::grant_to`](crate::Provisioner::grant_to) |
//! | [`Error::Allowlist`]\([`AllowlistError`]) | the allowlist's rules | building or changing an allowlist or registry |
//! | [`Error::Pool`]\([`PoolError`]) | pool settings | pool builders |
//! | [`Error::Model`]\([`ModelError`]) | model sets | [`ModelSet`](crate::ModelSet) |
//! | [`Error::Lifecycle`]\([`LifecycleError`]) | a tenant's life | [`Provisioner`](crate::Provisioner), [`Registry`](crate::Registry) |
//! | [`Error::Migrate`]\([`MigrateError`]) | migrations | [`Migrator`](crate::Migrator), [`Migrations`](crate::Migrations) |
//! | [`Error::Archive`]\([`ArchiveError`]) | tenant archives | `lifecycle::archive` (export, import, clone, move), purge's snapshot |
//!
//! Every message says what was wrong and what to do; nested errors display as themselves.

use std::fmt;
use std::time::Duration;

// The archive's errors: one nested area in a child module of its own (its many variants
// would double this file). It names no other top-level module, so no import cycle.
mod archive;
pub use archive::{ArchiveError, ArchivePart, Corruption, IoAction};

/// Everything that can go wrong in `tenant_runtime`, one variant per cause that callers
/// handle differently. The causes a request handler matches are at the top; the others are
/// nested by area (see the [module](self) table).
///
/// ```
/// use tenant_runtime::{Allowlist, Error};
/// use tenant_runtime::error::AllowlistError;
///
/// let allowlist = Allowlist::from_pairs([("acme", "tenant_acme")])?;
/// match allowlist.resolve("globex") {
///     Err(Error::UnknownTenant { key }) => assert_eq!(key, "globex"),
///     other => panic!("expected UnknownTenant, got {other:?}"),
/// }
/// match Allowlist::from_pairs([("acme", "public")]) {
///     Err(Error::Allowlist(AllowlistError::ReservedSchema { schema })) => assert_eq!(schema, "public"),
///     other => panic!("expected ReservedSchema, got {other:?}"),
/// }
/// # Ok::<(), Error>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The key is not in the allowlist. Treat as "not found" (HTTP 404), never retry as-is.
    #[error(
        "unknown tenant {key:?}: it is not in the allowlist; provision it or refresh the allowlist"
    )]
    UnknownTenant {
        /// The key that was looked up (it may be hostile: log it escaped).
        key: String,
    },
    /// A tenant key is malformed (empty, too long, or with control characters).
    #[error("malformed tenant key {key:?}: {reason}")]
    InvalidTenantKey {
        /// The refused key.
        key: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A schema name does not satisfy the identifier rule.
    #[error(transparent)]
    InvalidSchemaName(#[from] InvalidSchemaName),
    /// A query that must return exactly one row returned none.
    #[error("expected exactly one row, found none")]
    RowNotFound,
    /// A query that must return at most one row returned more.
    #[error("expected at most one row, found more")]
    TooManyRows,
    /// A row did not decode into the model (column count or type mismatch).
    #[error("cannot decode column {index} ({column}) of {model}: {source}")]
    Decode {
        /// The model being decoded.
        model: &'static str,
        /// The column name.
        column: &'static str,
        /// The column position.
        index: usize,
        /// What the driver said.
        #[source]
        source: tokio_postgres::Error,
    },
    /// In [`StatementMode::Unnamed`](crate::StatementMode::Unnamed) every parameter's
    /// PostgreSQL type is sent with the statement, and this parameter's Rust type maps to no
    /// built-in type. Nothing was sent to the server.
    #[error("parameter ${position} has no built-in PostgreSQL type ({detail}); the unnamed (pooler-safe) statement mode sends parameter types with each statement, so bind a built-in type (integers, floats, bool, text, bytea, numeric, uuid, dates and times, json, inet, or arrays of them) or use StatementMode::Prepared")]
    UntypedParameter {
        /// The 1-based parameter number (`$n`).
        position: usize,
        /// What the driver said about the last type tried.
        detail: String,
    },
    /// The row source of a bulk load ([`Model::copy_in_stream`](crate::Model::copy_in_stream))
    /// yielded an error. The `COPY` was aborted: nothing from this load was written.
    #[error("the row source of a COPY failed, so the COPY was aborted and nothing was written; fix the source and load again: {source}")]
    CopySource {
        /// The error the source yielded.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The connection pool could not hand out a connection in time. Nothing was run; retry
    /// later or shed load (HTTP 503). The message's advice follows the stage: at
    /// [`PoolStage::TenantCap`] it is the tenant's cap that was full, not the pool.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tenant_runtime::{error::PoolStage, Error};
    /// let pool_full = Error::PoolTimeout { stage: PoolStage::Wait, timeout: Some(Duration::from_secs(5)) };
    /// assert!(pool_full.to_string().contains("raise the pool's max_size"));
    /// let cap_full = Error::PoolTimeout { stage: PoolStage::TenantCap { max_per_tenant: 2 }, timeout: None };
    /// assert!(cap_full.to_string().contains("raise max_per_tenant"));
    /// assert!(!cap_full.to_string().contains("raise the pool's max_size"));
    /// ```
    #[error("connection pool timed out after {timeout:?} {stage}; {}", pool_timeout_advice(*.stage))]
    PoolTimeout {
        /// What timed out.
        stage: PoolStage,
        /// The configured timeout that elapsed (`None` if unknown).
        timeout: Option<Duration>,
    },
    /// The connection pool was closed with [`TenantPool::close`](crate::TenantPool::close).
    #[error("the connection pool is closed; build a new pool")]
    PoolClosed,
    /// A new per-database pool was needed, but
    /// `pool::TenantDatabases` already holds its maximum number of
    /// pools and each kept a connection checked out for the whole busy timeout, so none could
    /// be closed. Nothing was run; retry later or shed load (HTTP 503).
    #[error("all {max_pools} per-database pools kept connections checked out for the whole busy timeout, so none could be closed for a new one; raise max_pools (within the server's connection budget), hold connections for less time, or retry later")]
    TenantPoolsBusy {
        /// The configured maximum number of pools.
        max_pools: usize,
    },
    /// The tenant is in the allowlist but the
    /// `pool::DatabaseRegistry` names no database for it. No pool
    /// was created and nothing was run.
    #[error("tenant {key:?} has no database in the database registry; add it to the registry (or reload the registry) before routing it")]
    UnknownTenantDatabase {
        /// The tenant's key.
        key: String,
    },
    /// Every replica failed to hand out a connection and falling back to the primary is
    /// off (`pool::ReplicatedPoolBuilder::fallback_to_primary`).
    /// Nothing was run.
    #[error("no replica could serve the read ({replicas} tried; last error: {last}); check the replicas, or allow reads to fall back to the primary")]
    NoReplicaAvailable {
        /// How many replicas were tried.
        replicas: usize,
        /// What the last replica tried reported.
        #[source]
        last: Box<Error>,
    },
    /// A role to grant the tenant schemas to was refused: a name PostgreSQL reads as a
    /// pseudo-role or reserves (`public` would grant every tenant's data to every role on the
    /// server), or not a valid identifier for the grant. Nothing was granted.
    #[error("invalid role name {role:?} to grant tenant schemas to: {reason}; name a role created for the application")]
    InvalidRoleName {
        /// The refused role.
        role: String,
        /// Why it was refused.
        reason: String,
    },
    /// The database reported an error, or the connection failed.
    #[error("database error: {}", describe_db_error(.0))]
    Db(#[from] tokio_postgres::Error),
    /// An allowlist (or registry) entry breaks the allowlist's rules.
    #[error(transparent)]
    Allowlist(#[from] AllowlistError),
    /// A pool setting is not usable.
    #[error(transparent)]
    Pool(#[from] PoolError),
    /// A [`ModelSet`](crate::ModelSet) is not valid.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// Provisioning, retiring, restoring or purging a tenant was refused.
    #[error(transparent)]
    Lifecycle(#[from] LifecycleError),
    /// A migration run, or a set of migration files, failed.
    #[error(transparent)]
    Migrate(Box<MigrateError>),
    /// Exporting, importing, cloning or moving a tenant (or purge's snapshot) was refused or
    /// failed (see [`ArchiveError`]).
    #[error(transparent)]
    Archive(Box<ArchiveError>),
}

/// What stage of handing out a pooled connection timed out ([`Error::PoolTimeout`]).
///
/// ```
/// use tenant_runtime::error::PoolStage;
/// assert_eq!(PoolStage::Wait.to_string(), "waiting for a free connection");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PoolStage {
    /// Waiting for a connection to be returned (the pool was at its maximum size).
    Wait,
    /// Opening a new connection.
    Create,
    /// Checking a returned connection before handing it out again.
    Recycle,
    /// Waiting for one of the tenant's own connections to come back: it had
    /// `max_per_tenant` checked out (`TenantPoolBuilder::max_per_tenant`).
    TenantCap {
        /// The cap the tenant was at.
        max_per_tenant: usize,
    },
}

/// What to do about a [`Error::PoolTimeout`] at `stage`.
fn pool_timeout_advice(stage: PoolStage) -> &'static str {
    match stage {
        PoolStage::Wait => {
            "raise the pool's max_size (within the server's max_connections) or its wait \
             timeout, or hold connections for less time"
        }
        PoolStage::Create => {
            "check that the server is reachable and accepts connections (max_connections), \
             or raise the pool's create timeout"
        }
        PoolStage::Recycle => {
            "a returned connection did not answer its check in time: check the server's \
             load, or raise the pool's recycle timeout"
        }
        PoolStage::TenantCap { .. } => {
            "it is this tenant's cap that is full, not the pool (other tenants go through; \
             raising max_size does not help): hold this tenant's connections for less time, \
             or raise max_per_tenant if its load is expected"
        }
    }
}

impl fmt::Display for PoolStage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PoolStage::Wait => "waiting for a free connection",
            PoolStage::Create => "opening a new connection",
            PoolStage::Recycle => "checking a returned connection",
            PoolStage::TenantCap { max_per_tenant } => {
                return write!(
                    f,
                    "waiting for one of the tenant's own connections: it has {max_per_tenant} \
                     checked out, its max_per_tenant"
                )
            }
        })
    }
}

/// An allowlist (or registry) entry breaks one of the allowlist's rules: a schema of its own
/// per tenant, `public` never a tenant's, and a bound on the number of tenants.
///
/// ```
/// use tenant_runtime::{Allowlist, Error};
/// use tenant_runtime::error::{AllowlistError, Duplicated};
///
/// let twice = Allowlist::from_pairs([("a", "tenant_x"), ("b", "tenant_x")]).unwrap_err();
/// assert!(matches!(
///     twice,
///     Error::Allowlist(AllowlistError::DuplicateTenant { what: Duplicated::Schema, .. })
/// ));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AllowlistError {
    /// A schema that may not hold tenant data (`public`) was given for a tenant.
    #[error("schema {schema:?} cannot hold a tenant: `public` is shared by every role; give the tenant its own schema")]
    ReservedSchema {
        /// The refused schema.
        schema: String,
    },
    /// Two entries use the same key, or the same schema.
    #[error("duplicate allowlist entry: {what} {value:?} appears twice; each tenant needs its own key and its own schema")]
    DuplicateTenant {
        /// Which half of the entry is repeated.
        what: Duplicated,
        /// The repeated value.
        value: String,
    },
    /// The allowlist would exceed its configured bound.
    #[error("allowlist holds at most {max} tenants; raise the bound or shard the registry")]
    Full {
        /// The configured bound.
        max: usize,
    },
}

/// Which half of a tenant entry is repeated ([`AllowlistError::DuplicateTenant`]).
///
/// ```
/// use tenant_runtime::error::{AllowlistError, Duplicated};
/// use tenant_runtime::{Allowlist, Error};
///
/// match Allowlist::from_pairs([("acme", "tenant_a"), ("globex", "tenant_a")]) {
///     Err(Error::Allowlist(AllowlistError::DuplicateTenant { what, .. })) => {
///         assert_eq!(what, Duplicated::Schema)
///     }
///     other => panic!("expected a duplicate schema, got {other:?}"),
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Duplicated {
    /// The tenant key.
    Key,
    /// The schema.
    Schema,
}

impl fmt::Display for Duplicated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Duplicated::Key => "key",
            Duplicated::Schema => "schema",
        })
    }
}

/// A pool setting is not usable ([`Error::Pool`]).
///
/// ```
/// use tenant_runtime::{error::PoolError, Error, TenantPool};
/// let built = TenantPool::builder("postgres://postgres@127.0.0.1/postgres")?.max_size(0).build();
/// assert!(matches!(built, Err(Error::Pool(PoolError::InvalidConfig { .. }))));
/// # Ok::<(), Error>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PoolError {
    /// A pool configuration value is not usable.
    #[error("invalid pool configuration: {reason}")]
    InvalidConfig {
        /// What is wrong and how to fix it.
        reason: String,
    },
}

/// A [`ModelSet`](crate::ModelSet) is not valid ([`Error::Model`]): the models cannot be
/// created together, in one order.
///
/// ```
/// use tenant_runtime::{error::ModelError, Error, Model, ModelSet};
///
/// #[derive(Model)] #[tenant(table = "customers")] struct Customer { #[tenant(primary_key)] id: i64 }
/// #[derive(Model)] #[tenant(table = "invoices")]
/// struct Invoice { #[tenant(primary_key)] id: i64, #[tenant(references = Customer)] customer_id: i64 }
///
/// match ModelSet::new().with::<Invoice>().validate() {
///     Err(Error::Model(ModelError::MissingReference { model, target, .. })) => {
///         assert_eq!((model, target), ("Invoice", "Customer"));
///     }
///     other => panic!("expected MissingReference, got {other:?}"),
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// Two models map to the same table.
    #[error("invalid model set: {first} and {second} both map to table {}.\"{table}\"; give one of them another table or slot", slot_text(*.slot))]
    DuplicateTable {
        /// The model registered first.
        first: &'static str,
        /// The model registered second.
        second: &'static str,
        /// Their slot: `None` for the tenant slot, else the named slot's name.
        slot: Option<&'static str>,
        /// Their table.
        table: &'static str,
    },
    /// A model references a model that is not in the set.
    #[error("invalid model set: {model}.{column} references {target} ({}.\"{table}\"), which is not in the set; add `.with::<{target}>()`", slot_text(*.slot))]
    MissingReference {
        /// The referencing model.
        model: &'static str,
        /// The referencing column.
        column: &'static str,
        /// The referenced model.
        target: &'static str,
        /// The referenced model's slot: `None` for the tenant slot, else the slot's name.
        slot: Option<&'static str>,
        /// The referenced model's table.
        table: &'static str,
    },
    /// A model in a shared (named) slot references a per-tenant model.
    #[error("invalid model set: {model} lives in the shared slot {{{slot}}} but references the per-tenant model {target}; a shared table cannot point into one tenant's schema")]
    SharedReferencesTenant {
        /// The shared model.
        model: &'static str,
        /// The name of its (named) slot.
        slot: &'static str,
        /// The per-tenant model it references.
        target: &'static str,
    },
    /// The models' foreign keys form a cycle.
    #[error("invalid model set: foreign-key cycle {}; tables in a cycle cannot be created one after another: drop one `references` and add that constraint in a migration", .cycle.join(" -> "))]
    ForeignKeyCycle {
        /// The models of the cycle, each referencing the next; the first is repeated at the
        /// end (`["A", "B", "A"]`).
        cycle: Vec<&'static str>,
    },
    /// Two Rust enums (`#[derive(SqlEnum)]`) of models in one slot declare the same
    /// PostgreSQL type name with different labels.
    #[error("invalid model set: two Rust enums declare the enum type {}.\"{name}\" with different labels ({} and {}); give one of them another `type_name`, or the same labels", slot_text(*.slot), .first.join(", "), .second.join(", "))]
    ConflictingEnumType {
        /// The slot of the models using them: `None` for the tenant slot, else its name.
        slot: Option<&'static str>,
        /// The type name.
        name: &'static str,
        /// The labels of the first one met, in model order.
        first: &'static [&'static str],
        /// The labels of the other.
        second: &'static [&'static str],
    },
}

/// Provisioning, retiring, restoring or purging a tenant was refused ([`Error::Lifecycle`]).
/// Nothing of the refused operation was applied: each runs in one transaction.
///
/// ```
/// use tenant_runtime::error::LifecycleError;
/// let e = LifecycleError::TenantNotRetired { key: "acme".into() };
/// assert_eq!(e.to_string(), r#"tenant "acme" is not retired, so there is nothing to restore"#);
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LifecycleError {
    /// The tenant key is registered with another schema than the one asked for.
    #[error("tenant {key:?} is registered with schema {registered:?}, not {requested:?}; provision it with its registered schema, or retire and purge it first")]
    TenantConflict {
        /// The tenant key.
        key: String,
        /// The schema the registry holds for it.
        registered: String,
        /// The schema that was asked for.
        requested: String,
    },
    /// The tenant was retired (phase one of teardown) and is waiting for purge.
    #[error("tenant {key:?} is retired (its schema is renamed to {renamed_to:?}); restore it, or purge it before provisioning the key again")]
    TenantRetired {
        /// The tenant key.
        key: String,
        /// The schema its data was renamed to.
        renamed_to: String,
    },
    /// `restore` was asked for a tenant that is not retired.
    #[error("tenant {key:?} is not retired, so there is nothing to restore")]
    TenantNotRetired {
        /// The tenant key.
        key: String,
    },
    /// A schema the registry names does not exist in the database.
    #[error("schema {schema:?} does not exist in the database; it was dropped outside tenant: fix or delete its registry row")]
    SchemaNotFound {
        /// The missing schema.
        schema: String,
    },
    /// A schema that provisioning, teardown or restore would create already exists.
    #[error("schema {schema:?} already exists; rename or drop it by hand before retrying")]
    SchemaExists {
        /// The existing schema.
        schema: String,
    },
    /// A registry row's `retired_schema` is not the name that retiring the row's own schema
    /// on its retirement date gives (`retired_schema_name(schema, date)`). Purge and restore
    /// act only on that exact name, so a hand-edited (or poisoned) row can never make them
    /// drop or rename another schema. Nothing was dropped or renamed for this row.
    #[error("the registry row of tenant {key:?} gives {recorded:?} as its retired schema, but retiring its schema on its retirement date gives {expected:?}; tenant only drops or restores the schema it renamed itself: fix the row by hand")]
    RetiredSchemaMismatch {
        /// The tenant key of the row.
        key: String,
        /// What the row's `retired_schema` column holds (`None`: NULL).
        recorded: Option<String>,
        /// The name retiring the row's schema on its `retired_at` date gives.
        expected: String,
    },
    /// The schema a retired row would drop or restore from is the schema of a registered
    /// tenant (`used_by`), so it holds that tenant's data. Nothing was dropped or renamed.
    #[error("the retired schema {schema:?} of tenant {key:?} is the schema of tenant {used_by:?}; tenant never drops or renames a registered tenant's schema: fix the registry rows by hand")]
    RetiredSchemaInUse {
        /// The tenant key of the retired row.
        key: String,
        /// The schema it names.
        schema: String,
        /// The tenant whose schema it is.
        used_by: String,
    },
    /// A retirement date is not a calendar date written `YYYYMMDD`.
    #[error("retirement date {date:?} is not a calendar date written YYYYMMDD (8 digits, e.g. 20260421)")]
    InvalidRetirementDate {
        /// The refused date.
        date: String,
    },
    /// The tenant registry table is not there yet.
    #[error("the tenant registry {schema:?}.\"tenants\" does not exist; install it first (`Provisioner::install`, or `tenant tenants init`)")]
    RegistryNotInstalled {
        /// The registry schema.
        schema: String,
    },
    /// An operation over many tenants was given no connection to run on.
    #[error("no connection to run on; pass at least one client")]
    NoConnection,
    /// Every job connection of a run over many tenants was lost (and none could be
    /// replaced) before this tenant's turn: it was not started, nothing was done to it. The
    /// tenants that finished are done; rerun to finish the others.
    ///
    /// ```
    /// use tenant_runtime::error::LifecycleError;
    /// let e = LifecycleError::ConnectionsLost { not_started: 37 };
    /// assert!(e.to_string().starts_with("every job connection was lost"));
    /// assert!(e.to_string().contains("37 tenant(s) were not started"));
    /// ```
    #[error("every job connection was lost (and none could be replaced) before this tenant's turn; {not_started} tenant(s) were not started, nothing was done to them; check the server and rerun to finish them (the tenants that finished are done)")]
    ConnectionsLost {
        /// How many tenants of the run were not started.
        not_started: usize,
    },
}

/// A migration run, or a set of migration files, failed ([`Error::Migrate`]).
///
/// ```
/// use tenant_runtime::{error::MigrateError, Error};
/// let e = Error::from(MigrateError::Invalid { problems: vec!["0001_a.sql: empty file".into()] });
/// match &e {
///     Error::Migrate(m) => assert!(matches!(**m, MigrateError::Invalid { .. })),
///     other => panic!("{other:?}"),
/// }
/// assert_eq!(e.to_string(), "invalid migrations:\n  0001_a.sql: empty file");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MigrateError {
    /// One migration failed for one tenant; the tenant's transaction was rolled back.
    #[error("migration {version} ({name}) failed in schema {schema:?} (tenant {tenant:?}); nothing of this run was applied to that tenant: {source}")]
    Failed {
        /// The tenant key.
        tenant: String,
        /// The tenant's schema.
        schema: String,
        /// The failing migration's version.
        version: u64,
        /// The failing migration's name.
        name: String,
        /// What the database said.
        #[source]
        source: Box<Error>,
    },
    /// An applied migration's file has changed since it was applied.
    #[error("migration {version} ({name}) was applied to schema {schema:?} with checksum {applied} but the file now has checksum {embedded}; applied migrations must not change: restore the file and put the change in a new migration")]
    ChecksumMismatch {
        /// The tenant's schema.
        schema: String,
        /// The changed migration's version.
        version: u64,
        /// Its name.
        name: String,
        /// The checksum recorded when it was applied.
        applied: String,
        /// The checksum of the file in this build.
        embedded: String,
    },
    /// A schema has a migration applied that this build does not know.
    #[error("schema {schema:?} has migration {version} ({name}) applied, which this build does not contain; deploy a build that includes it")]
    UnknownApplied {
        /// The tenant's schema.
        schema: String,
        /// The unknown version.
        version: u64,
        /// Its recorded name.
        name: String,
    },
    /// A migration's version does not fit the version table's `bigint`.
    #[error(
        "migration version {version} does not fit a bigint (at most {}); renumber the migration",
        i64::MAX
    )]
    VersionOutOfRange {
        /// The version.
        version: u64,
    },
    /// Migration files loaded at run time failed the checks (the same as the macro's).
    #[error("invalid migrations:\n{}", problems_list(.problems))]
    Invalid {
        /// One line per problem: `file:line:column: what is wrong`.
        problems: Vec<String>,
    },
    // Issue 13, part 6: bounded waits and lost connections.
    /// A tenant's migration waited longer than the migrator's lock or statement timeout;
    /// the tenant's transaction was rolled back, the other tenants went on.
    #[error("tenant {tenant:?} (schema {schema:?}){}: {}; nothing of this run was applied to that tenant", at_migration(*.version, .name.as_deref()), timed_out(*.limit, *.after))]
    TimedOut {
        /// The tenant key.
        tenant: String,
        /// The tenant's schema.
        schema: String,
        /// The migration that was running (`None`: before any, e.g. waiting for the
        /// schema's advisory lock or the version table).
        version: Option<u64>,
        /// Its name.
        name: Option<String>,
        /// Which limit ran out.
        limit: TimeLimit,
        /// The limit that was set.
        after: std::time::Duration,
    },
    /// The connection died while it was migrating a tenant (the server ended it, or the
    /// network went away). The tenant's transaction is rolled back unless its commit had
    /// reached the server; a rerun applies what is missing.
    #[error("the connection migrating tenant {tenant:?} (schema {schema:?}) was lost: {source}; the tenant was rolled back unless its commit had reached the server: run the migration again, it applies only what is missing")]
    ConnectionLost {
        /// The tenant key.
        tenant: String,
        /// The tenant's schema.
        schema: String,
        /// What the driver or the server said.
        #[source]
        source: Box<Error>,
    },
    // Issue 13, part 3: versions.
    /// A schema lacks migrations below its latest applied one (e.g. a file merged from a
    /// branch after a later version was applied). Refused, not applied out of order.
    #[error("schema {schema:?} has migration {latest} applied but not {}, which come before it (merged from another branch?); they are not applied out of order: give them versions above {latest} (rename the files), or roll back below them with `to` and migrate again", versions_list(.missing))]
    MissingBelowApplied {
        /// The schema (a tenant's, or the shared migrations' home).
        schema: String,
        /// The versions missing, ascending.
        missing: Vec<u64>,
        /// The latest applied version (at or below the target).
        latest: u64,
    },
    /// Rolling back to `target` needs the down section of an applied migration that has
    /// none. Refused: nothing was rolled back.
    #[error("schema {schema:?} cannot go down to version {target}: migration {version} ({name}) is applied and has no down section; add a `-- down` section to its file (it does not change the checksum), or migrate to {version} or above")]
    NoDown {
        /// The schema.
        schema: String,
        /// The migration without a down section.
        version: u64,
        /// Its name.
        name: String,
        /// The version asked for.
        target: u64,
    },
    /// A target version (`to`, `stamp`) that is not one of the migrations.
    #[error("there is no migration {version}; the versions are {} (0: before the first)", versions_list(.known))]
    UnknownVersion {
        /// The version asked for.
        version: u64,
        /// The versions there are.
        known: Vec<u64>,
    },
    /// A shared migration (one that names no `{tenant}`) failed; its transaction was rolled
    /// back.
    #[error("shared migration {version} ({name}), recorded in schema {schema:?}, failed; nothing of this run was applied: {source}")]
    SharedFailed {
        /// The schema of the version table (the registry's).
        schema: String,
        /// The failing migration's version.
        version: u64,
        /// Its name.
        name: String,
        /// What the database said.
        #[source]
        source: Box<Error>,
    },
    // Drift check and autogenerate (lifecycle/check.rs, lifecycle/generate.rs).
    /// A migration fails on an empty scratch schema, so the migrations cannot build a tenant
    /// (the drift check against the migrations, and autogenerate, build one that way).
    #[error("migration {version} ({name}) fails when the migrations are applied to an empty schema, so they cannot build a tenant; fix that migration: {source}")]
    ScratchFailed {
        /// The failing migration's version.
        version: u64,
        /// Its name.
        name: String,
        /// What the database said.
        #[source]
        source: Box<Error>,
    },
    /// A generated migration file could not be written.
    #[error("cannot write the generated migration {path}: {source}; check that the migrations directory exists and is writable, and that no file of that name exists")]
    WriteFailed {
        /// The file that was to be written.
        path: String,
        /// What the file system said.
        #[source]
        source: std::io::Error,
    },
}

fn versions_list(versions: &[u64]) -> String {
    let list: Vec<String> = versions.iter().map(u64::to_string).collect();
    if list.is_empty() {
        "none".into()
    } else {
        list.join(", ")
    }
}

/// Which bound of a migration ran out ([`MigrateError::TimedOut`]).
///
/// ```
/// use tenant_runtime::error::TimeLimit;
/// assert_eq!(TimeLimit::Lock.setting(), "lock_timeout");
/// assert_eq!(TimeLimit::Statement.setting(), "statement_timeout");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TimeLimit {
    /// Waiting for a lock (`lock_timeout`): another session holds a conflicting one.
    Lock,
    /// One statement ran too long (`statement_timeout`).
    Statement,
}

impl TimeLimit {
    /// The PostgreSQL setting that carries this limit.
    pub fn setting(self) -> &'static str {
        match self {
            TimeLimit::Lock => "lock_timeout",
            TimeLimit::Statement => "statement_timeout",
        }
    }
}

fn at_migration(version: Option<u64>, name: Option<&str>) -> String {
    match (version, name) {
        (Some(v), Some(n)) => format!(" at migration {v} ({n})"),
        (Some(v), None) => format!(" at migration {v}"),
        _ => String::new(),
    }
}

fn timed_out(limit: TimeLimit, after: std::time::Duration) -> String {
    match limit {
        TimeLimit::Lock => format!(
            "waited longer than the lock timeout ({after:?}, {}) for a lock that another session holds (a long transaction, or a LOCK TABLE, of the application: see pg_locks and pg_stat_activity); end that session or raise the lock timeout, then migrate again",
            limit.setting()
        ),
        TimeLimit::Statement => format!(
            "a statement ran longer than the statement timeout ({after:?}, {}); raise the statement timeout for this migration, then migrate again",
            limit.setting()
        ),
    }
}

/// A slot as templates show it: `{tenant}` or `{name}`. (Error fields hold the slot's name
/// rather than a [`Slot`](crate::Slot): this module depends on no other, so every module can
/// depend on it.)
fn slot_text(slot: Option<&str>) -> String {
    format!("{{{}}}", slot.unwrap_or("tenant"))
}

fn problems_list(problems: &[String]) -> String {
    let lines: Vec<String> = problems.iter().map(|p| format!("  {p}")).collect();
    lines.join("\n")
}

impl From<MigrateError> for Error {
    fn from(e: MigrateError) -> Error {
        Error::Migrate(Box::new(e))
    }
}

impl From<ArchiveError> for Error {
    fn from(e: ArchiveError) -> Error {
        Error::Archive(Box::new(e))
    }
}

impl Error {
    /// The SQLSTATE code when the database reported the error (e.g. `"23505"` for a unique
    /// violation), so callers can branch on it.
    ///
    /// ```
    /// # use tenant_runtime::Error;
    /// let e = Error::RowNotFound;
    /// assert!(e.sqlstate().is_none());
    /// ```
    pub fn sqlstate(&self) -> Option<&str> {
        match self {
            Error::Db(e) => e.code().map(|c| c.code()),
            _ => None,
        }
    }
}

/// The server's own message (tokio-postgres' `Display` says only "db error"), or the
/// driver's error with its cause (e.g. the I/O error of a dropped connection).
fn describe_db_error(e: &tokio_postgres::Error) -> String {
    use std::error::Error as _;
    match (e.as_db_error(), e.source()) {
        (Some(db), _) => format!(
            "{}: {} (SQLSTATE {})",
            db.severity(),
            db.message(),
            db.code().code()
        ),
        (None, Some(cause)) => format!("{e}: {cause}"),
        (None, None) => e.to_string(),
    }
}

/// `Result` with [`Error`](enum@Error) as the error type.
///
/// ```
/// use tenant_runtime::{Allowlist, Result, Tenant};
///
/// fn acme(allowlist: &Allowlist) -> Result<Tenant> {
///     allowlist.resolve("acme")
/// }
/// # assert!(acme(&Allowlist::new()).is_err());
/// ```
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a string is not a valid [`SchemaName`](crate::SchemaName).
///
/// ```
/// use tenant_runtime::{error::InvalidSchemaName, SchemaName};
/// assert_eq!(SchemaName::parse(""), Err(InvalidSchemaName::Empty));
/// assert_eq!(SchemaName::parse("pg_catalog"), Err(InvalidSchemaName::Reserved { name: "pg_catalog".into() }));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidSchemaName {
    /// The string was empty.
    #[error("schema name is empty; use 1 to 63 characters from [a-z0-9_], starting with a letter or `_`")]
    Empty,
    /// The string was longer than 63 bytes, which PostgreSQL would silently truncate.
    #[error("schema name is {len} bytes long; PostgreSQL keeps at most 63, so use a shorter name")]
    TooLong {
        /// Length of the refused input in bytes.
        len: usize,
    },
    /// The first character is not `a`-`z` or `_`.
    #[error("schema name {name:?} must start with a lowercase ASCII letter or `_`")]
    InvalidStart {
        /// The refused input.
        name: String,
    },
    /// A character outside `[a-z0-9_]` (uppercase, whitespace, quotes, punctuation, non-ASCII, NUL...).
    #[error("schema name {name:?} contains {found:?} at byte {at}; only lowercase ASCII letters, digits and `_` are allowed")]
    InvalidCharacter {
        /// The refused input.
        name: String,
        /// The first offending character.
        found: char,
        /// Its byte offset.
        at: usize,
    },
    /// A name PostgreSQL reserves for itself (`pg_*`, `information_schema`).
    #[error("schema name {name:?} is reserved by PostgreSQL (`pg_*` and `information_schema`); choose another name")]
    Reserved {
        /// The refused input.
        name: String,
    },
}
