//! 10,000 tenants x 10 tables behind one pool: 64 tasks over a `TenantPool` of 16
//! connections, each request drawing its tenant from a Zipf distribution (s = 1.0: tenant 0
//! is the hottest, about 10 % of the requests go to it, the top 100 get about half, the rest
//! is a long tail), checking out a connection for it and reading 2 rows by key, each from a
//! random one of the tenant's 10 tables. Every row is checked.
//!
//! Six contenders, each with its own connections, interleaved round by round (one operation =
//! a round of the 64 tasks x 4 requests x 2 gets = 512 statements, the same draws for every
//! contender in the same round):
//! - `one_tenant`: the same load, every request to one tenant (the pool's defaults);
//! - `zipf_tenants`: the 10,000 tenants, the pool's defaults: tenant affinity on, server
//!   memory budget on (`max_backend_memory` 128 MiB, read from the backends; the default
//!   schema bound of 1,000 only makes a connection that served 1,000 new schemas read its
//!   memory early);
//! - `zipf_tenants_spread_1`: the same, with `affinity_spread(Some(1))`: each tenant only on
//!   its first-choice connection, waiting for it while others are idle (as the hand-written
//!   placement below, but by rendezvous hashing);
//! - `zipf_tenants_no_budget`: the pool's defaults without a schema, memory, age or idle
//!   bound (affinity on, no spread);
//! - `zipf_tenants_no_affinity_no_budget`: the same, affinity off too;
//! - `hand_written_partitioned`: the ceiling, not a peer: 16 tokio-postgres connections,
//!   tenant `t` always on connection `t % 16`, every (tenant, table) statement prepared on its
//!   first use and kept (100,000 statements over the 16 backends, no bound).
//!
//! (Six pools of 16 stay under PostgreSQL's default `max_connections` of 100. A seventh, the
//! runtime through 16 one-connection pools with the hand-written placement, ran in earlier
//! sessions: with every statement cached it matched the hand-written contender, so the gap
//! between the pools and the ceiling is placement and cache misses, not the runtime's path.)
//!
//! Criterion through `common::interleaved` fits: a round takes tens of milliseconds, and
//! interleaving keeps the load of the shared machine the same for all of them.
//!
//! Besides statements/s, the bench prints the largest backend memory of each pool over the
//! whole run (`pg_backend_memory_contexts`, which shows only the backend that reads it): after
//! every 4th round of a contender, and once at the end, all 16 of its pool's connections are
//! checked out together (untimed) and each reads its own backend's total. It also counts the
//! connections each pool retired (the library's `retiring a pooled connection` debug
//! events, by reason). The sampling checkouts are untimed, so a retirement that happens at one
//! of them opens its replacement outside the measured rounds; sampling every 4th round keeps
//! that rare.
//!
//! ```sh
//! cargo bench -p tenant-runtime --bench zipf
//! ZIPF_TENANTS=1000 cargo bench -p tenant-runtime --bench zipf  # a smaller run
//! cargo bench -p tenant-runtime --bench zipf -- --measurement-time 60  # a longer run
//! BENCH_FRESH=1 ...                                             # rebuild the kept schemas
//! ZIPF_WARM_ALL=1 ...       # first read every table of every tenant (the steady state)
//! ZIPF_MAX_SCHEMAS=1000 ... # the defaults pool with another max_schemas_per_connection
//! ZIPF_CACHE=8192 ...       # every pool with another statement cache capacity
//! ZIPF_MAX_MEMORY_MIB=0 ... # the defaults pool with another max_backend_memory (0: none)
//! ZIPF_PROFILE=zipf_tenants ...      # no criterion: warm up that one contender, then run
//!                           # its rounds alone for ZIPF_PROFILE_SECS (default 20) and print
//!                           # statements/s, its caches and memory reads (for
//!                           # `perf record -a` beside it)
//! ```
//!
//! The 10,000 schemas (100,000 tables, 200,000 relations with their keys) are kept between
//! runs in the database `tenant_bench` (see `common::Tenants::kept`): made once (9 minutes on
//! this 2-core machine under load), reused while their shape is the same; a run then takes
//! about a minute. The default run is short (3 s of each contender's own time): the backends
//! without a budget grow with every tenant table they touch, so their largest memory keeps
//! rising with the length of the run, where the budgeted pool's stays bounded.

mod common;

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::Tenants;
use criterion::Throughput;
use futures_util::future::join_all;
use tenant_runtime::pool::{PooledDb, TenantPoolBuilder};
use tenant_runtime::{query_scalar, Db, Model, Tenant, TenantPool};

const TENANTS: usize = 10_000;
const TABLES: u64 = 10;
const ROWS: u64 = 5;
const TASKS: u64 = 64;
const REQUESTS_PER_TASK: u64 = 4;
const GETS_PER_REQUEST: u64 = 2;
const STATEMENTS_PER_ROUND: u64 = TASKS * REQUESTS_PER_TASK * GETS_PER_REQUEST;
const POOL_SIZE: usize = 16;
const ZIPF_S: f64 = 1.0;
/// Memory is sampled after every this many rounds of a contender.
const SAMPLE_EVERY: u64 = 4;
const CONTENDERS: [&str; 6] = [
    "one_tenant",
    "zipf_tenants",
    "zipf_tenants_spread_1",
    "zipf_tenants_no_budget",
    "zipf_tenants_no_affinity_no_budget",
    "hand_written_partitioned",
];
/// The hand-written contender's index in [`CONTENDERS`].
const HAND: usize = 5;

/// The best a hand-written service can do with the same 16 connections: tokio-postgres
/// clients, tenant `t` always on connection `t % 16` (perfect affinity, no hashing), every
/// (tenant, table) statement prepared on first use and kept for the whole run (no cache
/// bound, no budget). A request locks its tenant's connection for its 2 gets.
struct HandWritten {
    conns: Vec<tokio::sync::Mutex<HandConn>>,
    schemas: Vec<String>,
}

struct HandConn {
    pg: tokio_postgres::Client,
    statements: std::collections::HashMap<(usize, u64), tokio_postgres::Statement>,
}

impl HandWritten {
    async fn connect(url: &str, schemas: Vec<String>) -> HandWritten {
        let mut conns = Vec::with_capacity(POOL_SIZE);
        for _ in 0..POOL_SIZE {
            conns.push(tokio::sync::Mutex::new(HandConn {
                pg: common::raw_connect(url).await,
                statements: std::collections::HashMap::new(),
            }));
        }
        HandWritten { conns, schemas }
    }

    /// The statements prepared on each connection: the range over the connections.
    async fn prepared(&self) -> String {
        let mut counts = Vec::with_capacity(self.conns.len());
        for conn in &self.conns {
            counts.push(conn.lock().await.statements.len());
        }
        let (lo, hi) = (counts.iter().min(), counts.iter().max());
        format!("{}-{}", lo.unwrap_or(&0), hi.unwrap_or(&0))
    }

    /// One request: tenant `t`'s connection, then a checked get of row `id` of table `z<j>`
    /// for each `(j, id)`.
    async fn request(&self, t: usize, gets: &[(u64, i64)]) {
        let mut conn = self.conns[t % POOL_SIZE].lock().await;
        let HandConn { pg, statements } = &mut *conn;
        for &(j, id) in gets {
            let statement = match statements.get(&(t, j)) {
                Some(s) => s.clone(),
                None => {
                    let sql = format!(
                        "SELECT \"id\", \"n\", \"qty\" FROM \"{}\".\"z{j}\" WHERE \"id\" = $1",
                        self.schemas[t]
                    );
                    let s = pg.prepare(&sql).await.unwrap();
                    statements.insert((t, j), s.clone());
                    s
                }
            };
            let row = pg.query_one(&statement, &[&id]).await.unwrap();
            let got: (i64, i64, i32) = (row.get(0), row.get(1), row.get(2));
            assert_eq!(got, (id, id * j as i64, id as i32));
            black_box(row);
        }
    }

    /// The largest backend memory (bytes) among the 16 connections now.
    async fn largest_backend(&self) -> i64 {
        let mut largest = 0;
        for conn in &self.conns {
            let conn = conn.lock().await;
            let row = conn.pg.query_one(BACKEND_MEMORY_SQL, &[]).await.unwrap();
            largest = largest.max(row.get::<_, i64>(0));
        }
        largest
    }
}

/// The ten table models (same columns), and a checked get by key on any of them.
macro_rules! tables {
    ($($model:ident $table:tt $j:literal),*) => {
        $(
            #[derive(Debug, Model)]
            #[tenant(table = $table)]
            struct $model {
                #[tenant(primary_key)]
                id: i64,
                n: i64,
                qty: i32,
            }
        )*

        /// Reads row `id` of table `z<j>` of the handle's tenant and checks it.
        async fn get_checked(db: &PooledDb, j: u64, id: i64) {
            match j {
                $($j => {
                    let row = $model::get(db, id).await.unwrap().expect("the key's row");
                    assert_eq!((row.id, row.n, row.qty), (id, id * $j, id as i32));
                    black_box(row);
                })*
                _ => unreachable!("table z{j}"),
            }
        }
    };
}

tables!(Z0 "z0" 0, Z1 "z1" 1, Z2 "z2" 2, Z3 "z3" 3, Z4 "z4" 4,
        Z5 "z5" 5, Z6 "z6" 6, Z7 "z7" 7, Z8 "z8" 8, Z9 "z9" 9);

/// The ten tables of a tenant, `ROWS` rows each; no text column, so no TOAST tables.
fn ddl(schema: &str) -> String {
    (0..TABLES)
        .map(|j| {
            format!(
                "CREATE TABLE {schema}.\"z{j}\" (\"id\" BIGINT NOT NULL, \"n\" BIGINT NOT NULL, \
                 \"qty\" INTEGER NOT NULL, CONSTRAINT \"z{j}_pkey\" PRIMARY KEY (\"id\")); \
                 INSERT INTO {schema}.\"z{j}\" SELECT g, g * {j}, g FROM generate_series(1, {ROWS}) g;"
            )
        })
        .collect()
}

/// SplitMix64: a seeded generator, enough for drawing tenants, tables and keys.
fn next(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A Zipf distribution over `0..n` (rank `i` has weight `1 / (i + 1)^s`), drawn by inverting
/// its cumulative distribution.
struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    fn new(n: usize, s: f64) -> Zipf {
        let mut sum = 0.0;
        let mut cdf: Vec<f64> = (0..n)
            .map(|i| {
                sum += 1.0 / ((i + 1) as f64).powf(s);
                sum
            })
            .collect();
        for c in &mut cdf {
            *c /= sum;
        }
        Zipf { cdf }
    }

    fn sample(&self, state: &mut u64) -> usize {
        let u = (next(state) >> 11) as f64 / (1u64 << 53) as f64;
        self.cdf
            .partition_point(|&c| c <= u)
            .min(self.cdf.len() - 1)
    }
}

/// The gets of one request: `(table, key)` pairs.
type Gets = [(u64, i64); GETS_PER_REQUEST as usize];

/// One round: 64 tasks, each making 4 requests of a drawn tenant index (`draw % n`, so a
/// one-tenant load takes the same draws) with 2 gets each, served by `serve`.
async fn round(zipf: &Zipf, n: usize, k: u64, serve: impl AsyncFn(usize, Gets)) {
    let serve = &serve;
    join_all((0..TASKS).map(|task| async move {
        let mut rng = k.wrapping_mul(1_000_003).wrapping_add(task);
        for _ in 0..REQUESTS_PER_TASK {
            let t = zipf.sample(&mut rng) % n;
            let mut gets: Gets = [(0, 0); GETS_PER_REQUEST as usize];
            for get in &mut gets {
                let table = next(&mut rng) % TABLES;
                let id = 1 + (next(&mut rng) % ROWS) as i64;
                *get = (table, id);
            }
            serve(t, gets).await;
        }
    }))
    .await;
}

/// A request through a pool: a connection for `tenant`, then the checked gets.
async fn serve_pool(pool: &TenantPool, tenant: &Tenant, gets: &[(u64, i64)]) {
    let db = pool.get(tenant).await.unwrap();
    for &(table, id) in gets {
        get_checked(&db, table, id).await;
    }
}

/// What a backend's memory is read with (the hand-written contender's; the pool's own budget
/// reads the same view).
const BACKEND_MEMORY_SQL: &str =
    "SELECT coalesce(sum(total_bytes), 0)::int8 FROM pg_catalog.pg_backend_memory_contexts";

/// The largest memory (bytes) among the backends of `pool`'s connections now: all of them
/// checked out together, each reading its own `pg_backend_memory_contexts` through the
/// runtime ([`BACKEND_MEMORY_SQL`], written out: the macro takes a literal). Not through the
/// raw driver: a raw handout is reset at its next checkout, a round trip in a timed round.
async fn largest_backend(pool: &TenantPool, tenant: &Tenant) -> i64 {
    let conns = join_all((0..pool.status().max_size).map(|_| pool.client())).await;
    let mut largest = 0;
    for conn in conns {
        let conn = conn.expect("a connection to sample");
        let db = Db::new(&*conn, tenant);
        let bytes: i64 = query_scalar!(
            "SELECT coalesce(sum(total_bytes), 0)::int8 FROM pg_catalog.pg_backend_memory_contexts"
        )
        .fetch_one(&db)
        .await
        .expect("reading pg_backend_memory_contexts (superuser or pg_read_all_stats)");
        largest = largest.max(bytes);
    }
    largest
}

/// The statement caches of `pool`'s connections now (all checked out together).
async fn cache_stats(pool: &TenantPool) -> Vec<tenant_runtime::exec::CacheStats> {
    let conns = join_all((0..pool.status().max_size).map(|_| pool.client())).await;
    conns
        .iter()
        .map(|conn| {
            conn.as_ref()
                .expect("a connection")
                .statement_cache()
                .stats()
        })
        .collect()
}

/// Hits, misses and prepares summed over `stats`.
fn cache_totals(stats: &[tenant_runtime::exec::CacheStats]) -> [u64; 3] {
    stats.iter().fold([0; 3], |[h, m, p], s| {
        [h + s.hits, m + s.misses, p + s.prepares]
    })
}

/// `stats` for the table: the range of the caches' bounds and of the statements they hold,
/// the hit rate over the whole run, and over the timed rounds (`totals` minus `before`, the
/// totals when they started; a connection retired meanwhile takes its counts with it).
fn caches(stats: &[tenant_runtime::exec::CacheStats], before: [u64; 3]) -> String {
    let range = |f: fn(&tenant_runtime::exec::CacheStats) -> usize| {
        let lo = stats.iter().map(f).min().unwrap_or(0);
        let hi = stats.iter().map(f).max().unwrap_or(0);
        if lo == hi {
            format!("{lo}")
        } else {
            format!("{lo}-{hi}")
        }
    };
    let [hits, misses, prepares] = cache_totals(stats);
    let rate = |h: u64, m: u64| 100.0 * h as f64 / (h + m).max(1) as f64;
    let (timed_hits, timed_misses) = (
        hits.saturating_sub(before[0]),
        misses.saturating_sub(before[1]),
    );
    format!(
        "{} / {} ({} prepared), {:.1} % / {:.1} % hits, {} prepares timed",
        range(|s| s.capacity),
        range(|s| s.len),
        range(|s| s.prepared),
        rate(hits, misses),
        rate(timed_hits, timed_misses),
        prepares.saturating_sub(before[2]),
    )
}

/// Every contender's connections and load.
struct Contenders<'a> {
    /// The pools' contenders' pools (all but the hand-written), and the tenants each draws from.
    pools: [TenantPool; 5],
    loads: [&'a [Tenant]; 5],
    hand: HandWritten,
    tenants: &'a [Tenant],
}

impl Contenders<'_> {
    /// How many tenants contender `c` draws from.
    fn tenant_count(&self, c: usize) -> usize {
        match c {
            HAND => self.tenants.len(),
            _ => self.loads[c].len(),
        }
    }

    /// One request of contender `c` for its tenant `t`.
    async fn serve(&self, c: usize, t: usize, gets: &[(u64, i64)]) {
        match c {
            HAND => self.hand.request(t, gets).await,
            _ => serve_pool(&self.pools[c], &self.loads[c][t], gets).await,
        }
    }

    /// One round of contender `c`.
    async fn round(&self, c: usize, zipf: &Zipf, k: u64) {
        round(zipf, self.tenant_count(c), k, async |t, gets| {
            self.serve(c, t, &gets).await
        })
        .await;
    }

    /// Contender `c`'s statement caches now, over its connections (none for the
    /// hand-written contender, whose connections hold every statement they prepared).
    async fn cache_stats(&self, c: usize) -> Vec<tenant_runtime::exec::CacheStats> {
        match c {
            HAND => Vec::new(),
            _ => cache_stats(&self.pools[c]).await,
        }
    }

    /// Contender `c`'s statement caches for the table (see [`caches`]).
    async fn caches(&self, c: usize, before: [u64; 3]) -> String {
        match c {
            HAND => format!("none / {}", self.hand.prepared().await),
            _ => caches(&self.cache_stats(c).await, before),
        }
    }

    /// The largest backend memory (bytes) among contender `c`'s connections now.
    async fn largest_backend(&self, c: usize) -> i64 {
        match c {
            HAND => self.hand.largest_backend().await,
            _ => largest_backend(&self.pools[c], &self.tenants[0]).await,
        }
    }
}

/// The contender whose round (or sampling) runs now, for [`RetireCounter`].
static CURRENT: AtomicUsize = AtomicUsize::new(0);
/// Retirements per contender, by reason: schemas served, backend memory, age.
static RETIRED: [[AtomicU64; 3]; CONTENDERS.len()] =
    [const { [const { AtomicU64::new(0) }; 3] }; CONTENDERS.len()];

/// Memory reads of each contender's pool inside its timed rounds: how many, and their
/// microseconds in total.
static MEMORY_READS: [[AtomicU64; 2]; CONTENDERS.len()] =
    [const { [const { AtomicU64::new(0) }; 2] }; CONTENDERS.len()];
/// Whether a timed round runs now.
static TIMED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// A tracing subscriber that only counts the pool's `retiring a pooled connection` events.
struct RetireCounter;

#[derive(Default)]
struct Fields {
    message: String,
    reason: String,
    micros: u64,
}

impl tracing::field::Visit for Fields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "message" => self.message = format!("{value:?}"),
            "reason" => self.reason = format!("{value:?}"),
            _ => {}
        }
    }
    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        if field.name() == "micros" {
            self.micros = value;
        }
    }
}

impl tracing::Subscriber for RetireCounter {
    fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
        metadata.is_event()
            && *metadata.level() <= tracing::Level::DEBUG
            && metadata.target().starts_with("tenant_runtime")
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        if fields.message == "read a pooled connection's backend memory" {
            if !TIMED.load(Ordering::Relaxed) {
                return;
            }
            let c = CURRENT.load(Ordering::Relaxed);
            MEMORY_READS[c][0].fetch_add(1, Ordering::Relaxed);
            MEMORY_READS[c][1].fetch_add(fields.micros, Ordering::Relaxed);
            return;
        }
        if fields.message != "retiring a pooled connection" {
            return;
        }
        let why = if fields.reason.contains("max_schemas_per_connection") {
            0
        } else if fields.reason.contains("max_backend_memory") {
            1
        } else {
            2
        };
        RETIRED[CURRENT.load(Ordering::Relaxed)][why].fetch_add(1, Ordering::Relaxed);
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

fn mib(bytes: i64) -> f64 {
    bytes as f64 / 1_048_576.0
}

fn main() {
    tracing::subscriber::set_global_default(RetireCounter).expect("the retirement counter");
    let n: usize = std::env::var("ZIPF_TENANTS")
        .ok()
        .map(|v| v.trim().parse().expect("ZIPF_TENANTS: a number"))
        .unwrap_or(TENANTS);
    let rt = common::runtime();
    let mut c = common::criterion(Duration::from_secs(3), 20);
    let all = rt.block_on(Tenants::kept("zipf", n, 40, ddl));
    let tenants = all.all();
    let one = &tenants[..1];
    let zipf = Zipf::new(n, ZIPF_S);
    let url = common::bench_database_url();
    // ZIPF_CACHE=N: every pool's statement cache capacity, fixed (default: 512 per
    // connection, which follows the backend's memory in the pools that read it).
    let cache: Option<usize> = std::env::var("ZIPF_CACHE")
        .ok()
        .map(|v| v.trim().parse().expect("ZIPF_CACHE: a number"));
    let defaults = || {
        let builder = TenantPool::builder(&url)
            .unwrap()
            .max_size(POOL_SIZE)
            .wait_timeout(Some(Duration::from_secs(60)));
        match cache {
            Some(capacity) => builder.statement_cache_capacity(capacity),
            None => builder,
        }
    };
    // ZIPF_MAX_SCHEMAS=N: the defaults pool with a hard schema bound (default: the default
    // bound, which yields to the memory budget the pool can read).
    let max_schemas: Option<usize> = std::env::var("ZIPF_MAX_SCHEMAS")
        .ok()
        .map(|v| v.trim().parse().expect("ZIPF_MAX_SCHEMAS: a number"));
    // ZIPF_MAX_MEMORY_MIB=N: the defaults pool with another backend memory budget (0: none).
    let max_memory = match std::env::var("ZIPF_MAX_MEMORY_MIB") {
        Ok(v) => match v
            .trim()
            .parse::<u64>()
            .expect("ZIPF_MAX_MEMORY_MIB: a number")
        {
            0 => None,
            mib => Some(mib << 20),
        },
        Err(_) => Some(TenantPoolBuilder::DEFAULT_MAX_BACKEND_MEMORY),
    };
    let zipf_defaults = || match max_schemas {
        Some(max) => defaults().max_schemas_per_connection(Some(max)),
        None => defaults(),
    };
    let pools = [
        defaults().build().unwrap(),
        zipf_defaults()
            .max_backend_memory(max_memory)
            .build()
            .unwrap(),
        zipf_defaults()
            .affinity_spread(Some(1))
            .max_backend_memory(max_memory)
            .build()
            .unwrap(),
        defaults()
            .max_schemas_per_connection(None)
            .max_backend_memory(None)
            .max_lifetime(None)
            .idle_timeout(None)
            .build()
            .unwrap(),
        defaults()
            .affinity(false)
            .max_schemas_per_connection(None)
            .max_backend_memory(None)
            .max_lifetime(None)
            .idle_timeout(None)
            .build()
            .unwrap(),
    ];
    let loads: [&[Tenant]; 5] = [one, &tenants, &tenants, &tenants, &tenants];
    let hand = rt.block_on(HandWritten::connect(&url, all.schemas.clone()));
    let contenders = Contenders {
        pools,
        loads,
        hand,
        tenants: &tenants,
    };
    let mut largest = [0i64; CONTENDERS.len()];
    let mut samples = [0u32; CONTENDERS.len()];

    // ZIPF_PROFILE=<contender>: only that contender, warmed up, then its rounds alone.
    let profile: Option<usize> = std::env::var("ZIPF_PROFILE").ok().map(|name| {
        CONTENDERS
            .iter()
            .position(|c| *c == name.trim())
            .unwrap_or_else(|| panic!("ZIPF_PROFILE: one of {CONTENDERS:?}"))
    });
    let warmed: Vec<usize> = match profile {
        Some(c) => vec![c],
        None => (0..CONTENDERS.len()).collect(),
    };

    // Warm-up (untimed): every contender opens its 16 connections and serves 20 rounds.
    let started = Instant::now();
    rt.block_on(async {
        for k in 0..20 {
            for &c in &warmed {
                CURRENT.store(c, Ordering::Relaxed);
                contenders.round(c, &zipf, k).await;
            }
        }
    });
    println!(
        "warm-up: 20 rounds of each contender in {:.1?}",
        started.elapsed()
    );
    // ZIPF_WARM_ALL=1: the steady state of a service that has served every tenant before:
    // each many-tenant contender first reads every table of every tenant as many times as the
    // prepare threshold (so each statement its connection's cache holds is prepared; 8
    // requests at a time, so that idle connections let affinity place each tenant).
    let reads = tenant_runtime::exec::StatementCache::DEFAULT_PREPARE_THRESHOLD.max(1);
    if std::env::var_os("ZIPF_WARM_ALL").is_some() {
        let started = Instant::now();
        let gets: Vec<(u64, i64)> = (0..TABLES)
            .flat_map(|j| std::iter::repeat_n((j, 1), reads as usize))
            .collect();
        rt.block_on(async {
            use futures_util::StreamExt as _;
            for &c in warmed.iter().filter(|&&c| c != 0) {
                CURRENT.store(c, Ordering::Relaxed);
                let (contenders, gets) = (&contenders, &gets);
                futures_util::stream::iter(0..tenants.len())
                    .for_each_concurrent(8, |t| async move { contenders.serve(c, t, gets).await })
                    .await;
            }
        });
        println!(
            "warm-up: every table of the {n} tenants read {reads} times through each many-tenant contender in {:.1?}",
            started.elapsed()
        );
    }

    let before: Vec<[u64; 3]> = rt.block_on(async {
        let mut all = Vec::new();
        for c in 0..CONTENDERS.len() {
            all.push(cache_totals(&contenders.cache_stats(c).await));
        }
        all
    });
    if let Some(c) = profile {
        let secs: u64 = std::env::var("ZIPF_PROFILE_SECS")
            .ok()
            .map(|v| v.trim().parse().expect("ZIPF_PROFILE_SECS: a number"))
            .unwrap_or(20);
        CURRENT.store(c, Ordering::Relaxed);
        let (started, mut rounds) = (Instant::now(), 0u64);
        let cpu_before = cpu_ticks();
        TIMED.store(true, Ordering::Relaxed);
        rt.block_on(async {
            while started.elapsed() < Duration::from_secs(secs) {
                contenders.round(c, &zipf, 1_000 + rounds).await;
                rounds += 1;
            }
        });
        TIMED.store(false, Ordering::Relaxed);
        let spent = started.elapsed();
        if let (Some([own_before, busy_before]), Some([own, busy])) = (cpu_before, cpu_ticks()) {
            let statements = (rounds * STATEMENTS_PER_ROUND) as f64;
            println!(
                "CPU per statement: {:.1} us in this process, {:.1} us on the whole machine",
                (own - own_before) as f64 * 1e4 / statements,
                (busy - busy_before) as f64 * 1e4 / statements,
            );
        }
        println!(
            "{}: {rounds} rounds in {spent:.1?}, {:.0} statements/s; caches: {}",
            CONTENDERS[c],
            (rounds * STATEMENTS_PER_ROUND) as f64 / spent.as_secs_f64(),
            rt.block_on(contenders.caches(c, before[c])),
        );
        let [reads, micros] = MEMORY_READS[c]
            .each_ref()
            .map(|a| a.load(Ordering::Relaxed));
        println!(
            "{reads} memory reads, {:.1} ms in all; largest backend now {:.1} MiB",
            micros as f64 / 1e3,
            mib(rt.block_on(contenders.largest_backend(c)))
        );
        return;
    }
    let group = format!("zipf_{n}_tenants_64_tasks_16_connections");
    common::interleaved(
        &mut c,
        &group,
        |g| {
            g.throughput(Throughput::Elements(STATEMENTS_PER_ROUND));
        },
        &rt,
        &CONTENDERS,
        async |contender, k| {
            CURRENT.store(contender, Ordering::Relaxed);
            TIMED.store(true, Ordering::Relaxed);
            let start = Instant::now();
            contenders.round(contender, &zipf, 1_000 + k).await;
            let spent = start.elapsed();
            TIMED.store(false, Ordering::Relaxed);
            if k % SAMPLE_EVERY == 0 {
                let bytes = contenders.largest_backend(contender).await;
                largest[contender] = largest[contender].max(bytes);
                samples[contender] += 1;
            }
            spent
        },
    );
    rt.block_on(async {
        for c in 0..CONTENDERS.len() {
            CURRENT.store(c, Ordering::Relaxed);
            largest[c] = largest[c].max(contenders.largest_backend(c).await);
            samples[c] += 1;
        }
    });
    c.final_summary();
    common::print_ratios(&[
        (
            group.as_str(),
            "zipf_tenants",
            "one_tenant",
            STATEMENTS_PER_ROUND,
            Some(0.8),
        ),
        (
            group.as_str(),
            "zipf_tenants_no_budget",
            "one_tenant",
            STATEMENTS_PER_ROUND,
            None,
        ),
        (
            group.as_str(),
            "zipf_tenants_no_affinity_no_budget",
            "one_tenant",
            STATEMENTS_PER_ROUND,
            None,
        ),
        (
            group.as_str(),
            "hand_written_partitioned",
            "one_tenant",
            STATEMENTS_PER_ROUND,
            None,
        ),
        (
            group.as_str(),
            "zipf_tenants",
            "zipf_tenants_no_affinity_no_budget",
            STATEMENTS_PER_ROUND,
            None,
        ),
        (
            group.as_str(),
            "zipf_tenants",
            "hand_written_partitioned",
            STATEMENTS_PER_ROUND,
            None,
        ),
        (
            group.as_str(),
            "zipf_tenants_spread_1",
            "one_tenant",
            STATEMENTS_PER_ROUND,
            None,
        ),
        (
            group.as_str(),
            "zipf_tenants_spread_1",
            "zipf_tenants",
            STATEMENTS_PER_ROUND,
            None,
        ),
    ]);
    println!();
    println!(
        "| pool ({n} tenants) | largest backend over the run | budget | samples | retired (schemas / memory / age) | statement caches at the end (bound / held, hits over the whole run / the timed rounds) |"
    );
    println!("|---|---|---|---|---|---|");
    let one_budget = format!(
        "{:.0} MiB",
        mib(TenantPoolBuilder::DEFAULT_MAX_BACKEND_MEMORY as i64)
    );
    let zipf_budget = match (max_memory, max_schemas) {
        (Some(bytes), None) => format!("{:.0} MiB", mib(bytes as i64)),
        (Some(bytes), Some(max)) => format!("{:.0} MiB, {max} schemas", mib(bytes as i64)),
        (None, Some(max)) => format!("{max} schemas"),
        (None, None) => "1000 schemas (memory not read)".to_owned(),
    };
    let budgets: [&str; CONTENDERS.len()] = [
        one_budget.as_str(),
        zipf_budget.as_str(),
        zipf_budget.as_str(),
        "none",
        "none",
        "none (every statement kept)",
    ];
    for (i, name) in CONTENDERS.iter().enumerate() {
        let retired: Vec<u64> = RETIRED[i]
            .iter()
            .map(|r| r.load(Ordering::Relaxed))
            .collect();
        let caches = rt.block_on(contenders.caches(i, before[i]));
        println!(
            "| {name} | {:.1} MiB | {} | {} | {} ({} / {} / {}) | {caches} |",
            mib(largest[i]),
            budgets[i],
            samples[i],
            retired.iter().sum::<u64>(),
            retired[0],
            retired[1],
            retired[2],
        );
    }
    for (name, reads) in CONTENDERS.iter().zip(&MEMORY_READS) {
        let (count, micros) = (
            reads[0].load(Ordering::Relaxed),
            reads[1].load(Ordering::Relaxed),
        );
        if count > 0 {
            println!(
                "{name}: {count} memory reads in its timed rounds, {:.1} ms in all ({:.2} ms each)",
                micros as f64 / 1e3,
                micros as f64 / 1e3 / count as f64
            );
        }
    }
    for (name, pool) in CONTENDERS.iter().zip(&contenders.pools) {
        println!("{name}: {:?}", pool.status());
    }
}

/// CPU time so far, in clock ticks (1/100 s on Linux): this process's (user + system), and
/// the whole machine's busy time (every CPU, all but idle and iowait); `None` off Linux.
fn cpu_ticks() -> Option<[u64; 2]> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // After the command name in parentheses: fields 3.., of which utime and stime are 14, 15.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let own = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    let machine = std::fs::read_to_string("/proc/stat").ok()?;
    let cpu: Vec<u64> = machine
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let busy = cpu.iter().sum::<u64>() - cpu.get(3)? - cpu.get(4)?;
    Some([own, busy])
}
