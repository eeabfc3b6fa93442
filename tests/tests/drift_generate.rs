//! Autogenerate on a real PostgreSQL: for a model change of each kind, `Migrator::generate`
//! writes the next migration file (slot placeholders only, accepted by the same checks as
//! `embed_migrations!`), and that file, applied after the existing ones, makes the drift
//! check clean against the changed models.

use std::path::{Path, PathBuf};

use tenant_runtime::error::MigrateError;
use tenant_runtime::lifecycle::Expected;
use tenant_runtime::{Client, Error, Migrations, Migrator, Model, ModelSet, SqlEnum, Tenant};
use tenant_tests::{database_url, fresh_copy, TestSchemas};

const BASE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/drift");

#[path = "support/drift_models.rs"]
mod drift_models;
use drift_models::{Customer, Invoice};

/// A new table, with a cascading foreign key and a check.
#[derive(Debug, Model)]
#[tenant(table = "payments")]
struct Payment {
    #[tenant(primary_key, identity)]
    id: i64,
    #[tenant(references = Invoice, on_delete = "cascade")]
    invoice_id: i64,
    #[tenant(check = "cents > 0")]
    cents: i64,
}

/// New columns: NULL-able, and NOT NULL with a default.
#[derive(Debug, Model)]
#[tenant(table = "invoices")]
struct InvoiceNewColumns {
    #[tenant(primary_key, identity)]
    id: i64,
    #[tenant(references = Customer)]
    customer_id: i64,
    #[tenant(index)]
    amount_cents: i64,
    #[tenant(default = "false")]
    paid: bool,
    note: Option<String>,
    due_days: Option<i32>,
    #[tenant(default = "'draft'")]
    status: String,
}

/// `note` dropped.
#[derive(Debug, Model)]
#[tenant(table = "invoices")]
struct InvoiceWithoutNote {
    #[tenant(primary_key, identity)]
    id: i64,
    #[tenant(references = Customer)]
    customer_id: i64,
    #[tenant(index)]
    amount_cents: i64,
    #[tenant(default = "false")]
    paid: bool,
}

/// Altered columns: a type (bigint to integer), NOT NULL, another default, no identity.
#[derive(Debug, Model)]
#[tenant(table = "invoices")]
struct InvoiceAltered {
    #[tenant(primary_key)]
    id: i64,
    #[tenant(references = Customer)]
    customer_id: i64,
    #[tenant(index)]
    amount_cents: i32,
    #[tenant(default = "true")]
    paid: bool,
    note: String,
}

/// `note` renamed to `memo` (same type): a choice.
#[derive(Debug, Model)]
#[tenant(table = "invoices")]
struct InvoiceRenamed {
    #[tenant(primary_key, identity)]
    id: i64,
    #[tenant(references = Customer)]
    customer_id: i64,
    #[tenant(index)]
    amount_cents: i64,
    #[tenant(default = "false")]
    paid: bool,
    memo: Option<String>,
}

/// Indexes: the single-column one gone, a composite partial one and a hash one added.
#[derive(Debug, Model)]
#[tenant(
    table = "invoices",
    index(
        customer_id,
        amount_cents,
        where = "NOT paid",
        name = "invoices_unpaid_idx"
    )
)]
struct InvoiceIndexes {
    #[tenant(primary_key, identity)]
    id: i64,
    #[tenant(references = Customer)]
    customer_id: i64,
    amount_cents: i64,
    #[tenant(default = "false")]
    paid: bool,
    #[tenant(index(using = "hash"))]
    note: Option<String>,
}

/// Constraints: email no longer unique, name unique and checked.
#[derive(Debug, Model)]
#[tenant(table = "customers")]
struct CustomerConstraints {
    #[tenant(primary_key, identity)]
    id: i64,
    email: String,
    #[tenant(unique, check = "name <> ''")]
    name: String,
}

/// Invoices pointing at the constrained customers (the same columns as `Invoice`).
#[derive(Debug, Model)]
#[tenant(table = "invoices")]
struct InvoiceOfConstrained {
    #[tenant(primary_key, identity)]
    id: i64,
    #[tenant(references = CustomerConstraints)]
    customer_id: i64,
    #[tenant(index)]
    amount_cents: i64,
    #[tenant(default = "false")]
    paid: bool,
    note: Option<String>,
}

/// `invoices` renamed to `bills`, the same columns: a choice (rename, or drop and create).
#[derive(Debug, Model)]
#[tenant(table = "bills")]
struct Bill {
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

/// A table of its own, for models that drop both base tables (`invoices` references
/// `customers`, so it has to go first).
#[derive(Debug, Model)]
#[tenant(table = "notes")]
struct Note {
    #[tenant(primary_key, identity)]
    id: i64,
    body: String,
}

fn base() -> ModelSet {
    ModelSet::new().with::<Customer>().with::<Invoice>()
}

/// Each kind of model change, with what the generated file must say.
fn changes() -> Vec<(&'static str, ModelSet, &'static [&'static str])> {
    vec![
        (
            "add_table",
            base().with::<Payment>(),
            &[
                r#"CREATE TABLE IF NOT EXISTS {tenant}."payments""#,
                r#"REFERENCES {tenant}."invoices" ("id") ON DELETE CASCADE"#,
            ],
        ),
        (
            "drop_table",
            ModelSet::new().with::<Customer>(),
            &[r#"DROP TABLE {tenant}."invoices";"#],
        ),
        (
            "rename_table",
            ModelSet::new().with::<Customer>().with::<Bill>(),
            &[
                "-- CHOICE: ",
                r#"ALTER TABLE {tenant}."invoices" RENAME TO "bills";"#,
                r#"ALTER TABLE {tenant}."bills" RENAME CONSTRAINT "invoices_pkey" TO "bills_pkey";"#,
                r#"ALTER TABLE {tenant}."bills" RENAME CONSTRAINT "invoices_customer_id_fkey" TO "bills_customer_id_fkey";"#,
                r#"ALTER INDEX {tenant}."invoices_amount_cents_idx" RENAME TO "bills_amount_cents_idx";"#,
                r#"-- DROP TABLE {tenant}."invoices";"#,
                r#"-- CREATE TABLE IF NOT EXISTS {tenant}."bills""#,
            ],
        ),
        (
            "drop_related_tables",
            ModelSet::new().with::<Note>(),
            &[
                r#"DROP TABLE {tenant}."invoices";"#,
                r#"DROP TABLE {tenant}."customers";"#,
            ],
        ),
        (
            "add_columns",
            ModelSet::new()
                .with::<Customer>()
                .with::<InvoiceNewColumns>(),
            &[
                r#"ALTER TABLE {tenant}."invoices" ADD COLUMN "due_days" INTEGER;"#,
                r#"ADD COLUMN "status" TEXT NOT NULL DEFAULT 'draft';"#,
            ],
        ),
        (
            "drop_column",
            ModelSet::new()
                .with::<Customer>()
                .with::<InvoiceWithoutNote>(),
            &[r#"ALTER TABLE {tenant}."invoices" DROP COLUMN "note";"#],
        ),
        (
            "alter_columns",
            ModelSet::new().with::<Customer>().with::<InvoiceAltered>(),
            &[
                r#"ALTER COLUMN "amount_cents" TYPE INTEGER USING "amount_cents"::INTEGER;"#,
                r#"ALTER COLUMN "note" SET NOT NULL;"#,
                r#"ALTER COLUMN "paid" SET DEFAULT true;"#,
                r#"ALTER COLUMN "id" DROP IDENTITY IF EXISTS;"#,
            ],
        ),
        (
            "rename_column",
            ModelSet::new().with::<Customer>().with::<InvoiceRenamed>(),
            &[
                "-- CHOICE: ",
                r#"ALTER TABLE {tenant}."invoices" RENAME COLUMN "note" TO "memo";"#,
                r#"-- ALTER TABLE {tenant}."invoices" DROP COLUMN "note";"#,
                r#"-- ALTER TABLE {tenant}."invoices" ADD COLUMN "memo" TEXT;"#,
            ],
        ),
        (
            "indexes",
            ModelSet::new().with::<Customer>().with::<InvoiceIndexes>(),
            &[
                r#"DROP INDEX {tenant}."invoices_amount_cents_idx";"#,
                r#"CREATE INDEX IF NOT EXISTS "invoices_unpaid_idx" ON {tenant}."invoices" ("customer_id", "amount_cents") WHERE NOT paid;"#,
                r#"USING hash ("note")"#,
            ],
        ),
        (
            "constraints",
            ModelSet::new()
                .with::<CustomerConstraints>()
                .with::<InvoiceOfConstrained>(),
            &[
                r#"ALTER TABLE {tenant}."customers" DROP CONSTRAINT "customers_email_key";"#,
                r#"ADD CONSTRAINT "customers_name_key" UNIQUE ("name");"#,
                r#"ADD CONSTRAINT "customers_name_check" CHECK (name <> '');"#,
            ],
        ),
    ]
}

/// A copy of the base migrations in a directory of its own.
fn copy_of_base(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("generate-{name}-{}", std::process::id()));
    fresh_copy(Path::new(BASE), &dir);
    dir
}

async fn connect() -> Client {
    Client::connect(&database_url().await).await.unwrap()
}

#[tokio::test]
async fn generate_closes_each_kind_of_model_change() {
    let schemas = TestSchemas::new("drift_generate").await;
    let mut client = connect().await;
    for (kind, models, expected_sql) in changes() {
        let dir = copy_of_base(kind);
        let before = Migrations::from_dir(&dir, &[]).unwrap();
        let generated = Migrator::new(&before)
            .generate(&mut client, &models, kind)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{kind}: nothing generated"));
        assert_eq!(generated.version, 3, "{kind}");
        assert_eq!(generated.file_name, format!("0003_{kind}.sql"));
        assert!(!generated.differences.is_empty(), "{kind}");
        let sql = &generated.sql;
        for needle in expected_sql {
            assert!(sql.contains(needle), "{kind}: no {needle:?} in\n{sql}");
        }
        // Slot placeholders only: neither the scratch schema nor any other schema name.
        assert!(sql.contains("{tenant}"), "{kind}:\n{sql}");
        assert!(!sql.contains("_tenant_scratch"), "{kind}:\n{sql}");
        assert!(!sql.contains("\"public\""), "{kind}:\n{sql}");
        assert_eq!(
            generated.choices.len(),
            usize::from(kind == "rename_column" || kind == "rename_table"),
            "{kind}: {:?}",
            generated.choices
        );

        // Written next to the others, it passes the same checks as embed_migrations!.
        let path = generated.write_to(&dir).unwrap();
        assert_eq!(path, dir.join(format!("0003_{kind}.sql")));
        let after =
            Migrations::from_dir(&dir, &[]).unwrap_or_else(|e| panic!("{kind}: {e}\n{sql}"));
        assert_eq!(after.latest_version(), Some(3));
        let migrator = Migrator::new(&after);
        assert_eq!(
            migrator.diff_models(&mut client, &models).await.unwrap(),
            [],
            "{kind}: the migrations now build the models\n{sql}"
        );
        // A tenant migrated with the base migrations, then with the new one: clean.
        let tenant: Tenant = schemas.allowlist(&[kind]).resolve(kind).unwrap();
        client
            .as_tokio_postgres()
            .batch_execute(&format!("CREATE SCHEMA {}", tenant.schema()))
            .await
            .unwrap();
        let report = Migrator::new(&before)
            .run(&mut client, std::slice::from_ref(&tenant))
            .await
            .unwrap();
        assert!(report.is_success(), "{kind}: {report}");
        let schema = tenant.schema();
        if kind == "rename_table" {
            client
                .as_tokio_postgres()
                .batch_execute(&format!(
                    "INSERT INTO {schema}.customers (email, name) VALUES ('a@b.c', 'A'); \
                     INSERT INTO {schema}.invoices (customer_id, amount_cents) \
                     SELECT id, 1200 FROM {schema}.customers"
                ))
                .await
                .unwrap();
        }
        let report = migrator
            .run(&mut client, std::slice::from_ref(&tenant))
            .await
            .unwrap();
        assert!(report.is_success(), "{kind}: {report}\n{sql}");
        if kind == "rename_table" {
            // The rename kept the rows (drop and create would have lost them).
            let row = client
                .as_tokio_postgres()
                .query_one(&format!("SELECT amount_cents FROM {schema}.bills"), &[])
                .await
                .unwrap();
            assert_eq!(row.get::<_, i64>(0), 1200);
        }
        let check = migrator
            .check(&mut client, &[tenant], Expected::Models(&models))
            .await
            .unwrap();
        assert!(check.is_clean(), "{kind}: {check}\n{sql}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
    schemas.cleanup().await;
}

#[tokio::test]
async fn generate_writes_nothing_when_the_migrations_build_the_models() {
    let mut client = connect().await;
    let migrations = Migrations::from_dir(BASE, &[]).unwrap();
    let generated = Migrator::new(&migrations)
        .generate(&mut client, &base(), "noop")
        .await
        .unwrap();
    assert!(generated.is_none(), "{generated:?}");
}

#[tokio::test]
async fn generate_refuses_a_bad_name_and_never_overwrites_a_file() {
    let mut client = connect().await;
    let migrations = Migrations::from_dir(BASE, &[]).unwrap();
    let migrator = Migrator::new(&migrations);
    let models = base().with::<Payment>();
    let err = migrator
        .generate(&mut client, &models, "Add-Payments")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Migrate(m) if matches!(**m, MigrateError::Invalid { .. })),
        "{err}"
    );
    assert!(err.to_string().contains("0003_Add-Payments.sql"), "{err}");

    let dir = copy_of_base("overwrite");
    let generated = migrator
        .generate(&mut client, &models, "add_payments")
        .await
        .unwrap()
        .unwrap();
    std::fs::write(dir.join("0003_add_payments.sql"), "-- mine\nSELECT 1;").unwrap();
    let err = generated.write_to(&dir).unwrap_err();
    assert!(
        matches!(&err, Error::Migrate(m) if matches!(**m, MigrateError::WriteFailed { .. })),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("0003_add_payments.sql")).unwrap(),
        "-- mine\nSELECT 1;"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, SqlEnum)]
#[tenant(type_name = "ticket_state")]
enum StateV1 {
    #[tenant(rename = "open")]
    Open,
    #[tenant(rename = "closed")]
    Closed,
}

/// The same type with a label in the middle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, SqlEnum)]
#[tenant(type_name = "ticket_state")]
enum StateV2 {
    #[tenant(rename = "open")]
    Open,
    #[tenant(rename = "pending")]
    Pending,
    #[tenant(rename = "closed")]
    Closed,
}

/// A new enum type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, SqlEnum)]
#[tenant(type_name = "ticket_priority")]
enum Priority {
    #[tenant(rename = "low")]
    Low,
    #[tenant(rename = "high")]
    High,
}

#[derive(Debug, Model)]
#[tenant(table = "tickets")]
struct TicketV1 {
    #[tenant(primary_key, identity)]
    id: i64,
    state: StateV1,
}

#[derive(Debug, Model)]
#[tenant(table = "tickets")]
struct TicketV2 {
    #[tenant(primary_key, identity)]
    id: i64,
    state: StateV2,
    priority: Option<Priority>,
}

#[tokio::test]
async fn generate_adds_enum_labels_and_types() {
    let schemas = TestSchemas::new("drift_generate_enum").await;
    let mut client = connect().await;
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("generate-enum-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("0001_create_tickets.sql"),
        "CREATE TYPE {tenant}.ticket_state AS ENUM ('open', 'closed');\n\
         CREATE TABLE {tenant}.tickets (\n\
         \x20   id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,\n\
         \x20   state {tenant}.ticket_state NOT NULL\n);\n",
    )
    .unwrap();
    let before = Migrations::from_dir(&dir, &[]).unwrap();
    let v1 = ModelSet::new().with::<TicketV1>();
    assert_eq!(
        Migrator::new(&before)
            .diff_models(&mut client, &v1)
            .await
            .unwrap(),
        [],
        "the hand-written migration builds the first models"
    );
    let v2 = ModelSet::new().with::<TicketV2>();
    let generated = Migrator::new(&before)
        .generate(&mut client, &v2, "ticket_priority")
        .await
        .unwrap()
        .expect("a label, a type and a column to add");
    let sql = &generated.sql;
    for needle in [
        r#"ALTER TYPE {tenant}."ticket_state" ADD VALUE IF NOT EXISTS 'pending' AFTER 'open';"#,
        r#"CREATE TYPE {tenant}."ticket_priority" AS ENUM ('low', 'high');"#,
        r#"ALTER TABLE {tenant}."tickets" ADD COLUMN "priority" {tenant}."ticket_priority";"#,
    ] {
        assert!(sql.contains(needle), "no {needle:?} in\n{sql}");
    }
    assert!(!sql.contains("_tenant_scratch"), "{sql}");
    generated.write_to(&dir).unwrap();
    let after = Migrations::from_dir(&dir, &[]).unwrap();
    let migrator = Migrator::new(&after);
    assert_eq!(
        migrator.diff_models(&mut client, &v2).await.unwrap(),
        [],
        "{sql}"
    );
    let tenant = schemas.allowlist(&["t"]).resolve("t").unwrap();
    client
        .as_tokio_postgres()
        .batch_execute(&format!("CREATE SCHEMA {}", tenant.schema()))
        .await
        .unwrap();
    let report = Migrator::new(&before)
        .run(&mut client, std::slice::from_ref(&tenant))
        .await
        .unwrap();
    assert!(report.is_success(), "{report}");
    let report = migrator
        .run(&mut client, std::slice::from_ref(&tenant))
        .await
        .unwrap();
    assert!(report.is_success(), "{report}\n{sql}");
    for expected in [Expected::Models(&v2), Expected::Migrations] {
        let check = migrator
            .check(&mut client, std::slice::from_ref(&tenant), expected)
            .await
            .unwrap();
        assert!(check.is_clean(), "{check}\n{sql}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
    schemas.cleanup().await;
}

/// A text column becoming an enum: the type difference quotes the enum type, whose owner in
/// the catalog is the scratch schema; what `generate` returns names `{tenant}` instead, like
/// the file.
#[tokio::test]
async fn generated_differences_name_the_tenant_slot_not_the_scratch_schema() {
    let mut client = connect().await;
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("generate-enum-type-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("0001_create_tickets.sql"),
        "CREATE TYPE {tenant}.ticket_state AS ENUM ('open', 'closed');\n\
         CREATE TABLE {tenant}.tickets (\n\
         \x20   id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,\n\
         \x20   state text NOT NULL\n);\n",
    )
    .unwrap();
    let before = Migrations::from_dir(&dir, &[]).unwrap();
    let generated = Migrator::new(&before)
        .generate(
            &mut client,
            &ModelSet::new().with::<TicketV1>(),
            "state_enum",
        )
        .await
        .unwrap()
        .expect("a column type to change");
    let type_change = generated
        .differences
        .iter()
        .map(|d| d.to_string())
        .find(|d| d.contains("ticket_state"))
        .unwrap_or_else(|| panic!("no type difference in {:?}", generated.differences));
    assert!(type_change.contains("{tenant}"), "{type_change}");
    for d in &generated.differences {
        assert!(!d.to_string().contains("_tenant_scratch"), "{d}");
    }
    assert!(
        !generated.sql.contains("_tenant_scratch"),
        "{}",
        generated.sql
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
