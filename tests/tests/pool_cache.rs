//! One pooled connection serving 2,000 tenants × 5 statements: the statement cache stays at
//! its bound, on the client and on the server, and every result is right.

use tenant_runtime::pool::PooledClient;
use tenant_runtime::sql::Template;
use tenant_runtime::Slot;
use tenant_runtime::{Allowlist, Db, StatementMode, TenantPool};
use tenant_tests::{connect, database_url, TestSchemas};

const TENANTS: usize = 2_000;
const CAPACITY: usize = 100;

fn template(before: &'static str, after: &'static str) -> Template {
    Template::builder()
        .sql(before)
        .slot(Slot::Tenant)
        .sql(after)
        .build()
}

/// The five statements every tenant runs, in order.
struct Statements {
    read_tag: Template,
    count: Template,
    insert: Template,
    update: Template,
    delete: Template,
}

impl Statements {
    fn new() -> Statements {
        Statements {
            read_tag: template("SELECT v FROM ", ".kv WHERE k = 0"),
            count: template("SELECT count(*) FROM ", ".kv"),
            insert: template("INSERT INTO ", ".kv (k, v) VALUES ($1, $2) RETURNING v"),
            update: template("UPDATE ", ".kv SET v = v || $2 WHERE k = $1"),
            delete: template("DELETE FROM ", ".kv WHERE k = $1 AND v = $2"),
        }
    }

    /// Runs the five statements for `db`'s tenant and checks every result.
    async fn run(&self, db: &Db<&PooledClient>) {
        let key = db.tenant().key();
        let tag: String = db.fetch_one(&self.read_tag, &[]).await.unwrap().get(0);
        assert_eq!(tag, key, "read its own row");
        let n: i64 = db.fetch_one(&self.count, &[]).await.unwrap().get(0);
        assert_eq!(n, 1, "{key}: one row before");
        let v: String = db
            .fetch_one(&self.insert, &[&1i32, &key])
            .await
            .unwrap()
            .get(0);
        assert_eq!(v, key);
        assert_eq!(db.execute(&self.update, &[&1i32, &"!"]).await.unwrap(), 1);
        let gone = db
            .execute(&self.delete, &[&1i32, &format!("{key}!")])
            .await
            .unwrap();
        assert_eq!(gone, 1, "{key}: deleted the row it inserted and updated");
    }
}

/// Named prepared statements this session holds on the server (a simple query, which
/// prepares nothing itself).
async fn server_prepared_statements(conn: &PooledClient) -> usize {
    let messages = conn
        .as_tokio_postgres()
        .simple_query("SELECT count(*) FROM pg_prepared_statements")
        .await
        .unwrap();
    messages
        .iter()
        .find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(|v| v.parse().unwrap()),
            _ => None,
        })
        .unwrap()
}

async fn create_kv_schemas(allowlist: &Allowlist) {
    let client = connect().await;
    client
        .batch_execute("SET synchronous_commit = off")
        .await
        .unwrap();
    let tenants = allowlist.tenants();
    // 100 schemas per implicit transaction: a few seconds for all.
    for chunk in tenants.chunks(100) {
        let mut sql = String::new();
        for t in chunk {
            let s = t.schema();
            sql.push_str(&format!(
                "CREATE SCHEMA {s}; CREATE TABLE {s}.kv (k int, v text); \
                 INSERT INTO {s}.kv VALUES (0, '{}');",
                t.key()
            ));
        }
        client.batch_execute(&sql).await.unwrap();
    }
}

/// A pool of one connection, and that connection. Commits do not wait for the disk (this
/// session only): the test is about statements, not durability, and 6,000 fsyncs on a shared
/// disk would take most of a minute.
async fn one_connection(mode: StatementMode, prepare_threshold: u32) -> (TenantPool, PooledClient) {
    let pool = TenantPool::builder(&database_url().await)
        .unwrap()
        .max_size(1)
        .statement_cache_capacity(CAPACITY)
        .statement_mode(mode)
        .prepare_threshold(prepare_threshold)
        .build()
        .unwrap();
    let conn = pool.client().await.unwrap();
    conn.as_tokio_postgres()
        .batch_execute("SET synchronous_commit = off")
        .await
        .unwrap();
    (pool, conn)
}

#[tokio::test]
async fn one_connection_serves_two_thousand_tenants_within_its_statement_cache_bound() {
    let schemas = TestSchemas::new("pool_cache").await;
    let allowlist = Allowlist::from_pairs(
        (0..TENANTS).map(|i| (format!("k{i:04}"), schemas.name(&format!("k{i:04}")))),
    )
    .unwrap();
    let started = std::time::Instant::now();
    create_kv_schemas(&allowlist).await;
    println!("created {TENANTS} schemas in {:?}", started.elapsed());
    let statements = Statements::new();
    let tenants = allowlist.tenants();

    // Prepared mode, prepare threshold 1: every statement prepared on first use, evicted
    // (and closed) past the bound.
    let started = std::time::Instant::now();
    let (pool, conn) = one_connection(StatementMode::Prepared, 1).await;
    let mut most_on_server = 0;
    for (i, tenant) in tenants.iter().enumerate() {
        statements.run(&Db::new(&conn, tenant)).await;
        if i % 50 == 49 {
            let stats = conn.statement_cache().stats();
            assert!(stats.len <= CAPACITY, "{stats:?}");
            let on_server = server_prepared_statements(&conn).await;
            assert!(
                on_server <= CAPACITY,
                "{on_server} statements on the server"
            );
            most_on_server = most_on_server.max(on_server);
        }
    }
    println!("prepared mode ran in {:?}", started.elapsed());
    let stats = conn.statement_cache().stats();
    println!("prepared mode after {TENANTS} tenants × 5: {stats:?}, at most {most_on_server} on the server");
    assert_eq!(stats.capacity, CAPACITY);
    assert_eq!(stats.len, CAPACITY);
    assert_eq!(
        stats.misses,
        5 * TENANTS as u64,
        "every (template, schema) is new"
    );
    assert_eq!(stats.renders, stats.misses, "rendered once per miss");
    assert_eq!(stats.prepares, stats.misses, "prepared on first use");
    assert_eq!(stats.evictions, 5 * TENANTS as u64 - CAPACITY as u64);
    assert_eq!(most_on_server, CAPACITY);
    assert_eq!(
        stats.prepared,
        server_prepared_statements(&conn).await,
        "the cache's count of prepared statements is the server's"
    );

    // The last 20 tenants' statements are the ones kept: running them again only hits.
    for tenant in &tenants[TENANTS - CAPACITY / 5..] {
        statements.run(&Db::new(&conn, tenant)).await;
    }
    let again = conn.statement_cache().stats();
    assert_eq!(again.hits - stats.hits, CAPACITY as u64);
    assert_eq!(again.misses, stats.misses);
    assert_eq!(again.renders, stats.renders);
    drop(conn);
    drop(pool);

    // Prepared mode, default threshold (2): a statement that does not come back while cached
    // is never prepared (one round trip each, nothing named on the server); one that does
    // is prepared on its second use, then hits.
    let started = std::time::Instant::now();
    let (pool, conn) = one_connection(
        StatementMode::Prepared,
        tenant_runtime::exec::StatementCache::DEFAULT_PREPARE_THRESHOLD,
    )
    .await;
    for (i, tenant) in tenants.iter().enumerate() {
        statements.run(&Db::new(&conn, tenant)).await;
        if i % 100 == 99 {
            assert!(conn.statement_cache().stats().len <= CAPACITY);
            assert_eq!(server_prepared_statements(&conn).await, 0);
        }
    }
    println!("adaptive prepared mode ran in {:?}", started.elapsed());
    let stats = conn.statement_cache().stats();
    println!("adaptive prepared mode after {TENANTS} tenants × 5: {stats:?}");
    assert_eq!(stats.misses, 5 * TENANTS as u64);
    assert_eq!(stats.prepares, 0, "no statement came back while cached");
    assert_eq!(
        (stats.prepared, stats.len),
        (0, CAPACITY),
        "held as SQL text only"
    );
    assert_eq!(
        stats.evictions + stats.rejections,
        5 * TENANTS as u64 - CAPACITY as u64,
        "past the bound, each miss evicted a statement or was not admitted"
    );
    // From an empty cache (a full one admits only what is used more often than what it
    // would evict: see the statement cache's unit tests), a statement used again while
    // cached is prepared on that second use, once.
    conn.statement_cache().clear();
    let stats = conn.statement_cache().stats();
    let last = &tenants[TENANTS - CAPACITY / 5..];
    for tenant in last {
        statements.run(&Db::new(&conn, tenant)).await;
    }
    for tenant in last {
        statements.run(&Db::new(&conn, tenant)).await;
    }
    let second = conn.statement_cache().stats();
    assert_eq!(second.hits - stats.hits, CAPACITY as u64);
    assert_eq!(
        second.prepares, CAPACITY as u64,
        "prepared on the second use"
    );
    assert_eq!(server_prepared_statements(&conn).await, CAPACITY);
    assert_eq!(second.prepared, CAPACITY);
    for tenant in last {
        statements.run(&Db::new(&conn, tenant)).await;
    }
    let third = conn.statement_cache().stats();
    assert_eq!(third.prepares, CAPACITY as u64, "prepared once");
    assert_eq!(third.misses, stats.misses + CAPACITY as u64);
    assert_eq!(third.renders, stats.renders + CAPACITY as u64);
    drop(conn);
    drop(pool);

    // Unnamed (pooler-safe) mode: the rendered SQL is cached under the same bound, and the
    // server never holds a named statement.
    let (pool, conn) = one_connection(StatementMode::Unnamed, 1).await;
    for (i, tenant) in tenants.iter().enumerate() {
        statements.run(&Db::new(&conn, tenant)).await;
        if i % 100 == 99 {
            assert!(conn.statement_cache().stats().len <= CAPACITY);
            assert_eq!(server_prepared_statements(&conn).await, 0);
        }
    }
    let stats = conn.statement_cache().stats();
    println!("unnamed mode after {TENANTS} tenants × 5: {stats:?}");
    assert_eq!(stats.len, CAPACITY);
    assert_eq!(stats.renders, 5 * TENANTS as u64);
    assert_eq!(
        stats.prepares, 0,
        "the threshold does not apply: nothing is prepared"
    );
    assert_eq!(
        stats.evictions + stats.rejections,
        5 * TENANTS as u64 - CAPACITY as u64
    );
    drop(conn);
    drop(pool);

    // 100 schemas per transaction: dropping 2,000 one by one would take most of a minute.
    let client = connect().await;
    client
        .batch_execute("SET synchronous_commit = off")
        .await
        .unwrap();
    for chunk in tenants.chunks(100) {
        let sql: String = chunk
            .iter()
            .map(|t| format!("DROP SCHEMA {} CASCADE;", t.schema()))
            .collect();
        client.batch_execute(&sql).await.unwrap();
    }
    schemas.cleanup().await;
}
