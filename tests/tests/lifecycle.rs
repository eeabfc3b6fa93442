//! Provisioning and two-phase teardown on a real PostgreSQL: model sets in foreign-key order,
//! provisioning (grants, registry, idempotence, concurrency, atomicity), retire / restore /
//! purge, and the refusal of `public`, system and unknown schemas.

use std::time::Duration;

use tenant_runtime::error::{AllowlistError, Duplicated, LifecycleError, ModelError};
use tenant_runtime::lifecycle::TenantState;
use tenant_runtime::{Allowlist, Client, Error, Model, ModelSet, Provisioner, Registry, SchemaMap};
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
    // Pretend acme was retired 40 days ago.
    client
        .as_tokio_postgres()
        .execute(
            &format!(
                "UPDATE \"{}\".tenants SET retired_at = now() - interval '40 days' WHERE key = 'acme'",
                schemas.name("registry")
            ),
            &[],
        )
        .await
        .unwrap();

    let thirty_days = Duration::from_secs(30 * 86_400);
    let purged = provisioner.purge(&mut client, thirty_days).await.unwrap();
    assert_eq!(purged.len(), 1);
    assert_eq!(
        (purged[0].key.as_str(), purged[0].dropped_schema.as_str()),
        ("acme", acme.renamed_to.as_str())
    );
    assert!(!schema_exists(&client, &acme.renamed_to).await);
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
        .unwrap();
    assert_eq!(purged.len(), 1);
    assert_eq!(purged[0].key, "globex");
    assert!(!schema_exists(&client, &globex.renamed_to).await);
    assert!(schema_exists(&client, &schemas.name("initech")).await);
    assert!(provisioner
        .purge(&mut client, Duration::ZERO)
        .await
        .unwrap()
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
        .unwrap();
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
    // Such a registry cannot be loaded into an allowlist either.
    let err = Allowlist::load_from_registry(&client, provisioner.registry())
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Allowlist(AllowlistError::ReservedSchema { .. })),
        "{err}"
    );

    // A retired row whose renamed schema is not a retired name is never dropped.
    client
        .as_tokio_postgres()
        .execute(
            &format!(
                "UPDATE {table} SET state = 'retired', retired_schema = 'public', retired_at = now() - interval '1 year' WHERE key = 'gone'"
            ),
            &[],
        )
        .await
        .unwrap();
    let err = provisioner
        .purge(&mut client, Duration::ZERO)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Allowlist(AllowlistError::ReservedSchema { .. })),
        "{err}"
    );
    assert!(schema_exists(&client, "public").await);
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
