//! A tenant's data as one movable thing: [`Exporter`] (a tenant → one archive),
//! [`Importer`] (an archive → a new tenant, or a tenant → a new tenant without a file:
//! [`Importer::clone_tenant`]), [`Mover`] (a tenant to another database, online),
//! [`verify`] (check an archive without a database), and the
//! snapshot [`Provisioner::purge`](crate::Provisioner::purge) takes of each schema before
//! dropping it ([`Provisioner::snapshot_before_purge`](crate::Provisioner::snapshot_before_purge)).
//!
//! ```no_run
//! use tenant_runtime::lifecycle::archive::{Exporter, Importer};
//! use tenant_runtime::{Allowlist, Client, Model, ModelSet, Provisioner};
//!
//! #[derive(Model)]
//! #[tenant(table = "notes")]
//! struct Note { #[tenant(primary_key, identity)] id: i64, body: String }
//!
//! # async fn run() -> Result<(), tenant_runtime::Error> {
//! let mut client = Client::connect("postgres://postgres@127.0.0.1/postgres").await?;
//! let provisioner = Provisioner::new(ModelSet::new().with::<Note>())?;
//! let allowlist = Allowlist::load_from_registry(&client, provisioner.registry()).await?;
//! let acme = allowlist.resolve("acme")?;
//!
//! Exporter::for_models(provisioner.models()).export_to_file(&mut client, &acme, "acme.tenant").await?;
//! let copy = Importer::new(&provisioner)
//!     .import_file(&mut client, &allowlist, "acme-restored", "tenant_acme_restored", "acme.tenant")
//!     .await?;
//! # Ok(()) }
//! ```
//!
//! # Which tables
//!
//! The library takes a [`ModelSet`](crate::ModelSet): [`Exporter::for_models`] exports its
//! tenant-slot tables (shared-slot tables belong to every tenant, so to no tenant's
//! archive) and the schema's migration version table `_tenant_migrations` if it has one.
//! [`Exporter::whole_schema`] exports every table the schema holds, in the foreign-key order
//! of its own constraints (read from `pg_catalog`): that is what the `tenant` CLI does, being
//! a generic binary without the application's models. The CLI imports and clones with
//! [`Importer::with_migrations`]: the new tenant's tables come from the migrations directory,
//! as with `tenant tenants create --migrate`.
//!
//! Column names and types always come from the live schema (`format_type`, with the
//! tenant schema's own types, e.g. enums, unqualified), so archives of the library and of
//! the CLI are the same format and each can import the other's.
//!
//! # Format, version 1
//!
//! All integers are big-endian. An archive is a header, one stream per table, and an end:
//!
//! ```text
//! header   magic "TNTARCHV" (8 bytes) | format version u32 (= 1) | manifest length u32 (≤ 16 MiB)
//!          | manifest (UTF-8 JSON, `length` bytes) | SHA-256 of the manifest (32 bytes)
//! table*   one per manifest table, in manifest order: frame* then a table-end frame
//!   data       'D' (0x44) | length u32 (1 ..= 1 MiB) | payload: the next bytes of the table's
//!              binary COPY stream (writers cut frames at 256 KiB)
//!   table end  'T' (0x54) | rows u64 | SHA-256 of the table's whole COPY stream (32 bytes)
//! end      'Z' (0x5A) | number of tables u32 | "TNTAEND\n" (8 bytes); nothing may follow
//! ```
//!
//! The manifest ([`Manifest`]) holds the format version, the source tenant's key and
//! schema, the snapshot's time and server version, the migration version (highest
//! `_tenant_migrations.version`, or null), and the model set's description: each table's
//! name, columns (name, type, nullability, in stream order; generated columns are left out),
//! primary key and the sequences of its identity and serial columns (`last_value`,
//! `is_called`). A table's stream is exactly what `COPY (SELECT <columns> FROM <table> ORDER
//! BY <primary key>) TO STDOUT (FORMAT binary)` produced, so rows are in key order (a table
//! without a primary key in the order the server reads it) and equal data gives equal bytes
//! and checksums: an import of an archive exports again to the
//! same checksums, except for tables with arrays of a type the schema defines itself (an
//! enum array), whose binary form carries the element type's OID, which differs from schema
//! to schema (the columns are marked `schema_type`).
//!
//! Row counts and checksums are only known once a table is written, so each table carries
//! its own in its table-end frame: an archive is written in one pass to any
//! [`AsyncWrite`](tokio::io::AsyncWrite) (a pipe, a socket), with no seek. A truncated
//! archive lacks a frame, its end frame or its closing magic; a flipped byte breaks the
//! manifest's checksum, the framing (a tag or a length), or a table's checksum: each is an
//! [`ArchiveError`], never a partial import.
//!
//! # What an import checks, and when
//!
//! An import verifies while it copies, inside its one transaction (no temporary file, flat
//! memory): what can be checked before writing is (header, manifest, migration version,
//! table and column names against the model set); the rest (types against the created
//! tables, each table's checksum and row count, framing, the end) is checked as the rows
//! stream in, and a mismatch rolls the whole transaction back, provisioning included. See
//! [`Importer`].

mod catalog;
mod export;
mod format;
mod import;
mod moving;
mod snapshot;

use tokio::io::AsyncRead;

use crate::error::{ArchiveError, Corruption};
pub use export::{ArchiveSummary, Exporter};
pub use format::{
    ArchiveProgress, ColumnSpec, Manifest, SequenceSpec, Source, TableSpec, TableSummary,
    FORMAT_VERSION,
};
pub use import::{Cloned, Imported, Importer};
pub use moving::{Moved, Mover, MOVED_SQLSTATE};
pub use snapshot::snapshot_path;
pub(crate) use snapshot::snapshot_schema;

use format::{hex, CopyRows, Frame, FrameReader};
use sha2::{Digest, Sha256};

/// Reads a whole archive without a database and checks it as an import would (framing,
/// manifest checksum, each table's SHA-256 and row count, the end); returns what it holds.
///
/// ```no_run
/// # async fn run() -> Result<(), tenant_runtime::Error> {
/// let file = tokio::fs::File::open("acme.tenant").await.expect("open");
/// let summary = tenant_runtime::lifecycle::archive::verify(tokio::io::BufReader::new(file)).await?;
/// println!("{} tables, {} rows", summary.tables.len(), summary.rows());
/// # Ok(()) }
/// ```
pub async fn verify<R: AsyncRead + Unpin>(archive: R) -> Result<ArchiveSummary, ArchiveError> {
    let mut reader = FrameReader::new(archive);
    let manifest = reader.header().await?;
    let mut tables = Vec::with_capacity(manifest.tables.len());
    for spec in &manifest.tables {
        let mut sha = Sha256::new();
        let mut rows = CopyRows::new();
        let mut bytes = 0u64;
        let mut malformed = None;
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
            });
        }
        if let Some((offset, why)) = malformed {
            return Err(ArchiveError::Corrupt {
                offset,
                problem: Corruption::CopyStream(why),
            });
        }
        if !rows.is_done() || rows.rows() != recorded_rows {
            return Err(ArchiveError::RowCountMismatch {
                table: spec.name.clone(),
                recorded: recorded_rows,
                found: rows.rows(),
            });
        }
        tables.push(TableSummary {
            name: spec.name.clone(),
            rows: recorded_rows,
            sha256: hex(&digest),
            bytes,
        });
    }
    reader.end(manifest.tables.len()).await?;
    Ok(ArchiveSummary {
        bytes: reader.offset(),
        manifest,
        tables,
    })
}
