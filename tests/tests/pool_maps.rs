//! Schema maps at three levels on a pool (pool default, one handle, one statement), narrowest
//! wins, each level for the slots it maps.

use tenant_runtime::sql::Template;
use tenant_runtime::{Allowlist, Model, SchemaMap, Slot, StatementMode, TenantPool};
use tenant_tests::{connect, database_url, TestSchemas};

/// Lives in the `shared` slot.
#[derive(Debug, Clone, PartialEq, Model)]
#[tenant(table = "plans", schema = "shared")]
struct Plan {
    #[tenant(primary_key)]
    code: String,
}

/// Lives in the `audit` slot.
#[derive(Debug, Clone, PartialEq, Model)]
#[tenant(table = "audit_log", schema = "audit")]
struct AuditEntry {
    #[tenant(primary_key)]
    code: String,
}

/// `SELECT code FROM {shared}.plans` built at run time, as a query would be.
fn plan_codes() -> Template {
    Template::builder()
        .sql("SELECT code FROM ")
        .slot(Slot::Named("shared"))
        .sql(".plans")
        .build()
}

struct Fixture {
    schemas: TestSchemas,
    allowlist: Allowlist,
}

/// Schemas `pool`, `handle`, `stmt` each with a `plans` and an `audit_log` table whose one
/// row names the schema, so a read shows which schema a slot was filled with.
async fn fixture(name: &str) -> Fixture {
    let schemas = TestSchemas::new(name).await;
    let client = connect().await;
    for level in ["pool", "handle", "stmt"] {
        let s = schemas.name(level);
        client
            .batch_execute(&format!(
                "CREATE SCHEMA {s};
                 CREATE TABLE {s}.plans (code text PRIMARY KEY);
                 INSERT INTO {s}.plans VALUES ('{level}');
                 CREATE TABLE {s}.audit_log (code text PRIMARY KEY);
                 INSERT INTO {s}.audit_log VALUES ('{level}');"
            ))
            .await
            .unwrap();
    }
    let allowlist = Allowlist::from_pairs([("acme", schemas.name("acme"))]).unwrap();
    Fixture { schemas, allowlist }
}

fn map(fx: &Fixture, pairs: &[(&str, &str)]) -> SchemaMap {
    pairs.iter().fold(SchemaMap::new(), |m, (slot, level)| {
        m.with(slot, &fx.schemas.name(level)).unwrap()
    })
}

async fn pool(default: SchemaMap, mode: StatementMode) -> TenantPool {
    TenantPool::builder(&database_url().await)
        .unwrap()
        .max_size(2)
        .schema_map(default)
        .statement_mode(mode)
        .build()
        .unwrap()
}

fn codes_of(rows: Vec<tokio_postgres::Row>) -> Vec<String> {
    rows.iter().map(|r| r.get(0)).collect()
}

#[tokio::test]
async fn the_pool_default_map_fills_named_slots_on_every_connection() {
    let fx = fixture("pool_maps_default").await;
    let pool = pool(map(&fx, &[("shared", "pool")]), StatementMode::Prepared).await;
    let acme = fx.allowlist.resolve("acme").unwrap();
    assert_eq!(
        pool.schema_map().get("shared").unwrap().as_str(),
        fx.schemas.name("pool")
    );
    // Two handles at once: two connections, both with the pool's map.
    let a = pool.get(&acme).await.unwrap();
    let b = pool.get(&acme).await.unwrap();
    for db in [&a, &b] {
        assert_eq!(db.executor().schema_map(), pool.schema_map());
        assert_eq!(
            Plan::query()
                .order_by(Plan::CODE.asc())
                .fetch_all(db)
                .await
                .unwrap(),
            [Plan {
                code: "pool".into()
            }]
        );
        assert_eq!(
            codes_of(db.fetch_all(&plan_codes(), &[]).await.unwrap()),
            ["pool"]
        );
    }
    drop((a, b));
    fx.schemas.cleanup().await;
}

#[tokio::test]
async fn a_handle_map_overrides_the_pool_default_for_that_handle_only() {
    let fx = fixture("pool_maps_handle").await;
    let pool = pool(map(&fx, &[("shared", "pool")]), StatementMode::Prepared).await;
    let acme = fx.allowlist.resolve("acme").unwrap();

    let narrowed = pool
        .get(&acme)
        .await
        .unwrap()
        .with_schema_map(map(&fx, &[("shared", "handle")]));
    let plain = pool.get(&acme).await.unwrap();
    assert_eq!(
        Plan::query()
            .order_by(Plan::CODE.asc())
            .fetch_all(&narrowed)
            .await
            .unwrap()[0]
            .code,
        "handle"
    );
    assert_eq!(
        Plan::query()
            .order_by(Plan::CODE.asc())
            .fetch_all(&plain)
            .await
            .unwrap()[0]
            .code,
        "pool"
    );

    // The handle map is not written into the connection: back in the pool, the connection
    // serves the next handle with the pool default again.
    let conn = narrowed.into_executor();
    assert_eq!(conn.schema_map(), pool.schema_map());
    drop((conn, plain));
    for _ in 0..2 {
        let db = pool.get(&acme).await.unwrap();
        assert_eq!(
            Plan::query()
                .order_by(Plan::CODE.asc())
                .fetch_all(&db)
                .await
                .unwrap()[0]
                .code,
            "pool"
        );
    }
    fx.schemas.cleanup().await;
}

async fn statement_map_wins(mode: StatementMode, name: &str) {
    let fx = fixture(name).await;
    let pool = pool(map(&fx, &[("shared", "pool")]), mode).await;
    let acme = fx.allowlist.resolve("acme").unwrap();
    let db = pool
        .get(&acme)
        .await
        .unwrap()
        .with_schema_map(map(&fx, &[("shared", "handle")]));
    let stmt = map(&fx, &[("shared", "stmt")]);

    // A hand-built template with a statement-level map: run it on the narrowed handle.
    let rows = db
        .narrow(&stmt)
        .fetch_all(&plan_codes(), &[])
        .await
        .unwrap();
    assert_eq!(codes_of(rows), ["stmt"]);
    // The query builder's statement-level map.
    let plans = Plan::query()
        .schema_map(&stmt)
        .fetch_all(&db)
        .await
        .unwrap();
    assert_eq!(
        plans,
        [Plan {
            code: "stmt".into()
        }]
    );
    assert_eq!(
        Plan::query().fetch_all(&db).await.unwrap()[0].code,
        "handle"
    );
    // Generated CRUD takes a handle: `narrow` is its statement level.
    assert_eq!(
        Plan::query()
            .order_by(Plan::CODE.asc())
            .fetch_all(&db.narrow(&stmt))
            .await
            .unwrap()[0]
            .code,
        "stmt"
    );
    // The statement map was for that statement only.
    assert_eq!(
        Plan::query()
            .order_by(Plan::CODE.asc())
            .fetch_all(&db)
            .await
            .unwrap()[0]
            .code,
        "handle"
    );
    let rows = db.fetch_all(&plan_codes(), &[]).await.unwrap();
    assert_eq!(codes_of(rows), ["handle"]);
    // Same template, three schemas: three cache entries on this one connection.
    let stats = db.executor().statement_cache().stats();
    assert!(stats.len >= 3, "{stats:?}");
    drop(db);
    fx.schemas.cleanup().await;
}

#[tokio::test]
async fn a_statement_map_overrides_the_handle_and_the_pool() {
    statement_map_wins(StatementMode::Prepared, "pool_maps_stmt").await;
}

#[tokio::test]
async fn a_statement_map_overrides_the_handle_and_the_pool_in_unnamed_mode() {
    statement_map_wins(StatementMode::Unnamed, "pool_maps_stmt_unnamed").await;
}

#[tokio::test]
async fn each_slot_is_filled_by_the_narrowest_level_that_maps_it() {
    let fx = fixture("pool_maps_precedence").await;
    // Pool: both slots. Handle: only `audit`. Statement: only `shared`.
    let pool = pool(
        map(&fx, &[("shared", "pool"), ("audit", "pool")]),
        StatementMode::Prepared,
    )
    .await;
    let acme = fx.allowlist.resolve("acme").unwrap();
    let db = pool
        .get(&acme)
        .await
        .unwrap()
        .with_schema_map(map(&fx, &[("audit", "handle")]));
    let stmt = map(&fx, &[("shared", "stmt")]);

    assert_eq!(
        Plan::query()
            .order_by(Plan::CODE.asc())
            .fetch_all(&db)
            .await
            .unwrap()[0]
            .code,
        "pool",
        "handle does not map shared"
    );
    assert_eq!(
        AuditEntry::query()
            .order_by(AuditEntry::CODE.asc())
            .fetch_all(&db)
            .await
            .unwrap()[0]
            .code,
        "handle"
    );
    let narrowed = db.narrow(&stmt);
    assert_eq!(
        Plan::query()
            .order_by(Plan::CODE.asc())
            .fetch_all(&narrowed)
            .await
            .unwrap()[0]
            .code,
        "stmt"
    );
    assert_eq!(
        AuditEntry::query()
            .order_by(AuditEntry::CODE.asc())
            .fetch_all(&narrowed)
            .await
            .unwrap()[0]
            .code,
        "handle",
        "the statement map does not map audit"
    );

    // `resolve` shows the same precedence without running anything.
    let shared = Slot::Named("shared");
    let audit = Slot::Named("audit");
    assert_eq!(
        db.resolve(shared, None).unwrap().as_str(),
        fx.schemas.name("pool")
    );
    assert_eq!(
        db.resolve(shared, Some(&stmt)).unwrap().as_str(),
        fx.schemas.name("stmt")
    );
    assert_eq!(
        db.resolve(audit, Some(&stmt)).unwrap().as_str(),
        fx.schemas.name("handle")
    );
    // The tenant slot is never taken from a map.
    assert_eq!(
        db.resolve(Slot::Tenant, Some(&stmt)).unwrap(),
        acme.schema()
    );
    drop(narrowed);
    drop(db);
    fx.schemas.cleanup().await;
}
