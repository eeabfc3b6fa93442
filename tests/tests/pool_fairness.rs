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
