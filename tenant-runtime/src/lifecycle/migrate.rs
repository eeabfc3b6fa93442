//! Versioned SQL migrations applied to every tenant schema: embedded and checked at compile
//! time by [`embed_migrations!`](crate::embed_migrations), recorded per schema with
//! checksums, one transaction per tenant, N tenants at a time, with a report.

use std::borrow::Cow;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use postgres_types::Type;

use crate::door::SchemaName;
use crate::door::Tenant;
use crate::error::{Error, LifecycleError, MigrateError, Result, TimeLimit};
use crate::exec::Client;
use crate::exec::Executor;
use crate::exec::PgRef;
use crate::lifecycle::lock_schema;
use crate::lifecycle::Registry;
use crate::lifecycle::{not_started, run_jobs, Connections, Job};
use crate::model::ddl::run_statements;
use crate::sql::{default_for_slot, Piece, SchemaMap, Slot, Template};

/// The table, in every tenant schema, that records the migrations applied to it.
pub const VERSION_TABLE: &str = "_tenant_migrations";

/// How long a tenant's migration waits for a lock before it fails (and the other tenants go
/// on): long enough for the application's ordinary transactions to finish, short enough
/// that the application's queries, which queue behind a waiting `ALTER TABLE`, are not held
/// for long. [`Migrator::lock_timeout`] changes it.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(5);

/// How long one statement of a migration may run ([`Migrator::statement_timeout`]): room
/// for an index build or a table rewrite on a large tenant, a bound on a runaway one.
pub const DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_secs(10 * 60);

/// The version table of the tenant slot's schema, made if missing (archive import).
pub(crate) static CREATE_VERSION_TABLE: LazyLock<Template> = LazyLock::new(|| {
    Template::builder()
        .sql("CREATE TABLE IF NOT EXISTS ")
        .table(Slot::Tenant, VERSION_TABLE)
        .sql(
            " (version bigint PRIMARY KEY, name text NOT NULL, \
             checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())",
        )
        .build()
});

/// Records one applied migration in the tenant slot's version table (archive import).
pub(crate) static INSERT_APPLIED: LazyLock<Template> = LazyLock::new(|| {
    Template::builder()
        .sql("INSERT INTO ")
        .table(Slot::Tenant, VERSION_TABLE)
        .sql(" (version, name, checksum) VALUES ($1, $2, $3)")
        .build()
});

/// `(version, name, checksum)` of an applied migration.
type Applied = (u64, String, String);

/// `(version, name, checksum)` of each record: what a run checks and plans with.
fn triples(records: Vec<AppliedMigration>) -> Vec<Applied> {
    records
        .into_iter()
        .map(|a| (a.version, a.name, a.checksum))
        .collect()
}

/// The SQL of one schema's version table, rendered once per tenant (each statement runs
/// unnamed: one round trip, nothing prepared that 10,000 schemas would not reuse).
struct VersionTable {
    create: String,
    select: String,
    insert: String,
    delete: String,
}

impl VersionTable {
    fn new(schema: SchemaName) -> VersionTable {
        let table = format!("{}.\"{VERSION_TABLE}\"", schema);
        VersionTable {
            create: format!(
                "CREATE TABLE IF NOT EXISTS {table} (version bigint PRIMARY KEY, name text NOT NULL, \
                 checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
            ),
            select: format!("SELECT version, name, checksum, applied_at FROM {table} ORDER BY version"),
            insert: format!(
                "INSERT INTO {table} (version, name, checksum) VALUES ($1, $2, $3) ON CONFLICT (version) DO NOTHING"
            ),
            delete: format!("DELETE FROM {table} WHERE version = $1"),
        }
    }

    async fn read(&self, pg: PgRef<'_>) -> Result<Vec<Applied>> {
        Ok(triples(self.read_with_times(pg).await?))
    }

    async fn read_with_times(&self, pg: PgRef<'_>) -> Result<Vec<AppliedMigration>> {
        let rows = pg.query_typed(&self.select, &[]).await?;
        rows.iter()
            .map(|r| {
                let version: i64 = r.try_get(0)?;
                Ok(AppliedMigration {
                    version: version as u64,
                    name: r.try_get(1)?,
                    checksum: r.try_get(2)?,
                    applied_at: r.try_get(3)?,
                })
            })
            .collect()
    }

    async fn record(&self, pg: PgRef<'_>, m: &Migration) -> Result<()> {
        let version = i64::try_from(m.version)
            .map_err(|_| Error::from(MigrateError::VersionOutOfRange { version: m.version }))?;
        pg.execute_typed(
            &self.insert,
            &[
                (&version, Type::INT8),
                (&m.name(), Type::TEXT),
                (&m.checksum(), Type::TEXT),
            ],
        )
        .await?;
        Ok(())
    }

    async fn forget(&self, pg: PgRef<'_>, version: u64) -> Result<()> {
        let version = version as i64;
        pg.execute_typed(&self.delete, &[(&version, Type::INT8)])
            .await?;
        Ok(())
    }

    /// Records `outcome`'s versions as applied and forgets its removed ones.
    async fn stamp(&self, pg: PgRef<'_>, outcome: &Outcome, known: &Migrations) -> Result<()> {
        let Outcome::Stamped { recorded, removed } = outcome else {
            return Ok(());
        };
        for v in removed {
            self.forget(pg, *v).await?;
        }
        for m in recorded.iter().filter_map(|v| known.get(*v)) {
            self.record(pg, m).await?;
        }
        Ok(())
    }
}

/// What one schema needs to reach the target.
struct Plan<'m> {
    /// Newest first.
    down: Vec<&'m Migration>,
    /// Oldest first.
    up: Vec<&'m Migration>,
}

impl Plan<'_> {
    fn is_empty(&self) -> bool {
        self.down.is_empty() && self.up.is_empty()
    }

    fn outcome(&self, dry_run: bool) -> Outcome {
        let versions = |list: &[&Migration]| list.iter().map(|m| m.version).collect::<Vec<_>>();
        let (down, up) = (versions(&self.down), versions(&self.up));
        match (down.is_empty(), dry_run) {
            (true, false) => Outcome::Applied(up),
            (true, true) => Outcome::Pending(up),
            (false, false) => Outcome::RolledBack {
                versions: down,
                then_applied: up,
            },
            (false, true) => Outcome::PendingRollback {
                versions: down,
                then_applied: up,
            },
        }
    }

    /// Runs the down sections, then the up migrations, each recorded in `vt`.
    async fn apply(
        &self,
        pg: PgRef<'_>,
        vt: &VersionTable,
        render: &(dyn Fn(&Template) -> Result<String> + Sync),
        failed: &(dyn Fn(&Migration, Error) -> Error + Sync),
    ) -> Result<()> {
        for m in &self.down {
            let statements = m.down.as_deref().unwrap_or_default();
            let sql = statements
                .iter()
                .map(render)
                .collect::<Result<Vec<_>>>()
                .map_err(|e| failed(m, e))?;
            run_statements(pg, &sql).await.map_err(|e| failed(m, e))?;
            vt.forget(pg, m.version).await.map_err(|e| failed(m, e))?;
        }
        for m in &self.up {
            let sql = m
                .statements
                .iter()
                .map(render)
                .collect::<Result<Vec<_>>>()
                .map_err(|e| failed(m, e))?;
            run_statements(pg, &sql).await.map_err(|e| failed(m, e))?;
            vt.record(pg, m).await.map_err(|e| failed(m, e))?;
        }
        Ok(())
    }
}

/// What `stamp(version)` does to a schema that has `applied`: record every tenant
/// migration up to `version` not recorded yet, forget the recorded ones above it.
fn stamp_plan<'m>(
    migrations: impl Iterator<Item = &'m Migration>,
    applied: &[Applied],
    version: u64,
) -> Outcome {
    let is_applied = |v: u64| applied.binary_search_by_key(&v, |a| a.0).is_ok();
    let (mut recorded, mut removed) = (Vec::new(), Vec::new());
    for m in migrations {
        if m.version <= version && !is_applied(m.version) {
            recorded.push(m.version);
        } else if m.version > version && is_applied(m.version) {
            removed.push(m.version);
        }
    }
    Outcome::Stamped { recorded, removed }
}

/// What a run does to each schema.
#[derive(Clone, Copy, Debug)]
enum Mode {
    /// Roll back and apply to reach the target.
    Migrate,
    /// Record versions up to this one as applied without running them.
    Stamp(u64),
}

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
    down: Option<Cow<'static, [Template]>>,
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
        down: Option<&'static [Template]>,
    ) -> Migration {
        Migration {
            version,
            name: Cow::Borrowed(name),
            file_name: Cow::Borrowed(file_name),
            checksum: Cow::Borrowed(checksum),
            template: Template::from_static(pieces),
            statements: Cow::Borrowed(statements),
            down: match down {
                Some(down) => Some(Cow::Borrowed(down)),
                None => None,
            },
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

    /// The statements of the file's down section (after a line `-- down`), which
    /// [`Migrator::to`] runs to roll the migration back; `None` if the file has none.
    ///
    /// ```
    /// # use tenant_runtime::Migrations;
    /// static MIGRATIONS: Migrations = tenant_runtime::embed_migrations!("examples/migrations");
    /// let first = MIGRATIONS.get(1).unwrap();
    /// assert!(first.down().unwrap()[0].to_string().starts_with("DROP TABLE {tenant}"));
    /// ```
    pub fn down(&self) -> Option<&[Template]> {
        self.down.as_deref()
    }

    /// Whether this is a shared migration: one that names no `{tenant}` (only named slots,
    /// or no schema at all), so it runs once ([`Migrator::run_shared`]), not per tenant.
    ///
    /// ```
    /// # use tenant_runtime::Migrations;
    /// static MIGRATIONS: Migrations = tenant_runtime::embed_migrations!("examples/migrations");
    /// assert!(!MIGRATIONS.get(1).unwrap().is_shared());
    /// ```
    pub fn is_shared(&self) -> bool {
        !self
            .statements
            .iter()
            .chain(self.down.iter().flat_map(|d| d.iter()))
            .any(|t| t.slots().any(|s| s == Slot::Tenant))
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
#[cfg_attr(
    feature = "migrations-dir",
    doc = "(feature `migrations-dir`) [`Migrations::from_dir`]."
)]
#[cfg_attr(
    not(feature = "migrations-dir"),
    doc = "(feature `migrations-dir`) `Migrations::from_dir`."
)]
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
                down: m.down.map(|down| down.into_iter().map(template).collect()),
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
    // Issue 13, part 3: versions.
    /// [`Migrator::to`] a lower version: these were rolled back (their down sections run,
    /// newest first), then `then_applied` applied; committed together.
    RolledBack {
        /// Rolled back, newest first.
        versions: Vec<u64>,
        /// Applied afterwards (versions at or below the target that were missing).
        then_applied: Vec<u64>,
    },
    /// Dry run of [`Migrator::to`] a lower version: what would be rolled back, then applied.
    PendingRollback {
        /// Would be rolled back, newest first.
        versions: Vec<u64>,
        /// Would be applied afterwards.
        then_applied: Vec<u64>,
    },
    /// [`Migrator::stamp`]: versions recorded as applied without running them, and
    /// recorded versions above the stamp forgotten (nothing was run either way).
    Stamped {
        /// Recorded as applied.
        recorded: Vec<u64>,
        /// Removed from the version table.
        removed: Vec<u64>,
    },
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
            Outcome::RolledBack {
                versions: v,
                then_applied,
            } => {
                write!(f, "rolled back {}", versions(v))?;
                if !then_applied.is_empty() {
                    write!(f, "; applied {}", versions(then_applied))?;
                }
                Ok(())
            }
            Outcome::PendingRollback {
                versions: v,
                then_applied,
            } => {
                write!(f, "would roll back {}", versions(v))?;
                if !then_applied.is_empty() {
                    write!(f, "; would apply {}", versions(then_applied))?;
                }
                Ok(())
            }
            Outcome::Stamped { recorded, removed } => {
                match recorded.is_empty() {
                    true => f.write_str("stamped: nothing to record")?,
                    false => write!(
                        f,
                        "stamped: recorded {} without running them",
                        versions(recorded)
                    )?,
                }
                if !removed.is_empty() {
                    write!(f, "; forgot {}", versions(removed))?;
                }
                Ok(())
            }
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
    /// Tenants rolled back ([`Outcome::RolledBack`]).
    pub rolled_back: usize,
    /// Tenants stamped ([`Outcome::Stamped`]).
    pub stamped: usize,
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
                Outcome::RolledBack { .. } => c.rolled_back += 1,
                Outcome::PendingRollback { .. } => c.pending += 1,
                Outcome::Stamped { .. } => c.stamped += 1,
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
        )?;
        if c.rolled_back > 0 {
            write!(f, ", {} rolled back", c.rolled_back)?;
        }
        if c.stamped > 0 {
            write!(f, ", {} stamped", c.stamped)?;
        }
        Ok(())
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
/// Every wait is bounded: each tenant's transaction sets `lock_timeout`
/// ([`DEFAULT_LOCK_TIMEOUT`]) and `statement_timeout` ([`DEFAULT_STATEMENT_TIMEOUT`]), so a
/// table the application keeps locked fails that tenant with [`MigrateError::TimedOut`]
/// instead of holding up the run. A connection that dies is replaced or left (see
/// [`Connections`]) and its tenant run again; [`on_progress`](Migrator::on_progress) sees
/// each tenant as it finishes.
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
    lock_timeout: Duration,
    statement_timeout: Duration,
    target: Option<u64>,
    mode: Mode,
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
            lock_timeout: DEFAULT_LOCK_TIMEOUT,
            statement_timeout: DEFAULT_STATEMENT_TIMEOUT,
            target: None,
            mode: Mode::Migrate,
        }
    }

    /// Migrate each tenant to `version` instead of the latest: up (the missing versions up
    /// to it) or down (the applied versions above it, newest first, by their `-- down`
    /// sections), in the tenant's one transaction. `0` rolls every migration back. A
    /// version this set does not have makes [`run`](Migrator::run) fail before anything
    /// runs ([`MigrateError::UnknownVersion`]); an applied version above it without a down
    /// section fails that tenant ([`MigrateError::NoDown`]), with nothing changed.
    ///
    /// ```no_run
    /// # use tenant_runtime::{embed_migrations, Allowlist, Client, Migrations, Migrator};
    /// # static MIGRATIONS: Migrations = embed_migrations!("examples/migrations");
    /// # async fn run() -> Result<(), tenant_runtime::Error> {
    /// # let mut client = Client::connect("postgres://postgres@127.0.0.1/postgres").await?;
    /// # let tenants = Allowlist::from_pairs([("acme", "tenant_acme")])?.tenants();
    /// let report = Migrator::new(&MIGRATIONS).to(1).run(&mut client, &tenants).await?;
    /// println!("{report}"); // acme (tenant_acme): rolled back 2
    /// # Ok(()) }
    /// ```
    pub fn to(mut self, version: u64) -> Migrator<'m> {
        self.target = Some(version);
        self
    }

    /// How long a tenant waits for any lock (the schema's advisory lock, a table the
    /// application holds) before it fails with [`MigrateError::TimedOut`]; the other tenants
    /// go on. `Duration::ZERO` waits without bound. Default [`DEFAULT_LOCK_TIMEOUT`]; set as
    /// `lock_timeout` for the tenant's transaction only.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tenant_runtime::{embed_migrations, Migrations, Migrator};
    /// static MIGRATIONS: Migrations = embed_migrations!("examples/migrations");
    ///
    /// let migrator = Migrator::new(&MIGRATIONS)
    ///     .lock_timeout(Duration::from_secs(2))
    ///     .statement_timeout(Duration::from_secs(30 * 60));
    /// ```
    pub fn lock_timeout(mut self, timeout: Duration) -> Migrator<'m> {
        self.lock_timeout = timeout;
        self
    }

    /// How long one statement of a migration may run before its tenant fails with
    /// [`MigrateError::TimedOut`]. `Duration::ZERO`: no bound. Default
    /// [`DEFAULT_STATEMENT_TIMEOUT`]; set as `statement_timeout` for the tenant's
    /// transaction only.
    pub fn statement_timeout(mut self, timeout: Duration) -> Migrator<'m> {
        self.statement_timeout = timeout;
        self
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
        if let Some(target) = self.target {
            self.check_target(target)?;
        }
        let mut opened = Vec::new();
        let (clients, reconnect) = on.into().open(tenants.len(), &mut opened).await?;
        Ok(self.run_on(clients, tenants, reconnect).await)
    }

    /// Records the tenant migrations up to `version` as applied to each tenant, without
    /// running them, and forgets recorded ones above it: `Alembic stamp`, to adopt a schema
    /// that was built by hand (or by an older tool) into the version table. Checksums are
    /// this build's; the schemas are not changed otherwise. Each tenant reports
    /// [`Outcome::Stamped`]; with [`dry_run`](Migrator::dry_run) nothing is written.
    ///
    /// ```no_run
    /// # use tenant_runtime::{embed_migrations, Allowlist, Client, Migrations, Migrator};
    /// # static MIGRATIONS: Migrations = embed_migrations!("examples/migrations");
    /// # async fn run() -> Result<(), tenant_runtime::Error> {
    /// # let mut client = Client::connect("postgres://postgres@127.0.0.1/postgres").await?;
    /// # let tenants = Allowlist::from_pairs([("acme", "tenant_acme")])?.tenants();
    /// // tenant_acme was made by hand as migration 2 would leave it:
    /// let report = Migrator::new(&MIGRATIONS).stamp(&mut client, &tenants, 2).await?;
    /// assert!(report.is_success());
    /// # Ok(()) }
    /// ```
    pub async fn stamp(
        &self,
        on: impl Into<Connections<'_>>,
        tenants: &[Tenant],
        version: u64,
    ) -> Result<MigrationReport> {
        self.check_target(version)?;
        let mut stamper = self.clone();
        stamper.mode = Mode::Stamp(version);
        stamper.target = None;
        let mut opened = Vec::new();
        let (clients, reconnect) = on.into().open(tenants.len(), &mut opened).await?;
        Ok(stamper.run_on(clients, tenants, reconnect).await)
    }

    /// Each tenant's applied migrations (version, name, checksum, when) and the pending
    /// ones, read over `on` without locking or changing anything. [`TenantHistory::current`]
    /// is the tenant's version.
    ///
    /// ```no_run
    /// # use tenant_runtime::{embed_migrations, Allowlist, Client, Migrations, Migrator};
    /// # static MIGRATIONS: Migrations = embed_migrations!("examples/migrations");
    /// # async fn run() -> Result<(), tenant_runtime::Error> {
    /// # let mut client = Client::connect("postgres://postgres@127.0.0.1/postgres").await?;
    /// # let tenants = Allowlist::from_pairs([("acme", "tenant_acme")])?.tenants();
    /// for h in Migrator::new(&MIGRATIONS).history(&mut client, &tenants).await? {
    ///     println!("{}: at {:?}, pending {:?}", h.tenant.key(), h.current(), h.pending);
    ///     for m in &h.applied {
    ///         println!("  {} {} applied {:?}", m.version, m.name, m.applied_at);
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn history(
        &self,
        on: impl Into<Connections<'_>>,
        tenants: &[Tenant],
    ) -> Result<Vec<TenantHistory>> {
        let mut opened = Vec::new();
        let (clients, reconnect) = on.into().open(tenants.len(), &mut opened).await?;
        let never = AtomicBool::new(false);
        let job = HistoryJob(self);
        let results = run_jobs(clients, tenants, &never, &job, &|_, _| {}, reconnect).await;
        let why = not_started(clients.len(), &results);
        Ok(results
            .into_iter()
            .zip(tenants)
            .map(|(h, tenant)| {
                h.unwrap_or_else(|| TenantHistory {
                    tenant: tenant.clone(),
                    applied: Vec::new(),
                    pending: Vec::new(),
                    error: Some(why()),
                })
            })
            .collect())
    }

    /// Applies the shared migrations (those that name no `{tenant}`: tables in named slots,
    /// extensions) once, recorded in the version table of `home`'s schema (the registry's:
    /// one per database, like them), in one transaction under that schema's advisory lock.
    /// The same rules as per tenant: checksums checked, a version missing below the latest
    /// applied one refused, [`to`](Migrator::to) and [`dry_run`](Migrator::dry_run)
    /// honoured. Per-tenant runs skip shared migrations; run this first when tenant
    /// migrations refer to shared tables. A failure is the `Err`
    /// ([`MigrateError::SharedFailed`]), with nothing applied.
    ///
    /// ```no_run
    /// # use tenant_runtime::{embed_migrations, Client, Migrations, Migrator, Registry, SchemaMap};
    /// # static MIGRATIONS: Migrations = embed_migrations!("examples/migrations");
    /// # async fn run() -> Result<(), tenant_runtime::Error> {
    /// let mut client = Client::connect("postgres://postgres@127.0.0.1/postgres").await?;
    /// let outcome = Migrator::new(&MIGRATIONS)
    ///     .with_schema_map(SchemaMap::new().with("shared", "public")?)
    ///     .run_shared(&mut client, &Registry::default())
    ///     .await?;
    /// println!("shared: {outcome}");
    /// # Ok(()) }
    /// ```
    pub async fn run_shared(&self, client: &mut Client, home: &Registry) -> Result<Outcome> {
        if let Some(target) = self.target {
            self.check_target(target)?;
        }
        let schema = home.schema();
        let tx = client.transaction().await?;
        let pg = Executor::pg(&tx);
        let vt = VersionTable::new(schema);
        let Some(applied) = self
            .open_version_table(pg, &vt, schema, false)
            .await?
            .map(triples)
        else {
            return Err(Error::Lifecycle(LifecycleError::RegistryNotInstalled {
                schema: schema.as_str().into(),
            }));
        };
        self.check_applied(schema, &applied)?;
        let plan = self.plan(schema, &applied, true)?;
        if plan.is_empty() {
            return Ok(Outcome::UpToDate);
        }
        if self.dry_run {
            return Ok(plan.outcome(true));
        }
        let conn_map = Executor::conn_state(&tx).map.clone();
        let render = |t: &Template| -> Result<String> {
            let mut failed = None;
            let sql = t.render(|slot| {
                let resolved = match slot {
                    Slot::Named(name) => match self.map.get(name).or_else(|| conn_map.get(name)) {
                        Some(s) => Ok(s),
                        None => default_for_slot(name).map_err(Error::from),
                    },
                    Slot::Tenant => Err(MigrateError::Invalid {
                        problems: vec!["a shared migration names {tenant}".into()],
                    }
                    .into()),
                };
                resolved.unwrap_or_else(|e| {
                    failed = Some(e);
                    schema
                })
            });
            failed.map_or(Ok(sql), Err)
        };
        let failed = |m: &Migration, source: Error| {
            Error::from(MigrateError::SharedFailed {
                schema: schema.as_str().into(),
                version: m.version,
                name: m.name.to_string(),
                source: Box::new(source),
            })
        };
        plan.apply(pg, &vt, &render, &failed).await?;
        tx.commit().await?;
        Ok(plan.outcome(false))
    }

    /// `version` is 0 or a tenant migration of this set.
    fn check_target(&self, version: u64) -> Result<()> {
        if version == 0 || self.migrations.get(version).is_some() {
            return Ok(());
        }
        Err(MigrateError::UnknownVersion {
            version,
            known: self.migrations.iter().map(|m| m.version).collect(),
        }
        .into())
    }

    async fn run_on(
        &self,
        clients: &mut [Client],
        tenants: &[Tenant],
        reconnect: Option<&str>,
    ) -> MigrationReport {
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
        let results = run_jobs(clients, tenants, &stop, self, &on_done, reconnect).await;
        let stopped = stop.load(Ordering::Relaxed);
        let why = not_started(clients.len(), &results);
        let tenants = results
            .into_iter()
            .zip(tenants)
            .map(|(result, tenant)| {
                result.unwrap_or_else(|| TenantReport {
                    tenant: tenant.clone(),
                    // Not started: after a fail-fast stop (or with no client), or because
                    // every connection was lost (and none could be replaced) before its turn.
                    outcome: if stopped || clients.is_empty() {
                        Outcome::NotRun
                    } else {
                        Outcome::Failed(why())
                    },
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
            Err(e) => Outcome::Failed(self.classify(tenant, client.is_closed(), e)),
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
        let vt = VersionTable::new(schema);
        let Some(applied) = self
            .open_version_table(pg, &vt, schema, false)
            .await?
            .map(triples)
        else {
            return Err(Error::Lifecycle(LifecycleError::SchemaNotFound {
                schema: schema.as_str().into(),
            }));
        };
        *version_before = applied
            .iter()
            .filter(|a| self.migrations.get(a.0).is_none_or(|m| !m.is_shared()))
            .map(|a| a.0)
            .max();
        self.check_applied(schema, &applied)?;
        if let Mode::Stamp(version) = self.mode {
            let outcome = stamp_plan(self.tenant_migrations(), &applied, version);
            if !self.dry_run {
                vt.stamp(pg, &outcome, self.migrations).await?;
                tx.commit().await?;
            }
            return Ok(outcome);
        }
        let plan = self.plan(schema, &applied, false)?;
        if plan.is_empty() {
            return Ok(Outcome::UpToDate);
        }
        if self.dry_run {
            return Ok(plan.outcome(true));
        }
        let failed = |m: &Migration, source: Error| {
            Error::from(MigrateError::Failed {
                tenant: tenant.key().into(),
                schema: schema.as_str().into(),
                version: m.version,
                name: m.name.to_string(),
                source: Box::new(source),
            })
        };
        let render = |t: &Template| tx.render(t, None);
        plan.apply(pg, &vt, &render, &failed).await?;
        tx.commit().await?;
        Ok(plan.outcome(false))
    }

    /// Sets the transaction's time limits, takes the schema's advisory lock (not in a dry
    /// run), makes the version table if missing (not in a dry run; `None` if the schema does
    /// not exist) and reads it, once: each record with its time (for history).
    async fn open_version_table(
        &self,
        pg: PgRef<'_>,
        vt: &VersionTable,
        schema: SchemaName,
        read_only: bool,
    ) -> Result<Option<Vec<AppliedMigration>>> {
        // Before the first lock is asked for, so the advisory lock's wait is bounded too.
        pg.query_typed(
            "SELECT set_config('lock_timeout', $1, true), set_config('statement_timeout', $2, true)",
            &[
                (&millis(self.lock_timeout), Type::TEXT),
                (&millis(self.statement_timeout), Type::TEXT),
            ],
        )
        .await?;
        let writes = !self.dry_run && !read_only;
        if writes {
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
            return Ok(None);
        }
        if table_found {
            return Ok(Some(vt.read_with_times(pg).await?));
        }
        if writes {
            run_statements(pg, std::slice::from_ref(&vt.create)).await?;
        }
        Ok(Some(Vec::new()))
    }

    /// The tenant migrations (those that name `{tenant}`), by version.
    fn tenant_migrations(&self) -> impl Iterator<Item = &'m Migration> + '_ {
        self.migrations.list.iter().filter(|m| !m.is_shared())
    }

    /// What to roll back (newest first) and apply (oldest first) to reach the target, or why
    /// not: a version missing below the latest applied one, a rollback without a down
    /// section.
    fn plan(&self, schema: SchemaName, applied: &[Applied], shared: bool) -> Result<Plan<'m>> {
        let of_kind = |m: &&Migration| m.is_shared() == shared;
        let known: Vec<&'m Migration> = self.migrations.list.iter().filter(of_kind).collect();
        let target = self
            .target
            .unwrap_or_else(|| known.last().map_or(0, |m| m.version));
        let is_applied = |v: u64| applied.binary_search_by_key(&v, |a| a.0).is_ok();
        let mut down: Vec<&'m Migration> = known
            .iter()
            .copied()
            .filter(|m| m.version > target && is_applied(m.version))
            .collect();
        down.reverse();
        if let Some(m) = down.iter().find(|m| m.down.is_none()) {
            return Err(MigrateError::NoDown {
                schema: schema.as_str().into(),
                version: m.version,
                name: m.name().into(),
                target,
            }
            .into());
        }
        let kept_latest = known
            .iter()
            .filter(|m| m.version <= target && is_applied(m.version))
            .map(|m| m.version)
            .max();
        if let Some(latest) = kept_latest {
            let missing: Vec<u64> = known
                .iter()
                .filter(|m| m.version < latest && !is_applied(m.version))
                .map(|m| m.version)
                .collect();
            if !missing.is_empty() {
                return Err(MigrateError::MissingBelowApplied {
                    schema: schema.as_str().into(),
                    missing,
                    latest,
                }
                .into());
            }
        }
        let up = known
            .iter()
            .copied()
            .filter(|m| m.version <= target && !is_applied(m.version))
            .collect();
        Ok(Plan { down, up })
    }

    /// Every applied migration checked against this build: known, and unchanged.
    fn check_applied(&self, schema: SchemaName, applied: &[Applied]) -> Result<()> {
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
        Ok(())
    }

    /// A lock or statement timeout, or a lost connection, as its own typed error (the
    /// server's error stays the source of the others).
    fn classify(&self, tenant: &Tenant, closed: bool, error: Error) -> Error {
        let (version, name, cause) = match &error {
            Error::Migrate(m) => match &**m {
                MigrateError::Failed {
                    version,
                    name,
                    source,
                    ..
                } => (Some(*version), Some(name.clone()), &**source),
                _ => return error,
            },
            other => (None, None, other),
        };
        let (tenant_key, schema) = (tenant.key().to_owned(), tenant.schema().as_str().to_owned());
        let lost = match cause {
            Error::Db(e) => e.is_closed() || e.code().is_some_and(|c| c.code().starts_with("57P0")),
            _ => false,
        };
        if closed || lost {
            return MigrateError::ConnectionLost {
                tenant: tenant_key,
                schema,
                source: Box::new(error),
            }
            .into();
        }
        let limit = match cause {
            Error::Db(e) => match e.as_db_error() {
                Some(db) if db.code().code() == "55P03" => Some(TimeLimit::Lock),
                Some(db)
                    if db.code().code() == "57014"
                        && db.message().contains("statement timeout") =>
                {
                    Some(TimeLimit::Statement)
                }
                _ => None,
            },
            _ => None,
        };
        match limit {
            Some(limit) => MigrateError::TimedOut {
                tenant: tenant_key,
                schema,
                version,
                name,
                limit,
                after: match limit {
                    TimeLimit::Lock => self.lock_timeout,
                    _ => self.statement_timeout,
                },
            }
            .into(),
            None => error,
        }
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

    fn lost_connection(&self, report: &TenantReport) -> bool {
        matches!(&report.outcome, Outcome::Failed(Error::Migrate(m))
            if matches!(**m, MigrateError::ConnectionLost { .. }))
    }
}

/// A duration as a PostgreSQL setting in milliseconds (`0`: no limit).
fn millis(d: Duration) -> String {
    format!("{}ms", d.as_millis())
}

impl fmt::Debug for Migrator<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Migrator")
            .field("migrations", &self.migrations.len())
            .field("fail_fast", &self.fail_fast)
            .field("dry_run", &self.dry_run)
            .field("map", &self.map)
            .field("lock_timeout", &self.lock_timeout)
            .field("statement_timeout", &self.statement_timeout)
            .finish_non_exhaustive()
    }
}

/// One applied migration, as the version table records it ([`TenantHistory`]).
///
/// ```
/// use std::time::SystemTime;
/// use tenant_runtime::lifecycle::AppliedMigration;
/// let m = AppliedMigration::new(1, "create_notes", "ab12", SystemTime::UNIX_EPOCH);
/// assert_eq!((m.version, m.name.as_str()), (1, "create_notes"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AppliedMigration {
    /// Its version.
    pub version: u64,
    /// Its name when it was applied.
    pub name: String,
    /// The checksum recorded when it was applied (or stamped).
    pub checksum: String,
    /// When it was applied (or stamped), by the database's clock.
    pub applied_at: std::time::SystemTime,
}

impl AppliedMigration {
    /// A record (for tests and tools that compare histories).
    pub fn new(
        version: u64,
        name: &str,
        checksum: &str,
        applied_at: std::time::SystemTime,
    ) -> AppliedMigration {
        AppliedMigration {
            version,
            name: name.into(),
            checksum: checksum.into(),
            applied_at,
        }
    }
}

/// One tenant's migrations ([`Migrator::history`]): what its version table records, and the
/// tenant migrations of this set not applied yet.
///
/// ```no_run
/// # use tenant_runtime::{embed_migrations, Allowlist, Client, Migrations, Migrator};
/// # static MIGRATIONS: Migrations = embed_migrations!("examples/migrations");
/// # async fn run() -> Result<(), tenant_runtime::Error> {
/// # let mut client = Client::connect("postgres://postgres@127.0.0.1/postgres").await?;
/// # let tenants = Allowlist::from_pairs([("acme", "tenant_acme")])?.tenants();
/// let history = Migrator::new(&MIGRATIONS).history(&mut client, &tenants).await?;
/// assert_eq!(history[0].current(), Some(2));
/// assert!(history[0].pending.is_empty());
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub struct TenantHistory {
    /// The tenant.
    pub tenant: Tenant,
    /// Recorded migrations, by version.
    pub applied: Vec<AppliedMigration>,
    /// Tenant migrations of this set not recorded, by version.
    pub pending: Vec<u64>,
    /// Why the history could not be read (e.g. the schema does not exist).
    pub error: Option<Error>,
}

impl TenantHistory {
    /// The highest recorded version (`None`: nothing applied).
    pub fn current(&self) -> Option<u64> {
        self.applied.last().map(|a| a.version)
    }
}

/// Reads one tenant's history (a job of [`Migrator::history`]).
struct HistoryJob<'a, 'm>(&'a Migrator<'m>);

impl Job<Tenant> for HistoryJob<'_, '_> {
    type Output = TenantHistory;
    fn run<'a>(
        &'a self,
        client: &'a mut Client,
        tenant: &'a Tenant,
    ) -> impl std::future::Future<Output = TenantHistory> + Send + 'a {
        self.0.history_one(client, tenant)
    }
}

impl Migrator<'_> {
    async fn history_one(&self, client: &mut Client, tenant: &Tenant) -> TenantHistory {
        let mut history = TenantHistory {
            tenant: tenant.clone(),
            applied: Vec::new(),
            pending: Vec::new(),
            error: None,
        };
        match self.read_history(client, tenant).await {
            Ok(applied) => {
                history.pending = self
                    .tenant_migrations()
                    .filter(|m| {
                        applied
                            .binary_search_by_key(&m.version, |a| a.version)
                            .is_err()
                    })
                    .map(|m| m.version)
                    .collect();
                history.applied = applied;
            }
            Err(e) => history.error = Some(e),
        }
        history
    }

    async fn read_history(
        &self,
        client: &mut Client,
        tenant: &Tenant,
    ) -> Result<Vec<AppliedMigration>> {
        let schema = tenant.schema();
        let tx = client.transaction().await?;
        let pg = Executor::pg(&tx);
        let vt = VersionTable::new(schema);
        // One read of the version table: the records come with their times.
        self.open_version_table(pg, &vt, schema, true)
            .await?
            .ok_or_else(|| {
                Error::Lifecycle(LifecycleError::SchemaNotFound {
                    schema: schema.as_str().into(),
                })
            })
    }
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
    tx: &crate::exec::Db<E>,
    migrations: &Migrations,
) -> Result<Vec<u64>> {
    let pg = tx.executor().pg();
    let tenant = tx.tenant();
    let schema = tenant.schema();
    let table = VersionTable::new(schema);
    let found = pg
        .query_typed(
            "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_class c \
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relname = '_tenant_migrations')",
            &[(&schema.as_str(), Type::TEXT)],
        )
        .await?;
    if found[0].try_get::<_, bool>(0)? && !table.read(pg).await?.is_empty() {
        return Ok(Vec::new());
    }
    run_statements(pg, std::slice::from_ref(&table.create)).await?;
    let mut applied = Vec::with_capacity(migrations.len());
    // Shared migrations run once for all tenants (`Migrator::run_shared`), never per tenant.
    for m in migrations.iter().filter(|m| !m.is_shared()) {
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
        table.record(pg, m).await.map_err(failed)?;
        applied.push(m.version);
    }
    Ok(applied)
}
