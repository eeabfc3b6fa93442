//! The scale-out path: Citus schema-based sharding.
//!
//! With [Citus](https://docs.citusdata.com/en/stable/use_cases/multi_tenant.html) 12 or later,
//! a schema can be *distributed*: all its tables move, together, to one worker node, and the
//! coordinator routes every statement that names the schema to that node. Schema-per-tenant
//! is exactly that shape, so scaling out needs no change to models, queries or tenancy: the
//! application keeps talking to the coordinator through the same [`TenantPool`](crate::TenantPool),
//! and each tenant schema becomes a distributed schema once:
//!
//! ```no_run
//! use tenant_runtime::lifecycle::citus;
//! use tenant_runtime::{Allowlist, Model, TenantPool};
//! # #[derive(Model)] #[tenant(table = "invoices")] struct Invoice { #[tenant(primary_key)] id: i64 }
//! # async fn run() -> Result<(), tenant_runtime::Error> {
//! let pool = TenantPool::builder("postgres://app@citus-coordinator/app")?.build()?;
//! let acme = Allowlist::from_pairs([("acme", "tenant_acme")])?.resolve("acme")?;
//! let db = pool.get(&acme).await?;
//! db.create_schema().await?;
//! Invoice::create_table(&db).await?;
//! citus::distribute_schema(&db).await?; // "tenant_acme" now lives on one worker
//! # Ok(()) }
//! ```
//!
//! Call it after creating the schema, or at any time later: Citus turns the schema's tables
//! into co-located tables without a shard key and places them, together, on one node.
//! Alternatively set `citus.enable_schema_based_sharding = on` on the coordinator, and every
//! schema created afterwards is distributed by Citus itself.
//!
//! What Citus asks of the rest of the library, and what it does about it:
//!
//! - **One statement per query string.** Citus forwards a query string to the workers as a
//!   whole and refuses one that holds a `CREATE INDEX` on a table of a distributed schema
//!   next to another statement (`42601 cannot insert multiple commands into a prepared
//!   statement`). The library never joins DDL with `;`: model DDL, provisioning and each
//!   statement of a migration file are sent one per query string, inside one transaction.
//! - **Shared tables are reference tables.** Foreign keys from a distributed schema may
//!   point only into the same schema or to reference tables, so tables shared by all
//!   tenants (named slots such as `shared`) must be reference tables:
//!   [`Provisioner::install`](crate::Provisioner::install) with
//!   [`distribute_on_citus(true)`](crate::Provisioner::distribute_on_citus) makes them so
//!   ([`make_reference_tables`]).
//! - **No way back for identity keys.** [`undistribute_schema`] fails for a schema with a
//!   table that has an identity column (`#[tenant(identity)]`, the usual key).
//! - **`COPY` errors differ.** A `COPY` that breaks a foreign key fails with `XX000`, where an
//!   `INSERT` gives `23503` (see [`Model::copy_in`](crate::Model::copy_in)).
//!
//! Schemas and table names are sent as bound parameters, never spliced into the SQL text.

use std::sync::LazyLock;

use postgres_types::Type;

use crate::door::Tenant;
use crate::error::Result;
use crate::exec::Db;
use crate::exec::{PgRef, Writable};
use crate::sql::Template;

/// The statement [`distribute_schema`] runs; `$1` is the tenant's schema, quoted
/// ([`distribute_statement`]). The cast lets `$1` be bound as text while the function takes
/// a `regnamespace`, which also fails (SQLSTATE `3F000`) if the schema does not exist.
pub const DISTRIBUTE_SCHEMA_SQL: &str = "SELECT citus_schema_distribute($1::text::regnamespace)";

/// The statement [`undistribute_schema`] runs; `$1` as in [`DISTRIBUTE_SCHEMA_SQL`].
pub const UNDISTRIBUTE_SCHEMA_SQL: &str =
    "SELECT citus_schema_undistribute($1::text::regnamespace)";

static DISTRIBUTE: LazyLock<Template> =
    LazyLock::new(|| Template::builder().sql(DISTRIBUTE_SCHEMA_SQL).build());
static UNDISTRIBUTE: LazyLock<Template> =
    LazyLock::new(|| Template::builder().sql(UNDISTRIBUTE_SCHEMA_SQL).build());

/// The statement and its one parameter that distribute `tenant`'s schema, for running it
/// elsewhere (a migration tool, a provisioning script).
///
/// ```
/// use tenant_runtime::lifecycle::citus;
/// use tenant_runtime::Allowlist;
/// let acme = Allowlist::from_pairs([("acme", "tenant_acme")])?.resolve("acme")?;
/// assert_eq!(
///     citus::distribute_statement(&acme),
///     ("SELECT citus_schema_distribute($1::text::regnamespace)", "\"tenant_acme\"".to_owned()),
/// );
/// # Ok::<(), tenant_runtime::Error>(())
/// ```
pub fn distribute_statement(tenant: &Tenant) -> (&'static str, String) {
    (DISTRIBUTE_SCHEMA_SQL, tenant.schema().quoted())
}

/// Makes the handle's tenant schema a Citus distributed schema (`citus_schema_distribute`),
/// on the Citus coordinator the handle is connected to, as the schema's owner.
///
/// Needs Citus 12 or later; on PostgreSQL without Citus it fails with SQLSTATE `42883`
/// (undefined function), and for a schema that does not exist with `3F000`. Calling it again
/// for a schema that is already distributed is harmless (Citus answers with a notice), so
/// idempotent provisioning can always call it.
///
/// ```no_run
/// # use tenant_runtime::lifecycle::citus;
/// # use tenant_runtime::{Allowlist, TenantPool};
/// # async fn run(pool: TenantPool, allowlist: Allowlist) -> Result<(), tenant_runtime::Error> {
/// let db = pool.get(&allowlist.resolve("acme")?).await?;
/// db.create_schema().await?;
/// citus::distribute_schema(&db).await?;
/// # Ok(()) }
/// ```
pub async fn distribute_schema<E: Writable>(db: &Db<E>) -> Result<()> {
    let schema = db.tenant().schema().quoted();
    db.execute(&DISTRIBUTE, &[&schema]).await?;
    Ok(())
}

/// Turns the handle's tenant schema back into a regular schema on the coordinator
/// (`citus_schema_undistribute`), e.g. to take a tenant off the cluster. Citus refuses a
/// schema that is not distributed.
///
/// **Identity columns:** Citus (measured on 12.1) refuses to undistribute a schema in which
/// any table has an identity column, with SQLSTATE `0A000` ("cannot complete operation on a
/// table with identity column"). A `#[tenant(identity)]` key is an identity column, so for
/// most tenant schemas this call fails: take such a tenant off the cluster by copying its
/// data out instead (for example `pg_dump --schema` of the tenant, restored elsewhere).
///
/// ```no_run
/// # use tenant_runtime::lifecycle::citus;
/// # use tenant_runtime::{Allowlist, TenantPool};
/// # async fn run(pool: TenantPool, allowlist: Allowlist) -> Result<(), tenant_runtime::Error> {
/// citus::undistribute_schema(&pool.get(&allowlist.resolve("acme")?).await?).await?;
/// # Ok(()) }
/// ```
pub async fn undistribute_schema<E: Writable>(db: &Db<E>) -> Result<()> {
    let schema = db.tenant().schema().quoted();
    db.execute(&UNDISTRIBUTE, &[&schema]).await?;
    Ok(())
}

/// The statement [`make_reference_tables`] runs for each shared table Citus does not
/// distribute yet; `$1` is the table's qualified, quoted name (`"shared"."plans"`), cast to
/// the `regclass` that `create_reference_table(table_name regclass)` takes.
pub const CREATE_REFERENCE_TABLE_SQL: &str = "SELECT create_reference_table($1::text::regclass)";

/// The statement that picks, out of `$1` (qualified, quoted table names), those Citus
/// already distributes: reference tables, distributed tables and the tables of distributed
/// schemas all have a row in Citus's `pg_dist_partition` catalog.
pub const DISTRIBUTED_TABLES_SQL: &str = "SELECT t FROM unnest($1::text[]) AS t \
     WHERE EXISTS (SELECT 1 FROM pg_dist_partition p WHERE p.logicalrelid = t::regclass)";

/// Makes each of `tables` (qualified, quoted names such as `"shared"."plans"`) a Citus
/// reference table, replicated to every node, unless Citus already distributes it; returns
/// the tables it converted. One statement per query string: [`DISTRIBUTED_TABLES_SQL`]
/// once, then [`CREATE_REFERENCE_TABLE_SQL`] per table, in the order given (referenced
/// tables first, so foreign keys between shared tables convert).
///
/// Idempotent: running it again converts nothing. When another process converts a table
/// at the same moment and Citus refuses the second call, the table counts as done.
/// [`Provisioner::install`](crate::Provisioner::install) calls it for the model set's shared
/// tables when [`distribute_on_citus`](crate::Provisioner::distribute_on_citus) is on. On
/// PostgreSQL without Citus it fails with SQLSTATE `42P01` (no `pg_dist_partition`).
///
/// ```no_run
/// # async fn run() -> Result<(), tenant_runtime::Error> {
/// let client = tenant_runtime::Client::connect("postgres://app@citus-coordinator/app").await?;
/// let made = tenant_runtime::lifecycle::citus::make_reference_tables(&client, &[r#""shared"."plans""#.to_owned()]).await?;
/// # Ok(()) }
/// ```
pub async fn make_reference_tables<E: Writable>(
    exec: &E,
    tables: &[String],
) -> Result<Vec<String>> {
    if tables.is_empty() {
        return Ok(Vec::new());
    }
    let pg = exec.pg();
    let distributed = distributed_tables(pg, tables).await?;
    let mut made = Vec::new();
    for table in tables.iter().filter(|t| !distributed.contains(t)) {
        match pg
            .query_typed(CREATE_REFERENCE_TABLE_SQL, &[(table, Type::TEXT)])
            .await
        {
            Ok(_) => made.push(table.clone()),
            // Lost a race with another install? Then the table is done. (Inside a
            // transaction the error has aborted it: report the error.)
            Err(e) => {
                let lost_race = matches!(pg, PgRef::Client(_))
                    && !distributed_tables(pg, std::slice::from_ref(table))
                        .await?
                        .is_empty();
                if !lost_race {
                    return Err(e);
                }
            }
        }
    }
    Ok(made)
}

/// Those of `tables` that Citus already distributes.
async fn distributed_tables(pg: PgRef<'_>, tables: &[String]) -> Result<Vec<String>> {
    let rows = pg
        .query_typed(DISTRIBUTED_TABLES_SQL, &[(&tables, Type::TEXT_ARRAY)])
        .await?;
    rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
}
