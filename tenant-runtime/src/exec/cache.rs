//! The per-connection, bounded cache of prepared statements, and the frequency sketch that
//! decides what a full cache admits.

use std::hash::BuildHasher;
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
    /// close. A full cache admits a statement only if it was used more often lately than the
    /// one it would evict (see [`StatementCache`]); a statement that is not admitted runs
    /// unnamed. With threshold 1 every statement is prepared on first use and cached, the
    /// least recently used evicted. A value with no built-in PostgreSQL type (a custom enum,
    /// say) is prepared on first use instead.
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
/// A full cache admits a statement only if it was used more often lately than the one it
/// would evict (TinyLFU admission, as in Caffeine: every lookup counts in a small frequency
/// sketch, whose counts halve as lookups pass ten times the capacity). So a long tail of
/// statements used once or twice (a tenant seen once an hour) runs unnamed, in one round
/// trip each, and does not push out the statements of the tenants that come back; those stay
/// prepared. A statement not admitted counts in [`CacheStats::rejections`]. (With prepare
/// threshold 1, every statement is prepared on first use and admitted.)
///
/// ```
/// use tenant_runtime::exec::StatementCache;
/// let cache = StatementCache::with_capacity(2);
/// assert_eq!(cache.stats().capacity, 2);
/// assert_eq!(cache.stats().len, 0);
/// ```
pub struct StatementCache {
    entries: Mutex<Entries>,
    /// The bound now (a pool's default bound follows its backend's memory, see
    /// [`StatementCache::resize`]).
    capacity: AtomicUsize,
    prepares: AtomicU64,
    hits: AtomicU64,
    misses: AtomicU64,
    renders: AtomicU64,
    evictions: AtomicU64,
    rejections: AtomicU64,
    /// Prepared statements dropped (closed on the server): evicted, replaced or cleared.
    closes: AtomicU64,
}

/// The entries, and how often each key was looked up lately.
struct Entries {
    lru: LruCache<StatementKey, Entry>,
    sketch: FrequencySketch,
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
    /// Statements not cached because the cache was full and they had been used no more often
    /// lately than the one they would have evicted; they ran unnamed.
    pub rejections: u64,
    /// Statements held now.
    pub len: usize,
    /// Of those, prepared on the server now (the rest are held as their SQL text, not yet
    /// used as often as the prepare threshold, or never to be prepared).
    pub prepared: usize,
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
            entries: Mutex::new(Entries {
                lru: LruCache::new(NonZeroUsize::new(capacity).expect("capacity >= 1")),
                sketch: FrequencySketch::for_capacity(capacity),
            }),
            capacity: AtomicUsize::new(capacity),
            prepares: AtomicU64::new(0),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            renders: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
            rejections: AtomicU64::new(0),
            closes: AtomicU64::new(0),
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
            rejections: self.rejections.load(Ordering::Relaxed),
            len: self.lock().lru.len(),
            prepared: usize::try_from(self.prepares().saturating_sub(self.closes()))
                .unwrap_or(usize::MAX),
            capacity: self.capacity.load(Ordering::Relaxed),
        }
    }

    /// Sets the bound to `capacity` (at least 1); shrinking evicts (and closes) the least
    /// recently used statements above it. A pool moves its default bound this way, following
    /// what its backends' memory allows (see `TenantPoolBuilder::statement_cache_capacity`).
    pub(crate) fn resize(&self, capacity: usize) {
        let capacity = capacity.max(1);
        let mut entries = self.lock();
        let mut evicted = Vec::new();
        while entries.lru.len() > capacity {
            evicted.extend(entries.lru.pop_lru());
        }
        entries
            .lru
            .resize(NonZeroUsize::new(capacity).expect("capacity >= 1"));
        entries.sketch.fit(capacity);
        drop(entries);
        self.capacity.store(capacity, Ordering::Relaxed);
        self.evictions
            .fetch_add(evicted.len() as u64, Ordering::Relaxed);
        self.note_dropped(evicted.into_iter().map(|(_, entry)| entry));
    }

    /// Statements prepared so far.
    pub(crate) fn prepares(&self) -> u64 {
        self.prepares.load(Ordering::Relaxed)
    }

    /// Prepared statements closed so far (evicted, replaced or cleared): with
    /// [`StatementCache::prepares`], how many the server holds.
    pub(crate) fn closes(&self) -> u64 {
        self.closes.load(Ordering::Relaxed)
    }

    /// Statements turned away so far: evicted, or not admitted to a full cache.
    pub(crate) fn turned_away(&self) -> u64 {
        self.evictions.load(Ordering::Relaxed) + self.rejections.load(Ordering::Relaxed)
    }

    /// The bound now.
    pub(crate) fn capacity(&self) -> usize {
        self.capacity.load(Ordering::Relaxed)
    }

    /// Counts the prepared statements among `dropped` as closed.
    fn note_dropped(&self, dropped: impl IntoIterator<Item = Entry>) {
        let closed = dropped
            .into_iter()
            .filter(|entry| matches!(entry.statement, CachedStatement::Prepared(_)))
            .count();
        if closed > 0 {
            self.closes.fetch_add(closed as u64, Ordering::Relaxed);
        }
    }

    /// Drops every statement (closing them on the server).
    pub fn clear(&self) {
        let mut entries = self.lock();
        let dropped: Vec<_> = std::iter::from_fn(|| entries.lru.pop_lru()).collect();
        drop(entries);
        self.note_dropped(dropped.into_iter().map(|(_, entry)| entry));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The statement cached under `key` and its use count, this use included. Found or not,
    /// the lookup counts toward `key`'s frequency (see [`StatementCache::offer`]).
    pub(crate) fn get(&self, key: &StatementKey) -> Option<(CachedStatement, u32)> {
        let found = {
            let mut entries = self.lock();
            entries.sketch.increment(key);
            entries.lru.get_mut(key).map(|entry| {
                entry.uses = entry.uses.saturating_add(1);
                (entry.statement.clone(), entry.uses)
            })
        };
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

    /// Caches `statement` under `key` as used `uses` times (replacing what was there),
    /// evicting the least recently used statement if the cache is full: for a statement that
    /// must be kept (just prepared, or kept unnamed for good).
    pub(crate) fn insert(&self, key: StatementKey, statement: CachedStatement, uses: u32) {
        let displaced = self.lock().lru.push(key.clone(), Entry { statement, uses });
        if let Some((k, entry)) = displaced {
            if k != key {
                self.evictions.fetch_add(1, Ordering::Relaxed);
            }
            self.note_dropped([entry]);
        }
    }

    /// Offers `statement`, just missed under `key` (after [`StatementCache::get`]), to the
    /// cache, as used once: kept while the cache has room; in a full cache, kept (evicting the
    /// least recently used statement) only if `key` was looked up more often lately than that
    /// statement. Returns whether it was kept.
    pub(crate) fn offer(&self, key: StatementKey, statement: CachedStatement) -> bool {
        let mut entries = self.lock();
        let Entries { lru, sketch } = &mut *entries;
        let entry = Entry { statement, uses: 1 };
        if lru.len() < lru.cap().get() {
            lru.put(key, entry);
            return true;
        }
        let candidate = sketch.frequency(&key);
        let victim = lru
            .peek_lru()
            .map_or(0, |(victim, _)| sketch.frequency(victim));
        if candidate <= victim {
            drop(entries);
            self.rejections.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        let evicted = lru.push(key, entry);
        drop(entries);
        self.evictions.fetch_add(1, Ordering::Relaxed);
        self.note_dropped(evicted.map(|(_, entry)| entry));
        true
    }
}

/// How often each key was looked up lately: a count-min sketch of 4-bit counters (kept in
/// bytes, saturating at 15), four rows of a power of two wide, about four counters per cached
/// statement. A key's frequency is the smallest of its four counters (an overestimate only
/// when all four are shared with other keys); an increment raises only the smallest of them
/// (conservative update). After ten lookups per cached statement every counter halves, so
/// the counts follow what is used now, not what was used an hour ago.
struct FrequencySketch {
    /// `ROWS` rows of `mask + 1` counters.
    counters: Box<[u8]>,
    mask: usize,
    /// Increments since the last halving.
    additions: usize,
    /// Increments between halvings.
    sample: usize,
}

impl FrequencySketch {
    const ROWS: usize = 4;
    const MAX: u8 = 15;
    /// Per-row seeds of the counters' indices (odd, from SplitMix64's constants).
    const SEEDS: [u64; Self::ROWS] = [
        0x9E37_79B9_7F4A_7C15,
        0xBF58_476D_1CE4_E5B9,
        0x94D0_49BB_1331_11EB,
        0xD6E8_FEB8_6659_FD93,
    ];

    fn for_capacity(capacity: usize) -> FrequencySketch {
        let width = capacity
            .saturating_mul(4)
            .clamp(64, 1 << 22)
            .next_power_of_two();
        FrequencySketch {
            counters: vec![0; width * Self::ROWS].into_boxed_slice(),
            mask: width - 1,
            additions: 0,
            sample: capacity.saturating_mul(10).max(64),
        }
    }

    /// Refitted to `capacity`, keeping the counts: a counter of the new width takes the
    /// largest of the old counters its index folds onto (a row's index is the hash's high
    /// bits under the mask, so widening adds a bit and narrowing drops one), so each key's
    /// frequency is still never underestimated.
    fn fit(&mut self, capacity: usize) {
        let mut fitted = FrequencySketch::for_capacity(capacity);
        if fitted.mask == self.mask {
            self.sample = fitted.sample;
            return;
        }
        let (old, new) = (self.mask + 1, fitted.mask + 1);
        for row in 0..Self::ROWS {
            let from = &self.counters[row * old..(row + 1) * old];
            let to = &mut fitted.counters[row * new..(row + 1) * new];
            if new > old {
                for (i, counter) in to.iter_mut().enumerate() {
                    *counter = from[i & self.mask];
                }
            } else {
                for (i, &count) in from.iter().enumerate() {
                    let counter = &mut to[i & fitted.mask];
                    *counter = (*counter).max(count);
                }
            }
        }
        fitted.additions = self.additions.min(fitted.sample);
        *self = fitted;
    }

    fn indices(&self, key: &StatementKey) -> [usize; Self::ROWS] {
        // A fast, fixed-seed hash (several run per statement; SipHash was a tenth of the
        // runtime's own CPU per statement), spread over the rows by the seeds below.
        let hash = foldhash::fast::FixedState::with_seed(Self::SEEDS[0]).hash_one(key);
        let width = self.mask + 1;
        std::array::from_fn(|row| {
            let h = (hash ^ (hash >> 29)).wrapping_mul(Self::SEEDS[row]);
            row * width + ((h >> 32) as usize & self.mask)
        })
    }

    fn frequency(&self, key: &StatementKey) -> u8 {
        self.indices(key)
            .iter()
            .map(|&i| self.counters[i])
            .min()
            .unwrap_or(0)
    }

    fn increment(&mut self, key: &StatementKey) {
        let indices = self.indices(key);
        let least = indices.iter().map(|&i| self.counters[i]).min().unwrap_or(0);
        if least < Self::MAX {
            for i in indices {
                if self.counters[i] == least {
                    self.counters[i] += 1;
                }
            }
        }
        self.additions += 1;
        if self.additions >= self.sample {
            for counter in self.counters.iter_mut() {
                *counter /= 2;
            }
            self.additions /= 2;
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

    fn unnamed(q: &str) -> CachedStatement {
        CachedStatement::Unnamed(Arc::from(q))
    }

    /// A miss of `q`, as a statement's first use makes it: looked up, then offered.
    fn miss(cache: &StatementCache, q: &str) -> bool {
        assert!(cache.get(&key(q)).is_none(), "{q} is not cached");
        cache.offer(key(q), unnamed(q))
    }

    #[test]
    fn a_full_cache_admits_only_what_is_used_more_often_than_what_it_would_evict() {
        let cache = StatementCache::with_capacity(2);
        assert!(miss(&cache, "hot"), "room: kept");
        assert!(miss(&cache, "warm"));
        for _ in 0..3 {
            cache.get(&key("hot"));
            cache.get(&key("warm"));
        }
        // Full: a statement seen once does not push out one used four times.
        assert!(!miss(&cache, "tail"));
        assert!(!miss(&cache, "tail"), "twice is not enough either");
        let stats = cache.stats();
        assert_eq!((stats.rejections, stats.evictions, stats.len), (2, 0, 2));
        assert!(cache.get(&key("hot")).is_some() && cache.get(&key("warm")).is_some());
        // One that keeps coming back is admitted, as used once (its prepare threshold counts
        // the uses while cached), and evicts the least recently used.
        for _ in 0..4 {
            cache.get(&key("tail"));
        }
        assert!(miss(&cache, "tail"));
        assert_eq!(cache.get(&key("tail")).map(|(_, uses)| uses), Some(2));
        let stats = cache.stats();
        assert_eq!((stats.rejections, stats.evictions, stats.len), (2, 1, 2));
        assert!(
            cache.get(&key("hot")).is_none(),
            "hot was the least recently used"
        );
        assert!(cache.get(&key("tail")).is_some());
    }

    #[test]
    fn lookups_long_past_count_for_less() {
        let cache = StatementCache::with_capacity(8);
        for _ in 0..15 {
            cache.get(&key("once hot"));
        }
        let before = cache.lock().sketch.frequency(&key("once hot"));
        assert_eq!(before, 15);
        // Ten lookups per cached statement later, every count has halved at least once.
        let sample = cache.lock().sketch.sample;
        for k in 0..sample {
            cache.get(&key(&format!("other {}", k % 200)));
        }
        let after = cache.lock().sketch.frequency(&key("once hot"));
        assert!(
            after <= before / 2,
            "{after} after halving, {before} before"
        );
    }

    #[test]
    fn a_resized_cache_keeps_a_sketch_of_its_size_and_its_counts() {
        let cache = StatementCache::with_capacity(16);
        for _ in 0..5 {
            cache.get(&key("five"));
        }
        cache.get(&key("one"));
        let frequency = |q: &str| cache.lock().sketch.frequency(&key(q));
        let narrow = cache.lock().sketch.mask + 1;
        cache.resize(4_096);
        let wide = cache.lock().sketch.mask + 1;
        assert_eq!((narrow, wide), (64, 16_384));
        assert_eq!(cache.lock().sketch.sample, 40_960);
        assert_eq!((frequency("five"), frequency("one")), (5, 1), "widened");
        cache.resize(16);
        assert_eq!((frequency("five"), frequency("one")), (5, 1), "narrowed");
        assert_eq!(frequency("never"), 0);
    }
}
