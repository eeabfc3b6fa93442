//! [`ArchiveError`]: what can go wrong exporting, importing, cloning or moving a tenant,
//! or taking purge's snapshot (`tenant_runtime::lifecycle::archive`).

use std::path::PathBuf;

/// Why an export, import, clone or move of a tenant was refused or failed
/// ([`Error::Archive`](crate::Error::Archive), boxed).
///
/// Every import refusal leaves nothing behind: no schema, no registry row, no allowlist
/// entry (see `lifecycle::archive::Importer`).
///
/// ```
/// use tenant_runtime::error::ArchiveError;
/// use tenant_runtime::Error;
///
/// let e = Error::from(ArchiveError::NotAnArchive);
/// assert!(matches!(&e, Error::Archive(a) if matches!(**a, ArchiveError::NotAnArchive)));
/// assert!(e.to_string().contains("not a tenant archive"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ArchiveError {
    /// The input does not start with the archive magic bytes.
    #[error("not a tenant archive (it does not start with the bytes \"TNTARCHV\"); pass a file written by a tenant export")]
    NotAnArchive,
    /// The archive was written in a format version this build does not read.
    #[error("the archive is in format version {found}, and this build reads version {supported}; import it with a build that reads version {found}")]
    UnsupportedFormat {
        /// The version the archive says it is in.
        found: u32,
        /// The version this build reads and writes.
        supported: u32,
    },
    /// The archive ends before it is complete (a cut-off copy or an interrupted export).
    #[error("the archive is truncated: it ends at byte {offset} while {expected} was expected; export the tenant again or use a complete copy")]
    Truncated {
        /// How many bytes were read.
        offset: u64,
        /// What the reader was about to read.
        expected: ArchivePart,
    },
    /// Bytes of the archive are not what the format allows at that place (damaged in storage
    /// or transit, or edited).
    #[error("the archive is damaged at byte {offset}: {problem}; use an undamaged copy")]
    Corrupt {
        /// Where the damage was found.
        offset: u64,
        /// What was found there.
        problem: Corruption,
    },
    /// The rows of one table do not have the SHA-256 checksum the archive recorded for them.
    #[error("the rows of table {table:?} in the archive have SHA-256 {computed}, but the archive recorded {recorded}; the archive is damaged: use an undamaged copy")]
    ChecksumMismatch {
        /// The table.
        table: String,
        /// The checksum written at export (hex).
        recorded: String,
        /// The checksum of the bytes read (hex).
        computed: String,
    },
    /// One table holds another number of rows than the archive recorded.
    #[error("table {table:?}: the archive recorded {recorded} rows but holds {found}; the archive is damaged: use an undamaged copy")]
    RowCountMismatch {
        /// The table.
        table: String,
        /// The count written at export.
        recorded: u64,
        /// The rows found in the table's stream (or written by the database).
        found: u64,
    },
    /// The archive's tables are not the target's tables (another application's tenant, or a
    /// model set that changed since the export).
    #[error("the archive's tables do not match the target's: {}; import it with the model set (or migrations) it was exported with", describe_tables(.missing_in_target, .missing_in_archive))]
    TablesDiffer {
        /// Tables in the archive that the target does not have.
        missing_in_target: Vec<String>,
        /// Tables of the target that the archive does not have.
        missing_in_archive: Vec<String>,
    },
    /// One table's columns differ between the archive and the target (names or types).
    #[error("table {table:?} has the columns [{}] in the archive but [{}] in the target; import it with the model set (or migrations) it was exported with", .archive.join(", "), .target.join(", "))]
    ColumnsDiffer {
        /// The table.
        table: String,
        /// The archive's columns, as `name type`, sorted by name.
        archive: Vec<String>,
        /// The target's columns, as `name type`, sorted by name.
        target: Vec<String>,
    },
    /// The archive was exported at another migration version than the target expects.
    #[error("the archive was exported at migration version {}, but the target is at {}; migrate the source (or import with the matching migrations) first", version(.archive), version(.expected))]
    MigrationVersionMismatch {
        /// The highest migration applied to the exported schema (`None`: no version table).
        archive: Option<u64>,
        /// The version the target is at.
        expected: Option<u64>,
    },
    /// A table of the model set is not in the tenant's schema.
    #[error("table {table:?} of the model set is not in schema {schema:?}; provision or migrate the tenant before exporting it")]
    TableMissing {
        /// The schema.
        schema: String,
        /// The missing table.
        table: String,
    },
    /// The schema's foreign keys form a cycle, so its tables have no load order.
    #[error("the foreign keys between tables {} form a cycle, so there is no order to load them in; break the cycle (e.g. make one constraint DEFERRABLE and drop it from the cycle) before exporting", .tables.join(", "))]
    ForeignKeyCycle {
        /// The tables in the cycle.
        tables: Vec<String>,
    },
    /// The key or the schema of the tenant to create by import or clone exists already (in
    /// the registry, or as a schema). Nothing was changed.
    #[error("tenant {key:?} or schema {schema:?} exists already; import and clone create a new tenant: choose another key and schema, or retire and purge the old tenant first")]
    TargetExists {
        /// The requested key.
        key: String,
        /// The requested schema.
        schema: String,
    },
    /// Tables were created or dropped in the schema while the export was starting, so the
    /// tables it listed are not the tables it locked. Nothing was written; export again.
    #[error("tables were created or dropped in schema {schema:?} while the export started; export it again (after the migration that changed it)")]
    SchemaChanged {
        /// The schema.
        schema: String,
    },
    /// A move read other row counts or checksums in the target than the source wrote.
    /// Nothing was changed: the tenant stays where it was.
    #[error("moving tenant {key:?}: the target did not receive what the source sent (row counts or checksums differ); nothing was changed, the tenant stays where it was")]
    MoveUnverified {
        /// The tenant key.
        key: String,
    },
    /// Reading or writing the archive (a file, a socket...) failed.
    #[error("cannot {action} {}: {source}", .path.as_ref().map_or("the archive".to_owned(), |p| format!("the archive {}", p.display())))]
    Io {
        /// What was being done.
        action: IoAction,
        /// The file, when the archive is one.
        path: Option<PathBuf>,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// [`Provisioner::purge`](crate::Provisioner::purge) could not write the snapshot of a
    /// schema it was about to drop, so it did not drop it.
    #[error("tenant {key:?}: the snapshot of schema {schema:?} could not be written to {}, so the schema was not dropped; fix the snapshot directory, or purge without a snapshot explicitly: {source}", .dir.display())]
    SnapshotFailed {
        /// The tenant key.
        key: String,
        /// The retired schema that was kept.
        schema: String,
        /// The snapshot directory.
        dir: PathBuf,
        /// Why the snapshot failed.
        #[source]
        source: Box<crate::Error>,
    },
}

/// The part of an archive a reader expected (in [`ArchiveError::Truncated`]).
///
/// ```
/// use tenant_runtime::error::{ArchiveError, ArchivePart};
/// let e = ArchiveError::Truncated { offset: 20, expected: ArchivePart::Manifest };
/// assert!(e.to_string().starts_with("the archive is truncated: it ends at byte 20 while the manifest was expected"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ArchivePart {
    /// The fixed-size header.
    Header,
    /// The manifest and its checksum.
    Manifest,
    /// A frame of a table stream (data, or the table's end).
    Frame,
    /// The end-of-archive frame.
    End,
}

impl std::fmt::Display for ArchivePart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ArchivePart::Header => "the header",
            ArchivePart::Manifest => "the manifest",
            ArchivePart::Frame => "a table frame",
            ArchivePart::End => "the end of the archive",
        })
    }
}

/// What [`ArchiveError::Corrupt`] found.
///
/// ```
/// use tenant_runtime::error::{ArchiveError, Corruption};
/// let e = ArchiveError::Corrupt { offset: 4096, problem: Corruption::UnknownFrame(0x51) };
/// assert!(e.to_string().starts_with("the archive is damaged at byte 4096: unknown frame tag 0x51"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Corruption {
    /// The manifest's bytes do not have the SHA-256 written after them.
    ManifestChecksum,
    /// The manifest is not valid (JSON that does not describe an archive).
    Manifest(String),
    /// The manifest length is beyond the format's limit.
    ManifestTooLarge(u64),
    /// A frame starts with a tag the format does not have.
    UnknownFrame(u8),
    /// A data frame's length is zero or beyond the format's limit.
    FrameLength(u64),
    /// The end frame came before every table of the manifest ended.
    EarlyEnd,
    /// The end frame names another number of tables than the manifest.
    TableCount {
        /// Tables in the manifest.
        manifest: u64,
        /// Tables the end frame names.
        end: u64,
    },
    /// The end frame's closing magic bytes are wrong.
    EndMagic,
    /// Bytes follow the end of the archive.
    TrailingData,
    /// A table's stream is not a well-formed binary `COPY` stream.
    CopyStream(&'static str),
}

impl std::fmt::Display for Corruption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Corruption::ManifestChecksum => {
                f.write_str("the manifest does not match its SHA-256 checksum")
            }
            Corruption::Manifest(why) => write!(f, "the manifest is invalid ({why})"),
            Corruption::ManifestTooLarge(len) => {
                write!(
                    f,
                    "the manifest claims {len} bytes, more than the format allows"
                )
            }
            Corruption::UnknownFrame(tag) => write!(f, "unknown frame tag 0x{tag:02x}"),
            Corruption::FrameLength(len) => write!(f, "a data frame of {len} bytes"),
            Corruption::EarlyEnd => {
                f.write_str("the end frame comes before every table of the manifest")
            }
            Corruption::TableCount { manifest, end } => write!(
                f,
                "the end frame counts {end} tables, the manifest {manifest}"
            ),
            Corruption::EndMagic => f.write_str("the closing magic bytes are wrong"),
            Corruption::TrailingData => f.write_str("bytes follow the end of the archive"),
            Corruption::CopyStream(why) => write!(f, "a table stream is malformed ({why})"),
        }
    }
}

/// What an [`ArchiveError::Io`] was doing.
///
/// ```
/// use std::io::{Error as IoError, ErrorKind};
/// use tenant_runtime::error::{ArchiveError, IoAction};
/// let e = ArchiveError::Io {
///     action: IoAction::Open,
///     path: Some("acme.tenant".into()),
///     source: IoError::from(ErrorKind::NotFound),
/// };
/// assert!(e.to_string().starts_with("cannot open the archive acme.tenant: "));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum IoAction {
    /// Creating the archive file (or its temporary file).
    Create,
    /// Opening the archive file.
    Open,
    /// Reading the archive.
    Read,
    /// Writing the archive.
    Write,
    /// Moving the finished file into place.
    Rename,
}

impl std::fmt::Display for IoAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            IoAction::Create => "create",
            IoAction::Open => "open",
            IoAction::Read => "read",
            IoAction::Write => "write",
            IoAction::Rename => "move into place",
        })
    }
}

fn describe_tables(missing_in_target: &[String], missing_in_archive: &[String]) -> String {
    let mut parts = Vec::new();
    if !missing_in_target.is_empty() {
        parts.push(format!(
            "the target has no table {}",
            missing_in_target.join(", ")
        ));
    }
    if !missing_in_archive.is_empty() {
        parts.push(format!(
            "the archive has no table {}",
            missing_in_archive.join(", ")
        ));
    }
    parts.join("; ")
}

fn version(v: &Option<u64>) -> String {
    v.map_or("none (no migrations applied)".to_owned(), |v| v.to_string())
}
