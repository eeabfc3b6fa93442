//! Isolation under load: many tasks, many tenants, one pool, every row tagged with its tenant.

mod support;

use std::time::Duration;

use support::{assert_rows_in_their_schemas, create_tables, run_load, tenants, total, LoadConfig};
use tenant_runtime::{StatementMode, TenantPool};
use tenant_tests::{connect, database_url, TestSchemas};

const TENANTS: usize = 50;
const TASKS: usize = 64;
const OPS: usize = 20_000;

async fn isolated_under_load(mode: StatementMode, name: &str) {
    let schemas = TestSchemas::new(name).await;
    let allowlist = tenants(|k| schemas.name(k), TENANTS);
    let pool = TenantPool::builder(&database_url().await)
        .unwrap()
        .max_size(12)
        .statement_mode(mode)
        .wait_timeout(Some(Duration::from_secs(60)))
        .build()
        .unwrap();
    create_tables(&pool, &allowlist).await;

    let report = run_load(
        &pool,
        &allowlist,
        LoadConfig {
            tasks: TASKS,
            ops: OPS,
            seed: 0x007e_4a47,
            pause_after_error: None,
        },
    )
    .await;
    println!(
        "{mode:?}: {} ops ok, {} failed, {} statements ({} reads, {} writes), {} rows checked, \
         {} inserts confirmed; {TASKS} tasks, {TENANTS} tenants, pool {:?}",
        report.ops_ok,
        report.ops_failed,
        report.statements,
        report.reads,
        report.writes,
        report.rows_checked,
        total(&report.confirmed_inserts),
        pool.status(),
    );

    assert_eq!(report.ops_failed, 0, "errors: {:?}", report.sample_errors);
    assert_eq!(report.ops_ok, OPS as u64);
    assert_eq!(report.wrong_tenant_rows, 0, "rows read in the wrong schema");
    assert!(report.rows_checked > OPS as u64 / 2, "the load read rows");
    assert!(pool.status().size <= 12);
    // Nothing can hide a commit here: confirmed == attempted, and every schema holds exactly
    // its own tenant's inserts.
    assert_eq!(report.confirmed_inserts, report.attempted_inserts);
    assert_rows_in_their_schemas(&connect().await, &allowlist, &report).await;

    drop(pool);
    schemas.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_tasks_over_fifty_tenants_never_touch_another_tenants_rows() {
    isolated_under_load(StatementMode::Prepared, "pool_load_prepared").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_load_in_unnamed_mode_never_touches_another_tenants_rows() {
    isolated_under_load(StatementMode::Unnamed, "pool_load_unnamed").await;
}
