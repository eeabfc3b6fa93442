//! What a pooled connection carries from one checkout to the next.
//!
//! A connection that ran only the library's own statements goes back to the pool and out
//! again without a single statement sent (checked on the server, in `pg_stat_activity`).
//! A connection that was handed out raw (`as_tokio_postgres`, `Db::batch_execute`) is reset
//! in one round trip before its next checkout: no `SET`, role, listener, advisory lock,
//! temporary table, SQL-level prepared statement or open transaction survives it, while the
//! library's statement cache stays valid. Each case uses a pool of one connection, so the
//! next checkout is the same backend (its pid is checked).

use std::time::Duration;

use tenant_runtime::pool::{PooledClient, TenantPoolBuilder};
use tenant_runtime::sql::Template;
use tenant_runtime::{Allowlist, Model, StatementMode, TenantPool};
use tenant_tests::{connect, database_url, TestSchemas};

#[derive(Debug, Clone, PartialEq, Model)]
#[tenant(table = "notes")]
struct Note {
    #[tenant(primary_key, identity)]
    id: i64,
    body: String,
}

struct Fixture {
    schemas: TestSchemas,
    allowlist: Allowlist,
    pool: TenantPool,
    /// The `application_name` of the pool's connections: how an observer finds them.
    app: String,
}

async fn fixture(name: &str, mode: StatementMode) -> Fixture {
    let schemas = TestSchemas::new(name).await;
    let allowlist = Allowlist::from_pairs([
        ("acme", schemas.name("acme")),
        ("globex", schemas.name("globex")),
    ])
    .unwrap();
    let app = schemas.prefix().to_owned();
    let mut config: tokio_postgres::Config = database_url().await.parse().unwrap();
    config.application_name(&app);
    let pool = TenantPoolBuilder::from_config(config)
        .max_size(1)
        .statement_mode(mode)
        .build()
        .unwrap();
    for tenant in allowlist.tenants() {
        let db = pool.get(&tenant).await.unwrap();
        db.create_schema().await.unwrap();
        Note::create_table(&db).await.unwrap();
    }
    Fixture {
        schemas,
        allowlist,
        pool,
        app,
    }
}

async fn backend_pid(conn: &PooledClient) -> i32 {
    conn.as_tokio_postgres()
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0)
}

/// One text value, through the raw client.
async fn probe(conn: &PooledClient, sql: &str) -> String {
    conn.as_tokio_postgres()
        .query_one(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .get(0)
}

/// Whether the connection is outside a transaction block: a simple query's implicit
/// transaction starts with the statement, an open one started earlier.
async fn outside_transaction(conn: &PooledClient) -> bool {
    let messages = conn
        .as_tokio_postgres()
        .simple_query("SELECT now() = statement_timestamp()")
        .await
        .unwrap();
    messages.iter().any(|m| match m {
        tokio_postgres::SimpleQueryMessage::Row(row) => row.get(0) == Some("t"),
        _ => false,
    })
}

/// Runs `setup` as raw SQL on a checked-out connection and returns it; on the next checkout
/// of the same backend, `check` must read what it read before `setup` (and `setup` must
/// have changed it, or the case would prove nothing).
async fn does_not_survive(name: &str, setup: &str, check: &str) {
    let fx = fixture(name, StatementMode::Prepared).await;
    let conn = fx.pool.client().await.unwrap();
    let pid = backend_pid(&conn).await;
    let before = probe(&conn, check).await;
    conn.as_tokio_postgres()
        .batch_execute(setup)
        .await
        .unwrap_or_else(|e| panic!("{setup}: {e}"));
    let during = probe(&conn, check).await;
    assert_ne!(
        during, before,
        "`{setup}` changed nothing that `{check}` sees"
    );
    drop(conn);

    let conn = fx.pool.client().await.unwrap();
    assert_eq!(backend_pid(&conn).await, pid, "the same connection again");
    assert_eq!(
        probe(&conn, check).await,
        before,
        "`{setup}` survived the return to the pool"
    );
    drop(conn);
    fx.schemas.cleanup().await;
}

#[tokio::test]
async fn set_search_path_does_not_survive_a_return_to_the_pool() {
    does_not_survive(
        "pool_reset_search_path",
        "SET search_path TO tenant_acme, public",
        "SELECT current_setting('search_path')",
    )
    .await;
}

#[tokio::test]
async fn an_unqualified_query_cannot_read_the_previous_tenants_table() {
    let fx = fixture("pool_reset_wrong_tenant", StatementMode::Prepared).await;
    let (acme, globex) = (
        fx.allowlist.resolve("acme").unwrap(),
        fx.allowlist.resolve("globex").unwrap(),
    );
    let db = fx.pool.get(&acme).await.unwrap();
    Note {
        id: 0,
        body: "acme's secret".into(),
    }
    .insert(&db)
    .await
    .unwrap();
    // Third-party code for acme points the session at acme's schema and forgets it.
    db.executor()
        .as_tokio_postgres()
        .batch_execute(&format!(
            "SET search_path TO \"{}\"",
            acme.schema().as_str()
        ))
        .await
        .unwrap();
    drop(db);

    // The next request, for globex, runs third-party SQL without schema names.
    let db = fx.pool.get(&globex).await.unwrap();
    let read = db
        .executor()
        .as_tokio_postgres()
        .query("SELECT body FROM notes", &[])
        .await;
    assert!(
        read.is_err(),
        "globex's request read acme's table through a leaked search_path: {read:?}"
    );
    drop(db);
    fx.schemas.cleanup().await;
}

#[tokio::test]
async fn set_role_does_not_survive_a_return_to_the_pool() {
    let schemas = TestSchemas::new("pool_reset_role_name").await;
    let role = schemas.name("role");
    let admin = connect().await;
    admin
        .batch_execute(&format!("CREATE ROLE \"{role}\" NOLOGIN"))
        .await
        .unwrap();
    does_not_survive(
        "pool_reset_role",
        &format!("SET ROLE \"{role}\""),
        "SELECT current_user::text",
    )
    .await;
    admin
        .batch_execute(&format!("DROP ROLE \"{role}\""))
        .await
        .unwrap();
    schemas.cleanup().await;
}

#[tokio::test]
async fn a_set_setting_does_not_survive_a_return_to_the_pool() {
    does_not_survive(
        "pool_reset_guc",
        "SET statement_timeout = '1234ms'",
        "SELECT current_setting('statement_timeout')",
    )
    .await;
}

#[tokio::test]
async fn a_custom_setting_does_not_survive_a_return_to_the_pool() {
    // The pattern of row-level security keyed by a session setting.
    does_not_survive(
        "pool_reset_custom_guc",
        "SET app.tenant = 'acme'",
        "SELECT coalesce(nullif(current_setting('app.tenant', true), ''), '<unset>')",
    )
    .await;
}

#[tokio::test]
async fn listen_does_not_survive_a_return_to_the_pool() {
    does_not_survive(
        "pool_reset_listen",
        "LISTEN tenant_events",
        "SELECT coalesce(string_agg(c, ','), '') FROM pg_listening_channels() AS c",
    )
    .await;
}

#[tokio::test]
async fn an_advisory_lock_does_not_survive_a_return_to_the_pool() {
    does_not_survive(
        "pool_reset_advisory",
        "SELECT pg_advisory_lock(4711)",
        "SELECT count(*)::text FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()",
    )
    .await;
}

#[tokio::test]
async fn a_temp_table_does_not_survive_a_return_to_the_pool() {
    does_not_survive(
        "pool_reset_temp",
        "CREATE TEMP TABLE scratch (x int); INSERT INTO scratch VALUES (1)",
        "SELECT count(*)::text FROM pg_class WHERE relnamespace = pg_my_temp_schema()",
    )
    .await;
}

#[tokio::test]
async fn a_prepared_statement_does_not_survive_a_return_to_the_pool() {
    does_not_survive(
        "pool_reset_prepare",
        "PREPARE leaked (int) AS SELECT $1 + 1",
        "SELECT count(*)::text FROM pg_prepared_statements WHERE from_sql",
    )
    .await;
}

#[tokio::test]
async fn a_cursor_with_hold_does_not_survive_a_return_to_the_pool() {
    does_not_survive(
        "pool_reset_cursor",
        "DECLARE leaked CURSOR WITH HOLD FOR SELECT 1",
        "SELECT count(*)::text FROM pg_cursors",
    )
    .await;
}

#[tokio::test]
async fn an_open_transaction_left_by_raw_access_is_never_handed_out() {
    let fx = fixture("pool_reset_begin", StatementMode::Prepared).await;
    let acme = fx.allowlist.resolve("acme").unwrap();
    let conn = fx.pool.client().await.unwrap();
    let pid = backend_pid(&conn).await;
    conn.as_tokio_postgres()
        .batch_execute("BEGIN")
        .await
        .unwrap();
    Note {
        id: 0,
        body: "never committed".into(),
    }
    .insert(&tenant_runtime::Db::new(&conn, &acme))
    .await
    .unwrap();
    drop(conn);

    let db = fx.pool.get(&acme).await.unwrap();
    assert_ne!(
        backend_pid(db.executor()).await,
        pid,
        "the connection left in a transaction was dropped"
    );
    assert!(
        outside_transaction(db.executor()).await,
        "the connection handed out is outside any transaction"
    );
    assert_eq!(Note::query().count(&db).await.unwrap(), 0);
    drop(db);
    fx.schemas.cleanup().await;
}

/// Every escape hatch that runs SQL of the caller's marks the connection for a reset.
#[tokio::test]
async fn every_raw_escape_hatch_marks_the_connection_for_a_reset() {
    let fx = fixture("pool_reset_hatches", StatementMode::Prepared).await;
    let acme = fx.allowlist.resolve("acme").unwrap();
    let check = "SELECT current_setting('statement_timeout')";
    let before = {
        let conn = fx.pool.client().await.unwrap();
        probe(&conn, check).await
    };
    let set = "SET statement_timeout = '4321ms'";

    // Inside a transaction that commits: a plain SET outlives the transaction.
    let mut db = fx.pool.get(&acme).await.unwrap();
    let tx = db.transaction().await.unwrap();
    tx.executor()
        .as_tokio_postgres()
        .batch_execute(set)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(probe(db.executor(), check).await, "4321ms");
    drop(db);
    let conn = fx.pool.client().await.unwrap();
    assert_eq!(
        probe(&conn, check).await,
        before,
        "Transaction::as_tokio_postgres"
    );
    drop(conn);

    // A caller's template through `Db::batch_execute`.
    let db = fx.pool.get(&acme).await.unwrap();
    db.batch_execute(&Template::builder().sql(set).build())
        .await
        .unwrap();
    // Read it without the raw client (which would mark the connection itself).
    let read = Template::builder()
        .sql("SELECT current_setting('statement_timeout')")
        .build();
    let during: String = db.fetch_one(&read, &[]).await.unwrap().get(0);
    assert_eq!(during, "4321ms");
    drop(db);
    let conn = fx.pool.client().await.unwrap();
    assert_eq!(probe(&conn, check).await, before, "Db::batch_execute");
    drop(conn);
    fx.schemas.cleanup().await;
}

/// `(query, state_change)` of the pool's one backend, as another connection sees it.
async fn last_statement(observer: &tokio_postgres::Client, app: &str) -> (String, String) {
    let row = observer
        .query_one(
            "SELECT query, state_change::text FROM pg_stat_activity WHERE application_name = $1",
            &[&app],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1))
}

async fn checkout_sends_nothing_after_library_statements(mode: StatementMode, name: &str) {
    let fx = fixture(name, mode).await;
    let acme = fx.allowlist.resolve("acme").unwrap();
    let observer = connect().await;
    let mut db = fx.pool.get(&acme).await.unwrap();
    let note = Note {
        id: 0,
        body: "library only".into(),
    }
    .insert(&db)
    .await
    .unwrap();
    let tx = db.transaction().await.unwrap();
    Note::get(&tx, note.id).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(Note::query().count(&db).await.unwrap(), 1);
    drop(db);
    let seen = last_statement(&observer, &fx.app).await;
    assert!(seen.0.contains("count(*)"), "{seen:?}");

    for _ in 0..3 {
        let db = fx.pool.get(&acme).await.unwrap();
        // Give a statement sent by the checkout the time to show.
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(
            last_statement(&observer, &fx.app).await,
            seen,
            "checking out the connection sent a statement"
        );
        drop(db);
    }
    fx.schemas.cleanup().await;
}

#[tokio::test]
async fn checkout_after_only_library_statements_sends_no_statement() {
    checkout_sends_nothing_after_library_statements(StatementMode::Prepared, "pool_reset_quiet")
        .await;
}

#[tokio::test]
async fn checkout_after_only_library_statements_sends_no_statement_in_unnamed_mode() {
    checkout_sends_nothing_after_library_statements(
        StatementMode::Unnamed,
        "pool_reset_quiet_unnamed",
    )
    .await;
}

#[tokio::test]
async fn a_connection_used_raw_is_reset_in_one_statement_on_its_next_checkout() {
    let fx = fixture("pool_reset_one_statement", StatementMode::Prepared).await;
    let observer = connect().await;
    let conn = fx.pool.client().await.unwrap();
    conn.as_tokio_postgres()
        .batch_execute("SET statement_timeout = '1s'")
        .await
        .unwrap();
    drop(conn);
    let before = last_statement(&observer, &fx.app).await;
    let conn = fx.pool.client().await.unwrap();
    let after = last_statement(&observer, &fx.app).await;
    assert_ne!(after, before, "the checkout ran the reset");
    assert!(after.0.contains("RESET ALL"), "{after:?}");
    drop(conn);

    // Reset once: the checkout after that sends nothing again.
    let conn = fx.pool.client().await.unwrap();
    assert_eq!(last_statement(&observer, &fx.app).await, after);
    drop(conn);
    fx.schemas.cleanup().await;
}

#[tokio::test]
async fn the_statement_cache_and_type_lookups_stay_valid_after_a_reset() {
    let fx = fixture("pool_reset_cache", StatementMode::Prepared).await;
    let acme = fx.allowlist.resolve("acme").unwrap();
    let schema = acme.schema().as_str().to_owned();
    let admin = connect().await;
    admin
        .batch_execute(&format!(
            "CREATE TYPE \"{schema}\".mood AS ENUM ('ok'); CREATE TYPE \"{schema}\".tone AS ENUM ('calm')"
        ))
        .await
        .unwrap();
    let db = fx.pool.get(&acme).await.unwrap();
    let note = Note {
        id: 0,
        body: "cached".into(),
    }
    .insert(&db)
    .await
    .unwrap();
    Note::get(&db, note.id).await.unwrap();
    // tokio-postgres prepares (and keeps) its own statement to look up a type it does not
    // know, such as an enum.
    db.executor()
        .as_tokio_postgres()
        .query(&format!("SELECT 'ok'::\"{schema}\".mood"), &[])
        .await
        .unwrap();
    let stats = db.executor().statement_cache().stats();
    drop(db);

    let db = fx.pool.get(&acme).await.unwrap();
    // The library's prepared statements are still there: a hit, not an error.
    assert_eq!(Note::get(&db, note.id).await.unwrap(), Some(note));
    let now = db.executor().statement_cache().stats();
    assert_eq!(
        (now.hits, now.misses, now.len),
        (stats.hits + 1, stats.misses, stats.len)
    );
    // And so is tokio-postgres's type lookup, for a type it has not seen yet.
    let looked_up = db
        .executor()
        .as_tokio_postgres()
        .query(&format!("SELECT 'calm'::\"{schema}\".tone"), &[])
        .await;
    assert!(looked_up.is_ok(), "{looked_up:?}");
    drop(db);
    fx.schemas.cleanup().await;
}

#[tokio::test]
async fn a_library_transaction_dropped_uncommitted_leaves_nothing_open() {
    let fx = fixture("pool_reset_dropped_tx", StatementMode::Prepared).await;
    let acme = fx.allowlist.resolve("acme").unwrap();
    let mut db = fx.pool.get(&acme).await.unwrap();
    let tx = db.transaction().await.unwrap();
    Note {
        id: 0,
        body: "rolled back".into(),
    }
    .insert(&tx)
    .await
    .unwrap();
    drop(tx);
    drop(db);

    let db = fx.pool.get(&acme).await.unwrap();
    assert_eq!(Note::query().count(&db).await.unwrap(), 0);
    assert!(outside_transaction(db.executor()).await);
    drop(db);
    fx.schemas.cleanup().await;
}

#[tokio::test]
async fn a_cancelled_library_transaction_leaves_nothing_open() {
    let fx = fixture("pool_reset_cancelled_tx", StatementMode::Prepared).await;
    let acme = fx.allowlist.resolve("acme").unwrap();
    let sleep = Template::builder().sql("SELECT pg_sleep(0.3)").build();
    {
        let mut db = fx.pool.get(&acme).await.unwrap();
        let work = async {
            let tx = db.transaction().await.unwrap();
            Note {
                id: 0,
                body: "cancelled".into(),
            }
            .insert(&tx)
            .await
            .unwrap();
            tx.fetch_all(&sleep, &[]).await.unwrap();
            tx.commit().await.unwrap();
        };
        // The request times out while the statement runs: the future is dropped mid-way.
        assert!(tokio::time::timeout(Duration::from_millis(100), work)
            .await
            .is_err());
    }
    let db = fx.pool.get(&acme).await.unwrap();
    assert_eq!(Note::query().count(&db).await.unwrap(), 0);
    assert!(outside_transaction(db.executor()).await);
    drop(db);
    fx.schemas.cleanup().await;
}

#[tokio::test]
async fn a_task_that_panics_inside_a_transaction_leaves_nothing_open() {
    let fx = fixture("pool_reset_panic", StatementMode::Prepared).await;
    let acme = fx.allowlist.resolve("acme").unwrap();
    let (pool, tenant) = (fx.pool.clone(), acme.clone());
    let task = tokio::spawn(async move {
        let mut db = pool.get(&tenant).await.unwrap();
        let tx = db.transaction().await.unwrap();
        Note {
            id: 0,
            body: "panicked".into(),
        }
        .insert(&tx)
        .await
        .unwrap();
        panic!("a bug in the request handler");
    });
    assert!(task.await.unwrap_err().is_panic());

    let db = fx.pool.get(&acme).await.unwrap();
    assert_eq!(Note::query().count(&db).await.unwrap(), 0);
    assert!(outside_transaction(db.executor()).await);
    drop(db);
    fx.schemas.cleanup().await;
}

async fn setting(db: &tenant_runtime::pool::PooledDb) -> String {
    let pg = db.executor().as_tokio_postgres();
    let row = pg.query_one("SHOW plan_cache_mode", &[]).await.unwrap();
    row.get(0)
}

/// Server settings for every pooled connection go in the connection's startup options
/// (`Config::options`, or `options=-c ...` in the URL), not in a `SET` on a raw handout: the
/// reset of a raw handout (`RESET ALL`) returns to them, so they hold for every checkout.
#[tokio::test]
async fn settings_from_the_startup_options_hold_on_every_checkout_and_survive_a_reset() {
    let schemas = TestSchemas::new("pool_reset_options").await;
    let allowlist = Allowlist::from_pairs([("acme", schemas.name("acme"))]).unwrap();
    let acme = allowlist.resolve("acme").unwrap();
    let mut config: tokio_postgres::Config = database_url().await.parse().unwrap();
    config.options("-c plan_cache_mode=force_generic_plan");
    let pool = TenantPoolBuilder::from_config(config)
        .max_size(1)
        .build()
        .unwrap();
    let db = pool.get(&acme).await.unwrap();
    assert_eq!(setting(&db).await, "force_generic_plan");
    // A raw SET changes it for this checkout only...
    db.executor()
        .as_tokio_postgres()
        .batch_execute("SET plan_cache_mode = force_custom_plan")
        .await
        .unwrap();
    assert_eq!(setting(&db).await, "force_custom_plan");
    drop(db);
    // ...the reset before the next checkout returns to the startup options.
    let db = pool.get(&acme).await.unwrap();
    assert_eq!(setting(&db).await, "force_generic_plan");
    drop(db);
    drop(pool);
    schemas.cleanup().await;
}
