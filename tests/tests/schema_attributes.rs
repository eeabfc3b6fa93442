//! Every schema attribute of the derive, built in a real tenant schema and checked fact by
//! fact in pg_catalog (`pg_get_constraintdef`, `pg_get_indexdef`, identity options, column
//! types), then on real rows: ON DELETE CASCADE / SET NULL, CHECK, a self-reference, a
//! composite foreign key. And `diff` of the built schema against the models is empty.

use tenant_runtime::model::{ModelSet, SchemaSnapshot};
use tenant_runtime::{Db, Model, Slot};
use tenant_tests::TestSchemas;

#[derive(Debug, Clone, PartialEq, Model)]
#[tenant(table = "customers", primary_key_name = "customers_pk")]
struct Customer {
    #[tenant(primary_key, identity(always, start = 1000, increment = 10))]
    id: i64,
    #[tenant(unique(name = "customers_email_uq"))]
    email: String,
    #[tenant(sql_type = "VARCHAR(40)")]
    name: String,
    #[tenant(index(name = "customers_tags_gin", using = "gin"))]
    tags: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Model)]
#[tenant(
    table = "invoices",
    check(expr = "paid_cents <= amount_cents", name = "invoices_paid_le_amount"),
    index(expr = "lower(note)", name = "invoices_note_ci"),
    index(
        customer_id,
        amount_cents,
        where = "paid_cents = 0",
        include(note),
        name = "invoices_open"
    )
)]
struct Invoice {
    #[tenant(primary_key, identity)]
    id: i64,
    #[tenant(references = Customer, on_delete = "cascade", on_update = "restrict")]
    customer_id: i64,
    #[tenant(check = "amount_cents >= 0")]
    amount_cents: i64,
    #[tenant(default = "0")]
    paid_cents: i64,
    note: Option<String>,
    #[tenant(references = Invoice, on_delete = "set null", foreign_key_name = "invoices_corrects")]
    corrects: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Model)]
// Clippy's `duplicated_attributes` reads `sku` twice in `#[tenant(..)]` as a repeated
// attribute; here it is two constraints.
#[allow(clippy::duplicated_attributes)]
#[tenant(table = "lines", unique(invoice_id, sku))]
#[tenant(unique(sku, position, name = "lines_position_once"))]
struct Line {
    #[tenant(primary_key)]
    invoice_id: i64,
    #[tenant(primary_key)]
    position: i32,
    sku: String,
    #[tenant(references = Invoice, on_delete = "set null")]
    moved_to: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Model)]
#[tenant(
    table = "line_notes",
    foreign_key(columns(invoice_id, position), references = Line, on_delete = "cascade", name = "line_notes_line_fk")
)]
struct LineNote {
    #[tenant(primary_key, identity)]
    id: i64,
    invoice_id: i64,
    position: i32,
    body: String,
}

fn models() -> ModelSet {
    ModelSet::new()
        .with::<LineNote>()
        .with::<Line>()
        .with::<Invoice>()
        .with::<Customer>()
}

#[tokio::test]
async fn every_attribute_is_in_pg_catalog_and_behaves_on_rows() {
    let schemas = TestSchemas::new("schema_attrs").await;
    let allowlist = schemas.allowlist(&["acme"]);
    let acme = allowlist.resolve("acme").unwrap();
    let client = tenant_runtime::Client::connect(schemas.url())
        .await
        .unwrap();
    let db = Db::new(&client, &acme);
    db.create_schema().await.unwrap();
    models().create_tenant_tables(&db).await.unwrap();
    let s = acme.schema().as_str().to_owned();
    let pg = client.as_tokio_postgres();

    // Constraints, as PostgreSQL prints them.
    let rows = pg
        .query(
            "SELECT c.relname::text, k.conname::text, pg_get_constraintdef(k.oid)
             FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
             JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = $1 ORDER BY 1, 2",
            &[&s],
        )
        .await
        .unwrap();
    let got: Vec<(String, String, String)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let want = |t: &str, n: &str, d: String| (t.to_owned(), n.to_owned(), d);
    let expected = vec![
        want("customers", "customers_email_uq", "UNIQUE (email)".into()),
        want("customers", "customers_pk", "PRIMARY KEY (id)".into()),
        want(
            "invoices",
            "invoices_amount_cents_check",
            "CHECK ((amount_cents >= 0))".into(),
        ),
        want(
            "invoices",
            "invoices_corrects",
            format!("FOREIGN KEY (corrects) REFERENCES {s}.invoices(id) ON DELETE SET NULL"),
        ),
        want(
            "invoices",
            "invoices_customer_id_fkey",
            format!(
                "FOREIGN KEY (customer_id) REFERENCES {s}.customers(id) ON UPDATE RESTRICT ON DELETE CASCADE"
            ),
        ),
        want(
            "invoices",
            "invoices_paid_le_amount",
            "CHECK ((paid_cents <= amount_cents))".into(),
        ),
        want("invoices", "invoices_pkey", "PRIMARY KEY (id)".into()),
        want(
            "line_notes",
            "line_notes_line_fk",
            format!(
                "FOREIGN KEY (invoice_id, \"position\") REFERENCES {s}.lines(invoice_id, \"position\") ON DELETE CASCADE"
            ),
        ),
        want("line_notes", "line_notes_pkey", "PRIMARY KEY (id)".into()),
        want(
            "lines",
            "lines_invoice_id_sku_key",
            "UNIQUE (invoice_id, sku)".into(),
        ),
        want(
            "lines",
            "lines_moved_to_fkey",
            format!("FOREIGN KEY (moved_to) REFERENCES {s}.invoices(id) ON DELETE SET NULL"),
        ),
        want("lines", "lines_pkey", "PRIMARY KEY (invoice_id, \"position\")".into()),
        want(
            "lines",
            "lines_position_once",
            "UNIQUE (sku, \"position\")".into(),
        ),
    ];
    assert_eq!(got, expected);

    // Indexes that back no constraint, as PostgreSQL prints them.
    let rows = pg
        .query(
            "SELECT i.relname::text, pg_get_indexdef(i.oid)
             FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
             JOIN pg_namespace n ON n.oid = i.relnamespace
             WHERE n.nspname = $1
               AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = x.indexrelid AND k.conrelid = x.indrelid)
             ORDER BY 1",
            &[&s],
        )
        .await
        .unwrap();
    let got: Vec<(String, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(
        got,
        vec![
            (
                "customers_tags_gin".to_owned(),
                format!("CREATE INDEX customers_tags_gin ON {s}.customers USING gin (tags)")
            ),
            (
                "invoices_note_ci".to_owned(),
                format!("CREATE INDEX invoices_note_ci ON {s}.invoices USING btree (lower(note))")
            ),
            (
                "invoices_open".to_owned(),
                format!("CREATE INDEX invoices_open ON {s}.invoices USING btree (customer_id, amount_cents) INCLUDE (note) WHERE (paid_cents = 0)")
            ),
        ]
    );

    // Column types and identity options.
    let rows = pg
        .query(
            "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod), a.attidentity::text
             FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
             JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = $1 AND c.relname = 'customers' AND a.attnum > 0 ORDER BY a.attnum",
            &[&s],
        )
        .await
        .unwrap();
    let got: Vec<(String, String, String)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let col = |n: &str, t: &str, i: &str| (n.to_owned(), t.to_owned(), i.to_owned());
    assert_eq!(
        got,
        vec![
            col("id", "bigint", "a"),
            col("email", "text", ""),
            col("name", "character varying(40)", ""),
            col("tags", "text[]", ""),
        ]
    );
    let seq = pg
        .query_one(
            "SELECT s.seqstart, s.seqincrement FROM pg_sequence s
             WHERE s.seqrelid = pg_get_serial_sequence(format('%I.customers', $1::text), 'id')::regclass",
            &[&s],
        )
        .await
        .unwrap();
    assert_eq!((seq.get::<_, i64>(0), seq.get::<_, i64>(1)), (1000, 10));

    // Rows: identity ALWAYS starts at 1000 by 10; arrays round-trip.
    let ada = Customer {
        id: 0,
        email: "ada@acme.example".into(),
        name: "Ada".into(),
        tags: vec!["vip".into(), "eu".into()],
    }
    .insert(&db)
    .await
    .unwrap();
    let bob = Customer {
        id: 0,
        email: "bob@acme.example".into(),
        name: "Bob".into(),
        tags: vec![],
    }
    .insert(&db)
    .await
    .unwrap();
    assert_eq!((ada.id, bob.id), (1000, 1010));
    assert_eq!(
        Customer::get(&db, ada.id).await.unwrap().unwrap().tags,
        ["vip", "eu"]
    );

    // CHECK: a negative amount and paid > amount are refused.
    let invoice = |customer_id, amount_cents, paid_cents| Invoice {
        id: 0,
        customer_id,
        amount_cents,
        paid_cents,
        note: None,
        corrects: None,
    };
    let err = invoice(ada.id, -1, 0).insert(&db).await.unwrap_err();
    assert!(
        err.to_string().contains("invoices_amount_cents_check"),
        "{err}"
    );
    let err = invoice(ada.id, 5, 6).insert(&db).await.unwrap_err();
    assert!(err.to_string().contains("invoices_paid_le_amount"), "{err}");

    // Self-reference with SET NULL; composite FK with CASCADE; SET NULL from lines.
    let first = invoice(ada.id, 100, 0).insert(&db).await.unwrap();
    let mut fix = invoice(ada.id, 90, 0);
    fix.corrects = Some(first.id);
    let fix = fix.insert(&db).await.unwrap();
    let bobs = invoice(bob.id, 10, 0).insert(&db).await.unwrap();
    Line {
        invoice_id: first.id,
        position: 1,
        sku: "A".into(),
        moved_to: Some(bobs.id),
    }
    .insert(&db)
    .await
    .unwrap();
    LineNote {
        id: 0,
        invoice_id: first.id,
        position: 1,
        body: "fragile".into(),
    }
    .insert(&db)
    .await
    .unwrap();
    // Deleting bob cascades to his invoice; the line that pointed at it is set to NULL.
    assert!(Customer::delete(&db, bob.id).await.unwrap());
    assert_eq!(Invoice::get(&db, bobs.id).await.unwrap(), None);
    let line = Line::get(&db, (first.id, 1)).await.unwrap().unwrap();
    assert_eq!(line.moved_to, None, "ON DELETE SET NULL");
    // Deleting the corrected invoice sets `corrects` to NULL (self-reference)...
    pg.execute(&format!("DELETE FROM {s}.lines"), &[])
        .await
        .unwrap();
    assert_eq!(
        LineNote::query().count(&db).await.unwrap(),
        0,
        "composite FK cascaded"
    );
    assert!(Invoice::delete(&db, first.id).await.unwrap());
    assert_eq!(
        Invoice::get(&db, fix.id).await.unwrap().unwrap().corrects,
        None
    );

    // The reader agrees with the models.
    let expected = models().expected_shape(&db, Slot::Tenant).unwrap();
    let snapshot = SchemaSnapshot::read(&client, &[acme.schema()])
        .await
        .unwrap();
    assert_eq!(expected.diff(snapshot.get(acme.schema()).unwrap()), vec![]);
    schemas.cleanup().await;
}
