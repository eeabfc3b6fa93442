//! Provisioning and two-phase teardown on a real PostgreSQL: model sets in foreign-key order,
//! provisioning (grants, registry, idempotence, concurrency, atomicity), retire / restore /
//! purge, and the refusal of `public`, system and unknown schemas.

use std::time::Duration;

use tenant_runtime::error::{AllowlistError, Duplicated, LifecycleError, ModelError};
use tenant_runtime::lifecycle::{retired_schema_name, TenantState};
use tenant_runtime::{
    Allowlist, Client, Error, Model, ModelSet, Provisioner, Registry, SchemaMap, SchemaName,
};
use tenant_tests::{database_url, TestSchemas};

#[derive(Debug, Clone, PartialEq, Model)]
#[tenant(table = "customers")]
struct Customer {
    #[tenant(primary_key, identity)]
    id: i64,
    #[tenant(unique)]
    email: String,
}

#[derive(Debug, Clone, PartialEq, Model)]
#[tenant(table = "invoices")]
struct Invoice {
    #[tenant(primary_key, identity)]
    id: i64,
    #[tenant(references = Customer)]
    customer_id: i64,
    #[tenant(references = Plan)]
    plan: String,
    amount_cents: i64,
}

/// Shared by all tenants: created once, referenced by every tenant's invoices.
#[derive(Debug, Clone, PartialEq, Model)]
#[tenant(table = "plans", schema = "shared")]
struct Plan {
    #[tenant(primary_key)]
    code: String,
}

/// A table whose DDL fails (unknown function in a default): injects a provisioning failure.
#[derive(Debug, Clone, PartialEq, Model)]
#[tenant(table = "broken")]
struct Broken {
    #[tenant(primary_key, default = "no_such_function_anywhere()")]
    id: i64,
}

async fn connect() -> Client {
    Client::connect(&database_url().await).await.unwrap()
}

/// A provisioner for Customer/Invoice (+ the shared Plan), with its registry and shared slot
/// under the test's prefix, installed.
async fn provisioner(schemas: &TestSchemas, client: &Client) -> Provisioner {
    let map = SchemaMap::new()
        .with("shared", &schemas.name("shared"))
        .unwrap();
    client
        .as_tokio_postgres()
        .batch_execute(&format!("CREATE SCHEMA \"{}\"", schemas.name("shared")))
        .await
        .unwrap();
    let models = ModelSet::new()
        .with::<Invoice>()
        .with::<Customer>()
        .with::<Plan>();
    let provisioner = Provisioner::new(models)
        .unwrap()
        .with_registry(Registry::new(&schemas.name("registry")).unwrap())
        .with_schema_map(map);
    provisioner.install(client).await.unwrap();
    provisioner
}

async fn schema_exists(client: &Client, schema: &str) -> bool {
    client
        .as_tokio_postgres()
        .query_opt("SELECT 1 FROM pg_namespace WHERE nspname = $1", &[&schema])
        .await
        .unwrap()
        .is_some()
}

async fn tables_of(client: &Client, schema: &str) -> Vec<String> {
    client
        .as_tokio_postgres()
        .query(
            "SELECT tablename::text FROM pg_tables WHERE schemaname = $1 ORDER BY 1",
            &[&schema],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

async fn registry_rows(client: &Client, provisioner: &Provisioner) -> usize {
    provisioner.registry().entries(client).await.unwrap().len()
}

#[tokio::test]
async fn model_set_creates_in_foreign_key_order_and_drops_in_reverse() {
    let schemas = TestSchemas::new("lifecycle_model_set").await;
    let mut client = connect().await.with_schema_map(
        SchemaMap::new()
            .with("shared", &schemas.name("shared"))
            .unwrap(),
    );
    let tenant = Allowlist::new()
        .insert("acme", &schemas.name("acme"))
        .unwrap();
    client
        .as_tokio_postgres()
        .batch_execute(&format!("CREATE SCHEMA \"{}\"", schemas.name("shared")))
        .await
        .unwrap();

    // Registered "wrong way round": Invoice references Customer and Plan.
    let models = ModelSet::new()
        .with::<Invoice>()
        .with::<Customer>()
        .with::<Plan>();
    let order: Vec<&str> = models
        .create_order()
        .unwrap()
        .iter()
        .map(|m| m.name)
        .collect();
    assert_eq!(order, ["Customer", "Plan", "Invoice"]);

    let db = client.for_tenant(&tenant);
    db.create_schema().await.unwrap();
    models.create_all(&db).await.unwrap();
    assert_eq!(
        tables_of(&client, &schemas.name("acme")).await,
        ["customers", "invoices"]
    );
    assert_eq!(tables_of(&client, &schemas.name("shared")).await, ["plans"]);

    // The foreign keys are real: an invoice needs its customer and plan.
    let db = client.for_tenant(&tenant);
    let orphan = Invoice {
        id: 0,
        customer_id: 1,
        plan: "pro".into(),
        amount_cents: 1,
    };
    assert_eq!(
        orphan.insert(&db).await.unwrap_err().sqlstate(),
        Some("23503")
    );

    // Dropping in reverse order succeeds although customers and plans are referenced.
    models.drop_all(&db).await.unwrap();
    drop(db);
    assert!(tables_of(&client, &schemas.name("acme")).await.is_empty());
    assert!(tables_of(&client, &schemas.name("shared")).await.is_empty());

    // An incomplete set names the missing model.
    let err = ModelSet::new().with::<Invoice>().validate().unwrap_err();
    assert!(
        matches!(
            &err,
            Error::Model(ModelError::MissingReference {
                model: "Invoice",
                target: "Customer",
                ..
            })
        ) && err.to_string().contains("add `.with::<Customer>()`"),
        "{err}"
    );
    schemas.cleanup().await;
}

#[tokio::test]
async fn provisioning_creates_schema_tables_grants_and_registry_row() {
    let schemas = TestSchemas::new("lifecycle_provision").await;
    let mut client = connect().await;
    let role = schemas.name("app");
    client
        .as_tokio_postgres()
        .batch_execute(&format!("CREATE ROLE \"{role}\" NOLOGIN"))
        .await
        .unwrap();
    let provisioner = provisioner(&schemas, &client)
        .await
        .grant_to(&role)
        .unwrap();
    let allowlist = Allowlist::new();
    let schema = schemas.name("acme");

    let acme = provisioner
        .provision(&mut client, &allowlist, "acme", &schema)
        .await
        .unwrap();
    assert_eq!(acme.schema().as_str(), schema);
    assert_eq!(
        allowlist.resolve("acme").unwrap(),
        acme,
        "resolvable at once"
    );
    assert_eq!(tables_of(&client, &schema).await, ["customers", "invoices"]);

    let pg = client.as_tokio_postgres();
    let row = pg
        .query_one(
            "SELECT has_schema_privilege($1, $2, 'USAGE'), has_schema_privilege($1, $2, 'CREATE'), \
             has_table_privilege($1, format('%I.invoices', $2::text), 'SELECT, INSERT, UPDATE, DELETE'), \
             has_table_privilege($1, format('%I.invoices', $2::text), 'TRUNCATE')",
            &[&role, &schema],
        )
        .await
        .unwrap();
    let privileges: (bool, bool, bool, bool) = (row.get(0), row.get(1), row.get(2), row.get(3));
    assert_eq!(privileges, (true, true, true, false));

    let entry = provisioner
        .registry()
        .entry(&client, "acme")
        .await
        .unwrap()
        .expect("a registry row");
    assert_eq!(
        (entry.schema.as_str(), entry.state),
        (schema.as_str(), TenantState::Active)
    );
    assert_eq!(entry.retired_schema, None);

    // Another process learns about the tenant from the registry.
    let loaded = Allowlist::load_from_registry(&client, provisioner.registry())
        .await
        .unwrap();
    assert_eq!(loaded.resolve("acme").unwrap(), acme);

    // The tenant works end to end.
    let plans = schemas.name("shared");
    pg.batch_execute(&format!("INSERT INTO \"{plans}\".plans VALUES ('pro')"))
        .await
        .unwrap();
    let db = client
        .for_tenant(&acme)
        .with_schema_map(SchemaMap::new().with("shared", &plans).unwrap());
    let c = Customer {
        id: 0,
        email: "a@acme.example".into(),
    }
    .insert(&db)
    .await
    .unwrap();
    Invoice {
        id: 0,
        customer_id: c.id,
        plan: "pro".into(),
        amount_cents: 10,
    }
    .insert(&db)
    .await
    .unwrap();
    drop(db);

    schemas.cleanup().await;
    client
        .as_tokio_postgres()
        .batch_execute(&format!("DROP ROLE \"{role}\""))
        .await
        .unwrap();
}

#[tokio::test]
async fn provisioning_again_is_idempotent_and_repairs_missing_tables() {
    let schemas = TestSchemas::new("lifecycle_idempotent").await;
    let mut client = connect().await;
    let provisioner = provisioner(&schemas, &client).await;
    let allowlist = Allowlist::new();
    let schema = schemas.name("acme");

    let first = provisioner
        .provision(&mut client, &allowlist, "acme", &schema)
        .await
        .unwrap();
    client
        .as_tokio_postgres()
        .batch_execute(&format!("DROP TABLE \"{schema}\".invoices"))
        .await
        .unwrap();
    let second = provisioner
        .provision(&mut client, &allowlist, "acme", &schema)
        .await
        .unwrap();
    assert_eq!(first, second);
    assert_eq!(tables_of(&client, &schema).await, ["customers", "invoices"]);
    assert_eq!(registry_rows(&client, &provisioner).await, 1);
    assert_eq!(allowlist.len(), 1);
    schemas.cleanup().await;
}

#[tokio::test]
async fn concurrent_provisions_of_one_tenant_all_succeed_with_one_schema() {
    let schemas = TestSchemas::new("lifecycle_concurrent").await;
    let client = connect().await;
    let provisioner = provisioner(&schemas, &client).await;
    let schema = schemas.name("acme");

    // Eight connections (as eight processes would) provision the same tenant at once.
    let mut clients = Vec::new();
    for _ in 0..8 {
        clients.push(connect().await);
    }
    let allowlists: Vec<Allowlist> = (0..8).map(|_| Allowlist::new()).collect();
    let attempts = clients
        .iter_mut()
        .zip(&allowlists)
        .map(|(c, a)| provisioner.provision(c, a, "acme", &schema));
    let results = futures_util::future::join_all(attempts).await;
    for r in &results {
        assert!(r.is_ok(), "{r:?}");
    }
    assert!(results
        .windows(2)
        .all(|w| w[0].as_ref().unwrap() == w[1].as_ref().unwrap()));

    let n: i64 = client
        .as_tokio_postgres()
        .query_one(
            "SELECT count(*) FROM pg_namespace WHERE nspname = $1",
            &[&schema],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1);
    assert_eq!(registry_rows(&client, &provisioner).await, 1);
    assert_eq!(tables_of(&client, &schema).await, ["customers", "invoices"]);
    schemas.cleanup().await;
}

#[tokio::test]
async fn a_failed_provisioning_leaves_no_schema_and_no_registry_row() {
    let schemas = TestSchemas::new("lifecycle_atomic").await;
    let mut client = connect().await;
    let registry = Registry::new(&schemas.name("registry")).unwrap();
    // Customer is created first, then Broken fails: everything must roll back.
    let provisioner = Provisioner::new(ModelSet::new().with::<Customer>().with::<Broken>())
        .unwrap()
        .with_registry(registry);
    provisioner.install(&client).await.unwrap();
    let allowlist = Allowlist::new();
    let schema = schemas.name("acme");

    let err = provisioner
        .provision(&mut client, &allowlist, "acme", &schema)
        .await
        .unwrap_err();
    assert_eq!(err.sqlstate(), Some("42883"), "undefined function: {err}");
    assert!(
        !schema_exists(&client, &schema).await,
        "no half-made schema"
    );
    assert_eq!(registry_rows(&client, &provisioner).await, 0);
    assert!(allowlist.resolve("acme").is_err());
    schemas.cleanup().await;
}

#[tokio::test]
async fn conflicting_keys_and_schemas_are_refused() {
    let schemas = TestSchemas::new("lifecycle_conflicts").await;
    let mut client = connect().await;
    let provisioner = provisioner(&schemas, &client).await;
    let allowlist = Allowlist::new();
    let (a, b) = (schemas.name("a"), schemas.name("b"));
    provisioner
        .provision(&mut client, &allowlist, "acme", &a)
        .await
        .unwrap();

    // The same key with another schema.
    let err = provisioner
        .provision(&mut client, &Allowlist::new(), "acme", &b)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Lifecycle(LifecycleError::TenantConflict { key, registered, requested })
            if key == "acme" && *registered == a && *requested == b),
        "{err}"
    );
    // The same schema for another key (with an allowlist that does not know `acme`).
    let err = provisioner
        .provision(&mut client, &Allowlist::new(), "globex", &a)
        .await
        .unwrap_err();
    assert!(
        matches!(
            &err,
            Error::Allowlist(AllowlistError::DuplicateTenant {
                what: Duplicated::Schema,
                ..
            })
        ),
        "{err}"
    );
    assert!(!schema_exists(&client, &b).await);

    // A schema that exists but was never provisioned is not taken over...
    let foreign = schemas.name("foreign");
    client
        .as_tokio_postgres()
        .batch_execute(&format!("CREATE SCHEMA \"{foreign}\""))
        .await
        .unwrap();
    let err = provisioner
        .provision(&mut client, &allowlist, "foreign", &foreign)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Lifecycle(LifecycleError::SchemaExists { schema }) if *schema == foreign),
        "{err}"
    );
    assert!(tables_of(&client, &foreign).await.is_empty());
    // ...unless adopting is asked for.
    let adopting = provisioner.clone().adopt_existing_schemas(true);
    adopting
        .provision(&mut client, &allowlist, "foreign", &foreign)
        .await
        .unwrap();
    assert_eq!(
        tables_of(&client, &foreign).await,
        ["customers", "invoices"]
    );
    assert_eq!(registry_rows(&client, &provisioner).await, 2);
    schemas.cleanup().await;
}

#[tokio::test]
async fn retire_renames_and_stops_resolving_restore_brings_the_data_back() {
    let schemas = TestSchemas::new("lifecycle_retire").await;
    let mut client = connect().await;
    let provisioner = provisioner(&schemas, &client).await;
    let allowlist = Allowlist::new();
    let schema = schemas.name("acme");
    let acme = provisioner
        .provision(&mut client, &allowlist, "acme", &schema)
        .await
        .unwrap();
    provisioner
        .provision(&mut client, &allowlist, "globex", &schemas.name("globex"))
        .await
        .unwrap();
    Customer {
        id: 0,
        email: "kept@acme.example".into(),
    }
    .insert(&client.for_tenant(&acme))
    .await
    .unwrap();

    let today: String = client
        .as_tokio_postgres()
        .query_one("SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYYMMDD')", &[])
        .await
        .unwrap()
        .get(0);
    let retired = provisioner
        .retire(&mut client, &allowlist, "acme")
        .await
        .unwrap();
    let renamed = format!("{schema}_deleted_{today}");
    assert_eq!(retired.renamed_to, renamed);
    assert!(!schema_exists(&client, &schema).await);
    assert_eq!(
        tables_of(&client, &renamed).await,
        ["customers", "invoices"]
    );
    assert!(matches!(
        allowlist.resolve("acme"),
        Err(Error::UnknownTenant { .. })
    ));
    let entry = provisioner
        .registry()
        .entry(&client, "acme")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(entry.state, TenantState::Retired);
    assert_eq!(entry.retired_schema.as_deref(), Some(renamed.as_str()));
    // A fresh load from the registry does not resolve it either; the other tenant does.
    let reloaded = Allowlist::load_from_registry(&client, provisioner.registry())
        .await
        .unwrap();
    assert!(!reloaded.contains("acme") && reloaded.contains("globex"));

    // Retiring twice, provisioning the retired key, and restoring an active key are refused.
    let err = provisioner
        .retire(&mut client, &allowlist, "acme")
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Lifecycle(LifecycleError::TenantRetired { .. })),
        "{err}"
    );
    let err = provisioner
        .provision(&mut client, &allowlist, "acme", &schema)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Lifecycle(LifecycleError::TenantRetired { .. })),
        "{err}"
    );
    let err = provisioner
        .restore(&mut client, &allowlist, "globex")
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Lifecycle(LifecycleError::TenantNotRetired { .. })
        ),
        "{err}"
    );

    let restored = provisioner
        .restore(&mut client, &allowlist, "acme")
        .await
        .unwrap();
    assert_eq!(restored, acme);
    assert!(!schema_exists(&client, &renamed).await);
    let customers = Customer::query()
        .order_by(Customer::ID.asc())
        .fetch_all(&client.for_tenant(&restored))
        .await
        .unwrap();
    assert_eq!(customers.len(), 1);
    assert_eq!(customers[0].email, "kept@acme.example");
    let entry = provisioner
        .registry()
        .entry(&client, "acme")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (entry.state, entry.retired_schema),
        (TenantState::Active, None)
    );
    schemas.cleanup().await;
}

#[tokio::test]
async fn purge_drops_only_schemas_retired_longer_than_the_grace_period() {
    let schemas = TestSchemas::new("lifecycle_purge").await;
    let mut client = connect().await;
    let provisioner = provisioner(&schemas, &client).await;
    let allowlist = Allowlist::new();
    for key in ["acme", "globex", "initech"] {
        provisioner
            .provision(&mut client, &allowlist, key, &schemas.name(key))
            .await
            .unwrap();
    }
    let acme = provisioner
        .retire(&mut client, &allowlist, "acme")
        .await
        .unwrap();
    let globex = provisioner
        .retire(&mut client, &allowlist, "globex")
        .await
        .unwrap();
    // Pretend acme was retired 40 days ago: its row and its schema's name as retiring it
    // then would have left them.
    let old_name = backdate_retirement(&client, &provisioner, &schemas.name("acme"), 40).await;
    assert_ne!(old_name, acme.renamed_to);

    let thirty_days = Duration::from_secs(30 * 86_400);
    let report = provisioner.purge(&mut client, thirty_days).await.unwrap();
    assert!(report.refused.is_empty(), "{:?}", report.refused);
    let purged = report.purged;
    assert_eq!(purged.len(), 1);
    assert_eq!(
        (purged[0].key.as_str(), purged[0].dropped_schema.as_str()),
        ("acme", old_name.as_str())
    );
    assert!(!schema_exists(&client, &old_name).await);
    assert!(
        schema_exists(&client, &globex.renamed_to).await,
        "within grace"
    );
    assert!(provisioner
        .registry()
        .entry(&client, "acme")
        .await
        .unwrap()
        .is_none());

    // A zero grace period purges the rest of the retired tenants, never an active one.
    let purged = provisioner
        .purge(&mut client, Duration::ZERO)
        .await
        .unwrap()
        .purged;
    assert_eq!(purged.len(), 1);
    assert_eq!(purged[0].key, "globex");
    assert!(!schema_exists(&client, &globex.renamed_to).await);
    assert!(schema_exists(&client, &schemas.name("initech")).await);
    assert!(provisioner
        .purge(&mut client, Duration::ZERO)
        .await
        .unwrap()
        .purged
        .is_empty());

    // A purged key can be provisioned afresh.
    provisioner
        .provision(&mut client, &allowlist, "acme", &schemas.name("acme"))
        .await
        .unwrap();
    schemas.cleanup().await;
}

#[tokio::test]
async fn long_schema_names_retire_within_63_bytes_and_restore() {
    let schemas = TestSchemas::new("lifecycle_long").await;
    let mut client = connect().await;
    let provisioner = provisioner(&schemas, &client).await;
    let allowlist = Allowlist::new();
    // 63 bytes: `_deleted_<yyyymmdd>` cannot simply be appended.
    let schema = schemas.name(&"x".repeat(62 - schemas.prefix().len()));
    assert_eq!(schema.len(), 63);
    provisioner
        .provision(&mut client, &allowlist, "long", &schema)
        .await
        .unwrap();
    let retired = provisioner
        .retire(&mut client, &allowlist, "long")
        .await
        .unwrap();
    assert_eq!(retired.renamed_to.len(), 63);
    assert!(retired.renamed_to.contains("_deleted_"));
    assert!(schema_exists(&client, &retired.renamed_to).await);
    provisioner
        .restore(&mut client, &allowlist, "long")
        .await
        .unwrap();
    assert!(schema_exists(&client, &schema).await);
    // Retire again and purge: the truncated name need not start with the test prefix.
    provisioner
        .retire(&mut client, &allowlist, "long")
        .await
        .unwrap();
    let purged = provisioner
        .purge(&mut client, Duration::ZERO)
        .await
        .unwrap()
        .purged;
    assert_eq!(purged[0].dropped_schema, retired.renamed_to);
    assert!(!schema_exists(&client, &retired.renamed_to).await);
    schemas.cleanup().await;
}

#[tokio::test]
async fn public_system_and_unknown_schemas_are_refused() {
    let schemas = TestSchemas::new("lifecycle_refusals").await;
    let mut client = connect().await;
    let provisioner = provisioner(&schemas, &client).await;
    let allowlist = Allowlist::new();

    // Provisioning into public or a system schema is refused before anything runs.
    for (schema, check) in [
        ("public", "ReservedSchema"),
        ("pg_catalog", "InvalidSchemaName"),
        ("pg_toast", "InvalidSchemaName"),
        ("information_schema", "InvalidSchemaName"),
        ("Acme; DROP SCHEMA public", "InvalidSchemaName"),
    ] {
        let err = provisioner
            .provision(&mut client, &allowlist, "evil", schema)
            .await
            .unwrap_err();
        let ok = match check {
            "ReservedSchema" => {
                matches!(err, Error::Allowlist(AllowlistError::ReservedSchema { .. }))
            }
            _ => matches!(err, Error::InvalidSchemaName(_)),
        };
        assert!(ok, "{schema}: {err}");
    }
    assert_eq!(registry_rows(&client, &provisioner).await, 0);
    assert!(tables_of(&client, "public")
        .await
        .iter()
        .all(|t| t != "customers"));

    // Unknown tenants: nothing to retire or restore.
    for result in [
        provisioner
            .retire(&mut client, &allowlist, "nobody")
            .await
            .map(|_| ()),
        provisioner
            .restore(&mut client, &allowlist, "nobody")
            .await
            .map(|_| ()),
    ] {
        assert!(
            matches!(result, Err(Error::UnknownTenant { .. })),
            "{result:?}"
        );
    }

    // A hand-edited registry cannot make teardown touch public, a system schema, or a schema
    // that does not exist.
    let table = provisioner.registry().table().to_owned();
    let missing = schemas.name("missing");
    client
        .as_tokio_postgres()
        .execute(
            &format!(
                "INSERT INTO {table} (key, schema) VALUES ('pub', 'public'), ('sys', 'pg_catalog'), ('gone', $1)"
            ),
            &[&missing],
        )
        .await
        .unwrap();
    let err = provisioner
        .retire(&mut client, &allowlist, "pub")
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Allowlist(AllowlistError::ReservedSchema { .. })),
        "{err}"
    );
    let err = provisioner
        .retire(&mut client, &allowlist, "sys")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidSchemaName(_)), "{err}");
    let err = provisioner
        .retire(&mut client, &allowlist, "gone")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Lifecycle(LifecycleError::SchemaNotFound { schema }) if *schema == missing),
        "{err}"
    );
    assert!(schema_exists(&client, "public").await);
    assert!(schema_exists(&client, "pg_catalog").await);
    // Such rows never reach an allowlist, and they do not hide the good ones: a reload
    // serves every valid row and names the refused ones with the reason.
    let loaded = Allowlist::new();
    let refresh = loaded
        .refresh_from_registry(&client, provisioner.registry())
        .await
        .unwrap();
    assert_eq!(refresh.tenants, loaded.len());
    assert!(loaded.contains("gone"), "a valid row still loads");
    assert!(!loaded.contains("pub") && !loaded.contains("sys"));
    let refused: Vec<(&str, &str)> = refresh
        .refused
        .iter()
        .map(|row| (row.key.as_str(), row.schema.as_str()))
        .collect();
    assert_eq!(refused, [("pub", "public"), ("sys", "pg_catalog")]);
    assert!(
        matches!(
            refresh.refused[0].reason,
            Error::Allowlist(AllowlistError::ReservedSchema { .. })
        ),
        "{}",
        refresh.refused[0].reason
    );
    assert!(
        matches!(refresh.refused[1].reason, Error::InvalidSchemaName(_)),
        "{}",
        refresh.refused[1].reason
    );
    assert!(
        Allowlist::load_from_registry(&client, provisioner.registry())
            .await
            .is_ok()
    );

    // A retired row whose renamed schema is not a retired name is never dropped: the
    // registry's check refuses the row, and without the check purge refuses it.
    let poison = format!(
        "UPDATE {table} SET state = 'retired', retired_schema = 'public', retired_at = now() - interval '1 year' WHERE key = 'gone'"
    );
    let refused = client
        .as_tokio_postgres()
        .execute(&poison, &[])
        .await
        .unwrap_err();
    assert_eq!(refused.code().map(|c| c.code()), Some("23514"), "{refused}");
    drop_registry_check(&client, &provisioner).await;
    client
        .as_tokio_postgres()
        .execute(&poison, &[])
        .await
        .unwrap();
    let report = provisioner
        .purge(&mut client, Duration::ZERO)
        .await
        .unwrap();
    assert!(report.purged.is_empty());
    assert_eq!(report.refused.len(), 1);
    assert!(
        matches!(&report.refused[0].error, Error::Lifecycle(LifecycleError::RetiredSchemaMismatch { key, recorded: Some(r), .. }) if key == "gone" && r == "public"),
        "{:?}",
        report.refused
    );
    assert!(schema_exists(&client, "public").await);
    schemas.cleanup().await;
}

/// Moves the retirement of the tenant with `schema` back by `days`, as retiring it then would
/// have left it: `retired_at`, the retired schema's name, and the row's `retired_schema`.
/// Returns the new retired name.
async fn backdate_retirement(
    client: &Client,
    provisioner: &Provisioner,
    schema: &str,
    days: i32,
) -> String {
    let table = provisioner.registry().table();
    let pg = client.as_tokio_postgres();
    let row = pg
        .query_one(
            &format!(
                "UPDATE {table} SET retired_at = retired_at - make_interval(days => $2) WHERE schema = $1 \
                 RETURNING retired_schema, to_char(retired_at AT TIME ZONE 'UTC', 'YYYYMMDD')"
            ),
            &[&schema, &days],
        )
        .await
        .unwrap();
    let (current, date): (String, String) = (row.get(0), row.get(1));
    let renamed = retired_schema_name(SchemaName::parse(schema).unwrap(), &date)
        .unwrap()
        .as_str()
        .to_owned();
    pg.batch_execute(&format!(
        "ALTER SCHEMA \"{current}\" RENAME TO \"{renamed}\"; \
         UPDATE {table} SET retired_schema = '{renamed}' WHERE schema = '{schema}'"
    ))
    .await
    .unwrap();
    renamed
}

/// Drops the registry's check on `retired_schema`, as a registry edited outside tenant (or
/// made before the check) may lack it: what is left to refuse a poisoned row is purge and
/// restore themselves.
async fn drop_registry_check(client: &Client, provisioner: &Provisioner) {
    client
        .as_tokio_postgres()
        .batch_execute(&format!(
            "ALTER TABLE {} DROP CONSTRAINT IF EXISTS tenants_retired_schema_derived",
            provisioner.registry().table()
        ))
        .await
        .unwrap();
}

async fn count_rows(client: &Client, table: &str) -> i64 {
    client
        .as_tokio_postgres()
        .query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn granting_to_public_or_another_reserved_role_is_refused() {
    let provisioner = || Provisioner::new(ModelSet::new().with::<Customer>()).unwrap();
    for role in [
        "public",
        "PUBLIC",
        "Public",
        "none",
        "current_user",
        "session_user",
        "current_role",
        "CURRENT_USER",
        "pg_read_all_data",
        "pg_write_all_data",
        "PG_MONITOR",
    ] {
        match provisioner().grant_to(role) {
            Err(Error::InvalidRoleName { role: refused, .. }) => assert_eq!(refused, role),
            other => panic!("grant_to({role:?}) was accepted: {other:?}"),
        }
    }
    let err = provisioner().grant_to("public").unwrap_err();
    assert!(err.to_string().contains("PUBLIC pseudo-role"), "{err}");
    // Not identifiers for the grant.
    for role in ["", "app; DROP", "App", "\"app\"", &"a".repeat(64)] {
        assert!(
            matches!(
                provisioner().grant_to(role),
                Err(Error::InvalidRoleName { .. })
            ),
            "{role:?}"
        );
    }
    assert!(provisioner().grant_to("app_rw").is_ok());
}

#[tokio::test]
async fn purge_and_restore_act_only_on_the_schema_retiring_the_row_produced() {
    let schemas = TestSchemas::new("lifecycle_poisoned").await;
    let mut client = connect().await;
    let provisioner = provisioner(&schemas, &client).await;
    let allowlist = Allowlist::new();
    // globex: a live tenant. initech: a live tenant whose schema has a retired-looking name.
    // hooli: retired like acme, with a sound row.
    let initech_schema = schemas.name("i_deleted_20200101");
    for (key, schema) in [
        ("acme", schemas.name("acme")),
        ("globex", schemas.name("globex")),
        ("initech", initech_schema.clone()),
        ("hooli", schemas.name("hooli")),
    ] {
        let tenant = provisioner
            .provision(&mut client, &allowlist, key, &schema)
            .await
            .unwrap();
        Customer {
            id: 0,
            email: format!("{key}@example.com"),
        }
        .insert(&client.for_tenant(&tenant))
        .await
        .unwrap();
    }
    // A schema the registry never heard of, with a retired-looking name.
    let unrelated = schemas.name("u_deleted_20200101");
    client
        .as_tokio_postgres()
        .batch_execute(&format!(
            "CREATE SCHEMA \"{unrelated}\"; CREATE TABLE \"{unrelated}\".keep (x int); INSERT INTO \"{unrelated}\".keep VALUES (1)"
        ))
        .await
        .unwrap();
    let acme = provisioner
        .retire(&mut client, &allowlist, "acme")
        .await
        .unwrap();
    let hooli = provisioner
        .retire(&mut client, &allowlist, "hooli")
        .await
        .unwrap();
    drop_registry_check(&client, &provisioner).await;
    let table = provisioner.registry().table().to_owned();

    let live = [
        (
            "another tenant's live schema",
            format!("\"{}\".customers", schemas.name("globex")),
            schemas.name("globex"),
        ),
        (
            "a schema the registry never retired",
            format!("\"{unrelated}\".keep"),
            unrelated.clone(),
        ),
        (
            "a live schema with a valid suffix but another base",
            format!("\"{initech_schema}\".customers"),
            initech_schema.clone(),
        ),
    ];
    for (i, (case, data, target)) in live.iter().enumerate() {
        client
            .as_tokio_postgres()
            .execute(
                &format!("UPDATE {table} SET retired_schema = $1 WHERE key = 'acme'"),
                &[target],
            )
            .await
            .unwrap();
        let report = provisioner
            .purge(&mut client, Duration::ZERO)
            .await
            .unwrap_or_else(|e| panic!("{case}: purge failed instead of going on: {e}"));
        assert_eq!(
            count_rows(&client, data).await,
            1,
            "{case}: live data dropped"
        );
        assert_eq!(report.refused.len(), 1, "{case}: {report:?}");
        let refused = &report.refused[0];
        assert_eq!(refused.key, "acme");
        assert!(
            matches!(&refused.error, Error::Lifecycle(LifecycleError::RetiredSchemaMismatch { recorded: Some(r), expected, .. })
                if r == target && *expected == acme.renamed_to),
            "{case}: {:?}",
            refused.error
        );
        // The sound row is purged all the same, in the same run.
        let purged: Vec<&str> = report.purged.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            purged,
            if i == 0 { vec!["hooli"] } else { vec![] },
            "{case}"
        );
        // Restore renames nothing either.
        let err = provisioner
            .restore(&mut client, &allowlist, "acme")
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::Lifecycle(LifecycleError::RetiredSchemaMismatch { .. })
            ),
            "{case}: {err}"
        );
        assert!(schema_exists(&client, target).await, "{case}");
        assert!(
            !schema_exists(&client, &schemas.name("acme")).await,
            "{case}"
        );
    }
    assert!(!schema_exists(&client, &hooli.renamed_to).await);
    assert!(schema_exists(&client, &acme.renamed_to).await);

    // Healed by hand, the row is purged: exactly acme's own retired schema goes.
    client
        .as_tokio_postgres()
        .execute(
            &format!("UPDATE {table} SET retired_schema = $1 WHERE key = 'acme'"),
            &[&acme.renamed_to],
        )
        .await
        .unwrap();
    let report = provisioner
        .purge(&mut client, Duration::ZERO)
        .await
        .unwrap();
    assert!(report.refused.is_empty(), "{report:?}");
    assert_eq!(report.purged.len(), 1);
    assert_eq!(report.purged[0].dropped_schema, acme.renamed_to);
    for (_, data, _) in &live {
        assert_eq!(count_rows(&client, data).await, 1);
    }
    schemas.cleanup().await;
}

#[tokio::test]
async fn a_retired_name_that_is_a_registered_tenants_schema_is_never_dropped() {
    let schemas = TestSchemas::new("lifecycle_in_use").await;
    let mut client = connect().await;
    let provisioner = provisioner(&schemas, &client).await;
    let allowlist = Allowlist::new();
    let acme = provisioner
        .provision(&mut client, &allowlist, "acme", &schemas.name("acme"))
        .await
        .unwrap();
    Customer {
        id: 0,
        email: "a@example.com".into(),
    }
    .insert(&client.for_tenant(&acme))
    .await
    .unwrap();
    let retired = provisioner
        .retire(&mut client, &allowlist, "acme")
        .await
        .unwrap();
    // A hand-made row claims acme's retired schema as a live tenant's schema.
    let table = provisioner.registry().table().to_owned();
    client
        .as_tokio_postgres()
        .execute(
            &format!("INSERT INTO {table} (key, schema) VALUES ('initech', $1)"),
            &[&retired.renamed_to],
        )
        .await
        .unwrap();
    let report = provisioner
        .purge(&mut client, Duration::ZERO)
        .await
        .unwrap();
    assert!(report.purged.is_empty());
    assert!(
        matches!(&report.refused[..], [r] if matches!(&r.error,
            Error::Lifecycle(LifecycleError::RetiredSchemaInUse { key, schema, used_by })
                if key == "acme" && *schema == retired.renamed_to && used_by == "initech")),
        "{report:?}"
    );
    assert!(schema_exists(&client, &retired.renamed_to).await);
    let err = provisioner
        .restore(&mut client, &allowlist, "acme")
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Lifecycle(LifecycleError::RetiredSchemaInUse { .. })
        ),
        "{err}"
    );
    assert!(schema_exists(&client, &retired.renamed_to).await);
    schemas.cleanup().await;
}

#[tokio::test]
async fn the_registry_check_refuses_retired_schemas_not_derived_from_the_row() {
    let schemas = TestSchemas::new("lifecycle_check").await;
    let mut client = connect().await;
    let provisioner = provisioner(&schemas, &client).await;
    let allowlist = Allowlist::new();
    for key in ["acme", "globex"] {
        provisioner
            .provision(&mut client, &allowlist, key, &schemas.name(key))
            .await
            .unwrap();
    }
    let retired = provisioner
        .retire(&mut client, &allowlist, "acme")
        .await
        .unwrap();
    let table = provisioner.registry().table().to_owned();
    let update = format!("UPDATE {table} SET retired_schema = $1 WHERE key = 'acme'");
    let globex = schemas.name("globex");
    for bad in [
        globex.clone(),
        format!("{globex}_deleted_20260101"),
        format!("{}_deleted_2026", schemas.name("acme")),
        "public".to_owned(),
    ] {
        let err = client
            .as_tokio_postgres()
            .execute(&update, &[&bad])
            .await
            .unwrap_err();
        assert_eq!(err.code().map(|c| c.code()), Some("23514"), "{bad}: {err}");
    }
    // Another date is the right shape: the check allows it, purge checks the date.
    let other_date = format!("{}_deleted_20200101", schemas.name("acme"));
    client
        .as_tokio_postgres()
        .execute(&update, &[&other_date])
        .await
        .unwrap();
    client
        .as_tokio_postgres()
        .execute(&update, &[&retired.renamed_to])
        .await
        .unwrap();
    // A retired row without its retirement time.
    let err = client
        .as_tokio_postgres()
        .execute(
            &format!("UPDATE {table} SET retired_at = NULL WHERE key = 'acme'"),
            &[],
        )
        .await
        .unwrap_err();
    assert_eq!(err.code().map(|c| c.code()), Some("23514"), "{err}");
    schemas.cleanup().await;
}

#[tokio::test]
async fn install_adds_the_check_to_a_registry_made_before_it() {
    let schemas = TestSchemas::new("lifecycle_old_registry").await;
    let client = connect().await;
    let pg = client.as_tokio_postgres();
    // The registry as `install` made it before the check, one sound row and, in the second
    // registry, one poisoned row.
    let old_table = |schema: &str| {
        format!(
            "CREATE SCHEMA \"{schema}\"; CREATE TABLE \"{schema}\".\"tenants\" (
                 key text PRIMARY KEY,
                 schema text NOT NULL UNIQUE,
                 state text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'retired')),
                 retired_schema text UNIQUE,
                 created_at timestamptz NOT NULL DEFAULT now(),
                 retired_at timestamptz,
                 CHECK ((state = 'retired') = (retired_schema IS NOT NULL)))"
        )
    };
    let (sound, poisoned) = (schemas.name("sound"), schemas.name("poisoned"));
    pg.batch_execute(&format!(
        "{}; INSERT INTO \"{sound}\".tenants (key, schema) VALUES ('acme', 'tenant_acme')",
        old_table(&sound)
    ))
    .await
    .unwrap();
    pg.batch_execute(&format!(
        "{}; INSERT INTO \"{poisoned}\".tenants (key, schema, state, retired_schema, retired_at) \
         VALUES ('acme', 'tenant_acme', 'retired', 'tenant_globex', now())",
        old_table(&poisoned)
    ))
    .await
    .unwrap();
    let client = &client;
    let check = |schema: String| async move {
        client
            .as_tokio_postgres()
            .query_opt(
                "SELECT convalidated FROM pg_constraint WHERE conname = 'tenants_retired_schema_derived' \
                 AND conrelid = format('%I.tenants', $1::text)::regclass",
                &[&schema],
            )
            .await
            .unwrap()
            .map(|r| r.get::<_, bool>(0))
    };
    for registry in [&sound, &poisoned] {
        let provisioner = Provisioner::new(ModelSet::new())
            .unwrap()
            .with_registry(Registry::new(registry).unwrap());
        provisioner.install(client).await.unwrap();
        provisioner.install(client).await.unwrap(); // idempotent
    }
    assert_eq!(check(sound.clone()).await, Some(true), "validated");
    assert_eq!(
        check(poisoned.clone()).await,
        Some(false),
        "added, not validated"
    );
    // Either way it refuses a poisoned row from now on.
    for registry in [&sound, &poisoned] {
        let err = client
            .as_tokio_postgres()
            .execute(
                &format!("UPDATE \"{registry}\".tenants SET state = 'retired', retired_schema = 'tenant_globex', retired_at = now()"),
                &[],
            )
            .await
            .unwrap_err();
        assert_eq!(err.code().map(|c| c.code()), Some("23514"), "{err}");
    }
    schemas.cleanup().await;
}

#[tokio::test]
async fn a_missing_registry_is_a_typed_error() {
    let schemas = TestSchemas::new("lifecycle_no_registry").await;
    let mut client = connect().await;
    let registry = Registry::new(&schemas.name("registry")).unwrap();
    let provisioner = Provisioner::new(ModelSet::new().with::<Customer>())
        .unwrap()
        .with_registry(registry.clone());
    let err = provisioner
        .provision(
            &mut client,
            &Allowlist::new(),
            "acme",
            &schemas.name("acme"),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Lifecycle(LifecycleError::RegistryNotInstalled { .. })
        ),
        "{err}"
    );
    assert!(!schema_exists(&client, &schemas.name("acme")).await);
    let err = Allowlist::load_from_registry(&client, &registry)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Lifecycle(LifecycleError::RegistryNotInstalled { .. })
        ),
        "{err}"
    );
    schemas.cleanup().await;
}
