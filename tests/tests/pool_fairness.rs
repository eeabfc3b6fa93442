//! Fairness between tenants on one `TenantPool`: `max_per_tenant` caps the connections one
//! tenant has checked out, a burst of one tenant waits for its own connections while other
//! tenants get through, and a wait past the timeout is a typed `PoolTimeout` that names the
//! cap.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tenant_runtime::error::{PoolError, PoolStage};
use tenant_runtime::sql::Template;
use tenant_runtime::{Error, TenantPool};
use tenant_tests::{database_url, TestSchemas};

async fn pool(max_size: usize, max_per_tenant: usize, wait: Duration) -> TenantPool {
    TenantPool::builder(&database_url().await)
        .unwrap()
        .max_size(max_size)
        .max_per_tenant(Some(max_per_tenant))
        .wait_timeout(Some(wait))
        .build()
        .unwrap()
}

fn sleep_ms(ms: u32) -> Template {
    Template::builder()
        .sql(&format!("SELECT pg_sleep({ms} / 1000.0)::text"))
        .build()
}

#[tokio::test]
async fn the_cap_holds_under_64_tasks_of_one_tenant_while_another_tenant_gets_through() {
    let schemas = TestSchemas::new("pool_fair_cap").await;
    let tenants = schemas.allowlist(&["busy", "quiet"]);
    let busy = tenants.resolve("busy").unwrap();
    let quiet = tenants.resolve("quiet").unwrap();
    const CAP: usize = 3;
    let pool = pool(8, CAP, Duration::from_secs(30)).await;
    assert_eq!(pool.max_per_tenant(), Some(CAP));
    let in_use = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..64 {
        let (pool, busy) = (pool.clone(), busy.clone());
        let (in_use, most, done) = (in_use.clone(), most.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            let db = pool.get(&busy).await.unwrap();
            let now = in_use.fetch_add(1, Ordering::SeqCst) + 1;
            most.fetch_max(now, Ordering::SeqCst);
            db.fetch_one(&sleep_ms(20), &[]).await.unwrap();
            in_use.fetch_sub(1, Ordering::SeqCst);
            drop(db);
            done.fetch_add(1, Ordering::SeqCst);
        }));
    }
    // The burst is under way: the busy tenant holds its cap and has tasks queued behind it.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let quiet_db = tokio::time::timeout(Duration::from_secs(2), pool.get(&quiet))
        .await
        .expect("the quiet tenant is not starved")
        .unwrap();
    let finished_when_quiet_got_in = done.load(Ordering::SeqCst);
    quiet_db.fetch_one(&sleep_ms(1), &[]).await.unwrap();
    drop(quiet_db);
    for task in tasks {
        task.await.unwrap();
    }
    assert!(
        finished_when_quiet_got_in < 64,
        "the quiet tenant got in during the burst ({finished_when_quiet_got_in} of 64 done)"
    );
    assert_eq!(
        most.load(Ordering::SeqCst),
        CAP,
        "the cap is reached and never passed"
    );
    assert_eq!(done.load(Ordering::SeqCst), 64);
    // The burst used at most CAP connections of the busy tenant (plus the quiet one's).
    assert!(pool.status().size <= CAP + 1, "{:?}", pool.status());
    schemas.cleanup().await;
}

#[tokio::test]
async fn a_wait_past_the_timeout_at_the_cap_is_a_typed_pool_timeout_naming_the_cap() {
    let schemas = TestSchemas::new("pool_fair_timeout").await;
    let tenants = schemas.allowlist(&["acme", "globex"]);
    let acme = tenants.resolve("acme").unwrap();
    let wait = Duration::from_millis(150);
    let pool = pool(4, 1, wait).await;
    let held = pool.get(&acme).await.unwrap();
    let started = std::time::Instant::now();
    let refused = pool.get(&acme).await;
    let waited = started.elapsed();
    match refused {
        Err(ref e @ Error::PoolTimeout { stage, timeout }) => {
            assert_eq!(stage, PoolStage::TenantCap { max_per_tenant: 1 });
            assert_eq!(timeout, Some(wait));
            let message = e.to_string();
            assert!(message.contains("max_per_tenant"), "{message}");
            assert!(message.contains("1 checked out"), "{message}");
            // The advice is about the tenant's cap, not the pool's size.
            assert!(message.contains("raise max_per_tenant"), "{message}");
            assert!(!message.contains("raise the pool's max_size"), "{message}");
        }
        other => panic!(
            "expected a PoolTimeout at the tenant cap, got {:?}",
            other.map(|_| ())
        ),
    }
    assert!(waited >= wait, "waited {waited:?}");
    // Another tenant is not held up by acme's cap.
    let globex = pool.get(&tenants.resolve("globex").unwrap()).await.unwrap();
    drop(globex);
    // Once acme's connection is back, acme gets one again.
    drop(held);
    let again = pool.get(&acme).await.unwrap();
    again.fetch_one(&sleep_ms(1), &[]).await.unwrap();
    drop(again);
    schemas.cleanup().await;
}

#[tokio::test]
async fn a_cap_of_zero_is_refused_when_the_pool_is_built() {
    let built = TenantPool::builder(&database_url().await)
        .unwrap()
        .max_per_tenant(Some(0))
        .build();
    match built {
        Err(Error::Pool(PoolError::InvalidConfig { reason })) => {
            assert!(reason.contains("max_per_tenant"), "{reason}")
        }
        other => panic!("expected InvalidConfig, got {other:?}"),
    }
}

/// Polls `pool.status()` until `ready` holds (at most 5 s).
async fn status_when(
    pool: &TenantPool,
    ready: impl Fn(&tenant_runtime::pool::PoolStatus) -> bool,
) -> tenant_runtime::pool::PoolStatus {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let status = pool.status();
        if ready(&status) || std::time::Instant::now() > deadline {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn status_counts_the_callers_waiting_on_their_tenants_cap() {
    let schemas = TestSchemas::new("pool_fair_status").await;
    let tenants = schemas.allowlist(&["acme", "globex"]);
    let acme = tenants.resolve("acme").unwrap();
    let pool = pool(8, 1, Duration::from_secs(30)).await;
    let held = pool.get(&acme).await.unwrap();
    let mut waiters = Vec::new();
    for _ in 0..3 {
        let (pool, acme) = (pool.clone(), acme.clone());
        waiters.push(tokio::spawn(async move {
            let db = pool.get(&acme).await.unwrap();
            db.fetch_one(&sleep_ms(1), &[]).await.unwrap();
        }));
    }
    let status = status_when(&pool, |s| s.waiting == 3).await;
    assert_eq!(
        (status.waiting, status.waiting_on_tenant_cap),
        (3, 3),
        "{status:?}"
    );
    // A wait given up by its caller (its future dropped) is no longer counted.
    let given_up = tokio::time::timeout(Duration::from_millis(50), pool.get(&acme)).await;
    assert!(
        given_up.is_err(),
        "the cap is full: the get is still waiting"
    );
    assert_eq!(pool.status().waiting, 3, "{:?}", pool.status());
    drop(held);
    for w in waiters {
        w.await.unwrap();
    }
    let status = pool.status();
    assert_eq!(
        (status.waiting, status.waiting_on_tenant_cap),
        (0, 0),
        "{status:?}"
    );
    schemas.cleanup().await;
}

#[tokio::test]
async fn a_full_pool_is_a_timeout_whose_advice_is_the_pools_size_and_a_dropped_wait_is_uncounted() {
    let schemas = TestSchemas::new("pool_fair_full").await;
    let tenants = schemas.allowlist(&["acme", "globex"]);
    let (acme, globex) = (
        tenants.resolve("acme").unwrap(),
        tenants.resolve("globex").unwrap(),
    );
    let pool = pool(1, 1, Duration::from_millis(100)).await;
    let held = pool.get(&acme).await.unwrap();
    // globex is under its cap: it waits for the pool, not for its own connections.
    match pool.get(&globex).await {
        Err(ref e @ Error::PoolTimeout { stage, .. }) => {
            assert_eq!(stage, PoolStage::Wait);
            let message = e.to_string();
            assert!(message.contains("raise the pool's max_size"), "{message}");
            assert!(!message.contains("max_per_tenant"), "{message}");
        }
        other => panic!(
            "expected a PoolTimeout waiting for the pool, got {:?}",
            other.map(|_| ())
        ),
    }
    let given_up = tokio::time::timeout(Duration::from_millis(20), pool.get(&globex)).await;
    assert!(
        given_up.is_err(),
        "the pool is full: the get is still waiting"
    );
    let status = pool.status();
    assert_eq!(
        (status.waiting, status.waiting_on_tenant_cap),
        (0, 0),
        "{status:?}"
    );
    drop(held);
    schemas.cleanup().await;
}
