//! The application reaches tenant only through `reexport_invoicing::tenant`: its derive,
//! `query!`, `query_as!`, `query_scalar!` and `embed_migrations!` all expand to paths into
//! the re-export, and they run against PostgreSQL.

use reexport_app::{
    follow_ups, notes_per_invoice, total_of, unpaid_of, Customer, FollowUp, Invoice, Note, Urgency,
    MIGRATIONS,
};
use reexport_invoicing::tenant::{Allowlist, Client, Migrator, Model};

/// Drops the test's schemas at the end (also after a panic).
struct Schemas(String, Vec<String>);
impl Drop for Schemas {
    fn drop(&mut self) {
        let url = self.0.clone();
        let names = std::mem::take(&mut self.1);
        std::thread::spawn(move || {
            let rt = tokio::runtime::Runtime::new().unwrap();
            rt.block_on(async {
                let client = tenant_testing::connect_to(&url).await;
                for name in names {
                    let _ = client
                        .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE"))
                        .await;
                }
            });
        })
        .join()
        .unwrap();
    }
}

#[tokio::test]
async fn models_queries_and_migrations_run_through_the_reexport() {
    let url = tenant_testing::database_url().await;
    let suffix = std::process::id();
    let (acme_schema, globex_schema) = (format!("rx_acme_{suffix}"), format!("rx_globex_{suffix}"));
    let _cleanup = Schemas(
        url.clone(),
        vec![acme_schema.clone(), globex_schema.clone()],
    );

    let allowlist = Allowlist::from_pairs([
        ("acme", acme_schema.as_str()),
        ("globex", globex_schema.as_str()),
    ])
    .unwrap();
    let (acme, globex) = (
        allowlist.resolve("acme").unwrap(),
        allowlist.resolve("globex").unwrap(),
    );
    let mut client = Client::connect(&url).await.unwrap();

    // acme: the application's embedded migrations (expanded through the re-export).
    client.for_tenant(&acme).create_schema().await.unwrap();
    let report = Migrator::new(&MIGRATIONS)
        .run(&mut client, std::slice::from_ref(&acme))
        .await
        .unwrap();
    assert!(report.is_success(), "{report:?}");

    // globex: the library's migrations, then the application's own model's DDL.
    client.for_tenant(&globex).create_schema().await.unwrap();
    let report = Migrator::new(&reexport_invoicing::MIGRATIONS)
        .run(&mut client, std::slice::from_ref(&globex))
        .await
        .unwrap();
    assert!(report.is_success(), "{report:?}");
    Note::create_table(&client.for_tenant(&globex))
        .await
        .unwrap();

    for (tenant, amounts) in [(&acme, [100i64, 250, 40]), (&globex, [7, 8, 9])] {
        let db = client.for_tenant(tenant);
        let c = Customer {
            id: 0,
            name: format!("customer of {}", tenant.key()),
        }
        .insert(&db)
        .await
        .unwrap();
        let mut ids = Vec::new();
        for (i, amount) in amounts.iter().enumerate() {
            let inv = Invoice {
                id: 0,
                customer_id: c.id,
                amount_cents: *amount,
                paid: i == 0,
            }
            .insert(&db)
            .await
            .unwrap();
            ids.push(inv.id);
        }
        Note {
            id: 0,
            invoice_id: ids[1],
            body: "call back".into(),
        }
        .insert(&db)
        .await
        .unwrap();

        let unpaid = unpaid_of(&db, c.id).await.unwrap();
        assert_eq!(
            unpaid.iter().map(|i| i.amount_cents).collect::<Vec<_>>(),
            amounts[1..]
        );
        assert_eq!(
            total_of(&db, c.id).await.unwrap(),
            amounts.iter().sum::<i64>()
        );
        assert_eq!(
            notes_per_invoice(&db).await.unwrap(),
            vec![(ids[0], 0), (ids[1], 1), (ids[2], 0)]
        );
    }

    // An enum column derived through the re-export: its type is created in each tenant's
    // schema with the table, and binds and decodes there.
    for tenant in [&acme, &globex] {
        let db = client.for_tenant(tenant);
        FollowUp::create_table(&db).await.unwrap();
        for urgency in [Urgency::High, Urgency::Low, Urgency::High] {
            FollowUp { id: 0, urgency }.insert(&db).await.unwrap();
        }
        let high = follow_ups(&db, Urgency::High).await.unwrap();
        assert_eq!(high.len(), 2);
        assert!(high.iter().all(|f| f.urgency == Urgency::High));
    }

    // Each tenant saw only its own rows, in its own schema.
    let raw = tenant_testing::connect_to(&url).await;
    for (schema, expected) in [(&acme_schema, 390i64), (&globex_schema, 24)] {
        let sum: i64 = raw
            .query_one(
                &format!("SELECT sum(amount_cents)::bigint FROM \"{schema}\".invoices"),
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(sum, expected, "schema {schema}");
        let owner: String = raw
            .query_one(
                "SELECT n.nspname::text FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace \
                 WHERE t.typname = 'urgency' AND n.nspname = $1",
                &[schema],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(&owner, schema, "the enum type lives in the tenant's schema");
    }
}
