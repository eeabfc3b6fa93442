//! The per-connection, bounded cache of prepared statements.

use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use lru::LruCache;
use smallvec::SmallVec;
use tokio_postgres::Statement;

use crate::door::SchemaName;
use crate::sql::TemplateKey;

/// A prepared statement is identified by its template and the schemas that filled its slots.
#[derive(Clone, PartialEq, Eq, Hash)]
pub(crate) struct StatementKey {
    pub(crate) template: TemplateKey,
    pub(crate) schemas: SmallVec<[SchemaName; 2]>,
}

/// How statements are sent to the server, chosen per connection (for a pool, in its config).
///
/// ```
/// use tenant_runtime::StatementMode;
/// assert_eq!(StatementMode::default(), StatementMode::Prepared);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StatementMode {
    /// Named prepared statements for the statements that repeat, cached per connection in
    /// the [`StatementCache`]: parsed and planned once per (template, schemas), then only
    /// bound and executed. The default, and the fastest against PostgreSQL itself.
    ///
    /// Preparing is adaptive, as pgjdbc's `prepareThreshold`: a statement's first use runs as
    /// the unnamed statement, in one round trip (parameter types sent along, as in
    /// [`StatementMode::Unnamed`]), and it is prepared when it is used again while still in
    /// the cache ([`StatementCache::DEFAULT_PREPARE_THRESHOLD`] uses; set with
    /// [`Client::with_prepare_threshold`](crate::Client::with_prepare_threshold) or the pool's
    /// `prepare_threshold`). So a connection that serves more (statement, schema) pairs than
    /// its cache holds pays one round trip per statement, not a prepare, an execute and a
    /// close. A value with no built-in PostgreSQL type (a custom enum, say) is prepared on
    /// first use instead.
    #[default]
    Prepared,
    /// Pooler-safe: every statement runs as the *unnamed* statement (Parse, Bind, Execute,
    /// Sync in one round trip), with each parameter's type sent along, so no named prepared
    /// statement is ever left on a server connection. Use it behind PgBouncer (or any pooler)
    /// in transaction pooling mode, where consecutive statements may land on different server
    /// connections. The rendered SQL is still cached per (template, schemas).
    ///
    /// Parameter types come from the Rust values (as sqlx does): the built-in scalar types and
    /// their one-dimensional arrays. A value of any other type is refused with
    /// [`Error::UntypedParameter`](crate::Error::UntypedParameter).
    Unnamed,
}

/// What the cache holds for one (template, schemas): a named prepared statement, or the
/// rendered SQL text (in [`StatementMode::Unnamed`], and in [`StatementMode::Prepared`] until
/// the statement has been used as often as the prepare threshold).
#[derive(Clone)]
pub(crate) enum CachedStatement {
    Prepared(Statement),
    Unnamed(Arc<str>),
}

/// One cache entry: the statement and how many times it was looked up while cached.
struct Entry {
    statement: CachedStatement,
    uses: u32,
}

/// Prepared statements of one connection, keyed by (template, schemas), least recently used
/// evicted first. Evicting a statement closes it on the server, so neither side grows without
/// bound however many tenants one connection serves. A statement not prepared (yet) is held as
/// its rendered SQL, under the same bound: in [`StatementMode::Unnamed`] always, in
/// [`StatementMode::Prepared`] until its use reaches the prepare threshold (the cache is the
/// window a statement must come back within to be prepared).
///
/// ```
/// use tenant_runtime::exec::StatementCache;
/// let cache = StatementCache::with_capacity(2);
/// assert_eq!(cache.stats().capacity, 2);
/// assert_eq!(cache.stats().len, 0);
/// ```
pub struct StatementCache {
    entries: Mutex<LruCache<StatementKey, Entry>>,
    /// The bound now (a pool's default bound follows its backend's memory, see
    /// [`StatementCache::resize`]).
    capacity: AtomicUsize,
    prepares: AtomicU64,
    hits: AtomicU64,
    misses: AtomicU64,
    renders: AtomicU64,
    evictions: AtomicU64,
}

/// Counters of a [`StatementCache`], read with [`StatementCache::stats`].
///
/// ```no_run
/// use tenant_runtime::Client;
/// # async fn run() -> Result<(), tenant_runtime::Error> {
/// let client = Client::connect("postgres://postgres@127.0.0.1/postgres").await?;
/// let stats = client.statement_cache().stats();
/// println!("{} hits, {} misses, {}/{} held", stats.hits, stats.misses, stats.len, stats.capacity);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheStats {
    /// Statements found in the cache (prepared, or rendered and waiting to be prepared).
    pub hits: u64,
    /// Statements not found: rendered, then run unnamed or prepared.
    pub misses: u64,
    /// Statements prepared on the server (a round trip each; see the prepare threshold of
    /// [`StatementMode::Prepared`]).
    pub prepares: u64,
    /// Times a template was rendered to SQL text.
    pub renders: u64,
    /// Statements evicted (and closed) to stay within capacity.
    pub evictions: u64,
    /// Statements held now.
    pub len: usize,
    /// The bound.
    pub capacity: usize,
}

impl StatementCache {
    /// Default bound: statements kept per connection.
    pub const DEFAULT_CAPACITY: usize = 512;

    /// Default prepare threshold of [`StatementMode::Prepared`]: a statement is prepared on
    /// its second use while cached; its first runs unnamed, in one round trip. `1` prepares
    /// on first use; `0` never prepares (every statement runs unnamed).
    pub const DEFAULT_PREPARE_THRESHOLD: u32 = 2;

    /// A cache that holds at most `capacity` statements (at least 1).
    pub fn with_capacity(capacity: usize) -> StatementCache {
        let capacity = capacity.max(1);
        StatementCache {
            entries: Mutex::new(LruCache::new(
                NonZeroUsize::new(capacity).expect("capacity >= 1"),
            )),
            capacity: AtomicUsize::new(capacity),
            prepares: AtomicU64::new(0),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            renders: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
        }
    }

    /// The counters and current size.
    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            prepares: self.prepares.load(Ordering::Relaxed),
            renders: self.renders.load(Ordering::Relaxed),
            evictions: self.evictions.load(Ordering::Relaxed),
            len: self.lock().len(),
            capacity: self.capacity.load(Ordering::Relaxed),
        }
    }

    /// Sets the bound to `capacity` (at least 1); shrinking evicts (and closes) the least
    /// recently used statements above it. A pool moves its default bound this way, following
    /// what its backends' memory allows (see `TenantPoolBuilder::statement_cache_capacity`).
    pub(crate) fn resize(&self, capacity: usize) {
        let capacity = capacity.max(1);
        let mut entries = self.lock();
        let evicted = entries.len().saturating_sub(capacity);
        entries.resize(NonZeroUsize::new(capacity).expect("capacity >= 1"));
        self.capacity.store(capacity, Ordering::Relaxed);
        self.evictions.fetch_add(evicted as u64, Ordering::Relaxed);
    }

    /// Statements prepared so far.
    pub(crate) fn prepares(&self) -> u64 {
        self.prepares.load(Ordering::Relaxed)
    }

    /// Drops every statement (closing them on the server).
    pub fn clear(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LruCache<StatementKey, Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The statement cached under `key` and its use count, this use included.
    pub(crate) fn get(&self, key: &StatementKey) -> Option<(CachedStatement, u32)> {
        let found = self.lock().get_mut(key).map(|entry| {
            entry.uses = entry.uses.saturating_add(1);
            (entry.statement.clone(), entry.uses)
        });
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    pub(crate) fn note_prepare(&self) {
        self.prepares.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn note_render(&self) {
        self.renders.fetch_add(1, Ordering::Relaxed);
    }

    /// Caches `statement` under `key` as used `uses` times (replacing what was there).
    pub(crate) fn insert(&self, key: StatementKey, statement: CachedStatement, uses: u32) {
        let evicted = self.lock().push(key.clone(), Entry { statement, uses });
        if matches!(evicted, Some((k, _)) if k != key) {
            self.evictions.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl Default for StatementCache {
    fn default() -> Self {
        StatementCache::with_capacity(Self::DEFAULT_CAPACITY)
    }
}

impl std::fmt::Debug for StatementCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatementCache")
            .field("stats", &self.stats())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(sql: &str) -> StatementKey {
        StatementKey {
            template: TemplateKey::Dynamic(Arc::from(sql)),
            schemas: SmallVec::from_iter([SchemaName::parse("tenant_a").unwrap()]),
        }
    }

    #[test]
    fn resizing_keeps_the_most_recently_used_and_counts_what_it_evicts() {
        let cache = StatementCache::with_capacity(4);
        for q in ["q0", "q1", "q2", "q3"] {
            cache.insert(key(q), CachedStatement::Unnamed(Arc::from(q)), 1);
        }
        assert!(cache.get(&key("q0")).is_some(), "q0 is now the most recent");
        cache.resize(2);
        let stats = cache.stats();
        assert_eq!((stats.len, stats.capacity, stats.evictions), (2, 2, 2));
        assert!(cache.get(&key("q0")).is_some());
        assert!(cache.get(&key("q3")).is_some());
        assert!(
            cache.get(&key("q1")).is_none(),
            "least recently used: evicted"
        );
        cache.resize(8);
        for q in ["q4", "q5", "q6", "q7", "q8", "q9"] {
            cache.insert(key(q), CachedStatement::Unnamed(Arc::from(q)), 1);
        }
        let stats = cache.stats();
        assert_eq!((stats.len, stats.capacity, stats.evictions), (8, 8, 2));
    }
}
