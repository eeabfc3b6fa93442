//! The server memory budget of a `TenantPool`: a connection is retired (closed at its next
//! checkout, replaced lazily) once it served `max_schemas_per_connection` schemas (the
//! default bound only where the backend's memory cannot be read), once its backend's memory
//! passes `max_backend_memory`, or once it is `max_lifetime` old; idle
//! connections above `min_idle` close after `idle_timeout`. A retired connection is never
//! handed out again, and its backend is gone. The default statement cache bound follows
//! the backend's memory: it grows while the backend is under three quarters of the budget.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use tenant_runtime::exec::StatementCache;
use tenant_runtime::pool::TenantPoolBuilder;
use tenant_runtime::sql::Template;
use tenant_runtime::{Allowlist, Slot, TenantPool};
use tenant_tests::{connect, database_url, TestSchemas};

async fn builder() -> TenantPoolBuilder {
    TenantPool::builder(&database_url().await)
        .unwrap()
        .max_lifetime(None)
        .max_schemas_per_connection(None)
        .max_backend_memory(None)
        .idle_timeout(None)
}

/// `SELECT pg_backend_pid(), count(*) FROM {tenant}.kv`.
fn pid_and_count() -> Template {
    Template::builder()
        .sql("SELECT pg_backend_pid(), count(*) FROM ")
        .table(Slot::Tenant, "kv")
        .build()
}

async fn kv_schemas(test: &str, n: usize) -> (TestSchemas, Allowlist) {
    let schemas = TestSchemas::new(test).await;
    let keys: Vec<String> = (0..n).map(|i| format!("t{i}")).collect();
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    let allowlist = schemas.allowlist(&keys);
    let mut sql = String::new();
    for tenant in allowlist.tenants() {
        let s = tenant.schema().as_str().to_owned();
        sql.push_str(&format!(
            "CREATE SCHEMA \"{s}\"; CREATE TABLE \"{s}\".kv (k int); INSERT INTO \"{s}\".kv VALUES (1);"
        ));
    }
    connect().await.batch_execute(&sql).await.unwrap();
    (schemas, allowlist)
}

/// Which of `pids` still have a backend.
async fn live_backends(pids: &HashSet<i32>) -> HashSet<i32> {
    let pids: Vec<i32> = pids.iter().copied().collect();
    connect()
        .await
        .query(
            "SELECT pid FROM pg_stat_activity WHERE pid = ANY($1)",
            &[&pids],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// Backends a closed connection leaves behind exit shortly after; waits for that.
async fn assert_gone(pids: &HashSet<i32>) {
    for _ in 0..50 {
        if live_backends(pids).await.is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "retired backends still alive: {:?}",
        live_backends(pids).await
    );
}

#[tokio::test]
async fn a_connection_retired_after_k_schemas_is_never_in_use_again_and_its_backend_is_gone() {
    const K: usize = 3;
    let (schemas, allowlist) = kv_schemas("pool_budget_k", 12).await;
    let tenants = allowlist.tenants();
    let pool = builder()
        .await
        .max_size(2)
        .max_schemas_per_connection(Some(K))
        .build()
        .unwrap();
    let query = pid_and_count();
    let mut served: HashMap<i32, HashSet<String>> = HashMap::new();
    let mut tasks = Vec::new();
    for task in 0..16usize {
        let (pool, tenants, query) = (pool.clone(), tenants.clone(), query.clone());
        tasks.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            for i in 0..10usize {
                let tenant = &tenants[(task * 7 + i * 5) % tenants.len()];
                let db = pool.get(tenant).await.unwrap();
                let row = db.fetch_one(&query, &[]).await.unwrap();
                let count: i64 = row.get(1);
                assert_eq!(count, 1);
                seen.push((row.get::<_, i32>(0), tenant.schema().as_str().to_owned()));
            }
            seen
        }));
    }
    for task in tasks {
        for (pid, schema) in task.await.unwrap() {
            served.entry(pid).or_default().insert(schema);
        }
    }
    for (pid, schemas) in &served {
        assert!(
            schemas.len() <= K,
            "backend {pid} served {} schemas: {schemas:?}",
            schemas.len()
        );
    }
    assert!(
        served.len() > 2,
        "connections were retired and replaced: {served:?}"
    );
    // Every backend but the (at most 2) the pool still holds is closed.
    let in_pool: HashSet<i32> = {
        let mut held = Vec::new();
        for _ in 0..pool.status().size {
            held.push(pool.client().await.unwrap());
        }
        let mut pids = HashSet::new();
        for conn in &held {
            let pid: i32 = conn
                .as_tokio_postgres()
                .query_one("SELECT pg_backend_pid()", &[])
                .await
                .unwrap()
                .get(0);
            pids.insert(pid);
        }
        pids
    };
    let retired: HashSet<i32> = served
        .keys()
        .copied()
        .filter(|p| !in_pool.contains(p))
        .collect();
    assert!(!retired.is_empty());
    assert_gone(&retired).await;
    drop(pool);
    schemas.cleanup().await;
}

async fn pid_of(pool: &TenantPool, tenant: &tenant_runtime::Tenant) -> i32 {
    let db = pool.get(tenant).await.unwrap();
    db.fetch_one(&pid_and_count(), &[]).await.unwrap().get(0)
}

/// The backends that served one read of each of `tenants` through `pool`, in turn.
async fn backends_serving(pool: &TenantPool, tenants: &[tenant_runtime::Tenant]) -> HashSet<i32> {
    let mut pids = HashSet::new();
    for tenant in tenants {
        pids.insert(pid_of(pool, tenant).await);
    }
    pids
}

/// A pool of one connection with the default schema and memory budgets, no age or idle
/// bound.
fn one_connection(url: &str) -> TenantPoolBuilder {
    TenantPool::builder(url)
        .unwrap()
        .max_size(1)
        .max_lifetime(None)
        .idle_timeout(None)
}

#[tokio::test]
async fn a_connection_older_than_max_lifetime_is_retired_at_its_next_checkout() {
    let (schemas, allowlist) = kv_schemas("pool_budget_life", 1).await;
    let tenant = allowlist.resolve("t0").unwrap();
    let pool = builder()
        .await
        .max_size(1)
        .max_lifetime(Some(Duration::from_millis(300)))
        .build()
        .unwrap();
    let first = pid_of(&pool, &tenant).await;
    assert_eq!(pid_of(&pool, &tenant).await, first, "young: reused");
    tokio::time::sleep(Duration::from_millis(400)).await;
    let second = pid_of(&pool, &tenant).await;
    assert_ne!(second, first, "old: retired, a new connection served");
    assert_gone(&HashSet::from([first])).await;
    drop(pool);
    schemas.cleanup().await;
}

#[tokio::test]
async fn a_connection_whose_backend_passes_the_memory_budget_is_retired() {
    let (schemas, allowlist) = kv_schemas("pool_budget_mem", 1).await;
    let tenant = allowlist.resolve("t0").unwrap();
    // Every backend holds more than a kilobyte: retired at its first memory read (its 64th
    // recycle).
    let tiny = builder()
        .await
        .max_size(1)
        .max_backend_memory(Some(1024))
        .build()
        .unwrap();
    // No backend holds a terabyte: never retired.
    let huge = builder()
        .await
        .max_size(1)
        .max_backend_memory(Some(1 << 40))
        .build()
        .unwrap();
    let mut tiny_pids = Vec::new();
    let mut huge_pids = HashSet::new();
    for _ in 0..70 {
        tiny_pids.push(pid_of(&tiny, &tenant).await);
        huge_pids.insert(pid_of(&huge, &tenant).await);
    }
    assert!(
        tiny_pids[..60].iter().all(|p| *p == tiny_pids[0]),
        "not read before 64 checkouts"
    );
    assert_ne!(tiny_pids[69], tiny_pids[0], "retired over the budget");
    assert_eq!(huge_pids.len(), 1, "under the budget: kept");
    assert_gone(&HashSet::from([tiny_pids[0]])).await;
    drop((tiny, huge));
    schemas.cleanup().await;
}

#[tokio::test]
async fn the_default_schema_bound_yields_to_a_memory_budget_the_pool_can_read() {
    let bound = TenantPoolBuilder::DEFAULT_MAX_SCHEMAS_PER_CONNECTION;
    let n = bound + 70;
    let (schemas, allowlist) = kv_schemas("pool_budget_default", n).await;
    let tenants = allowlist.tenants();
    let url = database_url().await;
    let one = || one_connection(&url);
    // Both budgets at their defaults, and a role that reads its memory (the test's
    // superuser): far under 128 MiB, the connection is kept past 1,000 schemas.
    let defaults = one().build().unwrap();
    // The same number set explicitly: a hard bound.
    let hard = one()
        .max_schemas_per_connection(Some(bound))
        .build()
        .unwrap();
    // The default schema bound with a memory budget a backend passes only after hundreds of
    // schemas (1.5 MB at 64 one-table schemas, 5.4 MB at 1,070, measured): kept at its first
    // read (the 64th checkout), then read again as it serves more (ever more often as it
    // nears the budget) and retired.
    let early = one().max_backend_memory(Some(3 << 20)).build().unwrap();
    let (mut kept, mut hard_pids, mut early_pids) = (HashSet::new(), Vec::new(), Vec::new());
    for tenant in &tenants {
        kept.insert(pid_of(&defaults, tenant).await);
        hard_pids.push(pid_of(&hard, tenant).await);
        early_pids.push(pid_of(&early, tenant).await);
    }
    assert_eq!(kept.len(), 1, "defaults: {n} schemas on one connection");
    assert!(hard_pids[..bound].iter().all(|p| *p == hard_pids[0]));
    assert_ne!(hard_pids[bound + 1], hard_pids[0], "hard bound: retired");
    assert!(
        early_pids[..64].iter().all(|p| *p == early_pids[0]),
        "under 3 MiB at its first read: kept"
    );
    assert_ne!(
        early_pids[n - 1],
        early_pids[0],
        "read again as it served new schemas, over 3 MiB: retired"
    );
    assert_gone(&HashSet::from([hard_pids[0], early_pids[0]])).await;
    drop((defaults, hard, early));
    schemas.cleanup().await;
}

/// The memory `pool`'s one connection's backend holds now (read raw: the connection is
/// reset before its next checkout).
async fn backend_bytes(pool: &TenantPool) -> u64 {
    let conn = pool.client().await.unwrap();
    let bytes: i64 = conn
        .as_tokio_postgres()
        .query_one(
            "SELECT sum(total_bytes)::int8 FROM pg_catalog.pg_backend_memory_contexts",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    bytes as u64
}

/// The bound of `pool`'s one connection's statement cache, and the pid of its backend.
async fn cache_bound(pool: &TenantPool) -> (usize, i32) {
    let conn = pool.client().await.unwrap();
    let pid: i32 = conn
        .as_tokio_postgres()
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    (conn.statement_cache().stats().capacity, pid)
}

#[tokio::test]
async fn the_default_statement_cache_grows_under_three_quarters_of_the_memory_budget() {
    // One statement per schema: past 512 schemas the default cache evicts. The memory read
    // after 1,000 new schemas (see the test above) finds the backend far under three quarters
    // of 128 MiB: the bound grows by what it turned away.
    let default = StatementCache::DEFAULT_CAPACITY;
    let n = TenantPoolBuilder::DEFAULT_MAX_SCHEMAS_PER_CONNECTION + 70;
    let (schemas, allowlist) = kv_schemas("pool_budget_cache", n).await;
    let tenants = allowlist.tenants();
    let url = database_url().await;
    let one = || one_connection(&url);
    let grows = one().build().unwrap();
    // Set, the bound is fixed.
    let fixed = one().statement_cache_capacity(default).build().unwrap();
    let mut pids = HashSet::new();
    for tenant in &tenants {
        pids.insert(pid_of(&grows, tenant).await);
        pid_of(&fixed, tenant).await;
    }
    assert_eq!(pids.len(), 1, "one connection throughout");
    let (grown, pid) = cache_bound(&grows).await;
    assert!(pids.contains(&pid));
    assert!(
        grown >= 2 * default && grown <= TenantPoolBuilder::DEFAULT_STATEMENT_CACHE_CEILING,
        "grown to {grown}"
    );
    assert_eq!(cache_bound(&fixed).await.0, default, "a bound set is fixed");

    // A budget of 9/8 of what such a backend ends at: the bound grows only by what the room
    // up to three quarters of it holds at each read (at 16 KB a statement), far less; the
    // connection is kept, its backend under the budget.
    let bytes = backend_bytes(&fixed).await;
    let tight = one()
        .max_backend_memory(Some(bytes * 9 / 8))
        .build()
        .unwrap();
    let pids = backends_serving(&tight, &tenants).await;
    assert_eq!(pids.len(), 1, "under its budget: kept");
    let (bound, _) = cache_bound(&tight).await;
    assert!(
        bound >= default && bound < grown,
        "bound {bound}: at least the default, under the {grown} of the default budget"
    );
    assert!(backend_bytes(&tight).await < bytes * 9 / 8);
    drop((grows, fixed, tight));
    schemas.cleanup().await;
}

#[tokio::test]
async fn the_default_statement_cache_grows_between_memory_reads() {
    // One statement per schema on a pool of one. The first memory read (the 64th checkout)
    // finds nothing turned away; the next is due after 1,000 new schemas (or about 650 by
    // the estimate of a backend under 3 MiB at the first read, see above). Past 512 schemas
    // the cache turns statements away: once it turned away an eighth of its bound, the
    // estimate (the read plus the schemas served since) shows room, and the bound grows
    // without waiting for that read.
    let default = StatementCache::DEFAULT_CAPACITY;
    let n = 64 + default + default / 8 + 1;
    let (schemas, allowlist) = kv_schemas("pool_budget_between", n).await;
    let tenants = allowlist.tenants();
    let pool = one_connection(&database_url().await).build().unwrap();
    let pids = backends_serving(&pool, &tenants).await;
    assert_eq!(pids.len(), 1, "one connection throughout");
    let (bound, _) = cache_bound(&pool).await;
    assert!(
        bound >= 2 * default,
        "after {n} schemas, before the second read: grown to {bound}"
    );
    drop(pool);
    schemas.cleanup().await;
}

#[tokio::test]
async fn idle_connections_above_the_minimum_close_after_the_idle_timeout() {
    let (schemas, allowlist) = kv_schemas("pool_budget_idle", 1).await;
    let tenant = allowlist.resolve("t0").unwrap();
    let pool = builder()
        .await
        .max_size(4)
        .idle_timeout(Some(Duration::from_millis(200)))
        .min_idle(1)
        .build()
        .unwrap();
    let held: Vec<_> = futures_util::future::join_all((0..3).map(|_| pool.get(&tenant)))
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(pool.status().size, 3);
    drop(held);
    assert_eq!(pool.status().size, 3, "returned, idle");
    // Past the idle timeout, and past the once-a-second bound on the check.
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let db = pool.get(&tenant).await.unwrap();
    db.fetch_one(&pid_and_count(), &[]).await.unwrap();
    assert_eq!(
        pool.status().size,
        1,
        "two closed, min_idle kept: {:?}",
        pool.status()
    );
    drop(db);
    drop(pool);
    schemas.cleanup().await;
}
