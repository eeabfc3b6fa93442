//! Foundation on a real PostgreSQL: the same models in several tenant schemas of one
//! database, every CRUD operation in each, isolation, named slots, foreign keys, catalog
//! checks, NULLs, composite keys, transactions.

use tenant_runtime::{Allowlist, Client, Error, Keyed, Model, SchemaMap};
use tenant_tests::TestSchemas;

#[derive(Debug, Clone, PartialEq, Model)]
#[tenant(table = "customers")]
struct Customer {
    #[tenant(primary_key, identity)]
    id: i64,
    #[tenant(unique)]
    email: String,
    name: String,
}

#[derive(Debug, Clone, PartialEq, Model)]
#[tenant(table = "invoices")]
struct Invoice {
    #[tenant(primary_key, identity)]
    id: i64,
    #[tenant(references = Customer)]
    customer_id: i64,
    #[tenant(index)]
    amount_cents: i64,
    #[tenant(default = "false")]
    paid: bool,
    note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Model)]
#[tenant(table = "plans", schema = "shared")]
struct Plan {
    #[tenant(primary_key)]
    code: String,
    monthly_cents: i64,
}

#[derive(Debug, Clone, PartialEq, Model)]
#[tenant(table = "memberships")]
struct Membership {
    #[tenant(primary_key)]
    org_id: i32,
    #[tenant(primary_key)]
    user_id: i64,
    role: String,
}

#[derive(Debug, Clone, PartialEq, Model)]
#[tenant(table = "everything_nullable")]
struct Nullable {
    #[tenant(primary_key)]
    id: i32,
    small: Option<i16>,
    int: Option<i32>,
    big: Option<i64>,
    real: Option<f32>,
    double: Option<f64>,
    flag: Option<bool>,
    text: Option<String>,
    bytes: Option<Vec<u8>>,
    #[tenant(rename = "type")]
    r#type: Option<String>,
}

async fn create_tenant_tables(client: &mut Client, allowlist: &Allowlist) {
    for tenant in allowlist.tenants() {
        let db = client.for_tenant(&tenant);
        db.create_schema().await.unwrap();
        Customer::create_table(&db).await.unwrap();
        Invoice::create_table(&db).await.unwrap();
        Membership::create_table(&db).await.unwrap();
        Nullable::create_table(&db).await.unwrap();
    }
}

#[tokio::test]
async fn every_crud_operation_sees_only_its_own_tenants_rows() {
    let schemas = TestSchemas::new("crud_isolation").await;
    let allowlist = schemas.allowlist(&["acme", "globex", "initech"]);
    let mut client = schemas.client_with_shared_slot().await;
    create_tenant_tables(&mut client, &allowlist).await;

    // Insert: each tenant gets `n` customers and invoices; identity ids start at 1 everywhere.
    for (n, tenant) in allowlist.tenants().iter().enumerate() {
        let db = client.for_tenant(tenant);
        for i in 0..=n {
            let c = Customer {
                id: 0,
                email: format!("{i}@{}.example", tenant.key()),
                name: format!("{} customer {i}", tenant.key()),
            }
            .insert(&db)
            .await
            .unwrap();
            assert_eq!(c.id, i as i64 + 1, "identity starts at 1 in each schema");
            let inv = Invoice {
                id: 0,
                customer_id: c.id,
                amount_cents: 100 * (i as i64 + 1),
                paid: false,
                note: Some(tenant.key().to_owned()),
            }
            .insert(&db)
            .await
            .unwrap();
            assert_eq!(inv.customer_id, c.id);
        }
    }

    // Read: count, all, get: every row carries its own tenant's key.
    for (n, tenant) in allowlist.tenants().iter().enumerate() {
        let db = client.for_tenant(tenant);
        assert_eq!(Customer::query().count(&db).await.unwrap(), n as i64 + 1);
        let invoices = Invoice::query()
            .order_by(Invoice::ID.asc())
            .fetch_all(&db)
            .await
            .unwrap();
        assert_eq!(invoices.len(), n + 1);
        assert!(invoices
            .iter()
            .all(|i| i.note.as_deref() == Some(tenant.key())));
        let first = Customer::get(&db, 1).await.unwrap().unwrap();
        assert_eq!(first.email, format!("0@{}.example", tenant.key()));
        assert_eq!(Customer::get(&db, 99).await.unwrap(), None);
    }

    // Update in one tenant changes nothing in the others.
    let acme = allowlist.resolve("acme").unwrap();
    let globex = allowlist.resolve("globex").unwrap();
    {
        let db = client.for_tenant(&acme);
        let mut inv = Invoice::get(&db, 1).await.unwrap().unwrap();
        inv.paid = true;
        inv.note = None;
        assert!(inv.update(&db).await.unwrap());
        assert_eq!(Invoice::get(&db, 1).await.unwrap().unwrap(), inv);
        let ghost = Invoice { id: 42, ..inv };
        assert!(!ghost.update(&db).await.unwrap(), "no row 42 to update");
    }
    {
        let db = client.for_tenant(&globex);
        let inv = Invoice::get(&db, 1).await.unwrap().unwrap();
        assert!(!inv.paid);
        assert_eq!(inv.note.as_deref(), Some("globex"));
    }

    // Delete in one tenant leaves the same key in another.
    {
        let db = client.for_tenant(&globex);
        assert!(Invoice::delete(&db, 2).await.unwrap());
        assert!(!Invoice::delete(&db, 2).await.unwrap(), "already gone");
        assert_eq!(Invoice::query().count(&db).await.unwrap(), 1);
    }
    let initech = allowlist.resolve("initech").unwrap();
    let db = client.for_tenant(&initech);
    assert!(Invoice::get(&db, 2).await.unwrap().is_some());
    assert_eq!(Invoice::query().count(&db).await.unwrap(), 3);
    drop(db);

    // The rows are where the tenants' schemas say, checked with plain SQL.
    let pg = client.as_tokio_postgres();
    for (tenant, expected) in [("acme", 1i64), ("globex", 2), ("initech", 3)] {
        let sql = format!(
            "SELECT count(*) FROM \"{}\".customers WHERE email LIKE '%@{tenant}.example'",
            schemas.name(tenant)
        );
        let n: i64 = pg.query_one(&sql, &[]).await.unwrap().get(0);
        assert_eq!(
            n, expected,
            "{tenant}'s customers are all in its own schema"
        );
    }

    schemas.cleanup().await;
}

#[tokio::test]
async fn a_named_slot_lands_in_the_schema_the_map_gives_it() {
    let schemas = TestSchemas::new("crud_named_slot").await;
    let allowlist = schemas.allowlist(&["acme", "globex"]);
    let mut client = schemas.client_with_shared_slot().await;
    let pg = client.as_tokio_postgres();
    for s in ["shared", "shared_eu"] {
        pg.batch_execute(&format!(
            "CREATE SCHEMA IF NOT EXISTS \"{}\"",
            schemas.name(s)
        ))
        .await
        .unwrap();
    }
    let acme = allowlist.resolve("acme").unwrap();
    let globex = allowlist.resolve("globex").unwrap();

    // Connection-level map: shared -> <prefix>_shared.
    let db = client.for_tenant(&acme);
    Plan::create_table(&db).await.unwrap();
    Plan {
        code: "pro".into(),
        monthly_cents: 4900,
    }
    .insert(&db)
    .await
    .unwrap();
    drop(db);

    // Another tenant sees the same shared row.
    let db = client.for_tenant(&globex);
    assert_eq!(
        Plan::get(&db, "pro".into())
            .await
            .unwrap()
            .unwrap()
            .monthly_cents,
        4900
    );
    drop(db);

    // A handle-level map overrides the connection's: shared -> <prefix>_shared_eu.
    let eu = SchemaMap::new()
        .with("shared", &schemas.name("shared_eu"))
        .unwrap();
    let db = client.for_tenant(&acme).with_schema_map(eu);
    Plan::create_table(&db).await.unwrap();
    assert_eq!(
        Plan::query().count(&db).await.unwrap(),
        0,
        "a different schema, empty"
    );
    Plan {
        code: "eu".into(),
        monthly_cents: 1,
    }
    .insert(&db)
    .await
    .unwrap();
    drop(db);

    let rows = client
        .as_tokio_postgres()
        .query(
            "SELECT schemaname::text FROM pg_tables WHERE tablename = 'plans' AND left(schemaname, $1) = $2 ORDER BY 1",
            &[&(schemas.prefix().len() as i32), &schemas.prefix()],
        )
        .await
        .unwrap();
    let found: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(
        found,
        vec![schemas.name("shared"), schemas.name("shared_eu")]
    );
    // And no tenant schema got a plans table.
    assert!(!found.contains(&schemas.name("acme")));

    schemas.cleanup().await;
}

#[tokio::test]
async fn a_foreign_key_points_at_the_same_tenants_table() {
    let schemas = TestSchemas::new("crud_fk").await;
    let allowlist = schemas.allowlist(&["acme", "globex"]);
    let mut client = schemas.client_with_shared_slot().await;
    create_tenant_tables(&mut client, &allowlist).await;

    let rows = client
        .as_tokio_postgres()
        .query(
            "SELECT n.nspname::text, rn.nspname::text, r.relname::text
               FROM pg_constraint c
               JOIN pg_class t ON t.oid = c.conrelid JOIN pg_namespace n ON n.oid = t.relnamespace
               JOIN pg_class r ON r.oid = c.confrelid JOIN pg_namespace rn ON rn.oid = r.relnamespace
              WHERE c.contype = 'f' AND t.relname = 'invoices' AND left(n.nspname, $1) = $2
              ORDER BY 1",
            &[&(schemas.prefix().len() as i32), &schemas.prefix()],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 2, "one foreign key per tenant");
    for row in &rows {
        let (from, to, table): (String, String, String) = (row.get(0), row.get(1), row.get(2));
        assert_eq!(from, to, "the foreign key stays inside the tenant's schema");
        assert_eq!(table, "customers");
    }

    // A customer that exists only in globex cannot be referenced from acme.
    let globex = allowlist.resolve("globex").unwrap();
    let c = Customer {
        id: 0,
        email: "only@globex.example".into(),
        name: "G".into(),
    }
    .insert(&client.for_tenant(&globex))
    .await
    .unwrap();
    let acme = allowlist.resolve("acme").unwrap();
    let err = Invoice {
        id: 0,
        customer_id: c.id,
        amount_cents: 1,
        paid: false,
        note: None,
    }
    .insert(&client.for_tenant(&acme))
    .await
    .unwrap_err();
    assert_eq!(
        err.sqlstate(),
        Some("23503"),
        "foreign key violation: {err}"
    );

    schemas.cleanup().await;
}

#[tokio::test]
async fn created_indexes_and_constraints_are_in_pg_catalog() {
    let schemas = TestSchemas::new("crud_catalog").await;
    let allowlist = schemas.allowlist(&["acme"]);
    let mut client = schemas.client_with_shared_slot().await;
    create_tenant_tables(&mut client, &allowlist).await;
    // Creating again is a no-op, not an error.
    create_tenant_tables(&mut client, &allowlist).await;
    let schema = schemas.name("acme");
    let pg = client.as_tokio_postgres();

    let constraints: Vec<(String, String, String)> = pg
        .query(
            "SELECT t.relname::text, c.conname::text, c.contype::text
               FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid
               JOIN pg_namespace n ON n.oid = t.relnamespace
              WHERE n.nspname = $1 ORDER BY 1, 2",
            &[&schema],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let has = |t: &str, name: &str, kind: &str| {
        constraints.contains(&(t.into(), name.into(), kind.into()))
    };
    assert!(has("customers", "customers_pkey", "p"), "{constraints:?}");
    assert!(
        has("customers", "customers_email_key", "u"),
        "{constraints:?}"
    );
    assert!(has("invoices", "invoices_pkey", "p"), "{constraints:?}");
    assert!(
        has("invoices", "invoices_customer_id_fkey", "f"),
        "{constraints:?}"
    );
    assert!(
        has("memberships", "memberships_pkey", "p"),
        "{constraints:?}"
    );

    let index: Option<String> = pg
        .query_opt(
            "SELECT indexdef FROM pg_indexes WHERE schemaname = $1 AND indexname = 'invoices_amount_cents_idx'",
            &[&schema],
        )
        .await
        .unwrap()
        .map(|r| r.get(0));
    let index = index.expect("the index on amount_cents exists");
    assert!(index.contains("(amount_cents)"), "{index}");

    // Composite primary key covers both columns, in order.
    let pk: String = pg
        .query_one(
            "SELECT pg_get_constraintdef(c.oid) FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
              WHERE n.nspname = $1 AND c.conname = 'memberships_pkey'",
            &[&schema],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(pk, "PRIMARY KEY (org_id, user_id)");

    // Column details: identity, NOT NULL, default, NULL-able.
    let columns: Vec<(String, String, String, Option<String>, String)> = pg
        .query(
            "SELECT column_name::text, data_type::text, is_nullable::text, column_default::text, is_identity::text
               FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'invoices'
              ORDER BY ordinal_position",
            &[&schema],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
        .collect();
    assert_eq!(
        columns,
        vec![
            (
                "id".into(),
                "bigint".into(),
                "NO".into(),
                None,
                "YES".into()
            ),
            (
                "customer_id".into(),
                "bigint".into(),
                "NO".into(),
                None,
                "NO".into()
            ),
            (
                "amount_cents".into(),
                "bigint".into(),
                "NO".into(),
                None,
                "NO".into()
            ),
            (
                "paid".into(),
                "boolean".into(),
                "NO".into(),
                Some("false".into()),
                "NO".into()
            ),
            (
                "note".into(),
                "text".into(),
                "YES".into(),
                None,
                "NO".into()
            ),
        ]
    );

    schemas.cleanup().await;
}

#[tokio::test]
async fn null_and_every_basic_type_round_trip() {
    let schemas = TestSchemas::new("crud_nulls").await;
    let allowlist = schemas.allowlist(&["acme"]);
    let mut client = schemas.client_with_shared_slot().await;
    create_tenant_tables(&mut client, &allowlist).await;
    let acme = allowlist.resolve("acme").unwrap();
    let db = client.for_tenant(&acme);

    let empty = Nullable {
        id: 1,
        small: None,
        int: None,
        big: None,
        real: None,
        double: None,
        flag: None,
        text: None,
        bytes: None,
        r#type: None,
    };
    let full = Nullable {
        id: 2,
        small: Some(-32768),
        int: Some(i32::MAX),
        big: Some(i64::MIN),
        real: Some(1.5),
        double: Some(-0.000_1),
        flag: Some(false),
        text: Some("it's \"quoted\" — ünïcødé; DROP TABLE x; --".into()),
        bytes: Some(vec![0, 1, 2, 255]),
        r#type: Some("keyword column".into()),
    };
    assert_eq!(empty.insert(&db).await.unwrap(), empty);
    assert_eq!(full.insert(&db).await.unwrap(), full);
    assert_eq!(Nullable::get(&db, 1).await.unwrap().unwrap(), empty);
    assert_eq!(Nullable::get(&db, 2).await.unwrap().unwrap(), full);

    // NULL written by update, read back as None.
    let cleared = Nullable {
        id: 2,
        ..empty.clone()
    };
    assert!(cleared.update(&db).await.unwrap());
    assert_eq!(Nullable::get(&db, 2).await.unwrap().unwrap(), cleared);
    drop(db);

    let nulls: i64 = client
        .as_tokio_postgres()
        .query_one(
            &format!(
                "SELECT count(*) FROM \"{}\".everything_nullable WHERE text IS NULL AND bytes IS NULL",
                schemas.name("acme")
            ),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(nulls, 2, "None is stored as SQL NULL");

    schemas.cleanup().await;
}

#[tokio::test]
async fn composite_keys_get_update_and_delete_by_tuple() {
    let schemas = TestSchemas::new("crud_composite").await;
    let allowlist = schemas.allowlist(&["acme", "globex"]);
    let mut client = schemas.client_with_shared_slot().await;
    create_tenant_tables(&mut client, &allowlist).await;
    let acme = allowlist.resolve("acme").unwrap();
    let db = client.for_tenant(&acme);

    for (org, user, role) in [(1, 10, "owner"), (1, 11, "member"), (2, 10, "member")] {
        Membership {
            org_id: org,
            user_id: user,
            role: role.into(),
        }
        .insert(&db)
        .await
        .unwrap();
    }
    let m = Membership::get(&db, (1, 10)).await.unwrap().unwrap();
    assert_eq!(m.role, "owner");
    assert_eq!(m.key(), (1, 10));
    assert_eq!(Membership::get(&db, (2, 11)).await.unwrap(), None);

    let promoted = Membership {
        role: "admin".into(),
        ..Membership::get(&db, (2, 10)).await.unwrap().unwrap()
    };
    assert!(promoted.update(&db).await.unwrap());
    assert_eq!(
        Membership::get(&db, (2, 10)).await.unwrap().unwrap().role,
        "admin"
    );
    assert_eq!(
        Membership::get(&db, (1, 10)).await.unwrap().unwrap().role,
        "owner"
    );

    // The pair is unique, not either column alone.
    let dup = Membership {
        org_id: 1,
        user_id: 10,
        role: "x".into(),
    }
    .insert(&db)
    .await
    .unwrap_err();
    assert_eq!(dup.sqlstate(), Some("23505"), "{dup}");

    assert!(Membership::delete(&db, (1, 11)).await.unwrap());
    assert_eq!(Membership::query().count(&db).await.unwrap(), 2);
    drop(db);

    let globex = allowlist.resolve("globex").unwrap();
    assert_eq!(
        Membership::query()
            .count(&client.for_tenant(&globex))
            .await
            .unwrap(),
        0
    );

    schemas.cleanup().await;
}

#[tokio::test]
async fn transactions_and_savepoints_commit_or_roll_back_as_a_whole() {
    let schemas = TestSchemas::new("crud_tx").await;
    let allowlist = schemas.allowlist(&["acme"]);
    let mut client = schemas.client_with_shared_slot().await;
    create_tenant_tables(&mut client, &allowlist).await;
    let acme = allowlist.resolve("acme").unwrap();
    let mut db = client.for_tenant(&acme);
    let customer = |email: &str| Customer {
        id: 0,
        email: email.into(),
        name: "n".into(),
    };

    // Rolled back: nothing stays.
    let tx = db.transaction().await.unwrap();
    customer("a@x").insert(&tx).await.unwrap();
    assert_eq!(Customer::query().count(&tx).await.unwrap(), 1);
    tx.rollback().await.unwrap();
    assert_eq!(Customer::query().count(&db).await.unwrap(), 0);

    // Dropped without commit: rolled back too.
    {
        let tx = db.transaction().await.unwrap();
        customer("b@x").insert(&tx).await.unwrap();
    }
    assert_eq!(Customer::query().count(&db).await.unwrap(), 0);

    // Committed, with a savepoint rolled back inside.
    let mut tx = db.transaction().await.unwrap();
    customer("c@x").insert(&tx).await.unwrap();
    let sp = tx.transaction().await.unwrap();
    customer("d@x").insert(&sp).await.unwrap();
    // A failing statement inside the savepoint only poisons the savepoint.
    let err = customer("d@x").insert(&sp).await.unwrap_err();
    assert_eq!(err.sqlstate(), Some("23505"));
    sp.rollback().await.unwrap();
    customer("e@x").insert(&tx).await.unwrap();
    tx.commit().await.unwrap();

    let emails: Vec<String> = Customer::query()
        .order_by(Customer::ID.asc())
        .fetch_all(&db)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.email)
        .collect();
    assert_eq!(emails, ["c@x", "e@x"]);
    drop(db);

    schemas.cleanup().await;
}

#[tokio::test]
async fn query_one_errors_say_what_was_found() {
    let schemas = TestSchemas::new("crud_errors").await;
    let allowlist = schemas.allowlist(&["acme"]);
    let mut client = schemas.client_with_shared_slot().await;
    create_tenant_tables(&mut client, &allowlist).await;
    let acme = allowlist.resolve("acme").unwrap();
    let db = client.for_tenant(&acme);

    // A row that fails to decode names the model and column.
    let bad = tenant_runtime::sql::Template::builder()
        .sql("SELECT 'not a number'::text, 'e', 'n'")
        .build();
    let row = db.fetch_one(&bad, &[]).await.unwrap();
    match Customer::from_row(&row) {
        Err(Error::Decode {
            model,
            column,
            index,
            ..
        }) => assert_eq!((model, column, index), ("Customer", "id", 0)),
        other => panic!("expected a decode error, got {other:?}"),
    }
    let none = tenant_runtime::sql::Template::builder()
        .sql("SELECT 1 WHERE false")
        .build();
    assert!(matches!(
        db.fetch_one(&none, &[]).await,
        Err(Error::RowNotFound)
    ));
    let two = tenant_runtime::sql::Template::builder()
        .sql("SELECT generate_series(1, 2)")
        .build();
    assert!(matches!(
        db.fetch_optional(&two, &[]).await,
        Err(Error::TooManyRows)
    ));
    drop(db);

    schemas.cleanup().await;
}
