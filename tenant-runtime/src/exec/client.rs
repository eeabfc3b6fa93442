//! A tokio-postgres connection with a bounded statement cache and a default schema map.

use tokio_postgres::NoTls;

use crate::door::Tenant;
use crate::error::Result;
use crate::exec::ConnState;
use crate::exec::Db;
use crate::exec::{StatementCache, StatementMode};
use crate::sql::SchemaMap;

/// One PostgreSQL connection, ready to serve any number of tenants.
///
/// It wraps a `tokio_postgres::Client` and adds the per-connection [`StatementCache`] and the
/// connection-level [`SchemaMap`]. Statements run through a [`Db`] handle made by
/// [`Client::for_tenant`].
///
/// ```no_run
/// use tenant_runtime::{Allowlist, Client, SchemaMap};
/// # async fn run() -> Result<(), tenant_runtime::Error> {
/// let mut client = Client::connect("postgres://postgres@127.0.0.1/postgres")
///     .await?
///     .with_schema_map(SchemaMap::new().with("shared", "public")?);
/// let acme = Allowlist::from_pairs([("acme", "tenant_acme")])?.resolve("acme")?;
/// let db = client.for_tenant(&acme);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Client {
    pub(crate) pg: tokio_postgres::Client,
    /// Boxed: a pool moves its connections by value at every checkout and return, and the
    /// state is 680 bytes.
    pub(crate) state: Box<ConnState>,
}

impl Client {
    /// Connects without TLS and drives the connection on a spawned tokio task.
    ///
    /// For TLS or other settings, connect with tokio-postgres yourself and pass the client
    /// to [`Client::new`].
    pub async fn connect(url: &str) -> Result<Client> {
        let (pg, connection) = tokio_postgres::connect(url, NoTls).await?;
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::warn!(%error, "postgres connection closed with an error");
            }
        });
        Ok(Client::new(pg))
    }

    /// Wraps a connected `tokio_postgres::Client`, with the default cache capacity
    /// ([`StatementCache::DEFAULT_CAPACITY`]) and an empty schema map.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let (pg, conn) = tokio_postgres::connect("host=127.0.0.1 user=postgres", tokio_postgres::NoTls).await?;
    /// tokio::spawn(conn);
    /// let client = tenant_runtime::Client::new(pg);
    /// # Ok(()) }
    /// ```
    pub fn new(pg: tokio_postgres::Client) -> Client {
        Client {
            pg,
            state: Box::default(),
        }
    }

    /// Sets the connection-level schema map (the widest level; handles and statements can
    /// narrow it).
    pub fn with_schema_map(mut self, map: SchemaMap) -> Client {
        self.state.map = map;
        self
    }

    /// Replaces the statement cache with an empty one of the given bound.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), tenant_runtime::Error> {
    /// let client = tenant_runtime::Client::connect("postgres://postgres@127.0.0.1/postgres")
    ///     .await?
    ///     .with_statement_cache_capacity(64);
    /// assert_eq!(client.statement_cache().stats().capacity, 64);
    /// # Ok(()) }
    /// ```
    pub fn with_statement_cache_capacity(mut self, capacity: usize) -> Client {
        self.state.cache = StatementCache::with_capacity(capacity);
        self
    }

    /// Sets how statements are sent: named prepared statements (the default) or, behind a
    /// transaction-pooling PgBouncer, the unnamed statement ([`StatementMode::Unnamed`]).
    /// Clears the statement cache, whose entries belong to one mode.
    ///
    /// ```no_run
    /// use tenant_runtime::{Client, StatementMode};
    /// # async fn run() -> Result<(), tenant_runtime::Error> {
    /// let client = Client::connect("postgres://postgres@127.0.0.1:6432/postgres")
    ///     .await?
    ///     .with_statement_mode(StatementMode::Unnamed);
    /// assert_eq!(client.statement_mode(), StatementMode::Unnamed);
    /// # Ok(()) }
    /// ```
    pub fn with_statement_mode(mut self, mode: StatementMode) -> Client {
        self.state.cache.clear();
        self.state.mode = mode;
        self
    }

    /// In [`StatementMode::Prepared`], the use at which a statement is prepared, as pgjdbc's
    /// `prepareThreshold`: uses before it run as the unnamed statement (one round trip each,
    /// parameter types sent along), the use that reaches it prepares the statement, provided
    /// the statement stayed in the [`StatementCache`] in between. `1` prepares every statement
    /// on first use; `0` prepares none. Default
    /// [`StatementCache::DEFAULT_PREPARE_THRESHOLD`] (2). No effect in
    /// [`StatementMode::Unnamed`], which never prepares.
    ///
    /// Parameter types: an unnamed use types each parameter from its Rust value, a prepared
    /// one takes the types PostgreSQL infers from the SQL. CRUD, the builder and `query!`
    /// (checked at compile time) bind the columns' own types, so both agree. A hand-built
    /// template that binds another type (an `i32` for a `bigint`) is kept unnamed when its
    /// prepared form refuses the value, so it never starts failing at the threshold.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), tenant_runtime::Error> {
    /// let client = tenant_runtime::Client::connect("postgres://postgres@127.0.0.1/postgres")
    ///     .await?
    ///     .with_prepare_threshold(1); // prepare on first use
    /// assert_eq!(client.prepare_threshold(), 1);
    /// # Ok(()) }
    /// ```
    pub fn with_prepare_threshold(mut self, threshold: u32) -> Client {
        self.state.prepare_threshold = threshold;
        self
    }

    /// The prepare threshold (see [`Client::with_prepare_threshold`]).
    pub fn prepare_threshold(&self) -> u32 {
        self.state.prepare_threshold
    }

    /// How this connection sends statements.
    pub fn statement_mode(&self) -> StatementMode {
        self.state.mode
    }

    /// The connection-level schema map.
    pub fn schema_map(&self) -> &SchemaMap {
        &self.state.map
    }

    /// The prepared-statement cache of this connection.
    pub fn statement_cache(&self) -> &StatementCache {
        &self.state.cache
    }

    /// A handle that runs statements for `tenant` on this connection.
    pub fn for_tenant(&mut self, tenant: &Tenant) -> Db<&mut Client> {
        Db::new(self, tenant)
    }

    /// Opens a transaction. It rolls back when dropped without [`Transaction::commit`].
    pub async fn transaction(&mut self) -> Result<Transaction<'_>> {
        let Client { pg, state } = self;
        Ok(Transaction {
            pg: pg.transaction().await?,
            state,
        })
    }

    /// The underlying tokio-postgres client, for SQL that involves no tenant schema.
    ///
    /// SQL sent through it may change the session (`SET`, `SET ROLE`, `LISTEN`, advisory
    /// locks, temporary tables, `PREPARE`, a `BEGIN` never ended), so calling this marks the
    /// connection: a [`TenantPool`](crate::TenantPool) resets its session (in one round trip)
    /// before it serves anyone else. See the pool's docs for what is reset.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let pool = tenant_runtime::TenantPool::builder("postgres://postgres@127.0.0.1/postgres")?.build()?;
    /// let conn = pool.client().await?;
    /// conn.as_tokio_postgres().batch_execute("SET statement_timeout = '5s'").await?;
    /// drop(conn); // reset before its next checkout: statement_timeout is back to its default
    /// # Ok(()) }
    /// ```
    pub fn as_tokio_postgres(&self) -> &tokio_postgres::Client {
        self.state.mark_needs_reset();
        &self.pg
    }

    /// Whether the connection has closed (the server went away or the task ended).
    pub fn is_closed(&self) -> bool {
        self.pg.is_closed()
    }
}

/// A transaction (or savepoint) on a [`Client`]. Rolls back on drop unless committed.
///
/// Usually reached through [`Db::transaction`], which keeps the tenant and map.
///
/// ```no_run
/// use tenant_runtime::Client;
/// # async fn run() -> Result<(), tenant_runtime::Error> {
/// let mut client = Client::connect("postgres://postgres@127.0.0.1/postgres").await?;
/// let tx = client.transaction().await?;     // BEGIN
/// // ... statements on `tx`, or `Db::new(&tx, &tenant)` for a tenant's models ...
/// tx.commit().await?;                         // dropped without commit: ROLLBACK
/// # Ok(()) }
/// ```
pub struct Transaction<'a> {
    pub(crate) pg: tokio_postgres::Transaction<'a>,
    pub(crate) state: &'a ConnState,
}

impl<'a> Transaction<'a> {
    /// Commits (or releases the savepoint).
    pub async fn commit(self) -> Result<()> {
        Ok(self.pg.commit().await?)
    }

    /// Rolls back (to the savepoint).
    pub async fn rollback(self) -> Result<()> {
        Ok(self.pg.rollback().await?)
    }

    /// The underlying tokio-postgres transaction, for third-party SQL that must run inside it
    /// (see [`Db::set_local_search_path`](crate::Db::set_local_search_path)).
    ///
    /// Like [`Client::as_tokio_postgres`], it marks the connection for a session reset before
    /// its next checkout from a pool: a plain `SET` (not `SET LOCAL`) outlives the transaction.
    pub fn as_tokio_postgres(&self) -> &tokio_postgres::Transaction<'a> {
        self.state.mark_needs_reset();
        &self.pg
    }

    /// Opens a savepoint inside this transaction.
    pub async fn savepoint(&mut self) -> Result<Transaction<'_>> {
        let state = self.state;
        Ok(Transaction {
            pg: self.pg.transaction().await?,
            state,
        })
    }
}

impl std::fmt::Debug for Transaction<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transaction").finish_non_exhaustive()
    }
}
