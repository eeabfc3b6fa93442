//! The drift check ([`Migrator::check`]): every tenant schema read from the catalog, in
//! batches over N connections, and compared with what it should be, either the models
//! ([`Expected::Models`]) or what the migrations build ([`Expected::Migrations`], applied to a
//! scratch schema inside a transaction that is rolled back). Each tenant's report has its
//! applied version, the versions it still lacks, and every [`Difference`].

use std::fmt;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::door::{Allowlist, SchemaName, Tenant};
use crate::error::{Error, LifecycleError, MigrateError, Result};
use crate::exec::{Client, Db, Executor};
use crate::lifecycle::{run_jobs, Connections, Job, Migrations, Migrator, VERSION_TABLE};
use crate::model::ddl::run_statements;
use crate::model::{Difference, ModelSet, SchemaShape, SchemaSnapshot};
use crate::sql::{SchemaMap, Slot, Template};

/// Tenants read per catalog round trip: big enough that 10,000 schemas are 20 reads, small
/// enough that one read's rows stay a few megabytes and the batches spread over the jobs.
const CHECK_BATCH: usize = 500;

/// What a tenant schema is checked against by [`Migrator::check`].
///
/// ```
/// use tenant_runtime::lifecycle::Expected;
/// use tenant_runtime::{Model, ModelSet};
///
/// #[derive(Model)]
/// #[tenant(table = "notes")]
/// struct Note { #[tenant(primary_key, identity)] id: i64 }
///
/// let models = ModelSet::new().with::<Note>();
/// let against_models = Expected::Models(&models);          // what the application's code says
/// let against_migrations = Expected::Migrations;           // what the migrations build
/// # let _ = (against_models, against_migrations);
/// ```
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum Expected<'a> {
    /// The tenant-slot tables of these models, as [`ModelSet::expected_shape`] describes them.
    Models(&'a ModelSet),
    /// What the migrator's migrations build when applied, all of them, to an empty schema
    /// (done once per check, in a transaction that is rolled back). For a tool that has no
    /// models, such as the `tenant` command.
    Migrations,
}

/// How one tenant's schema compares with the expected one.
///
/// ```
/// use tenant_runtime::lifecycle::DriftState;
/// use tenant_runtime::model::Difference;
///
/// let drifted = DriftState::Drifted(vec![Difference::MissingTable { table: "notes".into() }]);
/// assert_eq!(drifted.to_string(), r#"1 difference: table "notes" is missing"#);
/// assert_eq!(DriftState::Clean.to_string(), "clean");
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum DriftState {
    /// The schema is exactly what is expected.
    Clean,
    /// The schema differs: every difference, sorted by table.
    Drifted(Vec<Difference>),
    /// The schema could not be checked (it does not exist, its catalog could not be read).
    Failed(Error),
}

impl fmt::Display for DriftState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DriftState::Clean => f.write_str("clean"),
            DriftState::Drifted(d) => {
                let noun = if d.len() == 1 {
                    "difference"
                } else {
                    "differences"
                };
                let list: Vec<String> = d.iter().map(Difference::to_string).collect();
                write!(f, "{} {noun}: {}", d.len(), list.join("; "))
            }
            DriftState::Failed(e) => write!(f, "FAILED: {e}"),
        }
    }
}

/// One tenant's line of a [`DriftReport`].
///
/// ```no_run
/// # use tenant_runtime::{embed_migrations, Allowlist, Client, Migrations, Migrator, Model, ModelSet};
/// # use tenant_runtime::lifecycle::{DriftState, Expected};
/// # #[derive(Model)] #[tenant(table = "notes")] struct Note { #[tenant(primary_key, identity)] id: i64 }
/// # static MIGRATIONS: Migrations = embed_migrations!("examples/migrations");
/// # async fn run() -> Result<(), tenant_runtime::Error> {
/// # let mut client = Client::connect("postgres://postgres@127.0.0.1/postgres").await?;
/// # let tenants = Allowlist::from_pairs([("acme", "tenant_acme")])?.tenants();
/// let models = ModelSet::new().with::<Note>();
/// let report = Migrator::new(&MIGRATIONS).check(&mut client, &tenants, Expected::Models(&models)).await?;
/// for line in &report.tenants {
///     println!("{} at {:?}, lacks {:?}: {}", line.tenant.key(), line.version, line.pending, line.state);
///     if let DriftState::Drifted(differences) = &line.state {
///         for d in differences {
///             println!("  {d}");
///         }
///     }
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub struct TenantDrift {
    /// The tenant.
    pub tenant: Tenant,
    /// Its highest applied migration (`None`: none applied, or no version table).
    pub version: Option<u64>,
    /// The migrations of this build it has not applied, by version.
    pub pending: Vec<u64>,
    /// Versions its version table records that this build's migrations do not have, by
    /// version: a newer build migrated it (deploy that build, or one that includes them,
    /// before migrating it again: [`Migrator::run`] refuses such a tenant with
    /// [`MigrateError::UnknownApplied`]). Its schema is then compared with what this build
    /// expects, so it may show differences the newer migrations made.
    pub unknown_applied: Vec<u64>,
    /// How its schema compares.
    pub state: DriftState,
}

impl TenantDrift {
    /// Whether the tenant has every migration of this build applied, none this build does
    /// not know, and its schema is as expected.
    ///
    /// ```no_run
    /// # use tenant_runtime::{embed_migrations, Allowlist, Client, Migrations, Migrator};
    /// # use tenant_runtime::lifecycle::Expected;
    /// # static MIGRATIONS: Migrations = embed_migrations!("examples/migrations");
    /// # async fn run() -> Result<(), tenant_runtime::Error> {
    /// # let mut client = Client::connect("postgres://postgres@127.0.0.1/postgres").await?;
    /// # let tenants = Allowlist::from_pairs([("acme", "tenant_acme")])?.tenants();
    /// let report = Migrator::new(&MIGRATIONS).check(&mut client, &tenants, Expected::Migrations).await?;
    /// for line in report.tenants.iter().filter(|t| !t.is_clean()) {
    ///     if !line.unknown_applied.is_empty() {
    ///         eprintln!("{}: applied by a newer build: {:?}", line.tenant.key(), line.unknown_applied);
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub fn is_clean(&self) -> bool {
        matches!(self.state, DriftState::Clean)
            && self.pending.is_empty()
            && self.unknown_applied.is_empty()
    }
}

/// What [`Migrator::check`] found: one line per tenant, in the order the tenants were given.
///
/// ```no_run
/// # use tenant_runtime::{embed_migrations, Allowlist, Client, Migrations, Migrator};
/// # use tenant_runtime::lifecycle::{Connections, Expected};
/// # static MIGRATIONS: Migrations = embed_migrations!("examples/migrations");
/// # async fn run() -> Result<(), tenant_runtime::Error> {
/// # let tenants = Allowlist::from_pairs([("acme", "tenant_acme")])?.tenants();
/// let url = "postgres://postgres@127.0.0.1/postgres";
/// let report = Migrator::new(&MIGRATIONS)
///     .check(Connections::url(url, 4), &tenants, Expected::Migrations)
///     .await?;
/// if !report.is_clean() {
///     eprint!("{report}");          // one line per tenant that is not clean, then the counts
///     std::process::exit(1);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub struct DriftReport {
    /// One line per tenant.
    pub tenants: Vec<TenantDrift>,
    /// The highest version of the migrations checked against.
    pub latest_version: Option<u64>,
    /// Wall time of the check.
    pub elapsed: Duration,
}

impl DriftReport {
    /// Whether every tenant is clean (all migrations applied, no difference, no failure).
    pub fn is_clean(&self) -> bool {
        self.tenants.iter().all(TenantDrift::is_clean)
    }

    /// The tenants that are not clean.
    pub fn drifted(&self) -> impl Iterator<Item = &TenantDrift> {
        self.tenants.iter().filter(|t| !t.is_clean())
    }
}

/// One line per tenant that is not clean, then a summary line.
impl fmt::Display for DriftReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (mut drifted, mut behind, mut ahead, mut failed) = (0, 0, 0, 0);
        for t in self.drifted() {
            match t.state {
                DriftState::Failed(_) => failed += 1,
                DriftState::Drifted(_) => drifted += 1,
                DriftState::Clean => {}
            }
            if !t.pending.is_empty() {
                behind += 1;
            }
            if !t.unknown_applied.is_empty() {
                ahead += 1;
            }
            let version = t.version.map_or("none".to_owned(), |v| v.to_string());
            write!(
                f,
                "{} ({}): version {version}",
                t.tenant.key(),
                t.tenant.schema().as_str()
            )?;
            if !t.pending.is_empty() {
                let pending: Vec<String> = t.pending.iter().map(u64::to_string).collect();
                write!(f, ", lacks {}", pending.join(", "))?;
            }
            if !t.unknown_applied.is_empty() {
                write!(f, ", {}", applied_by_newer_build(&t.unknown_applied))?;
            }
            writeln!(f, ": {}", t.state)?;
        }
        writeln!(
            f,
            "{} tenants checked in {:.1?}: {} clean, {} drifted, {} behind, {} ahead, {} failed",
            self.tenants.len(),
            self.elapsed,
            self.tenants.iter().filter(|t| t.is_clean()).count(),
            drifted,
            behind,
            ahead,
            failed
        )
    }
}

/// `applied by a newer build: 7, 8`: how a report says a tenant has versions applied that this
/// build does not know ([`TenantDrift::unknown_applied`]; deploy the newer build, or one
/// that includes them, before migrating it again).
///
/// ```
/// use tenant_runtime::lifecycle::applied_by_newer_build;
/// assert_eq!(applied_by_newer_build(&[7, 8]), "applied by a newer build: 7, 8");
/// ```
pub fn applied_by_newer_build(versions: &[u64]) -> String {
    let list: Vec<String> = versions.iter().map(u64::to_string).collect();
    format!("applied by a newer build: {}", list.join(", "))
}

impl Migrator<'_> {
    /// Checks every tenant of `tenants` against `expected`: reads their schemas from the
    /// catalog, 500 schemas per read (four catalog queries, pipelined, and one query for
    /// their versions), the reads spread over the connections of `on` (as for
    /// [`Migrator::run`]), and returns, per tenant, its applied version, the migrations it
    /// lacks, the versions it has that this build does not know
    /// ([`TenantDrift::unknown_applied`]: a newer build migrated it) and every
    /// [`Difference`] of its schema (the version table left out). Nothing
    /// is changed. A tenant that cannot be read is [`DriftState::Failed`] in its line; `Err`
    /// is for no connection, and, with [`Expected::Migrations`], for migrations that fail on
    /// an empty schema ([`MigrateError::ScratchFailed`]).
    ///
    /// ```no_run
    /// # use tenant_runtime::{embed_migrations, Allowlist, Client, Migrations, Migrator, Model, ModelSet};
    /// use tenant_runtime::lifecycle::{Connections, Expected};
    /// # #[derive(Model)] #[tenant(table = "notes")] struct Note { #[tenant(primary_key, identity)] id: i64 }
    /// # static MIGRATIONS: Migrations = embed_migrations!("examples/migrations");
    /// # async fn run() -> Result<(), tenant_runtime::Error> {
    /// let url = "postgres://postgres@127.0.0.1/postgres";
    /// let client = Client::connect(url).await?;
    /// let tenants = Allowlist::load_from_registry(&client, &Default::default()).await?.tenants();
    /// let models = ModelSet::new().with::<Note>();
    /// let report = Migrator::new(&MIGRATIONS)
    ///     .check(Connections::url(url, 4), &tenants, Expected::Models(&models))
    ///     .await?;
    /// for t in report.drifted() {
    ///     eprintln!("{}: {}", t.tenant.key(), t.state);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn check(
        &self,
        on: impl Into<Connections<'_>>,
        tenants: &[Tenant],
        expected: Expected<'_>,
    ) -> Result<DriftReport> {
        let started = Instant::now();
        let batches: Vec<&[Tenant]> = tenants.chunks(CHECK_BATCH).collect();
        let mut opened = Vec::new();
        let (clients, reconnect) = on.into().open(batches.len().max(1), &mut opened).await?;
        let Some(first) = clients.first_mut() else {
            return Err(LifecycleError::NoConnection.into());
        };
        let reference = match expected {
            Expected::Models(models) => {
                models.validate()?;
                Reference::Models(models)
            }
            Expected::Migrations => Reference::Built(
                scratch_shape(
                    first,
                    &scratch_tenant()?,
                    self.migrations(),
                    self.schema_map(),
                    None,
                )
                .await?,
            ),
        };
        let job = CheckBatch {
            migrations: self.migrations(),
            map: self.schema_map(),
            reference,
        };
        let never = AtomicBool::new(false);
        let results = run_jobs(clients, &batches, &never, &job, &|_, _| {}, reconnect).await;
        // Counted in batches; the error is about tenants.
        let lost = results
            .iter()
            .zip(&batches)
            .filter(|(r, _)| r.is_none())
            .map(|(_, b)| b.len())
            .sum();
        let mut lines = Vec::with_capacity(tenants.len());
        for (batch, result) in batches.iter().zip(results) {
            match result {
                Some(checked) => lines.extend(checked),
                None => lines.extend(batch.iter().map(|t| TenantDrift {
                    tenant: t.clone(),
                    version: None,
                    pending: Vec::new(),
                    unknown_applied: Vec::new(),
                    state: DriftState::Failed(
                        LifecycleError::ConnectionsLost { not_started: lost }.into(),
                    ),
                })),
            }
        }
        Ok(DriftReport {
            tenants: lines,
            latest_version: self.migrations().latest_version(),
            elapsed: started.elapsed(),
        })
    }
}

/// What the batches compare with.
enum Reference<'a> {
    Models(&'a ModelSet),
    /// A shape built by the migrations in a scratch schema.
    Built(SchemaShape),
}

struct CheckBatch<'a> {
    migrations: &'a Migrations,
    map: &'a SchemaMap,
    reference: Reference<'a>,
}

impl<'b> Job<&'b [Tenant]> for CheckBatch<'_> {
    type Output = Vec<TenantDrift>;
    fn run<'a>(
        &'a self,
        client: &'a mut Client,
        batch: &'a &'b [Tenant],
    ) -> impl std::future::Future<Output = Vec<TenantDrift>> + Send + 'a {
        self.check_or_split(client, batch)
    }
}

impl CheckBatch<'_> {
    async fn check_or_split(&self, client: &mut Client, batch: &[Tenant]) -> Vec<TenantDrift> {
        match self.check_batch(client, batch).await {
            Ok(lines) => lines,
            // One schema can spoil a batch's read: check each alone, so each tenant gets
            // its own error (and the others their results).
            Err(_) if batch.len() > 1 => {
                let mut lines = Vec::with_capacity(batch.len());
                for tenant in batch {
                    match self.check_batch(client, std::slice::from_ref(tenant)).await {
                        Ok(one) => lines.extend(one),
                        Err(e) => lines.push(failed(tenant, e)),
                    }
                }
                lines
            }
            Err(e) => vec![failed(&batch[0], e)],
        }
    }
}

fn failed(tenant: &Tenant, e: Error) -> TenantDrift {
    TenantDrift {
        tenant: tenant.clone(),
        version: None,
        pending: Vec::new(),
        unknown_applied: Vec::new(),
        state: DriftState::Failed(e),
    }
}

impl CheckBatch<'_> {
    async fn check_batch(&self, client: &Client, batch: &[Tenant]) -> Result<Vec<TenantDrift>> {
        let schemas: Vec<SchemaName> = batch.iter().map(Tenant::schema).collect();
        let snapshot = SchemaSnapshot::read(client, &schemas).await?;
        let versioned: Vec<SchemaName> = schemas
            .iter()
            .copied()
            .filter(|s| {
                snapshot
                    .get(*s)
                    .is_some_and(|shape| shape.tables.contains_key(VERSION_TABLE))
            })
            .collect();
        let applied = read_versions(client, &versioned).await?;
        let mut lines = Vec::with_capacity(batch.len());
        for tenant in batch {
            let schema = tenant.schema();
            let Some(live) = snapshot.get(schema) else {
                lines.push(failed(
                    tenant,
                    LifecycleError::SchemaNotFound {
                        schema: schema.as_str().into(),
                    }
                    .into(),
                ));
                continue;
            };
            let mut live = live.clone();
            live.tables.remove(VERSION_TABLE);
            let expected = match &self.reference {
                Reference::Models(models) => {
                    let db = Db::new(client, tenant).with_schema_map(self.map.clone());
                    match models.expected_shape(&db, Slot::Tenant) {
                        Ok(shape) => shape,
                        Err(e) => {
                            lines.push(failed(tenant, e));
                            continue;
                        }
                    }
                }
                Reference::Built(shape) => rebase(shape, schema.as_str()),
            };
            let differences = expected.diff(&live);
            let versions = applied
                .iter()
                .find(|(s, _)| *s == schema)
                .map(|(_, v)| v.as_slice())
                .unwrap_or(&[]);
            lines.push(TenantDrift {
                tenant: tenant.clone(),
                version: versions.iter().copied().max(),
                pending: self
                    .migrations
                    .iter()
                    // Shared migrations are recorded once, in the registry's schema.
                    .filter(|m| !m.is_shared())
                    .map(|m| m.version())
                    .filter(|v| !versions.contains(v))
                    .collect(),
                unknown_applied: versions
                    .iter()
                    .copied()
                    .filter(|v| self.migrations.get(*v).is_none())
                    .collect(),
                state: if differences.is_empty() {
                    DriftState::Clean
                } else {
                    DriftState::Drifted(differences)
                },
            });
        }
        Ok(lines)
    }
}

/// The applied versions of each schema of `schemas` (each has a version table): one query
/// for all of them (`UNION ALL` of one subquery per schema).
async fn read_versions(
    client: &Client,
    schemas: &[SchemaName],
) -> Result<Vec<(SchemaName, Vec<u64>)>> {
    if schemas.is_empty() {
        return Ok(Vec::new());
    }
    // The schemas are validated names, emitted double-quoted (the one way a schema reaches
    // SQL); the index says which row is whose.
    let parts: Vec<String> = schemas
        .iter()
        .enumerate()
        .map(|(i, s)| {
            format!(
                "SELECT {i}::int4, ARRAY(SELECT version FROM {s}.\"{VERSION_TABLE}\" ORDER BY version)"
            )
        })
        .collect();
    let rows = client
        .pg()
        .query_typed(&parts.join(" UNION ALL "), &[])
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let i: i32 = row.try_get(0)?;
        let versions: Vec<i64> = row.try_get(1)?;
        out.push((
            schemas[i as usize],
            versions.into_iter().map(|v| v as u64).collect(),
        ));
    }
    Ok(out)
}

/// `shape`, built in a scratch schema, as it would be in `schema`: its name and the foreign
/// keys into the scratch schema moved there.
fn rebase(shape: &SchemaShape, schema: &str) -> SchemaShape {
    let mut out = shape.clone();
    let from = std::mem::replace(&mut out.schema, schema.to_owned());
    let qualified = format!("{from}.");
    for table in out.tables.values_mut() {
        // Enum columns are typed `schema.type` by the catalog.
        for c in table.columns.iter_mut() {
            if let Some(rest) = c.sql_type.strip_prefix(&qualified) {
                c.sql_type = format!("{schema}.{rest}");
            }
        }
        for c in table.constraints.values_mut() {
            if let Some(r) = c.references.as_mut() {
                if r.schema == from {
                    r.schema = schema.to_owned();
                }
            }
            if let Some(d) = c.definition.as_mut() {
                *d = d.replace(&from, schema);
            }
        }
        for i in table.indexes.values_mut() {
            if let Some(d) = i.definition.as_mut() {
                *d = d.replace(&from, schema);
            }
        }
    }
    out
}

/// A fresh scratch schema name: `_tenant_scratch_<pid>_<nanos>` (unique per call; it lives
/// only inside a transaction that is rolled back).
pub(crate) fn scratch_tenant() -> Result<Tenant> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let name = format!(
        "_tenant_scratch_{}_{}_{}",
        std::process::id(),
        nanos,
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    Allowlist::with_max_len(1).insert("_tenant_scratch", &name)
}

/// Applies the migrations (those up to `upto`, or all) to the scratch schema of `tenant`
/// ([`scratch_tenant`]), created inside a
/// transaction on `client`, reads its shape and rolls the transaction back: what the
/// migrations build, with nothing left behind. Named slots are filled by `map` (then the
/// client's map); the shared tables they name must exist.
pub(crate) async fn scratch_shape(
    client: &mut Client,
    tenant: &Tenant,
    migrations: &Migrations,
    map: &SchemaMap,
    upto: Option<u64>,
) -> Result<SchemaShape> {
    let schema = tenant.schema();
    let mut db = client.for_tenant(tenant).with_schema_map(map.clone());
    let tx = db.transaction().await?;
    let create = Template::builder()
        .sql("CREATE SCHEMA ")
        .slot(Slot::Tenant)
        .build();
    let pg = tx.executor().pg();
    run_statements(pg, &[tx.render(&create, None)?]).await?;
    // Shared migrations build the shared slot once for all tenants, not a tenant's schema.
    for m in migrations
        .iter()
        .filter(|m| !m.is_shared() && upto.is_none_or(|u| m.version() <= u))
    {
        let failed = |source: Error| {
            Error::from(MigrateError::ScratchFailed {
                version: m.version(),
                name: m.name().to_owned(),
                source: Box::new(source),
            })
        };
        let statements = m
            .statements()
            .iter()
            .map(|t| tx.render(t, None))
            .collect::<Result<Vec<_>>>()
            .map_err(failed)?;
        run_statements(pg, &statements).await.map_err(failed)?;
    }
    let snapshot = SchemaSnapshot::read(tx.executor(), &[schema]).await?;
    tx.rollback().await?;
    let mut shape = snapshot.get(schema).cloned().unwrap_or_default();
    shape.schema = schema.as_str().to_owned();
    Ok(shape)
}
