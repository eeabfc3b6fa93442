//! Import (an archive into a new tenant) and clone (a tenant into a new tenant), each in one
//! transaction with the provisioning of the new tenant.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::SinkExt;
use postgres_types::Type;
use sha2::{Digest, Sha256};
use tokio::io::AsyncRead;
use tokio_postgres::Client as Pg;

use super::catalog::{self, ident, qualified};
use super::export::ProgressHook;
use super::format::{
    hex, ArchiveProgress, CopyRows, Frame, FrameReader, Manifest, TableSpec, TableSummary,
};
use crate::door::{Allowlist, SchemaName, Tenant};
use crate::error::{ArchiveError, Corruption, IoAction};
use crate::error::{Error, MigrateError, Result};
use crate::exec::{Client, Db, Executor, Transaction};
use crate::lifecycle::provision::{lock_key, schema_exists};
use crate::lifecycle::{
    lock_schema, Migrations, Provisioner, CREATE_VERSION_TABLE, INSERT_APPLIED, VERSION_TABLE,
};
use crate::model::ddl::run_statements;
use crate::sql::Slot;

/// What an import made: the new tenant and, per table, what was loaded into it.
///
/// ```no_run
/// use tenant_runtime::lifecycle::archive::Importer;
/// # async fn run(provisioner: &tenant_runtime::Provisioner, client: &mut tenant_runtime::Client, allowlist: &tenant_runtime::Allowlist) -> Result<(), tenant_runtime::Error> {
/// let imported = Importer::new(provisioner)
///     .import_file(client, allowlist, "acme-copy", "tenant_acme_copy", "acme.tenant")
///     .await?;
/// assert_eq!(allowlist.resolve("acme-copy")?, imported.tenant);
/// println!("from {:?}: {} tables", imported.manifest.source.key, imported.tables.len());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Imported {
    /// The new tenant, as the allowlist now hands it out.
    pub tenant: Tenant,
    /// The manifest of the archive.
    pub manifest: Manifest,
    /// Each table's rows and checksum (verified), in load order.
    pub tables: Vec<TableSummary>,
}

/// What a clone made: the new tenant and the rows copied into each table.
///
/// ```no_run
/// use tenant_runtime::lifecycle::archive::Importer;
/// # async fn run(provisioner: &tenant_runtime::Provisioner, client: &mut tenant_runtime::Client, allowlist: &tenant_runtime::Allowlist) -> Result<(), tenant_runtime::Error> {
/// let acme = allowlist.resolve("acme")?;
/// let demo = Importer::new(provisioner)
///     .clone_tenant(client, allowlist, &acme, "demo-1", "tenant_demo_1")
///     .await?;
/// for (table, rows) in &demo.tables {
///     println!("{table}: {rows} rows");
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Cloned {
    /// The new tenant, as the allowlist now hands it out.
    pub tenant: Tenant,
    /// `(table, rows)` in load order.
    pub tables: Vec<(String, u64)>,
}

/// Where the new tenant's tables come from.
#[derive(Clone, Copy)]
enum Target<'p> {
    /// The provisioner's model set (what provisioning creates).
    Models,
    /// Provisioning, then these migrations, in the same transaction.
    Migrations(&'p Migrations),
}

/// Imports archives into new tenants and clones tenants, through a [`Provisioner`].
///
/// The new tenant is provisioned as usual (schema, grants, tables, registry row; then the
/// allowlist entry), and its data loaded, in **one transaction**: a failure at any step,
/// from a damaged byte to a lost connection, leaves no schema, no registry row and no
/// allowlist entry behind.
///
/// Checks, in order:
/// 1. before anything is sent to the database: the header and the manifest (format version,
///    checksum), the migration version (when one is expected: see
///    [`with_migrations`](Importer::with_migrations) and
///    [`expect_migration_version`](Importer::expect_migration_version)), and, with a model
///    set, that the archive's tables and their column names are the model set's;
/// 2. inside the transaction, after the tables are created and before a row is loaded: the
///    key and the schema are new, and every table's columns and types
///    (`format_type`) are the archive's;
/// 3. while the rows stream in (`COPY ... FROM STDIN (FORMAT binary)`, flat memory, no
///    temporary file): the framing, each table's SHA-256 and row count, the end of the
///    archive. A mismatch rolls the transaction back, so nothing is ever committed from an
///    archive that does not verify.
///
/// Identity and serial columns continue after the imported ids: each sequence is set to
/// the larger of its value at export and the table's highest id.
///
/// ```no_run
/// use tenant_runtime::lifecycle::archive::Importer;
/// use tenant_runtime::{Allowlist, Client, Model, ModelSet, Provisioner};
///
/// #[derive(Model)]
/// #[tenant(table = "notes")]
/// struct Note { #[tenant(primary_key, identity)] id: i64, body: String }
///
/// # async fn run() -> Result<(), tenant_runtime::Error> {
/// let mut client = Client::connect("postgres://postgres@127.0.0.1/postgres").await?;
/// let provisioner = Provisioner::new(ModelSet::new().with::<Note>())?;
/// let allowlist = Allowlist::load_from_registry(&client, provisioner.registry()).await?;
/// let imported = Importer::new(&provisioner)
///     .import_file(&mut client, &allowlist, "acme-copy", "tenant_acme_copy", "acme.tenant")
///     .await?;
/// assert_eq!(allowlist.resolve("acme-copy")?, imported.tenant);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Importer<'p> {
    provisioner: &'p Provisioner,
    target: Target<'p>,
    expected_version: Option<Option<u64>>,
    progress: Option<ProgressHook>,
}

impl std::fmt::Debug for Importer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Importer")
            .field("expected_version", &self.expected_version)
            .finish_non_exhaustive()
    }
}

impl<'p> Importer<'p> {
    /// An importer whose new tenants get the tables of `provisioner`'s model set. The
    /// migration version is not checked unless
    /// [`expect_migration_version`](Importer::expect_migration_version) says which.
    ///
    /// ```
    /// # use tenant_runtime::{lifecycle::archive::Importer, ModelSet, Provisioner};
    /// let provisioner = Provisioner::new(ModelSet::new())?;
    /// let importer = Importer::new(&provisioner);
    /// # Ok::<(), tenant_runtime::Error>(())
    /// ```
    pub fn new(provisioner: &'p Provisioner) -> Importer<'p> {
        Importer {
            provisioner,
            target: Target::Models,
            expected_version: None,
            progress: None,
        }
    }

    /// New tenants get their tables from `migrations`, applied (and recorded in the version
    /// table) in the import's transaction after provisioning, as
    /// [`Migrator`](crate::Migrator) would; the archive must have been exported at
    /// `migrations`' latest version. This is how the `tenant` CLI imports.
    ///
    /// ```
    /// # use tenant_runtime::{lifecycle::archive::Importer, embed_migrations, Migrations, ModelSet, Provisioner};
    /// static MIGRATIONS: Migrations = embed_migrations!("examples/migrations");
    /// let provisioner = Provisioner::new(ModelSet::new())?;
    /// let importer = Importer::new(&provisioner).with_migrations(&MIGRATIONS);
    /// # Ok::<(), tenant_runtime::Error>(())
    /// ```
    pub fn with_migrations(mut self, migrations: &'p Migrations) -> Importer<'p> {
        self.target = Target::Migrations(migrations);
        self.expected_version = Some(migrations.latest_version());
        self
    }

    /// Refuses archives exported at another migration version than `version` (`None`: a
    /// schema with no migration applied) with [`ArchiveError::MigrationVersionMismatch`].
    ///
    /// ```
    /// # use tenant_runtime::{lifecycle::archive::Importer, ModelSet, Provisioner};
    /// # let provisioner = Provisioner::new(ModelSet::new())?;
    /// let importer = Importer::new(&provisioner).expect_migration_version(Some(3));
    /// # Ok::<(), tenant_runtime::Error>(())
    /// ```
    pub fn expect_migration_version(mut self, version: Option<u64>) -> Importer<'p> {
        self.expected_version = Some(version);
        self
    }

    /// Called after each frame loaded and at the end of each table, from the importing task.
    ///
    /// ```
    /// # use tenant_runtime::{lifecycle::archive::Importer, ModelSet, Provisioner};
    /// # let provisioner = Provisioner::new(ModelSet::new())?;
    /// let importer = Importer::new(&provisioner).on_progress(|p| eprintln!("{} rows", p.rows));
    /// # Ok::<(), tenant_runtime::Error>(())
    /// ```
    pub fn on_progress(
        mut self,
        hook: impl Fn(&ArchiveProgress<'_>) + Send + Sync + 'static,
    ) -> Importer<'p> {
        self.progress = Some(Arc::new(hook));
        self
    }

    /// Imports the archive read from `archive` as the new tenant `key` in schema `schema`,
    /// and inserts it into `allowlist`. A key or schema that exists already is
    /// [`ArchiveError::TargetExists`]; an archive that does not verify is refused with the
    /// [`ArchiveError`] that says why. Either way nothing is created.
    ///
    /// ```no_run
    /// # use tenant_runtime::{lifecycle::archive::Importer, Allowlist, Client, ModelSet, Provisioner};
    /// # async fn run() -> Result<(), tenant_runtime::Error> {
    /// # let mut client = Client::connect("postgres://postgres@127.0.0.1/postgres").await?;
    /// # let provisioner = Provisioner::new(ModelSet::new())?;
    /// # let allowlist = Allowlist::new();
    /// let socket = tokio::net::TcpStream::connect("backup-host:9000").await.unwrap();
    /// Importer::new(&provisioner).import(&mut client, &allowlist, "acme", "tenant_acme", socket).await?;
    /// # Ok(()) }
    /// ```
    pub async fn import<R: AsyncRead + Unpin + Send>(
        &self,
        client: &mut Client,
        allowlist: &Allowlist,
        key: &str,
        schema: &str,
        archive: R,
    ) -> Result<Imported> {
        let mut reader = FrameReader::new(archive);
        let manifest = self.read_header(&mut reader).await?;
        let scratch = Allowlist::with_max_len(1).insert(key, schema)?;
        let mut db = client
            .for_tenant(&scratch)
            .with_schema_map(self.provisioner.schema_map().clone());
        let tx = db.transaction().await?;
        let tables = self.load_within(&tx, &manifest, &mut reader).await?;
        tx.commit().await?;
        let tenant = allowlist.insert(key, schema)?;
        Ok(Imported {
            tenant,
            manifest,
            tables,
        })
    }

    /// Reads the archive's header and makes the checks that need no database.
    pub(crate) async fn read_header<R: AsyncRead + Unpin>(
        &self,
        reader: &mut FrameReader<R>,
    ) -> Result<Manifest> {
        let manifest = reader.header().await?;
        self.check_version(manifest.migration_version)?;
        self.check_against_models(&manifest.tables)?;
        Ok(manifest)
    }

    /// Everything an import does in its transaction `tx` (on the new tenant's handle) after
    /// the header: provisioning, checks, rows, end, sequences; without committing.
    pub(crate) async fn load_within<R: AsyncRead + Unpin>(
        &self,
        tx: &Db<Transaction<'_>>,
        manifest: &Manifest,
        reader: &mut FrameReader<R>,
    ) -> Result<Vec<TableSummary>> {
        let version_rows = self.create_target(tx, &manifest.tables).await?;
        let pg = tx.executor().as_tokio_postgres().client();
        let schema = tx.tenant().schema();
        let tables = load(
            pg,
            schema,
            manifest,
            reader,
            version_rows,
            self.progress.as_ref(),
        )
        .await?;
        reader.end(manifest.tables.len()).await?;
        continue_sequences(pg, schema, &manifest.tables).await?;
        Ok(tables)
    }

    /// [`import`](Importer::import) from the file at `path`.
    pub async fn import_file(
        &self,
        client: &mut Client,
        allowlist: &Allowlist,
        key: &str,
        schema: &str,
        path: impl AsRef<Path>,
    ) -> Result<Imported> {
        let path = path.as_ref();
        let file = tokio::fs::File::open(path)
            .await
            .map_err(|source| ArchiveError::Io {
                action: IoAction::Open,
                path: Some(path.to_owned()),
                source,
            })?;
        let reader = tokio::io::BufReader::with_capacity(256 << 10, file);
        self.import(client, allowlist, key, schema, reader).await
    }

    /// Copies the data of `source` into the new tenant `key` in schema `schema` of the same
    /// database, without an archive: `INSERT INTO new.t SELECT ... FROM old.t`, table by
    /// table in foreign-key order, in the new tenant's provisioning transaction, which is
    /// `REPEATABLE READ` and locks the source tables (`ACCESS SHARE`) first, so the copy is
    /// one consistent snapshot while `source` keeps serving. The same checks as an import
    /// apply (the source's tables, columns, types and migration version must be the
    /// target's); sequences continue after the copied ids.
    ///
    /// ```no_run
    /// # use tenant_runtime::{lifecycle::archive::Importer, Allowlist, Client, ModelSet, Provisioner};
    /// # async fn run() -> Result<(), tenant_runtime::Error> {
    /// # let mut client = Client::connect("postgres://postgres@127.0.0.1/postgres").await?;
    /// # let provisioner = Provisioner::new(ModelSet::new())?;
    /// let allowlist = Allowlist::load_from_registry(&client, provisioner.registry()).await?;
    /// let demo = allowlist.resolve("demo-template")?;
    /// let cloned = Importer::new(&provisioner)
    ///     .clone_tenant(&mut client, &allowlist, &demo, "demo-42", "tenant_demo_42")
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub async fn clone_tenant(
        &self,
        client: &mut Client,
        allowlist: &Allowlist,
        source: &Tenant,
        key: &str,
        schema: &str,
    ) -> Result<Cloned> {
        let from = source.schema();
        let names = self.source_tables(client.as_tokio_postgres(), from).await?;
        let scratch = Allowlist::with_max_len(1).insert(key, schema)?;
        let mut db = client
            .for_tenant(&scratch)
            .with_schema_map(self.provisioner.schema_map().clone());
        let tx = db.transaction().await?;
        let pg = tx.executor().as_tokio_postgres().client();
        let mut begin = String::from("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ");
        if !names.is_empty() {
            let list: Vec<String> = names.iter().map(|t| qualified(from, t)).collect();
            begin.push_str(&format!(
                "; LOCK TABLE {} IN ACCESS SHARE MODE",
                list.join(", ")
            ));
        }
        pg.batch_execute(&begin).await?;
        if self.source_tables(pg, from).await? != names {
            return Err(ArchiveError::SchemaChanged {
                schema: from.as_str().into(),
            }
            .into());
        }
        let specs = catalog::describe(pg, from, &names).await?;
        self.check_version(catalog::migration_version(pg, from).await?)?;
        self.check_against_models(&specs)?;
        let version_rows = self.create_target(&tx, &specs).await?;
        let to = scratch.schema();
        let mut tables = Vec::with_capacity(specs.len());
        for (index, spec) in specs.iter().enumerate() {
            if spec.name == VERSION_TABLE && !version_rows {
                continue;
            }
            let columns = catalog::column_list(spec);
            let sql = format!(
                "INSERT INTO {} ({columns}) {}",
                qualified(to, &spec.name),
                catalog::select_rows_for(from, to, spec)
            );
            let rows = pg.execute_typed(sql.as_str(), &[]).await?;
            if let Some(hook) = &self.progress {
                let done: u64 = tables.iter().map(|(_, n)| n).sum();
                hook(&ArchiveProgress {
                    table: &spec.name,
                    table_index: index,
                    tables: specs.len(),
                    table_rows: rows,
                    rows: done + rows,
                    bytes: 0,
                });
            }
            tables.push((spec.name.clone(), rows));
        }
        continue_sequences(pg, to, &specs).await?;
        tx.commit().await?;
        let tenant = allowlist.insert(key, schema)?;
        Ok(Cloned { tenant, tables })
    }

    /// The tables a clone copies from `schema`, in load order.
    async fn source_tables(&self, pg: &Pg, schema: SchemaName) -> Result<Vec<String>> {
        let present = catalog::table_names(pg, schema).await?;
        match self.target {
            Target::Migrations(_) => catalog::load_order(pg, schema, &present).await,
            Target::Models => {
                let mut tables = self.model_tables()?;
                if let Some(missing) = tables.iter().find(|t| !present.contains(t)) {
                    return Err(ArchiveError::TableMissing {
                        schema: schema.as_str().into(),
                        table: missing.clone(),
                    }
                    .into());
                }
                if present.iter().any(|t| t == VERSION_TABLE) {
                    tables.push(VERSION_TABLE.to_owned());
                }
                Ok(tables)
            }
        }
    }

    /// The tenant-slot tables of the provisioner's model set, in creation order.
    fn model_tables(&self) -> Result<Vec<String>> {
        Ok(self
            .provisioner
            .models()
            .create_order()?
            .into_iter()
            .filter(|m| m.slot == Slot::Tenant)
            .map(|m| m.table.to_owned())
            .collect())
    }

    fn check_version(&self, archive: Option<u64>) -> Result<()> {
        match self.expected_version {
            Some(expected) if expected != archive => {
                Err(ArchiveError::MigrationVersionMismatch { archive, expected }.into())
            }
            _ => Ok(()),
        }
    }

    /// With a model set: the archive's tables (but the version table) and their column
    /// names must be the model set's. Checked before anything is sent to the database.
    fn check_against_models(&self, archive: &[TableSpec]) -> Result<()> {
        if !matches!(self.target, Target::Models) {
            return Ok(());
        }
        let models = self.provisioner.models().create_order()?;
        let models: BTreeMap<&str, _> = models
            .into_iter()
            .filter(|m| m.slot == Slot::Tenant)
            .map(|m| (m.table, m))
            .collect();
        let archived: BTreeMap<&str, &TableSpec> = archive
            .iter()
            .filter(|t| t.name != VERSION_TABLE)
            .map(|t| (t.name.as_str(), t))
            .collect();
        let missing_in_target: Vec<String> = archived
            .keys()
            .filter(|t| !models.contains_key(*t))
            .map(|t| t.to_string())
            .collect();
        let missing_in_archive: Vec<String> = models
            .keys()
            .filter(|t| !archived.contains_key(*t))
            .map(|t| t.to_string())
            .collect();
        if !missing_in_target.is_empty() || !missing_in_archive.is_empty() {
            return Err(ArchiveError::TablesDiffer {
                missing_in_target,
                missing_in_archive,
            }
            .into());
        }
        for (name, spec) in archived {
            let model = models[name];
            let archive_names: BTreeSet<&str> =
                spec.columns.iter().map(|c| c.name.as_str()).collect();
            let model_names: BTreeSet<&str> = model.columns.iter().map(|c| c.name).collect();
            if archive_names != model_names {
                let mut target: Vec<String> = model
                    .columns
                    .iter()
                    .map(|c| format!("{} {}", c.name, c.sql_type))
                    .collect();
                target.sort();
                return Err(ArchiveError::ColumnsDiffer {
                    table: name.into(),
                    archive: column_descriptions(spec),
                    target,
                }
                .into());
            }
        }
        Ok(())
    }

    /// In the open transaction: refuses a key or schema that exists, provisions, applies
    /// the migrations (or creates the version table when the archive has one), and checks
    /// the target's tables against `archive`. Returns whether the archive's version-table
    /// rows are to be loaded (with migrations, the target records its own).
    async fn create_target(&self, tx: &Db<Transaction<'_>>, archive: &[TableSpec]) -> Result<bool> {
        let tenant = tx.tenant();
        let (key, schema) = (tenant.key(), tenant.schema());
        let exec = tx.executor();
        let pg = exec.as_tokio_postgres().client();
        lock_key(exec.pg(), key).await?;
        lock_schema(exec.pg(), schema).await?;
        let registry = self.provisioner.registry();
        let taken = match registry.entry(exec, key).await? {
            Some(_) => true,
            None => {
                let sql = format!(
                    "SELECT 1 FROM {} WHERE schema = $1 OR retired_schema = $1",
                    registry.table()
                );
                !pg.query_typed(sql.as_str(), &[(&schema.as_str(), Type::TEXT)])
                    .await?
                    .is_empty()
            }
        };
        if taken || schema_exists(exec.pg(), schema).await? {
            return Err(ArchiveError::TargetExists {
                key: key.into(),
                schema: schema.as_str().into(),
            }
            .into());
        }
        self.provisioner.provision_within(tx).await?;
        let archive_has_versions = archive.iter().any(|t| t.name == VERSION_TABLE);
        let load_versions = match self.target {
            Target::Models => {
                if archive_has_versions {
                    run_statements(exec.pg(), &[tx.render(&CREATE_VERSION_TABLE, None)?]).await?;
                }
                archive_has_versions
            }
            Target::Migrations(migrations) => {
                apply_migrations(tx, migrations).await?;
                false
            }
        };
        let names: Vec<String> = archive.iter().map(|t| t.name.clone()).collect();
        let present = catalog::table_names(pg, schema).await?;
        let missing_in_target: Vec<String> = names
            .iter()
            .filter(|t| !present.contains(t))
            .cloned()
            .collect();
        let expected: Vec<String> = match self.target {
            Target::Models => {
                let mut tables = self.model_tables()?;
                if archive_has_versions {
                    tables.push(VERSION_TABLE.to_owned());
                }
                tables
            }
            Target::Migrations(_) => present.clone(),
        };
        let missing_in_archive: Vec<String> = expected
            .iter()
            .filter(|t| !names.contains(t))
            .cloned()
            .collect();
        if !missing_in_target.is_empty() || !missing_in_archive.is_empty() {
            return Err(ArchiveError::TablesDiffer {
                missing_in_target,
                missing_in_archive,
            }
            .into());
        }
        let target = catalog::describe(pg, schema, &names).await?;
        for (a, t) in archive.iter().zip(&target) {
            let (a_cols, t_cols) = (column_descriptions(a), column_descriptions(t));
            if a_cols != t_cols {
                return Err(ArchiveError::ColumnsDiffer {
                    table: a.name.clone(),
                    archive: a_cols,
                    target: t_cols,
                }
                .into());
            }
        }
        Ok(load_versions)
    }
}

/// `name type` of each column, sorted by name.
fn column_descriptions(spec: &TableSpec) -> Vec<String> {
    let mut columns: Vec<String> = spec
        .columns
        .iter()
        .map(|c| format!("{} {}", c.name, c.sql_type))
        .collect();
    columns.sort();
    columns
}

/// Applies every migration to the tenant of `tx` and records it, as the migrator does for a
/// new schema.
async fn apply_migrations(tx: &Db<Transaction<'_>>, migrations: &Migrations) -> Result<()> {
    let pg = tx.executor().pg();
    let tenant = tx.tenant();
    if migrations.is_empty() {
        return Ok(());
    }
    run_statements(pg, &[tx.render(&CREATE_VERSION_TABLE, None)?]).await?;
    // Shared migrations run once for all tenants (`Migrator::run_shared`), never per tenant.
    for m in migrations.iter().filter(|m| !m.is_shared()) {
        let failed = |source: Error| {
            Error::from(MigrateError::Failed {
                tenant: tenant.key().into(),
                schema: tenant.schema().as_str().into(),
                version: m.version(),
                name: m.name().into(),
                source: Box::new(source),
            })
        };
        // One statement per query string, as the migrator runs them (Citus forwards a
        // whole string to its workers).
        let statements = m
            .statements()
            .iter()
            .map(|t| tx.render(t, None))
            .collect::<Result<Vec<_>>>()
            .map_err(failed)?;
        run_statements(pg, &statements).await.map_err(failed)?;
        let version = i64::try_from(m.version()).map_err(|_| {
            failed(
                MigrateError::VersionOutOfRange {
                    version: m.version(),
                }
                .into(),
            )
        })?;
        tx.execute(&INSERT_APPLIED, &[&version, &m.name(), &m.checksum()])
            .await
            .map_err(failed)?;
    }
    Ok(())
}

/// Streams every table of the archive into the schema `to`, verifying each table's
/// checksum and row count before going on.
async fn load<R: AsyncRead + Unpin>(
    pg: &Pg,
    to: SchemaName,
    manifest: &Manifest,
    reader: &mut FrameReader<R>,
    version_rows: bool,
    progress: Option<&ProgressHook>,
) -> Result<Vec<TableSummary>> {
    let mut summaries = Vec::with_capacity(manifest.tables.len());
    let mut all_rows = 0u64;
    for (index, spec) in manifest.tables.iter().enumerate() {
        let report = |rows: u64, bytes: u64| {
            if let Some(hook) = progress {
                hook(&ArchiveProgress {
                    table: &spec.name,
                    table_index: index,
                    tables: manifest.tables.len(),
                    table_rows: rows,
                    rows: all_rows + rows,
                    bytes,
                });
            }
        };
        let load_rows = spec.name != VERSION_TABLE || version_rows;
        let mut sink = if load_rows {
            let sql = format!(
                "COPY {} ({}) FROM STDIN (FORMAT binary)",
                qualified(to, &spec.name),
                catalog::column_list(spec)
            );
            Some(Box::pin(pg.copy_in::<_, Bytes>(sql.as_str()).await?))
        } else {
            None
        };
        let mut sha = Sha256::new();
        let mut rows = CopyRows::new();
        let mut malformed = None;
        let mut db_error = None;
        let mut bytes = 0u64;
        let (recorded_rows, recorded_sha) = loop {
            match reader.frame().await? {
                Frame::Data(payload) => {
                    sha.update(&payload);
                    bytes += payload.len() as u64;
                    if malformed.is_none() {
                        if let Err(why) = rows.feed(&payload) {
                            malformed = Some((reader.offset(), why));
                        }
                    }
                    // After a failure, read on to the table's end: its checksum tells a
                    // damaged archive (typed) from a database refusal.
                    if let (Some(s), None, None) = (&mut sink, &malformed, &db_error) {
                        if let Err(e) = s.send(payload).await {
                            db_error = Some(e);
                        }
                    }
                    report(rows.rows(), reader.offset());
                }
                Frame::TableEnd { rows, sha } => break (rows, sha),
            }
        };
        let digest: [u8; 32] = sha.finalize().into();
        if digest != recorded_sha {
            return Err(ArchiveError::ChecksumMismatch {
                table: spec.name.clone(),
                recorded: hex(&recorded_sha),
                computed: hex(&digest),
            }
            .into());
        }
        if let Some((offset, why)) = malformed {
            return Err(ArchiveError::Corrupt {
                offset,
                problem: Corruption::CopyStream(why),
            }
            .into());
        }
        if !rows.is_done() {
            return Err(ArchiveError::Corrupt {
                offset: reader.offset(),
                problem: Corruption::CopyStream("the table's stream ends before its trailer"),
            }
            .into());
        }
        if rows.rows() != recorded_rows {
            return Err(ArchiveError::RowCountMismatch {
                table: spec.name.clone(),
                recorded: recorded_rows,
                found: rows.rows(),
            }
            .into());
        }
        if let Some(e) = db_error {
            return Err(e.into());
        }
        if let Some(mut sink) = sink {
            let written = sink.as_mut().finish().await?;
            if written != recorded_rows {
                return Err(ArchiveError::RowCountMismatch {
                    table: spec.name.clone(),
                    recorded: recorded_rows,
                    found: written,
                }
                .into());
            }
        }
        report(rows.rows(), reader.offset());
        all_rows += rows.rows();
        summaries.push(TableSummary {
            name: spec.name.clone(),
            rows: recorded_rows,
            sha256: hex(&digest),
            bytes,
        });
    }
    Ok(summaries)
}

/// Sets each identity and serial sequence of the tables in `to` so that its next value is
/// past both the source's next value (`specs`) and the table's highest value.
async fn continue_sequences(pg: &Pg, to: SchemaName, specs: &[TableSpec]) -> Result<()> {
    for spec in specs {
        let table = qualified(to, &spec.name);
        let rows = pg
            .query_typed(
                "SELECT a.attname::text FROM pg_catalog.pg_attribute a \
                 WHERE a.attrelid = $1::text::regclass AND a.attnum > 0 AND NOT a.attisdropped \
                   AND pg_catalog.pg_get_serial_sequence($1::text, a.attname::text) IS NOT NULL",
                &[(&table, Type::TEXT)],
            )
            .await?;
        for row in rows {
            let column: String = row.get(0);
            let source_next: Option<i64> =
                spec.sequences.iter().find(|s| s.column == column).map(|s| {
                    if s.is_called {
                        s.last_value.saturating_add(1)
                    } else {
                        s.last_value
                    }
                });
            let sql = format!(
                "SELECT pg_catalog.setval(pg_catalog.pg_get_serial_sequence($1::text, $2::text), \
                 GREATEST($3::bigint, max({})::bigint + 1), false) FROM {table}",
                ident(&column)
            );
            pg.query_typed(
                sql.as_str(),
                &[
                    (&table, Type::TEXT),
                    (&column, Type::TEXT),
                    (&source_next, Type::INT8),
                ],
            )
            .await?;
        }
    }
    Ok(())
}
