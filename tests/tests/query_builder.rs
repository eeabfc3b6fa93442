//! The typed query builder on a real PostgreSQL with two tenants: every filter operator and
//! combinator (each checked against the same predicate applied in Rust to the seeded rows),
//! ordering, limit/offset, every terminal, UPDATE and DELETE (also windowed by order/limit),
//! named slots with a statement-level map, and one render per (statement shape, schema).

use futures_util::TryStreamExt;
use tenant_runtime::model::Filter;
use tenant_runtime::{Allowlist, Client, Db, Error, Model, SchemaMap, Tenant};
use tenant_tests::{database_url, TestSchemas};

#[derive(Debug, Clone, PartialEq, Model)]
#[tenant(table = "invoices")]
struct Invoice {
    #[tenant(primary_key, identity)]
    id: i64,
    customer: String,
    amount_cents: i64,
    paid: bool,
    note: Option<String>,
    priority: Option<i32>,
}

#[derive(Debug, Clone, PartialEq, Model)]
#[tenant(table = "plans", schema = "shared")]
struct Plan {
    #[tenant(primary_key)]
    code: String,
    monthly_cents: i64,
}

/// (customer, amount, paid, note, priority) per invoice; ids are 1.. in order.
type Seed = &'static [(&'static str, i64, bool, Option<&'static str>, Option<i32>)];

const ACME: Seed = &[
    ("coyote", 1200, false, None, Some(1)),
    ("coyote", 4500, true, Some("paid by card"), None),
    ("runner", 10, false, Some("urgent: beep"), Some(3)),
    ("runner", 4500, false, Some("Urgent"), Some(2)),
    ("acme corp", 0, true, None, None),
];
const GLOBEX: Seed = &[
    ("scorpio", 99_900, false, Some("urgent volcano"), Some(1)),
    ("scorpio", 5, true, None, Some(5)),
    ("homer", 77, false, Some("donuts"), None),
];

fn seeded(seed: Seed) -> Vec<Invoice> {
    seed.iter()
        .enumerate()
        .map(|(i, (customer, amount, paid, note, priority))| Invoice {
            id: i as i64 + 1,
            customer: (*customer).into(),
            amount_cents: *amount,
            paid: *paid,
            note: note.map(Into::into),
            priority: *priority,
        })
        .collect()
}

struct Fixture {
    schemas: TestSchemas,
    allowlist: Allowlist,
    client: Client,
}

impl Fixture {
    async fn new(test: &str) -> Fixture {
        let schemas = TestSchemas::new(test).await;
        let allowlist = schemas.allowlist(&["acme", "globex"]);
        let mut client = schemas.client_with_shared_slot().await;
        for (key, seed) in [("acme", ACME), ("globex", GLOBEX)] {
            let tenant = allowlist.resolve(key).unwrap();
            let db = client.for_tenant(&tenant);
            db.create_schema().await.unwrap();
            Invoice::create_table(&db).await.unwrap();
            for inv in seeded(seed) {
                let stored = inv.insert(&db).await.unwrap();
                assert_eq!(stored, inv);
            }
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

/// One operator case: the builder filter, and the same condition in Rust (SQL semantics:
/// a comparison with NULL is not true).
struct Case {
    name: &'static str,
    filter: fn() -> Filter<'static, Invoice>,
    rust: fn(&Invoice) -> bool,
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "eq",
            filter: || Invoice::PAID.eq(false),
            rust: |i| !i.paid,
        },
        Case {
            name: "eq &str on String",
            filter: || Invoice::CUSTOMER.eq("runner"),
            rust: |i| i.customer == "runner",
        },
        Case {
            name: "eq on Option (present value)",
            filter: || Invoice::PRIORITY.eq(1),
            rust: |i| i.priority == Some(1),
        },
        Case {
            name: "eq None matches nothing",
            filter: || Invoice::NOTE.eq(None),
            rust: |_| false,
        },
        Case {
            name: "ne",
            filter: || Invoice::AMOUNT_CENTS.ne(4500),
            rust: |i| i.amount_cents != 4500,
        },
        Case {
            name: "lt",
            filter: || Invoice::AMOUNT_CENTS.lt(1200),
            rust: |i| i.amount_cents < 1200,
        },
        Case {
            name: "le",
            filter: || Invoice::AMOUNT_CENTS.le(1200),
            rust: |i| i.amount_cents <= 1200,
        },
        Case {
            name: "gt",
            filter: || Invoice::AMOUNT_CENTS.gt(77),
            rust: |i| i.amount_cents > 77,
        },
        Case {
            name: "ge",
            filter: || Invoice::AMOUNT_CENTS.ge(77),
            rust: |i| i.amount_cents >= 77,
        },
        Case {
            name: "gt on Option",
            filter: || Invoice::PRIORITY.gt(1),
            rust: |i| i.priority.is_some_and(|p| p > 1),
        },
        Case {
            name: "is_null",
            filter: || Invoice::NOTE.is_null(),
            rust: |i| i.note.is_none(),
        },
        Case {
            name: "is_not_null",
            filter: || Invoice::PRIORITY.is_not_null(),
            rust: |i| i.priority.is_some(),
        },
        Case {
            name: "in_list",
            filter: || Invoice::AMOUNT_CENTS.in_list([10, 77, 4500]),
            rust: |i| [10, 77, 4500].contains(&i.amount_cents),
        },
        Case {
            name: "in_list of &str",
            filter: || Invoice::CUSTOMER.in_list(vec!["coyote", "homer"]),
            rust: |i| ["coyote", "homer"].contains(&i.customer.as_str()),
        },
        Case {
            name: "in_list empty",
            filter: || Invoice::ID.in_list(Vec::<i64>::new()),
            rust: |_| false,
        },
        Case {
            name: "like on String",
            filter: || Invoice::CUSTOMER.like("%o%"),
            rust: |i| i.customer.contains('o'),
        },
        Case {
            name: "like on Option<String> (case-sensitive)",
            filter: || Invoice::NOTE.like("urgent%"),
            rust: |i| i.note.as_deref().is_some_and(|n| n.starts_with("urgent")),
        },
        Case {
            name: "and",
            filter: || Invoice::PAID.eq(false).and(Invoice::AMOUNT_CENTS.ge(1000)),
            rust: |i| !i.paid && i.amount_cents >= 1000,
        },
        Case {
            name: "or",
            filter: || Invoice::PAID.eq(true).or(Invoice::AMOUNT_CENTS.lt(50)),
            rust: |i| i.paid || i.amount_cents < 50,
        },
        Case {
            name: "not",
            filter: || Invoice::CUSTOMER.eq("coyote").not(),
            rust: |i| i.customer != "coyote",
        },
        Case {
            name: "! operator",
            filter: || !Invoice::PAID.eq(true),
            rust: |i| !i.paid,
        },
        Case {
            name: "not over NULL (neither matches)",
            filter: || Invoice::PRIORITY.gt(1).not(),
            rust: |i| i.priority.is_some_and(|p| p <= 1),
        },
        Case {
            name: "nested and/or/not",
            filter: || {
                Invoice::NOTE
                    .is_null()
                    .or(Invoice::NOTE.like("%urgent%"))
                    .and(
                        Invoice::PAID
                            .eq(false)
                            .or(Invoice::AMOUNT_CENTS.gt(1000))
                            .not()
                            .not(),
                    )
            },
            rust: |i| {
                (i.note.is_none() || i.note.as_deref().is_some_and(|n| n.contains("urgent")))
                    && (!i.paid || i.amount_cents > 1000)
            },
        },
    ]
}

#[tokio::test]
async fn every_filter_operator_returns_the_rows_the_same_predicate_selects() {
    let mut fx = Fixture::new("qb_operators").await;
    for (key, seed) in [("acme", ACME), ("globex", GLOBEX)] {
        let db = fx.db(key);
        let rows = seeded(seed);
        for case in cases() {
            let got = Invoice::query()
                .filter((case.filter)())
                .order_by(Invoice::ID.asc())
                .fetch_all(&db)
                .await
                .unwrap_or_else(|e| panic!("{key} / {}: {e}", case.name));
            let expected: Vec<Invoice> = rows.iter().filter(|i| (case.rust)(i)).cloned().collect();
            assert_eq!(got, expected, "{key} / {}", case.name);
        }
    }
    // Not vacuous: across both tenants, most cases select some rows and leave others out.
    let both: Vec<Invoice> = seeded(ACME).into_iter().chain(seeded(GLOBEX)).collect();
    let discriminating = cases()
        .iter()
        .filter(|c| {
            let n = both.iter().filter(|i| (c.rust)(i)).count();
            n > 0 && n < both.len()
        })
        .count();
    assert!(discriminating >= cases().len() - 3, "{discriminating}");
    fx.schemas.cleanup().await;
}

#[tokio::test]
async fn filters_combine_with_and_and_order_limit_offset_window_the_rows() {
    let mut fx = Fixture::new("qb_order_limit").await;
    let db = fx.db("acme");
    let rows = seeded(ACME);

    // Two filter() calls: AND.
    let got = Invoice::query()
        .filter(Invoice::PAID.eq(false))
        .filter(Invoice::AMOUNT_CENTS.gt(100))
        .order_by(Invoice::ID.asc())
        .fetch_all(&db)
        .await
        .unwrap();
    let expected: Vec<Invoice> = rows
        .iter()
        .filter(|i| !i.paid && i.amount_cents > 100)
        .cloned()
        .collect();
    assert_eq!(got, expected);

    // Multi-column order: amount desc, then id asc.
    let mut sorted = rows.clone();
    sorted.sort_by(|a, b| b.amount_cents.cmp(&a.amount_cents).then(a.id.cmp(&b.id)));
    let got = Invoice::query()
        .order_by(Invoice::AMOUNT_CENTS.desc())
        .order_by(Invoice::ID.asc())
        .fetch_all(&db)
        .await
        .unwrap();
    assert_eq!(got, sorted);

    // Limit and offset page through the same order.
    for (offset, limit) in [(0u64, 2u64), (2, 2), (4, 2), (1, 10), (9, 1)] {
        let page = Invoice::query()
            .order_by(Invoice::AMOUNT_CENTS.desc())
            .order_by(Invoice::ID.asc())
            .limit(limit)
            .offset(offset)
            .fetch_all(&db)
            .await
            .unwrap();
        let expected: Vec<Invoice> = sorted
            .iter()
            .skip(offset as usize)
            .take(limit as usize)
            .cloned()
            .collect();
        assert_eq!(page, expected, "offset {offset}, limit {limit}");
    }
    // NULLs sort last ascending, first descending (PostgreSQL's default).
    let priorities: Vec<Option<i32>> = Invoice::query()
        .order_by(Invoice::PRIORITY.desc())
        .order_by(Invoice::ID.asc())
        .fetch_all(&db)
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.priority)
        .collect();
    assert_eq!(priorities, [None, None, Some(3), Some(2), Some(1)]);
    drop(db);
    fx.schemas.cleanup().await;
}

#[tokio::test]
async fn one_optional_count_exists_and_stream() {
    let mut fx = Fixture::new("qb_terminals").await;
    for (key, seed) in [("acme", ACME), ("globex", GLOBEX)] {
        let db = fx.db(key);
        let rows = seeded(seed);

        let one = Invoice::query()
            .filter(Invoice::ID.eq(2))
            .fetch_one(&db)
            .await
            .unwrap();
        assert_eq!(one, rows[1]);
        let none = Invoice::query()
            .filter(Invoice::ID.eq(99))
            .fetch_one(&db)
            .await;
        assert!(matches!(none, Err(Error::RowNotFound)), "{none:?}");
        let many = Invoice::query()
            .filter(Invoice::ID.gt(0))
            .fetch_one(&db)
            .await;
        assert!(matches!(many, Err(Error::TooManyRows)), "{many:?}");

        let opt = Invoice::query()
            .filter(Invoice::ID.eq(3))
            .fetch_optional(&db)
            .await
            .unwrap();
        assert_eq!(opt.as_ref(), Some(&rows[2]));
        let opt = Invoice::query()
            .filter(Invoice::ID.eq(99))
            .fetch_optional(&db)
            .await
            .unwrap();
        assert_eq!(opt, None);
        let many = Invoice::query().fetch_optional(&db).await;
        assert!(matches!(many, Err(Error::TooManyRows)), "{many:?}");

        let unpaid = rows.iter().filter(|i| !i.paid).count() as i64;
        let count = Invoice::query()
            .filter(Invoice::PAID.eq(false))
            .count(&db)
            .await
            .unwrap();
        assert_eq!(count, unpaid, "{key}");
        assert_eq!(
            Invoice::query().count(&db).await.unwrap(),
            rows.len() as i64
        );
        // count within limit/offset counts the window.
        let windowed = Invoice::query()
            .offset(1)
            .limit(2)
            .count(&db)
            .await
            .unwrap();
        assert_eq!(windowed, (rows.len() as i64 - 1).min(2));

        assert!(Invoice::query()
            .filter(Invoice::CUSTOMER.eq(rows[0].customer.as_str()))
            .exists(&db)
            .await
            .unwrap());
        assert!(!Invoice::query()
            .filter(Invoice::CUSTOMER.eq("nobody"))
            .exists(&db)
            .await
            .unwrap());

        let streamed: Vec<Invoice> = Invoice::query()
            .filter(Invoice::AMOUNT_CENTS.ge(10))
            .order_by(Invoice::ID.desc())
            .stream(&db)
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        let expected: Vec<Invoice> = rows
            .iter()
            .rev()
            .filter(|i| i.amount_cents >= 10)
            .cloned()
            .collect();
        assert_eq!(streamed, expected, "{key}");
    }
    fx.schemas.cleanup().await;
}

#[tokio::test]
async fn update_and_delete_touch_the_filtered_rows_of_one_tenant() {
    let mut fx = Fixture::new("qb_update_delete").await;
    let db = fx.db("acme");
    let mut expected = seeded(ACME);

    let n = Invoice::query()
        .filter(Invoice::CUSTOMER.eq("runner"))
        .update()
        .set(Invoice::PAID, true)
        .set(Invoice::NOTE, "settled")
        .set(Invoice::PRIORITY, None)
        .execute(&db)
        .await
        .unwrap();
    assert_eq!(n, 2);
    for i in expected.iter_mut().filter(|i| i.customer == "runner") {
        i.paid = true;
        i.note = Some("settled".into());
        i.priority = None;
    }
    assert_eq!(
        Invoice::query()
            .order_by(Invoice::ID.asc())
            .fetch_all(&db)
            .await
            .unwrap(),
        expected
    );

    // Without a filter, every row.
    let n = Invoice::query()
        .update()
        .set(Invoice::AMOUNT_CENTS, 1)
        .execute(&db)
        .await
        .unwrap();
    assert_eq!(n, expected.len() as u64);
    expected.iter_mut().for_each(|i| i.amount_cents = 1);
    assert_eq!(
        Invoice::query()
            .order_by(Invoice::ID.asc())
            .fetch_all(&db)
            .await
            .unwrap(),
        expected
    );

    let n = Invoice::query()
        .filter(Invoice::NOTE.is_null())
        .delete()
        .execute(&db)
        .await
        .unwrap();
    assert_eq!(n, 2);
    expected.retain(|i| i.note.is_some());
    assert_eq!(
        Invoice::query()
            .order_by(Invoice::ID.asc())
            .fetch_all(&db)
            .await
            .unwrap(),
        expected
    );
    drop(db);

    // globex saw none of it.
    let globex = fx.db("globex");
    assert_eq!(
        Invoice::query()
            .order_by(Invoice::ID.asc())
            .fetch_all(&globex)
            .await
            .unwrap(),
        seeded(GLOBEX)
    );
    drop(globex);
    fx.schemas.cleanup().await;
}

#[tokio::test]
async fn update_and_delete_with_order_and_limit_touch_exactly_that_window() {
    let mut fx = Fixture::new("qb_windowed_dml").await;
    let db = fx.db("acme");
    let mut expected = seeded(ACME);

    // The two largest unpaid invoices (ties broken by id).
    let n = Invoice::query()
        .filter(Invoice::PAID.eq(false))
        .order_by(Invoice::AMOUNT_CENTS.desc())
        .order_by(Invoice::ID.asc())
        .limit(2)
        .update()
        .set(Invoice::NOTE, "top two")
        .execute(&db)
        .await
        .unwrap();
    assert_eq!(n, 2);
    let mut unpaid: Vec<&mut Invoice> = expected.iter_mut().filter(|i| !i.paid).collect();
    unpaid.sort_by(|a, b| b.amount_cents.cmp(&a.amount_cents).then(a.id.cmp(&b.id)));
    for i in unpaid.into_iter().take(2) {
        i.note = Some("top two".into());
    }
    assert_eq!(
        Invoice::query()
            .order_by(Invoice::ID.asc())
            .fetch_all(&db)
            .await
            .unwrap(),
        expected
    );

    // Delete the second-smallest row by id.
    let n = Invoice::query()
        .order_by(Invoice::ID.asc())
        .offset(1)
        .limit(1)
        .delete()
        .execute(&db)
        .await
        .unwrap();
    assert_eq!(n, 1);
    expected.remove(1);
    assert_eq!(
        Invoice::query()
            .order_by(Invoice::ID.asc())
            .fetch_all(&db)
            .await
            .unwrap(),
        expected
    );
    drop(db);
    fx.schemas.cleanup().await;
}

#[tokio::test]
async fn a_shared_slot_model_reads_the_connection_map_or_the_statement_map() {
    let mut fx = Fixture::new("qb_named_slot").await;
    let archive = fx.schemas.name("archive");
    fx.client
        .as_tokio_postgres()
        .batch_execute(&format!("CREATE SCHEMA \"{archive}\""))
        .await
        .unwrap();
    let map = SchemaMap::new().with("shared", &archive).unwrap();
    let db = fx.db("acme");
    Plan::create_table(&db).await.unwrap(); // in the connection map's `shared` schema
    for (code, cents) in [("free", 0), ("pro", 4900)] {
        Plan {
            code: code.into(),
            monthly_cents: cents,
        }
        .insert(&db)
        .await
        .unwrap();
    }
    // The same table in the archive schema, through the statement map.
    let sql = db
        .render(
            &tenant_runtime::model::ddl::create_table::<Plan>(),
            Some(&map),
        )
        .unwrap();
    fx.client
        .as_tokio_postgres()
        .batch_execute(&sql)
        .await
        .unwrap();
    let db = fx.db("globex");
    let n = Plan::query().schema_map(&map).count(&db).await.unwrap();
    assert_eq!(n, 0, "the archive has no plans yet");
    let copied = Plan::query()
        .filter(Plan::MONTHLY_CENTS.gt(0))
        .fetch_all(&db)
        .await
        .unwrap();
    assert_eq!(copied.len(), 1);
    // No builder INSERT: copy with plain SQL into the archive.
    fx.client
        .as_tokio_postgres()
        .execute(
            &format!("INSERT INTO \"{archive}\".plans VALUES ($1, $2)"),
            &[&copied[0].code, &copied[0].monthly_cents],
        )
        .await
        .unwrap();
    let db = fx.db("globex");
    let archived = Plan::query().schema_map(&map).fetch_all(&db).await.unwrap();
    assert_eq!(archived, copied);
    let renamed = Plan::query()
        .filter(Plan::CODE.eq("pro"))
        .schema_map(&map)
        .update()
        .set(Plan::CODE, "pro_2025")
        .execute(&db)
        .await
        .unwrap();
    assert_eq!(renamed, 1);
    let current: Vec<String> = Plan::query()
        .order_by(Plan::CODE.asc())
        .fetch_all(&db)
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.code)
        .collect();
    assert_eq!(
        current,
        ["free", "pro"],
        "the connection map's schema is untouched"
    );
    assert!(Plan::query()
        .schema_map(&map)
        .filter(Plan::CODE.eq("pro_2025"))
        .exists(&db)
        .await
        .unwrap());
    drop(db);
    fx.schemas.cleanup().await;
}

#[tokio::test]
async fn a_builder_chain_renders_once_per_shape_and_schema_then_hits_the_cache() {
    let fx = Fixture::new("qb_cache").await;
    // A fresh connection: its cache has seen nothing.
    let mut client = Client::connect(&database_url().await).await.unwrap();
    let stats = client.statement_cache().stats();
    assert_eq!((stats.renders, stats.hits, stats.misses), (0, 0, 0));
    const CALLS: u64 = 5;
    for (key, seed) in [("acme", ACME), ("globex", GLOBEX)] {
        let tenant = fx.tenant(key);
        let db = client.for_tenant(&tenant);
        for n in 0..CALLS {
            // Different values, limits and list lengths every call: one shape.
            let amounts: Vec<i64> = (0..=n as i64).map(|k| k * 1000).collect();
            let got = Invoice::query()
                .filter(Invoice::PAID.eq(n % 2 == 0))
                .filter(
                    Invoice::AMOUNT_CENTS
                        .ge(0)
                        .or(Invoice::ID.in_list(amounts.clone())),
                )
                .order_by(Invoice::ID.asc())
                .limit(n + 1)
                .fetch_all(&db)
                .await
                .unwrap();
            let expected: Vec<Invoice> = seeded(seed)
                .into_iter()
                .filter(|i| i.paid == (n % 2 == 0))
                .take(n as usize + 1)
                .collect();
            assert_eq!(got, expected);
        }
    }
    let after = client.statement_cache().stats();
    println!("builder cache after {CALLS} calls x 2 schemas: {after:?}");
    assert_eq!(after.renders, 2, "rendered once per schema");
    assert_eq!(after.misses, 2);
    assert_eq!(after.hits, 2 * (CALLS - 1));

    // Another shape (no limit) is another statement.
    let tenant = fx.tenant("acme");
    let db = client.for_tenant(&tenant);
    Invoice::query()
        .filter(Invoice::PAID.eq(true))
        .fetch_all(&db)
        .await
        .unwrap();
    let last = client.statement_cache().stats();
    assert_eq!(last.renders, 3);
    drop(client);
    fx.schemas.cleanup().await;
}

/// Builder futures can be spawned: they are `Send` (checked at compile time).
#[allow(dead_code)]
fn builder_futures_are_send(db: &Db<&mut Client>, note: &str) {
    fn send<T: Send>(_: T) {}
    send(
        Invoice::query()
            .filter(Invoice::NOTE.eq(note))
            .fetch_all(db),
    );
    send(Invoice::query().stream(db));
    send(
        Invoice::query()
            .update()
            .set(Invoice::NOTE, note)
            .execute(db),
    );
    send(Invoice::query().delete().execute(db));
}
