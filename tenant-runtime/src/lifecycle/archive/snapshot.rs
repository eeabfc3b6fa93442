//! The snapshot [`Provisioner::purge`] takes of each retired schema before it drops it.

use std::path::{Path, PathBuf};

use super::catalog;
use super::export::{write_archive, AtomicFile};
use crate::door::SchemaName;
use crate::error::{ArchiveError, Result};
use crate::exec::PgRef;
use crate::lifecycle::Provisioner;

/// The file the snapshot of `retired_schema` gets in the snapshot directory `dir`:
/// `<dir>/<retired schema>.tenant` (retired names are unique and safe as file names; the
/// tenant key is in the archive's manifest).
///
/// ```
/// use std::path::Path;
/// use tenant_runtime::lifecycle::archive::snapshot_path;
/// assert_eq!(
///     snapshot_path(Path::new("/backups"), "tenant_acme_deleted_20260421"),
///     Path::new("/backups/tenant_acme_deleted_20260421.tenant")
/// );
/// ```
pub fn snapshot_path(dir: &Path, retired_schema: &str) -> PathBuf {
    dir.join(format!("{retired_schema}.tenant"))
}

impl Provisioner {
    /// Makes [`purge`](Provisioner::purge) export each retired schema into `dir` (created if
    /// missing) before dropping it, as [`snapshot_path`] names it, and refuse to drop a
    /// schema whose snapshot could not be written ([`ArchiveError::SnapshotFailed`]; the
    /// tenant stays retired, nothing of it is lost). The snapshot is a whole-schema archive
    /// ([`Exporter::whole_schema`](super::Exporter::whole_schema)), written in the purge's
    /// own transaction, synced and renamed into place before the `DROP`. Restoring a purged
    /// tenant is an import of it: [`Importer::import_file`](super::Importer::import_file)
    /// with the tenant's key and schema.
    ///
    /// Without this (the default), purge drops without a snapshot.
    ///
    /// ```
    /// # use tenant_runtime::{ModelSet, Provisioner};
    /// let provisioner = Provisioner::new(ModelSet::new())?.snapshot_before_purge("/backups/tenants");
    /// assert_eq!(provisioner.purge_snapshot_dir(), Some(std::path::Path::new("/backups/tenants")));
    /// # Ok::<(), tenant_runtime::Error>(())
    /// ```
    pub fn snapshot_before_purge(mut self, dir: impl Into<PathBuf>) -> Provisioner {
        self.snapshot_dir = Some(dir.into());
        self
    }

    /// Where [`purge`](Provisioner::purge) writes its snapshots, if it takes them.
    pub fn purge_snapshot_dir(&self) -> Option<&Path> {
        self.snapshot_dir.as_deref()
    }
}

/// Purge's hook, inside its transaction on the retired schema (locked), before the `DROP`:
/// writes the snapshot if the provisioner takes them.
pub(crate) async fn snapshot_schema(
    provisioner: &Provisioner,
    pg: PgRef<'_>,
    key: &str,
    retired: SchemaName,
) -> Result<()> {
    let Some(dir) = provisioner.purge_snapshot_dir() else {
        return Ok(());
    };
    let failed = |source: crate::Error| ArchiveError::SnapshotFailed {
        key: key.into(),
        schema: retired.as_str().into(),
        dir: dir.to_owned(),
        source: Box::new(source),
    };
    write_snapshot(dir, pg, key, retired)
        .await
        .map_err(|e| failed(e).into())
}

async fn write_snapshot(dir: &Path, pg: PgRef<'_>, key: &str, retired: SchemaName) -> Result<()> {
    let pg = match pg {
        PgRef::Client(client) => client,
        PgRef::Transaction(tx) => tx.client(),
    };
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(|source| ArchiveError::Io {
            action: crate::error::IoAction::Create,
            path: Some(dir.to_owned()),
            source,
        })?;
    let path = snapshot_path(dir, retired.as_str());
    let file = AtomicFile::create(&path).await?;
    let mut out = tokio::io::BufWriter::with_capacity(64 << 10, file.file);
    let written = async {
        let tables = catalog::table_names(pg, retired).await?;
        let tables = catalog::load_order(pg, retired, &tables).await?;
        write_archive(pg, key, retired, &tables, &mut out, None).await
    }
    .await;
    if let Err(e) = written {
        drop(out);
        let _ = tokio::fs::remove_file(&file.partial).await;
        return Err(e);
    }
    AtomicFile::finish(out.into_inner(), &file.partial, &path).await
}
