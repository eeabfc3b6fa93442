//! How a connection sends statements: builder statements share one template per shape
//! (values bound in the order the cached template numbers them), and adaptive preparing
//! (first use unnamed in one round trip, prepared at the threshold, results the same
//! whatever the threshold).

use tenant_runtime::{Client, Db, Model, StatementMode, Tenant};
use tenant_tests::{database_url, TestSchemas};

#[derive(Debug, Clone, PartialEq, Model)]
#[tenant(table = "items")]
struct Item {
    #[tenant(primary_key)]
    id: i64,
    name: String,
    qty: i32,
    note: Option<String>,
}

fn seed() -> Vec<Item> {
    (1..=20)
        .map(|i| Item {
            id: i,
            name: format!("item {i}"),
            qty: (i % 7) as i32,
            note: (i % 3 == 0).then(|| format!("note {i}")),
        })
        .collect()
}

async fn fixture(test: &str) -> (TestSchemas, Tenant, Client) {
    let schemas = TestSchemas::new(test).await;
    let tenant = schemas.allowlist(&["acme"]).resolve("acme").unwrap();
    let client = Client::connect(&database_url().await).await.unwrap();
    let db = Db::new(&client, &tenant);
    db.create_schema().await.unwrap();
    Item::create_table(&db).await.unwrap();
    for item in seed() {
        item.insert(&db).await.unwrap();
    }
    (schemas, tenant, client)
}

/// Several shapes, each run with several values: every result is what the same predicate
/// gives in Rust, so a parameter bound out of order on a cached shape would show.
async fn run_shapes(db: &Db<&Client>) {
    for (low, high, limit) in [(1i32, 5i32, 3u64), (0, 2, 10), (4, 6, 1)] {
        let got = Item::query()
            .filter(Item::QTY.ge(low))
            .filter(Item::QTY.le(high).or(Item::NOTE.is_null().not()))
            .order_by(Item::ID.desc())
            .limit(limit)
            .offset(1)
            .fetch_all(db)
            .await
            .unwrap();
        let expected: Vec<Item> = seed()
            .into_iter()
            .rev()
            .filter(|i| i.qty >= low && (i.qty <= high || i.note.is_some()))
            .skip(1)
            .take(limit as usize)
            .collect();
        assert_eq!(got, expected, "qty in {low}..={high}, limit {limit}");
        let count = Item::query()
            .filter(Item::NAME.ne("item 1"))
            .filter(Item::QTY.gt(low))
            .count(db)
            .await
            .unwrap();
        let expected = seed()
            .iter()
            .filter(|i| i.name != "item 1" && i.qty > low)
            .count();
        assert_eq!(count as usize, expected);
    }
}

#[tokio::test]
async fn a_builder_shape_is_built_once_and_binds_every_value_in_order() {
    let (schemas, tenant, client) = fixture("pool_stmt_shapes").await;
    let db = Db::new(&client, &tenant);
    let before = client.statement_cache().stats();
    run_shapes(&db).await;
    run_shapes(&db).await;
    let after = client.statement_cache().stats();
    // Two shapes (the windowed select, the count), 3 x 2 runs each: one render each.
    assert_eq!(after.renders - before.renders, 2, "{after:?}");
    assert_eq!(after.misses - before.misses, 2);
    assert_eq!(after.hits - before.hits, 10);

    // An UPDATE windowed by order and limit: set values first, then the filter's, then the
    // limit; run twice with other values on the one cached shape.
    for (qty, floor, n) in [(100i32, 3i32, 2u64), (200, 5, 1)] {
        let changed = Item::query()
            .filter(Item::QTY.ge(floor))
            .order_by(Item::ID.asc())
            .limit(n)
            .update()
            .set(Item::QTY, qty)
            .set(Item::NOTE, "updated")
            .execute(&db)
            .await
            .unwrap();
        assert_eq!(changed, n);
        let updated = Item::query()
            .filter(Item::QTY.eq(qty))
            .filter(Item::NOTE.eq("updated"))
            .count(&db)
            .await
            .unwrap();
        assert_eq!(updated as u64, n, "set to {qty}");
    }
    let deleted = Item::query()
        .filter(Item::QTY.in_list([100, 200]))
        .delete()
        .execute(&db)
        .await
        .unwrap();
    assert_eq!(deleted, 2, "ids 3 (set to 200 by the second update) and 4");
    drop(db);
    drop(client);
    schemas.cleanup().await;
}

/// Named prepared statements the session holds on the server.
async fn named_on_server(client: &Client) -> i64 {
    client
        .as_tokio_postgres()
        .query_one("SELECT count(*) FROM pg_prepared_statements", &[])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn a_statement_runs_unnamed_first_and_is_prepared_when_it_comes_back() {
    let (schemas, tenant, client) = fixture("pool_stmt_adaptive").await;
    // A fresh connection with the default threshold (2).
    let fresh = Client::connect(&database_url().await).await.unwrap();
    assert_eq!(fresh.statement_mode(), StatementMode::Prepared);
    assert_eq!(fresh.prepare_threshold(), 2);
    // tokio-postgres's own statements (type lookups) are not the library's: count from here.
    let baseline = named_on_server(&fresh).await;
    let db = Db::new(&fresh, &tenant);
    let first = Item::get(&db, 3).await.unwrap();
    let stats = fresh.statement_cache().stats();
    assert_eq!((stats.misses, stats.prepares), (1, 0), "first use: unnamed");
    assert_eq!(named_on_server(&fresh).await, baseline);
    let second = Item::get(&db, 3).await.unwrap();
    let stats = fresh.statement_cache().stats();
    assert_eq!((stats.hits, stats.prepares), (1, 1), "second use: prepared");
    assert_eq!(named_on_server(&fresh).await, baseline + 1);
    let third = Item::get(&db, 3).await.unwrap();
    assert_eq!(fresh.statement_cache().stats().prepares, 1, "prepared once");
    assert_eq!(first, second);
    assert_eq!(second, third);
    assert_eq!(first.unwrap().name, "item 3");
    drop(db);

    // Threshold 0 (never prepare), 1 (prepare on first use, the old behaviour) and 3 give the
    // same results as the default; only the number of prepares differs.
    let reference = {
        let db = Db::new(&client, &tenant);
        run_shapes(&db).await;
        Item::query().fetch_all(&db).await.unwrap()
    };
    for (threshold, expected_prepares) in [(0u32, 0u64), (1, 2), (3, 2)] {
        let client = Client::connect(&database_url().await)
            .await
            .unwrap()
            .with_prepare_threshold(threshold);
        let db = Db::new(&client, &tenant);
        for _ in 0..3 {
            run_shapes(&db).await;
        }
        let mut all = Item::query().fetch_all(&db).await.unwrap();
        all.sort_by_key(|i| i.id);
        let mut reference = reference.clone();
        reference.sort_by_key(|i| i.id);
        assert_eq!(all, reference, "threshold {threshold}");
        let stats = client.statement_cache().stats();
        // The two shapes of run_shapes (the plain select ran once: prepared only at 1).
        let select_all = u64::from(threshold == 1);
        assert_eq!(
            stats.prepares,
            expected_prepares + select_all,
            "threshold {threshold}: {stats:?}"
        );
    }
    drop(client);
    drop(fresh);
    schemas.cleanup().await;
}

/// A value of a type PostgreSQL does not build in (an enum of the test's), bound by name.
#[derive(Debug)]
struct Mood(&'static str);

impl tokio_postgres::types::ToSql for Mood {
    fn to_sql(
        &self,
        _: &tokio_postgres::types::Type,
        out: &mut bytes::BytesMut,
    ) -> Result<tokio_postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
        out.extend_from_slice(self.0.as_bytes());
        Ok(tokio_postgres::types::IsNull::No)
    }
    fn accepts(ty: &tokio_postgres::types::Type) -> bool {
        ty.name() == "mood"
    }
    tokio_postgres::types::to_sql_checked!();
}

#[tokio::test]
async fn a_value_of_a_type_that_is_not_built_in_is_prepared_on_first_use() {
    let (schemas, tenant, client) = fixture("pool_stmt_custom").await;
    let schema = tenant.schema().as_str().to_owned();
    client
        .as_tokio_postgres()
        .batch_execute(&format!(
            "CREATE TYPE \"{schema}\".mood AS ENUM ('happy', 'sad'); \
             CREATE TABLE \"{schema}\".moods (m \"{schema}\".mood NOT NULL); \
             INSERT INTO \"{schema}\".moods VALUES ('happy'), ('sad'), ('sad')"
        ))
        .await
        .unwrap();
    let count = tenant_runtime::sql::Template::builder()
        .sql("SELECT count(*) FROM ")
        .table(tenant_runtime::Slot::Tenant, "moods")
        .sql(" WHERE m = $1")
        .build();
    let fresh = Client::connect(&database_url().await).await.unwrap();
    let db = Db::new(&fresh, &tenant);
    let sad: i64 = db.fetch_one(&count, &[&Mood("sad")]).await.unwrap().get(0);
    assert_eq!(sad, 2);
    let stats = fresh.statement_cache().stats();
    assert_eq!((stats.misses, stats.prepares), (1, 1), "{stats:?}");
    let happy: i64 = db
        .fetch_one(&count, &[&Mood("happy")])
        .await
        .unwrap()
        .get(0);
    assert_eq!(happy, 1);
    assert_eq!(fresh.statement_cache().stats().prepares, 1, "then hits");

    // Unnamed mode prepares nothing: it looks the enum up in the statement's schemas and
    // sends its type along.
    let unnamed = Client::connect(&database_url().await)
        .await
        .unwrap()
        .with_statement_mode(StatementMode::Unnamed);
    let db = Db::new(&unnamed, &tenant);
    let sad: i64 = db.fetch_one(&count, &[&Mood("sad")]).await.unwrap().get(0);
    assert_eq!(sad, 2);
    assert_eq!(unnamed.statement_cache().stats().prepares, 0);
    drop(db);
    drop((client, fresh, unnamed));
    schemas.cleanup().await;
}

/// A value whose Rust type is not the column's (an `i32` bound to a `bigint`) in a
/// hand-built template: its unnamed
/// first use types it from the value and runs; once the statement would be prepared, the
/// server's inferred type refuses the value, and the statement stays unnamed instead of
/// starting to fail. Every use succeeds, whatever the threshold.
#[tokio::test]
async fn a_statement_that_ran_unnamed_does_not_fail_once_prepared() {
    let (schemas, tenant, _client) = fixture("stmt_mismatched_type").await;
    // A hand-built template (`query!` checks the Rust types at compile time: no mismatch).
    let by_id = tenant_runtime::sql::Template::builder()
        .sql("SELECT \"qty\" FROM ")
        .table(tenant_runtime::Slot::Tenant, "items")
        .sql(" WHERE \"id\" = $1")
        .build();
    for threshold in [1, 2] {
        let client = Client::connect(&database_url().await)
            .await
            .unwrap()
            .with_prepare_threshold(threshold);
        let db = Db::new(&client, &tenant);
        for round in 0..5 {
            let row = db
                .fetch_optional(&by_id, &[&7i32])
                .await
                .unwrap_or_else(|e| panic!("threshold {threshold}, use {round}: {e}"));
            let qty: i32 = row.expect("item 7").get(0);
            assert_eq!(qty, 0, "threshold {threshold}, use {round}");
        }
    }
    schemas.cleanup().await;
}
