//! Database per tenant: a registry from tenant to connection settings, and a bounded set of
//! small per-database pools, each created when a tenant first needs it.
//!
//! The tenant still comes through the one door ([`Allowlist::resolve`](crate::Allowlist::resolve)
//! → [`Tenant`]); the registry is consulted with the tenant's key and says which database it
//! lives in. Inside that database its tables live in its schema, as everywhere else, so the
//! same models, queries and migrations work whether a tenant shares a database or has its own.

use std::collections::HashMap;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use lru::LruCache;
use tokio::sync::Notify;

use crate::door::SchemaName;
use crate::door::{validate_key, Tenant};
use crate::error::{AllowlistError, Duplicated, Error, PoolError, Result};
use crate::exec::Db;
use crate::exec::{sealed, Begin, Client, ConnState, Executor, PgRef, Transaction, Writable};
use crate::pool::{PoolStatus, PooledClient, TenantPool, TenantPoolBuilder};

/// Identifies one distinct set of connection settings in a process.
static NEXT_TARGET_ID: AtomicU64 = AtomicU64::new(1);

/// One distinct database to connect to. Tenants with equal settings share one.
struct Target {
    id: u64,
    config: tokio_postgres::Config,
}

impl Target {
    fn new(config: tokio_postgres::Config) -> Arc<Target> {
        Arc::new(Target {
            id: NEXT_TARGET_ID.fetch_add(1, Ordering::Relaxed),
            config,
        })
    }
}

/// Which database each tenant lives in: tenant key → connection settings (a URL or a
/// `tokio_postgres::Config`).
///
/// Given in code or loaded from a table ([`load_from_table`](Self::load_from_table),
/// [`refresh_from_table`](Self::refresh_from_table)),
/// replaceable at run time; a [`TenantDatabases`] reads it on every lookup, so a change takes
/// effect on the next one. Tenants whose settings are equal share one database entry, and so
/// one pool. Cloning shares the same registry. Bounded like an
/// [`Allowlist`](crate::Allowlist): at most [`DatabaseRegistry::DEFAULT_MAX_LEN`] tenants, or
/// the bound of [`with_max_len`](Self::with_max_len).
///
/// ```
/// use tenant_runtime::pool::DatabaseRegistry;
///
/// let registry = DatabaseRegistry::from_pairs([
///     ("acme", "postgres://app@db-acme/app"),       // a database of its own
///     ("globex", "postgres://app@db-shared/app"),   // two small tenants
///     ("initech", "postgres://app@db-shared/app"),  // share one database
/// ])?;
/// assert_eq!((registry.len(), registry.databases()), (3, 2));
/// assert!(registry.contains("acme"));
/// # Ok::<(), tenant_runtime::Error>(())
/// ```
#[derive(Clone)]
pub struct DatabaseRegistry {
    inner: Arc<RwLock<HashMap<Box<str>, Arc<Target>>>>,
    max_len: usize,
}

impl Default for DatabaseRegistry {
    fn default() -> Self {
        DatabaseRegistry::with_max_len(Self::DEFAULT_MAX_LEN)
    }
}

impl DatabaseRegistry {
    /// Default bound on the number of tenants (the same as an allowlist's).
    pub const DEFAULT_MAX_LEN: usize = crate::Allowlist::DEFAULT_MAX_LEN;

    /// An empty registry with the default bound.
    ///
    /// ```
    /// assert!(tenant_runtime::pool::DatabaseRegistry::new().is_empty());
    /// ```
    pub fn new() -> DatabaseRegistry {
        DatabaseRegistry::default()
    }

    /// An empty registry that refuses to hold more than `max_len` tenants: an insert or a
    /// replace past it fails with
    /// [`AllowlistError::Full`](crate::error::AllowlistError::Full) and changes nothing.
    ///
    /// ```
    /// # use tenant_runtime::{error::AllowlistError, pool::DatabaseRegistry, Error};
    /// let registry = DatabaseRegistry::with_max_len(1);
    /// registry.insert("acme", "postgres://app@db-acme/app")?;
    /// registry.insert("acme", "postgres://app@db-other/app")?; // a move, not a new tenant
    /// let full = registry.insert("globex", "postgres://app@db-globex/app");
    /// assert!(matches!(full, Err(Error::Allowlist(AllowlistError::Full { max: 1 }))));
    /// let too_many = registry.replace([("a", "postgres://h/db"), ("b", "postgres://h/db")]);
    /// assert!(matches!(too_many, Err(Error::Allowlist(AllowlistError::Full { max: 1 }))));
    /// assert!(registry.contains("acme"));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn with_max_len(max_len: usize) -> DatabaseRegistry {
        DatabaseRegistry {
            inner: Arc::new(RwLock::new(HashMap::new())),
            max_len,
        }
    }

    /// A registry from `(tenant key, database URL)` pairs; nothing is built if any pair is bad
    /// (see [`replace`](Self::replace)).
    pub fn from_pairs<I, K, U>(pairs: I) -> Result<DatabaseRegistry>
    where
        I: IntoIterator<Item = (K, U)>,
        K: AsRef<str>,
        U: AsRef<str>,
    {
        let registry = DatabaseRegistry::new();
        registry.replace(pairs)?;
        Ok(registry)
    }

    /// Puts tenant `key` in the database at `url` (or moves it there).
    ///
    /// ```
    /// # use tenant_runtime::pool::DatabaseRegistry;
    /// # use tenant_runtime::Error;
    /// let registry = DatabaseRegistry::new();
    /// registry.insert("acme", "postgres://app@db-acme/app")?;
    /// assert!(matches!(registry.insert("globex", "postgres://[bad"), Err(Error::Pool(tenant_runtime::error::PoolError::InvalidConfig { .. }))));
    /// assert!(matches!(registry.insert("", "postgres://app@db/app"), Err(Error::InvalidTenantKey { .. })));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn insert(&self, key: &str, url: &str) -> Result<()> {
        self.insert_config(key, parse_url(key, url)?)
    }

    /// Puts tenant `key` in the database `config` connects to (or moves it there), for
    /// settings a URL cannot carry.
    pub fn insert_config(&self, key: &str, config: tokio_postgres::Config) -> Result<()> {
        validate_key(key)?;
        let mut entries = self.inner.write().unwrap_or_else(|e| e.into_inner());
        if !entries.contains_key(key) && entries.len() >= self.max_len {
            return Err(Error::Allowlist(AllowlistError::Full { max: self.max_len }));
        }
        // Linear in the number of tenants: one comparison each, without allocating.
        let target = match entries.values().find(|t| t.config == config) {
            Some(same) => same.clone(),
            None => Target::new(config),
        };
        entries.insert(key.into(), target);
        Ok(())
    }

    /// Removes tenant `key`; later lookups of it fail with [`Error::UnknownTenantDatabase`].
    /// Returns whether it was present.
    ///
    /// ```
    /// # use tenant_runtime::pool::DatabaseRegistry;
    /// let registry = DatabaseRegistry::from_pairs([("acme", "postgres://app@db-acme/app")])?;
    /// assert!(registry.remove("acme"));
    /// assert!(!registry.contains("acme"));
    /// # Ok::<(), tenant_runtime::Error>(())
    /// ```
    pub fn remove(&self, key: &str) -> bool {
        let mut entries = self.inner.write().unwrap_or_else(|e| e.into_inner());
        entries.remove(key).is_some()
    }

    /// Replaces every entry with `(tenant key, database URL)` pairs, all or nothing: a
    /// malformed key or URL, or a key given twice, changes nothing. Settings equal to ones
    /// already registered keep their identity, so a periodic reload does not reopen pools.
    ///
    /// ```
    /// # use tenant_runtime::pool::DatabaseRegistry;
    /// let registry = DatabaseRegistry::from_pairs([("acme", "postgres://app@db-acme/app")])?;
    /// assert!(registry.replace([("a", "postgres://app@x/app"), ("a", "postgres://app@y/app")]).is_err());
    /// assert!(registry.contains("acme")); // unchanged
    /// # Ok::<(), tenant_runtime::Error>(())
    /// ```
    pub fn replace<I, K, U>(&self, pairs: I) -> Result<()>
    where
        I: IntoIterator<Item = (K, U)>,
        K: AsRef<str>,
        U: AsRef<str>,
    {
        let mut parsed = Vec::new();
        for (key, url) in pairs {
            let key = key.as_ref();
            validate_key(key)?;
            parsed.push((Box::<str>::from(key), parse_url(key, url.as_ref())?));
            if parsed.len() > self.max_len {
                return Err(Error::Allowlist(AllowlistError::Full { max: self.max_len }));
            }
        }
        let mut entries = self.inner.write().unwrap_or_else(|e| e.into_inner());
        // Distinct settings, bucketed by their (password-redacted) debug text, then compared.
        let mut known: HashMap<String, Vec<Arc<Target>>> = HashMap::new();
        for target in entries.values() {
            let bucket = known.entry(format!("{:?}", target.config)).or_default();
            if !bucket.iter().any(|t| t.id == target.id) {
                bucket.push(target.clone());
            }
        }
        let mut fresh = HashMap::with_capacity(parsed.len());
        for (key, config) in parsed {
            let bucket = known.entry(format!("{config:?}")).or_default();
            let target = match bucket.iter().find(|t| t.config == config) {
                Some(same) => same.clone(),
                None => {
                    let target = Target::new(config);
                    bucket.push(target.clone());
                    target
                }
            };
            if fresh.insert(key.clone(), target).is_some() {
                return Err(Error::Allowlist(AllowlistError::DuplicateTenant {
                    what: Duplicated::Key,
                    value: key.into(),
                }));
            }
        }
        *entries = fresh;
        Ok(())
    }

    /// A registry loaded from the table `schema.table` (see
    /// [`refresh_from_table`](Self::refresh_from_table)), as
    /// [`Allowlist::load_from_registry`](crate::Allowlist::load_from_registry) loads an allowlist.
    ///
    /// ```no_run
    /// use tenant_runtime::{pool::DatabaseRegistry, Client};
    /// # async fn run() -> Result<(), tenant_runtime::Error> {
    /// let control = Client::connect("postgres://postgres@127.0.0.1/postgres").await?;
    /// let registry = DatabaseRegistry::load_from_table(&control, "public", "tenant_databases").await?;
    /// # Ok(()) }
    /// ```
    pub async fn load_from_table<E: Executor>(
        exec: &E,
        schema: &str,
        table: &str,
    ) -> Result<DatabaseRegistry> {
        let registry = DatabaseRegistry::new();
        registry.refresh_from_table(exec, schema, table).await?;
        Ok(registry)
    }

    /// Replaces every entry with the rows of the table `schema.table`, whose columns
    /// `tenant_key` and `database_url` are text; all or nothing, like [`replace`](Self::replace).
    /// Returns the number of tenants loaded. Call it again to refresh (as
    /// [`Allowlist::refresh_from_registry`](crate::Allowlist::refresh_from_registry) refreshes
    /// an allowlist). The query runs as the unnamed statement, so it is pooler-safe.
    ///
    /// ```no_run
    /// use tenant_runtime::{pool::DatabaseRegistry, Client};
    /// # async fn run() -> Result<(), tenant_runtime::Error> {
    /// let control = Client::connect("postgres://postgres@127.0.0.1/postgres").await?;
    /// control.as_tokio_postgres().batch_execute(
    ///     "CREATE TABLE IF NOT EXISTS public.tenant_databases (
    ///          tenant_key text PRIMARY KEY,
    ///          database_url text NOT NULL)",
    /// ).await?;
    /// let registry = DatabaseRegistry::new();
    /// let loaded = registry.refresh_from_table(&control, "public", "tenant_databases").await?;
    /// # Ok(()) }
    /// ```
    pub async fn refresh_from_table<E: Executor>(
        &self,
        exec: &E,
        schema: &str,
        table: &str,
    ) -> Result<usize> {
        let sql = format!(
            "SELECT tenant_key, database_url FROM {}.{}",
            SchemaName::parse(schema)?.quoted(),
            SchemaName::parse(table)?.quoted()
        );
        let rows = exec.pg().query_typed(&sql, &[]).await?;
        let mut pairs = Vec::with_capacity(rows.len());
        for row in &rows {
            let key: String = row.try_get(0)?;
            let url: String = row.try_get(1)?;
            pairs.push((key, url));
        }
        self.replace(pairs)?;
        Ok(rows.len())
    }

    /// Whether tenant `key` has a database.
    pub fn contains(&self, key: &str) -> bool {
        self.lookup(key).is_some()
    }

    /// The connection settings of tenant `key`'s database.
    ///
    /// ```
    /// # use tenant_runtime::pool::DatabaseRegistry;
    /// let registry = DatabaseRegistry::from_pairs([("acme", "postgres://app@db-acme/acme_db")])?;
    /// assert_eq!(registry.config("acme").unwrap().get_dbname(), Some("acme_db"));
    /// # Ok::<(), tenant_runtime::Error>(())
    /// ```
    pub fn config(&self, key: &str) -> Option<tokio_postgres::Config> {
        self.lookup(key).map(|t| t.config.clone())
    }

    /// Number of tenants.
    pub fn len(&self) -> usize {
        self.inner.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether there are no tenants.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of distinct databases (distinct connection settings) the tenants live in.
    pub fn databases(&self) -> usize {
        let entries = self.inner.read().unwrap_or_else(|e| e.into_inner());
        let mut ids: Vec<u64> = entries.values().map(|t| t.id).collect();
        ids.sort_unstable();
        ids.dedup();
        ids.len()
    }

    fn lookup(&self, key: &str) -> Option<Arc<Target>> {
        let entries = self.inner.read().unwrap_or_else(|e| e.into_inner());
        entries.get(key).cloned()
    }
}

impl fmt::Debug for DatabaseRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseRegistry")
            .field("tenants", &self.len())
            .field("databases", &self.databases())
            .finish()
    }
}

fn parse_url(key: &str, url: &str) -> Result<tokio_postgres::Config> {
    // The parse error never echoes the URL, which may hold a password.
    url.parse().map_err(|e| {
        Error::Pool(PoolError::InvalidConfig {
            reason: format!("the database URL of tenant {key:?} cannot be parsed: {e}"),
        })
    })
}

type ConfigurePool = Arc<dyn Fn(TenantPoolBuilder) -> TenantPoolBuilder + Send + Sync>;

/// A tenant handle in the tenant's own database: what [`TenantDatabases::get`] returns.
///
/// ```
/// use tenant_runtime::pool::DatabaseDb;
///
/// fn tenant_of(db: &DatabaseDb) -> &str {
///     db.tenant().key()
/// }
/// ```
pub type DatabaseDb = Db<DatabaseClient>;

/// A connection checked out of one of the pools of a [`TenantDatabases`]: a [`Client`] that
/// goes back to its pool when dropped (and then lets the set close that pool if it needs room).
/// It is an [`Executor`](crate::Executor), [`Writable`](crate::Writable), and can
/// [`Begin`](crate::Begin) transactions.
///
/// ```no_run
/// # use tenant_runtime::pool::TenantDatabases;
/// # use tenant_runtime::Allowlist;
/// # async fn run(databases: TenantDatabases, allowlist: Allowlist) -> Result<(), tenant_runtime::Error> {
/// let mut db = databases.get(&allowlist.resolve("acme")?).await?;
/// let tx = db.transaction().await?;
/// tx.commit().await?;
/// println!("cached statements: {}", db.executor().statement_cache().stats().len);
/// # Ok(()) }
/// ```
pub struct DatabaseClient {
    // Declared first, so it is back in its pool before the lease lets the pool be closed.
    pub(crate) conn: PooledClient,
    _lease: Lease,
}

impl Deref for DatabaseClient {
    type Target = Client;
    fn deref(&self) -> &Client {
        &self.conn
    }
}

impl DerefMut for DatabaseClient {
    fn deref_mut(&mut self) -> &mut Client {
        &mut self.conn
    }
}

impl sealed::Sealed for DatabaseClient {}
impl Executor for DatabaseClient {
    fn conn_state(&self) -> &ConnState {
        self.conn.conn_state()
    }
    fn pg(&self) -> PgRef<'_> {
        self.conn.pg()
    }
}
impl Writable for DatabaseClient {}
impl Begin for DatabaseClient {
    fn begin(&mut self) -> impl std::future::Future<Output = Result<Transaction<'_>>> + Send {
        self.conn.transaction()
    }
}

impl fmt::Debug for DatabaseClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("DatabaseClient").field(&*self.conn).finish()
    }
}

/// Pools for tenants that live in databases of their own, as a [`DatabaseRegistry`] says.
///
/// - **Lazy**: a database's pool is created on the first lookup of a tenant that lives there
///   (one pool per distinct database: in database-per-tenant that is one per tenant; tenants
///   that share settings share a pool).
/// - **Small**: each pool opens at most [`DEFAULT_POOL_MAX_SIZE`](TenantDatabasesBuilder::DEFAULT_POOL_MAX_SIZE)
///   connections unless [`configure_pools`](TenantDatabasesBuilder::configure_pools) says otherwise.
/// - **Bounded in number**: at most [`max_pools`](TenantDatabasesBuilder::max_pools) pools
///   are open, so at most `max_pools × pool max size` connections. When a new pool is needed
///   and the bound is reached, the least recently used pool *with no connection checked out*
///   is closed (its idle connections at once). If every pool has a connection out, the lookup
///   waits until one is returned, at most [`busy_timeout`](TenantDatabasesBuilder::busy_timeout),
///   then fails with [`Error::TenantPoolsBusy`]: like a pool's own wait for a free
///   connection, and for the same reason, the connection budget is in use. A zero timeout
///   fails at once (to shed load, e.g. answer HTTP 503).
/// - **Unknown tenants never create a pool**: a tenant the registry does not name fails with
///   [`Error::UnknownTenantDatabase`] before any pool is touched.
///
/// Lookups take one short lock; finding a pool to close walks the open pools from the least
/// recently used, past the busy ones (`O(max_pools)` at worst). Cloning is cheap and shares
/// the pools.
///
/// ```no_run
/// use tenant_runtime::pool::{DatabaseRegistry, TenantDatabases};
/// use tenant_runtime::{Allowlist, Model};
///
/// #[derive(Debug, Model)]
/// #[tenant(table = "invoices")]
/// struct Invoice { #[tenant(primary_key, identity)] id: i64, amount_cents: i64 }
///
/// # async fn run() -> Result<(), tenant_runtime::Error> {
/// let allowlist = Allowlist::from_pairs([("acme", "tenant_acme"), ("globex", "tenant_globex")])?;
/// let registry = DatabaseRegistry::from_pairs([
///     ("acme", "postgres://app@db-acme/app"),
///     ("globex", "postgres://app@db-globex/app"),
/// ])?;
/// let databases = TenantDatabases::builder(registry)
///     .max_pools(100)
///     .configure_pools(|pool| pool.max_size(4))
///     .build()?;
///
/// // "tenant_acme"."invoices" in acme's own database:
/// let db = databases.get(&allowlist.resolve("acme")?).await?;
/// Invoice { id: 0, amount_cents: 1200 }.insert(&db).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct TenantDatabases {
    inner: Arc<Inner>,
}

struct Inner {
    registry: DatabaseRegistry,
    max_pools: usize,
    busy_timeout: Duration,
    configure: ConfigurePool,
    pools: Mutex<Pools>,
    /// Woken when a pool has no connection out any more.
    released: Notify,
    opened: AtomicU64,
    closed: AtomicU64,
}

/// The open pools by target id, most recently used first. The cache is unbounded: the bound
/// (`max_pools`) is kept by [`Inner::lease`], which closes the least recently used pool *that
/// has no connection out*, something `LruCache::put` cannot choose.
struct Pools {
    by_target: LruCache<u64, PoolEntry>,
}

struct PoolEntry {
    pool: TenantPool,
    /// Lookups under way plus connections checked out ([`Lease`]s alive).
    in_use: usize,
}

/// Counters of a [`TenantDatabases`], read with [`TenantDatabases::stats`].
///
/// ```
/// use tenant_runtime::pool::{DatabaseRegistry, TenantDatabases};
/// let databases = TenantDatabases::builder(DatabaseRegistry::new()).max_pools(8).build()?;
/// let stats = databases.stats();
/// assert_eq!((stats.live_pools, stats.max_pools, stats.connections), (0, 8, 0));
/// # Ok::<(), tenant_runtime::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct DatabasesStats {
    /// Pools open now.
    pub live_pools: usize,
    /// The most pools open at once.
    pub max_pools: usize,
    /// Connections open now, over every pool (checked out or idle).
    pub connections: usize,
    /// Pools created so far.
    pub pools_opened: u64,
    /// Pools closed so far (to make room, or by [`TenantDatabases::close_idle`]).
    pub pools_closed: u64,
}

impl TenantDatabases {
    /// A builder over `registry`.
    ///
    /// ```
    /// use tenant_runtime::pool::{DatabaseRegistry, TenantDatabases};
    /// let databases = TenantDatabases::builder(DatabaseRegistry::new()).max_pools(8).build()?;
    /// assert_eq!(databases.live_pools(), 0);
    /// # Ok::<(), tenant_runtime::Error>(())
    /// ```
    pub fn builder(registry: DatabaseRegistry) -> TenantDatabasesBuilder {
        TenantDatabasesBuilder {
            registry,
            max_pools: TenantDatabasesBuilder::DEFAULT_MAX_POOLS,
            busy_timeout: TenantDatabasesBuilder::DEFAULT_BUSY_TIMEOUT,
            configure: None,
        }
    }

    /// A handle for `tenant` in its own database, on a connection of that database's pool
    /// (created now if needed); the connection goes back when the handle is dropped.
    ///
    /// Fails with [`Error::UnknownTenantDatabase`] if the registry names no database for the
    /// tenant, [`Error::TenantPoolsBusy`] if a pool is needed and none could be closed within
    /// the busy timeout, else as [`TenantPool::get`].
    pub async fn get(&self, tenant: &Tenant) -> Result<DatabaseDb> {
        let target = self.inner.registry.lookup(tenant.key()).ok_or_else(|| {
            Error::UnknownTenantDatabase {
                key: tenant.key().into(),
            }
        })?;
        let deadline = tokio::time::Instant::now() + self.inner.busy_timeout;
        let lease = loop {
            // Registered before trying, so a release between the try and the wait is not missed.
            let released = self.inner.released.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            match Inner::lease(&self.inner, &target) {
                Err(Error::TenantPoolsBusy { .. })
                    if tokio::time::timeout_at(deadline, released).await.is_ok() => {}
                other => break other?,
            }
        };
        let conn = lease.pool.client().await?;
        Ok(Db::new(
            DatabaseClient {
                conn,
                _lease: lease,
            },
            tenant,
        ))
    }

    /// Number of pools open now (never more than the configured maximum).
    pub fn live_pools(&self) -> usize {
        self.inner.lock().by_target.len()
    }

    /// Pools, connections and counters now.
    pub fn stats(&self) -> DatabasesStats {
        let pools = self.inner.lock();
        DatabasesStats {
            live_pools: pools.by_target.len(),
            max_pools: self.inner.max_pools,
            connections: pools
                .by_target
                .iter()
                .map(|(_, e)| e.pool.status().size)
                .sum(),
            pools_opened: self.inner.opened.load(Ordering::Relaxed),
            pools_closed: self.inner.closed.load(Ordering::Relaxed),
        }
    }

    /// The status of the pool `tenant` uses, if it is open.
    pub fn pool_status(&self, tenant: &Tenant) -> Option<PoolStatus> {
        let target = self.inner.registry.lookup(tenant.key())?;
        let pools = self.inner.lock();
        pools.by_target.peek(&target.id).map(|e| e.pool.status())
    }

    /// Closes every pool with no connection checked out (e.g. from a periodic housekeeping
    /// task, or after a registry reload moved tenants away); returns how many were closed.
    pub fn close_idle(&self) -> usize {
        let mut pools = self.inner.lock();
        let idle: Vec<u64> = pools
            .by_target
            .iter()
            .filter(|(_, e)| e.in_use == 0)
            .map(|(&id, _)| id)
            .collect();
        for id in &idle {
            self.inner.close(&mut pools, *id);
        }
        idle.len()
    }

    /// The registry this set routes by.
    pub fn registry(&self) -> &DatabaseRegistry {
        &self.inner.registry
    }
}

/// One use of a pool, from choosing it until its connection is back: the pool is not closed
/// while a lease is alive.
struct Lease {
    inner: Arc<Inner>,
    target: u64,
    pool: TenantPool,
}

impl Drop for Lease {
    fn drop(&mut self) {
        let mut pools = self.inner.lock();
        if let Some(entry) = pools.by_target.peek_mut(&self.target) {
            entry.in_use -= 1;
            if entry.in_use == 0 {
                drop(pools);
                self.inner.released.notify_waiters();
            }
        }
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, Pools> {
        self.pools.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lease(this: &Arc<Inner>, target: &Target) -> Result<Lease> {
        let mut pools = this.lock();
        // `get_mut` marks the pool most recently used.
        if let Some(entry) = pools.by_target.get_mut(&target.id) {
            entry.in_use += 1;
            return Ok(Lease {
                inner: this.clone(),
                target: target.id,
                pool: entry.pool.clone(),
            });
        }
        if pools.by_target.len() >= this.max_pools {
            // Least recently used first.
            let victim = pools
                .by_target
                .iter()
                .rev()
                .find(|(_, e)| e.in_use == 0)
                .map(|(&id, _)| id);
            match victim {
                Some(id) => this.close(&mut pools, id),
                None => {
                    return Err(Error::TenantPoolsBusy {
                        max_pools: this.max_pools,
                    })
                }
            }
        }
        let pool =
            (this.configure)(TenantPoolBuilder::from_config(target.config.clone())).build()?;
        pools.by_target.put(
            target.id,
            PoolEntry {
                pool: pool.clone(),
                in_use: 1,
            },
        );
        this.opened.fetch_add(1, Ordering::Relaxed);
        Ok(Lease {
            inner: this.clone(),
            target: target.id,
            pool,
        })
    }

    fn close(&self, pools: &mut Pools, id: u64) {
        if let Some(entry) = pools.by_target.pop(&id) {
            entry.pool.close();
            self.closed.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl fmt::Debug for TenantDatabases {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TenantDatabases")
            .field("registry", &self.inner.registry)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// Configures a [`TenantDatabases`]: how many pools at most, and how each pool is built.
///
/// ```
/// use std::time::Duration;
/// use tenant_runtime::pool::{DatabaseRegistry, TenantDatabases};
/// use tenant_runtime::SchemaMap;
/// # fn run() -> Result<(), tenant_runtime::Error> {
/// let shared = SchemaMap::new().with("shared", "public")?;
/// let databases = TenantDatabases::builder(DatabaseRegistry::new())
///     .max_pools(50)
///     .configure_pools(move |pool| {
///         pool.max_size(2)
///             .wait_timeout(Some(Duration::from_secs(2)))
///             .schema_map(shared.clone())
///     })
///     .build()?;
/// # Ok(()) }
/// ```
#[must_use = "a builder does nothing until `build` is called"]
pub struct TenantDatabasesBuilder {
    registry: DatabaseRegistry,
    max_pools: usize,
    busy_timeout: Duration,
    configure: Option<ConfigurePool>,
}

impl TenantDatabasesBuilder {
    /// Default most pools open at once.
    pub const DEFAULT_MAX_POOLS: usize = 64;
    /// Default most connections per pool.
    pub const DEFAULT_POOL_MAX_SIZE: usize = 2;
    /// Default wait for a pool to free up when every pool has a connection out.
    pub const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

    /// The most pools open at once (at least 1). With `n` connections per pool, at most
    /// `max_pools × n` connections are open: keep it within the servers' connection budget.
    pub fn max_pools(mut self, max_pools: usize) -> TenantDatabasesBuilder {
        self.max_pools = max_pools;
        self
    }

    /// How long a lookup that needs a new pool waits, when every pool has a connection
    /// checked out, for one to be returned before failing with [`Error::TenantPoolsBusy`]
    /// (default 5 s). `Duration::ZERO` fails at once.
    pub fn busy_timeout(mut self, timeout: Duration) -> TenantDatabasesBuilder {
        self.busy_timeout = timeout;
        self
    }

    /// How each pool is built: `configure` gets a [`TenantPoolBuilder`] for the database's
    /// settings, already set to [`DEFAULT_POOL_MAX_SIZE`](Self::DEFAULT_POOL_MAX_SIZE)
    /// connections, and returns it with any other settings (size, timeouts, schema map,
    /// statement mode, TLS).
    pub fn configure_pools<F>(mut self, configure: F) -> TenantDatabasesBuilder
    where
        F: Fn(TenantPoolBuilder) -> TenantPoolBuilder + Send + Sync + 'static,
    {
        self.configure = Some(Arc::new(configure));
        self
    }

    /// Builds the set. No pool is created and no connection opened; the pool settings are
    /// checked once now, so a bad one fails here rather than on the first lookup.
    ///
    /// ```
    /// use tenant_runtime::pool::{DatabaseRegistry, TenantDatabases};
    /// use tenant_runtime::Error;
    /// let built = TenantDatabases::builder(DatabaseRegistry::new())
    ///     .configure_pools(|pool| pool.max_size(0))
    ///     .build();
    /// assert!(matches!(built, Err(Error::Pool(tenant_runtime::error::PoolError::InvalidConfig { .. }))));
    /// ```
    pub fn build(self) -> Result<TenantDatabases> {
        if self.max_pools == 0 {
            return Err(Error::Pool(PoolError::InvalidConfig {
                reason: "max_pools is 0; allow at least one pool".into(),
            }));
        }
        let user = self.configure;
        let configure: ConfigurePool = Arc::new(move |builder: TenantPoolBuilder| {
            let builder = builder.max_size(Self::DEFAULT_POOL_MAX_SIZE);
            match &user {
                Some(user) => user(builder),
                None => builder,
            }
        });
        // Building a pool opens nothing, so this checks the settings for free.
        configure(TenantPoolBuilder::from_config(tokio_postgres::Config::new())).build()?;
        Ok(TenantDatabases {
            inner: Arc::new(Inner {
                registry: self.registry,
                max_pools: self.max_pools,
                busy_timeout: self.busy_timeout,
                configure,
                pools: Mutex::new(Pools {
                    by_target: LruCache::unbounded(),
                }),
                released: Notify::new(),
                opened: AtomicU64::new(0),
                closed: AtomicU64::new(0),
            }),
        })
    }
}

impl fmt::Debug for TenantDatabasesBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TenantDatabasesBuilder")
            .field("registry", &self.registry)
            .field("max_pools", &self.max_pools)
            .field("busy_timeout", &self.busy_timeout)
            .finish_non_exhaustive()
    }
}
