//! Versioned SQL migrations applied to every tenant schema: embedded and checked at compile
//! time by [`embed_migrations!`](crate::embed_migrations), recorded per schema with
//! checksums, one transaction per tenant, N tenants at a time, with a report.

use std::borrow::Cow;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use postgres_types::Type;

use crate::door::Tenant;
use crate::error::{Error, LifecycleError, MigrateError, Result};
use crate::exec::Client;
use crate::exec::Db;
use crate::exec::Executor;
use crate::lifecycle::lock_schema;
use crate::lifecycle::{run_jobs, Connections, Job};
use crate::model::ddl::run_statements;
use crate::sql::{Piece, SchemaMap, Slot, Template};

/// The table, in every tenant schema, that records the migrations applied to it.
pub const VERSION_TABLE: &str = "_tenant_migrations";

static CREATE_VERSION_TABLE: LazyLock<Template> = LazyLock::new(|| {
    Template::builder()
        .sql("CREATE TABLE IF NOT EXISTS ")
        .table(Slot::Tenant, VERSION_TABLE)
        .sql(
            " (version bigint PRIMARY KEY, name text NOT NULL, \
             checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())",
        )
        .build()
});

static SELECT_APPLIED: LazyLock<Template> = LazyLock::new(|| {
    Template::builder()
        .sql("SELECT version, name, checksum FROM ")
        .table(Slot::Tenant, VERSION_TABLE)
        .sql(" ORDER BY version")
        .build()
});

static INSERT_APPLIED: LazyLock<Template> = LazyLock::new(|| {
    Template::builder()
        .sql("INSERT INTO ")
        .table(Slot::Tenant, VERSION_TABLE)
        .sql(" (version, name, checksum) VALUES ($1, $2, $3)")
        .build()
});

/// One versioned migration: its file as a [`Template`] whose slots are `{tenant}` and named
/// slots, the same SQL split into its statements, and the checksum of the file.
///
/// ```
/// # use tenant_runtime::Migrations;
/// static MIGRATIONS: Migrations = tenant_runtime::embed_migrations!("examples/migrations");
/// let first = MIGRATIONS.iter().next().unwrap();
/// assert_eq!((first.version(), first.name()), (1, "create_notes"));
/// assert!(first.template().to_string().contains("{tenant}"));
/// assert!(first.statements().iter().all(|s| !s.to_string().trim_end().ends_with(';')));
/// ```
#[derive(Clone)]
pub struct Migration {
    version: u64,
    name: Cow<'static, str>,
    file_name: Cow<'static, str>,
    checksum: Cow<'static, str>,
    template: Template,
    statements: Cow<'static, [Template]>,
}

impl Migration {
    /// What `embed_migrations!` emits.
    #[doc(hidden)]
    pub const fn from_static(
        version: u64,
        name: &'static str,
        file_name: &'static str,
        checksum: &'static str,
        pieces: &'static [Piece],
        statements: &'static [Template],
    ) -> Migration {
        Migration {
            version,
            name: Cow::Borrowed(name),
            file_name: Cow::Borrowed(file_name),
            checksum: Cow::Borrowed(checksum),
            template: Template::from_static(pieces),
            statements: Cow::Borrowed(statements),
        }
    }

    /// The version (`0003_add_paid.sql` → 3).
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The name (`0003_add_paid.sql` → `add_paid`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The file it came from.
    pub fn file_name(&self) -> &str {
        &self.file_name
    }

    /// Hex SHA-256 of the file (line endings normalised), recorded when applied.
    pub fn checksum(&self) -> &str {
        &self.checksum
    }

    /// The SQL of the whole file, with schema slots.
    pub fn template(&self) -> &Template {
        &self.template
    }

    /// The statements of the file, in order, one per template, without their `;`: what the
    /// [`Migrator`] sends, one query string each (split at compile time by the rule of
    /// `tenant_sql::statement_ranges`).
    ///
    /// ```
    /// # use tenant_runtime::Migrations;
    /// static MIGRATIONS: Migrations = tenant_runtime::embed_migrations!("examples/migrations");
    /// for m in MIGRATIONS.iter() {
    ///     assert!(!m.statements().is_empty());
    /// }
    /// ```
    pub fn statements(&self) -> &[Template] {
        &self.statements
    }
}

impl fmt::Debug for Migration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Migration")
            .field("version", &self.version)
            .field("name", &self.name)
            .field("checksum", &self.checksum)
            .finish_non_exhaustive()
    }
}

/// An ordered set of migrations, from [`embed_migrations!`](crate::embed_migrations) or
/// (feature `migrations-dir`) [`Migrations::from_dir`].
///
/// ```
/// use tenant_runtime::{embed_migrations, Migrations};
///
/// static MIGRATIONS: Migrations = embed_migrations!("examples/migrations");
/// assert!(MIGRATIONS.len() >= 2);
/// let versions: Vec<u64> = MIGRATIONS.iter().map(|m| m.version()).collect();
/// assert!(versions.windows(2).all(|w| w[0] < w[1]));
/// ```
#[derive(Clone, Debug)]
pub struct Migrations {
    list: Cow<'static, [Migration]>,
}

impl Migrations {
    /// What `embed_migrations!` emits (already checked and sorted at compile time).
    #[doc(hidden)]
    pub const fn from_static(list: &'static [Migration]) -> Migrations {
        Migrations {
            list: Cow::Borrowed(list),
        }
    }

    /// Loads and checks the migration files of `dir` at run time, by the same rules as
    /// `embed_migrations!` (names, placeholders, SQL parse, unique versions). `slots` are
    /// the named slots the files may use besides `{tenant}`. Every problem is reported in
    /// one [`MigrateError::Invalid`].
    ///
    /// ```
    /// let migrations = tenant_runtime::Migrations::from_dir("examples/migrations", &[])?;
    /// assert_eq!(migrations.iter().next().unwrap().version(), 1);
    /// # Ok::<(), tenant_runtime::Error>(())
    /// ```
    #[cfg(feature = "migrations-dir")]
    pub fn from_dir(
        dir: impl AsRef<std::path::Path>,
        slots: &[&'static str],
    ) -> Result<Migrations> {
        let checked =
            tenant_sql::check_dir(dir.as_ref(), slots).map_err(|errors| MigrateError::Invalid {
                problems: errors.iter().map(|e| e.to_string()).collect(),
            })?;
        let template = |parts: Vec<tenant_sql::Part>| {
            let pieces = parts
                .into_iter()
                .map(|part| match part {
                    tenant_sql::Part::Sql(s) => Piece::Sql(Cow::Owned(s)),
                    tenant_sql::Part::Slot(tenant_sql::SlotRef::Tenant) => {
                        Piece::Schema(Slot::Tenant)
                    }
                    tenant_sql::Part::Slot(tenant_sql::SlotRef::Named(name)) => {
                        let slot = slots
                            .iter()
                            .find(|s| **s == name)
                            .expect("the checker accepts declared slots only");
                        Piece::Schema(Slot::Named(slot))
                    }
                })
                .collect();
            Template::new(pieces)
        };
        let list = checked
            .into_iter()
            .map(|m| Migration {
                version: m.version,
                name: Cow::Owned(m.name),
                file_name: Cow::Owned(m.file_name),
                checksum: Cow::Owned(m.checksum),
                template: template(m.parts),
                statements: m.statements.into_iter().map(template).collect(),
            })
            .collect::<Vec<_>>();
        Ok(Migrations {
            list: Cow::Owned(list),
        })
    }

    /// The migrations, by ascending version.
    pub fn iter(&self) -> impl Iterator<Item = &Migration> {
        self.list.iter()
    }

    /// Number of migrations.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The migration of `version`.
    pub fn get(&self, version: u64) -> Option<&Migration> {
        self.list
            .binary_search_by_key(&version, |m| m.version)
            .ok()
            .map(|i| &self.list[i])
    }

    /// The highest version.
    pub fn latest_version(&self) -> Option<u64> {
        self.list.last().map(|m| m.version)
    }
}

/// What happened to one tenant in a migration run.
///
/// ```
/// use tenant_runtime::lifecycle::Outcome;
/// assert_eq!(Outcome::Applied(vec![1, 2]).to_string(), "applied 1, 2");
/// assert_eq!(Outcome::UpToDate.to_string(), "up to date");
/// assert!(!Outcome::Pending(vec![3]).is_failed());
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum Outcome {
    /// These versions were applied (and committed) in this run.
    Applied(Vec<u64>),
    /// Nothing to do: every migration was applied already.
    UpToDate,
    /// Dry run: these versions would be applied.
    Pending(Vec<u64>),
    /// The tenant failed; its transaction was rolled back, so it is exactly as before.
    Failed(Error),
    /// Not attempted: the run stopped at an earlier failure (fail-fast).
    NotRun,
}

impl Outcome {
    /// Whether the tenant failed.
    pub fn is_failed(&self) -> bool {
        matches!(self, Outcome::Failed(_))
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let versions = |v: &[u64]| v.iter().map(u64::to_string).collect::<Vec<_>>().join(", ");
        match self {
            Outcome::Applied(v) => write!(f, "applied {}", versions(v)),
            Outcome::UpToDate => f.write_str("up to date"),
            Outcome::Pending(v) => write!(f, "would apply {}", versions(v)),
            Outcome::Failed(e) => write!(f, "FAILED: {e}"),
            Outcome::NotRun => f.write_str("not run (stopped at an earlier failure)"),
        }
    }
}

/// One tenant's line of a [`MigrationReport`].
///
/// ```no_run
/// # use tenant_runtime::{embed_migrations, Allowlist, Client, Migrations, Migrator};
/// # static MIGRATIONS: Migrations = embed_migrations!("examples/migrations");
/// # async fn run() -> Result<(), tenant_runtime::Error> {
/// # let mut client = Client::connect("postgres://postgres@127.0.0.1/postgres").await?;
/// # let tenants = Allowlist::from_pairs([("acme", "tenant_acme")])?.tenants();
/// let report = Migrator::new(&MIGRATIONS).run(&mut client, &tenants).await?;
/// for line in &report.tenants {
///     println!("{}: {} (was at {:?}, took {:?})", line.tenant.key(), line.outcome, line.version_before, line.elapsed);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub struct TenantReport {
    /// The tenant.
    pub tenant: Tenant,
    /// What happened.
    pub outcome: Outcome,
    /// Its highest applied version before this run (`None`: nothing applied, or unknown).
    pub version_before: Option<u64>,
    /// How long the tenant took.
    pub elapsed: Duration,
}

/// Counts of a [`MigrationReport`] by outcome.
///
/// ```no_run
/// # use tenant_runtime::{embed_migrations, Allowlist, Client, Migrations, Migrator};
/// # static MIGRATIONS: Migrations = embed_migrations!("examples/migrations");
/// # async fn run() -> Result<(), tenant_runtime::Error> {
/// # let mut client = Client::connect("postgres://postgres@127.0.0.1/postgres").await?;
/// # let tenants = Allowlist::from_pairs([("acme", "tenant_acme")])?.tenants();
/// let report = Migrator::new(&MIGRATIONS).run(&mut client, &tenants).await?;
/// let counts = report.counts();
/// println!("{} applied, {} up to date, {} failed", counts.applied, counts.up_to_date, counts.failed);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct OutcomeCounts {
    /// Tenants with migrations applied.
    pub applied: usize,
    /// Tenants already up to date.
    pub up_to_date: usize,
    /// Tenants with migrations pending (dry run).
    pub pending: usize,
    /// Tenants that failed.
    pub failed: usize,
    /// Tenants not attempted.
    pub not_run: usize,
}

/// The outcome of a migration run, one line per tenant, in the order the tenants were given.
///
/// ```no_run
/// # use tenant_runtime::{embed_migrations, Allowlist, Client, Migrations, Migrator};
/// # static MIGRATIONS: Migrations = embed_migrations!("examples/migrations");
/// # async fn run() -> Result<(), tenant_runtime::Error> {
/// # let mut client = Client::connect("postgres://postgres@127.0.0.1/postgres").await?;
/// # let tenants = Allowlist::from_pairs([("acme", "tenant_acme")])?.tenants();
/// let report = Migrator::new(&MIGRATIONS).run(&mut client, &tenants).await?;
/// if !report.is_success() {
///     for failed in report.failed() {
///         eprintln!("{}: {}", failed.tenant.key(), failed.outcome);
///     }
/// }
/// println!("{report}");       // one line per tenant, then the counts
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub struct MigrationReport {
    /// One report per tenant.
    pub tenants: Vec<TenantReport>,
    /// Wall time of the run.
    pub elapsed: Duration,
}

impl MigrationReport {
    /// The tenants that failed.
    pub fn failed(&self) -> impl Iterator<Item = &TenantReport> {
        self.tenants.iter().filter(|t| t.outcome.is_failed())
    }

    /// Whether every tenant was migrated (or was up to date, or is only pending in a dry run).
    pub fn is_success(&self) -> bool {
        self.tenants
            .iter()
            .all(|t| !matches!(t.outcome, Outcome::Failed(_) | Outcome::NotRun))
    }

    /// Tenants by outcome.
    pub fn counts(&self) -> OutcomeCounts {
        let mut c = OutcomeCounts::default();
        for t in &self.tenants {
            match t.outcome {
                Outcome::Applied(_) => c.applied += 1,
                Outcome::UpToDate => c.up_to_date += 1,
                Outcome::Pending(_) => c.pending += 1,
                Outcome::Failed(_) => c.failed += 1,
                Outcome::NotRun => c.not_run += 1,
            }
        }
        c
    }
}

/// One line per tenant, then a summary line.
impl fmt::Display for MigrationReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for t in &self.tenants {
            writeln!(
                f,
                "{} ({}): {}",
                t.tenant.key(),
                t.tenant.schema().as_str(),
                t.outcome
            )?;
        }
        let c = self.counts();
        write!(
            f,
            "{} tenants in {:.1?}: {} migrated, {} up to date, {} pending, {} failed, {} not run",
            self.tenants.len(),
            self.elapsed,
            c.applied,
            c.up_to_date,
            c.pending,
            c.failed,
            c.not_run
        )
    }
}

/// Progress of a run, passed to the [`Migrator::on_progress`] hook after each tenant.
///
/// ```
/// use tenant_runtime::{embed_migrations, Migrations, Migrator};
/// static MIGRATIONS: Migrations = embed_migrations!("examples/migrations");
///
/// let migrator = Migrator::new(&MIGRATIONS).on_progress(|p| {
///     eprintln!("{}/{} {}: {} ({} failed so far)", p.done, p.total, p.tenant.key(), p.outcome, p.failed)
/// });
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub struct Progress<'a> {
    /// Tenants finished so far (this one included).
    pub done: usize,
    /// Tenants in the run.
    pub total: usize,
    /// Tenants failed so far.
    pub failed: usize,
    /// The tenant just finished.
    pub tenant: &'a Tenant,
    /// Its outcome.
    pub outcome: &'a Outcome,
}

type ProgressHook = Arc<dyn Fn(&Progress<'_>) + Send + Sync>;

/// Applies [`Migrations`] to tenant schemas.
///
/// Each tenant is migrated in its own transaction, under the schema's advisory lock: its
/// version table (`{tenant}."_tenant_migrations"`) is read, every applied migration's
/// checksum is compared with this build's, the pending migrations are applied in version
/// order (each statement of a file as a query string of its own, pipelined: one round trip
/// per file) and recorded, and the transaction commits; any failure rolls the whole tenant back
/// and is reported, while the other tenants go on (or, with
/// [`fail_fast`](Migrator::fail_fast), no new tenant starts). Rerunning skips what is done.
///
/// ```no_run
/// use tenant_runtime::{embed_migrations, Allowlist, Client, Migrations, Migrator, Registry};
/// use tenant_runtime::lifecycle::Connections;
///
/// static MIGRATIONS: Migrations = embed_migrations!("examples/migrations");
///
/// # async fn run() -> Result<(), tenant_runtime::Error> {
/// let url = "postgres://postgres@127.0.0.1/postgres";
/// let client = Client::connect(url).await?;
/// let tenants = Allowlist::load_from_registry(&client, &Registry::default()).await?.tenants();
///
/// let report = Migrator::new(&MIGRATIONS)
///     .on_progress(|p| eprintln!("{}/{} ({} failed)", p.done, p.total, p.failed))
///     .run(Connections::url(url, 8), &tenants)
///     .await?;
/// println!("{report}");
/// for failed in report.failed() {
///     eprintln!("{}: {}", failed.tenant.key(), failed.outcome);
/// }
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Migrator<'m> {
    migrations: &'m Migrations,
    fail_fast: bool,
    dry_run: bool,
    map: SchemaMap,
    progress: Option<ProgressHook>,
}

impl<'m> Migrator<'m> {
    /// A migrator for `migrations`: all tenants are attempted, changes are applied.
    pub fn new(migrations: &'m Migrations) -> Migrator<'m> {
        Migrator {
            migrations,
            fail_fast: false,
            dry_run: false,
            map: SchemaMap::new(),
            progress: None,
        }
    }

    /// Stop starting new tenants after the first failure (tenants already running finish;
    /// the rest are [`Outcome::NotRun`]).
    pub fn fail_fast(mut self, fail_fast: bool) -> Migrator<'m> {
        self.fail_fast = fail_fast;
        self
    }

    /// Only report what would be applied ([`Outcome::Pending`]); change nothing (checksums
    /// are still verified).
    pub fn dry_run(mut self, dry_run: bool) -> Migrator<'m> {
        self.dry_run = dry_run;
        self
    }

    /// The map that fills the migrations' named slots (narrower than the connections' maps).
    pub fn with_schema_map(mut self, map: SchemaMap) -> Migrator<'m> {
        self.map = map;
        self
    }

    /// Called after each tenant, from the task running the migration (keep it quick).
    pub fn on_progress(
        mut self,
        hook: impl Fn(&Progress<'_>) + Send + Sync + 'static,
    ) -> Migrator<'m> {
        self.progress = Some(Arc::new(hook));
        self
    }

    /// Migrates `tenants` over `on`: clients you hold (`&mut client`, `&mut clients`), one
    /// tenant per client at a time, or [`Connections::url`] to open connections for the run.
    /// Returns one [`TenantReport`] per tenant, in the given order; a tenant's failure is in
    /// its report, not an `Err` (only failing to open connections is). With no client,
    /// nothing runs and every tenant is [`Outcome::NotRun`].
    ///
    /// ```no_run
    /// # use tenant_runtime::{embed_migrations, Allowlist, Client, Migrations, Migrator};
    /// use tenant_runtime::lifecycle::Connections;
    /// # static MIGRATIONS: Migrations = embed_migrations!("examples/migrations");
    /// # async fn run() -> Result<(), tenant_runtime::Error> {
    /// let mut client = Client::connect("postgres://postgres@127.0.0.1/postgres").await?;
    /// let acme = Allowlist::from_pairs([("acme", "tenant_acme")])?.resolve("acme")?;
    /// let migrator = Migrator::new(&MIGRATIONS);
    ///
    /// let report = migrator.run(&mut client, &[acme.clone()]).await?;    // one tenant
    /// assert!(report.is_success());
    /// let url = "postgres://postgres@127.0.0.1/postgres";
    /// let report = migrator.run(Connections::url(url, 8), &[acme]).await?; // 8 at a time
    /// # Ok(()) }
    /// ```
    pub async fn run(
        &self,
        on: impl Into<Connections<'_>>,
        tenants: &[Tenant],
    ) -> Result<MigrationReport> {
        let mut opened = Vec::new();
        let clients = on.into().open(tenants.len(), &mut opened).await?;
        Ok(self.run_on(clients, tenants).await)
    }

    async fn run_on(&self, clients: &mut [Client], tenants: &[Tenant]) -> MigrationReport {
        let started = Instant::now();
        let stop = AtomicBool::new(false);
        let (done, failed) = (AtomicUsize::new(0), AtomicUsize::new(0));
        let on_done = |i: usize, report: &TenantReport| {
            let failed = if report.outcome.is_failed() {
                if self.fail_fast {
                    stop.store(true, Ordering::Relaxed);
                }
                failed.fetch_add(1, Ordering::Relaxed) + 1
            } else {
                failed.load(Ordering::Relaxed)
            };
            let done = done.fetch_add(1, Ordering::Relaxed) + 1;
            if let Some(hook) = &self.progress {
                hook(&Progress {
                    done,
                    total: tenants.len(),
                    failed,
                    tenant: &tenants[i],
                    outcome: &report.outcome,
                });
            }
        };
        let results = run_jobs(clients, tenants, &stop, self, &on_done).await;
        let tenants = results
            .into_iter()
            .zip(tenants)
            .map(|(result, tenant)| {
                result.unwrap_or_else(|| TenantReport {
                    tenant: tenant.clone(),
                    outcome: Outcome::NotRun,
                    version_before: None,
                    elapsed: Duration::ZERO,
                })
            })
            .collect();
        MigrationReport {
            tenants,
            elapsed: started.elapsed(),
        }
    }

    /// Migrates one tenant on `client` (in its own transaction).
    async fn migrate_one(&self, client: &mut Client, tenant: &Tenant) -> TenantReport {
        let started = Instant::now();
        let mut version_before = None;
        let outcome = match self
            .migrate_in_transaction(client, tenant, &mut version_before)
            .await
        {
            Ok(outcome) => outcome,
            Err(e) => Outcome::Failed(e),
        };
        TenantReport {
            tenant: tenant.clone(),
            outcome,
            version_before,
            elapsed: started.elapsed(),
        }
    }

    async fn migrate_in_transaction(
        &self,
        client: &mut Client,
        tenant: &Tenant,
        version_before: &mut Option<u64>,
    ) -> Result<Outcome> {
        let schema = tenant.schema();
        let mut db = client.for_tenant(tenant).with_schema_map(self.map.clone());
        let tx = db.transaction().await?;
        let pg = tx.executor().pg();
        if !self.dry_run {
            lock_schema(pg, schema).await?;
        }
        let found = pg
            .query_typed(
                "SELECT n.oid IS NOT NULL, EXISTS (SELECT 1 FROM pg_catalog.pg_class c \
                 WHERE c.relnamespace = n.oid AND c.relname = '_tenant_migrations') \
                 FROM (SELECT 1) AS one LEFT JOIN pg_catalog.pg_namespace n ON n.nspname = $1",
                &[(&schema.as_str(), Type::TEXT)],
            )
            .await?;
        let (schema_found, table_found): (bool, bool) =
            (found[0].try_get(0)?, found[0].try_get(1)?);
        if !schema_found {
            return Err(Error::Lifecycle(LifecycleError::SchemaNotFound {
                schema: schema.as_str().into(),
            }));
        }
        let applied = if table_found {
            read_applied(&tx).await?
        } else {
            Vec::new()
        };
        *version_before = applied.iter().map(|a| a.0).max();
        let pending = self.pending(tenant, &applied)?;
        if pending.is_empty() {
            return Ok(Outcome::UpToDate);
        }
        let versions: Vec<u64> = pending.iter().map(|m| m.version).collect();
        if self.dry_run {
            return Ok(Outcome::Pending(versions));
        }
        if !table_found {
            let sql = tx.render(&CREATE_VERSION_TABLE, None)?;
            run_statements(pg, &[sql]).await?;
        }
        for m in pending {
            let failed = |source: Error| {
                Error::from(MigrateError::Failed {
                    tenant: tenant.key().into(),
                    schema: schema.as_str().into(),
                    version: m.version,
                    name: m.name.to_string(),
                    source: Box::new(source),
                })
            };
            let statements = m
                .statements
                .iter()
                .map(|t| tx.render(t, None))
                .collect::<Result<Vec<_>>>()
                .map_err(failed)?;
            run_statements(pg, &statements).await.map_err(failed)?;
            let version = i64::try_from(m.version).map_err(|_| {
                failed(MigrateError::VersionOutOfRange { version: m.version }.into())
            })?;
            tx.execute(&INSERT_APPLIED, &[&version, &m.name(), &m.checksum()])
                .await
                .map_err(failed)?;
        }
        tx.commit().await?;
        Ok(Outcome::Applied(versions))
    }

    /// The migrations not yet applied, after checking every applied one against this build.
    fn pending(
        &self,
        tenant: &Tenant,
        applied: &[(u64, String, String)],
    ) -> Result<Vec<&'m Migration>> {
        let schema = tenant.schema();
        let schema = schema.as_str();
        for (version, name, checksum) in applied {
            match self.migrations.get(*version) {
                None => {
                    return Err(MigrateError::UnknownApplied {
                        schema: schema.into(),
                        version: *version,
                        name: name.clone(),
                    }
                    .into())
                }
                Some(m) if m.checksum() != checksum => {
                    return Err(MigrateError::ChecksumMismatch {
                        schema: schema.into(),
                        version: *version,
                        name: m.name().into(),
                        applied: checksum.clone(),
                        embedded: m.checksum().into(),
                    }
                    .into())
                }
                Some(_) => {}
            }
        }
        Ok(self
            .migrations
            .list
            .iter()
            .filter(|m| applied.binary_search_by_key(&m.version, |a| a.0).is_err())
            .collect())
    }
}

impl Job<Tenant> for Migrator<'_> {
    type Output = TenantReport;
    fn run<'a>(
        &'a self,
        client: &'a mut Client,
        tenant: &'a Tenant,
    ) -> impl std::future::Future<Output = TenantReport> + Send + 'a {
        self.migrate_one(client, tenant)
    }
}

impl fmt::Debug for Migrator<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Migrator")
            .field("migrations", &self.migrations.len())
            .field("fail_fast", &self.fail_fast)
            .field("dry_run", &self.dry_run)
            .field("map", &self.map)
            .finish_non_exhaustive()
    }
}

/// `(version, name, checksum)` of every applied migration, by version.
async fn read_applied<E: Executor>(db: &Db<E>) -> Result<Vec<(u64, String, String)>> {
    let rows = db.fetch_all(&SELECT_APPLIED, &[]).await?;
    rows.iter()
        .map(|r| {
            let version: i64 = r.try_get(0)?;
            Ok((version as u64, r.try_get(1)?, r.try_get(2)?))
        })
        .collect()
}

/// Compile-time check: the futures of migrating and provisioning can be spawned.
#[allow(dead_code)]
fn futures_are_send(
    migrator: &Migrator<'static>,
    provisioner: &crate::Provisioner,
    clients: &'static mut [Client],
    tenants: &'static [Tenant],
    allowlist: &'static crate::Allowlist,
) {
    fn is_send<T: Send>(_: &T) {}
    is_send(&migrator.run(clients, tenants));
    is_send(&migrator.run(Connections::url("", 1), tenants));
    let pairs: &[(String, String)] = &[];
    is_send(&provisioner.provision_many(&mut [], allowlist, pairs));
}

// Hooks for the drift check, autogenerate (lifecycle/check.rs, lifecycle/generate.rs) and
// provisioning from migrations (lifecycle/provision.rs).
impl<'m> Migrator<'m> {
    /// The migrations this migrator applies.
    pub(crate) fn migrations(&self) -> &'m Migrations {
        self.migrations
    }

    /// The map that fills the migrations' named slots.
    pub(crate) fn schema_map(&self) -> &SchemaMap {
        &self.map
    }
}

/// Applies every migration of `migrations` to `tx`'s tenant schema inside `tx` (a
/// transaction the caller commits), creating the version table and recording each one, as
/// [`Migrator::run`] would have: what provisioning a tenant from the migrations runs. Returns
/// the versions applied (none when the version table already records migrations: a tenant
/// provisioned before is left to the migrator).
pub(crate) async fn apply_all_in<E: crate::exec::Writable>(
    tx: &Db<E>,
    migrations: &Migrations,
) -> Result<Vec<u64>> {
    let pg = tx.executor().pg();
    let tenant = tx.tenant();
    let schema = tenant.schema();
    let found = pg
        .query_typed(
            "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_class c \
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relname = '_tenant_migrations')",
            &[(&schema.as_str(), Type::TEXT)],
        )
        .await?;
    if found[0].try_get::<_, bool>(0)? && !read_applied(tx).await?.is_empty() {
        return Ok(Vec::new());
    }
    let sql = tx.render(&CREATE_VERSION_TABLE, None)?;
    run_statements(pg, &[sql]).await?;
    let mut applied = Vec::with_capacity(migrations.len());
    for m in migrations.iter() {
        let failed = |source: Error| {
            Error::from(MigrateError::Failed {
                tenant: tenant.key().into(),
                schema: schema.as_str().into(),
                version: m.version,
                name: m.name.to_string(),
                source: Box::new(source),
            })
        };
        let statements = m
            .statements
            .iter()
            .map(|t| tx.render(t, None))
            .collect::<Result<Vec<_>>>()
            .map_err(failed)?;
        run_statements(pg, &statements).await.map_err(failed)?;
        let version = i64::try_from(m.version)
            .map_err(|_| failed(MigrateError::VersionOutOfRange { version: m.version }.into()))?;
        tx.execute(&INSERT_APPLIED, &[&version, &m.name(), &m.checksum()])
            .await
            .map_err(failed)?;
        applied.push(m.version);
    }
    Ok(applied)
}
