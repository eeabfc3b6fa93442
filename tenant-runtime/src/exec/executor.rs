//! One trait for everything that executes: [`Client`], a pooled connection (`pool::PooledClient`)
//! and [`Transaction`]; [`Writable`] marks the ones that may write (all but a replica
//! connection, `pool::ReplicaClient`).

use std::collections::HashSet;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

use postgres_types::ToSql;
use tokio_postgres::{Row, Statement};

use super::cache::{StatementCache, StatementMode};
use super::client::{Client, Transaction};
use crate::door::SchemaName;
use crate::error::Result;
use crate::sql::SchemaMap;

/// Keeps [`Executor`] implemented only inside this crate (each executor type implements it
/// beside its own definition).
pub(crate) mod sealed {
    pub trait Sealed {}
}

/// The connection-level state every executor carries: its statement cache, its default
/// [`SchemaMap`] (the widest of the three map levels), its [`StatementMode`] and prepare
/// threshold.
#[derive(Debug)]
pub struct ConnState {
    pub(crate) cache: StatementCache,
    pub(crate) map: SchemaMap,
    pub(crate) mode: StatementMode,
    /// In [`StatementMode::Prepared`], the use (while cached) at which a statement is
    /// prepared; 0 never.
    pub(crate) prepare_threshold: u32,
    /// Set when the connection was handed out raw (SQL the library did not write could have
    /// changed its session state): a pool resets it before its next checkout.
    pub(crate) needs_reset: AtomicBool,
    /// The distinct schemas this connection's statements named, counted when its pool
    /// retires connections after a number of them (`None`: not counted). Noted on statement
    /// cache misses only: a schema's first statement on a connection is always a miss.
    pub(crate) schemas_served: Option<Mutex<HashSet<SchemaName>>>,
    /// The connection's age (milliseconds) at the pool's last read of the backend's memory;
    /// `u64::MAX`: never read.
    pub(crate) memory_read_at_ms: AtomicU64,
    /// What the pool's last read of the backend's memory found and counted.
    pub(crate) memory: MemoryRead,
    /// The enum types of the schemas unnamed statements bound enum values for (bounded).
    pub(crate) enum_types: super::EnumTypeCache,
}

/// A pool's last read of a connection's backend memory: the counts at the read and the
/// estimate it left (see the pool's `MemoryEstimate`).
#[derive(Debug, Default)]
pub(crate) struct MemoryRead {
    /// The bytes the backend held at the read.
    pub(crate) at_bytes: AtomicU64,
    /// Schemas served at the read.
    pub(crate) at_schemas: AtomicUsize,
    /// Statements prepared at the read.
    pub(crate) at_prepares: AtomicU64,
    /// Prepared statements closed at the read.
    pub(crate) at_closes: AtomicU64,
    /// Statements the cache had turned away (evicted or not admitted) when its bound last
    /// moved (or stayed) after a read or an estimate: a default-sized cache that turned some
    /// away since, with room in the backend, grows.
    pub(crate) at_turned_away: AtomicU64,
    /// Estimated bytes per schema served.
    pub(crate) per_schema: AtomicU64,
    /// Estimated growth (bytes) at which the next read is due.
    pub(crate) read_after: AtomicU64,
    /// How long the read took (microseconds): the next is spaced by a multiple of it.
    pub(crate) read_micros: AtomicU64,
    /// The connection's time in use so far (microseconds, its checkouts summed, noted as
    /// each one ends): reads are spaced by it, not by the clock.
    pub(crate) in_use_micros: AtomicU64,
    /// `in_use_micros` when the last read was claimed.
    pub(crate) at_in_use_micros: AtomicU64,
}

impl MemoryRead {
    /// Adds a checkout's time to the connection's time in use.
    pub(crate) fn note_in_use(&self, held: std::time::Duration) {
        let micros = u64::try_from(held.as_micros()).unwrap_or(u64::MAX);
        self.in_use_micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// The connection's time in use since the last read was claimed (microseconds).
    pub(crate) fn in_use_since_read(&self) -> u64 {
        self.in_use_micros
            .load(Ordering::Relaxed)
            .saturating_sub(self.at_in_use_micros.load(Ordering::Relaxed))
    }
}

impl Default for ConnState {
    fn default() -> Self {
        ConnState {
            cache: StatementCache::default(),
            map: SchemaMap::default(),
            mode: StatementMode::default(),
            prepare_threshold: StatementCache::DEFAULT_PREPARE_THRESHOLD,
            needs_reset: AtomicBool::new(false),
            schemas_served: None,
            memory_read_at_ms: AtomicU64::new(u64::MAX),
            memory: MemoryRead::default(),
            enum_types: Default::default(),
        }
    }
}

impl ConnState {
    /// Records that SQL of the caller's may have run: the session must be reset before the
    /// connection serves anyone else.
    pub(crate) fn mark_needs_reset(&self) {
        self.needs_reset.store(true, Ordering::Relaxed);
    }

    /// Whether the session needs a reset.
    pub(crate) fn needs_reset(&self) -> bool {
        self.needs_reset.load(Ordering::Relaxed)
    }

    /// Notes that a statement named `schemas` (if the connection counts them).
    pub(crate) fn note_schemas(&self, schemas: &[SchemaName]) {
        if let Some(served) = &self.schemas_served {
            let mut served = served.lock().unwrap_or_else(|e| e.into_inner());
            served.extend(schemas.iter().copied());
        }
    }

    /// How many distinct schemas the connection's statements named (0 if not counted).
    pub(crate) fn schemas_served(&self) -> usize {
        self.schemas_served.as_ref().map_or(0, |served| {
            served.lock().unwrap_or_else(|e| e.into_inner()).len()
        })
    }

    /// After a successful reset.
    pub(crate) fn clear_needs_reset(&self) {
        self.needs_reset.store(false, Ordering::Relaxed);
    }
}

/// Something that executes statements: a [`Client`], a pooled connection (`pool::PooledClient`), a [`Transaction`],
/// or a reference to one. Write library functions once over `E: Executor` and they run on
/// all of them.
///
/// The trait is sealed: the runtime provides every implementation.
///
/// ```
/// use tenant_runtime::{Db, Executor, Model};
///
/// #[derive(Model)]
/// #[tenant(table = "notes")]
/// struct Note { #[tenant(primary_key)] id: i64, body: String }
///
/// // Runs on a client, a transaction or a savepoint alike.
/// async fn note_count<E: Executor>(db: &Db<E>) -> Result<i64, tenant_runtime::Error> {
///     Note::query().count(db).await
/// }
/// ```
pub trait Executor: Send + Sync + sealed::Sealed {
    #[doc(hidden)]
    fn conn_state(&self) -> &ConnState;
    #[doc(hidden)]
    fn pg(&self) -> PgRef<'_>;
}

/// The tokio-postgres object behind an executor.
#[doc(hidden)]
#[derive(Clone, Copy)]
pub enum PgRef<'a> {
    Client(&'a tokio_postgres::Client),
    Transaction(&'a tokio_postgres::Transaction<'a>),
}

macro_rules! dispatch {
    ($self:ident, $pg:ident => $e:expr) => {
        match $self {
            PgRef::Client($pg) => $e,
            PgRef::Transaction($pg) => $e,
        }
    };
}

#[allow(missing_docs)]
impl<'a> PgRef<'a> {
    pub async fn prepare(self, sql: &str) -> Result<Statement> {
        Ok(dispatch!(self, pg => pg.prepare(sql).await)?)
    }
    pub async fn query(self, st: &Statement, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>> {
        Ok(dispatch!(self, pg => pg.query(st, params).await)?)
    }
    pub async fn execute(self, st: &Statement, params: &[&(dyn ToSql + Sync)]) -> Result<u64> {
        Ok(dispatch!(self, pg => pg.execute(st, params).await)?)
    }
    pub async fn batch_execute(self, sql: &str) -> Result<()> {
        Ok(dispatch!(self, pg => pg.batch_execute(sql).await)?)
    }
    pub async fn query_raw<'p>(
        self,
        st: &Statement,
        params: &'p [&'p (dyn ToSql + Sync)],
    ) -> Result<tokio_postgres::RowStream> {
        let params = params.iter().map(|p| *p as &dyn ToSql);
        Ok(dispatch!(self, pg => pg.query_raw(st, params).await)?)
    }
    pub async fn copy_in(self, st: &Statement) -> Result<tokio_postgres::CopyInSink<bytes::Bytes>> {
        Ok(dispatch!(self, pg => pg.copy_in(st).await)?)
    }
    /// Runs a statement through the unnamed prepared statement in one round trip.
    pub async fn execute_typed(
        self,
        sql: &str,
        params: &[(&(dyn ToSql + Sync), postgres_types::Type)],
    ) -> Result<u64> {
        Ok(dispatch!(self, pg => pg.execute_typed(sql, params).await)?)
    }
    /// Streams the rows of a statement run through the unnamed prepared statement.
    pub async fn query_typed_raw(
        self,
        sql: &str,
        params: &[(&(dyn ToSql + Sync), postgres_types::Type)],
    ) -> Result<tokio_postgres::RowStream> {
        let params = params.iter().map(|(p, t)| (*p, t.clone()));
        Ok(dispatch!(self, pg => pg.query_typed_raw(sql, params).await)?)
    }
    /// Runs a statement through the unnamed prepared statement in one round trip.
    pub async fn query_typed(
        self,
        sql: &str,
        params: &[(&(dyn ToSql + Sync), postgres_types::Type)],
    ) -> Result<Vec<Row>> {
        Ok(dispatch!(self, pg => pg.query_typed(sql, params).await)?)
    }
}

impl sealed::Sealed for Client {}
impl Executor for Client {
    fn conn_state(&self) -> &ConnState {
        &self.state
    }
    fn pg(&self) -> PgRef<'_> {
        PgRef::Client(&self.pg)
    }
}

impl sealed::Sealed for Transaction<'_> {}
impl Executor for Transaction<'_> {
    fn conn_state(&self) -> &ConnState {
        self.state
    }
    fn pg(&self) -> PgRef<'_> {
        PgRef::Transaction(&self.pg)
    }
}

impl<E: Executor + ?Sized> sealed::Sealed for &E {}
impl<E: Executor + ?Sized> Executor for &E {
    fn conn_state(&self) -> &ConnState {
        (**self).conn_state()
    }
    fn pg(&self) -> PgRef<'_> {
        (**self).pg()
    }
}

impl<E: Executor + ?Sized> sealed::Sealed for &mut E {}
impl<E: Executor + ?Sized> Executor for &mut E {
    fn conn_state(&self) -> &ConnState {
        (**self).conn_state()
    }
    fn pg(&self) -> PgRef<'_> {
        (**self).pg()
    }
}

/// An executor that may write: a [`Client`], a pooled connection (`pool::PooledClient`), a [`Transaction`], or a
/// reference to one; every executor but a replica connection (`pool::ReplicaClient`).
///
/// The model calls that write ([`insert`](crate::Model::insert),
/// [`update`](crate::Model::update), [`delete`](crate::Model::delete),
/// [`create_table`](crate::Model::create_table), [`drop_table`](crate::Model::drop_table))
/// require it, so a write through a replica handle does not compile. It cannot be implemented
/// outside this crate ([`Executor`] is sealed).
///
/// ```
/// use tenant_runtime::{Db, Model, Writable};
///
/// #[derive(Model)]
/// #[tenant(table = "notes")]
/// struct Note { #[tenant(primary_key)] id: i64, body: String }
///
/// // Library code that writes says so; a replica handle is refused at compile time.
/// async fn add_note<E: Writable>(db: &Db<E>, id: i64) -> Result<(), tenant_runtime::Error> {
///     Note { id, body: "hello".into() }.insert(db).await?;
///     Ok(())
/// }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is a read-only replica connection: it cannot write",
    label = "a replica handle serves reads only",
    note = "writes go to the primary: use the handle from `ReplicatedPool::get` (or `RoutedDb::primary`), not `read`"
)]
pub trait Writable: Executor {}

impl Writable for Client {}
impl Writable for Transaction<'_> {}
impl<E: Writable + ?Sized> Writable for &E {}
impl<E: Writable + ?Sized> Writable for &mut E {}

/// An executor that can open a transaction: a [`Client`] opens one, a [`Transaction`] opens a
/// savepoint inside itself.
///
/// ```no_run
/// use tenant_runtime::{Begin, Client};
///
/// /// Runs in a transaction of its own on a client, in a savepoint inside a transaction.
/// async fn in_a_transaction<B: Begin>(on: &mut B) -> Result<(), tenant_runtime::Error> {
///     let tx = on.begin().await?;
///     tx.commit().await
/// }
/// # async fn run() -> Result<(), tenant_runtime::Error> {
/// let mut client = Client::connect("postgres://postgres@127.0.0.1/postgres").await?;
/// in_a_transaction(&mut client).await?;           // BEGIN ... COMMIT
/// let mut tx = client.transaction().await?;
/// in_a_transaction(&mut tx).await?;               // SAVEPOINT ... RELEASE
/// tx.commit().await?;
/// # Ok(()) }
/// ```
pub trait Begin: Executor {
    /// Opens a transaction (or a savepoint).
    fn begin(&mut self) -> impl Future<Output = Result<Transaction<'_>>> + Send;
}

impl Begin for Client {
    fn begin(&mut self) -> impl Future<Output = Result<Transaction<'_>>> + Send {
        self.transaction()
    }
}
impl Begin for Transaction<'_> {
    fn begin(&mut self) -> impl Future<Output = Result<Transaction<'_>>> + Send {
        self.savepoint()
    }
}
impl<B: Begin + ?Sized> Begin for &mut B {
    fn begin(&mut self) -> impl Future<Output = Result<Transaction<'_>>> + Send {
        (**self).begin()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_connections_time_in_use_sums_its_checkouts_since_the_last_read() {
        let reads = MemoryRead::default();
        // Two checkouts of 10 ms and 15 ms: 25 ms in use, however long it sat idle.
        reads.note_in_use(Duration::from_millis(10));
        reads.note_in_use(Duration::from_millis(15));
        assert_eq!(reads.in_use_since_read(), 25_000);
        // A read claimed now counts from here.
        reads.at_in_use_micros.store(25_000, Ordering::Relaxed);
        reads.note_in_use(Duration::from_micros(300));
        assert_eq!(reads.in_use_since_read(), 300);
    }
}
