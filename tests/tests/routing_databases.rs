//! Database per tenant: tenants routed to their own databases through the allowlist door and
//! a registry, with lazily created, small pools whose number stays within its bound.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tenant_runtime::error::PoolError;
use tenant_runtime::pool::{DatabaseRegistry, TenantDatabases};
use tenant_runtime::sql::Template;
use tenant_runtime::{Allowlist, Db, Error, Executor, Model, Tenant};
use tenant_tests::{connect_to, scratch_cluster, TestDatabase};

/// A database of its own on this binary's scratch cluster (dropping databases on the shared
/// server waits for its checkpoints).
async fn test_database(name: &str) -> TestDatabase {
    TestDatabase::create_on(&scratch_cluster().await.url(), name).await
}

#[derive(Debug, Clone, PartialEq, Model)]
#[tenant(table = "invoices")]
struct Invoice {
    #[tenant(primary_key, identity)]
    id: i64,
    tenant_key: String,
    amount_cents: i64,
}

/// `(current_database(), application_name)` of the handle's connection.
async fn whereabouts<E: Executor>(db: &Db<E>) -> (String, String) {
    let template = Template::builder()
        .sql("SELECT current_database()::text, current_setting('application_name')")
        .build();
    let row = db.fetch_one(&template, &[]).await.unwrap();
    (row.get(0), row.get(1))
}

/// Server backends of `databases` whose application name starts with `prefix`.
async fn backends(admin: &tokio_postgres::Client, databases: &[&str], prefix: &str) -> i64 {
    let databases: Vec<String> = databases.iter().map(|d| d.to_string()).collect();
    admin
        .query_one(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE datname = ANY($1) AND starts_with(application_name, $2)",
            &[&databases, &prefix],
        )
        .await
        .unwrap()
        .get(0)
}

/// Polls until at most `bound` such backends remain (a closed connection's backend exits a
/// moment after the client lets go), for at most 20 s; returns the last count.
async fn settle_backends(
    admin: &tokio_postgres::Client,
    databases: &[&str],
    prefix: &str,
    bound: i64,
) -> i64 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let n = backends(admin, databases, prefix).await;
        if n <= bound || Instant::now() >= deadline {
            return n;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn resolve(allowlist: &Allowlist, key: &str) -> Tenant {
    allowlist.resolve(key).unwrap()
}

#[tokio::test]
async fn each_tenant_reads_and_writes_only_its_own_database() {
    let (db1, db2) = (
        test_database("routing db isolation 1").await,
        test_database("routing db isolation 2").await,
    );
    let allowlist =
        Allowlist::from_pairs([("acme", "tenant_acme"), ("globex", "tenant_globex")]).unwrap();
    let registry =
        DatabaseRegistry::from_pairs([("acme", db1.url()), ("globex", db2.url())]).unwrap();
    let databases = TenantDatabases::builder(registry)
        .max_pools(4)
        .build()
        .unwrap();

    for (key, rows, home) in [("acme", 4, db1.name()), ("globex", 3, db2.name())] {
        let tenant = resolve(&allowlist, key);
        let db = databases.get(&tenant).await.unwrap();
        assert_eq!(whereabouts(&db).await.0, home);
        db.create_schema().await.unwrap();
        Invoice::create_table(&db).await.unwrap();
        for i in 0..rows {
            Invoice {
                id: 0,
                tenant_key: key.into(),
                amount_cents: i,
            }
            .insert(&db)
            .await
            .unwrap();
        }
    }

    // Transactions run in the tenant's database too: a rolled-back insert leaves nothing.
    let mut db = databases.get(&resolve(&allowlist, "acme")).await.unwrap();
    let tx = db.transaction().await.unwrap();
    Invoice {
        id: 0,
        tenant_key: "acme".into(),
        amount_cents: 999,
    }
    .insert(&tx)
    .await
    .unwrap();
    assert_eq!(Invoice::query().count(&tx).await.unwrap(), 5);
    tx.rollback().await.unwrap();
    drop(db);

    // Through the runtime: each tenant sees its own rows.
    for (key, rows) in [("acme", 4), ("globex", 3)] {
        let db = databases.get(&resolve(&allowlist, key)).await.unwrap();
        let all = Invoice::query()
            .order_by(Invoice::ID.asc())
            .fetch_all(&db)
            .await
            .unwrap();
        assert_eq!(all.len(), rows);
        assert!(all.iter().all(|i| i.tenant_key == key), "{all:?}");
    }

    // With plain SQL on each database: only its tenant's schema and rows are there.
    for (database, key, rows) in [(&db1, "acme", 4i64), (&db2, "globex", 3)] {
        let client = connect_to(&database.url()).await;
        let schemas: Vec<String> = client
            .query(
                "SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 'tenant\\_%' ORDER BY 1",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert_eq!(schemas, [format!("tenant_{key}")]);
        let row = client
            .query_one(
                &format!(
                    "SELECT count(*), count(*) FILTER (WHERE tenant_key <> $1) \
                     FROM tenant_{key}.invoices"
                ),
                &[&key],
            )
            .await
            .unwrap();
        assert_eq!((row.get::<_, i64>(0), row.get::<_, i64>(1)), (rows, 0));
    }
    assert_eq!(databases.live_pools(), 2);

    drop(databases);
    db1.drop_now().await;
    db2.drop_now().await;
}

#[tokio::test]
async fn a_thousand_lookups_of_distinct_tenants_keep_the_pool_count_within_its_bound() {
    const TENANTS: usize = 1_000;
    const MAX_POOLS: usize = 8;
    let (db1, db2) = (
        test_database("routing db bound 1").await,
        test_database("routing db bound 2").await,
    );
    // Each tenant has settings of its own (its application_name), as with a database per
    // tenant: 1,000 distinct pool targets, spread over two real databases.
    let app = |i: usize| format!("{}_{i}", db1.name());
    let allowlist = Allowlist::new();
    let registry = DatabaseRegistry::new();
    for i in 0..TENANTS {
        let key = format!("t{i}");
        allowlist.insert(&key, &format!("tenant_{i}")).unwrap();
        let home = if i % 2 == 0 { &db1 } else { &db2 };
        registry
            .insert(&key, &home.url_with_application_name(&app(i)))
            .unwrap();
    }
    // Allowlisted, but in no database.
    for i in 0..50 {
        allowlist
            .insert(&format!("unplaced{i}"), &format!("unplaced_{i}"))
            .unwrap();
    }
    assert_eq!(registry.databases(), TENANTS);
    let databases = TenantDatabases::builder(registry)
        .max_pools(MAX_POOLS)
        .configure_pools(|pool| pool.max_size(1))
        .build()
        .unwrap();

    for i in 0..TENANTS {
        let tenant = resolve(&allowlist, &format!("t{i}"));
        let db = databases.get(&tenant).await.unwrap();
        let home = if i % 2 == 0 { db1.name() } else { db2.name() };
        assert_eq!(whereabouts(&db).await, (home.to_owned(), app(i)));
        drop(db);
        assert!(
            databases.live_pools() <= MAX_POOLS,
            "{} pools after lookup {i}",
            databases.live_pools()
        );

        if i % 20 == 0 {
            let before = databases.stats();
            let unplaced = resolve(&allowlist, &format!("unplaced{}", i / 20));
            match databases.get(&unplaced).await {
                Err(Error::UnknownTenantDatabase { key }) => assert_eq!(key, unplaced.key()),
                other => panic!("expected UnknownTenantDatabase, got {other:?}"),
            }
            assert_eq!(
                databases.stats(),
                before,
                "an unknown tenant changed the pools"
            );
        }
    }
    let stats = databases.stats();
    assert_eq!(stats.live_pools, MAX_POOLS);
    assert_eq!(stats.pools_opened, TENANTS as u64);
    assert_eq!(stats.pools_closed, (TENANTS - MAX_POOLS) as u64);
    assert!(stats.connections <= MAX_POOLS, "{stats:?}");

    // The closed pools really closed their connections on the server.
    let admin = connect_to(&scratch_cluster().await.url()).await;
    let open = settle_backends(
        &admin,
        &[db1.name(), db2.name()],
        db1.name(),
        MAX_POOLS as i64,
    )
    .await;
    assert!(open <= MAX_POOLS as i64, "{open} backends still open");

    drop(databases);
    db1.drop_now().await;
    db2.drop_now().await;
}

#[tokio::test]
async fn when_full_the_least_recently_used_idle_pool_is_closed_and_busy_pools_are_kept() {
    let db1 = test_database("routing db eviction").await;
    let keys = ["a", "b", "c", "d"];
    let app = |key: &str| format!("{}_{key}", db1.name());
    let allowlist = Allowlist::from_pairs(keys.map(|k| (k, format!("tenant_{k}")))).unwrap();
    let registry = DatabaseRegistry::new();
    for key in keys {
        registry
            .insert(key, &db1.url_with_application_name(&app(key)))
            .unwrap();
    }
    let databases = TenantDatabases::builder(registry)
        .max_pools(2)
        .busy_timeout(Duration::ZERO)
        .build()
        .unwrap();
    let tenant = |key: &str| resolve(&allowlist, key);

    let held_a = databases.get(&tenant("a")).await.unwrap(); // a: busy, least recently used
    drop(databases.get(&tenant("b")).await.unwrap()); //          b: idle
    let held_c = databases.get(&tenant("c")).await.unwrap(); // full: b is closed, not a
    assert!(databases.pool_status(&tenant("a")).is_some());
    assert!(databases.pool_status(&tenant("b")).is_none());
    assert!(databases.pool_status(&tenant("c")).is_some());
    let admin = connect_to(&scratch_cluster().await.url()).await;
    assert_eq!(
        settle_backends(&admin, &[db1.name()], &app("b"), 0).await,
        0
    );
    assert_eq!(backends(&admin, &[db1.name()], &app("a")).await, 1);

    // Every pool has a connection out: a new one cannot be made (at once, with a zero busy
    // timeout), and nothing changes.
    let before = databases.stats();
    match databases.get(&tenant("d")).await {
        Err(Error::TenantPoolsBusy { max_pools }) => assert_eq!(max_pools, 2),
        other => panic!("expected TenantPoolsBusy, got {other:?}"),
    }
    assert_eq!(databases.stats(), before);
    // A tenant whose pool is open is still served.
    assert_eq!(
        whereabouts(&databases.get(&tenant("c")).await.unwrap())
            .await
            .1,
        app("c")
    );

    drop(held_a);
    let held_d = databases.get(&tenant("d")).await.unwrap(); // a is idle now: closed for d
    assert_eq!(whereabouts(&held_d).await.1, app("d"));
    assert!(databases.pool_status(&tenant("a")).is_none());
    assert!(databases.pool_status(&tenant("c")).is_some());
    assert_eq!(databases.live_pools(), 2);

    drop((held_c, held_d));
    assert_eq!(databases.close_idle(), 2);
    assert_eq!(databases.live_pools(), 0);
    assert_eq!(
        settle_backends(&admin, &[db1.name()], db1.name(), 0).await,
        0
    );

    drop(databases);
    db1.drop_now().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lookup_that_needs_a_pool_waits_until_one_is_released() {
    let db1 = test_database("routing db busy wait").await;
    let allowlist = Allowlist::from_pairs([("a", "tenant_a"), ("b", "tenant_b")]).unwrap();
    let registry = DatabaseRegistry::from_pairs([
        ("a", db1.url_with_application_name("busy_wait_a")),
        ("b", db1.url_with_application_name("busy_wait_b")),
    ])
    .unwrap();
    let databases = TenantDatabases::builder(registry)
        .max_pools(1)
        .busy_timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let held_a = databases.get(&resolve(&allowlist, "a")).await.unwrap();

    let waiter = {
        let (databases, b) = (databases.clone(), resolve(&allowlist, "b"));
        tokio::spawn(async move {
            let db = databases.get(&b).await?;
            Ok::<_, Error>(whereabouts(&db).await.1)
        })
    };
    // Give the waiter time to find every pool busy (it cannot finish before `held_a` goes).
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(databases.live_pools(), 1);
    assert!(databases.pool_status(&resolve(&allowlist, "a")).is_some());
    drop(held_a);
    assert_eq!(waiter.await.unwrap().unwrap(), "busy_wait_b");
    assert!(databases.pool_status(&resolve(&allowlist, "a")).is_none());
    assert_eq!(databases.stats().pools_closed, 1);

    drop(databases);
    db1.drop_now().await;
}

#[tokio::test]
async fn tenants_with_the_same_settings_share_one_pool() {
    let (db1, db2) = (
        test_database("routing db shared 1").await,
        test_database("routing db shared 2").await,
    );
    let allowlist = Allowlist::new();
    let registry = DatabaseRegistry::new();
    for i in 0..20 {
        let key = format!("t{i}");
        allowlist.insert(&key, &format!("tenant_{i}")).unwrap();
        let home = if i < 10 { &db1 } else { &db2 };
        registry.insert(&key, &home.url()).unwrap();
    }
    assert_eq!(registry.databases(), 2);
    let databases = TenantDatabases::builder(registry).build().unwrap();
    for i in 0..20 {
        let db = databases
            .get(&resolve(&allowlist, &format!("t{i}")))
            .await
            .unwrap();
        let home = if i < 10 { db1.name() } else { db2.name() };
        assert_eq!(whereabouts(&db).await.0, home);
    }
    let stats = databases.stats();
    assert_eq!((stats.live_pools, stats.pools_opened), (2, 2));

    drop(databases);
    db1.drop_now().await;
    db2.drop_now().await;
}

#[tokio::test]
async fn a_registry_reload_moves_tenants_keeps_unchanged_pools_and_drops_removed_tenants() {
    let (db1, db2) = (
        test_database("routing db reload 1").await,
        test_database("routing db reload 2").await,
    );
    let allowlist =
        Allowlist::from_pairs([("acme", "tenant_acme"), ("globex", "tenant_globex")]).unwrap();
    let (acme, globex) = (resolve(&allowlist, "acme"), resolve(&allowlist, "globex"));
    // The registry table lives in db1; it is read through a runtime client, like any
    // executor.
    let admin1 = connect_to(&db1.url()).await;
    let control = tenant_runtime::Client::connect(&db1.url()).await.unwrap();
    admin1
        .batch_execute(
            "CREATE TABLE public.tenant_databases (
                 tenant_key text PRIMARY KEY,
                 database_url text NOT NULL)",
        )
        .await
        .unwrap();
    admin1
        .execute(
            "INSERT INTO public.tenant_databases VALUES ('acme', $1), ('globex', $2)",
            &[&db1.url(), &db2.url()],
        )
        .await
        .unwrap();
    // Loading builds a registry from the same table, in the shape of
    // `Allowlist::load_from_registry`.
    let loaded = DatabaseRegistry::load_from_table(&control, "public", "tenant_databases")
        .await
        .unwrap();
    assert_eq!((loaded.len(), loaded.databases()), (2, 2));
    assert_eq!(
        loaded.config("globex").unwrap().get_dbname(),
        Some(db2.name())
    );

    let registry = DatabaseRegistry::new();
    let databases = TenantDatabases::builder(registry.clone()).build().unwrap();
    assert!(matches!(
        databases.get(&acme).await,
        Err(Error::UnknownTenantDatabase { .. })
    ));
    assert_eq!(
        registry
            .refresh_from_table(&control, "public", "tenant_databases")
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        whereabouts(&databases.get(&acme).await.unwrap()).await.0,
        db1.name()
    );
    assert_eq!(
        whereabouts(&databases.get(&globex).await.unwrap()).await.0,
        db2.name()
    );
    assert_eq!(databases.stats().pools_opened, 2);

    // Reloading the same rows keeps the pools.
    registry
        .refresh_from_table(&control, "public", "tenant_databases")
        .await
        .unwrap();
    databases.get(&acme).await.unwrap();
    databases.get(&globex).await.unwrap();
    assert_eq!(databases.stats().pools_opened, 2);

    // Move acme to db2 (where globex's pool already is) and remove globex.
    admin1
        .execute(
            "UPDATE public.tenant_databases SET database_url = $1 WHERE tenant_key = 'acme'",
            &[&db2.url()],
        )
        .await
        .unwrap();
    admin1
        .batch_execute("DELETE FROM public.tenant_databases WHERE tenant_key = 'globex'")
        .await
        .unwrap();
    assert_eq!(
        registry
            .refresh_from_table(&control, "public", "tenant_databases")
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        whereabouts(&databases.get(&acme).await.unwrap()).await.0,
        db2.name()
    );
    assert_eq!(databases.stats().pools_opened, 2, "db2's pool was reused");
    match databases.get(&globex).await {
        Err(Error::UnknownTenantDatabase { key }) => assert_eq!(key, "globex"),
        other => panic!("expected UnknownTenantDatabase, got {other:?}"),
    }

    // A bad row changes nothing.
    admin1
        .batch_execute("INSERT INTO public.tenant_databases VALUES ('broken', 'postgres://[')")
        .await
        .unwrap();
    assert!(matches!(
        registry
            .refresh_from_table(&control, "public", "tenant_databases")
            .await,
        Err(Error::Pool(PoolError::InvalidConfig { .. }))
    ));
    assert_eq!(registry.len(), 1);
    assert_eq!(
        whereabouts(&databases.get(&acme).await.unwrap()).await.0,
        db2.name()
    );

    drop((databases, admin1, control));
    db1.drop_now().await;
    db2.drop_now().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_lookups_stay_within_the_bound_and_never_lose_a_pool_in_use() {
    const TENANTS: usize = 60;
    const MAX_POOLS: usize = 6;
    let db1 = test_database("routing db concurrent").await;
    let prefix = db1.name().to_owned();
    let app = move |i: usize| format!("{prefix}_{i}");
    let allowlist = Allowlist::new();
    let registry = DatabaseRegistry::new();
    for i in 0..TENANTS {
        let key = format!("t{i}");
        allowlist.insert(&key, &format!("tenant_{i}")).unwrap();
        registry
            .insert(&key, &db1.url_with_application_name(&app(i)))
            .unwrap();
    }
    let databases = TenantDatabases::builder(registry)
        .max_pools(MAX_POOLS)
        .busy_timeout(Duration::from_secs(60))
        .configure_pools(|pool| pool.max_size(1))
        .build()
        .unwrap();
    let allowlist = Arc::new(allowlist);

    let mut tasks = Vec::new();
    for task in 0..16 {
        let (databases, allowlist, app) = (databases.clone(), allowlist.clone(), app.clone());
        tasks.push(tokio::spawn(async move {
            let mut served = 0;
            for step in 0..40 {
                let i = (task * 7 + step * 13) % TENANTS;
                let tenant = allowlist.resolve(&format!("t{i}")).unwrap();
                // Busy pools are waited for; a pool in use is never closed under a lookup.
                let db = match databases.get(&tenant).await {
                    Ok(db) => db,
                    Err(e) => panic!("lookup of t{i} failed: {e}"),
                };
                assert_eq!(whereabouts(&db).await.1, app(i), "wrong pool for t{i}");
                served += 1;
                assert!(databases.live_pools() <= MAX_POOLS);
            }
            served
        }));
    }
    let mut served = 0;
    for task in tasks {
        served += task.await.unwrap();
    }
    assert_eq!(served, 16 * 40);
    let stats = databases.stats();
    assert!(
        stats.live_pools <= MAX_POOLS && stats.connections <= MAX_POOLS,
        "{stats:?}"
    );
    println!("{served} lookups served, {stats:?}");

    drop(databases);
    db1.drop_now().await;
}
