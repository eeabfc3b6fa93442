//! `query!`, `query_as!` and `query_scalar!` on a real PostgreSQL with several tenants:
//! every form and every terminal, a join of a tenant-slot table with a `shared`-slot table
//! (two schemas in one statement), statement-level schema maps, aliases, braces in string
//! literals, and the render-once-per-schema guarantee of the statement cache.

use futures_util::TryStreamExt;
use tenant_runtime::{
    query, query_as, query_scalar, Allowlist, Client, Db, Error, Model, SchemaMap, Tenant,
};
use tenant_tests::{database_url, TestSchemas};

#[derive(Debug, Clone, PartialEq, Model)]
#[tenant(table = "customers")]
struct Customer {
    #[tenant(primary_key, identity)]
    id: i64,
    name: String,
    plan_code: String,
}

#[derive(Debug, Clone, PartialEq, Model)]
#[tenant(table = "invoices")]
struct Invoice {
    #[tenant(primary_key, identity)]
    id: i64,
    customer_id: i64,
    amount_cents: i64,
    paid: bool,
    note: Option<String>,
}

/// Shared by every tenant: lives in the `shared` slot.
#[derive(Debug, Clone, PartialEq, Model)]
#[tenant(table = "plans", schema = "shared")]
struct Plan {
    #[tenant(primary_key)]
    code: String,
    monthly_cents: i64,
}

/// Per tenant: (customer name, plan, invoice amounts with paid flags and notes).
type Seed = &'static [(
    &'static str,
    &'static str,
    &'static [(i64, bool, Option<&'static str>)],
)];

const ACME: Seed = &[
    (
        "Wile E. Coyote",
        "pro",
        &[(1200, false, None), (4500, true, Some("card"))],
    ),
    ("Road Runner", "free", &[(10, false, Some("beep"))]),
];
const GLOBEX: Seed = &[(
    "Hank Scorpio",
    "pro",
    &[
        (99_900, false, Some("volcano")),
        (5, true, None),
        (77, false, None),
    ],
)];

struct Fixture {
    schemas: TestSchemas,
    allowlist: Allowlist,
    client: Client,
}

impl Fixture {
    /// Two tenants seeded with `ACME` and `GLOBEX`, and plans in the `shared` slot, mapped
    /// on the connection to `<prefix>_shared`.
    async fn new(test: &str) -> Fixture {
        let schemas = TestSchemas::new(test).await;
        let allowlist = schemas.allowlist(&["acme", "globex"]);
        let mut client = schemas.client_with_shared_slot().await;
        for (key, seed) in [("acme", ACME), ("globex", GLOBEX)] {
            let tenant = allowlist.resolve(key).unwrap();
            let db = client.for_tenant(&tenant);
            db.create_schema().await.unwrap();
            Customer::create_table(&db).await.unwrap();
            Invoice::create_table(&db).await.unwrap();
            Plan::create_table(&db).await.unwrap();
            for (name, plan, invoices) in seed {
                let c = Customer {
                    id: 0,
                    name: (*name).into(),
                    plan_code: (*plan).into(),
                }
                .insert(&db)
                .await
                .unwrap();
                for (amount, paid, note) in *invoices {
                    Invoice {
                        id: 0,
                        customer_id: c.id,
                        amount_cents: *amount,
                        paid: *paid,
                        note: note.map(Into::into),
                    }
                    .insert(&db)
                    .await
                    .unwrap();
                }
            }
        }
        let acme = allowlist.resolve("acme").unwrap();
        let db = client.for_tenant(&acme);
        for (code, cents) in [("free", 0), ("pro", 4900)] {
            Plan {
                code: code.into(),
                monthly_cents: cents,
            }
            .insert(&db)
            .await
            .unwrap();
        }
        Fixture {
            schemas,
            allowlist,
            client,
        }
    }

    fn tenant(&self, key: &str) -> Tenant {
        self.allowlist.resolve(key).unwrap()
    }

    fn db(&mut self, key: &str) -> Db<&mut Client> {
        let tenant = self.tenant(key);
        self.client.for_tenant(&tenant)
    }
}

/// The invoices `seed` inserted, as stored (identity ids from 1 in each schema).
fn seeded_invoices(seed: Seed) -> Vec<Invoice> {
    let mut out = Vec::new();
    for (c, (_, _, invoices)) in seed.iter().enumerate() {
        for (amount, paid, note) in *invoices {
            out.push(Invoice {
                id: out.len() as i64 + 1,
                customer_id: c as i64 + 1,
                amount_cents: *amount,
                paid: *paid,
                note: note.map(Into::into),
            });
        }
    }
    out
}

#[tokio::test]
async fn query_as_decodes_each_tenants_own_rows() {
    let mut fx = Fixture::new("qm_query_as").await;
    for (key, seed) in [("acme", ACME), ("globex", GLOBEX)] {
        let db = fx.db(key);
        let all = seeded_invoices(seed);
        for paid in [false, true] {
            let got = query_as!(
                Invoice,
                "SELECT {Invoice.*} FROM {Invoice} WHERE {Invoice.paid} = $1 ORDER BY {Invoice.id}",
                paid
            )
            .fetch_all(&db)
            .await
            .unwrap();
            let expected: Vec<Invoice> = all.iter().filter(|i| i.paid == paid).cloned().collect();
            assert_eq!(got, expected, "{key}, paid = {paid}");
        }

        // fetch_one / fetch_optional, with a `&str` argument for an Option<String> column.
        let first = &all[0];
        let one = query_as!(
            Invoice,
            "SELECT {Invoice.*} FROM {Invoice} WHERE {Invoice.id} = $1",
            first.id
        )
        .fetch_one(&db)
        .await
        .unwrap();
        assert_eq!(&one, first);
        let with_note = all.iter().find(|i| i.note.is_some()).unwrap();
        let note: &str = with_note.note.as_deref().unwrap();
        let found = query_as!(
            Invoice,
            "SELECT {Invoice.*} FROM {Invoice} WHERE {Invoice.note} = $1",
            note
        )
        .fetch_optional(&db)
        .await
        .unwrap();
        assert_eq!(found.as_ref(), Some(with_note));
        let missing = query_as!(
            Invoice,
            "SELECT {Invoice.*} FROM {Invoice} WHERE {Invoice.note} = $1",
            "no such note"
        )
        .fetch_optional(&db)
        .await
        .unwrap();
        assert_eq!(missing, None);
    }
    fx.schemas.cleanup().await;
}

#[tokio::test]
async fn fetch_one_and_fetch_optional_report_row_counts() {
    let mut fx = Fixture::new("qm_row_counts").await;
    let db = fx.db("globex");
    let none = query_as!(
        Invoice,
        "SELECT {Invoice.*} FROM {Invoice} WHERE {Invoice.amount_cents} > $1",
        1_000_000i64
    )
    .fetch_one(&db)
    .await;
    assert!(matches!(none, Err(Error::RowNotFound)), "{none:?}");
    let many = query!("SELECT {Invoice.id} FROM {Invoice}")
        .fetch_optional(&db)
        .await;
    assert!(matches!(many, Err(Error::TooManyRows)), "{many:?}");
    let many = query_scalar!("SELECT {Invoice.id} FROM {Invoice}")
        .fetch_one::<i64, _>(&db)
        .await;
    assert!(matches!(many, Err(Error::TooManyRows)), "{many:?}");
    drop(db);
    fx.schemas.cleanup().await;
}

#[tokio::test]
async fn query_returns_rows_with_named_columns() {
    let mut fx = Fixture::new("qm_query_rows").await;
    for (key, seed) in [("acme", ACME), ("globex", GLOBEX)] {
        let db = fx.db(key);
        let rows = query!(
            "SELECT {Invoice.customer_id}, count(*) AS n, sum({Invoice.amount_cents})::bigint AS total \
             FROM {Invoice} WHERE {Invoice.amount_cents} >= $1 \
             GROUP BY {Invoice.customer_id} ORDER BY {Invoice.customer_id}",
            10i64
        )
        .fetch_all(&db)
        .await
        .unwrap();
        let got: Vec<(i64, i64, i64)> = rows
            .iter()
            .map(|r| (r.get("customer_id"), r.get("n"), r.get("total")))
            .collect();
        let mut expected: Vec<(i64, i64, i64)> = Vec::new();
        for inv in seeded_invoices(seed)
            .iter()
            .filter(|i| i.amount_cents >= 10)
        {
            match expected.iter_mut().find(|(c, _, _)| *c == inv.customer_id) {
                Some(e) => {
                    e.1 += 1;
                    e.2 += inv.amount_cents;
                }
                None => expected.push((inv.customer_id, 1, inv.amount_cents)),
            }
        }
        assert_eq!(got, expected, "{key}");

        let row = query!("SELECT count(*) AS n FROM {Invoice}")
            .fetch_one(&db)
            .await
            .unwrap();
        assert_eq!(row.get::<_, i64>("n"), seeded_invoices(seed).len() as i64);
        let none = query!(
            "SELECT {Invoice.id} FROM {Invoice} WHERE {Invoice.id} = $1",
            -1i64
        )
        .fetch_optional(&db)
        .await
        .unwrap();
        assert!(none.is_none());
    }
    fx.schemas.cleanup().await;
}

#[tokio::test]
async fn query_scalar_infers_the_value_type() {
    let mut fx = Fixture::new("qm_scalar").await;
    for (key, seed) in [("acme", ACME), ("globex", GLOBEX)] {
        let db = fx.db(key);
        let all = seeded_invoices(seed);
        let count: i64 = query_scalar!("SELECT count(*) FROM {Invoice}")
            .fetch_one(&db)
            .await
            .unwrap();
        assert_eq!(count, all.len() as i64);
        let unpaid: Vec<i64> = query_scalar!(
            "SELECT {Invoice.amount_cents} FROM {Invoice} WHERE NOT {Invoice.paid} ORDER BY {Invoice.id}"
        )
        .fetch_all(&db)
        .await
        .unwrap();
        let expected: Vec<i64> = all
            .iter()
            .filter(|i| !i.paid)
            .map(|i| i.amount_cents)
            .collect();
        assert_eq!(unpaid, expected);
        let names: Vec<String> =
            query_scalar!("SELECT {Customer.name} FROM {Customer} ORDER BY {Customer.id}")
                .fetch_all(&db)
                .await
                .unwrap();
        let expected: Vec<String> = seed.iter().map(|(n, _, _)| n.to_string()).collect();
        assert_eq!(names, expected);
        let note: Option<Option<String>> = query_scalar!(
            "SELECT {Invoice.note} FROM {Invoice} WHERE {Invoice.id} = $1",
            1i64
        )
        .fetch_optional(&db)
        .await
        .unwrap();
        assert_eq!(note, Some(all[0].note.clone()));
    }
    fx.schemas.cleanup().await;
}

#[tokio::test]
async fn a_join_of_a_tenant_table_and_a_shared_table_reads_two_schemas() {
    let mut fx = Fixture::new("qm_join").await;
    let shared = fx.schemas.name("shared");
    for (key, seed) in [("acme", ACME), ("globex", GLOBEX)] {
        let schema = fx.schemas.name(key);
        let db = fx.db(key);
        let q = query!(
            "SELECT {c.name}, {p.*} FROM {Customer AS c} \
             JOIN {Plan AS p} ON {p.code} = {c.plan_code} \
             WHERE {p.monthly_cents} >= $1 ORDER BY {c.id}",
            0i64
        );
        // One statement, two schemas: the tenant's and the one `shared` maps to.
        let sql = db.render(q.template(), None).unwrap();
        assert!(
            sql.contains(&format!(r#""{schema}"."customers" AS "c""#)),
            "{sql}"
        );
        assert!(
            sql.contains(&format!(r#""{shared}"."plans" AS "p""#)),
            "{sql}"
        );
        assert!(sql.contains(r#""p"."code", "p"."monthly_cents""#), "{sql}");

        let rows = q.fetch_all(&db).await.unwrap();
        let got: Vec<(String, String, i64)> = rows
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
        let expected: Vec<(String, String, i64)> = seed
            .iter()
            .map(|(name, plan, _)| {
                let cents = if *plan == "pro" { 4900 } else { 0 };
                (name.to_string(), plan.to_string(), cents)
            })
            .collect();
        assert_eq!(got, expected, "{key}");

        // Without aliases: `{Model.*}` is qualified by the table name.
        let pro_invoices: Vec<Invoice> = query_as!(
            Invoice,
            "SELECT {Invoice.*} FROM {Invoice} \
             JOIN {Customer} ON {Customer}.{Customer.id} = {Invoice.customer_id} \
             JOIN {Plan} ON {Plan.code} = {Customer.plan_code} \
             WHERE {Plan.code} = $1 ORDER BY {Invoice.id}",
            "pro"
        )
        .fetch_all(&db)
        .await
        .unwrap();
        let pro_customers: Vec<i64> = seed
            .iter()
            .enumerate()
            .filter(|(_, (_, plan, _))| *plan == "pro")
            .map(|(i, _)| i as i64 + 1)
            .collect();
        let expected: Vec<Invoice> = seeded_invoices(seed)
            .into_iter()
            .filter(|i| pro_customers.contains(&i.customer_id))
            .collect();
        assert_eq!(pro_invoices, expected, "{key}");
    }
    fx.schemas.cleanup().await;
}

#[tokio::test]
async fn a_self_join_through_aliases() {
    let mut fx = Fixture::new("qm_self_join").await;
    let db = fx.db("globex");
    // Pairs of invoices of one customer where the first is larger.
    let pairs = query!(
        "SELECT {a.id}, {b.id} FROM {Invoice AS a} JOIN {Invoice AS b} \
         ON {a.customer_id} = {b.customer_id} AND {a.amount_cents} > {b.amount_cents} \
         ORDER BY 1, 2"
    )
    .fetch_all(&db)
    .await
    .unwrap();
    let got: Vec<(i64, i64)> = pairs.iter().map(|r| (r.get(0), r.get(1))).collect();
    let all = seeded_invoices(GLOBEX);
    let mut expected = Vec::new();
    for a in &all {
        for b in &all {
            if a.customer_id == b.customer_id && a.amount_cents > b.amount_cents {
                expected.push((a.id, b.id));
            }
        }
    }
    expected.sort();
    assert_eq!(got, expected);
    drop(db);
    fx.schemas.cleanup().await;
}

#[tokio::test]
async fn execute_runs_insert_update_and_delete_in_one_tenant_only() {
    let mut fx = Fixture::new("qm_execute").await;
    let db = fx.db("acme");
    let note = String::from("late fee");
    let inserted = query!(
        "INSERT INTO {Invoice} ({Invoice.customer_id}, {Invoice.amount_cents}, {Invoice.paid}, {Invoice.note}) \
         VALUES ($1, $2, $3, $4)",
        1i64,
        250i64,
        false,
        &note
    )
    .execute(&db)
    .await
    .unwrap();
    assert_eq!(inserted, 1);
    let updated = query!(
        "UPDATE {Invoice} SET {Invoice.paid} = $1, {Invoice.note} = $2 WHERE {Invoice.customer_id} = $3",
        true,
        "settled",
        1i64
    )
    .execute(&db)
    .await
    .unwrap();
    assert_eq!(
        updated, 3,
        "two seeded invoices of customer 1 and the new one"
    );
    let returned: Invoice = query_as!(
        Invoice,
        "DELETE FROM {Invoice} WHERE {Invoice.amount_cents} = $1 RETURNING {Invoice.*}",
        250i64
    )
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(returned.note.as_deref(), Some("settled"));
    assert!(returned.paid);
    let left = Invoice::query()
        .order_by(Invoice::ID.asc())
        .fetch_all(&db)
        .await
        .unwrap();
    let mut expected = seeded_invoices(ACME);
    for inv in expected.iter_mut().filter(|i| i.customer_id == 1) {
        inv.paid = true;
        inv.note = Some("settled".into());
    }
    assert_eq!(left, expected);
    drop(db);

    // globex is untouched.
    let globex = fx.db("globex");
    assert_eq!(
        Invoice::query()
            .order_by(Invoice::ID.asc())
            .fetch_all(&globex)
            .await
            .unwrap(),
        seeded_invoices(GLOBEX)
    );
    drop(globex);
    fx.schemas.cleanup().await;
}

#[tokio::test]
async fn every_form_streams_its_rows() {
    let mut fx = Fixture::new("qm_stream").await;
    for (key, seed) in [("acme", ACME), ("globex", GLOBEX)] {
        let db = fx.db(key);
        let all = seeded_invoices(seed);
        let models: Vec<Invoice> = query_as!(
            Invoice,
            "SELECT {Invoice.*} FROM {Invoice} WHERE {Invoice.id} >= $1 ORDER BY {Invoice.id}",
            1i64
        )
        .stream(&db)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
        assert_eq!(models, all, "{key}");

        let mut rows = query!("SELECT {Invoice.id} FROM {Invoice} ORDER BY {Invoice.id} DESC")
            .stream(&db)
            .await
            .unwrap();
        let mut ids = Vec::new();
        while let Some(row) = rows.try_next().await.unwrap() {
            ids.push(row.get::<_, i64>(0));
        }
        let expected: Vec<i64> = all.iter().rev().map(|i| i.id).collect();
        assert_eq!(ids, expected, "{key}");

        let amounts: Vec<i64> =
            query_scalar!("SELECT {Invoice.amount_cents} FROM {Invoice} ORDER BY {Invoice.id}")
                .stream::<i64, _>(&db)
                .await
                .unwrap()
                .try_collect()
                .await
                .unwrap();
        let expected: Vec<i64> = all.iter().map(|i| i.amount_cents).collect();
        assert_eq!(amounts, expected, "{key}");
    }
    fx.schemas.cleanup().await;
}

#[tokio::test]
async fn a_statement_schema_map_overrides_the_connection_map() {
    let mut fx = Fixture::new("qm_statement_map").await;
    let archive = fx.schemas.name("archive");
    fx.client
        .as_tokio_postgres()
        .batch_execute(&format!(
            "CREATE SCHEMA \"{archive}\"; \
             CREATE TABLE \"{archive}\".plans (code TEXT PRIMARY KEY, monthly_cents BIGINT NOT NULL); \
             INSERT INTO \"{archive}\".plans VALUES ('legacy', 999)"
        ))
        .await
        .unwrap();
    let map = SchemaMap::new().with("shared", &archive).unwrap();
    let db = fx.db("acme");
    let q = || query_as!(Plan, "SELECT {Plan.*} FROM {Plan} ORDER BY {Plan.code}");
    let current = q().fetch_all(&db).await.unwrap();
    let codes: Vec<&str> = current.iter().map(|p| p.code.as_str()).collect();
    assert_eq!(codes, ["free", "pro"]);
    let archived = q().schema_map(&map).fetch_all(&db).await.unwrap();
    assert_eq!(
        archived,
        [Plan {
            code: "legacy".into(),
            monthly_cents: 999
        }]
    );
    let n: i64 = query_scalar!("SELECT count(*) FROM {Plan}")
        .schema_map(&map)
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(n, 1);
    drop(db);
    fx.schemas.cleanup().await;
}

#[tokio::test]
async fn braces_in_string_literals_are_data() {
    let mut fx = Fixture::new("qm_braces").await;
    let db = fx.db("acme");
    let array: Vec<i32> = query_scalar!("SELECT '{1,2,3}'::int[]")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(array, [1, 2, 3]);
    let text: String = query_scalar!(
        "SELECT '}' || {Customer.name} || E'{\\'' || $$ {{x}} $$ FROM {Customer} WHERE {Customer.id} = $1",
        1i64
    )
    .fetch_one(&db)
    .await
    .unwrap();
    // A dollar-quoted body is SQL text (usually a function body): braces are doubled there.
    assert_eq!(text, "}Wile E. Coyote{' {x} ");
    // Inside a literal, doubled braces are two braces: nothing is unescaped there.
    let doubled: String = query_scalar!("SELECT '{{x}}'")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(doubled, "{{x}}");
    drop(db);
    fx.schemas.cleanup().await;
}

#[tokio::test]
async fn queries_run_inside_a_transaction() {
    let mut fx = Fixture::new("qm_transaction").await;
    let mut db = fx.db("globex");
    let tx = db.transaction().await.unwrap();
    query!("DELETE FROM {Invoice}").execute(&tx).await.unwrap();
    let n: i64 = query_scalar!("SELECT count(*) FROM {Invoice}")
        .fetch_one(&tx)
        .await
        .unwrap();
    assert_eq!(n, 0);
    tx.rollback().await.unwrap();
    let n: i64 = query_scalar!("SELECT count(*) FROM {Invoice}")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(n, seeded_invoices(GLOBEX).len() as i64);
    drop(db);
    fx.schemas.cleanup().await;
}

/// One `query_as!` call site, as application code has it.
async fn unpaid_over<E: tenant_runtime::Executor>(db: &Db<E>, cents: i64) -> Vec<Invoice> {
    query_as!(
        Invoice,
        "SELECT {Invoice.*} FROM {Invoice} WHERE {Invoice.amount_cents} > $1 AND NOT {Invoice.paid} ORDER BY {Invoice.id}",
        cents
    )
    .fetch_all(db)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_query_as_renders_once_per_schema_then_hits_the_cache() {
    let fx = Fixture::new("qm_cache").await;
    // A fresh connection: its cache has seen nothing.
    let mut client = Client::connect(&database_url().await).await.unwrap();
    let before = client.statement_cache().stats();
    assert_eq!((before.renders, before.hits, before.misses), (0, 0, 0));
    const CALLS: u64 = 5;
    for (key, seed) in [("acme", ACME), ("globex", GLOBEX)] {
        let tenant = fx.tenant(key);
        let db = client.for_tenant(&tenant);
        for cents in 0..CALLS as i64 {
            let expected: Vec<Invoice> = seeded_invoices(seed)
                .into_iter()
                .filter(|i| i.amount_cents > cents && !i.paid)
                .collect();
            assert_eq!(unpaid_over(&db, cents).await, expected);
        }
    }
    let after = client.statement_cache().stats();
    println!("query_as! cache after {CALLS} calls x 2 schemas: {after:?}");
    assert_eq!(after.renders, 2, "rendered once per schema");
    assert_eq!(after.misses, 2);
    assert_eq!(after.hits, 2 * (CALLS - 1), "every other call hits");
    assert_eq!(after.len, 2);
    drop(client);
    fx.schemas.cleanup().await;
}

#[derive(Debug, Clone, PartialEq, Model)]
#[tenant(table = "tickets")]
struct Ticket {
    #[tenant(primary_key, identity)]
    id: i64,
    #[tenant(rename = "title")]
    subject: String,
}

#[tokio::test]
async fn a_renamed_column_is_found_by_its_column_or_its_field_name() {
    let mut fx = Fixture::new("qm_renamed").await;
    let db = fx.db("acme");
    Ticket::create_table(&db).await.unwrap();
    for subject in ["printer on fire", "coffee"] {
        Ticket {
            id: 0,
            subject: subject.into(),
        }
        .insert(&db)
        .await
        .unwrap();
    }
    let by_column: Vec<String> = query_scalar!(
        "SELECT {Ticket.title} FROM {Ticket} WHERE {Ticket.title} <> $1",
        "coffee"
    )
    .fetch_all(&db)
    .await
    .unwrap();
    let by_field: Vec<String> = query_scalar!(
        "SELECT {Ticket.subject} FROM {Ticket} WHERE {Ticket.subject} <> $1",
        "coffee"
    )
    .fetch_all(&db)
    .await
    .unwrap();
    assert_eq!(by_column, ["printer on fire"]);
    assert_eq!(by_field, by_column);
    // Both render the SQL column name.
    let q = query!("SELECT {Ticket.subject}, {Ticket.title} FROM {Ticket}");
    assert_eq!(
        q.template().to_string(),
        r#"SELECT "title", "title" FROM {tenant}."tickets""#
    );
    drop(db);
    fx.schemas.cleanup().await;
}

/// Macro futures can be spawned: they are `Send` (checked at compile time).
#[allow(dead_code)]
fn macro_futures_are_send(db: &Db<&mut Client>, note: &str) {
    fn send<T: Send>(_: T) {}
    send(
        query!(
            "SELECT {Invoice.id} FROM {Invoice} WHERE {Invoice.note} = $1",
            note
        )
        .fetch_all(db),
    );
    send(query_as!(Invoice, "SELECT {Invoice.*} FROM {Invoice}").stream(db));
    send(query_scalar!("SELECT count(*) FROM {Invoice}").fetch_one::<i64, _>(db));
}
