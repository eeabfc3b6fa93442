//! Moving a tenant to another database, online: [`Mover`].

use std::time::Duration;

use postgres_types::Type;

use super::catalog::{self, qualified};
use super::export::write_archive;
use super::format::{FrameReader, TableSummary};
use super::import::Importer;
use crate::door::{Allowlist, Tenant};
use crate::error::{ArchiveError, Error, Result};
use crate::exec::Client;
use crate::lifecycle::{Migrations, Provisioner, Retired};
use crate::pool::DatabaseRegistry;

/// The SQLSTATE a write to a moved tenant's old tables fails with: `40001`
/// (`serialization_failure`), the code applications already retry a transaction on. The
/// retry resolves the tenant's route again and finds the new database.
pub const MOVED_SQLSTATE: &str = "40001";

/// What [`Mover::move_tenant`] did.
///
/// ```no_run
/// use tenant_runtime::lifecycle::archive::Mover;
/// use tenant_runtime::pool::DatabaseRegistry;
/// # async fn run(shared: &tenant_runtime::Provisioner, own: &tenant_runtime::Provisioner, client: &mut tenant_runtime::Client, routes: &DatabaseRegistry, acme: &tenant_runtime::Tenant) -> Result<(), tenant_runtime::Error> {
/// let moved = Mover::new(shared, own)
///     .move_tenant(client, "postgres://app@db-acme/app", routes, acme)
///     .await?;
/// match &moved.retired {
///     Ok(retired) => println!("old schema kept as {}", retired.renamed_to),
///     Err(e) => eprintln!("moved, but the old schema is not retired yet: {e}"),
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub struct Moved {
    /// The tenant (same key and schema, now in the target database).
    pub tenant: Tenant,
    /// Each table's rows and checksum, as exported from the source and verified in the target.
    pub tables: Vec<TableSummary>,
    /// The retirement of the old schema in the source database (its registry row retired,
    /// the schema renamed to `<schema>_deleted_<date>`, never dropped here). The move itself
    /// is complete when this fails: the tenant is served by the target, and the old tables
    /// refuse writes; retire it again with [`Provisioner::retire`].
    pub retired: Result<Retired>,
}

/// Moves a tenant from one database to another (from the shared database to one of its own,
/// or back) while it keeps serving, through the [`DatabaseRegistry`] the application routes
/// by ([`TenantDatabases`](crate::pool::TenantDatabases)).
///
/// 1. In the source, one `REPEATABLE READ` transaction locks the tenant's tables in
///    `EXCLUSIVE` mode, waiting at most [`lock_timeout`](Mover::lock_timeout) for the
///    transactions writing them to end: from then on **writes wait** (reads go on), and the
///    snapshot holds every committed write.
/// 2. The tables stream, as an archive through memory (no file), into the target database,
///    where the tenant is provisioned and loaded in one transaction by an [`Importer`] (same
///    key, same schema; the target's provisioner and, optionally, migrations make its
///    tables), with every check an import makes; the row counts and checksums read in the
///    target must equal those written by the source.
/// 3. The target commits; then the source commits a trigger on each old table that fails
///    every write with SQLSTATE [`MOVED_SQLSTATE`] (`40001`): the waiting writes fail with
///    it and are retried by the application, as are writes through connections that still
///    hold the old route; none lands in the old tables.
/// 4. The route is flipped: `routes` sends the tenant to `target_url` (and, with
///    [`with_routes_table`](Mover::with_routes_table), the source's routes table says so
///    from the source commit on).
/// 5. The old schema is retired in the source ([`Moved::retired`]), not dropped.
///
/// A failure before step 3's source commit (the target unreachable or killed mid-copy, a
/// refused archive, the lock not granted) rolls both transactions back: the tenant stays
/// where it was, serving, with nothing left in the target. If the source's commit itself
/// fails after the target's, the copy in the target is dropped again (best effort) and the
/// route is not flipped.
///
/// Other processes route by their own [`DatabaseRegistry`]: refresh them (e.g.
/// [`refresh_from_table`](DatabaseRegistry::refresh_from_table) of the routes table) when
/// this returns; until then their writes to the tenant fail with `40001`.
///
/// The hold is the source's table locks, not a registry state: every writer, in any
/// process, waits on the database itself, and nothing needs cleaning up after a crash of
/// the mover (its transaction just ends).
///
/// ```no_run
/// use tenant_runtime::lifecycle::archive::Mover;
/// use tenant_runtime::pool::DatabaseRegistry;
/// use tenant_runtime::{Allowlist, Client, Model, ModelSet, Provisioner};
///
/// #[derive(Model)]
/// #[tenant(table = "notes")]
/// struct Note { #[tenant(primary_key, identity)] id: i64, body: String }
///
/// # async fn run() -> Result<(), tenant_runtime::Error> {
/// let models = ModelSet::new().with::<Note>();
/// let shared = Provisioner::new(models.clone())?;
/// let own = Provisioner::new(models)?;
/// let routes = DatabaseRegistry::from_pairs([("acme", "postgres://app@db-shared/app")])?;
/// let mut client = Client::connect("postgres://app@db-shared/app").await?;
/// own.install(&Client::connect("postgres://app@db-acme/app").await?).await?;
/// let acme = Allowlist::load_from_registry(&client, shared.registry()).await?.resolve("acme")?;
///
/// let moved = Mover::new(&shared, &own)
///     .move_tenant(&mut client, "postgres://app@db-acme/app", &routes, &acme)
///     .await?;
/// assert_eq!(routes.config("acme").unwrap().get_hosts().len(), 1);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Mover<'p> {
    source: &'p Provisioner,
    target: &'p Provisioner,
    importer: Importer<'p>,
    lock_timeout: Duration,
    routes_table: Option<String>,
}

impl<'p> Mover<'p> {
    /// A mover from the database `source` provisions (whose registry holds the tenant) to
    /// the database `target` provisions (installed there: its registry, shared tables).
    ///
    /// ```
    /// # use tenant_runtime::{lifecycle::archive::Mover, ModelSet, Provisioner};
    /// let (from, to) = (Provisioner::new(ModelSet::new())?, Provisioner::new(ModelSet::new())?);
    /// let mover = Mover::new(&from, &to);
    /// # Ok::<(), tenant_runtime::Error>(())
    /// ```
    pub fn new(source: &'p Provisioner, target: &'p Provisioner) -> Mover<'p> {
        Mover {
            source,
            target,
            importer: Importer::new(target),
            lock_timeout: Duration::from_secs(10),
            routes_table: None,
        }
    }

    /// Also records the new route in the table `schema.table` of the source database (the
    /// table [`DatabaseRegistry::refresh_from_table`] reads: `tenant_key text PRIMARY KEY,
    /// database_url text NOT NULL`), in the source transaction that releases the held
    /// writes, so every process that reloads it sees the move exactly when it happens.
    /// Names that are not identifiers are [`Error::InvalidSchemaName`].
    ///
    /// ```
    /// # use tenant_runtime::{lifecycle::archive::Mover, ModelSet, Provisioner};
    /// # let (from, to) = (Provisioner::new(ModelSet::new())?, Provisioner::new(ModelSet::new())?);
    /// let mover = Mover::new(&from, &to).with_routes_table("public", "tenant_databases")?;
    /// assert!(Mover::new(&from, &to).with_routes_table("public", "x; DROP").is_err());
    /// # Ok::<(), tenant_runtime::Error>(())
    /// ```
    pub fn with_routes_table(mut self, schema: &str, table: &str) -> Result<Mover<'p>> {
        let schema = crate::door::SchemaName::parse(schema)?;
        let table = crate::door::SchemaName::parse(table)?;
        self.routes_table = Some(format!("{schema}.{table}"));
        Ok(self)
    }

    /// The target's tables come from `migrations` (see [`Importer::with_migrations`]).
    pub fn with_migrations(mut self, migrations: &'p Migrations) -> Mover<'p> {
        self.importer = self.importer.with_migrations(migrations);
        self
    }

    /// How long the move waits for the tenant's open write transactions to end before it
    /// gives up (nothing changed; default 10 s). Writes wait behind the move's lock, so keep
    /// it below the application's own timeouts.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use tenant_runtime::{lifecycle::archive::Mover, ModelSet, Provisioner};
    /// # let (from, to) = (Provisioner::new(ModelSet::new())?, Provisioner::new(ModelSet::new())?);
    /// let mover = Mover::new(&from, &to).lock_timeout(Duration::from_secs(2));
    /// # Ok::<(), tenant_runtime::Error>(())
    /// ```
    pub fn lock_timeout(mut self, timeout: Duration) -> Mover<'p> {
        self.lock_timeout = timeout;
        self
    }

    /// Called as the rows arrive in the target (see [`Importer::on_progress`]).
    pub fn on_progress(
        mut self,
        hook: impl Fn(&super::ArchiveProgress<'_>) + Send + Sync + 'static,
    ) -> Mover<'p> {
        self.importer = self.importer.on_progress(hook);
        self
    }

    /// Moves `tenant` from the database of `source` (a connection there) to the database at
    /// `target_url`, and routes it there in `routes` (see [`Mover`] for the steps and what a
    /// failure leaves).
    pub async fn move_tenant(
        &self,
        source: &mut Client,
        target_url: &str,
        routes: &DatabaseRegistry,
        tenant: &Tenant,
    ) -> Result<Moved> {
        let (key, schema) = (tenant.key(), tenant.schema());
        // The URL is checked the way the routes will take it, before anything happens.
        let check = DatabaseRegistry::new();
        check.insert(key, target_url)?;
        let config = check.config(key).expect("just inserted");
        let present = catalog::table_names(source.as_tokio_postgres(), schema).await?;
        let names = catalog::load_order(source.as_tokio_postgres(), schema, &present).await?;
        let mut target = Client::connect(target_url).await?;

        let tables = {
            let mut sdb = source.for_tenant(tenant);
            let stx = sdb.transaction().await?;
            let spg = stx.executor().as_tokio_postgres().client();
            let list: Vec<String> = names.iter().map(|t| qualified(schema, t)).collect();
            let mut hold = format!(
                "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ; SET LOCAL lock_timeout = {}",
                self.lock_timeout.as_millis().max(1)
            );
            if !list.is_empty() {
                hold.push_str(&format!(
                    "; LOCK TABLE {} IN EXCLUSIVE MODE",
                    list.join(", ")
                ));
            }
            spg.batch_execute(&hold).await?;
            let again = catalog::table_names(spg, schema).await?;
            if catalog::load_order(spg, schema, &again).await? != names {
                return Err(ArchiveError::SchemaChanged {
                    schema: schema.as_str().into(),
                }
                .into());
            }
            spg.batch_execute(&refuse_writes_sql(schema, &names))
                .await?;

            let scratch = Allowlist::with_max_len(1).insert(key, schema.as_str())?;
            let mut tdb = target
                .for_tenant(&scratch)
                .with_schema_map(self.target.schema_map().clone());
            let ttx = tdb.transaction().await?;
            let (writer, reader) = tokio::io::duplex(1 << 20);
            let export = write_archive(spg, key, schema, &names, writer, None);
            let import = async {
                let mut reader = FrameReader::new(reader);
                let manifest = self.importer.read_header(&mut reader).await?;
                self.importer
                    .load_within(&ttx, &manifest, &mut reader)
                    .await
            };
            let (exported, imported) = tokio::join!(export, import);
            let (exported, imported) = match (exported, imported) {
                (Ok(e), Ok(i)) => (e, i),
                (Err(e), Ok(_)) | (Ok(_), Err(e)) => return Err(e),
                // The side that failed first is the cause: a truncated stream in the target
                // means the source stopped writing it.
                (Err(e), Err(Error::Archive(t)))
                    if matches!(*t, ArchiveError::Truncated { .. }) =>
                {
                    return Err(e)
                }
                (Err(_), Err(e)) => return Err(e),
            };
            if exported.tables != imported {
                return Err(ArchiveError::MoveUnverified { key: key.into() }.into());
            }
            if let Some(routes_table) = &self.routes_table {
                let sql = format!(
                    "INSERT INTO {routes_table} (tenant_key, database_url) VALUES ($1, $2) \
                     ON CONFLICT (tenant_key) DO UPDATE SET database_url = EXCLUDED.database_url"
                );
                spg.execute_typed(&sql, &[(&key, Type::TEXT), (&target_url, Type::TEXT)])
                    .await?;
            }
            ttx.commit().await?;
            if let Err(e) = stx.commit().await {
                drop(tdb);
                self.drop_copy(&target, tenant).await;
                return Err(e);
            }
            imported
        };
        routes.insert_config(key, config)?;
        let retired = self.source.retire(source, &Allowlist::new(), key).await;
        Ok(Moved {
            tenant: tenant.clone(),
            tables,
            retired,
        })
    }

    /// Drops the target's committed copy of `tenant` (best effort: the source kept it).
    async fn drop_copy(&self, target: &Client, tenant: &Tenant) {
        let pg = target.as_tokio_postgres();
        let _ = pg
            .batch_execute(&format!(
                "DROP SCHEMA IF EXISTS {} CASCADE",
                tenant.schema()
            ))
            .await;
        let sql = format!(
            "DELETE FROM {} WHERE key = $1",
            self.target.registry().table()
        );
        let _ = pg.execute_typed(&sql, &[(&tenant.key(), Type::TEXT)]).await;
    }
}

/// A trigger function in `schema` and a statement trigger on each of `tables` that make
/// every write fail with [`MOVED_SQLSTATE`].
fn refuse_writes_sql(schema: crate::door::SchemaName, tables: &[String]) -> String {
    let function = qualified(schema, "_tenant_moved");
    let mut sql = format!(
        "CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $moved$ \
         BEGIN RAISE EXCEPTION USING ERRCODE = '{MOVED_SQLSTATE}', \
         MESSAGE = format('the tenant of schema %s has moved to another database; retry the transaction on its new route', TG_TABLE_SCHEMA); \
         END $moved$"
    );
    for table in tables {
        let table = qualified(schema, table);
        sql.push_str(&format!(
            "; DROP TRIGGER IF EXISTS \"_tenant_moved\" ON {table}\
             ; CREATE TRIGGER \"_tenant_moved\" BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table} \
             FOR EACH STATEMENT EXECUTE FUNCTION {function}()"
        ));
    }
    sql
}
