//! The archive format, version 1 (specified in the module docs of [`archive`](super)): the
//! manifest, the frames, and a checker of binary `COPY` streams that counts their rows.

use bytes::{Bytes, BytesMut};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::error::{ArchiveError, ArchivePart, Corruption, IoAction};

/// The first 8 bytes of every archive.
pub const MAGIC: &[u8; 8] = b"TNTARCHV";
/// The last 8 bytes of every archive.
pub const END_MAGIC: &[u8; 8] = b"TNTAEND\n";
/// The format version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// The largest manifest a reader accepts (16 MiB).
pub const MAX_MANIFEST_LEN: u32 = 16 << 20;
/// The largest data frame payload (1 MiB); writers flush at [`FRAME_TARGET`].
pub const MAX_FRAME_LEN: u32 = 1 << 20;
/// The payload size at which writers cut a data frame.
pub const FRAME_TARGET: usize = 256 << 10;

pub(crate) const TAG_DATA: u8 = b'D';
pub(crate) const TAG_TABLE_END: u8 = b'T';
pub(crate) const TAG_END: u8 = b'Z';

/// What an archive holds, written at its start (see the [format](super)).
///
/// ```
/// use tenant_runtime::lifecycle::archive::Manifest;
/// let json = r#"{"format":1,"source":{"key":"acme","schema":"tenant_acme"},
///   "exported_at":"2026-12-01T10:00:00Z","server_version":150000,"migration_version":3,
///   "tables":[{"name":"notes","columns":[{"name":"id","sql_type":"bigint","nullable":false,"schema_type":false}],
///              "primary_key":["id"],"sequences":[{"column":"id","last_value":7,"is_called":true}]}]}"#;
/// let manifest: Manifest = serde_json::from_str(json)?;
/// assert_eq!(manifest.tables[0].columns[0].sql_type, "bigint");
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Manifest {
    /// The format version ([`FORMAT_VERSION`]).
    pub format: u32,
    /// The tenant the archive was exported from.
    pub source: Source,
    /// When the snapshot was taken, by the database clock (UTC, RFC 3339).
    pub exported_at: String,
    /// `server_version_num` of the exporting server.
    pub server_version: i32,
    /// The highest migration applied to the schema (its `_tenant_migrations` table), or `None`
    /// when the schema has no version table.
    pub migration_version: Option<u64>,
    /// The tables, in load order (each after the tables it references).
    pub tables: Vec<TableSpec>,
}

/// The tenant an archive was exported from.
///
/// ```
/// use tenant_runtime::lifecycle::archive::Manifest;
/// # let json = r#"{"format":1,"source":{"key":"acme","schema":"tenant_acme"},
/// #   "exported_at":"2026-12-01T10:00:00Z","server_version":150000,"migration_version":3,
/// #   "tables":[{"name":"notes","columns":[{"name":"id","sql_type":"bigint","nullable":false,"schema_type":false}],
/// #              "primary_key":["id"],"sequences":[{"column":"id","last_value":7,"is_called":true}]}]}"#;
/// let manifest: Manifest = serde_json::from_str(json)?;
/// assert_eq!((manifest.source.key.as_str(), manifest.source.schema.as_str()), ("acme", "tenant_acme"));
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Source {
    /// Its key.
    pub key: String,
    /// Its schema.
    pub schema: String,
}

/// One table of a [`Manifest`].
///
/// ```
/// use tenant_runtime::lifecycle::archive::Manifest;
/// # let json = r#"{"format":1,"source":{"key":"acme","schema":"tenant_acme"},
/// #   "exported_at":"2026-12-01T10:00:00Z","server_version":150000,"migration_version":3,
/// #   "tables":[{"name":"notes","columns":[{"name":"id","sql_type":"bigint","nullable":false,"schema_type":false}],
/// #              "primary_key":["id"],"sequences":[{"column":"id","last_value":7,"is_called":true}]}]}"#;
/// let manifest: Manifest = serde_json::from_str(json)?;
/// let notes = &manifest.tables[0];
/// assert_eq!((notes.name.as_str(), notes.primary_key.as_slice()), ("notes", &["id".to_owned()][..]));
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TableSpec {
    /// The table name (unqualified).
    pub name: String,
    /// The columns in the stream, in stream order (generated columns are left out: the
    /// target computes them).
    pub columns: Vec<ColumnSpec>,
    /// The primary-key columns, in key order (rows are streamed in this order).
    pub primary_key: Vec<String>,
    /// The sequences behind identity and serial columns, as they were at export.
    pub sequences: Vec<SequenceSpec>,
}

/// One column of a [`TableSpec`].
///
/// ```
/// use tenant_runtime::lifecycle::archive::Manifest;
/// # let json = r#"{"format":1,"source":{"key":"acme","schema":"tenant_acme"},
/// #   "exported_at":"2026-12-01T10:00:00Z","server_version":150000,"migration_version":3,
/// #   "tables":[{"name":"notes","columns":[{"name":"id","sql_type":"bigint","nullable":false,"schema_type":false}],
/// #              "primary_key":["id"],"sequences":[{"column":"id","last_value":7,"is_called":true}]}]}"#;
/// let manifest: Manifest = serde_json::from_str(json)?;
/// let id = &manifest.tables[0].columns[0];
/// assert_eq!((id.name.as_str(), id.sql_type.as_str(), id.nullable), ("id", "bigint", false));
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ColumnSpec {
    /// The column name.
    pub name: String,
    /// The type as PostgreSQL's `format_type` writes it, with types of the tenant's own
    /// schema unqualified (`bigint`, `numeric(12,2)`, `mood`, `public.plan_kind`).
    pub sql_type: String,
    /// Whether NULL is allowed.
    pub nullable: bool,
    /// Whether the type, or an array's element type, is one the tenant's schema defines
    /// itself (an enum, a domain...): such a type has another OID in every schema, and
    /// binary arrays carry their element type's OID.
    #[serde(default)]
    pub schema_type: bool,
}

/// The sequence of one identity or serial column of a [`TableSpec`]: an import sets the
/// new tenant's sequence to it, so ids continue after the imported ones.
///
/// ```
/// use tenant_runtime::lifecycle::archive::Manifest;
/// # let json = r#"{"format":1,"source":{"key":"acme","schema":"tenant_acme"},
/// #   "exported_at":"2026-12-01T10:00:00Z","server_version":150000,"migration_version":3,
/// #   "tables":[{"name":"notes","columns":[{"name":"id","sql_type":"bigint","nullable":false,"schema_type":false}],
/// #              "primary_key":["id"],"sequences":[{"column":"id","last_value":7,"is_called":true}]}]}"#;
/// let manifest: Manifest = serde_json::from_str(json)?;
/// let seq = &manifest.tables[0].sequences[0];
/// assert_eq!((seq.column.as_str(), seq.last_value, seq.is_called), ("id", 7, true));
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SequenceSpec {
    /// The column the sequence fills.
    pub column: String,
    /// The sequence's `last_value`.
    pub last_value: i64,
    /// Whether `last_value` was handed out (`false`: the next value is `last_value`).
    pub is_called: bool,
}

/// What one table's stream held: written at the end of each table stream, and returned by
/// export, import and [`verify`](super::verify).
///
/// ```no_run
/// # async fn run() -> Result<(), tenant_runtime::Error> {
/// let file = tokio::fs::File::open("acme.tenant").await.expect("open");
/// let summary = tenant_runtime::lifecycle::archive::verify(file).await?;
/// for t in &summary.tables {
///     println!("{}: {} rows, {} bytes, sha256 {}", t.name, t.rows, t.bytes, t.sha256);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TableSummary {
    /// The table.
    pub name: String,
    /// The number of rows.
    pub rows: u64,
    /// The SHA-256 of the table's binary `COPY` stream, hex.
    pub sha256: String,
    /// The length of that stream in bytes.
    pub bytes: u64,
}

/// How far an export, import or clone is (passed to `on_progress` callbacks).
///
/// ```
/// use tenant_runtime::lifecycle::archive::{ArchiveProgress, Exporter};
///
/// fn show(p: &ArchiveProgress<'_>) {
///     eprintln!("table {} ({}/{}): {} rows, {} bytes", p.table, p.table_index + 1, p.tables, p.table_rows, p.bytes);
/// }
/// let exporter = Exporter::whole_schema().on_progress(show);
/// ```
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct ArchiveProgress<'a> {
    /// The table being copied.
    pub table: &'a str,
    /// Its position in the load order (0-based).
    pub table_index: usize,
    /// How many tables there are.
    pub tables: usize,
    /// Rows of this table copied so far.
    pub table_rows: u64,
    /// Rows of every table copied so far.
    pub rows: u64,
    /// Archive bytes written or read so far (0 for a clone, which has no archive).
    pub bytes: u64,
}

pub(crate) fn hex(digest: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(digest.len() * 2);
    for b in digest {
        let _ = write!(s, "{b:02x}");
    }
    s
}

fn io(action: IoAction) -> impl FnOnce(std::io::Error) -> ArchiveError {
    move |source| ArchiveError::Io {
        action,
        path: None,
        source,
    }
}

/// Writes an archive: the header with the manifest, then each table's frames, then the end.
pub(crate) struct FrameWriter<W> {
    out: W,
    written: u64,
    tables: u32,
}

impl<W: AsyncWrite + Unpin> FrameWriter<W> {
    pub(crate) async fn start(mut out: W, manifest: &Manifest) -> Result<Self, ArchiveError> {
        let json = serde_json::to_vec(manifest).expect("a manifest serializes");
        let len = u32::try_from(json.len())
            .ok()
            .filter(|&l| l <= MAX_MANIFEST_LEN)
            .ok_or(ArchiveError::Corrupt {
                offset: 0,
                problem: Corruption::ManifestTooLarge(json.len() as u64),
            })?;
        let mut head = Vec::with_capacity(16 + json.len() + 32);
        head.extend_from_slice(MAGIC);
        head.extend_from_slice(&FORMAT_VERSION.to_be_bytes());
        head.extend_from_slice(&len.to_be_bytes());
        head.extend_from_slice(&json);
        head.extend_from_slice(&Sha256::digest(&json));
        out.write_all(&head).await.map_err(io(IoAction::Write))?;
        Ok(FrameWriter {
            out,
            written: head.len() as u64,
            tables: 0,
        })
    }

    pub(crate) fn written(&self) -> u64 {
        self.written
    }

    pub(crate) async fn data(&mut self, payload: &[u8]) -> Result<(), ArchiveError> {
        debug_assert!(!payload.is_empty() && payload.len() <= MAX_FRAME_LEN as usize);
        let mut head = [0u8; 5];
        head[0] = TAG_DATA;
        head[1..].copy_from_slice(&(payload.len() as u32).to_be_bytes());
        self.out
            .write_all(&head)
            .await
            .map_err(io(IoAction::Write))?;
        self.out
            .write_all(payload)
            .await
            .map_err(io(IoAction::Write))?;
        self.written += 5 + payload.len() as u64;
        Ok(())
    }

    pub(crate) async fn end_table(
        &mut self,
        rows: u64,
        sha: &[u8; 32],
    ) -> Result<(), ArchiveError> {
        let mut frame = [0u8; 41];
        frame[0] = TAG_TABLE_END;
        frame[1..9].copy_from_slice(&rows.to_be_bytes());
        frame[9..].copy_from_slice(sha);
        self.out
            .write_all(&frame)
            .await
            .map_err(io(IoAction::Write))?;
        self.written += frame.len() as u64;
        self.tables += 1;
        Ok(())
    }

    pub(crate) async fn finish(mut self) -> Result<(W, u64), ArchiveError> {
        let mut frame = [0u8; 13];
        frame[0] = TAG_END;
        frame[1..5].copy_from_slice(&self.tables.to_be_bytes());
        frame[5..].copy_from_slice(END_MAGIC);
        self.out
            .write_all(&frame)
            .await
            .map_err(io(IoAction::Write))?;
        self.out.flush().await.map_err(io(IoAction::Write))?;
        self.written += frame.len() as u64;
        Ok((self.out, self.written))
    }
}

/// One frame of a table stream.
pub(crate) enum Frame {
    Data(Bytes),
    TableEnd { rows: u64, sha: [u8; 32] },
}

/// Reads an archive, checking the framing as it goes.
pub(crate) struct FrameReader<R> {
    input: R,
    offset: u64,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    pub(crate) fn new(input: R) -> Self {
        FrameReader { input, offset: 0 }
    }

    pub(crate) fn offset(&self) -> u64 {
        self.offset
    }

    async fn exact(&mut self, buf: &mut [u8], part: ArchivePart) -> Result<(), ArchiveError> {
        let mut filled = 0;
        while filled < buf.len() {
            let n = self
                .input
                .read(&mut buf[filled..])
                .await
                .map_err(io(IoAction::Read))?;
            if n == 0 {
                return Err(ArchiveError::Truncated {
                    offset: self.offset + filled as u64,
                    expected: part,
                });
            }
            filled += n;
        }
        self.offset += buf.len() as u64;
        Ok(())
    }

    /// Reads and checks the header and the manifest.
    pub(crate) async fn header(&mut self) -> Result<Manifest, ArchiveError> {
        let mut head = [0u8; 16];
        let mut filled = 0;
        // A short input that is not an archive at all is "not an archive", not "truncated".
        while filled < head.len() {
            let n = self
                .input
                .read(&mut head[filled..])
                .await
                .map_err(io(IoAction::Read))?;
            if n == 0 {
                break;
            }
            filled += n;
        }
        if head[..filled.min(8)] != MAGIC[..filled.min(8)] || filled == 0 {
            return Err(ArchiveError::NotAnArchive);
        }
        if filled < head.len() {
            return Err(ArchiveError::Truncated {
                offset: filled as u64,
                expected: ArchivePart::Header,
            });
        }
        self.offset = 16;
        let version = u32::from_be_bytes(head[8..12].try_into().expect("4 bytes"));
        if version != FORMAT_VERSION {
            return Err(ArchiveError::UnsupportedFormat {
                found: version,
                supported: FORMAT_VERSION,
            });
        }
        let len = u32::from_be_bytes(head[12..16].try_into().expect("4 bytes"));
        if len > MAX_MANIFEST_LEN {
            return Err(ArchiveError::Corrupt {
                offset: 12,
                problem: Corruption::ManifestTooLarge(len.into()),
            });
        }
        let mut json = vec![0u8; len as usize];
        self.exact(&mut json, ArchivePart::Manifest).await?;
        let mut sha = [0u8; 32];
        self.exact(&mut sha, ArchivePart::Manifest).await?;
        if Sha256::digest(&json).as_slice() != sha {
            return Err(ArchiveError::Corrupt {
                offset: 16,
                problem: Corruption::ManifestChecksum,
            });
        }
        let manifest: Manifest =
            serde_json::from_slice(&json).map_err(|e| ArchiveError::Corrupt {
                offset: 16,
                problem: Corruption::Manifest(e.to_string()),
            })?;
        if manifest.format != FORMAT_VERSION {
            return Err(ArchiveError::Corrupt {
                offset: 16,
                problem: Corruption::Manifest(format!(
                    "it says format {}, the header {FORMAT_VERSION}",
                    manifest.format
                )),
            });
        }
        Ok(manifest)
    }

    /// The next frame of the current table (the end frame here is [`Corruption::EarlyEnd`]).
    pub(crate) async fn frame(&mut self) -> Result<Frame, ArchiveError> {
        let at = self.offset;
        let mut tag = [0u8; 1];
        self.exact(&mut tag, ArchivePart::Frame).await?;
        match tag[0] {
            TAG_DATA => {
                let mut len = [0u8; 4];
                self.exact(&mut len, ArchivePart::Frame).await?;
                let len = u32::from_be_bytes(len);
                if len == 0 || len > MAX_FRAME_LEN {
                    return Err(ArchiveError::Corrupt {
                        offset: at + 1,
                        problem: Corruption::FrameLength(len.into()),
                    });
                }
                let mut payload = BytesMut::zeroed(len as usize);
                self.exact(&mut payload, ArchivePart::Frame).await?;
                Ok(Frame::Data(payload.freeze()))
            }
            TAG_TABLE_END => {
                let mut rest = [0u8; 40];
                self.exact(&mut rest, ArchivePart::Frame).await?;
                let rows = u64::from_be_bytes(rest[..8].try_into().expect("8 bytes"));
                let sha = rest[8..].try_into().expect("32 bytes");
                Ok(Frame::TableEnd { rows, sha })
            }
            TAG_END => Err(ArchiveError::Corrupt {
                offset: at,
                problem: Corruption::EarlyEnd,
            }),
            other => Err(ArchiveError::Corrupt {
                offset: at,
                problem: Corruption::UnknownFrame(other),
            }),
        }
    }

    /// Reads the end frame (after the last table) and checks nothing follows it.
    pub(crate) async fn end(&mut self, tables: usize) -> Result<(), ArchiveError> {
        let at = self.offset;
        let mut frame = [0u8; 13];
        self.exact(&mut frame[..1], ArchivePart::End).await?;
        if frame[0] != TAG_END {
            return Err(ArchiveError::Corrupt {
                offset: at,
                problem: Corruption::UnknownFrame(frame[0]),
            });
        }
        self.exact(&mut frame[1..], ArchivePart::End).await?;
        let count = u32::from_be_bytes(frame[1..5].try_into().expect("4 bytes"));
        if count as usize != tables {
            return Err(ArchiveError::Corrupt {
                offset: at + 1,
                problem: Corruption::TableCount {
                    manifest: tables as u64,
                    end: count.into(),
                },
            });
        }
        if &frame[5..] != END_MAGIC {
            return Err(ArchiveError::Corrupt {
                offset: at + 5,
                problem: Corruption::EndMagic,
            });
        }
        let mut one = [0u8; 1];
        let n = self
            .input
            .read(&mut one)
            .await
            .map_err(io(IoAction::Read))?;
        if n != 0 {
            return Err(ArchiveError::Corrupt {
                offset: self.offset,
                problem: Corruption::TrailingData,
            });
        }
        Ok(())
    }
}

/// Follows a binary `COPY` stream fed in chunks of any size: checks its structure and counts
/// its rows (tuples).
#[derive(Debug)]
pub(crate) struct CopyRows {
    state: CopyState,
    /// Bytes of a fixed-size field gathered so far.
    small: [u8; 11],
    have: usize,
    fields_left: u16,
    rows: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CopyState {
    Signature,
    Flags,
    ExtensionLength,
    Extension(u32),
    TupleHeader,
    FieldLength,
    FieldData(u32),
    Done,
}

const COPY_SIGNATURE: &[u8; 11] = b"PGCOPY\n\xff\r\n\0";

impl CopyRows {
    pub(crate) fn new() -> Self {
        CopyRows {
            state: CopyState::Signature,
            small: [0; 11],
            have: 0,
            fields_left: 0,
            rows: 0,
        }
    }

    /// Rows whose tuple header has been seen.
    pub(crate) fn rows(&self) -> u64 {
        self.rows
    }

    /// Whether the stream ended with its trailer.
    pub(crate) fn is_done(&self) -> bool {
        self.state == CopyState::Done
    }

    /// Gathers `n` bytes of a fixed-size field; `Some(bytes)` once complete.
    fn gather(&mut self, n: usize, input: &mut &[u8]) -> Option<[u8; 11]> {
        let take = (n - self.have).min(input.len());
        self.small[self.have..self.have + take].copy_from_slice(&input[..take]);
        self.have += take;
        *input = &input[take..];
        if self.have == n {
            self.have = 0;
            Some(self.small)
        } else {
            None
        }
    }

    pub(crate) fn feed(&mut self, mut input: &[u8]) -> Result<(), &'static str> {
        while !input.is_empty() {
            match self.state {
                CopyState::Signature => {
                    if let Some(sig) = self.gather(11, &mut input) {
                        if &sig != COPY_SIGNATURE {
                            return Err("no binary COPY signature");
                        }
                        self.state = CopyState::Flags;
                    }
                }
                CopyState::Flags => {
                    if let Some(b) = self.gather(4, &mut input) {
                        if b[..4] != [0; 4] {
                            return Err("unknown binary COPY flags");
                        }
                        self.state = CopyState::ExtensionLength;
                    }
                }
                CopyState::ExtensionLength => {
                    if let Some(b) = self.gather(4, &mut input) {
                        let len = u32::from_be_bytes(b[..4].try_into().expect("4 bytes"));
                        self.state = if len == 0 {
                            CopyState::TupleHeader
                        } else {
                            CopyState::Extension(len)
                        };
                    }
                }
                CopyState::Extension(left) | CopyState::FieldData(left) => {
                    let take = (left as usize).min(input.len());
                    input = &input[take..];
                    let left = left - take as u32;
                    self.state = match (self.state, left) {
                        (CopyState::Extension(_), 0) => CopyState::TupleHeader,
                        (CopyState::Extension(_), l) => CopyState::Extension(l),
                        (_, 0) => self.after_field(),
                        (_, l) => CopyState::FieldData(l),
                    };
                }
                CopyState::TupleHeader => {
                    if let Some(b) = self.gather(2, &mut input) {
                        let count = i16::from_be_bytes([b[0], b[1]]);
                        if count == -1 {
                            self.state = CopyState::Done;
                        } else if count < 0 {
                            return Err("a negative field count");
                        } else {
                            self.rows += 1;
                            self.fields_left = count as u16;
                            self.state = self.after_field_count();
                        }
                    }
                }
                CopyState::FieldLength => {
                    if let Some(b) = self.gather(4, &mut input) {
                        let len = i32::from_be_bytes(b[..4].try_into().expect("4 bytes"));
                        self.fields_left -= 1;
                        self.state = match len {
                            -1 => self.after_field(),
                            l if l < 0 => return Err("a negative field length"),
                            0 => self.after_field(),
                            l => CopyState::FieldData(l as u32),
                        };
                    }
                }
                CopyState::Done => return Err("bytes after the binary COPY trailer"),
            }
        }
        Ok(())
    }

    fn after_field_count(&self) -> CopyState {
        if self.fields_left == 0 {
            CopyState::TupleHeader
        } else {
            CopyState::FieldLength
        }
    }

    fn after_field(&self) -> CopyState {
        self.after_field_count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn copy_stream(rows: &[&[Option<&[u8]>]]) -> Vec<u8> {
        let mut s = COPY_SIGNATURE.to_vec();
        s.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0]);
        for row in rows {
            s.extend_from_slice(&(row.len() as i16).to_be_bytes());
            for field in *row {
                match field {
                    None => s.extend_from_slice(&(-1i32).to_be_bytes()),
                    Some(v) => {
                        s.extend_from_slice(&(v.len() as i32).to_be_bytes());
                        s.extend_from_slice(v);
                    }
                }
            }
        }
        s.extend_from_slice(&(-1i16).to_be_bytes());
        s
    }

    #[test]
    fn rows_are_counted_across_any_chunking() {
        let stream = copy_stream(&[
            &[Some(b"12345678"), None, Some(b"")],
            &[Some(b"x"), Some(b"hello world"), None],
            &[],
        ]);
        for chunk in 1..stream.len() {
            let mut rows = CopyRows::new();
            for piece in stream.chunks(chunk) {
                rows.feed(piece).unwrap();
            }
            assert!(rows.is_done(), "chunk {chunk}");
            assert_eq!(rows.rows(), 3, "chunk {chunk}");
        }
    }

    #[test]
    fn malformed_streams_are_refused() {
        let mut stream = copy_stream(&[&[Some(b"ab")]]);
        let mut rows = CopyRows::new();
        rows.feed(&stream).unwrap();
        assert!(rows.feed(b"x").is_err(), "bytes after the trailer");
        stream[0] = b'X';
        assert!(CopyRows::new().feed(&stream).is_err());
        let cut = copy_stream(&[&[Some(b"abcdef")]]);
        let mut rows = CopyRows::new();
        rows.feed(&cut[..cut.len() - 4]).unwrap();
        assert!(!rows.is_done());
    }
}
