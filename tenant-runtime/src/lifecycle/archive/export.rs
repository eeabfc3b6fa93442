//! Export: a tenant's tables, from one snapshot, into one archive.

use std::path::Path;
use std::sync::Arc;

use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWrite;
use tokio_postgres::Client as Pg;

use super::catalog;
use super::format::{
    hex, ArchiveProgress, CopyRows, FrameWriter, Manifest, Source, TableSummary, FORMAT_VERSION,
    FRAME_TARGET,
};
use crate::door::{SchemaName, Tenant};
use crate::error::Result;
use crate::error::{ArchiveError, Corruption, IoAction};
use crate::exec::Client;
use crate::lifecycle::VERSION_TABLE;
use crate::model::ModelSet;
use crate::sql::Slot;

pub(crate) type ProgressHook = Arc<dyn Fn(&ArchiveProgress<'_>) + Send + Sync>;

/// What an export wrote (or what [`verify`](super::verify) read): the manifest and, per
/// table, its row count and checksum.
///
/// ```no_run
/// use tenant_runtime::lifecycle::archive::Exporter;
/// # async fn run(client: &mut tenant_runtime::Client, acme: &tenant_runtime::Tenant) -> Result<(), tenant_runtime::Error> {
/// let summary = Exporter::whole_schema().export_to_file(client, acme, "acme.tenant").await?;
/// println!(
///     "{} bytes, {} rows, migration version {:?}",
///     summary.bytes,
///     summary.rows(),
///     summary.manifest.migration_version
/// );
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ArchiveSummary {
    /// The manifest at the archive's start.
    pub manifest: Manifest,
    /// Each table's row count and checksum, in load order.
    pub tables: Vec<TableSummary>,
    /// The archive's length in bytes.
    pub bytes: u64,
}

impl ArchiveSummary {
    /// Rows in every table together.
    ///
    /// ```no_run
    /// # async fn run(summary: tenant_runtime::lifecycle::archive::ArchiveSummary) {
    /// println!("{} rows in {} tables", summary.rows(), summary.tables.len());
    /// # }
    /// ```
    pub fn rows(&self) -> u64 {
        self.tables.iter().map(|t| t.rows).sum()
    }

    /// The summary of table `name`.
    pub fn table(&self, name: &str) -> Option<&TableSummary> {
        self.tables.iter().find(|t| t.name == name)
    }
}

/// Which tables an export takes.
#[derive(Debug, Clone)]
enum Selection<'m> {
    /// The tenant-slot tables of a model set, and the version table if the schema has one.
    Models(&'m ModelSet),
    /// Every table the schema holds.
    Schema,
}

/// Exports one tenant into an archive (the format is in the [module docs](super)).
///
/// The export runs in one `REPEATABLE READ, READ ONLY` transaction that first locks the
/// tables it exports (`ACCESS SHARE`: writers go on, DDL on those tables waits), so the archive is
/// one consistent snapshot while the application keeps writing. Rows stream from `COPY ...
/// TO STDOUT (FORMAT binary)` into frames of at most 256 KiB: memory stays flat whatever the
/// tenant's size. Rows are in primary-key order, so the same data always makes the same
/// bytes (and checksums).
///
/// ```no_run
/// use tenant_runtime::lifecycle::archive::Exporter;
/// use tenant_runtime::{Allowlist, Client, Model, ModelSet};
///
/// #[derive(Model)]
/// #[tenant(table = "notes")]
/// struct Note { #[tenant(primary_key, identity)] id: i64, body: String }
///
/// # async fn run() -> Result<(), tenant_runtime::Error> {
/// let mut client = Client::connect("postgres://postgres@127.0.0.1/postgres").await?;
/// let acme = Allowlist::from_pairs([("acme", "tenant_acme")])?.resolve("acme")?;
/// let models = ModelSet::new().with::<Note>();
/// let summary = Exporter::for_models(&models)
///     .export_to_file(&mut client, &acme, "acme.tenant")
///     .await?;
/// println!("{} rows, {} bytes", summary.rows(), summary.bytes);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Exporter<'m> {
    selection: Selection<'m>,
    progress: Option<ProgressHook>,
}

impl std::fmt::Debug for Exporter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exporter")
            .field("selection", &self.selection)
            .finish_non_exhaustive()
    }
}

impl<'m> Exporter<'m> {
    /// Exports the tenant-slot tables of `models` (shared-slot tables belong to no tenant
    /// and are left out), in foreign-key order, and the schema's migration version table
    /// if it has one. Each table's columns are read from the live schema.
    ///
    /// ```
    /// # use tenant_runtime::{lifecycle::archive::Exporter, ModelSet};
    /// let models = ModelSet::new();
    /// let exporter = Exporter::for_models(&models);
    /// ```
    pub fn for_models(models: &'m ModelSet) -> Exporter<'m> {
        Exporter {
            selection: Selection::Models(models),
            progress: None,
        }
    }

    /// Exports every table the tenant's schema holds, as the schema itself says (in the
    /// foreign-key order of its constraints), with no model set: what the `tenant` CLI does.
    ///
    /// ```
    /// let exporter = tenant_runtime::lifecycle::archive::Exporter::whole_schema();
    /// ```
    pub fn whole_schema() -> Exporter<'static> {
        Exporter {
            selection: Selection::Schema,
            progress: None,
        }
    }

    /// Called after each frame (about every 256 KiB) and at the end of each table, from the
    /// exporting task (keep it quick).
    ///
    /// ```
    /// let exporter = tenant_runtime::lifecycle::archive::Exporter::whole_schema()
    ///     .on_progress(|p| eprintln!("{}: {} rows, {} bytes", p.table, p.table_rows, p.bytes));
    /// ```
    pub fn on_progress(
        mut self,
        hook: impl Fn(&ArchiveProgress<'_>) + Send + Sync + 'static,
    ) -> Exporter<'m> {
        self.progress = Some(Arc::new(hook));
        self
    }

    /// Exports `tenant` into `out` and flushes it (it is not shut down: a socket stays open).
    ///
    /// ```no_run
    /// # use tenant_runtime::{lifecycle::archive::Exporter, Allowlist, Client};
    /// # async fn run() -> Result<(), tenant_runtime::Error> {
    /// # let mut client = Client::connect("postgres://postgres@127.0.0.1/postgres").await?;
    /// # let acme = Allowlist::from_pairs([("acme", "tenant_acme")])?.resolve("acme")?;
    /// let mut archive = Vec::new();
    /// let summary = Exporter::whole_schema().export(&mut client, &acme, &mut archive).await?;
    /// assert_eq!(summary.bytes, archive.len() as u64);
    /// # Ok(()) }
    /// ```
    pub async fn export<W: AsyncWrite + Unpin + Send>(
        &self,
        client: &mut Client,
        tenant: &Tenant,
        out: W,
    ) -> Result<ArchiveSummary> {
        let schema = tenant.schema();
        let wanted = self.table_names(client.as_tokio_postgres(), schema).await?;
        let tx = client.transaction().await?;
        let pg = tx.as_tokio_postgres().client();
        // Isolation first, then the locks, before any query takes the snapshot: a table
        // rewritten by concurrent DDL would otherwise look empty to it.
        let mut begin = String::from("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY");
        if !wanted.is_empty() {
            let names: Vec<String> = wanted
                .iter()
                .map(|t| catalog::qualified(schema, t))
                .collect();
            begin.push_str(&format!(
                "; LOCK TABLE {} IN ACCESS SHARE MODE",
                names.join(", ")
            ));
        }
        pg.batch_execute(&begin).await?;
        // The schema may have changed between the listing and the lock.
        let again = self.table_names(pg, schema).await?;
        if again != wanted {
            return Err(ArchiveError::SchemaChanged {
                schema: schema.as_str().into(),
            }
            .into());
        }
        let summary = write_archive(
            pg,
            tenant.key(),
            schema,
            &wanted,
            out,
            self.progress.as_ref(),
        )
        .await?;
        tx.commit().await?;
        Ok(summary)
    }

    /// [`export`](Exporter::export) into the file `path`, atomically: the archive is written
    /// to `<path>.partial`, synced to disk, then renamed to `path`, so `path` is either a
    /// complete archive or absent (an existing `path` is replaced only on success).
    ///
    /// ```no_run
    /// # use tenant_runtime::{lifecycle::archive::Exporter, Allowlist, Client};
    /// # async fn run() -> Result<(), tenant_runtime::Error> {
    /// # let mut client = Client::connect("postgres://postgres@127.0.0.1/postgres").await?;
    /// # let acme = Allowlist::from_pairs([("acme", "tenant_acme")])?.resolve("acme")?;
    /// Exporter::whole_schema().export_to_file(&mut client, &acme, "/backups/acme.tenant").await?;
    /// # Ok(()) }
    /// ```
    pub async fn export_to_file(
        &self,
        client: &mut Client,
        tenant: &Tenant,
        path: impl AsRef<Path>,
    ) -> Result<ArchiveSummary> {
        let path = path.as_ref();
        let file = AtomicFile::create(path).await?;
        let mut out = tokio::io::BufWriter::with_capacity(64 << 10, file.file);
        let summary = self.export(client, tenant, &mut out).await;
        let summary = match summary {
            Ok(s) => s,
            Err(e) => {
                let _ = tokio::fs::remove_file(&file.partial).await;
                return Err(e);
            }
        };
        AtomicFile::finish(out.into_inner(), &file.partial, path).await?;
        Ok(summary)
    }

    /// The tables to export, in load order.
    async fn table_names(&self, pg: &Pg, schema: SchemaName) -> Result<Vec<String>> {
        let present = catalog::table_names(pg, schema).await?;
        match self.selection {
            Selection::Schema => catalog::load_order(pg, schema, &present).await,
            Selection::Models(models) => {
                let mut tables: Vec<String> = models
                    .create_order()?
                    .into_iter()
                    .filter(|m| m.slot == Slot::Tenant)
                    .map(|m| m.table.to_owned())
                    .collect();
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
}

/// Writes the archive of `tables` (in load order) of `schema`, inside the caller's
/// transaction on `pg`.
pub(crate) async fn write_archive<W: AsyncWrite + Unpin>(
    pg: &Pg,
    key: &str,
    schema: SchemaName,
    tables: &[String],
    out: W,
    progress: Option<&ProgressHook>,
) -> Result<ArchiveSummary> {
    let specs = catalog::describe(pg, schema, tables).await?;
    let migration_version = catalog::migration_version(pg, schema).await?;
    let rows = pg
        .query_typed(
            "SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), \
             current_setting('server_version_num')::int",
            &[],
        )
        .await?;
    let row = &rows[0];
    let manifest = Manifest {
        format: FORMAT_VERSION,
        source: Source {
            key: key.into(),
            schema: schema.as_str().into(),
        },
        exported_at: row.get(0),
        server_version: row.get(1),
        migration_version,
        tables: specs,
    };
    let mut writer = FrameWriter::start(out, &manifest).await?;
    let mut summaries = Vec::with_capacity(manifest.tables.len());
    let mut all_rows = 0u64;
    let mut frame: Vec<u8> = Vec::with_capacity(FRAME_TARGET + (64 << 10));
    for (index, spec) in manifest.tables.iter().enumerate() {
        let sql = format!(
            "COPY ({}) TO STDOUT (FORMAT binary)",
            catalog::select_rows(schema, spec)
        );
        let stream = pg.copy_out(sql.as_str()).await?;
        futures_util::pin_mut!(stream);
        let mut sha = Sha256::new();
        let mut rows = CopyRows::new();
        let mut bytes = 0u64;
        let report = |rows: u64, written: u64| {
            if let Some(hook) = progress {
                hook(&ArchiveProgress {
                    table: &spec.name,
                    table_index: index,
                    tables: manifest.tables.len(),
                    table_rows: rows,
                    rows: all_rows + rows,
                    bytes: written,
                });
            }
        };
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            sha.update(&chunk);
            rows.feed(&chunk).map_err(|why| ArchiveError::Corrupt {
                offset: writer.written(),
                problem: Corruption::CopyStream(why),
            })?;
            bytes += chunk.len() as u64;
            let mut rest: &[u8] = &chunk;
            while !rest.is_empty() {
                let take = (super::format::MAX_FRAME_LEN as usize - frame.len()).min(rest.len());
                frame.extend_from_slice(&rest[..take]);
                rest = &rest[take..];
                if frame.len() >= FRAME_TARGET {
                    writer.data(&frame).await?;
                    frame.clear();
                    report(rows.rows(), writer.written());
                }
            }
        }
        if !frame.is_empty() {
            writer.data(&frame).await?;
            frame.clear();
        }
        if !rows.is_done() {
            return Err(ArchiveError::Corrupt {
                offset: writer.written(),
                problem: Corruption::CopyStream("the server's COPY stream ended early"),
            }
            .into());
        }
        let digest: [u8; 32] = sha.finalize().into();
        writer.end_table(rows.rows(), &digest).await?;
        report(rows.rows(), writer.written());
        all_rows += rows.rows();
        summaries.push(TableSummary {
            name: spec.name.clone(),
            rows: rows.rows(),
            sha256: hex(&digest),
            bytes,
        });
    }
    let (_, written) = writer.finish().await?;
    Ok(ArchiveSummary {
        manifest,
        tables: summaries,
        bytes: written,
    })
}

/// A file written under a temporary name and renamed into place once complete.
pub(crate) struct AtomicFile {
    pub(crate) file: tokio::fs::File,
    pub(crate) partial: std::path::PathBuf,
}

impl AtomicFile {
    pub(crate) async fn create(path: &Path) -> Result<AtomicFile> {
        let mut partial = path.as_os_str().to_owned();
        partial.push(".partial");
        let partial = std::path::PathBuf::from(partial);
        let file = tokio::fs::File::create(&partial)
            .await
            .map_err(|source| ArchiveError::Io {
                action: IoAction::Create,
                path: Some(partial.clone()),
                source,
            })?;
        Ok(AtomicFile { file, partial })
    }

    pub(crate) async fn finish(file: tokio::fs::File, partial: &Path, path: &Path) -> Result<()> {
        let synced = file.sync_all().await;
        drop(file);
        fn io(action: IoAction, p: &Path) -> impl FnOnce(std::io::Error) -> ArchiveError + '_ {
            move |source| ArchiveError::Io {
                action,
                path: Some(p.to_owned()),
                source,
            }
        }
        if let Err(e) = synced {
            let _ = tokio::fs::remove_file(partial).await;
            return Err(io(IoAction::Write, partial)(e).into());
        }
        if let Err(e) = tokio::fs::rename(partial, path).await {
            let _ = tokio::fs::remove_file(partial).await;
            return Err(io(IoAction::Rename, path)(e).into());
        }
        Ok(())
    }
}
