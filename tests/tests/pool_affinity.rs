//! Tenant affinity of a `TenantPool`: each tenant keeps to the connections its rendezvous
//! ranking prefers when they are idle, falls back to another idle one when they are busy,
//! keeps to them when the pool is saturated (a returned connection goes to a waiter that
//! prefers it), and gets exactly the same results as without affinity.

use std::collections::{HashMap, HashSet};

use tenant_runtime::sql::Template;
use tenant_runtime::{Allowlist, Slot, Tenant, TenantPool};
use tenant_tests::{connect, database_url, TestSchemas};

const TENANTS: usize = 12;

async fn kv_schemas(test: &str) -> (TestSchemas, Allowlist) {
    let schemas = TestSchemas::new(test).await;
    let keys: Vec<String> = (0..TENANTS).map(|i| format!("t{i}")).collect();
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    let allowlist = schemas.allowlist(&keys);
    let mut sql = String::new();
    for (i, tenant) in allowlist.tenants().iter().enumerate() {
        let s = tenant.schema().as_str().to_owned();
        let key = tenant.key();
        sql.push_str(&format!(
            "CREATE SCHEMA \"{s}\"; CREATE TABLE \"{s}\".kv (k int, v text); \
             INSERT INTO \"{s}\".kv SELECT g, '{key}:' || g FROM generate_series(1, {}) g;",
            i + 1
        ));
    }
    connect().await.batch_execute(&sql).await.unwrap();
    (schemas, allowlist)
}

fn read_all() -> Template {
    Template::builder()
        .sql("SELECT pg_backend_pid(), k, v FROM ")
        .table(Slot::Tenant, "kv")
        .sql(" WHERE k >= $1 ORDER BY k")
        .build()
}

async fn pool(affinity: bool) -> TenantPool {
    TenantPool::builder(&database_url().await)
        .unwrap()
        .max_size(4)
        .affinity(affinity)
        .build()
        .unwrap()
}

/// Opens every connection of `pool` (4 checked out at once), then returns them.
async fn open_all(pool: &TenantPool) {
    let held: Vec<_> = futures_util::future::join_all((0..4).map(|_| pool.client()))
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(pool.status().size, 4);
    drop(held);
}

/// One tenant's rows from k = 1, and the backend that served them.
async fn read(pool: &TenantPool, tenant: &Tenant) -> (i32, Vec<(i32, String)>) {
    let db = pool.get(tenant).await.unwrap();
    let rows = db.fetch_all(&read_all(), &[&1i32]).await.unwrap();
    let pid = rows.first().map(|r| r.get(0)).unwrap();
    (pid, rows.iter().map(|r| (r.get(1), r.get(2))).collect())
}

fn expected(i: usize, tenant: &Tenant) -> Vec<(i32, String)> {
    (1..=i as i32 + 1)
        .map(|k| (k, format!("{}:{k}", tenant.key())))
        .collect()
}

#[tokio::test]
async fn with_idle_connections_each_tenant_keeps_to_its_own_and_tenants_spread_over_them() {
    let (schemas, allowlist) = kv_schemas("pool_aff_keep").await;
    let tenants = allowlist.tenants();
    let mut pids_of: HashMap<String, HashSet<i32>> = HashMap::new();
    for affinity in [true, false] {
        let pool = pool(affinity).await;
        open_all(&pool).await;
        let mut seen: HashMap<String, HashSet<i32>> = HashMap::new();
        for _round in 0..3 {
            for tenant in &tenants {
                let (pid, _) = read(&pool, tenant).await;
                seen.entry(tenant.key().to_owned()).or_default().insert(pid);
            }
            // A checkout for no tenant in between: without affinity it moves the rotating
            // start, so no tenant count can line the rounds up by chance.
            drop(pool.client().await.unwrap());
        }
        if affinity {
            for (tenant, pids) in &seen {
                assert_eq!(pids.len(), 1, "{tenant} served by {pids:?}");
            }
            let used: HashSet<i32> = seen.values().flatten().copied().collect();
            assert!(used.len() >= 2, "tenants spread over connections: {used:?}");
            pids_of = seen;
        } else {
            assert!(
                seen.values().any(|pids| pids.len() > 1),
                "without affinity a tenant moves between connections: {seen:?}"
            );
        }
    }
    assert_eq!(pids_of.len(), TENANTS);
    schemas.cleanup().await;
}

#[tokio::test]
async fn affinity_does_not_change_results_under_concurrency() {
    let (schemas, allowlist) = kv_schemas("pool_aff_results").await;
    let tenants = allowlist.tenants();
    let mut results: Vec<HashMap<String, Vec<(i32, String)>>> = Vec::new();
    for affinity in [true, false] {
        let pool = pool(affinity).await;
        let mut tasks = Vec::new();
        // 32 tasks over 4 connections: preferred connections are often busy, so tenants
        // also fall back to others.
        for task in 0..32usize {
            let (pool, tenants) = (pool.clone(), tenants.clone());
            tasks.push(tokio::spawn(async move {
                let mut got = Vec::new();
                for n in 0..6usize {
                    let i = (task * 5 + n * 7) % TENANTS;
                    let (_, rows) = read(&pool, &tenants[i]).await;
                    assert_eq!(rows, expected(i, &tenants[i]), "tenant {i}");
                    got.push((tenants[i].key().to_owned(), rows));
                }
                got
            }));
        }
        let mut by_tenant = HashMap::new();
        for task in tasks {
            for (key, rows) in task.await.unwrap() {
                by_tenant.insert(key, rows);
            }
        }
        assert_eq!(by_tenant.len(), TENANTS);
        assert!(pool.status().size <= 4);
        results.push(by_tenant);
    }
    assert_eq!(
        results[0], results[1],
        "the same rows with and without affinity"
    );
    schemas.cleanup().await;
}

/// 32 tasks of 12 checked reads each over the pool's 4 connections (all of them busy, about
/// 28 callers waiting at any time), `meanwhile` running beside them: the backends that
/// served each tenant, one per read.
async fn saturated_reads(
    pool: &TenantPool,
    tenants: &[Tenant],
    meanwhile: impl std::future::Future<Output = ()>,
) -> HashMap<String, Vec<i32>> {
    let mut tasks = Vec::new();
    for task in 0..32usize {
        let (pool, tenants) = (pool.clone(), tenants.to_vec());
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            for n in 0..12usize {
                let i = (task * 5 + n * 7) % TENANTS;
                let (pid, rows) = read(&pool, &tenants[i]).await;
                assert_eq!(rows, expected(i, &tenants[i]), "tenant {i}");
                got.push((tenants[i].key().to_owned(), pid));
            }
            got
        }));
    }
    meanwhile.await;
    let mut seen: HashMap<String, Vec<i32>> = HashMap::new();
    for task in tasks {
        for (key, pid) in task.await.unwrap() {
            seen.entry(key).or_default().push(pid);
        }
    }
    assert_eq!(seen.values().map(Vec::len).sum::<usize>(), 32 * 12);
    seen
}

/// Of all reads, the share served by the backend that served its tenant most often.
fn share_on_home_backend(seen: &HashMap<String, Vec<i32>>) -> f64 {
    let (mut home, mut all) = (0, 0);
    for pids in seen.values() {
        let mut counts: HashMap<i32, usize> = HashMap::new();
        for &pid in pids {
            *counts.entry(pid).or_default() += 1;
        }
        home += counts.values().max().copied().unwrap_or(0);
        all += pids.len();
    }
    home as f64 / all as f64
}

#[tokio::test]
async fn a_saturated_pool_hands_each_returned_connection_to_a_tenant_that_prefers_it() {
    let (schemas, allowlist) = kv_schemas("pool_aff_saturated").await;
    let tenants = allowlist.tenants();
    let mut shares = Vec::new();
    for affinity in [true, false] {
        let pool = pool(affinity).await;
        open_all(&pool).await;
        let seen = saturated_reads(&pool, &tenants, async {}).await;
        shares.push(share_on_home_backend(&seen));
    }
    let (with, without) = (shares[0], shares[1]);
    // Without affinity a tenant's reads spread over the 4 backends (about a third on the one
    // used most); with it, most stay on the tenant's first choice (about 0.8 here; a waiter
    // passed over 16 times takes any).
    assert!(
        with >= 0.6 && with >= without + 0.2,
        "share of reads on the tenant's home backend: {with:.2} with affinity, {without:.2} without"
    );
    eprintln!("home-backend share: {with:.2} with affinity, {without:.2} without");
    schemas.cleanup().await;
}

#[tokio::test]
async fn with_a_spread_each_tenant_runs_only_on_its_first_connections() {
    let (schemas, allowlist) = kv_schemas("pool_aff_spread").await;
    let tenants = allowlist.tenants();
    for spread in [1, 2] {
        let pool = TenantPool::builder(&database_url().await)
            .unwrap()
            .max_size(4)
            .affinity_spread(Some(spread))
            .build()
            .unwrap();
        open_all(&pool).await;
        // One task per tenant, 12 callers for 4 connections: saturated, and each tenant has
        // one checkout at a time. Without a spread, a tenant would also run on whatever
        // connection came back (see the test above). Meanwhile a checkout without a tenant
        // takes any.
        let mut tasks = Vec::new();
        for (i, tenant) in tenants.iter().enumerate() {
            let (pool, tenant) = (pool.clone(), tenant.clone());
            tasks.push(tokio::spawn(async move {
                let mut pids = HashSet::new();
                for _ in 0..12 {
                    let (pid, rows) = read(&pool, &tenant).await;
                    assert_eq!(rows, expected(i, &tenant), "tenant {i}");
                    pids.insert(pid);
                }
                pids
            }));
        }
        let client = pool.client().await.unwrap();
        let rows = tenant_runtime::Db::new(&client, &tenants[0])
            .fetch_all(&read_all(), &[&1i32])
            .await
            .unwrap();
        assert_eq!(rows.len(), 1);
        drop(client);
        let mut backends = HashSet::new();
        for (i, task) in tasks.into_iter().enumerate() {
            let pids = task.await.unwrap();
            assert!(
                pids.len() <= spread,
                "spread {spread}: tenant {i} ran on {} backends",
                pids.len()
            );
            backends.extend(pids);
        }
        assert!(
            backends.len() >= 2,
            "spread {spread}: the tenants still spread over the pool ({} backends used)",
            backends.len()
        );
        assert!(pool.status().size <= 4);
    }
    schemas.cleanup().await;
}

#[tokio::test]
async fn with_a_spread_a_tenant_with_concurrent_checkouts_spreads_and_never_waits_for_itself() {
    let (schemas, allowlist) = kv_schemas("pool_aff_widen").await;
    let tenant = allowlist.tenants()[3].clone();
    let pool = TenantPool::builder(&database_url().await)
        .unwrap()
        .max_size(4)
        .affinity_spread(Some(1))
        .wait_timeout(Some(std::time::Duration::from_secs(5)))
        .build()
        .unwrap();
    open_all(&pool).await;
    // One checkout held: a second for the same tenant gets another connection at once (the
    // spread widens by the one it holds), not a wait for its own.
    let held = pool.get(&tenant).await.unwrap();
    let again = tokio::time::timeout(std::time::Duration::from_secs(2), pool.get(&tenant))
        .await
        .expect("a second checkout of the tenant, while it holds one")
        .unwrap();
    let pid_of = |rows: Vec<tokio_postgres::Row>| rows[0].get::<_, i32>(0);
    let first = pid_of(held.fetch_all(&read_all(), &[&1i32]).await.unwrap());
    let second = pid_of(again.fetch_all(&read_all(), &[&1i32]).await.unwrap());
    assert_ne!(first, second, "two connections at once");
    drop((held, again));
    // Eight tasks of the one tenant: it runs on more than one backend.
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (pool, tenant) = (pool.clone(), tenant.clone());
        tasks.push(tokio::spawn(async move {
            let mut pids = HashSet::new();
            for _ in 0..6 {
                let (pid, rows) = read(&pool, &tenant).await;
                assert_eq!(rows, expected(3, &tenant));
                pids.insert(pid);
            }
            pids
        }));
    }
    let mut backends = HashSet::new();
    for task in tasks {
        backends.extend(task.await.unwrap());
    }
    assert!(
        backends.len() >= 2,
        "a hot tenant spreads past its spread of 1: {backends:?}"
    );
    schemas.cleanup().await;
}

#[tokio::test]
async fn a_spread_of_zero_or_without_affinity_is_refused() {
    let url = database_url().await;
    for builder in [
        TenantPool::builder(&url).unwrap().affinity_spread(Some(0)),
        TenantPool::builder(&url)
            .unwrap()
            .affinity(false)
            .affinity_spread(Some(2)),
    ] {
        let error = builder.build().unwrap_err();
        assert!(
            matches!(
                error,
                tenant_runtime::Error::Pool(tenant_runtime::error::PoolError::InvalidConfig { .. })
            ),
            "{error}"
        );
        assert!(error.to_string().contains("affinity_spread"), "{error}");
    }
}
