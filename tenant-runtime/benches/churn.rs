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
//!   `client.query(&str)` (prepare, execute, close: what code without a cache does).

mod common;

use std::hint::black_box;
use std::time::{Duration, Instant};

use common::Tenants;
use criterion::Throughput;
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
const CONTENDERS: [&str; 6] = [
    "tenant_cache_512",
    "baseline_prepared_once",
    "tenant_cache_unbounded",
    "baseline_no_cache",
    "baseline_query_typed",
    "tenant_prepare_first_use",
];

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

async fn raw_connection() -> tokio_postgres::Client {
    let (pg, conn) = tokio_postgres::connect(&common::database_url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    pg
}

fn main() {
    let rt = common::runtime();
    let mut c = common::criterion(Duration::from_secs(3), 20);
    let admin = rt.block_on(raw_connection());
    // CHURN_TENANTS=1000,10000 runs only those tenant counts (a shorter run).
    let counts: Vec<usize> = std::env::var("CHURN_TENANTS")
        .ok()
        .map(|v| {
            v.split(',')
                .map(|n| n.trim().parse().expect("CHURN_TENANTS: numbers"))
                .collect()
        })
        .unwrap_or_else(|| TENANT_COUNTS.to_vec());
    let max = *counts.iter().max().unwrap();
    let started = Instant::now();
    let all = rt.block_on(Tenants::create(&admin, "churn", max, ddl));
    println!("created {max} tenant schemas in {:.1?}", started.elapsed());
    let tenants = all.all();

    for &n in &counts {
        let tenants = &tenants[..n];
        let schemas = &all.schemas[..n];
        let (bounded, unbounded, first_use) = rt.block_on(async {
            let bounded = common::client()
                .await
                .with_statement_cache_capacity(CACHE_BOUND);
            let unbounded = common::client()
                .await
                .with_statement_cache_capacity(5 * max + 1);
            let first_use = common::client()
                .await
                .with_statement_cache_capacity(CACHE_BOUND)
                .with_prepare_threshold(1);
            // One full round first, so that the measurement sees the steady state.
            for t in tenants {
                visit_tenant(&bounded, t).await;
                visit_tenant(&unbounded, t).await;
                visit_tenant(&first_use, t).await;
            }
            (bounded, unbounded, first_use)
        });
        let typed_pg = rt.block_on(raw_connection());
        let typed_sql: Vec<[String; 5]> = schemas.iter().map(|s| sql(s)).collect();
        let prepared_pg = rt.block_on(raw_connection());
        let uncached_pg = rt.block_on(raw_connection());
        let started = Instant::now();
        let statements: Vec<[Statement; 5]> = rt.block_on(async {
            let mut all = Vec::with_capacity(n);
            for s in schemas {
                let mut prepared = Vec::with_capacity(5);
                for q in &sql(s) {
                    prepared.push(prepared_pg.prepare(q).await.unwrap());
                }
                all.push(prepared.try_into().expect("five"));
            }
            all
        });
        println!(
            "  baseline_prepared_once: prepared {} statements in {:.1?}",
            5 * n,
            started.elapsed()
        );
        // The baselines' backends get the same full round as the runtime's, so that none is
        // measured on its first execution of a statement or first touch of a table.
        rt.block_on(async {
            for (s, st) in schemas.iter().zip(&statements) {
                visit_prepared(&prepared_pg, st).await;
                visit_uncached(&uncached_pg, s).await;
            }
            for q in &typed_sql {
                visit_typed(&typed_pg, q).await;
            }
        });

        common::interleaved(
            &mut c,
            &format!("churn_{n}_tenants"),
            |g| {
                g.throughput(Throughput::Elements(STATEMENTS_PER_VISIT));
            },
            &rt,
            &CONTENDERS,
            async |contender, k| {
                let t = k as usize % n;
                let start = Instant::now();
                match contender {
                    0 => visit_tenant(&bounded, &tenants[t]).await,
                    1 => visit_prepared(&prepared_pg, &statements[t]).await,
                    2 => visit_tenant(&unbounded, &tenants[t]).await,
                    3 => visit_uncached(&uncached_pg, &schemas[t]).await,
                    4 => visit_typed(&typed_pg, &typed_sql[t]).await,
                    _ => visit_tenant(&first_use, &tenants[t]).await,
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
    }

    let started = Instant::now();
    rt.block_on(all.drop_all(&admin));
    println!("dropped {max} tenant schemas in {:.1?}", started.elapsed());
    c.final_summary();
    let groups: Vec<String> = counts
        .iter()
        .map(|n| format!("churn_{n}_tenants"))
        .collect();
    let mut pairs = Vec::new();
    for g in &groups {
        pairs.push((
            g.as_str(),
            "tenant_cache_512",
            "baseline_prepared_once",
            5,
            None,
        ));
        pairs.push((g.as_str(), "tenant_cache_512", "baseline_no_cache", 5, None));
        pairs.push((
            g.as_str(),
            "tenant_cache_512",
            "baseline_query_typed",
            5,
            Some(0.95),
        ));
        pairs.push((
            g.as_str(),
            "tenant_prepare_first_use",
            "baseline_query_typed",
            5,
            None,
        ));
        pairs.push((
            g.as_str(),
            "tenant_cache_unbounded",
            "baseline_prepared_once",
            5,
            None,
        ));
    }
    common::print_ratios(&pairs);
}
