//! The tenant registry: a table in a shared schema that records every provisioned tenant,
//! and that an [`Allowlist`] loads and refreshes from.
//!
//! [`Allowlist::load_from_registry`] and [`Allowlist::refresh_from_registry`] are defined
//! here, beside the table they read, so that the door (`door/`) depends on nothing above it.
//! [`DatabaseRegistry::load_from_table`](crate::pool::DatabaseRegistry::load_from_table) and
//! [`refresh_from_table`](crate::pool::DatabaseRegistry::refresh_from_table) have the same
//! shape: an executor, then where to read.

use std::time::SystemTime;

use postgres_types::Type;
use tokio_postgres::Row;

use crate::door::Allowlist;
use crate::door::SchemaName;
use crate::error::{Error, LifecycleError, Result};
use crate::exec::{Executor, PgRef, Writable};
use crate::model::ddl::run_statements;

/// The name of the check that ties a row's `retired_schema` to its `schema`.
const RETIRED_CHECK: &str = "tenants_retired_schema_derived";

/// Its expression: `retired_schema` has the shape [`retired_schema_name`] gives the row's own
/// `schema` (17 = `_deleted_` and 8 digits; 46 = 63 - 17; 37 and 9 as there), and a retired
/// row has its `retired_at`.
///
/// [`retired_schema_name`]: crate::retired_schema_name
const RETIRED_CHECK_SQL: &str = "(state = 'retired') = (retired_at IS NOT NULL) \
     AND (retired_schema IS NULL OR (right(retired_schema, 17) ~ '^_deleted_[0-9]{8}$' \
     AND CASE WHEN length(schema) <= 46 \
         THEN retired_schema = schema || right(retired_schema, 17) \
         ELSE length(retired_schema) = 63 \
              AND substr(retired_schema, 38, 9) ~ '^_[0-9a-f]{8}$' \
              AND retired_schema = left(schema, 37) || substr(retired_schema, 38, 9) || right(retired_schema, 17) \
         END))";

/// Where the registry table lives: `<schema>."tenants"`.
///
/// The table (created by [`Provisioner::install`](crate::Provisioner::install), or the CLI's
/// `tenant tenants init`):
///
/// ```sql
/// CREATE TABLE "<schema>"."tenants" (
///     key            text PRIMARY KEY,                 -- what requests carry
///     schema         text NOT NULL UNIQUE,             -- the tenant's schema
///     state          text NOT NULL DEFAULT 'active',   -- 'active' | 'retired'
///     retired_schema text UNIQUE,                      -- <schema>_deleted_<yyyymmdd> while retired
///     created_at     timestamptz NOT NULL DEFAULT now(),
///     retired_at     timestamptz,                      -- set while retired
///     CONSTRAINT tenants_retired_schema_derived CHECK (...)
/// )
/// ```
///
/// The `tenants_retired_schema_derived` check makes PostgreSQL refuse a row whose
/// `retired_schema` is not derived from the row's own `schema` (the
/// [`retired_schema_name`](crate::lifecycle::retired_schema_name) shape: `<schema>_deleted_<8 digits>`, or
/// for long names the first 37 bytes, `_`, 8 hex digits and the suffix), or a retired row
/// without `retired_at`. [`Provisioner::install`](crate::Provisioner::install) adds it (`NOT VALID`, then validated
/// if the rows allow) to a registry created before it existed. What it cannot check (the
/// date, the hash, that the name is no other tenant's schema) purge and restore check
/// before they touch a schema.
///
/// Only [`Provisioner`](crate::Provisioner) writes it. Everything that changes a tenant holds
/// a transaction-scoped advisory lock on `hashtextextended('tenant:key:' || key, 0)` and then
/// `hashtextextended('tenant:schema:' || schema, 0)`, so other tools can coordinate with it.
///
/// ```
/// use tenant_runtime::Registry;
/// let registry = Registry::new("tenant_registry")?;
/// assert_eq!(registry.schema().as_str(), "tenant_registry");
/// assert!(Registry::new("Bad Name").is_err());
/// # Ok::<(), tenant_runtime::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Registry {
    schema: SchemaName,
    table: String,
}

/// Where a registered tenant is in its life.
///
/// ```
/// use tenant_runtime::lifecycle::TenantState;
/// assert_ne!(TenantState::Active, TenantState::Retired);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TenantState {
    /// Provisioned and resolvable.
    Active,
    /// Retired (phase one of teardown): schema renamed, not resolvable, waiting for purge.
    Retired,
}

impl TenantState {
    /// The value stored in the registry's `state` column.
    ///
    /// ```
    /// assert_eq!(tenant_runtime::lifecycle::TenantState::Retired.as_str(), "retired");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            TenantState::Active => "active",
            TenantState::Retired => "retired",
        }
    }
}

/// One row of the registry.
///
/// ```no_run
/// use tenant_runtime::lifecycle::TenantState;
/// use tenant_runtime::{Client, Registry};
/// # async fn run() -> Result<(), tenant_runtime::Error> {
/// let client = Client::connect("postgres://postgres@127.0.0.1/postgres").await?;
/// for entry in Registry::default().entries(&client).await? {
///     match entry.state {
///         TenantState::Active => println!("{} in {}", entry.key, entry.schema),
///         _ => println!("{} retired into {:?}", entry.key, entry.retired_schema),
///     }
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RegistryEntry {
    /// The tenant key.
    pub key: String,
    /// The tenant's schema (its name while active, and the name it gets back on restore).
    pub schema: String,
    /// Active or retired.
    pub state: TenantState,
    /// While retired: the schema its data was renamed to.
    pub retired_schema: Option<String>,
    /// When it was provisioned.
    pub created_at: SystemTime,
    /// When it was retired.
    pub retired_at: Option<SystemTime>,
}

impl Registry {
    /// The default registry schema.
    pub const DEFAULT_SCHEMA: &'static str = "tenant_registry";

    /// A registry in `schema` (any valid schema name; it is created by
    /// [`Provisioner::install`](crate::Provisioner::install)).
    pub fn new(schema: &str) -> Result<Registry> {
        let schema = SchemaName::parse(schema)?;
        Ok(Registry {
            table: format!("{schema}.\"tenants\""),
            schema,
        })
    }

    /// The schema holding the registry table.
    pub fn schema(&self) -> SchemaName {
        self.schema
    }

    /// The quoted, qualified table name, e.g. `"tenant_registry"."tenants"`.
    ///
    /// ```
    /// # use tenant_runtime::Registry;
    /// assert_eq!(Registry::default().table(), r#""tenant_registry"."tenants""#);
    /// ```
    pub fn table(&self) -> &str {
        &self.table
    }

    /// Creates the registry schema and table if missing, and adds the
    /// `tenants_retired_schema_derived` check to a registry that lacks it (idempotent, safe
    /// to run from many processes at once). One transaction, one statement per query string.
    /// What [`Provisioner::install`](crate::Provisioner::install) runs first.
    pub(crate) async fn install<E: Writable>(&self, exec: &E) -> Result<()> {
        let (schema, table) = (self.schema, &self.table);
        let statements = [
            // Transaction-scoped: the lock covers the DDL after it.
            format!(
                "SELECT pg_advisory_xact_lock(hashtextextended('tenant:registry:{}', 0))",
                schema.as_str()
            ),
            format!("CREATE SCHEMA IF NOT EXISTS {schema}"),
            format!(
                "CREATE TABLE IF NOT EXISTS {table} (
                 key text PRIMARY KEY,
                 schema text NOT NULL UNIQUE,
                 state text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'retired')),
                 retired_schema text UNIQUE,
                 created_at timestamptz NOT NULL DEFAULT now(),
                 retired_at timestamptz,
                 CHECK ((state = 'retired') = (retired_schema IS NOT NULL)),
                 CONSTRAINT {RETIRED_CHECK} CHECK ({RETIRED_CHECK_SQL})
             )"
            ),
            // A registry from before the check: add it without reading the rows, then
            // validate it if they all pass (a subtransaction, so a failing row only leaves
            // the check NOT VALID: still enforced for every row written from now on).
            format!(
                "DO $tenant$ BEGIN
                 IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint
                                WHERE conrelid = '{table}'::regclass AND conname = '{RETIRED_CHECK}') THEN
                     ALTER TABLE {table} ADD CONSTRAINT {RETIRED_CHECK} CHECK ({RETIRED_CHECK_SQL}) NOT VALID;
                     BEGIN
                         ALTER TABLE {table} VALIDATE CONSTRAINT {RETIRED_CHECK};
                     EXCEPTION WHEN check_violation THEN
                         RAISE WARNING 'registry {table} has rows whose retired_schema is not derived from their schema; purge and restore refuse them';
                     END;
                 END IF;
             END $tenant$"
            ),
        ];
        run_statements(exec.pg(), &statements)
            .await
            .map_err(|e| self.missing_as_not_installed(e))
    }

    /// Every registered tenant, active and retired, sorted by key.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), tenant_runtime::Error> {
    /// # let client = tenant_runtime::Client::connect("postgres://postgres@127.0.0.1/postgres").await?;
    /// for entry in tenant_runtime::Registry::default().entries(&client).await? {
    ///     println!("{} {} {:?}", entry.key, entry.schema, entry.state);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn entries<E: Executor>(&self, exec: &E) -> Result<Vec<RegistryEntry>> {
        let sql = format!("{} ORDER BY key", self.select_sql());
        let rows = self.query(exec.pg(), &sql, &[]).await?;
        rows.iter().map(entry_from_row).collect()
    }

    /// The registry row of `key`, if any.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), tenant_runtime::Error> {
    /// # let client = tenant_runtime::Client::connect("postgres://postgres@127.0.0.1/postgres").await?;
    /// let acme = tenant_runtime::Registry::default().entry(&client, "acme").await?;
    /// # Ok(()) }
    /// ```
    pub async fn entry<E: Executor>(&self, exec: &E, key: &str) -> Result<Option<RegistryEntry>> {
        let sql = format!("{} WHERE key = $1", self.select_sql());
        let rows = self.query(exec.pg(), &sql, &[(&key, Type::TEXT)]).await?;
        rows.first().map(entry_from_row).transpose()
    }

    /// `(key, schema)` of every active tenant.
    pub(crate) async fn active_pairs(&self, pg: PgRef<'_>) -> Result<Vec<(String, String)>> {
        let sql = format!(
            "SELECT key, schema FROM {} WHERE state = 'active' ORDER BY key",
            self.table
        );
        let rows = self.query(pg, &sql, &[]).await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    pub(crate) fn select_sql(&self) -> String {
        format!(
            "SELECT key, schema, state, retired_schema, created_at, retired_at FROM {}",
            self.table
        )
    }

    /// Runs a registry statement in one round trip; a missing registry is
    /// [`LifecycleError::RegistryNotInstalled`].
    pub(crate) async fn query(
        &self,
        pg: PgRef<'_>,
        sql: &str,
        params: &[(&(dyn postgres_types::ToSql + Sync), Type)],
    ) -> Result<Vec<Row>> {
        pg.query_typed(sql, params)
            .await
            .map_err(|e| self.missing_as_not_installed(e))
    }

    /// Maps "relation/schema does not exist" to [`LifecycleError::RegistryNotInstalled`].
    pub(crate) fn missing_as_not_installed(&self, error: Error) -> Error {
        match error.sqlstate() {
            Some("42P01") | Some("3F000") => {
                Error::Lifecycle(LifecycleError::RegistryNotInstalled {
                    schema: self.schema.as_str().into(),
                })
            }
            _ => error,
        }
    }
}

impl Default for Registry {
    /// The registry in [`Registry::DEFAULT_SCHEMA`].
    fn default() -> Self {
        Registry::new(Self::DEFAULT_SCHEMA).expect("the default registry schema is valid")
    }
}

pub(crate) fn entry_from_row(row: &Row) -> Result<RegistryEntry> {
    let state: String = row.try_get(2)?;
    Ok(RegistryEntry {
        key: row.try_get(0)?,
        schema: row.try_get(1)?,
        state: if state == "retired" {
            TenantState::Retired
        } else {
            TenantState::Active
        },
        retired_schema: row.try_get(3)?,
        created_at: row.try_get(4)?,
        retired_at: row.try_get(5)?,
    })
}

/// What [`Allowlist::refresh_from_registry`] loaded: how many tenants the list now holds,
/// and the registry rows it refused (they stay out of the list; every other tenant loads).
///
/// ```no_run
/// # use tenant_runtime::{Allowlist, Client, Registry};
/// # async fn run() -> Result<(), tenant_runtime::Error> {
/// # let client = Client::connect("postgres://postgres@127.0.0.1/postgres").await?;
/// let allowlist = Allowlist::new();
/// let refresh = allowlist.refresh_from_registry(&client, &Registry::default()).await?;
/// for row in &refresh.refused {
///     eprintln!("registry row {:?} ({:?}) not served: {}", row.key, row.schema, row.reason);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub struct RegistryRefresh {
    /// Tenants in the list after the refresh.
    pub tenants: usize,
    /// Active rows that break the allowlist's rules (a malformed key, an invalid or
    /// reserved schema name), in key order.
    pub refused: Vec<RefusedRegistryRow>,
}

/// An active registry row that [`Allowlist::refresh_from_registry`] left out, and why.
///
/// ```
/// # use tenant_runtime::lifecycle::RefusedRegistryRow;
/// fn report(row: &RefusedRegistryRow) -> String {
///     format!("tenant {:?}: {}", row.key, row.reason)
/// }
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub struct RefusedRegistryRow {
    /// The row's key, as stored.
    pub key: String,
    /// The row's schema, as stored.
    pub schema: String,
    /// What [`Allowlist::insert`] would have said about it.
    pub reason: Error,
}

impl Allowlist {
    /// An allowlist of the registry's active tenants. A row that breaks the allowlist's rules
    /// (written by hand, say, with an invalid schema name) is left out and logged as a
    /// warning (`tracing`, target `tenant::registry`), so that one bad row cannot hide every
    /// other tenant; [`refresh_from_registry`](Allowlist::refresh_from_registry) returns
    /// those rows to look at.
    ///
    /// ```no_run
    /// use tenant_runtime::{Allowlist, Client, Registry};
    /// # async fn run() -> Result<(), tenant_runtime::Error> {
    /// let client = Client::connect("postgres://postgres@127.0.0.1/postgres").await?;
    /// let registry = Registry::default();
    /// let allowlist = Allowlist::load_from_registry(&client, &registry).await?;
    /// // ... later, e.g. on a timer or a NOTIFY:
    /// allowlist.refresh_from_registry(&client, &registry).await?;
    /// # Ok(()) }
    /// ```
    pub async fn load_from_registry<E: Executor>(
        exec: &E,
        registry: &Registry,
    ) -> Result<Allowlist> {
        let allowlist = Allowlist::new();
        allowlist.refresh_from_registry(exec, registry).await?;
        Ok(allowlist)
    }

    /// Replaces this list (and every clone of it) with the registry's active tenants, at
    /// once. Rows that break the allowlist's rules are left out, logged (`tracing`, target
    /// `tenant::registry`) and returned in [`RegistryRefresh::refused`]. On an error (the
    /// registry unreadable, more tenants than the list's bound) the list stays as it was.
    ///
    /// ```no_run
    /// # use tenant_runtime::{Allowlist, Client, Registry};
    /// # async fn run() -> Result<(), tenant_runtime::Error> {
    /// # let client = Client::connect("postgres://postgres@127.0.0.1/postgres").await?;
    /// let allowlist = Allowlist::new();
    /// let refresh = allowlist.refresh_from_registry(&client, &Registry::default()).await?;
    /// assert_eq!(refresh.tenants, allowlist.len());
    /// # Ok(()) }
    /// ```
    pub async fn refresh_from_registry<E: Executor>(
        &self,
        exec: &E,
        registry: &Registry,
    ) -> Result<RegistryRefresh> {
        let pairs = registry.active_pairs(exec.pg()).await?;
        let mut valid = Vec::with_capacity(pairs.len());
        let mut refused = Vec::new();
        for (key, schema) in pairs {
            match crate::door::check_pair(&key, &schema) {
                Ok(()) => valid.push((key, schema)),
                Err(reason) => {
                    tracing::warn!(
                        target: "tenant::registry",
                        key = %key.escape_debug(),
                        schema = %schema.escape_debug(),
                        %reason,
                        "registry row left out of the allowlist"
                    );
                    refused.push(RefusedRegistryRow {
                        key,
                        schema,
                        reason,
                    });
                }
            }
        }
        let tenants = valid.len();
        self.replace(valid)?;
        Ok(RegistryRefresh { tenants, refused })
    }
}
