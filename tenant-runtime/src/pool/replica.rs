//! Read replicas: a primary pool for writes and transactions, replica pools for the reads that
//! ask for one.
//!
//! The routing rule is carried by types, not by inspecting SQL:
//! - [`ReplicatedPool::get`] gives a handle on the primary ([`PooledDb`]): reads, writes,
//!   transactions, exactly like [`TenantPool::get`];
//! - [`ReplicatedPool::read`] gives a handle on a replica ([`ReplicaDb`]) for the tenant's schema,
//!   in one call. Its executor, [`ReplicaClient`], is not [`Writable`](crate::Writable) and cannot
//!   [`Begin`](crate::Begin): model writes and `transaction()` on it do not compile;
//! - [`ReplicatedPool::route`] gives a per-request [`RoutedDb`] that picks per statement:
//!   [`RoutedDb::read`] for the statements that may be served by a replica,
//!   [`RoutedDb::primary`] for the rest, and [`RoutedDb::transaction`], which borrows the
//!   handle mutably, so while a transaction is open no statement can be sent to a replica.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use smallvec::SmallVec;
use tokio::sync::OnceCell;

use crate::door::Tenant;
use crate::error::{Error, PoolError, Result};
use crate::exec::Db;
use crate::exec::Transaction;
use crate::exec::{sealed, ConnState, Executor, PgRef, StatementCache};
use crate::pool::{PooledClient, PooledDb, TenantPool};
use crate::sql::SchemaMap;

/// A tenant handle for reads on a replica: what [`ReplicatedPool::read`] returns.
///
/// ```
/// use tenant_runtime::pool::ReplicaDb;
///
/// // Reads only: a ReplicaDb is an Executor but not Writable.
/// fn tenant_of(db: &ReplicaDb) -> &str {
///     db.tenant().key()
/// }
/// ```
pub type ReplicaDb = Db<ReplicaClient>;

/// Which server a [`ReplicaClient`] came from.
///
/// ```
/// use tenant_runtime::pool::ServedBy;
/// let served = ServedBy::Replica(0);
/// assert_ne!(served, ServedBy::Primary);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServedBy {
    /// The replica at this index, in the order they were added to the builder.
    Replica(usize),
    /// The primary: there was no replica to serve the read and the pool falls back to the
    /// primary ([`ReplicatedPoolBuilder::fallback_to_primary`]).
    Primary,
}

/// How [`ReplicatedPool::read`] picks among the replicas.
///
/// ```
/// use tenant_runtime::pool::ReadBalance;
/// assert_eq!(ReadBalance::default(), ReadBalance::RoundRobin);
/// // ReplicatedPool::builder(primary).replica(r1).replica(r2).balance(ReadBalance::LeastBusy)
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReadBalance {
    /// Each read starts at the next replica in turn.
    #[default]
    RoundRobin,
    /// Each read goes to the replica with the fewest connections checked out plus callers
    /// waiting; ties are broken in turn.
    LeastBusy,
}

/// A connection for reads, checked out of a replica pool (or of the primary, when the pool
/// falls back to it). It goes back to its pool when dropped.
///
/// It is an [`Executor`](crate::Executor), so every model read and query runs on it, but it is
/// not [`Writable`](crate::Writable) and cannot [`Begin`](crate::Begin): `insert`, `update`,
/// `delete`, `create_table`, `drop_table` and `transaction()` do not compile on a
/// [`ReplicaDb`]. It offers no way back to a writable [`Client`](crate::Client). A hand-written
/// statement that writes is refused by a standby server (SQLSTATE `25006`).
///
/// ```no_run
/// use tenant_runtime::pool::{ReplicatedPool, ServedBy};
/// use tenant_runtime::{Allowlist, TenantPool};
/// # async fn run() -> Result<(), tenant_runtime::Error> {
/// let pool = ReplicatedPool::builder(TenantPool::builder("postgres://app@primary/app")?.build()?)
///     .replica(TenantPool::builder("postgres://app@replica1/app")?.build()?)
///     .build()?;
/// let acme = Allowlist::from_pairs([("acme", "tenant_acme")])?.resolve("acme")?;
/// let db = pool.read(&acme).await?;
/// assert_eq!(db.executor().served_by(), ServedBy::Replica(0));
/// # Ok(()) }
/// ```
pub struct ReplicaClient {
    pub(crate) conn: PooledClient,
    served_by: ServedBy,
}

impl ReplicaClient {
    /// The server this connection came from.
    pub fn served_by(&self) -> ServedBy {
        self.served_by
    }

    /// The prepared-statement cache of this connection.
    pub fn statement_cache(&self) -> &StatementCache {
        self.conn.statement_cache()
    }
}

impl sealed::Sealed for ReplicaClient {}
/// Reads only: a replica connection is an [`Executor`] but not [`Writable`](crate::Writable).
impl Executor for ReplicaClient {
    fn conn_state(&self) -> &ConnState {
        self.conn.conn_state()
    }
    fn pg(&self) -> PgRef<'_> {
        self.conn.pg()
    }
}

impl std::fmt::Debug for ReplicaClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplicaClient")
            .field("served_by", &self.served_by)
            .finish_non_exhaustive()
    }
}

/// A primary [`TenantPool`] and any number of replica pools (streaming replicas, hot
/// standbys), behind one allowlist door.
///
/// - **Writes and transactions go to the primary**: [`get`](Self::get) is the primary's
///   [`TenantPool::get`], so code written against a `TenantPool` runs unchanged.
/// - **Reads go to a replica when asked**: [`read`](Self::read) gives a [`ReplicaDb`] for the
///   tenant's schema on a replica: tenant schema plus replica in one call. Replicas are chosen
///   by [`ReadBalance`]; a replica that fails to hand out a connection (down, unreachable) is
///   skipped for [`retry_replica_after`](ReplicatedPoolBuilder::retry_replica_after), and when
///   no replica can serve, the read falls back to the primary (unless turned off).
/// - **Per-statement choice in one request**: [`route`](Self::route) gives a [`RoutedDb`].
///
/// Reads from a replica see the primary's commits only once the replica has replayed them
/// (usually milliseconds, unbounded under load): read what you just wrote through
/// [`get`](Self::get) or [`RoutedDb::primary`].
///
/// Cloning is cheap and shares the pools.
///
/// ```no_run
/// use std::time::Duration;
/// use tenant_runtime::pool::ReplicatedPool;
/// use tenant_runtime::{Allowlist, Model, TenantPool};
///
/// #[derive(Debug, Model)]
/// #[tenant(table = "invoices")]
/// struct Invoice { #[tenant(primary_key, identity)] id: i64, amount_cents: i64 }
///
/// # async fn run() -> Result<(), tenant_runtime::Error> {
/// let replica = |url: &str| -> Result<TenantPool, tenant_runtime::Error> {
///     // Short waits: a busy replica should hand the read on, not hold it.
///     TenantPool::builder(url)?.max_size(8).wait_timeout(Some(Duration::from_millis(200))).build()
/// };
/// let pool = ReplicatedPool::builder(TenantPool::builder("postgres://app@primary/app")?.build()?)
///     .replica(replica("postgres://app@replica1/app")?)
///     .replica(replica("postgres://app@replica2/app")?)
///     .build()?;
/// let acme = Allowlist::from_pairs([("acme", "tenant_acme")])?.resolve("acme")?;
///
/// Invoice { id: 0, amount_cents: 1200 }.insert(&pool.get(&acme).await?).await?; // primary
/// let invoices = Invoice::query().fetch_all(&pool.read(&acme).await?).await?; // a replica
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ReplicatedPool {
    inner: Arc<Inner>,
}

struct Inner {
    primary: TenantPool,
    replicas: Vec<Replica>,
    balance: ReadBalance,
    fallback: bool,
    retry_after: Duration,
    next: AtomicUsize,
    epoch: Instant,
}

struct Replica {
    pool: TenantPool,
    /// Milliseconds since `epoch` until which the replica is skipped; 0 when it is not.
    skip_until: AtomicU64,
}

impl ReplicatedPool {
    /// A builder around the primary pool.
    ///
    /// ```
    /// use tenant_runtime::pool::ReplicatedPool;
    /// use tenant_runtime::TenantPool;
    /// let primary = TenantPool::builder("postgres://postgres@127.0.0.1/postgres")?.build()?;
    /// let pool = ReplicatedPool::builder(primary).build()?; // no replicas yet: reads use the primary
    /// assert_eq!(pool.replica_count(), 0);
    /// # Ok::<(), tenant_runtime::Error>(())
    /// ```
    pub fn builder(primary: TenantPool) -> ReplicatedPoolBuilder {
        ReplicatedPoolBuilder {
            primary,
            replicas: Vec::new(),
            balance: ReadBalance::default(),
            fallback: true,
            retry_after: ReplicatedPoolBuilder::DEFAULT_RETRY_REPLICA_AFTER,
        }
    }

    /// A handle for `tenant` on the primary: for writes, transactions, and reads that must see
    /// the latest commits. The same as [`TenantPool::get`] on the primary pool.
    pub async fn get(&self, tenant: &Tenant) -> Result<PooledDb> {
        self.inner.primary.get(tenant).await
    }

    /// A read-only handle for `tenant` on a replica: the tenant's schema on a replica, in one
    /// call. Falls back to the primary when no replica can serve (see
    /// [`ReplicatedPoolBuilder::fallback_to_primary`]); [`ReplicaClient::served_by`] says
    /// which server it is.
    ///
    /// ```no_run
    /// # use tenant_runtime::pool::ReplicatedPool;
    /// # use tenant_runtime::{Allowlist, Model};
    /// # #[derive(Model)] #[tenant(table = "invoices")] struct Invoice { #[tenant(primary_key)] id: i64 }
    /// # async fn run(pool: ReplicatedPool, allowlist: Allowlist) -> Result<(), tenant_runtime::Error> {
    /// let n = Invoice::query().count(&pool.read(&allowlist.resolve("acme")?).await?).await?;
    /// # Ok(()) }
    /// ```
    pub async fn read(&self, tenant: &Tenant) -> Result<ReplicaDb> {
        Ok(Db::new(self.read_client().await?, tenant))
    }

    /// A connection for reads, for work that involves no one tenant (or several: make a
    /// handle per tenant with [`Db::new`]`(&conn, &tenant)`).
    pub async fn read_client(&self) -> Result<ReplicaClient> {
        let inner = &*self.inner;
        let mut tried = 0;
        let mut last_error = None;
        if !inner.replicas.is_empty() {
            let now = inner.now_ms();
            let (up, skipped): (SmallVec<[usize; 8]>, SmallVec<[usize; 8]>) = inner
                .preference_order()
                .into_iter()
                .partition(|&i| inner.replicas[i].skip_until.load(Ordering::Relaxed) <= now);
            // Skipped replicas are tried only when there is nothing else to serve the read.
            let last_resort = if inner.fallback {
                &[][..]
            } else {
                &skipped[..]
            };
            for &index in up.iter().chain(last_resort) {
                match inner.replicas[index].pool.client().await {
                    Ok(conn) => {
                        inner.replicas[index].skip_until.store(0, Ordering::Relaxed);
                        return Ok(ReplicaClient {
                            conn,
                            served_by: ServedBy::Replica(index),
                        });
                    }
                    Err(error) => {
                        tried += 1;
                        inner.note_failure(index, &error);
                        last_error = Some(error);
                    }
                }
            }
        }
        match last_error {
            Some(last) if !inner.fallback => Err(Error::NoReplicaAvailable {
                replicas: tried,
                last: Box::new(last),
            }),
            _ => Ok(ReplicaClient {
                conn: inner.primary.client().await?,
                served_by: ServedBy::Primary,
            }),
        }
    }

    /// A per-request handle for `tenant` that checks out a replica connection and a primary
    /// connection lazily, on the first statement that needs each.
    pub fn route(&self, tenant: &Tenant) -> RoutedDb {
        RoutedDb {
            pool: self.clone(),
            tenant: tenant.clone(),
            map: SchemaMap::new(),
            replica: OnceCell::new(),
            primary: OnceCell::new(),
        }
    }

    /// The primary pool.
    pub fn primary(&self) -> &TenantPool {
        &self.inner.primary
    }

    /// The replica pool at `index` (in the order they were added), if there is one.
    pub fn replica(&self, index: usize) -> Option<&TenantPool> {
        self.inner.replicas.get(index).map(|r| &r.pool)
    }

    /// How many replicas there are.
    pub fn replica_count(&self) -> usize {
        self.inner.replicas.len()
    }

    /// The replicas skipped for now because they failed to hand out a connection, by index.
    pub fn skipped_replicas(&self) -> Vec<usize> {
        let now = self.inner.now_ms();
        (0..self.inner.replicas.len())
            .filter(|&i| self.inner.replicas[i].skip_until.load(Ordering::Relaxed) > now)
            .collect()
    }
}

impl Inner {
    fn now_ms(&self) -> u64 {
        // +1 so that 0 always means "not skipped".
        self.epoch.elapsed().as_millis() as u64 + 1
    }

    /// Replica indices, most preferred first.
    fn preference_order(&self) -> SmallVec<[usize; 8]> {
        let n = self.replicas.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed) % n;
        let mut order: SmallVec<[usize; 8]> = (start..n).chain(0..start).collect();
        if self.balance == ReadBalance::LeastBusy {
            // Stable: among equally busy replicas the round-robin order stays.
            order.sort_by_key(|&i| {
                let s = self.replicas[i].pool.status();
                s.size.saturating_sub(s.available) + s.waiting
            });
        }
        order
    }

    /// Skips a replica that failed for a while, unless it merely had no free connection.
    fn note_failure(&self, index: usize, error: &Error) {
        let replica = &self.replicas[index];
        let status = replica.pool.status();
        let busy = matches!(error, Error::PoolTimeout { .. }) && status.size >= status.max_size;
        tracing::warn!(replica = index, busy, %error, "a replica could not serve a read");
        if !busy {
            let until = self.now_ms() + self.retry_after.as_millis() as u64;
            replica.skip_until.store(until, Ordering::Relaxed);
        }
    }
}

impl std::fmt::Debug for ReplicatedPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplicatedPool")
            .field("primary", &self.inner.primary)
            .field(
                "replicas",
                &self
                    .inner
                    .replicas
                    .iter()
                    .map(|r| &r.pool)
                    .collect::<Vec<_>>(),
            )
            .field("balance", &self.inner.balance)
            .field("fallback_to_primary", &self.inner.fallback)
            .field("retry_replica_after", &self.inner.retry_after)
            .finish()
    }
}

/// Configures a [`ReplicatedPool`]: its replicas, how reads pick one, and what happens when
/// none can serve.
///
/// ```
/// use std::time::Duration;
/// use tenant_runtime::pool::{ReadBalance, ReplicatedPool};
/// use tenant_runtime::TenantPool;
/// # fn run() -> Result<(), tenant_runtime::Error> {
/// let pool = ReplicatedPool::builder(TenantPool::builder("postgres://app@primary/app")?.build()?)
///     .replica(TenantPool::builder("postgres://app@replica1/app")?.build()?)
///     .replica(TenantPool::builder("postgres://app@replica2/app")?.build()?)
///     .balance(ReadBalance::LeastBusy)
///     .retry_replica_after(Duration::from_secs(10))
///     .build()?;
/// assert_eq!(pool.replica_count(), 2);
/// # Ok(()) }
/// ```
#[must_use = "a builder does nothing until `build` is called"]
pub struct ReplicatedPoolBuilder {
    primary: TenantPool,
    replicas: Vec<TenantPool>,
    balance: ReadBalance,
    fallback: bool,
    retry_after: Duration,
}

impl ReplicatedPoolBuilder {
    /// Default time a failed replica is skipped.
    pub const DEFAULT_RETRY_REPLICA_AFTER: Duration = Duration::from_secs(5);

    /// Adds a replica pool (its index is the number of replicas added before it). Give
    /// replica pools a short wait timeout, so that a busy replica hands the read on quickly.
    pub fn replica(mut self, pool: TenantPool) -> ReplicatedPoolBuilder {
        self.replicas.push(pool);
        self
    }

    /// How reads pick a replica (default [`ReadBalance::RoundRobin`]).
    pub fn balance(mut self, balance: ReadBalance) -> ReplicatedPoolBuilder {
        self.balance = balance;
        self
    }

    /// Whether a read that no replica can serve goes to the primary (the default) or fails
    /// with [`Error::NoReplicaAvailable`]. Turn it off to protect the primary from read load
    /// when replicas fail.
    pub fn fallback_to_primary(mut self, fallback: bool) -> ReplicatedPoolBuilder {
        self.fallback = fallback;
        self
    }

    /// How long a replica that failed to hand out a connection (other than by being busy) is
    /// skipped before reads try it again (default 5 s).
    pub fn retry_replica_after(mut self, after: Duration) -> ReplicatedPoolBuilder {
        self.retry_after = after;
        self
    }

    /// Builds the pool. No connection is opened.
    ///
    /// ```
    /// use tenant_runtime::pool::ReplicatedPool;
    /// use tenant_runtime::{Error, TenantPool};
    /// let primary = TenantPool::builder("postgres://postgres@127.0.0.1/postgres")?.build()?;
    /// // No replica and no fallback: no read could ever be served.
    /// let built = ReplicatedPool::builder(primary).fallback_to_primary(false).build();
    /// assert!(matches!(built, Err(Error::Pool(tenant_runtime::error::PoolError::InvalidConfig { .. }))));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn build(self) -> Result<ReplicatedPool> {
        if self.replicas.is_empty() && !self.fallback {
            return Err(Error::Pool(PoolError::InvalidConfig {
                reason: "no replicas and fallback_to_primary(false): no read could be served; \
                         add a replica or allow the fallback"
                    .into(),
            }));
        }
        Ok(ReplicatedPool {
            inner: Arc::new(Inner {
                primary: self.primary,
                replicas: self
                    .replicas
                    .into_iter()
                    .map(|pool| Replica {
                        pool,
                        skip_until: AtomicU64::new(0),
                    })
                    .collect(),
                balance: self.balance,
                fallback: self.fallback,
                retry_after: self.retry_after,
                next: AtomicUsize::new(0),
                epoch: Instant::now(),
            }),
        })
    }
}

impl std::fmt::Debug for ReplicatedPoolBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplicatedPoolBuilder")
            .field("replicas", &self.replicas.len())
            .field("balance", &self.balance)
            .field("fallback_to_primary", &self.fallback)
            .field("retry_replica_after", &self.retry_after)
            .finish_non_exhaustive()
    }
}

/// One request's view of a [`ReplicatedPool`] for one tenant: each statement picks its side.
///
/// - [`read`](Self::read): a replica handle (checked out on first use, then reused);
/// - [`primary`](Self::primary): the primary handle (likewise), for writes and fresh reads;
/// - [`transaction`](Self::transaction): a transaction on the primary. It borrows this
///   handle mutably, so while it is open no statement can go to the replica: everything in a
///   transaction stays on the primary, checked by the compiler.
///
/// Both connections go back to their pools when the `RoutedDb` is dropped.
///
/// ```no_run
/// use tenant_runtime::pool::ReplicatedPool;
/// use tenant_runtime::{Allowlist, Model};
///
/// #[derive(Debug, Model)]
/// #[tenant(table = "invoices")]
/// struct Invoice { #[tenant(primary_key, identity)] id: i64, amount_cents: i64 }
///
/// # async fn run(pool: ReplicatedPool, allowlist: Allowlist) -> Result<(), tenant_runtime::Error> {
/// let mut db = pool.route(&allowlist.resolve("acme")?);
/// let listed = Invoice::query().fetch_all(db.read().await?).await?;          // replica
/// let saved = Invoice { id: 0, amount_cents: 900 }.insert(db.primary().await?).await?; // primary
///
/// let tx = db.transaction().await?;                                          // primary
/// Invoice { id: 0, amount_cents: 100 }.insert(&tx).await?;
/// let total = Invoice::query().count(&tx).await?; // same transaction: sees its own insert
/// tx.commit().await?;
/// # Ok(()) }
/// ```
pub struct RoutedDb {
    pool: ReplicatedPool,
    tenant: Tenant,
    map: SchemaMap,
    replica: OnceCell<ReplicaDb>,
    primary: OnceCell<PooledDb>,
}

impl RoutedDb {
    /// Sets the handle-level schema map of both sides (before the first statement; handles
    /// already checked out keep theirs).
    pub fn with_schema_map(mut self, map: SchemaMap) -> RoutedDb {
        self.map = map;
        self
    }

    /// The tenant this handle runs for.
    pub fn tenant(&self) -> &Tenant {
        &self.tenant
    }

    /// The replica handle, for statements that may read slightly stale data.
    pub async fn read(&self) -> Result<&ReplicaDb> {
        self.replica
            .get_or_try_init(|| async {
                let conn = self.pool.read_client().await?;
                Ok(Db::new(conn, &self.tenant).with_schema_map(self.map.clone()))
            })
            .await
    }

    /// The primary handle, for writes and reads that must see the latest commits.
    pub async fn primary(&self) -> Result<&PooledDb> {
        self.primary
            .get_or_try_init(|| async {
                let conn = self.pool.primary().client().await?;
                Ok(Db::new(conn, &self.tenant).with_schema_map(self.map.clone()))
            })
            .await
    }

    /// Opens a transaction on the primary (it rolls back when dropped without
    /// [`Db::commit`]).
    pub async fn transaction(&mut self) -> Result<Db<Transaction<'_>>> {
        self.primary().await?;
        let primary = self.primary.get_mut().expect("initialized just above");
        primary.transaction().await
    }
}

impl std::fmt::Debug for RoutedDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoutedDb")
            .field("tenant", &self.tenant)
            .field("replica", &self.replica.get().map(|db| db.executor()))
            .field("primary_checked_out", &self.primary.initialized())
            .finish_non_exhaustive()
    }
}
