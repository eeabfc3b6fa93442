//! Faults, on a throwaway cluster of the test's own (never the shared server): every pool
//! connection killed mid-load, the server restarted mid-load. Operations fail with an error
//! or succeed, no row ever lands in or is read from another tenant's schema, and the pool
//! serves again afterwards. And a pool that cannot hand out a connection says so in time.

mod support;

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use support::{
    assert_rows_in_their_schemas, create_tables, run_load, tenants, total, LoadConfig, LoadReport,
};
use tenant_runtime::error::PoolStage;
use tenant_runtime::pool::TenantPoolBuilder;
use tenant_runtime::{Allowlist, Error, Model, TenantPool};
use tenant_tests::{connect_to, database_url, TestSchemas, ThrowawayCluster};

const APP: &str = "tenant_fault_pool";
const TENANTS: usize = 20;
const TASKS: usize = 32;

async fn cluster() -> Arc<ThrowawayCluster> {
    Arc::new(
        tokio::task::spawn_blocking(ThrowawayCluster::start)
            .await
            .unwrap()
            .expect("cannot start a throwaway cluster"),
    )
}

fn pool_on(url: &str) -> TenantPool {
    let mut config: tokio_postgres::Config = url.parse().unwrap();
    config.application_name(APP);
    TenantPoolBuilder::from_config(config)
        .max_size(8)
        .wait_timeout(Some(Duration::from_secs(10)))
        .create_timeout(Some(Duration::from_secs(5)))
        .recycle_timeout(Some(Duration::from_secs(2)))
        .build()
        .unwrap()
}

fn load(ops: usize, seed: u64) -> LoadConfig {
    LoadConfig {
        tasks: TASKS,
        ops,
        seed,
        pause_after_error: Some(Duration::from_millis(20)),
    }
}

/// After the faults: a clean load with no error at all, and every schema holding only its
/// own tenant's rows, between the confirmed and the attempted inserts of both loads.
async fn serves_again(pool: &TenantPool, allowlist: &Allowlist, url: &str, faulty: &LoadReport) {
    let after = run_load(pool, allowlist, load(2_000, 99)).await;
    println!(
        "  after: {} ops ok, {} failed, {} rows checked",
        after.ops_ok, after.ops_failed, after.rows_checked
    );
    assert_eq!(
        after.ops_failed, 0,
        "errors after recovery: {:?}",
        after.sample_errors
    );
    assert_eq!(after.wrong_tenant_rows, 0);
    let mut both = LoadReport {
        confirmed_inserts: faulty.confirmed_inserts.clone(),
        attempted_inserts: faulty.attempted_inserts.clone(),
        ..LoadReport::default()
    };
    for i in 0..both.confirmed_inserts.len() {
        both.confirmed_inserts[i] += after.confirmed_inserts[i];
        both.attempted_inserts[i] += after.attempted_inserts[i];
    }
    assert_rows_in_their_schemas(&connect_to(url).await, allowlist, &both).await;
}

fn print_faulty(what: &str, report: &LoadReport) {
    println!(
        "{what}: {} ops ok, {} failed, {} rows checked, {} wrong-tenant rows, \
         {} confirmed / {} attempted inserts; sample errors: {:?}",
        report.ops_ok,
        report.ops_failed,
        report.rows_checked,
        report.wrong_tenant_rows,
        total(&report.confirmed_inserts),
        total(&report.attempted_inserts),
        &report.sample_errors[..report.sample_errors.len().min(3)],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_every_pool_connection_mid_load_never_crosses_tenants_and_the_pool_recovers() {
    let cluster = cluster().await;
    let url = cluster.url();
    let schemas = TestSchemas::for_url(&url, "faults_kill");
    let allowlist = tenants(|k| schemas.name(k), TENANTS);
    let pool = pool_on(&url);
    create_tables(&pool, &allowlist).await;

    let load_task = {
        let (pool, allowlist) = (pool.clone(), allowlist.clone());
        tokio::spawn(async move { run_load(&pool, &allowlist, load(6_000, 7)).await })
    };
    // Kill every backend of the pool, five times, while the load runs.
    let killer = connect_to(&url).await;
    let mut killed = 0;
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(400)).await;
        let rows = killer
            .query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
                &[&APP],
            )
            .await
            .unwrap();
        killed += rows.iter().filter(|r| r.get::<_, bool>(0)).count();
    }
    let report = load_task.await.unwrap();
    // The last kill may hit idle connections: their termination notices reach the pool's
    // connection tasks a moment later (until then a checkout cannot tell them dead, as with
    // any pool). Recovery is measured from there.
    tokio::time::sleep(Duration::from_millis(500)).await;
    print_faulty("kill mid-load", &report);
    println!("  terminated {killed} pool backends");

    assert!(killed > 0, "the faults hit pool connections");
    assert_eq!(
        report.ops_ok + report.ops_failed,
        6_000,
        "every operation ended"
    );
    assert_eq!(
        report.wrong_tenant_rows, 0,
        "no row read from another tenant's schema"
    );
    for e in &report.sample_errors {
        assert!(
            e.starts_with("database error"),
            "a database error, not a panic: {e}"
        );
    }
    serves_again(&pool, &allowlist, &url, &report).await;

    drop(pool);
    schemas.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarting_the_server_mid_load_never_crosses_tenants_and_the_pool_recovers() {
    let cluster = cluster().await;
    let url = cluster.url();
    let schemas = TestSchemas::for_url(&url, "faults_restart");
    let allowlist = tenants(|k| schemas.name(k), TENANTS);
    let pool = pool_on(&url);
    create_tables(&pool, &allowlist).await;

    let load_task = {
        let (pool, allowlist) = (pool.clone(), allowlist.clone());
        tokio::spawn(async move { run_load(&pool, &allowlist, load(6_000, 11)).await })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let restarting = cluster.clone();
    tokio::task::spawn_blocking(move || restarting.restart())
        .await
        .unwrap()
        .expect("restarting the throwaway cluster");
    let report = load_task.await.unwrap();
    print_faulty("restart mid-load", &report);

    assert_eq!(
        report.ops_ok + report.ops_failed,
        6_000,
        "every operation ended"
    );
    assert!(report.ops_failed > 0, "the restart interrupted the load");
    assert_eq!(
        report.wrong_tenant_rows, 0,
        "no row read from another tenant's schema"
    );
    for e in &report.sample_errors {
        assert!(
            e.starts_with("database error"),
            "a database error, not a panic: {e}"
        );
    }
    serves_again(&pool, &allowlist, &url, &report).await;

    drop(pool);
    schemas.cleanup().await;
}

#[tokio::test]
async fn an_exhausted_pool_times_out_instead_of_hanging() {
    let schemas = TestSchemas::new("faults_exhausted").await;
    let allowlist = Allowlist::from_pairs([("acme", schemas.name("acme"))]).unwrap();
    let acme = allowlist.resolve("acme").unwrap();
    let wait = Duration::from_millis(300);
    let pool = TenantPool::builder(&database_url().await)
        .unwrap()
        .max_size(2)
        .wait_timeout(Some(wait))
        .build()
        .unwrap();
    let held = (
        pool.get(&acme).await.unwrap(),
        pool.get(&acme).await.unwrap(),
    );
    let outcome = tokio::time::timeout(Duration::from_secs(10), pool.get(&acme))
        .await
        .expect("pool.get hung past its wait timeout");
    match outcome {
        Err(Error::PoolTimeout { stage, timeout }) => {
            assert_eq!(stage, PoolStage::Wait);
            assert_eq!(stage.to_string(), "waiting for a free connection");
            assert_eq!(timeout, Some(wait));
        }
        other => panic!("expected PoolTimeout, got {other:?}"),
    }
    assert_eq!(pool.status().size, 2);
    // A connection coming back is handed out again.
    drop(held.0);
    let db = tokio::time::timeout(Duration::from_secs(10), pool.get(&acme))
        .await
        .unwrap()
        .unwrap();
    db.executor()
        .as_tokio_postgres()
        .simple_query("SELECT 1")
        .await
        .unwrap();
    drop((db, held.1));
    pool.close();
    assert!(matches!(pool.get(&acme).await, Err(Error::PoolClosed)));
    schemas.cleanup().await;
}

#[tokio::test]
async fn a_server_that_never_answers_times_out_on_connect() {
    // Accepts TCP connections and never says a word.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let allowlist = Allowlist::from_pairs([("acme", "tenant_acme")]).unwrap();
    let create = Duration::from_millis(300);
    let pool = TenantPool::builder(&format!("postgres://postgres@127.0.0.1:{port}/postgres"))
        .unwrap()
        .create_timeout(Some(create))
        .build()
        .unwrap();
    let outcome = tokio::time::timeout(
        Duration::from_secs(10),
        pool.get(&allowlist.resolve("acme").unwrap()),
    )
    .await
    .expect("pool.get hung past its create timeout");
    match outcome {
        Err(Error::PoolTimeout { stage, timeout }) => {
            assert_eq!(stage, PoolStage::Create);
            assert_eq!(stage.to_string(), "opening a new connection");
            assert_eq!(timeout, Some(create));
        }
        other => panic!("expected PoolTimeout, got {other:?}"),
    }
    drop(silent);
}

#[tokio::test]
async fn a_stopped_server_fails_checkouts_with_an_error_and_a_restarted_one_serves() {
    let cluster = cluster().await;
    let url = cluster.url();
    let schemas = TestSchemas::for_url(&url, "faults_stopped");
    let allowlist = tenants(|k| schemas.name(k), 2);
    let pool = pool_on(&url);
    create_tables(&pool, &allowlist).await;
    let t = allowlist.resolve("t000").unwrap();

    let stopping = cluster.clone();
    tokio::task::spawn_blocking(move || stopping.stop())
        .await
        .unwrap()
        .unwrap();
    let outcome = tokio::time::timeout(Duration::from_secs(20), async {
        let db = pool.get(&t).await?;
        support::Item::query().count(&db).await
    })
    .await
    .expect("a checkout against a stopped server hung");
    let err = outcome.expect_err("the server is down");
    assert!(matches!(err, Error::Db(_)), "{err:?}");

    let starting = cluster.clone();
    tokio::task::spawn_blocking(move || starting.start_again())
        .await
        .unwrap()
        .unwrap();
    let db = pool.get(&t).await.unwrap();
    assert_eq!(support::Item::query().count(&db).await.unwrap(), 0);
    drop(db);
    drop(pool);
    schemas.cleanup().await;
}
