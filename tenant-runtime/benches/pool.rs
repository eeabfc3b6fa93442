//! Checkout plus a get by key, 32 tasks over a pool of 8 connections: `TenantPool` against
//! deadpool-postgres, the pool a user would pick instead, with its default recycling
//! (`RecyclingMethod::Fast`: no round trip at checkout) and with `Verified` (a round trip at
//! every checkout), each running the hand-written statement through its own statement cache
//! (`prepare_cached`); and against sqlx 0.8's `PgPool` (`PgPoolOptions::new().max_connections(8)`,
//! its defaults otherwise: a ping at every acquire (`test_before_acquire`), its
//! per-connection statement cache for `sqlx::query(..).bind(..)`).
//!
//! One operation is a round of 32 tasks, each checking out a connection 4 times and reading
//! one row by key each time (128 rows per operation). All tasks run on one thread (the
//! benches' current-thread runtime), so the pools' own costs are not hidden by parallelism.
//! Every contender checks that it got the key's row.
//!
//! ```sh
//! cargo bench -p tenant-runtime --bench pool
//! ```

mod common;

use std::hint::black_box;
use std::time::{Duration, Instant};

use common::{invoice_from_row, invoices_ddl, Invoice, Tenants, INVOICE_COLUMNS};
use criterion::Throughput;
use deadpool_postgres::{ManagerConfig, RecyclingMethod};
use futures_util::future::join_all;
use tenant_runtime::{Model, Tenant, TenantPool};

const ROWS: i64 = 1_000;
const TASKS: u64 = 32;
const GETS_PER_TASK: u64 = 4;
const POOL_SIZE: usize = 8;
const CONTENDERS: [&str; 7] = [
    "tenant_pool",
    "deadpool_postgres_fast",
    "tenant_pool_max_per_tenant",
    "deadpool_postgres_verified",
    "tenant_pool_no_affinity_no_budget",
    "tenant_pool_client_no_tenant",
    "sqlx_pg_pool",
];

fn key(k: u64, task: u64, n: u64) -> i64 {
    1 + ((k * 131 + task * 17 + n) * 7_919) as i64 % ROWS
}

async fn round_tenant(pool: &TenantPool, tenant: &Tenant, k: u64) {
    join_all((0..TASKS).map(|task| async move {
        for n in 0..GETS_PER_TASK {
            let db = pool.get(tenant).await.unwrap();
            let row = Invoice::get(&db, key(k, task, n)).await.unwrap();
            black_box(row.expect("row"));
        }
    }))
    .await;
}

async fn round_deadpool(pool: &deadpool_postgres::Pool, sql: &str, k: u64) {
    join_all((0..TASKS).map(|task| async move {
        for n in 0..GETS_PER_TASK {
            let client = pool.get().await.unwrap();
            let statement = client.prepare_cached(sql).await.unwrap();
            let row = client
                .query_opt(&statement, &[&key(k, task, n)])
                .await
                .unwrap();
            black_box(row.as_ref().map(invoice_from_row).expect("row"));
        }
    }))
    .await;
}

async fn round_sqlx(pool: &sqlx::PgPool, sql: &str, k: u64) {
    use sqlx::Row as _;
    join_all((0..TASKS).map(|task| async move {
        for n in 0..GETS_PER_TASK {
            let mut conn = pool.acquire().await.unwrap();
            let id = key(k, task, n);
            let row = sqlx::query(sql)
                .bind(id)
                .fetch_optional(&mut *conn)
                .await
                .unwrap()
                .expect("row");
            let invoice = Invoice {
                id: row.get(0),
                customer_id: row.get(1),
                amount_cents: row.get(2),
                paid: row.get(3),
                note: row.get(4),
            };
            assert_eq!(invoice.id, id);
            black_box(invoice);
        }
    }))
    .await;
}

/// `TenantPool::client` (no tenant: no ranking, no cap) and a handle made from it: the
/// checkout without affinity's work, the same statement path.
async fn round_client(pool: &TenantPool, tenant: &Tenant, k: u64) {
    join_all((0..TASKS).map(|task| async move {
        for n in 0..GETS_PER_TASK {
            let client = pool.client().await.unwrap();
            let db = tenant_runtime::Db::new(&*client, tenant);
            let row = Invoice::get(&db, key(k, task, n)).await.unwrap();
            black_box(row.expect("row"));
        }
    }))
    .await;
}

fn deadpool(recycling: RecyclingMethod) -> deadpool_postgres::Pool {
    let config: tokio_postgres::Config = common::database_url().parse().unwrap();
    let manager = deadpool_postgres::Manager::from_config(
        config,
        tokio_postgres::NoTls,
        ManagerConfig {
            recycling_method: recycling,
        },
    );
    deadpool_postgres::Pool::builder(manager)
        .max_size(POOL_SIZE)
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .build()
        .unwrap()
}

fn main() {
    let rt = common::runtime();
    let mut c = common::criterion(Duration::from_secs(3), 20);
    let admin = rt.block_on(common::client());
    let tenants = rt.block_on(Tenants::create(admin.as_tokio_postgres(), "pool", 1, |s| {
        invoices_ddl(s, ROWS)
    }));
    let tenant = tenants.tenant(0);
    let sql = format!(
        "SELECT {INVOICE_COLUMNS} FROM \"{}\".\"invoices\" WHERE \"id\" = $1",
        tenants.schemas[0]
    );
    let url = common::database_url();
    let ours = TenantPool::builder(&url)
        .unwrap()
        .max_size(POOL_SIZE)
        .build()
        .unwrap();
    let capped = TenantPool::builder(&url)
        .unwrap()
        .max_size(POOL_SIZE)
        .max_per_tenant(Some(POOL_SIZE))
        .build()
        .unwrap();
    let plain = TenantPool::builder(&url)
        .unwrap()
        .max_size(POOL_SIZE)
        .affinity(false)
        .max_schemas_per_connection(None)
        .max_backend_memory(None)
        .max_lifetime(None)
        .idle_timeout(None)
        .build()
        .unwrap();
    let fast = deadpool(RecyclingMethod::Fast);
    let verified = deadpool(RecyclingMethod::Verified);
    let sqlx_pool = rt
        .block_on(
            sqlx::postgres::PgPoolOptions::new()
                .max_connections(POOL_SIZE as u32)
                .connect(&url),
        )
        .expect("sqlx: connecting (DATABASE_URL must be a postgres:// URL)");
    // Every pool opens its 8 connections and prepares its statement on each first.
    rt.block_on(async {
        for k in 0..4 {
            round_tenant(&ours, &tenant, k).await;
            round_tenant(&capped, &tenant, k).await;
            round_tenant(&plain, &tenant, k).await;
            round_client(&ours, &tenant, k).await;
            round_deadpool(&fast, &sql, k).await;
            round_deadpool(&verified, &sql, k).await;
            round_sqlx(&sqlx_pool, &sql, k).await;
        }
    });
    common::interleaved(
        &mut c,
        "pool_get_by_key_32_tasks_8_connections",
        |g| {
            g.throughput(Throughput::Elements(TASKS * GETS_PER_TASK));
        },
        &rt,
        &CONTENDERS,
        async |contender, k| {
            let start = Instant::now();
            match contender {
                0 => round_tenant(&ours, &tenant, k).await,
                1 => round_deadpool(&fast, &sql, k).await,
                2 => round_tenant(&capped, &tenant, k).await,
                3 => round_deadpool(&verified, &sql, k).await,
                4 => round_tenant(&plain, &tenant, k).await,
                5 => round_client(&ours, &tenant, k).await,
                _ => round_sqlx(&sqlx_pool, &sql, k).await,
            }
            start.elapsed()
        },
    );
    println!("tenant_pool: {:?}", ours.status());
    drop((ours, capped, fast, verified));
    rt.block_on(sqlx_pool.close());
    rt.block_on(tenants.drop_all(admin.as_tokio_postgres()));
    c.final_summary();
    let group = "pool_get_by_key_32_tasks_8_connections";
    let per_op = TASKS * GETS_PER_TASK;
    let row = |ours, baseline, target| (group, ours, baseline, per_op, target);
    common::print_ratios(&[
        row("tenant_pool", "deadpool_postgres_fast", Some(0.95)),
        row("tenant_pool", "deadpool_postgres_verified", None),
        row("tenant_pool", "sqlx_pg_pool", None),
        row("tenant_pool_max_per_tenant", "deadpool_postgres_fast", None),
        row(
            "tenant_pool_no_affinity_no_budget",
            "deadpool_postgres_fast",
            None,
        ),
        row(
            "tenant_pool_client_no_tenant",
            "deadpool_postgres_fast",
            None,
        ),
    ]);
}
