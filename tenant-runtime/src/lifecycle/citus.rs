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
//! schema created afterwards is distributed by Citus itself. Tables shared by all tenants
//! (named slots such as `shared`) can stay on the coordinator as reference tables; foreign
//! keys from tenant tables stay within the tenant schema or point to reference tables.
//!
//! The schema is sent as a bound parameter, never spliced into the SQL text.

use std::sync::LazyLock;

use crate::door::Tenant;
use crate::error::Result;
use crate::exec::Db;
use crate::exec::Writable;
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
