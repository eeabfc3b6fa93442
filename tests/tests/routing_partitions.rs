//! Vertical partitioning: models placed on different databases; CRUD follows the placement.

use tenant_runtime::pool::Partitions;
use tenant_runtime::{Allowlist, Model, TenantPool};
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

#[derive(Debug, Clone, PartialEq, Model)]
#[tenant(table = "audit_events")]
struct AuditEvent {
    #[tenant(primary_key, identity)]
    id: i64,
    tenant_key: String,
    what: String,
}

/// `count(*)` of `schema.table` in the database of `client`, or `None` if there is no such
/// table.
async fn rows_in(client: &tokio_postgres::Client, schema: &str, table: &str) -> Option<i64> {
    let qualified = format!("{schema}.{table}");
    let exists: bool = client
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&qualified])
        .await
        .unwrap()
        .get(0);
    if !exists {
        return None;
    }
    let row = client
        .query_one(&format!("SELECT count(*) FROM {qualified}"), &[])
        .await
        .unwrap();
    Some(row.get(0))
}

#[tokio::test]
async fn each_model_lands_in_the_database_it_was_placed_on() {
    let (oltp, analytics) = (
        test_database("routing partitions oltp").await,
        test_database("routing partitions analytics").await,
    );
    let pool = |url: String| {
        TenantPool::builder(&url)
            .unwrap()
            .max_size(2)
            .build()
            .unwrap()
    };
    let partitions = Partitions::new(pool(oltp.url())).place::<AuditEvent>(pool(analytics.url()));
    assert!(partitions.is_placed::<AuditEvent>());
    assert!(!partitions.is_placed::<Invoice>());
    assert_eq!(partitions.placed_models(), ["AuditEvent"]);

    let allowlist =
        Allowlist::from_pairs([("acme", "tenant_acme"), ("globex", "tenant_globex")]).unwrap();
    for (key, invoices, events) in [("acme", 3, 5), ("globex", 2, 4)] {
        let tenant = allowlist.resolve(key).unwrap();
        let invoices_db = partitions.get::<Invoice>(&tenant).await.unwrap();
        invoices_db.create_schema().await.unwrap();
        Invoice::create_table(&invoices_db).await.unwrap();
        let events_db = partitions.get::<AuditEvent>(&tenant).await.unwrap();
        events_db.create_schema().await.unwrap();
        AuditEvent::create_table(&events_db).await.unwrap();

        for i in 0..invoices {
            let invoice = Invoice {
                id: 0,
                tenant_key: key.into(),
                amount_cents: 100 * i,
            };
            invoice.insert(&invoices_db).await.unwrap();
        }
        // A transaction on the analytics pool covers the audit events.
        let mut events_db = events_db;
        let tx = events_db.transaction().await.unwrap();
        for i in 0..events {
            AuditEvent {
                id: 0,
                tenant_key: key.into(),
                what: format!("event {i}"),
            }
            .insert(&tx)
            .await
            .unwrap();
        }
        tx.commit().await.unwrap();
    }

    // Through the partitions: each model reads back from its own database.
    for (key, invoices, events) in [("acme", 3, 5), ("globex", 2, 4)] {
        let tenant = allowlist.resolve(key).unwrap();
        let all = Invoice::query()
            .order_by(Invoice::ID.asc())
            .fetch_all(&partitions.get::<Invoice>(&tenant).await.unwrap())
            .await
            .unwrap();
        assert_eq!(all.len(), invoices);
        assert!(all.iter().all(|i| i.tenant_key == key));
        let all = AuditEvent::query()
            .order_by(AuditEvent::ID.asc())
            .fetch_all(&partitions.get::<AuditEvent>(&tenant).await.unwrap())
            .await
            .unwrap();
        assert_eq!(all.len(), events);
        assert!(all.iter().all(|e| e.tenant_key == key));
    }

    // With plain SQL on each database: invoices only in oltp, audit events only in analytics.
    let (oltp_sql, analytics_sql) = (
        connect_to(&oltp.url()).await,
        connect_to(&analytics.url()).await,
    );
    for (schema, invoices, events) in [("tenant_acme", 3, 5), ("tenant_globex", 2, 4)] {
        assert_eq!(rows_in(&oltp_sql, schema, "invoices").await, Some(invoices));
        assert_eq!(rows_in(&oltp_sql, schema, "audit_events").await, None);
        assert_eq!(
            rows_in(&analytics_sql, schema, "audit_events").await,
            Some(events)
        );
        assert_eq!(rows_in(&analytics_sql, schema, "invoices").await, None);
    }

    // Placing again moves the model: audit events now go to the oltp database.
    let moved = partitions.clone().place::<AuditEvent>(pool(oltp.url()));
    let acme = allowlist.resolve("acme").unwrap();
    let on_oltp = moved.get::<AuditEvent>(&acme).await.unwrap();
    assert!(
        AuditEvent::query().count(&on_oltp).await.is_err(),
        "no audit table in oltp"
    );

    drop((partitions, moved, on_oltp, oltp_sql, analytics_sql));
    oltp.drop_now().await;
    analytics.drop_now().await;
}
