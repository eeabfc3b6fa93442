//! Tenant churn: one connection serving 1, 100, 1,000 and 10,000 tenants round-robin, five
//! statements per tenant visit (get by key, count, select all, update, delete), so the
//! distinct (statement, schema) pairs are 5, 500, 5,000 and 50,000 against a statement
//! cache bound of 512.
//!
//! Six contenders, each on its own connection:
//! - `tenant_cache_512`: the runtime with its defaults: a bounded cache (512 statements) and
//!   adaptive preparing (prepare threshold 2: a statement's first use runs unnamed, in one
//!   round trip; it is prepared when it comes back while cached);
//! - `tenant_prepare_first_use`: the same with prepare threshold 1 (every miss prepares,
//!   executes and, past the bound, closes the evicted statement: the behaviour before
//!   adaptive preparing);
//! - `tenant_cache_unbounded`: the runtime with a cache larger than every working set;
//! - `baseline_query_typed`: hand-written, per-tenant SQL (formatted once up front) run with
//!   `client.query_typed` / `execute_typed`: the unnamed statement, one round trip each,
//!   nothing kept on the server;
//! - `baseline_prepared_once`: hand-written, every tenant's five statements prepared once
//!   up front and kept forever (the fastest possible, with server memory growing with the
//!   tenant count: 50,000 prepared statements at 10,000 tenants);
//! - `baseline_no_cache`: hand-written, per-tenant SQL formatted and run with
//!   `client.query(&str)` (prepare, execute, close: what code without a cache does);
//! - `sqlx_statement_cache`: a `sqlx::PgConnection` (sqlx 0.8) with its default statement
//!   cache (100 statements, least recently used evicted and closed), the same SQL with
//!   `sqlx::query(..).bind(..)`: what a sqlx user writes.
//!
//! Every contender checks every row it gets (the key's row, the count, the 10 rows, nothing
//! updated or deleted).
//!
//! ```sh
//! cargo bench -p tenant-runtime --bench churn                         # 1, 100, 1,000, 10,000
//! CHURN_TENANTS=1000,10000 cargo bench -p tenant-runtime --bench churn # only those counts
//! CHURN_PREPARED_ONCE_MAX=10000 ...                                   # see below
//! BENCH_FRESH=1 ...                                                   # rebuild the kept schemas
//! ```
//!
//! The 10,000 tenant schemas are kept between runs in the database `tenant_bench` (see
//! `common::Tenants::kept`): made once (55 s on this 2-core machine under load), reused while
//! their shape is the same. At 10,000 tenants most of a run is the warm-up (a full round of
//! every contender, two for `tenant_cache_unbounded`, the connections side by side: every
//! backend loads the catalog of every table) and the criterion measurement. `baseline_prepared_once` keeps 5 statements per
//! tenant prepared on its backend: at 10,000 tenants that is 50,000 statements, prepared in
//! about 10 s, and a backend of about 460 MiB (the others: about 85 MiB); it runs up to
//! `CHURN_PREPARED_ONCE_MAX` tenants (default 10,000) and is left out, with a printed reason,
//! above.

mod common;

use std::hint::black_box;
use std::time::{Duration, Instant};

use common::Tenants;
use criterion::Throughput;
use futures_util::join;
use sqlx::{Connection, Row as _};
use tenant_runtime::{Client, Db, Keyed, Model, Tenant};
use tokio_postgres::Statement;

#[derive(Debug, Clone, PartialEq, Model)]
#[tenant(table = "items")]
struct Item {
    #[tenant(primary_key)]
    id: i64,
    name: String,
    qty: i32,
}

const TENANT_COUNTS: [usize; 4] = [1, 100, 1_000, 10_000];
const STATEMENTS_PER_VISIT: u64 = 5;
const CACHE_BOUND: usize = 512;
const CONTENDERS: [&str; 7] = [
    "tenant_cache_512",
    "baseline_prepared_once",
    "tenant_cache_unbounded",
    "baseline_no_cache",
    "baseline_query_typed",
    "tenant_prepare_first_use",
    "sqlx_statement_cache",
];
/// `CONTENDERS[PREPARED_ONCE]` is left out above `CHURN_PREPARED_ONCE_MAX` tenants.
const PREPARED_ONCE: usize = 1;

fn ddl(schema: &str) -> String {
    format!(
        "CREATE TABLE {schema}.\"items\" (\"id\" BIGINT NOT NULL, \"name\" TEXT NOT NULL, \
         \"qty\" INTEGER NOT NULL, CONSTRAINT \"items_pkey\" PRIMARY KEY (\"id\")); \
         INSERT INTO {schema}.\"items\" SELECT g, 'item ' || g, g FROM generate_series(1, 10) g"
    )
}

fn sql(schema: &str) -> [String; 5] {
    let t = format!("\"{schema}\".\"items\"");
    [
        format!("SELECT \"id\", \"name\", \"qty\" FROM {t} WHERE \"id\" = $1"),
        format!("SELECT count(*) FROM {t}"),
        format!("SELECT \"id\", \"name\", \"qty\" FROM {t} ORDER BY \"id\""),
        format!("UPDATE {t} SET \"name\" = $1, \"qty\" = $2 WHERE \"id\" = $3"),
        format!("DELETE FROM {t} WHERE \"id\" = $1"),
    ]
}

fn item_from_row(row: &tokio_postgres::Row) -> Item {
    Item {
        id: row.get(0),
        name: row.get(1),
        qty: row.get(2),
    }
}

/// No row has this key: update and delete find nothing (no writes, no bloat).
const MISSING: Item = Item {
    id: -1,
    name: String::new(),
    qty: 0,
};

async fn visit_tenant(client: &Client, tenant: &Tenant) {
    let db = Db::new(client, tenant);
    black_box(Item::get(&db, 3).await.unwrap().expect("row 3"));
    assert_eq!(Item::query().count(&db).await.unwrap(), 10);
    let all = Item::query().order_by(Item::ID.asc()).fetch_all(&db);
    assert_eq!(all.await.unwrap().len(), 10);
    assert!(!MISSING.update(&db).await.unwrap());
    assert!(!Item::delete(&db, MISSING.key()).await.unwrap());
}

async fn warm_up(client: &Client, tenants: &[Tenant]) {
    for t in tenants {
        visit_tenant(client, t).await;
    }
}

async fn visit_prepared(pg: &tokio_postgres::Client, st: &[Statement; 5]) {
    let row = pg.query_opt(&st[0], &[&3i64]).await.unwrap();
    black_box(row.as_ref().map(item_from_row).expect("row 3"));
    let n: i64 = pg.query_one(&st[1], &[]).await.unwrap().get(0);
    assert_eq!(n, 10);
    let all: Vec<Item> = pg
        .query(&st[2], &[])
        .await
        .unwrap()
        .iter()
        .map(item_from_row)
        .collect();
    assert_eq!(all.len(), 10);
    let m = &MISSING;
    assert_eq!(
        pg.execute(&st[3], &[&m.name, &m.qty, &m.id]).await.unwrap(),
        0
    );
    assert_eq!(pg.execute(&st[4], &[&m.id]).await.unwrap(), 0);
}

async fn visit_uncached(pg: &tokio_postgres::Client, schema: &str) {
    let sql = sql(schema);
    let row = pg.query_opt(sql[0].as_str(), &[&3i64]).await.unwrap();
    black_box(row.as_ref().map(item_from_row).expect("row 3"));
    let n: i64 = pg.query_one(sql[1].as_str(), &[]).await.unwrap().get(0);
    assert_eq!(n, 10);
    let all: Vec<Item> = pg
        .query(sql[2].as_str(), &[])
        .await
        .unwrap()
        .iter()
        .map(item_from_row)
        .collect();
    assert_eq!(all.len(), 10);
    let m = &MISSING;
    let updated = pg
        .execute(sql[3].as_str(), &[&m.name, &m.qty, &m.id])
        .await
        .unwrap();
    assert_eq!(updated, 0);
    assert_eq!(pg.execute(sql[4].as_str(), &[&m.id]).await.unwrap(), 0);
}

async fn visit_typed(pg: &tokio_postgres::Client, sql: &[String; 5]) {
    use tokio_postgres::types::Type;
    let row = pg
        .query_typed(&sql[0], &[(&3i64, Type::INT8)])
        .await
        .unwrap()
        .pop();
    black_box(row.as_ref().map(item_from_row).expect("row 3"));
    let n: i64 = pg.query_typed(&sql[1], &[]).await.unwrap()[0].get(0);
    assert_eq!(n, 10);
    let all: Vec<Item> = pg
        .query_typed(&sql[2], &[])
        .await
        .unwrap()
        .iter()
        .map(item_from_row)
        .collect();
    assert_eq!(all.len(), 10);
    let m = &MISSING;
    let params: [(&(dyn tokio_postgres::types::ToSql + Sync), Type); 3] = [
        (&m.name, Type::TEXT),
        (&m.qty, Type::INT4),
        (&m.id, Type::INT8),
    ];
    assert_eq!(pg.execute_typed(&sql[3], &params).await.unwrap(), 0);
    let deleted = pg
        .execute_typed(&sql[4], &[(&m.id, Type::INT8)])
        .await
        .unwrap();
    assert_eq!(deleted, 0);
}

async fn visit_sqlx(conn: &mut sqlx::PgConnection, sql: &[String; 5]) {
    let row = sqlx::query(&sql[0])
        .bind(3i64)
        .fetch_optional(&mut *conn)
        .await
        .unwrap()
        .expect("row 3");
    black_box(Item {
        id: row.get(0),
        name: row.get(1),
        qty: row.get(2),
    });
    let n: i64 = sqlx::query(&sql[1])
        .fetch_one(&mut *conn)
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 10);
    let all: Vec<Item> = sqlx::query(&sql[2])
        .fetch_all(&mut *conn)
        .await
        .unwrap()
        .iter()
        .map(|row| Item {
            id: row.get(0),
            name: row.get(1),
            qty: row.get(2),
        })
        .collect();
    assert_eq!(all.len(), 10);
    let m = &MISSING;
    let updated = sqlx::query(&sql[3])
        .bind(&m.name)
        .bind(m.qty)
        .bind(m.id)
        .execute(&mut *conn)
        .await
        .unwrap();
    assert_eq!(updated.rows_affected(), 0);
    let deleted = sqlx::query(&sql[4])
        .bind(m.id)
        .execute(&mut *conn)
        .await
        .unwrap();
    assert_eq!(deleted.rows_affected(), 0);
}

async fn raw_connection() -> tokio_postgres::Client {
    common::raw_connect(&common::bench_database_url()).await
}

/// The bytes `pg`'s backend holds in its memory contexts.
async fn backend_memory(pg: &tokio_postgres::Client) -> i64 {
    pg.query_one(
        "SELECT coalesce(sum(total_bytes), 0)::int8 FROM pg_catalog.pg_backend_memory_contexts",
        &[],
    )
    .await
    .expect("reading pg_backend_memory_contexts")
    .get(0)
}

fn main() {
    let rt = common::runtime();
    let mut c = common::criterion(Duration::from_secs(3), 20);
    // CHURN_TENANTS=1000,10000 runs only those tenant counts (a shorter run).
    let counts: Vec<usize> = std::env::var("CHURN_TENANTS")
        .ok()
        .map(|v| {
            v.split(',')
                .map(|n| n.trim().parse().expect("CHURN_TENANTS: numbers"))
                .collect()
        })
        .unwrap_or_else(|| TENANT_COUNTS.to_vec());
    let prepared_once_max: usize = std::env::var("CHURN_PREPARED_ONCE_MAX")
        .ok()
        .map(|v| v.trim().parse().expect("CHURN_PREPARED_ONCE_MAX: a number"))
        .unwrap_or(10_000);
    let max = *counts.iter().max().unwrap();
    let all = rt.block_on(Tenants::kept("churn", max, 100, ddl));
    let tenants = all.all();
    let url = common::bench_database_url();
    let mut run_groups = Vec::new();

    for &n in &counts {
        let started_count = Instant::now();
        let tenants = &tenants[..n];
        let schemas = &all.schemas[..n];
        let with_prepared = n <= prepared_once_max;
        if !with_prepared {
            println!(
                "  baseline_prepared_once left out at {n} tenants: it would keep {} statements \
                 prepared on its backend (CHURN_PREPARED_ONCE_MAX={prepared_once_max})",
                5 * n
            );
        }
        let started = Instant::now();
        let (bounded, unbounded, first_use) = rt.block_on(async {
            let bounded = common::bench_client()
                .await
                .with_statement_cache_capacity(CACHE_BOUND);
            // Ten per tenant: the cache holds more keys than the five SQL texts (6 per tenant
            // at 1,000 tenants after two rounds), and must never evict here.
            let unbounded = common::bench_client()
                .await
                .with_statement_cache_capacity(10 * max + 1);
            let first_use = common::bench_client()
                .await
                .with_statement_cache_capacity(CACHE_BOUND)
                .with_prepare_threshold(1);
            // One full round first, so that the measurement sees the steady state; the
            // connections side by side (their backends work in parallel: at 10,000 tenants
            // this is most of the setup, every backend loading every table's catalog).
            // The unbounded cache gets two: with the default prepare threshold (2) a
            // statement is prepared at its second use, and the measurement must see the
            // cache hits, not those prepares.
            join!(
                warm_up(&bounded, tenants),
                async {
                    warm_up(&unbounded, tenants).await;
                    warm_up(&unbounded, tenants).await;
                },
                warm_up(&first_use, tenants)
            );
            (bounded, unbounded, first_use)
        });
        let typed_pg = rt.block_on(raw_connection());
        let typed_sql: Vec<[String; 5]> = schemas.iter().map(|s| sql(s)).collect();
        let prepared_pg = rt.block_on(raw_connection());
        let uncached_pg = rt.block_on(raw_connection());
        let mut sqlx_conn = rt
            .block_on(sqlx::PgConnection::connect(&url))
            .expect("sqlx: connecting to the bench database (a postgres:// URL)");
        let started_prepare = Instant::now();
        let statements: Vec<[Statement; 5]> = rt.block_on(async {
            let mut all = Vec::with_capacity(n);
            for s in schemas.iter().take(if with_prepared { n } else { 0 }) {
                let mut prepared = Vec::with_capacity(5);
                for q in &sql(s) {
                    prepared.push(prepared_pg.prepare(q).await.unwrap());
                }
                all.push(prepared.try_into().expect("five"));
            }
            all
        });
        if with_prepared {
            println!(
                "  baseline_prepared_once: prepared {} statements in {:.1?}",
                5 * n,
                started_prepare.elapsed()
            );
        }
        // The baselines' backends get the same full round as the runtime's, so that none is
        // measured on its first execution of a statement or first touch of a table.
        rt.block_on(async {
            join!(
                async {
                    for st in &statements {
                        visit_prepared(&prepared_pg, st).await;
                    }
                },
                async {
                    for s in schemas {
                        visit_uncached(&uncached_pg, s).await;
                    }
                },
                async {
                    for q in &typed_sql {
                        visit_typed(&typed_pg, q).await;
                    }
                },
                async {
                    for q in &typed_sql {
                        visit_sqlx(&mut sqlx_conn, q).await;
                    }
                }
            );
        });
        println!(
            "  {n} tenants: connections opened and warmed up (a full round each) in {:.1?}",
            started.elapsed()
        );
        rt.block_on(async {
            let mut sizes = vec![
                (
                    "tenant_cache_512",
                    backend_memory(bounded.as_tokio_postgres()).await,
                ),
                (
                    "tenant_cache_unbounded",
                    backend_memory(unbounded.as_tokio_postgres()).await,
                ),
                (
                    "tenant_prepare_first_use",
                    backend_memory(first_use.as_tokio_postgres()).await,
                ),
                ("baseline_query_typed", backend_memory(&typed_pg).await),
                ("baseline_no_cache", backend_memory(&uncached_pg).await),
            ];
            if with_prepared {
                sizes.push(("baseline_prepared_once", backend_memory(&prepared_pg).await));
            }
            let line: Vec<String> = sizes
                .iter()
                .map(|(name, bytes)| format!("{name} {:.1} MiB", *bytes as f64 / 1048576.0))
                .collect();
            println!("  backend memory after the warm-up: {}", line.join(", "));
        });

        // The contenders of this count (their indexes into CONTENDERS).
        let ids: Vec<usize> = (0..CONTENDERS.len())
            .filter(|&i| with_prepared || i != PREPARED_ONCE)
            .collect();
        let names: Vec<&str> = ids.iter().map(|&i| CONTENDERS[i]).collect();
        let group = format!("churn_{n}_tenants");
        common::interleaved(
            &mut c,
            &group,
            |g| {
                g.throughput(Throughput::Elements(STATEMENTS_PER_VISIT));
            },
            &rt,
            &names,
            async |contender, k| {
                let t = k as usize % n;
                let start = Instant::now();
                match ids[contender] {
                    0 => visit_tenant(&bounded, &tenants[t]).await,
                    1 => visit_prepared(&prepared_pg, &statements[t]).await,
                    2 => visit_tenant(&unbounded, &tenants[t]).await,
                    3 => visit_uncached(&uncached_pg, &schemas[t]).await,
                    4 => visit_typed(&typed_pg, &typed_sql[t]).await,
                    5 => visit_tenant(&first_use, &tenants[t]).await,
                    _ => visit_sqlx(&mut sqlx_conn, &typed_sql[t]).await,
                }
                start.elapsed()
            },
        );
        for (name, client) in [
            ("tenant_cache_512", &bounded),
            ("tenant_cache_unbounded", &unbounded),
            ("tenant_prepare_first_use", &first_use),
        ] {
            let stats = client.statement_cache().stats();
            println!(
                "  {name}: cache holds {} of {} (hits {}, misses {}, prepares {}, evictions {})",
                stats.len,
                stats.capacity,
                stats.hits,
                stats.misses,
                stats.prepares,
                stats.evictions
            );
        }
        println!(
            "  {n} tenants: done in {:.1?} (setup and measurement)",
            started_count.elapsed()
        );
        // Close this count's connections (and their backends' memory) before the next.
        drop((
            bounded,
            unbounded,
            first_use,
            typed_pg,
            prepared_pg,
            uncached_pg,
        ));
        rt.block_on(sqlx_conn.close())
            .expect("closing the sqlx connection");
        run_groups.push((group, with_prepared));
    }

    c.final_summary();
    let mut pairs = Vec::new();
    for (g, with_prepared) in &run_groups {
        let g = g.as_str();
        if *with_prepared {
            pairs.push((g, "tenant_cache_512", "baseline_prepared_once", 5, None));
        }
        pairs.push((g, "tenant_cache_512", "baseline_no_cache", 5, None));
        pairs.push((g, "tenant_cache_512", "baseline_query_typed", 5, Some(0.95)));
        pairs.push((g, "tenant_cache_512", "sqlx_statement_cache", 5, Some(1.0)));
        pairs.push((
            g,
            "tenant_prepare_first_use",
            "baseline_query_typed",
            5,
            None,
        ));
        if *with_prepared {
            pairs.push((
                g,
                "tenant_cache_unbounded",
                "baseline_prepared_once",
                5,
                None,
            ));
        }
    }
    common::print_ratios(&pairs);
}
