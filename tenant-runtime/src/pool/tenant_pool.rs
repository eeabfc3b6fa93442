//! A connection pool whose connections are [`Client`]s: each with its own bounded statement
//! cache, the pool's default [`SchemaMap`] and its [`StatementMode`].
//!
//! Built on `deadpool`'s generic managed pool (the core `deadpool-postgres` is built on) with
//! our own manager, because a pooled connection must carry our per-connection state:
//! `deadpool-postgres`' client wrapper has its own statement cache, which is unbounded and
//! keyed by SQL text, so thousands of tenants would grow it without limit.

use std::collections::HashMap;
use std::future::Future;
use std::hash::BuildHasher;
use std::ops::{Deref, DerefMut};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use deadpool::managed::{self, Metrics, RecycleError, RecycleResult, TimeoutType, Timeouts};
use smallvec::SmallVec;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::hand_off::{AcquireError, HandOff, Permit};
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres::{NoTls, SimpleQueryMessage, Socket};

use crate::door::{SchemaName, Tenant};
use crate::error::{Error, PoolError, PoolStage, Result};
use crate::exec::Client;
use crate::exec::Db;
use crate::exec::{
    sealed, Begin, ConnState, Executor, PgRef, StatementCache, StatementMode, Transaction, Writable,
};
use crate::sql::SchemaMap;

type ConnectFuture =
    Pin<Box<dyn Future<Output = Result<tokio_postgres::Client, tokio_postgres::Error>> + Send>>;
type Connect = Arc<dyn Fn(&tokio_postgres::Config) -> ConnectFuture + Send + Sync>;

/// Opens connections with `tls` and drives each on its own tokio task.
fn connector<T>(tls: T) -> Connect
where
    T: MakeTlsConnect<Socket> + Clone + Send + Sync + 'static,
    T::Stream: Send + 'static,
    T::TlsConnect: Send,
    <T::TlsConnect as TlsConnect<Socket>>::Future: Send,
{
    Arc::new(move |config: &tokio_postgres::Config| {
        let config = config.clone();
        let tls = tls.clone();
        Box::pin(async move {
            let (client, connection) = config.connect(tls).await?;
            tokio::spawn(async move {
                if let Err(error) = connection.await {
                    tracing::warn!(%error, "pooled postgres connection closed with an error");
                }
            });
            Ok(client)
        })
    })
}

/// Creates and checks the pool's connections.
struct Manager {
    config: tokio_postgres::Config,
    connect: Connect,
    map: SchemaMap,
    mode: StatementMode,
    cache_capacity: usize,
    /// Whether `cache_capacity` is the default, which follows the backend's memory where the
    /// pool reads it (see [`cache_bound_after_read`]).
    cache_follows_memory: bool,
    prepare_threshold: u32,
    budget: ServerBudget,
    /// Bounds the round trips of a recycle (applied here, not by deadpool, so the usual
    /// recycle with no round trip sets no timer).
    recycle_timeout: Option<Duration>,
    /// Set once a memory check failed (the role may not read `pg_backend_memory_contexts`):
    /// no more checks are sent.
    memory_unreadable: AtomicBool,
    /// [`READ_SPACING`] times the pool's size.
    read_spacing: u64,
}

/// When a connection is retired (closed at its next checkout, a new one opened lazily), to
/// keep what its server backend holds bounded.
#[derive(Debug, Clone, Copy)]
struct ServerBudget {
    max_lifetime: Option<Duration>,
    max_schemas: Option<usize>,
    /// Whether `max_schemas` is the default, which yields to the memory budget where the
    /// backend's memory can be read (see `TenantPoolBuilder::max_schemas_per_connection`).
    schemas_by_default: bool,
    max_memory: Option<u64>,
}

/// A connection's backend memory is first read at this checkout of the connection (if it
/// served a schema by then); after that, once it has grown (by estimate, see
/// [`MemoryEstimate`]) by a quarter of the room its last read left under the budget.
const FIRST_MEMORY_READ_AT: usize = 64;

/// At most this many new schemas between two reads (a thousand 10-table schemas are about
/// 110 MB of catalog). A read walks every memory context of the backend: 3 ms for one that
/// holds the catalogs of 625 schemas of 10 tables, 9 ms at 2,000, 22 ms with 3,000 prepared
/// statements besides (measured). Reading on a clock (every 64 checkouts, at most once in
/// 10 s per connection, until session 7) spent a fifth of the Zipf bench's server time in
/// reads, where what grows a backend is what it touches and prepares, not the time.
const MAX_SCHEMAS_BETWEEN_READS: usize = 1_000;

/// What one prepared statement is taken to hold in its backend, for the estimate between
/// reads and for growing the statement cache: measured 8.6 KB (custom plans) to 12.8 KB
/// (generic plans) for a key lookup of a 3-column table, rounded up.
const PREPARED_STATEMENT_BYTES: u64 = 16 * 1024;

/// A connection's memory read is due no sooner than this many times the last read's duration
/// times the pool's size of the connection's time in use after it (its checkouts' time
/// summed), unless the estimate says it is urgent ([`MemoryEstimate::read_urgent`]): a pool's
/// reads take about 1 % of one server core at most, and at most `1 / (100 × max_size)` of the
/// time its connections serve requests, however busy the pool (a read delays the checkout
/// that makes it; what grows a backend is its use, not the clock). A read of a backend
/// holding 4,000 prepared statements takes 19-28 ms of server time; on the Zipf bench (16
/// connections, 2 cores shared with the client) reads by the estimate alone took 5-8 % of
/// the server's CPU. Spaced so, each of those connections reads at most once in 30-45 s of
/// use, besides the urgent reads. (Until session 13 the spacing was wall-clock time: a pool
/// idle half the time then read twice as often for the work it did.)
const READ_SPACING: u64 = 100;

/// What a connection's last memory read found, to estimate its growth since: the catalog
/// memory per schema served and the statements prepared and not closed since (a full cache
/// closes one for each it prepares). Per schema is what the backend grew by between its last
/// two reads, less the statements prepared between them, over the schemas first served
/// between them (see [`GrowthBetweenReads`]), at least a quarter of its memory over all the
/// schemas it served; at the first read, or with fewer than [`MARGINAL_MIN_SCHEMAS`] new
/// schemas between, that whole average (a high estimate: it counts the base memory and the
/// statements too). The next read is due once the
/// estimated growth reaches a quarter of the room left under the budget (at least 16
/// schemas' worth), or after [`MAX_SCHEMAS_BETWEEN_READS`] new schemas: reads are
/// rare far from the budget and frequent near it, and the overshoot past it is about a
/// quarter of the room the last read saw.
#[derive(Debug, Clone, Copy, PartialEq)]
struct MemoryEstimate {
    per_schema: u64,
    /// Estimated growth (bytes) at which the next read is due.
    read_after: u64,
}

/// The fewest new schemas between two reads whose growth gives the per-schema estimate.
const MARGINAL_MIN_SCHEMAS: usize = 64;

/// What a backend grew by between two reads of its memory, and what its connection did
/// meanwhile.
#[derive(Debug, Clone, Copy)]
struct GrowthBetweenReads {
    /// The second read's bytes less the first's (negative if it gave memory back).
    bytes: i64,
    /// Schemas the connection first served between the reads.
    new_schemas: usize,
    /// Statements it prepared between them, less those it closed.
    net_prepares: i64,
}

impl GrowthBetweenReads {
    /// The catalog memory each new schema added: the growth less the statements' estimated
    /// share ([`PREPARED_STATEMENT_BYTES`] each, added back for those closed), over the new
    /// schemas; `None` with fewer than [`MARGINAL_MIN_SCHEMAS`] of them. With the growth
    /// estimate's own statement share, it predicts the growth of the same mix of use.
    fn per_schema(&self) -> Option<u64> {
        if self.new_schemas < MARGINAL_MIN_SCHEMAS {
            return None;
        }
        let statements = i128::from(self.net_prepares) * i128::from(PREPARED_STATEMENT_BYTES);
        let catalogs = (i128::from(self.bytes) - statements).max(0);
        u64::try_from(catalogs / self.new_schemas as i128).ok()
    }
}

impl MemoryEstimate {
    fn after_read(
        bytes: u64,
        schemas: usize,
        max: u64,
        between: Option<GrowthBetweenReads>,
    ) -> MemoryEstimate {
        let average = (bytes / schemas.max(1) as u64).max(1);
        let per_schema = between
            .and_then(|between| between.per_schema())
            .map_or(average, |marginal| marginal.max(average / 4))
            .max(1);
        let room = max.saturating_sub(bytes);
        MemoryEstimate {
            per_schema,
            read_after: (room / 4).max(16 * per_schema),
        }
    }

    /// Whether a connection that served `new_schemas` and prepared `new_prepares` since the
    /// read is due another.
    fn read_due(&self, new_schemas: usize, new_prepares: u64) -> bool {
        new_schemas >= MAX_SCHEMAS_BETWEEN_READS
            || self.grown(new_schemas, new_prepares) >= self.read_after
    }

    /// Whether the estimated growth since the read is three times what makes a read due (at
    /// least three quarters of the room the read left): due at once, however recent the
    /// last read (see [`READ_SPACING`]).
    fn read_urgent(&self, new_schemas: usize, new_prepares: u64) -> bool {
        self.grown(new_schemas, new_prepares) >= self.read_after.saturating_mul(3)
    }

    /// The estimated growth (bytes) since the read.
    fn grown(&self, new_schemas: usize, new_prepares: u64) -> u64 {
        (new_schemas as u64)
            .saturating_mul(self.per_schema)
            .saturating_add(new_prepares.saturating_mul(PREPARED_STATEMENT_BYTES))
    }
}

/// A connection's growth since its pool's last read of its backend's memory, by the counts
/// the read noted, and the estimate the read left.
struct SinceRead {
    estimate: MemoryEstimate,
    new_schemas: usize,
    /// Net of the statements closed since: a full cache closes one for each it prepares, and
    /// holds no more on the server.
    new_prepares: u64,
}

impl SinceRead {
    fn of(state: &crate::exec::ConnState) -> SinceRead {
        let reads = &state.memory;
        let new_prepares = state
            .cache
            .prepares()
            .saturating_sub(reads.at_prepares.load(Ordering::Relaxed))
            .saturating_sub(
                state
                    .cache
                    .closes()
                    .saturating_sub(reads.at_closes.load(Ordering::Relaxed)),
            );
        SinceRead {
            estimate: MemoryEstimate {
                per_schema: reads.per_schema.load(Ordering::Relaxed),
                read_after: reads.read_after.load(Ordering::Relaxed),
            },
            new_schemas: state
                .schemas_served()
                .saturating_sub(reads.at_schemas.load(Ordering::Relaxed)),
            new_prepares,
        }
    }
}

/// Whether a connection in use `in_use_micros` since a read that took `read_micros` is at
/// least `spacing` times that read (see [`READ_SPACING`]).
fn read_spaced(in_use_micros: u64, read_micros: u64, spacing: u64) -> bool {
    in_use_micros >= read_micros.saturating_mul(spacing)
}

/// The bytes the backend holds in all its memory contexts (PostgreSQL 14+; superusers and
/// roles with `pg_read_all_stats` may read it).
const BACKEND_MEMORY_SQL: &str =
    "SELECT coalesce(sum(total_bytes), 0)::int8 FROM pg_catalog.pg_backend_memory_contexts";

impl Manager {
    /// Why `client` must be retired by its age or the schemas it served, if it must.
    fn over_budget(&self, client: &Client, metrics: &Metrics) -> Option<String> {
        if let Some(max) = self.budget.max_lifetime {
            if metrics.age() >= max {
                return Some(format!("older than max_lifetime ({max:?})"));
            }
        }
        let max = self.budget.max_schemas?;
        if self.schemas_yield_to_memory() {
            return None;
        }
        let served = client.state.schemas_served();
        (served >= max)
            .then(|| format!("served {served} schemas, max_schemas_per_connection is {max}"))
    }

    /// Whether the default schema bound yields to the memory budget: it does while the
    /// backends' memory is checked (a budget is set and no read has failed). Then a
    /// connection that served the bound's number of new schemas since its last read has its
    /// memory read early instead (see [`Manager::memory_read_due`]).
    fn schemas_yield_to_memory(&self) -> bool {
        self.budget.schemas_by_default
            && self.budget.max_memory.is_some()
            && !self.memory_unreadable.load(Ordering::Relaxed)
    }

    /// Whether `client`'s backend memory is due a read: first at its
    /// [`FIRST_MEMORY_READ_AT`]th checkout, then as its [`MemoryEstimate`] says (or once it
    /// served the default schema bound's number of new schemas, where that bound yields to
    /// the memory budget). A due read is claimed (its time noted) here.
    fn memory_read_due(&self, client: &Client, metrics: &Metrics) -> bool {
        if self.budget.max_memory.is_none() || self.memory_unreadable.load(Ordering::Relaxed) {
            return false;
        }
        let state = &client.state;
        let last = state.memory_read_at_ms.load(Ordering::Relaxed);
        let now_ms = || u64::try_from(metrics.age().as_millis()).unwrap_or(u64::MAX - 1);
        let due = if last == u64::MAX {
            state.schemas_served() > 0 && metrics.recycle_count + 1 >= FIRST_MEMORY_READ_AT
        } else {
            let since = SinceRead::of(state);
            let estimate = since.estimate;
            let bound = self
                .budget
                .max_schemas
                .filter(|_| self.schemas_yield_to_memory());
            let due = estimate.read_due(since.new_schemas, since.new_prepares)
                || bound.is_some_and(|bound| since.new_schemas >= bound);
            let spaced = || {
                let read_micros = state.memory.read_micros.load(Ordering::Relaxed);
                read_spaced(
                    state.memory.in_use_since_read(),
                    read_micros,
                    self.read_spacing,
                )
            };
            due && (spaced() || estimate.read_urgent(since.new_schemas, since.new_prepares))
        };
        if due {
            state.memory_read_at_ms.store(now_ms(), Ordering::Relaxed);
            let in_use = state.memory.in_use_micros.load(Ordering::Relaxed);
            state
                .memory
                .at_in_use_micros
                .store(in_use, Ordering::Relaxed);
        }
        due
    }

    /// Between reads: grows `client`'s default-sized statement cache bound by the estimate,
    /// as a read would (see [`cache_bound_after_read`]), once the cache turned away an eighth
    /// of its bound since the bound last moved and the backend's estimated memory (the last
    /// read plus the [`MemoryEstimate`]'s growth since, a high estimate) is under three
    /// quarters of the budget. Reads are spaced tens of seconds of use apart (see
    /// [`READ_SPACING`]); without this, a cache warming up waits for them, turning its
    /// statements away meanwhile. The statements it then prepares count in the estimate, so
    /// the next read comes no later than it would have; only reads shrink the bound.
    fn grow_between_reads(&self, client: &Client) {
        let Some(max) = self.budget.max_memory else {
            return;
        };
        let state = &client.state;
        if !self.cache_follows_memory
            || self.memory_unreadable.load(Ordering::Relaxed)
            || state.memory_read_at_ms.load(Ordering::Relaxed) == u64::MAX
        {
            return;
        }
        let cache = &state.cache;
        let turned_away = cache
            .turned_away()
            .saturating_sub(state.memory.at_turned_away.load(Ordering::Relaxed));
        if turned_away < (cache.capacity() / 8).max(1) as u64 {
            return;
        }
        let since = SinceRead::of(state);
        let estimated = state
            .memory
            .at_bytes
            .load(Ordering::Relaxed)
            .saturating_add(since.estimate.grown(since.new_schemas, since.new_prepares));
        if estimated < grow_below_of(max) {
            self.follow_memory(client, estimated, max);
        }
    }

    /// Reads `client`'s backend memory (one round trip); why it must be retired, if it must.
    async fn over_memory_budget(&self, client: &Client) -> Option<String> {
        let max = self.budget.max_memory?;
        let state = &client.state;
        let served = state.schemas_served();
        let started = Instant::now();
        let read = backend_memory(client).await;
        if let Ok(bytes) = &read {
            let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
            state.memory.read_micros.store(micros, Ordering::Relaxed);
            tracing::debug!(bytes, micros, "read a pooled connection's backend memory");
        }
        match read {
            Ok(bytes) if bytes >= max => Some(format!(
                "its backend holds {bytes} bytes, max_backend_memory is {max}"
            )),
            Ok(bytes) => {
                if self.cache_follows_memory {
                    self.follow_memory(client, bytes, max);
                }
                let reads = &state.memory;
                let between = (reads.at_bytes.load(Ordering::Relaxed) > 0).then(|| {
                    let since = |now: u64, at: &AtomicU64| {
                        i64::try_from(now.saturating_sub(at.load(Ordering::Relaxed)))
                            .unwrap_or(i64::MAX)
                    };
                    GrowthBetweenReads {
                        bytes: i64::try_from(bytes).unwrap_or(i64::MAX)
                            - i64::try_from(reads.at_bytes.load(Ordering::Relaxed))
                                .unwrap_or(i64::MAX),
                        new_schemas: served
                            .saturating_sub(reads.at_schemas.load(Ordering::Relaxed)),
                        net_prepares: since(state.cache.prepares(), &reads.at_prepares)
                            - since(state.cache.closes(), &reads.at_closes),
                    }
                });
                let estimate = MemoryEstimate::after_read(bytes, served, max, between);
                reads.at_bytes.store(bytes, Ordering::Relaxed);
                reads.at_schemas.store(served, Ordering::Relaxed);
                reads
                    .at_prepares
                    .store(state.cache.prepares(), Ordering::Relaxed);
                reads
                    .at_closes
                    .store(state.cache.closes(), Ordering::Relaxed);
                reads
                    .per_schema
                    .store(estimate.per_schema, Ordering::Relaxed);
                reads
                    .read_after
                    .store(estimate.read_after, Ordering::Relaxed);
                None
            }
            Err(error) => {
                tracing::info!(
                    %error,
                    "cannot read pg_backend_memory_contexts; the pool's memory budget is not checked"
                );
                self.memory_unreadable.store(true, Ordering::Relaxed);
                None
            }
        }
    }

    /// Moves `client`'s default-sized statement cache bound after a read (or an estimate, see
    /// [`Manager::grow_between_reads`]) found its backend at `bytes` (see
    /// [`cache_bound_after_read`]).
    fn follow_memory(&self, client: &Client, bytes: u64, max: u64) {
        let cache = &client.state.cache;
        let stats = cache.stats();
        // Statements the bound turned away since it last moved: evicted, or not admitted.
        let at_turned_away = &client.state.memory.at_turned_away;
        let now = cache.turned_away();
        let since = now.saturating_sub(at_turned_away.swap(now, Ordering::Relaxed));
        let bound = cache_bound_after_read(stats.capacity, stats.len, since, bytes, max);
        if bound != stats.capacity {
            tracing::debug!(
                from = stats.capacity,
                to = bound,
                backend_bytes = bytes,
                max_backend_memory = max,
                "moving a pooled connection's statement cache bound"
            );
            cache.resize(bound);
            // What shrinking evicted is not a sign the cache is too small.
            at_turned_away.store(cache.turned_away(), Ordering::Relaxed);
        }
    }

    /// The round trips a returned connection may need (a memory read, a session reset).
    async fn recycle_slow(&self, client: &mut Client, read_memory: bool) -> RecycleResult<Error> {
        if read_memory {
            if let Some(reason) = self.over_memory_budget(client).await {
                tracing::debug!(%reason, "retiring a pooled connection");
                return Err(RecycleError::message(format!("retired: {reason}")));
            }
        }
        if client.state.needs_reset() {
            reset_session(client).await
        } else {
            Ok(())
        }
    }
}

/// The bound of a pool connection's default-sized statement cache after a read found its
/// backend at `bytes` of `max` (under it: at `max` the connection retires). The cache's
/// prepared statements are the part of a backend's memory that can be given back (its
/// catalog caches cannot), so the bound follows the room the budget leaves, estimating
/// [`PREPARED_STATEMENT_BYTES`] a statement:
/// - from seven eighths of `max` up, it gives back what passes three quarters (at least an
///   eighth of what it holds; the least recently used statements are closed on the server),
///   never below [`StatementCache::DEFAULT_CAPACITY`], so the catalogs keep the room;
/// - under three quarters of `max`, a cache that turned `turned_away` statements away since
///   the last read (evicted them, or did not admit them) grows by them (at least doubling),
///   up to [`TenantPoolBuilder::DEFAULT_STATEMENT_CACHE_CEILING`] and to what the room up to
///   three quarters holds: the connection's working set (with affinity about
///   `tenants / max_size` tenants' statements) stays prepared;
/// - otherwise (between the two, or nothing turned away) it stays.
fn cache_bound_after_read(
    capacity: usize,
    len: usize,
    turned_away: u64,
    bytes: u64,
    max: u64,
) -> usize {
    let floor = StatementCache::DEFAULT_CAPACITY;
    let ceiling = TenantPoolBuilder::DEFAULT_STATEMENT_CACHE_CEILING;
    let grow_below = grow_below_of(max);
    let statements =
        |bytes: u64| usize::try_from(bytes / PREPARED_STATEMENT_BYTES).unwrap_or(usize::MAX);
    if bytes >= max / 8 * 7 {
        if capacity <= floor {
            return capacity;
        }
        let over = statements(bytes - grow_below).max(len / 8);
        return len.saturating_sub(over).clamp(floor, capacity);
    }
    if bytes < grow_below && turned_away > 0 {
        let turned_away = usize::try_from(turned_away).unwrap_or(usize::MAX);
        let grown = capacity
            .saturating_add(turned_away)
            .max(capacity.saturating_mul(2))
            .min(ceiling)
            .min(len.saturating_add(statements(grow_below - bytes)));
        return grown.max(capacity);
    }
    capacity
}

/// Under this much of `max`, a default-sized statement cache bound may grow (see
/// [`cache_bound_after_read`]).
fn grow_below_of(max: u64) -> u64 {
    max / 4 * 3
}

/// The memory `client`'s backend holds, in bytes.
async fn backend_memory(client: &Client) -> std::result::Result<u64, tokio_postgres::Error> {
    let messages = client.pg.simple_query(BACKEND_MEMORY_SQL).await?;
    Ok(messages
        .iter()
        .find_map(|m| match m {
            SimpleQueryMessage::Row(row) => row.get(0).and_then(|v| v.parse().ok()),
            _ => None,
        })
        .unwrap_or(0))
}

impl managed::Manager for Manager {
    type Type = Client;
    type Error = Error;

    async fn create(&self) -> Result<Client> {
        let pg = (self.connect)(&self.config).await?;
        let mut client = Client::new(pg)
            .with_statement_cache_capacity(self.cache_capacity)
            .with_schema_map(self.map.clone())
            .with_statement_mode(self.mode)
            .with_prepare_threshold(self.prepare_threshold);
        if self.budget.max_schemas.is_some() || self.budget.max_memory.is_some() {
            client.state.schemas_served = Some(Mutex::default());
        }
        Ok(client)
    }

    async fn recycle(&self, client: &mut Client, metrics: &Metrics) -> RecycleResult<Error> {
        if client.is_closed() {
            tracing::debug!("dropping a closed pooled connection");
            return Err(RecycleError::message("the connection is closed"));
        }
        if let Some(reason) = self.over_budget(client, metrics) {
            tracing::debug!(%reason, "retiring a pooled connection");
            return Err(RecycleError::message(format!("retired: {reason}")));
        }
        // Only the library's own statements ran: nothing to check, no round trip. They never
        // leave a transaction open (a `Transaction` dropped without commit, by a panic or a
        // cancelled future, queues its ROLLBACK ahead of anything the next user sends) and
        // never change the session (every schema is named in the SQL; `SET LOCAL` ends with
        // its transaction). No timer either: the recycle timeout covers round trips only.
        let read_memory = self.memory_read_due(client, metrics);
        if !read_memory {
            self.grow_between_reads(client);
            if !client.state.needs_reset() {
                return Ok(());
            }
        }
        // Boxed: the round trips are rare; inline, their state would make every checkout's
        // future (which deadpool moves several times) a kilobyte larger.
        let slow = Box::pin(self.recycle_slow(client, read_memory));
        match self.recycle_timeout {
            Some(timeout) => tokio::time::timeout(timeout, slow)
                .await
                .unwrap_or_else(|_| {
                    tracing::warn!(
                        ?timeout,
                        "dropping a pooled connection whose check timed out"
                    );
                    Err(RecycleError::message(
                        "checking the returned connection timed out",
                    ))
                }),
            None => slow.await,
        }
    }
}

/// What a connection that was handed out raw runs before its next checkout: one query string,
/// one round trip. It is `DISCARD ALL` but for `DEALLOCATE ALL`: the first statement proves
/// the connection is outside a transaction block (inside one, the transaction started before
/// this statement, so the timestamps differ; in a failed one, it errors), the rest reset the
/// session, and the `DO` block deallocates the statements prepared with SQL `PREPARE` only,
/// which keeps the protocol-level ones valid: the library's statement cache, and the
/// statements tokio-postgres keeps to look up types (`DISCARD ALL` would leave both naming
/// statements that no longer exist on the server).
pub(crate) const RESET_SESSION_SQL: &str = "SELECT now() = statement_timestamp(); \
    CLOSE ALL; \
    SET SESSION AUTHORIZATION DEFAULT; \
    RESET ALL; \
    UNLISTEN *; \
    SELECT pg_advisory_unlock_all(); \
    DISCARD PLANS; \
    DISCARD TEMP; \
    DISCARD SEQUENCES; \
    DO $tenant_reset$ DECLARE p record; BEGIN \
    FOR p IN SELECT name FROM pg_catalog.pg_prepared_statements WHERE from_sql LOOP \
    EXECUTE pg_catalog.format('DEALLOCATE %I', p.name); END LOOP; END $tenant_reset$";

/// Resets the session of a connection that was handed out raw, or fails (and the pool drops
/// the connection) if it is inside a transaction block or the reset fails.
async fn reset_session(client: &mut Client) -> RecycleResult<Error> {
    let messages = client
        .pg
        .simple_query(RESET_SESSION_SQL)
        .await
        .map_err(|error| {
            tracing::debug!(%error, "dropping a pooled connection whose session reset failed");
            RecycleError::Backend(error.into())
        })?;
    let outside_transaction = messages
        .iter()
        .find_map(|m| match m {
            SimpleQueryMessage::Row(row) => Some(row.get(0) == Some("t")),
            _ => None,
        })
        .unwrap_or(false);
    if !outside_transaction {
        tracing::warn!(
            "dropping a pooled connection returned inside a transaction block \
             (a BEGIN sent as raw SQL and never ended?)"
        );
        return Err(RecycleError::message(
            "the connection was returned inside a transaction block",
        ));
    }
    client.state.clear_needs_reset();
    Ok(())
}

/// A connection checked out of a [`TenantPool`]: a [`Client`] that goes back to the pool when
/// dropped. It is an [`Executor`](crate::Executor) and can [`Begin`](crate::Begin)
/// transactions, so [`Db<PooledClient>`](Db) runs every statement, CRUD call and transaction.
///
/// ```no_run
/// use tenant_runtime::{Allowlist, TenantPool};
/// # async fn run() -> Result<(), tenant_runtime::Error> {
/// let pool = TenantPool::builder("postgres://postgres@127.0.0.1/postgres")?.build()?;
/// let conn = pool.client().await?;
/// println!("statements cached on this connection: {}", conn.statement_cache().stats().len);
/// # Ok(()) }
/// ```
pub struct PooledClient {
    // Dropped first: the connection is back in the pool before its permit and the tenant's
    // slot are freed, so whoever they wake finds it idle.
    object: managed::Object<Manager>,
    /// One of the pool's `max_size` permits; dropped, it hands this connection to the
    /// waiter that prefers it.
    _permit: Permit,
    /// The tenant's share of `max_per_tenant`, held while the connection is out.
    _tenant_slot: Option<TenantSlot>,
}

impl Drop for PooledClient {
    fn drop(&mut self) {
        // The checkout's time toward the connection's time in use, by which its memory
        // reads are spaced (only where they are counted: a pool with a budget).
        if self.object.state.schemas_served.is_some() {
            let held = managed::Object::metrics(&self.object).last_used();
            self.object.state.memory.note_in_use(held);
        }
    }
}

impl Deref for PooledClient {
    type Target = Client;
    fn deref(&self) -> &Client {
        &self.object
    }
}

impl DerefMut for PooledClient {
    fn deref_mut(&mut self) -> &mut Client {
        &mut self.object
    }
}

impl sealed::Sealed for PooledClient {}
impl Executor for PooledClient {
    fn conn_state(&self) -> &ConnState {
        Client::conn_state(self)
    }
    fn pg(&self) -> PgRef<'_> {
        Client::pg(self)
    }
}
impl Writable for PooledClient {}
impl Begin for PooledClient {
    fn begin(&mut self) -> impl Future<Output = Result<Transaction<'_>>> + Send {
        self.transaction()
    }
}

impl std::fmt::Debug for PooledClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("PooledClient").field(&*self.object).finish()
    }
}

/// A tenant handle on a pooled connection: what [`TenantPool::get`] returns.
///
/// ```
/// use tenant_runtime::pool::PooledDb;
///
/// // A function that works on a tenant's pooled handle (it goes back to the pool when dropped).
/// fn tenant_of(db: &PooledDb) -> &str {
///     db.tenant().key()
/// }
/// ```
pub type PooledDb = Db<PooledClient>;

/// A pool of PostgreSQL connections that serves any number of tenants.
///
/// Connections are shared between tenants; isolation comes from the statements, which name
/// every schema (the tenant's from the [`Tenant`], named slots from the [`SchemaMap`]
/// levels), never from session state such as `search_path`. So a connection that ran only
/// the library's statements goes from one tenant to the next with no statement sent at
/// checkout.
///
/// **What comes back clean.** A connection that was handed out *raw* — through
/// [`Client::as_tokio_postgres`], [`Transaction::as_tokio_postgres`] or
/// [`Db::batch_execute`], the ways to run SQL the library did not write — is reset before its
/// next checkout, in one round trip, with what `DISCARD ALL` does except `DEALLOCATE ALL`:
///
/// - `CLOSE ALL`: open cursors (`WITH HOLD`);
/// - `SET SESSION AUTHORIZATION DEFAULT`: `SET ROLE` and `SET SESSION AUTHORIZATION`;
/// - `RESET ALL`: every setting changed with `SET` or `set_config(.., false)`
///   (`search_path`, `statement_timeout`, ...; a custom one such as `app.tenant` reads as
///   empty afterwards), back to the connection's defaults;
/// - `UNLISTEN *`: `LISTEN` channels;
/// - `pg_advisory_unlock_all()`: session-level advisory locks;
/// - `DISCARD PLANS`, `DISCARD TEMP`, `DISCARD SEQUENCES`: cached plans, temporary tables,
///   sequence state (`currval`);
/// - statements prepared with SQL `PREPARE` (a `DEALLOCATE` of each).
///
/// Kept on purpose: the statements prepared through the protocol (the library's
/// [`StatementCache`], and tokio-postgres's own type-lookup statements), which `DISCARD ALL`
/// would invalidate behind the client's back; a statement you prepared raw is closed when
/// you drop it. A connection returned inside a transaction block (a raw `BEGIN` never
/// ended), or whose reset fails, is closed instead of handed out. No reset undoes the state
/// of extensions (a `dblink` connection, a loaded library's globals): keep it off pooled
/// connections.
///
/// SQL of the caller's that runs through the library's own calls ([`query!`](macro@crate::query)
/// and friends, [`Db::fetch_all`] with a template) is trusted not to change the session: use
/// `SET LOCAL`, `set_config(.., true)` and `pg_advisory_xact_lock` there, which end with the
/// transaction.
///
/// - **Maps at three levels**, narrowest wins: the pool default
///   ([`TenantPoolBuilder::schema_map`], the connection-level map of every connection), one
///   handle ([`Db::with_schema_map`]), one statement ([`Db::narrow`] or a query's own map).
/// - **Bounded statement cache** per connection ([`TenantPoolBuilder::statement_cache_capacity`]),
///   whose default bound grows where the backend's memory has room and shrinks as it nears
///   the memory budget.
/// - **Pooler-safe mode** ([`StatementMode::Unnamed`]) for PgBouncer in transaction pooling.
/// - **Never hangs**: checking out waits at most the wait timeout, then fails with
///   [`Error::PoolTimeout`]; dead connections, and raw-used connections left inside a
///   transaction, are dropped at their next checkout.
///
/// Cloning is cheap and shares the pool.
///
/// ```no_run
/// use std::time::Duration;
/// use tenant_runtime::{Allowlist, Model, SchemaMap, TenantPool};
///
/// #[derive(Debug, Model)]
/// #[tenant(table = "invoices")]
/// struct Invoice { #[tenant(primary_key, identity)] id: i64, amount_cents: i64 }
///
/// # async fn run() -> Result<(), tenant_runtime::Error> {
/// let pool = TenantPool::builder("postgres://postgres@127.0.0.1/postgres")?
///     .max_size(16)
///     .wait_timeout(Some(Duration::from_secs(5)))
///     .schema_map(SchemaMap::new().with("shared", "public")?)
///     .build()?;
/// let allowlist = Allowlist::from_pairs([("acme", "tenant_acme")])?;
///
/// let mut db = pool.get(&allowlist.resolve("acme")?).await?;
/// let tx = db.transaction().await?;
/// Invoice { id: 0, amount_cents: 1200 }.insert(&tx).await?;
/// tx.commit().await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct TenantPool {
    /// One single-connection pool per connection slot: a checkout picks which (tenant
    /// affinity), `deadpool` creates, recycles and retires each slot's connection.
    slots: Arc<[managed::Pool<Manager>]>,
    /// `max_size` permits: holding one guarantees a slot that is idle or empty. A returned
    /// connection goes to the waiter whose ranking prefers it (tenant affinity under
    /// saturation).
    permits: Arc<HandOff>,
    timeouts: Timeouts,
    /// Rendezvous hashing of tenants onto slots (else a rotating start).
    affinity: bool,
    /// Where the next checkout without affinity starts looking.
    next: Arc<AtomicUsize>,
    /// The per-tenant cap, if [`TenantPoolBuilder::max_per_tenant`] set one.
    caps: Option<Arc<TenantCaps>>,
    /// Closes idle connections above the minimum, if an idle timeout is set.
    reaper: Option<Arc<IdleReaper>>,
}

/// Closes connections idle for longer than the idle timeout, keeping `min_idle`; run at a
/// checkout, at most once per [`IdleReaper::EVERY`] (no task of its own, so a pool can be
/// built outside a runtime).
struct IdleReaper {
    idle_timeout: Duration,
    min_idle: usize,
    started: Instant,
    /// Milliseconds after `started` of the last run.
    last_run_ms: AtomicU64,
}

impl IdleReaper {
    const EVERY: Duration = Duration::from_secs(1);

    fn maybe_run(&self, slots: &[managed::Pool<Manager>]) {
        let now = self.started.elapsed().as_millis() as u64;
        let last = self.last_run_ms.load(Ordering::Relaxed);
        if now.saturating_sub(last) < Self::EVERY.as_millis() as u64
            || self
                .last_run_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let mut kept = 0;
        let mut closed = 0;
        for slot in slots {
            let removed = slot.retain(|_, metrics| {
                let keep = kept < self.min_idle || metrics.last_used() < self.idle_timeout;
                kept += usize::from(keep);
                keep
            });
            closed += removed.removed.len();
        }
        if closed > 0 {
            tracing::debug!(closed, "closed idle pooled connections");
        }
    }
}

/// The connections each tenant has checked out, capped: a semaphore per tenant that holds
/// one, made on its first checkout and dropped when its last connection comes back (so the
/// map holds the tenants in flight, not every tenant ever served).
struct TenantCaps {
    max_per_tenant: usize,
    in_use: Mutex<HashMap<SchemaName, Arc<Semaphore>>>,
    /// Callers waiting for one of their tenant's connections to come back.
    waiting: AtomicUsize,
}

/// Counts a caller as waiting for as long as it lives, so a wait that ends any way (a
/// permit, a timeout, the caller's future dropped) is uncounted.
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn new(count: &'a AtomicUsize) -> Waiting<'a> {
        count.fetch_add(1, Ordering::Relaxed);
        Waiting(count)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl TenantCaps {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SchemaName, Arc<Semaphore>>> {
        self.in_use.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One of `schema`'s slots, waiting at most `wait` (`None`: without limit).
    async fn acquire(
        self: &Arc<Self>,
        schema: SchemaName,
        wait: Option<Duration>,
    ) -> Result<TenantSlot> {
        let semaphore = {
            let mut in_use = self.lock();
            let semaphore = in_use
                .entry(schema)
                .or_insert_with(|| Arc::new(Semaphore::new(self.max_per_tenant)));
            Arc::clone(semaphore)
        };
        // Made now so that, if the wait times out, dropping it forgets an unused semaphore.
        let mut slot = TenantSlot {
            caps: Arc::clone(self),
            schema,
            permit: None,
        };
        if let Ok(permit) = Arc::clone(&semaphore).try_acquire_owned() {
            slot.permit = Some(permit);
            return Ok(slot);
        }
        let _waiting = Waiting::new(&self.waiting);
        let acquire = semaphore.acquire_owned();
        let permit = match wait {
            Some(wait) => {
                tokio::time::timeout(wait, acquire)
                    .await
                    .map_err(|_| Error::PoolTimeout {
                        stage: PoolStage::TenantCap {
                            max_per_tenant: self.max_per_tenant,
                        },
                        timeout: Some(wait),
                    })?
            }
            None => acquire.await,
        };
        slot.permit = Some(permit.expect("the semaphores of a pool are never closed"));
        Ok(slot)
    }
}

/// A tenant's share of its cap, held by a [`PooledClient`] checked out for it.
struct TenantSlot {
    caps: Arc<TenantCaps>,
    schema: SchemaName,
    permit: Option<OwnedSemaphorePermit>,
}

impl Drop for TenantSlot {
    fn drop(&mut self) {
        drop(self.permit.take());
        let mut in_use = self.caps.lock();
        // Only the map holds it: no connection out for this tenant, nobody waiting (waiters
        // and holders each keep a clone, taken under this lock).
        if in_use
            .get(&self.schema)
            .is_some_and(|semaphore| Arc::strong_count(semaphore) == 1)
        {
            in_use.remove(&self.schema);
        }
    }
}

/// Counters of a [`TenantPool`], read with [`TenantPool::status`].
///
/// ```
/// use tenant_runtime::TenantPool;
/// # fn main() -> Result<(), tenant_runtime::Error> {
/// let pool = TenantPool::builder("postgres://postgres@127.0.0.1/postgres")?.max_size(4).build()?;
/// let status = pool.status();
/// assert_eq!((status.max_size, status.size, status.waiting), (4, 0, 0)); // opens lazily
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolStatus {
    /// The most connections the pool opens.
    pub max_size: usize,
    /// Connections open now (checked out or idle).
    pub size: usize,
    /// Idle connections ready to hand out.
    pub available: usize,
    /// Callers waiting for a connection: for a free one of the pool's, or, with
    /// [`TenantPoolBuilder::max_per_tenant`], for one of their tenant's own to come back
    /// (those are also counted in [`waiting_on_tenant_cap`](PoolStatus::waiting_on_tenant_cap)).
    pub waiting: usize,
    /// Of [`waiting`](PoolStatus::waiting), the callers whose tenant has its
    /// `max_per_tenant` connections checked out: a burst of one tenant's, which a larger
    /// `max_size` would not serve sooner.
    ///
    /// ```no_run
    /// # use std::time::Duration;
    /// # use tenant_runtime::{Allowlist, TenantPool};
    /// # async fn run() -> Result<(), tenant_runtime::Error> {
    /// let pool = TenantPool::builder("postgres://postgres@127.0.0.1/postgres")?
    ///     .max_size(8)
    ///     .max_per_tenant(Some(1))
    ///     .build()?;
    /// let acme = Allowlist::from_pairs([("acme", "tenant_acme")])?.resolve("acme")?;
    /// let held = pool.get(&acme).await?;
    /// let second = tokio::spawn({
    ///     let (pool, acme) = (pool.clone(), acme.clone());
    ///     async move { pool.get(&acme).await.map(drop) }
    /// });
    /// tokio::time::sleep(Duration::from_millis(50)).await;
    /// let status = pool.status();
    /// assert_eq!((status.waiting, status.waiting_on_tenant_cap), (1, 1));
    /// drop(held);
    /// second.await.unwrap()?;
    /// # Ok(()) }
    /// ```
    pub waiting_on_tenant_cap: usize,
}

impl TenantPool {
    /// A builder for a pool connecting to `url` (`postgres://user@host:port/db` or the
    /// `key=value` form).
    ///
    /// ```
    /// use tenant_runtime::{Error, TenantPool};
    /// assert!(matches!(TenantPool::builder("postgres://[bad"), Err(Error::Pool(tenant_runtime::error::PoolError::InvalidConfig { .. }))));
    /// ```
    pub fn builder(url: &str) -> Result<TenantPoolBuilder> {
        let config = url.parse::<tokio_postgres::Config>().map_err(|e| {
            Error::Pool(PoolError::InvalidConfig {
                reason: format!("cannot parse the connection string: {e}"),
            })
        })?;
        Ok(TenantPoolBuilder::from_config(config))
    }

    /// A handle for `tenant` on a connection from the pool; the connection goes back when the
    /// handle is dropped.
    ///
    /// Waits at most the wait timeout in all for a free connection, then fails with
    /// [`Error::PoolTimeout`]. With [`TenantPoolBuilder::max_per_tenant`], a tenant that has
    /// that many connections out waits (first come, first served) for one of them to come
    /// back, within the same wait timeout, while other tenants' checkouts go through; if none
    /// comes back in time it fails with [`Error::PoolTimeout`] whose stage is
    /// [`PoolStage::TenantCap`] (the cap named).
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use tenant_runtime::{error::PoolStage, Allowlist, Error, TenantPool};
    /// # async fn run() -> Result<(), Error> {
    /// let pool = TenantPool::builder("postgres://postgres@127.0.0.1/postgres")?
    ///     .max_size(8)
    ///     .max_per_tenant(Some(1))
    ///     .wait_timeout(Some(Duration::from_millis(100)))
    ///     .build()?;
    /// let tenants = Allowlist::from_pairs([("acme", "tenant_acme"), ("globex", "tenant_globex")])?;
    /// let acme = tenants.resolve("acme")?;
    /// let held = pool.get(&acme).await?;
    /// let again = pool.get(&acme).await;
    /// assert!(matches!(again, Err(Error::PoolTimeout { stage: PoolStage::TenantCap { max_per_tenant: 1 }, .. })));
    /// let other = pool.get(&tenants.resolve("globex")?).await?; // other tenants go through
    /// # Ok(()) }
    /// ```
    pub async fn get(&self, tenant: &Tenant) -> Result<PooledDb> {
        let schema = tenant.schema();
        let wait = self.timeouts.wait;
        let Some(caps) = &self.caps else {
            return Ok(Db::new(self.checkout(Some(schema), wait).await?, tenant));
        };
        let started = Instant::now();
        let slot = caps.acquire(schema, wait).await?;
        let wait = wait.map(|wait| wait.saturating_sub(started.elapsed()));
        let mut client = self.checkout(Some(schema), wait).await?;
        client._tenant_slot = Some(slot);
        Ok(Db::new(client, tenant))
    }

    /// A connection from the pool, for work that involves no one tenant (or several: make a
    /// handle per tenant with [`Db::new`]`(&conn, &tenant)`). It counts against no tenant's
    /// [`max_per_tenant`](TenantPoolBuilder::max_per_tenant) and has no tenant affinity.
    pub async fn client(&self) -> Result<PooledClient> {
        self.checkout(None, self.timeouts.wait).await
    }

    /// A connection, preferring (for `schema`, with affinity) the slots its rendezvous
    /// ranking puts first: waits for one of the pool's permits (at most `wait`), then takes
    /// the first idle connection in that order, else opens one in the first empty slot.
    async fn checkout(
        &self,
        schema: Option<SchemaName>,
        wait: Option<Duration>,
    ) -> Result<PooledClient> {
        if let Some(reaper) = &self.reaper {
            reaper.maybe_run(&self.slots);
        }
        let n = self.slots.len();
        let tenant = self.tenant_hash(schema);
        let mut order = self.order(tenant);
        let ranks = || {
            if tenant.is_none() {
                return SmallVec::new();
            }
            let mut ranks: SmallVec<[u8; 32]> = SmallVec::from_elem(0, n);
            for (rank, &slot) in order.iter().enumerate() {
                ranks[slot] = u8::try_from(rank).unwrap_or(u8::MAX);
            }
            ranks
        };
        let granted = match self.permits.acquire(tenant, ranks, wait).await {
            Ok(granted) => granted,
            Err(AcquireError::Timeout) => {
                return Err(Error::PoolTimeout {
                    stage: PoolStage::Wait,
                    timeout: wait,
                })
            }
            Err(AcquireError::Closed) => return Err(Error::PoolClosed),
        };
        let mut permit = granted.permit;
        // A connection just came back there: handed to this caller, it tries that one first.
        // With a spread the permit holds that slot, and the checkout takes no other.
        if let Some(returned) = granted.slot {
            if self.permits.assigns_slots() {
                order = smallvec::smallvec![returned];
            } else if let Some(at) = order.iter().position(|&i| i == returned) {
                order[..=at].rotate_right(1);
            }
        }
        // The permit guarantees a slot that is idle or empty; a zero wait takes it or
        // reports at once that another caller just did.
        let now = Timeouts {
            wait: Some(Duration::ZERO),
            create: self.timeouts.create,
            // Applied by the manager around the round trips a recycle may need.
            recycle: None,
        };
        loop {
            for open_new in [false, true] {
                for &i in &order {
                    let slot = &self.slots[i];
                    let status = slot.status();
                    let candidate = if open_new {
                        status.size == 0
                    } else {
                        status.available > 0
                    };
                    if !candidate {
                        continue;
                    }
                    match slot.timeout_get(&now).await {
                        Ok(object) => {
                            permit.slot = Some(i);
                            return Ok(PooledClient {
                                object,
                                _permit: permit,
                                _tenant_slot: None,
                            });
                        }
                        Err(managed::PoolError::Timeout(TimeoutType::Wait)) => continue,
                        Err(e) => return Err(self.checkout_error(e)),
                    }
                }
            }
            // Every candidate was taken between its status and its checkout by a caller that
            // holds a permit too; one of theirs comes back or opens soon.
            tokio::task::yield_now().await;
        }
    }

    /// The slots in the order a checkout tries them: for a tenant with affinity, its
    /// rendezvous ranking (highest random weight first: each slot's weight is a hash of the
    /// schema and the slot), so each tenant keeps to the same few connections and each
    /// connection sees about `tenants / max_size` schemas; otherwise a rotating start.
    fn order(&self, tenant: Option<u64>) -> SmallVec<[usize; 32]> {
        let n = self.slots.len();
        match tenant {
            Some(tenant) => {
                // Each weight with its slot in the low bits (which the weight gives up): one
                // integer sort, no pairs. (On a 32-bit target the weights keep their low 32
                // bits.)
                let bits = usize::BITS - n.saturating_sub(1).leading_zeros();
                let low = (1usize << bits) - 1;
                let weight =
                    |i: usize| mix(tenant ^ (i as u64).wrapping_mul(GOLDEN)) as usize & !low | i;
                let mut ranked: SmallVec<[usize; 32]> = if n <= 32 {
                    // Filled in place: collecting into a SmallVec costs more than the sort.
                    let mut weights = [0; 32];
                    for (i, w) in weights[..n].iter_mut().enumerate() {
                        *w = weight(i);
                    }
                    SmallVec::from_buf_and_len(weights, n)
                } else {
                    (0..n).map(weight).collect()
                };
                ranked.sort_unstable_by(|a, b| b.cmp(a));
                for weight in &mut ranked {
                    *weight &= low;
                }
                ranked
            }
            None => {
                let start = self.next.fetch_add(1, Ordering::Relaxed);
                (0..n).map(|k| (start + k) % n).collect()
            }
        }
    }

    /// The hash of `schema` that ranks the slots for it, with affinity (`None` without, or
    /// for no schema).
    fn tenant_hash(&self, schema: Option<SchemaName>) -> Option<u64> {
        let schema = schema.filter(|_| self.affinity)?;
        // Fixed seed: a tenant keeps its ranking for the pool's life (foldhash, not SipHash:
        // this runs at every checkout, and no one chooses schema names to collide here).
        Some(foldhash::fast::FixedState::with_seed(TENANT_HASH_SEED).hash_one(schema))
    }

    fn checkout_error(&self, error: managed::PoolError<Error>) -> Error {
        match error {
            managed::PoolError::Backend(e) => e,
            managed::PoolError::Timeout(kind) => {
                let (stage, timeout) = match kind {
                    TimeoutType::Wait => (PoolStage::Wait, self.timeouts.wait),
                    TimeoutType::Create => (PoolStage::Create, self.timeouts.create),
                    TimeoutType::Recycle => (PoolStage::Recycle, self.timeouts.recycle),
                };
                Error::PoolTimeout { stage, timeout }
            }
            managed::PoolError::Closed => Error::PoolClosed,
            managed::PoolError::NoRuntimeSpecified => Error::Pool(PoolError::InvalidConfig {
                reason: "timeouts need a runtime".into(),
            }),
            managed::PoolError::PostCreateHook(e) => Error::Pool(PoolError::InvalidConfig {
                reason: e.to_string(),
            }),
        }
    }

    /// Sizes and waiters now.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), tenant_runtime::Error> {
    /// let pool = tenant_runtime::TenantPool::builder("postgres://postgres@127.0.0.1/postgres")?
    ///     .max_size(4)
    ///     .build()?;
    /// assert_eq!(pool.status().max_size, 4);
    /// # Ok(()) }
    /// ```
    pub fn status(&self) -> PoolStatus {
        let waiting_on_tenant_cap = self
            .caps
            .as_ref()
            .map_or(0, |caps| caps.waiting.load(Ordering::Relaxed));
        let (mut size, mut available) = (0, 0);
        for slot in self.slots.iter() {
            let s = slot.status();
            size += s.size;
            available += s.available;
        }
        PoolStatus {
            max_size: self.slots.len(),
            size,
            available,
            waiting: self.permits.waiting() + waiting_on_tenant_cap,
            waiting_on_tenant_cap,
        }
    }

    /// The per-tenant cap on connections checked out, if any
    /// ([`TenantPoolBuilder::max_per_tenant`]).
    pub fn max_per_tenant(&self) -> Option<usize> {
        self.caps.as_ref().map(|caps| caps.max_per_tenant)
    }

    /// The statement mode every connection of this pool uses.
    pub fn statement_mode(&self) -> StatementMode {
        self.slots[0].manager().mode
    }

    /// The pool default schema map (the connection level of every connection).
    pub fn schema_map(&self) -> &SchemaMap {
        &self.slots[0].manager().map
    }

    /// Closes the pool: waiters and later checkouts fail with [`Error::PoolClosed`]; idle
    /// connections are closed, checked-out ones when they come back.
    pub fn close(&self) {
        self.permits.close();
        for slot in self.slots.iter() {
            slot.close();
        }
    }
}

impl std::fmt::Debug for TenantPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let manager = self.slots[0].manager();
        f.debug_struct("TenantPool")
            .field("status", &self.status())
            .field("mode", &manager.mode)
            .field("map", &manager.map)
            .field("statement_cache_capacity", &manager.cache_capacity)
            .field("affinity", &self.affinity)
            .finish_non_exhaustive()
    }
}

/// Configures a [`TenantPool`]: where to connect, how many connections, how long to wait,
/// the default [`SchemaMap`], the statement cache bound and the [`StatementMode`].
///
/// ```no_run
/// use std::time::Duration;
/// use tenant_runtime::{StatementMode, TenantPool};
/// # fn run() -> Result<(), tenant_runtime::Error> {
/// // Behind PgBouncer in transaction pooling mode:
/// let pool = TenantPool::builder("postgres://postgres@127.0.0.1:6432/postgres")?
///     .statement_mode(StatementMode::Unnamed)
///     .max_size(32)
///     .wait_timeout(Some(Duration::from_secs(2)))
///     .build()?;
/// # Ok(()) }
/// ```
#[must_use = "a builder does nothing until `build` is called"]
pub struct TenantPoolBuilder {
    config: tokio_postgres::Config,
    connect: Connect,
    max_size: usize,
    wait_timeout: Option<Duration>,
    create_timeout: Option<Duration>,
    recycle_timeout: Option<Duration>,
    cache_capacity: usize,
    /// Whether `cache_capacity` is the default (which follows the backends' memory).
    cache_by_default: bool,
    prepare_threshold: u32,
    mode: StatementMode,
    map: SchemaMap,
    max_per_tenant: Option<usize>,
    budget: ServerBudget,
    idle_timeout: Option<Duration>,
    min_idle: usize,
    affinity: bool,
    affinity_spread: Option<usize>,
}

impl TenantPoolBuilder {
    /// Default most connections.
    pub const DEFAULT_MAX_SIZE: usize = 16;
    /// Default wait for a free connection.
    pub const DEFAULT_WAIT_TIMEOUT: Duration = Duration::from_secs(30);
    /// Default time to open a connection.
    pub const DEFAULT_CREATE_TIMEOUT: Duration = Duration::from_secs(10);
    /// Default time to check a returned connection.
    pub const DEFAULT_RECYCLE_TIMEOUT: Duration = Duration::from_secs(5);
    /// Default age at which a connection is retired (30 minutes).
    pub const DEFAULT_MAX_LIFETIME: Duration = Duration::from_secs(30 * 60);
    /// Default schema bound: 1,000 distinct schemas. Where the pool reads its backends'
    /// memory (the default [`max_backend_memory`](Self::max_backend_memory) and a role that
    /// may read it), it does not retire: it makes a connection that served 1,000 new schemas
    /// since its last memory read read it again at once, so the memory budget decides. Where
    /// the memory cannot be read, it retires the connection. With affinity a 16-connection
    /// pool over 10,000 tenants puts about 625 schemas on each connection.
    pub const DEFAULT_MAX_SCHEMAS_PER_CONNECTION: usize = 1_000;
    /// The most statements a connection's default-sized statement cache grows to where its
    /// backend's memory has room (see [`statement_cache_capacity`](Self::statement_cache_capacity)).
    pub const DEFAULT_STATEMENT_CACHE_CEILING: usize = 8_192;
    /// Default backend memory (bytes) at which a connection is retired: 128 MiB.
    pub const DEFAULT_MAX_BACKEND_MEMORY: u64 = 128 * 1024 * 1024;
    /// Default time an idle connection above [`min_idle`](Self::min_idle) stays open.
    pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(10 * 60);

    /// A builder from a `tokio_postgres::Config`, without TLS, with the defaults: 16
    /// connections, timeouts of 30 s (wait), 10 s (create) and 5 s (recycle),
    /// [`StatementCache::DEFAULT_CAPACITY`] statements per connection,
    /// [`StatementMode::Prepared`], an empty map.
    ///
    /// ```
    /// let mut config = tokio_postgres::Config::new();
    /// config.host("127.0.0.1").user("postgres").dbname("postgres");
    /// let pool = tenant_runtime::pool::TenantPoolBuilder::from_config(config).build()?;
    /// # Ok::<(), tenant_runtime::Error>(())
    /// ```
    pub fn from_config(config: tokio_postgres::Config) -> TenantPoolBuilder {
        TenantPoolBuilder {
            config,
            connect: connector(NoTls),
            max_size: Self::DEFAULT_MAX_SIZE,
            wait_timeout: Some(Self::DEFAULT_WAIT_TIMEOUT),
            create_timeout: Some(Self::DEFAULT_CREATE_TIMEOUT),
            recycle_timeout: Some(Self::DEFAULT_RECYCLE_TIMEOUT),
            cache_capacity: StatementCache::DEFAULT_CAPACITY,
            cache_by_default: true,
            prepare_threshold: StatementCache::DEFAULT_PREPARE_THRESHOLD,
            mode: StatementMode::Prepared,
            map: SchemaMap::new(),
            max_per_tenant: None,
            budget: ServerBudget {
                max_lifetime: Some(Self::DEFAULT_MAX_LIFETIME),
                max_schemas: Some(Self::DEFAULT_MAX_SCHEMAS_PER_CONNECTION),
                schemas_by_default: true,
                max_memory: Some(Self::DEFAULT_MAX_BACKEND_MEMORY),
            },
            idle_timeout: Some(Self::DEFAULT_IDLE_TIMEOUT),
            min_idle: 0,
            affinity: true,
            affinity_spread: None,
        }
    }

    /// Connects with a TLS connector (e.g. `postgres-native-tls` or `tokio-postgres-rustls`)
    /// instead of in plain text.
    pub fn tls<T>(mut self, tls: T) -> TenantPoolBuilder
    where
        T: MakeTlsConnect<Socket> + Clone + Send + Sync + 'static,
        T::Stream: Send + 'static,
        T::TlsConnect: Send,
        <T::TlsConnect as TlsConnect<Socket>>::Future: Send,
    {
        self.connect = connector(tls);
        self
    }

    /// The most connections the pool opens (at least 1).
    pub fn max_size(mut self, max_size: usize) -> TenantPoolBuilder {
        self.max_size = max_size;
        self
    }

    /// How long [`TenantPool::get`] waits for a free connection before failing with
    /// [`Error::PoolTimeout`]. `None` waits without limit: not recommended.
    pub fn wait_timeout(mut self, timeout: Option<Duration>) -> TenantPoolBuilder {
        self.wait_timeout = timeout;
        self
    }

    /// How long opening one connection may take.
    pub fn create_timeout(mut self, timeout: Option<Duration>) -> TenantPoolBuilder {
        self.create_timeout = timeout;
        self
    }

    /// How long the check of a returned connection may take before it is dropped.
    pub fn recycle_timeout(mut self, timeout: Option<Duration>) -> TenantPoolBuilder {
        self.recycle_timeout = timeout;
        self
    }

    /// The bound of each connection's statement cache (see [`StatementCache`]), fixed.
    ///
    /// Left at its default ([`StatementCache::DEFAULT_CAPACITY`], 512) in a pool that reads
    /// its backends' memory ([`max_backend_memory`](Self::max_backend_memory) set and a role
    /// that may read `pg_backend_memory_contexts`), the bound follows each backend's memory,
    /// checked at each of those reads and estimated between them (the last read plus what
    /// the connection served and prepared since, a high estimate): a cache that turned
    /// statements away since its bound last moved (evicted them, or did not admit them;
    /// between reads, at least an eighth of its bound) grows (by them, at least doubling, up
    /// to [`DEFAULT_STATEMENT_CACHE_CEILING`](Self::DEFAULT_STATEMENT_CACHE_CEILING) and to
    /// what the room up to three quarters of the budget holds at 16 KB a prepared statement)
    /// while its backend is under three quarters of the budget; only a read shrinks it: it
    /// gives back what passes three quarters (at least an eighth of what it holds, never
    /// below 512) once its backend passes seven eighths of it. Prepared statements are what a backend can give
    /// back (the catalogs it cached cannot be), so they make room for the catalogs before the
    /// connection must be retired. With affinity over many tenants, each connection's
    /// working set (about `tenants / max_size` tenants' statements) then stays prepared: in
    /// the Zipf bench (10,000 tenants of 10 tables, 16 connections) that is about 6,000
    /// statements a connection. The client holds each cached statement too (its columns and
    /// parameter types, a few hundred bytes).
    ///
    /// Set, the bound is fixed. Where memory is not read it is fixed at its default.
    ///
    /// ```
    /// let pool = tenant_runtime::TenantPool::builder("postgres://postgres@127.0.0.1/postgres")?
    ///     .statement_cache_capacity(2_048)
    ///     .build()?;
    /// # Ok::<(), tenant_runtime::Error>(())
    /// ```
    pub fn statement_cache_capacity(mut self, capacity: usize) -> TenantPoolBuilder {
        self.cache_capacity = capacity;
        self.cache_by_default = false;
        self
    }

    /// In [`StatementMode::Prepared`], the use at which a statement is prepared on a
    /// connection (see [`Client::with_prepare_threshold`]): default
    /// [`StatementCache::DEFAULT_PREPARE_THRESHOLD`] (first use unnamed, prepared on the
    /// second while cached), `1` prepares on first use, `0` never.
    ///
    /// ```
    /// # fn main() -> Result<(), tenant_runtime::Error> {
    /// let pool = tenant_runtime::TenantPool::builder("postgres://postgres@127.0.0.1/postgres")?
    ///     .prepare_threshold(5) // like pgjdbc's default
    ///     .build()?;
    /// # Ok(()) }
    /// ```
    pub fn prepare_threshold(mut self, threshold: u32) -> TenantPoolBuilder {
        self.prepare_threshold = threshold;
        self
    }

    /// How statements are sent: [`StatementMode::Unnamed`] behind a transaction pooler.
    pub fn statement_mode(mut self, mode: StatementMode) -> TenantPoolBuilder {
        self.mode = mode;
        self
    }

    /// The most connections one tenant may have checked out at once through
    /// [`TenantPool::get`], so one tenant's burst cannot take the whole pool: over the cap,
    /// its next checkout waits for one of its own connections to come back (within the wait
    /// timeout, then [`Error::PoolTimeout`] at [`PoolStage::TenantCap`]), while other tenants'
    /// checkouts go through. `None` (the default): no cap. Costs a mutex and a map lookup per
    /// checkout; the map holds the tenants with a connection out or waiting, no more.
    ///
    /// ```
    /// # fn main() -> Result<(), tenant_runtime::Error> {
    /// let pool = tenant_runtime::TenantPool::builder("postgres://postgres@127.0.0.1/postgres")?
    ///     .max_size(16)
    ///     .max_per_tenant(Some(4)) // a quarter of the pool at most per tenant
    ///     .build()?;
    /// assert_eq!(pool.max_per_tenant(), Some(4));
    /// # Ok(()) }
    /// ```
    pub fn max_per_tenant(mut self, cap: Option<usize>) -> TenantPoolBuilder {
        self.max_per_tenant = cap;
        self
    }

    /// Retires a connection (closes it at its next checkout; a new one opens when needed)
    /// once it is `max` old. `None`: never for its age. Default
    /// [`DEFAULT_MAX_LIFETIME`](Self::DEFAULT_MAX_LIFETIME) (30 minutes). Bounds what a
    /// backend accumulates over its life, whatever the other budgets miss.
    ///
    /// ```
    /// use std::time::Duration;
    /// # fn main() -> Result<(), tenant_runtime::Error> {
    /// let pool = tenant_runtime::TenantPool::builder("postgres://postgres@127.0.0.1/postgres")?
    ///     .max_lifetime(Some(Duration::from_secs(15 * 60)))
    ///     .max_schemas_per_connection(Some(200))
    ///     .max_backend_memory(Some(64 << 20))
    ///     .idle_timeout(Some(Duration::from_secs(60)))
    ///     .min_idle(2)
    ///     .build()?;
    /// # Ok(()) }
    /// ```
    pub fn max_lifetime(mut self, max: Option<Duration>) -> TenantPoolBuilder {
        self.budget.max_lifetime = max;
        self
    }

    /// Retires a connection once its statements have named `max` distinct schemas. A
    /// PostgreSQL backend keeps the catalog entries of every relation it touched and never
    /// gives that memory back (about 27 KB per schema of 2 tables and 3 indexes, 110 KB for
    /// 10 tables with their keys, measured with `pg_backend_memory_contexts`), so a
    /// long-lived connection serving every tenant ends up holding every tenant's catalog.
    /// This bounds it to about `max` schemas' worth per backend. Costs a set insert per
    /// statement cache miss, and a new connection (and a cold cache) per `max` schemas
    /// served: with affinity, set it to at least `tenants / max_size`, or every connection
    /// keeps retiring and starting cold. `None`: no bound.
    ///
    /// Set here, it is a hard bound. Left at its default
    /// ([`DEFAULT_MAX_SCHEMAS_PER_CONNECTION`](Self::DEFAULT_MAX_SCHEMAS_PER_CONNECTION),
    /// 1,000), it yields to [`max_backend_memory`](Self::max_backend_memory) while the pool
    /// can read its backends' memory: a connection that served 1,000 new schemas since its
    /// last memory read is read again at once (not retired), so the overshoot past the memory
    /// budget stays within 1,000 schemas' worth; it retires connections only where the memory
    /// cannot be read (a role without `pg_read_all_stats`, PostgreSQL before 14) or the
    /// memory budget is off. A measured memory is the better bound: schemas differ in size,
    /// and one hot connection that also serves the long tail crosses a schema count long
    /// before its memory matters (in the Zipf bench, 10,000 tenants over 16 connections, the
    /// hard bound of 1,000 retired a connection every few seconds with its backend at half
    /// the memory budget).
    pub fn max_schemas_per_connection(mut self, max: Option<usize>) -> TenantPoolBuilder {
        self.budget.max_schemas = max;
        self.budget.schemas_by_default = false;
        self
    }

    /// Retires a connection whose backend holds `max` bytes or more in its memory contexts,
    /// read from `pg_backend_memory_contexts`: first at the connection's 64th checkout, then
    /// once it has grown, by an estimate from its reads (per new schema, what the backend grew
    /// by between its last two reads over the schemas first served between them; 16 KB per
    /// statement prepared since and not closed), by a quarter of the room the last read left
    /// under `max`, or served 1,000 new schemas, and no sooner than `100 × max_size` times the
    /// last read's duration of the connection's time in use after it (unless the estimate
    /// passed three quarters of that room). So reads are rare far from the budget and frequent
    /// near it, and a connection that keeps serving the same schemas and statements is not
    /// read again. Each read is a round trip and server time: it walks every memory context,
    /// 3 ms for a backend holding 625 schemas of 10 tables, 22 ms with 3,000 prepared
    /// statements besides. A read also moves a default-sized statement cache's bound (see
    /// [`statement_cache_capacity`](Self::statement_cache_capacity)). The view needs PostgreSQL 14+ and a superuser or a role with
    /// `pg_read_all_stats`; if the pool's role cannot read it, the first failed read turns the
    /// check off (logged at `info`) and the other budgets still hold. `None`: not checked.
    /// Default [`DEFAULT_MAX_BACKEND_MEMORY`](Self::DEFAULT_MAX_BACKEND_MEMORY) (128 MiB).
    pub fn max_backend_memory(mut self, max: Option<u64>) -> TenantPoolBuilder {
        self.budget.max_memory = max;
        self
    }

    /// Closes connections idle for longer than `timeout`, above [`min_idle`](Self::min_idle);
    /// checked at checkouts, at most once a second. `None`: idle connections stay open.
    /// Default [`DEFAULT_IDLE_TIMEOUT`](Self::DEFAULT_IDLE_TIMEOUT) (10 minutes).
    pub fn idle_timeout(mut self, timeout: Option<Duration>) -> TenantPoolBuilder {
        self.idle_timeout = timeout;
        self
    }

    /// Tenant affinity (default on): each tenant prefers the connections that served it
    /// before, by rendezvous hashing of its schema onto the pool's connection slots, and falls
    /// back to the next idle connection in its ranking when those are busy (never waiting for
    /// a preferred one while another is idle). When every connection is busy, a connection
    /// that comes back goes to the waiter that ranks it best, not to the oldest waiter; a
    /// waiter passed over `4 × max_size` times is served next, so no wait grows by more than
    /// `4 × max_size` hand-offs (a few milliseconds at a few thousand statements a second). So each backend touches about `tenants / max_size` schemas
    /// instead of all of them, saturated or not (less catalog memory, see
    /// [`max_schemas_per_connection`](Self::max_schemas_per_connection)) and each
    /// connection's statement cache keeps hitting. Costs a hash of the schema and a sort of
    /// `max_size` weights per checkout, and a scan of the waiters per hand-off. Off:
    /// connections are tried from a rotating start and waiters are served first come, first
    /// served. To keep each tenant on its first few connections only, see
    /// [`affinity_spread`](Self::affinity_spread).
    ///
    /// ```
    /// # fn main() -> Result<(), tenant_runtime::Error> {
    /// let pool = tenant_runtime::TenantPool::builder("postgres://postgres@127.0.0.1/postgres")?
    ///     .affinity(false)
    ///     .build()?;
    /// # Ok(()) }
    /// ```
    pub fn affinity(mut self, on: bool) -> TenantPoolBuilder {
        self.affinity = on;
        self
    }

    /// How many connections each tenant may use, with [`affinity`](Self::affinity): a
    /// tenant's checkout takes only the first `spread` connections of its ranking, widened by
    /// one for each connection the tenant holds at that moment (with `n` checkouts open, its
    /// first `spread + n`), and waits for one of those when they are busy, even while others
    /// are idle (a connection that comes back goes only to a waiter that may take it).
    /// `None` (the default): any connection, its own first.
    ///
    /// What it buys: each connection serves only about `tenants × spread / max_size`
    /// tenants, so its backend caches fewer catalogs and its statement cache holds its
    /// tenants' statements instead of those of tenants spilled onto it from busy
    /// connections. A tenant with one checkout at a time (most of a long tail) keeps to its
    /// first `spread`; a hot tenant with many at once spreads over as many connections, so
    /// its load does not queue behind one (its few statements are cached wherever it runs);
    /// capping a tenant is [`max_per_tenant`](Self::max_per_tenant)'s job. What it costs: a
    /// checkout waits for one of its tenant's connections while others idle (on a database
    /// server with fewer cores than `max_size` that wait is mostly time the server spends on
    /// other tenants, with many cores it is lost throughput). A task that holds connections
    /// of one tenant and asks for another never waits for itself: the widening gives it a
    /// connection it does not hold. Checkouts without a tenant ([`TenantPool::client`]) take
    /// any connection. Measured on the Zipf bench, see the README.
    ///
    /// `Some(0)` is refused by [`build`](Self::build), as is a spread with affinity off; a
    /// spread of `max_size` or more is the default.
    ///
    /// ```
    /// # fn main() -> Result<(), tenant_runtime::Error> {
    /// let pool = tenant_runtime::TenantPool::builder("postgres://postgres@127.0.0.1/postgres")?
    ///     .max_size(16)
    ///     .affinity_spread(Some(2))
    ///     .build()?;
    /// # Ok(()) }
    /// ```
    pub fn affinity_spread(mut self, spread: Option<usize>) -> TenantPoolBuilder {
        self.affinity_spread = spread;
        self
    }

    /// Idle connections kept open however long they are idle (default 0).
    pub fn min_idle(mut self, min: usize) -> TenantPoolBuilder {
        self.min_idle = min;
        self
    }

    /// The pool default schema map: the widest map level, on every connection.
    pub fn schema_map(mut self, map: SchemaMap) -> TenantPoolBuilder {
        self.map = map;
        self
    }

    /// Builds the pool. Connections open lazily, on first checkout.
    pub fn build(self) -> Result<TenantPool> {
        if self.max_size == 0 {
            return Err(Error::Pool(PoolError::InvalidConfig {
                reason: "max_size is 0; a pool needs at least one connection".into(),
            }));
        }
        if self.cache_capacity == 0 {
            return Err(Error::Pool(PoolError::InvalidConfig {
                reason: "statement_cache_capacity is 0; keep at least one statement".into(),
            }));
        }
        if self.budget.max_schemas == Some(0) {
            return Err(Error::Pool(PoolError::InvalidConfig {
                reason: "max_schemas_per_connection is 0; a connection serves at least one schema (None: no bound)".into(),
            }));
        }
        if self.max_per_tenant == Some(0) {
            return Err(Error::Pool(PoolError::InvalidConfig {
                reason:
                    "max_per_tenant is 0; a tenant needs at least one connection (None: no cap)"
                        .into(),
            }));
        }
        if self.affinity_spread == Some(0) {
            return Err(Error::Pool(PoolError::InvalidConfig {
                reason: "affinity_spread is 0; a tenant needs at least one connection (None: any connection)".into(),
            }));
        }
        if self.affinity_spread.is_some() && !self.affinity {
            return Err(Error::Pool(PoolError::InvalidConfig {
                reason: "affinity_spread is set with affinity off; turn affinity on, or leave the spread at None".into(),
            }));
        }
        let caps = self.max_per_tenant.map(|max_per_tenant| {
            Arc::new(TenantCaps {
                max_per_tenant,
                in_use: Mutex::new(HashMap::new()),
                waiting: AtomicUsize::new(0),
            })
        });
        let reaper = self.idle_timeout.map(|idle_timeout| {
            Arc::new(IdleReaper {
                idle_timeout,
                min_idle: self.min_idle,
                started: Instant::now(),
                last_run_ms: AtomicU64::new(0),
            })
        });
        let mut slots = Vec::with_capacity(self.max_size);
        for _ in 0..self.max_size {
            let manager = Manager {
                config: self.config.clone(),
                connect: Arc::clone(&self.connect),
                map: self.map.clone(),
                mode: self.mode,
                cache_capacity: self.cache_capacity,
                cache_follows_memory: self.cache_by_default,
                prepare_threshold: self.prepare_threshold,
                budget: self.budget,
                recycle_timeout: self.recycle_timeout,
                memory_unreadable: AtomicBool::new(false),
                read_spacing: READ_SPACING.saturating_mul(self.max_size as u64),
            };
            let slot = managed::Pool::builder(manager)
                .max_size(1)
                .create_timeout(self.create_timeout)
                .runtime(deadpool::Runtime::Tokio1)
                .build()
                .map_err(|e| {
                    Error::Pool(PoolError::InvalidConfig {
                        reason: e.to_string(),
                    })
                })?;
            slots.push(slot);
        }
        Ok(TenantPool {
            slots: slots.into(),
            permits: Arc::new(HandOff::new(self.max_size, self.affinity_spread)),
            timeouts: Timeouts {
                wait: self.wait_timeout,
                create: self.create_timeout,
                recycle: self.recycle_timeout,
            },
            affinity: self.affinity,
            next: Arc::new(AtomicUsize::new(0)),
            caps,
            reaper,
        })
    }
}

impl std::fmt::Debug for TenantPoolBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantPoolBuilder")
            .field("max_size", &self.max_size)
            .field("wait_timeout", &self.wait_timeout)
            .field("create_timeout", &self.create_timeout)
            .field("recycle_timeout", &self.recycle_timeout)
            .field("statement_cache_capacity", &self.cache_capacity)
            .field("statement_cache_follows_memory", &self.cache_by_default)
            .field("prepare_threshold", &self.prepare_threshold)
            .field("mode", &self.mode)
            .field("map", &self.map)
            .field("max_per_tenant", &self.max_per_tenant)
            .field("max_lifetime", &self.budget.max_lifetime)
            .field("max_schemas_per_connection", &self.budget.max_schemas)
            .field(
                "schema_bound_yields_to_memory",
                &self.budget.schemas_by_default,
            )
            .field("max_backend_memory", &self.budget.max_memory)
            .field("idle_timeout", &self.idle_timeout)
            .field("min_idle", &self.min_idle)
            .field("affinity", &self.affinity)
            .field("affinity_spread", &self.affinity_spread)
            .finish_non_exhaustive()
    }
}

/// The seed of [`TenantPool::tenant_hash`].
const TENANT_HASH_SEED: u64 = 0x243F_6A88_85A3_08D3;

/// 2^64 / φ: spreads consecutive slot numbers over the whole hash range.
const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// SplitMix64's finalizer: a slot's rendezvous weight for a tenant.
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: u64 = 128 << 20;
    const DEFAULT: usize = StatementCache::DEFAULT_CAPACITY;
    const CEILING: usize = TenantPoolBuilder::DEFAULT_STATEMENT_CACHE_CEILING;

    #[test]
    fn a_cache_that_turned_statements_away_grows_under_three_quarters_of_the_budget() {
        let bound = |capacity, turned_away, bytes| {
            cache_bound_after_read(capacity, capacity, turned_away, bytes, MAX)
        };
        assert_eq!(bound(DEFAULT, 10, MAX / 4), 2 * DEFAULT, "at least doubles");
        // 32 MiB under three quarters of the budget: room for 2,048 more statements at 16 KB.
        assert_eq!(
            bound(4_096, 8_000, MAX / 2),
            4_096 + 2_048,
            "to what the room holds"
        );
        assert_eq!(
            bound(DEFAULT, 3_000, MAX / 8),
            DEFAULT + 3_000,
            "by what it turned away"
        );
        assert_eq!(bound(4_096, 100_000, 0), CEILING, "up to the ceiling");
        assert_eq!(bound(CEILING, 100, MAX / 4), CEILING);
        assert_eq!(
            bound(DEFAULT, 0, MAX / 4),
            DEFAULT,
            "nothing turned away: it fits"
        );
        assert_eq!(
            bound(DEFAULT, 10, MAX / 4 * 3),
            DEFAULT,
            "three quarters of the budget: no room"
        );
    }

    #[test]
    fn per_schema_is_the_growth_between_reads_less_the_statements_over_the_new_schemas() {
        let kib: u64 = 1 << 10;
        // 10 MiB more over 200 new schemas, 128 statements (2 MiB at 16 KB) prepared net:
        // 8 MiB of catalogs, 41 KB a schema, against an average of 64 MiB / 1,000 = 67 KB.
        let between = GrowthBetweenReads {
            bytes: 10 << 20,
            new_schemas: 200,
            net_prepares: 128,
        };
        assert_eq!(between.per_schema(), Some((8 << 20) / 200));
        let estimate = MemoryEstimate::after_read(64 << 20, 1_000, MAX, Some(between));
        assert_eq!(estimate.per_schema, (8 << 20) / 200);
        // Statements closed count back: the memory they gave back hid catalog growth.
        let shrunk = GrowthBetweenReads {
            bytes: 0,
            new_schemas: 100,
            net_prepares: -64,
        };
        assert_eq!(shrunk.per_schema(), Some(64 * 16 * kib / 100));
        // Never under a quarter of the average, nor from too few new schemas.
        let tiny = GrowthBetweenReads {
            bytes: 64 << 10,
            new_schemas: 640,
            net_prepares: 0,
        };
        let average = (64 << 20) / 1_000;
        let floored = MemoryEstimate::after_read(64 << 20, 1_000, MAX, Some(tiny));
        assert_eq!(floored.per_schema, average / 4);
        let few = GrowthBetweenReads {
            bytes: 1 << 20,
            new_schemas: MARGINAL_MIN_SCHEMAS - 1,
            net_prepares: 0,
        };
        assert_eq!(few.per_schema(), None);
        let first = MemoryEstimate::after_read(64 << 20, 1_000, MAX, Some(few));
        assert_eq!(first.per_schema, average);
    }

    #[test]
    fn reads_are_rare_far_from_the_budget_and_frequent_near_it() {
        // 625 schemas in 64 MiB (107 KB each): a quarter of the 64 MiB left is 156 schemas,
        // or 1,024 prepared statements.
        let far = MemoryEstimate::after_read(64 << 20, 625, MAX, None);
        assert!(!far.read_due(155, 0));
        assert!(far.read_due(157, 0));
        assert!(!far.read_due(0, 1_023));
        assert!(far.read_due(0, 1_024));
        assert!(far.read_due(100, 400), "schemas and statements add up");
        // Near the budget: every 16 schemas' worth.
        let near = MemoryEstimate::after_read(MAX - (1 << 20), 1_000, MAX, None);
        assert!(!near.read_due(15, 0));
        assert!(near.read_due(16, 0));
        // Far from it, at most 1,000 schemas apart.
        let fresh = MemoryEstimate::after_read(2 << 20, 64, MAX, None);
        assert!(!fresh.read_due(999, 0));
        assert!(fresh.read_due(1_000, 0));
        // Urgent (due however recent the last read): three times the growth that is due.
        assert!(!far.read_urgent(0, 3_071));
        assert!(far.read_urgent(0, 3_072));
        assert!(!near.read_urgent(47, 0));
        assert!(near.read_urgent(48, 0));
    }

    #[test]
    fn reads_are_spaced_by_a_multiple_of_the_last_one() {
        // A 20 ms read in a pool of 16: 100 x 16 x 20 ms = 32 s of the connection's use.
        let spacing = READ_SPACING * 16;
        assert!(!read_spaced(31_999_999, 20_000, spacing));
        assert!(read_spaced(32_000_000, 20_000, spacing));
        // A 300 µs read (a small backend): 480 ms.
        assert!(!read_spaced(479_999, 300, spacing));
        assert!(read_spaced(480_000, 300, spacing));
        // Never read yet (no duration): due at once.
        assert!(read_spaced(0, 0, spacing));
    }

    #[test]
    fn a_cache_gives_back_what_passes_three_quarters_from_seven_eighths_of_the_budget() {
        let near = MAX / 8 * 7;
        // 16 MiB past three quarters: 1,024 statements at 16 KB.
        assert_eq!(
            cache_bound_after_read(8_192, 6_000, 50, near, MAX),
            6_000 - 1_024
        );
        assert_eq!(
            cache_bound_after_read(16_384, 16_384, 0, near, MAX),
            16_384 - 2_048,
            "at least an eighth of what it holds"
        );
        assert_eq!(
            cache_bound_after_read(2_048, 800, 0, MAX - 1, MAX),
            DEFAULT,
            "never below the default"
        );
        assert_eq!(
            cache_bound_after_read(DEFAULT, DEFAULT, 50, MAX - 1, MAX),
            DEFAULT
        );
        assert_eq!(
            cache_bound_after_read(4_096, 4_096, 50, near - 1, MAX),
            4_096,
            "between three quarters and seven eighths: it stays"
        );
    }
}
