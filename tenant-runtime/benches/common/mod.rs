//! Shared by the benches: the database, tenant schemas, the benchmarked model, the
//! hand-written baseline's decoding, and the ratio printout.
//!
//! Every bench runs on a current-thread tokio runtime (the connection task and the bench
//! loop share one thread, as in a request handler) against `$DATABASE_URL`, else
//! `postgres://postgres@127.0.0.1:5432/postgres`. Schemas are named `bench_<pid>_<name>_<n>`
//! and dropped at the end, except the big sets of [`Tenants::kept`] (churn, zipf), which stay
//! in a database of their own (`tenant_bench`) for the next run.
#![allow(dead_code)] // each bench uses part of this module

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion};
use tenant_runtime::{Allowlist, Client, Model, Tenant};
use tokio::runtime::Runtime;
use tokio_postgres::Row;

pub fn database_url() -> String {
    std::env::var("DATABASE_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

pub fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// A connection of the runtime, with the default statement cache (512).
pub async fn client() -> Client {
    Client::connect(&database_url())
        .await
        .expect("connecting to PostgreSQL (set DATABASE_URL)")
}

/// A connection of the runtime to the kept bench database ([`bench_database_url`]), with
/// the default statement cache (512).
pub async fn bench_client() -> Client {
    Client::new(raw_connect(&bench_database_url()).await)
}

/// Criterion settings for a bench whose iterations take about `per_iter`.
pub fn criterion(measurement: Duration, samples: usize) -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(measurement)
        .sample_size(samples)
        .configure_from_args()
}

/// The benchmarked model: an invoice row as in the README.
#[derive(Debug, Clone, PartialEq, Model)]
#[tenant(table = "invoices")]
pub struct Invoice {
    #[tenant(primary_key, identity)]
    pub id: i64,
    pub customer_id: i64,
    pub amount_cents: i64,
    pub paid: bool,
    pub note: Option<String>,
}

/// The hand-written decoding the baseline uses.
pub fn invoice_from_row(row: &Row) -> Invoice {
    Invoice {
        id: row.get(0),
        customer_id: row.get(1),
        amount_cents: row.get(2),
        paid: row.get(3),
        note: row.get(4),
    }
}

pub fn invoices(n: usize) -> Vec<Invoice> {
    (0..n)
        .map(|i| Invoice {
            id: 0,
            customer_id: (i % 1000) as i64,
            amount_cents: (i * 37 % 100_000) as i64,
            paid: i % 3 == 0,
            note: (i % 2 == 0).then(|| format!("invoice number {i}")),
        })
        .collect()
}

/// `INSERT ... SELECT` that fills `schema.invoices` with `rows` rows server-side.
pub fn fill_invoices_sql(schema: &str, rows: i64) -> String {
    format!(
        "INSERT INTO \"{schema}\".\"invoices\" (customer_id, amount_cents, paid, note) \
         SELECT g % 1000, g * 37 % 100000, g % 3 = 0, \
                CASE WHEN g % 2 = 0 THEN 'invoice number ' || g END \
         FROM generate_series(1, {rows}) g"
    )
}

/// `n` tenant schemas for one bench, each with the tables `ddl` creates (given the quoted
/// schema), made in batches; dropped by [`Tenants::drop_all`].
pub struct Tenants {
    pub allowlist: Allowlist,
    pub schemas: Vec<String>,
}

impl Tenants {
    pub async fn create(
        pg: &tokio_postgres::Client,
        name: &str,
        n: usize,
        ddl: impl Fn(&str) -> String,
    ) -> Tenants {
        let prefix = format!("bench_{}_{name}", std::process::id());
        let schemas: Vec<String> = (0..n).map(|i| format!("{prefix}_{i}")).collect();
        // Leftovers of an interrupted run with the same pid are unlikely, but harmless.
        for batch in schemas.chunks(100) {
            let mut sql = String::new();
            for s in batch {
                sql.push_str(&format!(
                    "DROP SCHEMA IF EXISTS \"{s}\" CASCADE; CREATE SCHEMA \"{s}\"; {};",
                    ddl(&format!("\"{s}\""))
                ));
            }
            pg.batch_execute(&sql)
                .await
                .expect("creating bench schemas");
        }
        let allowlist = Allowlist::from_pairs(
            schemas
                .iter()
                .enumerate()
                .map(|(i, s)| (format!("t{i}"), s.clone())),
        )
        .expect("allowlist");
        Tenants { allowlist, schemas }
    }

    /// `n` tenant schemas `bench_<name>_<i>` in the kept bench database
    /// ([`bench_database_url`]), each with the tables `ddl` creates (given the quoted
    /// schema), reused from an earlier run when its table `bench_sets` says a set of that name
    /// is complete with at least `n` schemas of the same shape (the DDL text), grown when it
    /// has fewer, rebuilt when the shape differs or `BENCH_FRESH=1`. Made
    /// `schemas_per_batch` schemas per transaction (a batch must stay within the server's
    /// lock table: about 500 tables), over a few connections in parallel. Never dropped.
    ///
    /// The benches that use it must not change the rows (their updates and deletes find
    /// nothing), so a kept set is the same for every run.
    pub async fn kept(
        name: &str,
        n: usize,
        schemas_per_batch: usize,
        ddl: impl Fn(&str) -> String,
    ) -> Tenants {
        let pg = ensure_bench_database().await;
        let prefix = format!("bench_{name}");
        let shape = ddl("\"<schema>\"");
        // One process builds a set at a time; the lock ends with the session.
        pg.execute("SELECT pg_advisory_lock(hashtext($1))", &[&prefix])
            .await
            .expect("the set's advisory lock");
        let fresh = std::env::var("BENCH_FRESH").is_ok_and(|v| v == "1");
        let row = pg
            .query_opt(
                "SELECT tenants, shape FROM public.bench_sets WHERE name = $1",
                &[&name],
            )
            .await
            .expect("reading bench_sets");
        let complete = match row {
            Some(row) if !fresh && row.get::<_, String>(1) == shape => {
                row.get::<_, i32>(0) as usize
            }
            _ => 0,
        };
        let started = std::time::Instant::now();
        if complete == 0 {
            // Rebuild: drop whatever a changed shape, a fresh run or a crash left.
            pg.execute("DELETE FROM public.bench_sets WHERE name = $1", &[&name])
                .await
                .expect("clearing the set's marker");
            let old: Vec<String> = pg
                .query(
                    "SELECT nspname::text FROM pg_catalog.pg_namespace \
                     WHERE starts_with(nspname, $1)",
                    &[&format!("{prefix}_")],
                )
                .await
                .expect("listing old schemas")
                .iter()
                .map(|r| r.get(0))
                .collect();
            if !old.is_empty() {
                let drops = old
                    .chunks(schemas_per_batch)
                    .map(|batch| {
                        batch
                            .iter()
                            .map(|s| format!("DROP SCHEMA IF EXISTS \"{s}\" CASCADE;"))
                            .collect()
                    })
                    .collect();
                run_batches(&format!("dropping {} old {name} schemas", old.len()), drops).await;
            }
        }
        let schemas: Vec<String> = (0..n).map(|i| format!("{prefix}_{i}")).collect();
        if complete < n {
            let batches = schemas[complete..]
                .chunks(schemas_per_batch)
                .map(|batch| {
                    let mut sql = String::new();
                    for s in batch {
                        sql.push_str(&format!(
                            "DROP SCHEMA IF EXISTS \"{s}\" CASCADE; CREATE SCHEMA \"{s}\"; {};",
                            ddl(&format!("\"{s}\""))
                        ));
                    }
                    sql
                })
                .collect();
            run_batches(
                &format!("creating {name} schemas {complete}..{n} in {BENCH_DATABASE}"),
                batches,
            )
            .await;
            pg.execute(
                "INSERT INTO public.bench_sets (name, tenants, shape) VALUES ($1, $2, $3) \
                 ON CONFLICT (name) DO UPDATE SET tenants = EXCLUDED.tenants, shape = EXCLUDED.shape",
                &[&name, &(n as i32), &shape],
            )
            .await
            .expect("marking the set complete");
            println!(
                "made {} {name} tenant schemas in {:.1?} (kept in {BENCH_DATABASE} for the next run)",
                n - complete,
                started.elapsed()
            );
        } else {
            println!("reusing {n} of the {complete} {name} tenant schemas kept in {BENCH_DATABASE} (BENCH_FRESH=1 rebuilds)");
        }
        let allowlist = Allowlist::from_pairs(
            schemas
                .iter()
                .enumerate()
                .map(|(i, s)| (format!("t{i}"), s.clone())),
        )
        .expect("allowlist");
        Tenants { allowlist, schemas }
    }

    pub fn tenant(&self, i: usize) -> Tenant {
        self.allowlist.resolve(&format!("t{i}")).expect("tenant")
    }

    pub fn all(&self) -> Vec<Tenant> {
        (0..self.schemas.len()).map(|i| self.tenant(i)).collect()
    }

    pub async fn drop_all(self, pg: &tokio_postgres::Client) {
        for batch in self.schemas.chunks(100) {
            let sql: String = batch
                .iter()
                .map(|s| format!("DROP SCHEMA IF EXISTS \"{s}\" CASCADE;"))
                .collect();
            pg.batch_execute(&sql)
                .await
                .expect("dropping bench schemas");
        }
    }
}

/// The database that keeps the big tenant sets between runs: `$BENCH_DATABASE_URL`, else
/// [`database_url`] with the database `tenant_bench` (made by [`Tenants::kept`] if missing),
/// so that the tests' database never holds the bench tables.
pub fn bench_database_url() -> String {
    if let Some(url) = std::env::var("BENCH_DATABASE_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
    {
        return url;
    }
    let url = database_url();
    let Some(rest) = url
        .strip_prefix("postgres://")
        .or_else(|| url.strip_prefix("postgresql://"))
    else {
        // The `key=value` form: a later `dbname` wins.
        return format!("{url} dbname={BENCH_DATABASE}");
    };
    let scheme = &url[..url.len() - rest.len()];
    let (rest, params) = match rest.split_once('?') {
        Some((rest, params)) => (rest, format!("?{params}")),
        None => (rest, String::new()),
    };
    let host = rest.split_once('/').map_or(rest, |(host, _)| host);
    format!("{scheme}{host}/{BENCH_DATABASE}{params}")
}

/// The kept bench database's name (see [`bench_database_url`]).
pub const BENCH_DATABASE: &str = "tenant_bench";

/// A raw connection to `url`, its connection driven on a task of the current runtime.
pub async fn raw_connect(url: &str) -> tokio_postgres::Client {
    let (pg, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("connecting to {url}: {e} (set DATABASE_URL)"));
    tokio::spawn(conn);
    pg
}

/// Makes the kept bench database if it is missing, with its table of complete sets.
async fn ensure_bench_database() -> tokio_postgres::Client {
    let admin = raw_connect(&database_url()).await;
    let exists = admin
        .query_opt(
            "SELECT 1 FROM pg_catalog.pg_database WHERE datname = $1",
            &[&BENCH_DATABASE],
        )
        .await
        .expect("looking up the bench database");
    if exists.is_none() && std::env::var_os("BENCH_DATABASE_URL").is_none() {
        // Two benches starting at once may both try: the loser's error is harmless.
        let _ = admin
            .batch_execute(&format!("CREATE DATABASE \"{BENCH_DATABASE}\""))
            .await;
        println!("created the bench database {BENCH_DATABASE}");
    }
    let pg = raw_connect(&bench_database_url()).await;
    pg.batch_execute(
        "SET client_min_messages = warning; \
         CREATE TABLE IF NOT EXISTS public.bench_sets (name TEXT PRIMARY KEY, \
         tenants INTEGER NOT NULL, shape TEXT NOT NULL)",
    )
    .await
    .expect("the bench database's table of complete sets");
    pg
}

/// Connections that create a kept set's schemas side by side (the server does the work).
const SETUP_CONNECTIONS: usize = 3;

/// Runs each of `batches` (SQL strings) on one of [`SETUP_CONNECTIONS`] connections to the
/// bench database, as their connections come free, printing progress.
async fn run_batches(what: &str, batches: Vec<String>) {
    let url = bench_database_url();
    let total = batches.len();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let started = std::time::Instant::now();
    let workers = (0..SETUP_CONNECTIONS).map(|_| async {
        let pg = raw_connect(&url).await;
        // One transaction per batch; losing the last ones to a crash only means a rebuild.
        pg.batch_execute("SET synchronous_commit = off; SET client_min_messages = warning")
            .await
            .expect("setup session");
        loop {
            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let Some(sql) = batches.get(i) else { break };
            pg.batch_execute(sql)
                .await
                .unwrap_or_else(|e| panic!("{what}: batch {i} of {total}: {e}"));
            if (i + 1) % 20 == 0 || i + 1 == total {
                println!(
                    "  {what}: {} of {total} batches in {:.0?}",
                    i + 1,
                    started.elapsed()
                );
            }
        }
    });
    futures_util::future::join_all(workers).await;
}

/// Where criterion writes its estimates: `$CRITERION_HOME`, else `<target>/criterion`.
fn criterion_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return home.into();
    }
    if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(target).join("criterion");
    }
    // The bench runs as <target>/<profile>/deps/<name>-<hash>.
    let exe = std::env::current_exe().expect("current exe");
    exe.ancestors()
        .nth(3)
        .map(|target| target.join("criterion"))
        .unwrap_or_else(|| PathBuf::from("target/criterion"))
}

/// Time per iteration, in nanoseconds, of `group/function` in the last run: criterion's
/// slope estimate (linear sampling) or its mean (flat sampling).
fn estimate_ns(group: &str, function: &str) -> Option<f64> {
    let path = criterion_dir()
        .join(group)
        .join(function)
        .join("new/estimates.json");
    let text = std::fs::read_to_string(path).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    json["slope"]["point_estimate"]
        .as_f64()
        .or_else(|| json["mean"]["point_estimate"].as_f64())
}

/// Total time and operation count of each contender, over every interleaved operation.
static PAIRED: Mutex<Vec<(String, String, Duration, u64)>> = Mutex::new(Vec::new());

/// Benchmarks `contenders` (names; `step(i, k)` runs contender `i`'s `k`-th operation and
/// returns the time it took, leaving untimed setup out) as one criterion function each.
///
/// The machine is shared with other builds, so load swings by several times within seconds.
/// Each function therefore runs the contenders *interleaved*, one operation each in a
/// shuffled order, and reports only its own contender's time to criterion; every operation
/// of every contender is also added to a paired total. Both see the same load at the same
/// moments, so the ratio of the paired totals (printed by [`print_ratios`]) is robust to the
/// load, while criterion's per-function estimates also carry the load of their own window.
///
/// `configure` sets the group's throughput, sampling mode and so on.
pub fn interleaved(
    c: &mut Criterion,
    group: &str,
    configure: impl FnOnce(&mut BenchmarkGroup<'_, WallTime>),
    rt: &Runtime,
    contenders: &[&str],
    mut step: impl AsyncFnMut(usize, u64) -> Duration,
) {
    let mut g = c.benchmark_group(group);
    configure(&mut g);
    let n = contenders.len();
    let mut totals = vec![(Duration::ZERO, 0u64); n];
    let mut k = 0u64;
    for (me, name) in contenders.iter().enumerate() {
        g.bench_function(*name, |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let mut mine = Duration::ZERO;
                    for _ in 0..iters {
                        for c in shuffled(n, k) {
                            let spent = step(c, k).await;
                            totals[c].0 += spent;
                            totals[c].1 += 1;
                            if c == me {
                                mine += spent;
                            }
                        }
                        k += 1;
                    }
                    mine
                })
            })
        });
    }
    g.finish();
    let mut paired = PAIRED.lock().unwrap();
    for (name, (total, count)) in contenders.iter().zip(totals) {
        paired.push((group.to_owned(), name.to_string(), total, count));
    }
}

/// `0..n` in an order that changes with `k` (a xorshift-driven Fisher–Yates shuffle), so that
/// no contender always runs right after the same other one (e.g. after one whose statement
/// closes are still being processed by the server).
fn shuffled(n: usize, k: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    let mut x = k.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for i in (1..n).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        order.swap(i, (x % (i as u64 + 1)) as usize);
    }
    order
}

fn human(ns: f64) -> String {
    match ns {
        n if n >= 1e9 => format!("{:.3} s", n / 1e9),
        n if n >= 1e6 => format!("{:.2} ms", n / 1e6),
        n if n >= 1e3 => format!("{:.1} µs", n / 1e3),
        n => format!("{n:.0} ns"),
    }
}

fn paired_ns(group: &str, name: &str) -> Option<(f64, u64)> {
    PAIRED
        .lock()
        .unwrap()
        .iter()
        .find(|(g, n, _, count)| g == group && n == name && *count > 0)
        .map(|(_, _, total, count)| (total.as_nanos() as f64 / *count as f64, *count))
}

/// Prints, for each `(group, ours, baseline, elements per operation, target)`, markdown table
/// rows: the time per operation of each from the interleaved paired totals, the throughput
/// ratio ours / baseline (= baseline time / our time) from them, and the same ratio from
/// criterion's own estimates of the two functions. `target` is the minimum ratio, if any.
pub fn print_ratios(pairs: &[(&str, &str, &str, u64, Option<f64>)]) {
    println!();
    println!(
        "| bench | ours | baseline | ours/baseline (paired) | ours/baseline (criterion) | target |"
    );
    println!("|---|---|---|---|---|---|");
    for &(group, ours, baseline, elements, target) in pairs {
        let (Some((o, on)), Some((b, _))) = (paired_ns(group, ours), paired_ns(group, baseline))
        else {
            // Filtered out on the command line (`cargo bench -- select`): no row of stale numbers.
            println!("| {group} | (not run) | | | | |");
            continue;
        };
        let per_sec = |ns: f64| elements as f64 * 1e9 / ns;
        let ratio = b / o;
        let criterion_ratio = match (estimate_ns(group, ours), estimate_ns(group, baseline)) {
            (Some(o), Some(b)) => format!("{:.3}", b / o),
            _ => "—".into(),
        };
        let verdict = match target {
            Some(t) if ratio >= t => format!("≥ {t}: met"),
            Some(t) => format!("≥ {t}: MISSED"),
            None => "—".into(),
        };
        println!(
            "| {group}: {ours} vs {baseline} | {} ({:.0}/s) | {} ({:.0}/s) | **{ratio:.3}** ({on} ops each) | {criterion_ratio} | {verdict} |",
            human(o),
            per_sec(o),
            human(b),
            per_sec(b),
        );
    }
}

/// `CREATE TABLE` for [`Invoice`] in `schema` (quoted), as the derive writes it, plus `rows`
/// rows made server-side.
pub fn invoices_ddl(schema: &str, rows: i64) -> String {
    let mut sql = format!(
        "CREATE TABLE {schema}.\"invoices\" (\"id\" BIGINT GENERATED BY DEFAULT AS IDENTITY, \
         \"customer_id\" BIGINT NOT NULL, \"amount_cents\" BIGINT NOT NULL, \
         \"paid\" BOOLEAN NOT NULL, \"note\" TEXT, CONSTRAINT \"invoices_pkey\" PRIMARY KEY (\"id\"));"
    );
    if rows > 0 {
        sql.push_str(&fill_invoices_sql(schema.trim_matches('"'), rows));
        sql.push(';');
    }
    sql
}

/// The column list the derive selects, for the baseline's hand-written SQL.
pub const INVOICE_COLUMNS: &str = "\"id\", \"customer_id\", \"amount_cents\", \"paid\", \"note\"";
