//! The schema reader on a real PostgreSQL: `SchemaSnapshot::read` of schemas built from the
//! models diffs empty against `ModelSet::expected_shape`; after each hand-made alteration it
//! reports exactly that difference. And `Db::drop_schema` / `drop_schema_registered`.

use tenant_runtime::error::{AllowlistError, LifecycleError};
use tenant_runtime::model::{ConstraintKind, Difference, SchemaSnapshot};
use tenant_runtime::{
    Allowlist, Client, Db, Error, Model, ModelSet, Provisioner, Registry, SchemaName, Slot,
};
use tenant_tests::TestSchemas;

#[derive(Debug, Model)]
#[tenant(table = "customers")]
struct Customer {
    #[tenant(primary_key, identity)]
    id: i64,
    #[tenant(unique)]
    email: String,
    name: String,
}

#[derive(Debug, Model)]
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
    #[tenant(default = "'draft'")]
    status: String,
    note: Option<String>,
}

#[derive(Debug, Model)]
#[tenant(table = "plans", schema = "shared")]
struct Plan {
    #[tenant(primary_key)]
    code: String,
}

#[derive(Debug, Model)]
#[tenant(table = "subscriptions")]
struct Subscription {
    #[tenant(primary_key, identity)]
    id: i64,
    #[tenant(references = Plan)]
    plan: String,
}

fn models() -> ModelSet {
    ModelSet::new()
        .with::<Customer>()
        .with::<Invoice>()
        .with::<Plan>()
        .with::<Subscription>()
}

/// Each alteration, as SQL run in the tenant schema (`{s}` is the quoted schema), and the
/// one difference it must produce.
fn alterations() -> Vec<(&'static str, &'static str, Difference)> {
    let s = |x: &str| x.to_owned();
    vec![
        (
            "drop_column",
            "ALTER TABLE {s}.invoices DROP COLUMN note",
            Difference::MissingColumn {
                table: s("invoices"),
                column: s("note"),
            },
        ),
        (
            "change_type",
            "ALTER TABLE {s}.customers ALTER COLUMN name TYPE varchar(50)",
            Difference::TypeMismatch {
                table: s("customers"),
                column: s("name"),
                expected: s("text"),
                found: s("character varying(50)"),
            },
        ),
        (
            "drop_index",
            "DROP INDEX {s}.invoices_amount_cents_idx",
            Difference::MissingIndex {
                table: s("invoices"),
                name: s("invoices_amount_cents_idx"),
                expected: s("INDEX USING btree (amount_cents)"),
            },
        ),
        (
            "extra_table",
            "CREATE TABLE {s}.audit (id bigint)",
            Difference::ExtraTable { table: s("audit") },
        ),
        (
            "drop_constraint",
            "ALTER TABLE {s}.customers DROP CONSTRAINT customers_email_key",
            Difference::MissingConstraint {
                table: s("customers"),
                name: s("customers_email_key"),
                expected: s("UNIQUE (email)"),
            },
        ),
        (
            "set_not_null",
            "ALTER TABLE {s}.invoices ALTER COLUMN note SET NOT NULL",
            Difference::NullabilityMismatch {
                table: s("invoices"),
                column: s("note"),
                expected_nullable: true,
            },
        ),
        (
            "change_default",
            "ALTER TABLE {s}.invoices ALTER COLUMN status SET DEFAULT 'open'",
            Difference::DefaultMismatch {
                table: s("invoices"),
                column: s("status"),
                expected: Some(s("'draft'")),
                found: Some(s("'open'")),
            },
        ),
        (
            "extra_enum",
            "CREATE TYPE {s}.mood AS ENUM ('happy', 'sad')",
            Difference::ExtraEnum { name: s("mood") },
        ),
        (
            "drop_table",
            "DROP TABLE {s}.subscriptions",
            Difference::MissingTable {
                table: s("subscriptions"),
            },
        ),
        (
            "rename_column",
            "ALTER TABLE {s}.invoices RENAME COLUMN note TO memo",
            Difference::RenamedColumn {
                table: s("invoices"),
                expected: s("note"),
                found: s("memo"),
            },
        ),
    ]
}

async fn build(client: &Client, allowlist: &Allowlist, key: &str) {
    let db = Db::new(client, &allowlist.resolve(key).unwrap());
    db.create_schema().await.unwrap();
    models().create_tenant_tables(&db).await.unwrap();
}

#[tokio::test]
async fn diff_is_empty_on_built_schemas_and_names_each_alteration() {
    let schemas = TestSchemas::new("schema_diff").await;
    let alterations = alterations();
    let mut keys: Vec<&str> = vec!["clean"];
    keys.extend(alterations.iter().map(|(k, _, _)| *k));
    let allowlist = schemas.allowlist(&keys);
    let client = schemas.client_with_shared_slot().await;
    models().create_shared_tables(&client, None).await.unwrap();
    for key in &keys {
        build(&client, &allowlist, key).await;
    }
    for (key, sql, _) in &alterations {
        let schema = allowlist.resolve(key).unwrap().schema();
        let sql = sql.replace("{s}", &schema.quoted());
        client
            .as_tokio_postgres()
            .batch_execute(&sql)
            .await
            .unwrap();
    }

    // One read for all eleven schemas (and one that does not exist).
    let mut names: Vec<SchemaName> = allowlist.tenants().iter().map(|t| t.schema()).collect();
    names.push(SchemaName::parse(&schemas.name("absent")).unwrap());
    let snapshot = SchemaSnapshot::read(&client, &names).await.unwrap();
    assert_eq!(snapshot.len(), keys.len(), "the absent schema is left out");

    let clean = allowlist.resolve("clean").unwrap();
    let db = Db::new(&client, &clean);
    let expected = models().expected_shape(&db, Slot::Tenant).unwrap();
    let live = snapshot.get(clean.schema()).unwrap();
    assert_eq!(
        expected.diff(live),
        vec![],
        "built from the models: no difference"
    );
    // What the reader saw, in catalog terms.
    let invoices = &live.tables["invoices"];
    let fk = &invoices.constraints["invoices_customer_id_fkey"];
    assert_eq!(fk.kind, ConstraintKind::ForeignKey);
    assert_eq!(
        fk.definition.as_deref(),
        Some(
            format!(
                "FOREIGN KEY (customer_id) REFERENCES {}.customers(id)",
                clean.schema().as_str()
            )
            .as_str()
        )
    );
    assert!(invoices.indexes["invoices_amount_cents_idx"]
        .definition
        .as_deref()
        .unwrap()
        .ends_with("USING btree (amount_cents)"));
    let sub_fk = &live.tables["subscriptions"].constraints["subscriptions_plan_fkey"];
    assert_eq!(
        sub_fk.references.as_ref().unwrap().schema,
        schemas.name("shared"),
        "a foreign key into a named slot points at the slot's schema"
    );
    // The shared schema diffs empty against the shared models too.
    let shared = models().expected_shape(&db, Slot::Named("shared")).unwrap();
    let shared_live = SchemaSnapshot::read(
        &client,
        &[SchemaName::parse(&schemas.name("shared")).unwrap()],
    )
    .await
    .unwrap();
    assert_eq!(shared.diff(shared_live.schemas().next().unwrap()), vec![]);

    for (key, _, difference) in &alterations {
        let tenant = allowlist.resolve(key).unwrap();
        let expected = models()
            .expected_shape(&Db::new(&client, &tenant), Slot::Tenant)
            .unwrap();
        let found = expected.diff(snapshot.get(tenant.schema()).unwrap());
        assert_eq!(found, vec![difference.clone()], "alteration {key}");
        println!("{key}: {}", found[0]);
    }
    schemas.cleanup().await;
}

#[tokio::test]
async fn differences_read_as_sentences() {
    let d = Difference::TypeMismatch {
        table: "customers".into(),
        column: "name".into(),
        expected: "text".into(),
        found: "character varying(50)".into(),
    };
    assert_eq!(
        d.to_string(),
        r#"column "customers"."name" is character varying(50), the model says text"#
    );
    let d = Difference::NullabilityMismatch {
        table: "invoices".into(),
        column: "note".into(),
        expected_nullable: true,
    };
    assert_eq!(
        d.to_string(),
        r#"column "invoices"."note" is NOT NULL, the model says NULL-able"#
    );
}

#[tokio::test]
async fn drop_schema_drops_and_the_registered_variant_refuses_strangers() {
    let schemas = TestSchemas::new("schema_drop").await;
    let mut client = Client::connect(schemas.url()).await.unwrap();
    let registry = Registry::new(&schemas.name("registry")).unwrap();
    let provisioner = Provisioner::new(ModelSet::new().with::<Customer>())
        .unwrap()
        .with_registry(registry.clone());
    provisioner.install(&client).await.unwrap();
    let allowlist = Allowlist::new();
    let acme = provisioner
        .provision(&mut client, &allowlist, "acme", &schemas.name("acme"))
        .await
        .unwrap();

    // Not in the registry: refused, the schema stays.
    let stranger_list = schemas.allowlist(&["ghost"]);
    let ghost = stranger_list.resolve("ghost").unwrap();
    let ghost_db = Db::new(&client, &ghost);
    ghost_db.create_schema().await.unwrap();
    let err = ghost_db
        .drop_schema_registered(&registry)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::UnknownTenant { ref key } if key == "ghost"),
        "{err}"
    );
    assert!(exists(&client, &schemas.name("ghost")).await);

    // A stale allowlist sends "acme" to another schema: refused.
    let stale = Allowlist::from_pairs([("acme", schemas.name("ghost"))]).unwrap();
    let err = Db::new(&client, &stale.resolve("acme").unwrap())
        .drop_schema_registered(&registry)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Lifecycle(LifecycleError::TenantConflict { .. })),
        "{err}"
    );
    assert!(exists(&client, &schemas.name("ghost")).await);

    // Registered with this schema: dropped, with its tables.
    Db::new(&client, &acme)
        .drop_schema_registered(&registry)
        .await
        .unwrap();
    assert!(!exists(&client, &schemas.name("acme")).await);

    // The bare primitive drops any tenant schema, and again is a no-op.
    ghost_db.drop_schema().await.unwrap();
    ghost_db.drop_schema().await.unwrap();
    assert!(!exists(&client, &schemas.name("ghost")).await);

    // `public` and system schemas never reach it: no tenant can name them.
    assert!(matches!(
        Allowlist::from_pairs([("p", "public")]),
        Err(Error::Allowlist(AllowlistError::ReservedSchema { .. }))
    ));
    assert!(matches!(
        Allowlist::from_pairs([("p", "pg_catalog")]),
        Err(Error::InvalidSchemaName(_))
    ));
    schemas.cleanup().await;
}

async fn exists(client: &Client, schema: &str) -> bool {
    !client
        .as_tokio_postgres()
        .query("SELECT 1 FROM pg_namespace WHERE nspname = $1", &[&schema])
        .await
        .unwrap()
        .is_empty()
}
