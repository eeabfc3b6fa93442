//! Bulk paths: `insert_many`, `copy_in` and `stream` on a real PostgreSQL.
//!
//! Values and NULLs round-trip through every path; `insert_many` chunks exactly at the
//! bind-parameter limit and is all-or-nothing; an aborted COPY writes nothing; a stream of
//! 1M rows runs in flat memory (measured by a counting allocator).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::error::Error as StdError;

use futures_util::{stream, StreamExt, TryStreamExt};
use tenant_runtime::exec::CacheStats;
use tenant_runtime::model::bulk::{rows_per_insert, MAX_BIND_PARAMS};
use tenant_runtime::model::SqlType;
use tenant_runtime::postgres_types::{to_sql_checked, FromSql, IsNull, ToSql, Type};
use tenant_runtime::{Allowlist, Client, Db, Error, Model, Tenant};
use tenant_tests::{database_url, TestSchemas};

// ---------------------------------------------------------------------------------------
// A counting allocator: live bytes and their peak, per thread. A `#[tokio::test]` runs on a
// current-thread runtime, so the test, the connection task and every buffer they allocate
// are on the test's thread, and tests running in parallel on other threads do not count.

struct CountingAllocator;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn note(delta: isize) {
    // `try_with`: allocations during thread teardown must not panic.
    let _ = LIVE.try_with(|live| {
        let now = live.get() + delta;
        live.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            note(layout.size() as isize);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            note(layout.size() as isize);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        note(-(layout.size() as isize));
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            note(new_size as isize - layout.size() as isize);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// Live bytes allocated by this thread now.
fn live_bytes() -> isize {
    LIVE.with(Cell::get)
}

/// Starts a new peak measurement from the current live bytes.
fn reset_peak() {
    let now = live_bytes();
    PEAK.with(|p| p.set(now));
}

fn peak_bytes() -> isize {
    PEAK.with(Cell::get)
}

// ---------------------------------------------------------------------------------------
// Models.

/// One column of every type the runtime supports without features, NOT NULL and NULL-able.
#[derive(Debug, Clone, PartialEq, Model)]
#[tenant(table = "samples")]
struct Sample {
    #[tenant(primary_key, identity)]
    id: i64,
    small: i16,
    int: i32,
    big: i64,
    real: f32,
    double: f64,
    flag: bool,
    text: String,
    bytes: Vec<u8>,
    opt_small: Option<i16>,
    opt_int: Option<i32>,
    opt_big: Option<i64>,
    opt_real: Option<f32>,
    opt_double: Option<f64>,
    opt_flag: Option<bool>,
    opt_text: Option<String>,
    opt_bytes: Option<Vec<u8>>,
}

/// Five inserted columns: 65,535 / 5 = 13,107 rows fill a statement to exactly the limit.
#[derive(Debug, Clone, PartialEq, Model)]
#[tenant(table = "fives")]
struct Five {
    #[tenant(primary_key, identity)]
    id: i64,
    #[tenant(unique)]
    a: i64,
    b: i32,
    c: String,
    d: bool,
    e: Option<i64>,
}

/// Two inserted columns: 65,535 / 2 rounds down to 32,767 rows (65,534 parameters).
#[derive(Debug, Clone, PartialEq, Model)]
#[tenant(table = "pairs")]
struct Pair {
    #[tenant(primary_key)]
    a: i64,
    b: Option<String>,
}

/// Only an identity column: every path inserts defaults.
#[derive(Debug, Clone, PartialEq, Model)]
#[tenant(table = "tickets")]
struct Ticket {
    #[tenant(primary_key, identity)]
    id: i64,
}

/// Streamed a million times.
#[derive(Debug, Clone, PartialEq, Model)]
#[tenant(table = "events")]
struct Event {
    #[tenant(primary_key)]
    id: i64,
    kind: String,
    amount: i64,
    note: Option<String>,
}

/// An `i64` whose encoding fails for negative values: a row that cannot be encoded.
#[derive(Debug, Clone, Copy, PartialEq)]
struct NonNegative(i64);

impl SqlType for NonNegative {
    const SQL_TYPE: &'static str = "BIGINT";
}

impl ToSql for NonNegative {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<IsNull, Box<dyn StdError + Sync + Send>> {
        if self.0 < 0 {
            return Err(format!("{} is negative", self.0).into());
        }
        self.0.to_sql(ty, out)
    }
    fn accepts(ty: &Type) -> bool {
        <i64 as ToSql>::accepts(ty)
    }
    to_sql_checked!();
}

impl<'a> FromSql<'a> for NonNegative {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn StdError + Sync + Send>> {
        i64::from_sql(ty, raw).map(NonNegative)
    }
    fn accepts(ty: &Type) -> bool {
        <i64 as FromSql>::accepts(ty)
    }
}

#[derive(Debug, Clone, PartialEq, Model)]
#[tenant(table = "ledger")]
struct Ledger {
    #[tenant(primary_key, identity)]
    id: i64,
    amount: NonNegative,
}

// ---------------------------------------------------------------------------------------
// Helpers.

struct Setup {
    schemas: TestSchemas,
    allowlist: Allowlist,
    client: Client,
}

async fn setup(test: &str) -> Setup {
    let schemas = TestSchemas::new(test).await;
    let allowlist = Allowlist::from_pairs([
        ("acme", schemas.name("acme")),
        ("globex", schemas.name("globex")),
    ])
    .unwrap();
    let mut client = Client::connect(&database_url().await).await.unwrap();
    for key in ["acme", "globex"] {
        let db = client.for_tenant(&allowlist.resolve(key).unwrap());
        db.create_schema().await.unwrap();
    }
    Setup {
        schemas,
        allowlist,
        client,
    }
}

impl Setup {
    fn tenant(&self, key: &str) -> Tenant {
        self.allowlist.resolve(key).unwrap()
    }
    fn db(&mut self, key: &str) -> Db<&mut Client> {
        let tenant = self.tenant(key);
        self.client.for_tenant(&tenant)
    }
}

const TEXTS: &[&str] = &[
    "",
    "plain",
    "it's \"quoted\" \\ back\\slashed",
    "tab\tnew\nline\r",
    "ünïcødé — 日本語 — 🦀🐘",
    "'); DROP TABLE samples; --",
    "NULL",
    "\\N",
];

fn sample(i: usize) -> Sample {
    let some = i % 3 != 0; // every third row is all NULLs in the optional columns
    let text = TEXTS[i % TEXTS.len()];
    let bytes: Vec<u8> = match i % 4 {
        0 => Vec::new(),
        1 => vec![0, 0xff, b'\\', b'\'', 0],
        2 => (0..=255).collect(),
        _ => vec![0; 3],
    };
    let small = [i16::MIN, -1, 0, i16::MAX][i % 4];
    let int = [i32::MIN, 0, 7, i32::MAX][i % 4];
    let big = [i64::MIN, -(i as i64), i as i64, i64::MAX][i % 4];
    let real = [f32::MIN_POSITIVE, -0.5, f32::MAX, f32::INFINITY][i % 4];
    let double = [f64::MIN_POSITIVE, 1e-300, -f64::MAX, f64::NEG_INFINITY][i % 4] + i as f64;
    Sample {
        id: 0,
        small,
        int,
        big,
        real,
        double,
        flag: i % 2 == 0,
        text: format!("{text} #{i}"),
        bytes: bytes.clone(),
        opt_small: some.then_some(small),
        opt_int: some.then_some(int),
        opt_big: some.then_some(big),
        opt_real: some.then_some(real),
        opt_double: some.then_some(double),
        opt_flag: some.then_some(i % 5 == 0),
        opt_text: some.then(|| text.to_owned()),
        opt_bytes: some.then_some(bytes),
    }
}

fn samples(n: usize) -> Vec<Sample> {
    (0..n).map(sample).collect()
}

fn without_ids(rows: &[Sample]) -> Vec<Sample> {
    rows.iter().map(|s| Sample { id: 0, ..s.clone() }).collect()
}

fn five(i: usize) -> Five {
    Five {
        id: 0,
        a: i as i64,
        b: i as i32 * 3,
        c: format!("row {i}"),
        d: i % 2 == 1,
        e: (i % 7 != 0).then_some(-(i as i64)),
    }
}

async fn count<M: Model>(db: &Db<&mut Client>) -> i64 {
    M::query().count(db).await.unwrap()
}

/// Statements prepared (from cache or not) since `before`: every statement the runtime runs
/// goes through the statement cache once.
fn statements_since(before: CacheStats, after: CacheStats) -> (u64, u64) {
    (
        (after.hits + after.misses) - (before.hits + before.misses),
        after.misses - before.misses,
    )
}

// ---------------------------------------------------------------------------------------
// Round trips.

#[tokio::test]
async fn values_and_nulls_round_trip_through_insert_many_copy_in_and_stream() {
    let mut s = setup("bulk::round_trip").await;
    let input = samples(300);
    let mut db = s.db("acme");
    Sample::create_table(&db).await.unwrap();

    // insert_many_returning: the stored rows come back in input order with generated ids.
    let stored = Sample::insert_many_returning(&mut db, &input)
        .await
        .unwrap();
    assert_eq!(without_ids(&stored), input);
    assert!(
        stored.windows(2).all(|w| w[0].id < w[1].id),
        "ids in input order"
    );
    // What was stored is what `all` and `stream` read back.
    assert_eq!(
        Sample::query()
            .order_by(Sample::ID.asc())
            .fetch_all(&db)
            .await
            .unwrap(),
        stored
    );
    let streamed: Vec<Sample> = Sample::query()
        .order_by(Sample::ID.asc())
        .stream(&db)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(streamed, stored);

    // insert_many (count only).
    db.execute(&truncate::<Sample>(), &[]).await.unwrap();
    assert_eq!(Sample::insert_many(&mut db, &input).await.unwrap(), 300);
    assert_eq!(
        without_ids(
            &Sample::query()
                .order_by(Sample::ID.asc())
                .fetch_all(&db)
                .await
                .unwrap()
        ),
        input
    );

    // copy_in from an iterator of references, then from a stream of owned rows.
    db.execute(&truncate::<Sample>(), &[]).await.unwrap();
    assert_eq!(Sample::copy_in(&db, &input).await.unwrap(), 300);
    assert_eq!(
        without_ids(
            &Sample::query()
                .order_by(Sample::ID.asc())
                .fetch_all(&db)
                .await
                .unwrap()
        ),
        input
    );
    db.execute(&truncate::<Sample>(), &[]).await.unwrap();
    let owned = stream::iter(input.clone().into_iter().map(Ok::<_, std::io::Error>));
    assert_eq!(Sample::copy_in_stream(&db, owned).await.unwrap(), 300);
    let copied: Vec<Sample> = Sample::query()
        .order_by(Sample::ID.asc())
        .stream(&db)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(without_ids(&copied), input);

    // Only acme's table got rows.
    let globex = s.db("globex");
    Sample::create_table(&globex).await.unwrap();
    assert_eq!(count::<Sample>(&globex).await, 0);
    drop(globex);
    s.schemas.cleanup().await;
}

fn truncate<M: Model>() -> tenant_runtime::sql::Template {
    tenant_runtime::sql::Template::builder()
        .sql("TRUNCATE ")
        .slot(M::SLOT)
        .sql(&format!(".\"{}\" RESTART IDENTITY", M::TABLE))
        .build()
}

#[tokio::test]
async fn empty_input_runs_no_statement() {
    let mut s = setup("bulk::empty").await;
    let mut db = s.db("acme");
    Pair::create_table(&db).await.unwrap();
    let before = db.executor().statement_cache().stats();
    assert_eq!(Pair::insert_many(&mut db, &[]).await.unwrap(), 0);
    assert!(Pair::insert_many_returning(&mut db, &[])
        .await
        .unwrap()
        .is_empty());
    let after = db.executor().statement_cache().stats();
    assert_eq!(statements_since(before, after).0, 0);
    assert_eq!(Pair::copy_in(&db, Vec::<Pair>::new()).await.unwrap(), 0);
    let none: Vec<Pair> = Pair::query()
        .order_by(Pair::A.asc())
        .stream(&db)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert!(none.is_empty());
    drop(db);
    s.schemas.cleanup().await;
}

#[tokio::test]
async fn identity_only_models_insert_defaults_on_every_path() {
    let mut s = setup("bulk::identity_only").await;
    let mut db = s.db("acme");
    Ticket::create_table(&db).await.unwrap();
    let tickets = vec![Ticket { id: 0 }; 5];
    let stored = Ticket::insert_many_returning(&mut db, &tickets)
        .await
        .unwrap();
    assert_eq!(
        stored.iter().map(|t| t.id).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5]
    );
    assert_eq!(Ticket::insert_many(&mut db, &tickets).await.unwrap(), 5);
    assert_eq!(Ticket::copy_in(&db, &tickets).await.unwrap(), 5);
    assert_eq!(count::<Ticket>(&db).await, 15);
    drop(db);
    s.schemas.cleanup().await;
}

// ---------------------------------------------------------------------------------------
// Chunking at the bind-parameter limit.

#[tokio::test]
async fn insert_many_chunks_at_exactly_the_parameter_limit() {
    let mut s = setup("bulk::chunking").await;
    let chunk = rows_per_insert::<Five>();
    assert_eq!(chunk, 13_107);
    assert_eq!(
        chunk * 5,
        MAX_BIND_PARAMS,
        "a full chunk binds exactly 65,535"
    );

    let mut db = s.db("acme");
    Five::create_table(&db).await.unwrap();
    // (rows, statements, newly prepared shapes): a full chunk is one shape, the last partial
    // chunk of a call another; shapes are prepared once per connection.
    let cases = [
        (chunk - 1, 1, 1), // a partial chunk: one statement
        (chunk, 1, 1),     // exactly full: one statement of 65,535 parameters
        (chunk + 1, 2, 1), // full (cached) + 1 row (new shape)
        (2 * chunk + 1, 3, 0),
    ];
    let mut next = 0;
    let mut total = 0;
    for (rows, statements, prepared) in cases {
        let input: Vec<Five> = (next..next + rows).map(five).collect();
        next += rows;
        let before = db.executor().statement_cache().stats();
        let inserted = Five::insert_many(&mut db, &input).await.unwrap();
        let after = db.executor().statement_cache().stats();
        assert_eq!(inserted, rows as u64, "{rows} rows");
        assert_eq!(
            statements_since(before, after),
            (statements, prepared),
            "{rows} rows: (statements, newly prepared)"
        );
        total += rows as i64;
        assert_eq!(count::<Five>(&db).await, total);
    }
    // Every row is there once, with its values.
    let stored = Five::query()
        .order_by(Five::ID.asc())
        .fetch_all(&db)
        .await
        .unwrap();
    let expected: Vec<Five> = (0..next).map(five).collect();
    assert_eq!(
        stored
            .iter()
            .map(|f| Five { id: 0, ..f.clone() })
            .collect::<Vec<_>>(),
        expected
    );
    drop(db);
    s.schemas.cleanup().await;
}

#[tokio::test]
async fn chunks_round_down_when_the_limit_is_not_a_multiple_of_the_columns() {
    let mut s = setup("bulk::chunk_round").await;
    let chunk = rows_per_insert::<Pair>();
    assert_eq!(chunk, 32_767); // 65,534 parameters; 32,768 rows would need 65,536
    let mut db = s.db("acme");
    Pair::create_table(&db).await.unwrap();
    let input: Vec<Pair> = (0..chunk as i64 + 1)
        .map(|a| Pair {
            a,
            b: (a % 2 == 0).then(|| a.to_string()),
        })
        .collect();
    let before = db.executor().statement_cache().stats();
    let stored = Pair::insert_many_returning(&mut db, &input).await.unwrap();
    let after = db.executor().statement_cache().stats();
    assert_eq!(statements_since(before, after), (2, 2));
    assert_eq!(stored, input);
    drop(db);
    s.schemas.cleanup().await;
}

#[tokio::test]
async fn one_parameter_over_the_limit_is_refused() {
    // What the chunking protects against: a statement cannot bind 65,536 parameters...
    let client = tenant_tests::connect().await;
    let array_of = |n: usize| {
        let items: Vec<String> = (1..=n).map(|i| format!("${i}::int")).collect();
        format!("SELECT cardinality(ARRAY[{}])", items.join(","))
    };
    let one = 1i32;
    let params: Vec<&(dyn ToSql + Sync)> = vec![&one; MAX_BIND_PARAMS + 1];
    let err = client
        .query(&array_of(MAX_BIND_PARAMS + 1), &params)
        .await
        .unwrap_err();
    println!("65,536 parameters: {err}");
    // ... while exactly the limit goes through.
    let row = client
        .query_one(&array_of(MAX_BIND_PARAMS), &params[..MAX_BIND_PARAMS])
        .await
        .unwrap();
    assert_eq!(row.get::<_, i32>(0), MAX_BIND_PARAMS as i32);
}

// ---------------------------------------------------------------------------------------
// All or nothing.

#[tokio::test]
async fn insert_many_is_all_or_nothing_across_chunks() {
    let mut s = setup("bulk::atomic_insert").await;
    let chunk = rows_per_insert::<Five>();
    let mut db = s.db("acme");
    Five::create_table(&db).await.unwrap();
    // The last row repeats the first row's unique `a`: the first chunk succeeds, the second
    // fails, and the first must be rolled back with it.
    let mut input: Vec<Five> = (0..chunk + 1).map(five).collect();
    input[chunk].a = 0;
    let err = Five::insert_many(&mut db, &input).await.unwrap_err();
    assert_eq!(err.sqlstate(), Some("23505"), "{err}");
    assert_eq!(count::<Five>(&db).await, 0);

    // In a transaction the chunks run in a savepoint: the failure leaves the transaction
    // usable and its earlier work in place.
    let mut tx = db.transaction().await.unwrap();
    Five::insert_many(&mut tx, &[five(1_000_000)])
        .await
        .unwrap();
    let err = Five::insert_many_returning(&mut tx, &input)
        .await
        .unwrap_err();
    assert_eq!(err.sqlstate(), Some("23505"), "{err}");
    assert_eq!(Five::query().count(&tx).await.unwrap(), 1);
    Five::insert_many(&mut tx, &input[1..chunk + 1])
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(count::<Five>(&db).await, chunk as i64 + 1);
    drop(db);
    s.schemas.cleanup().await;
}

#[tokio::test]
async fn a_failing_source_aborts_the_copy_and_writes_nothing() {
    let mut s = setup("bulk::copy_source_error").await;
    let db = s.db("acme");
    Five::create_table(&db).await.unwrap();
    // 10,000 good rows (well past the writer's 4 KiB flushes: data reached the server), then
    // an error.
    let rows = (0..10_001).map(|i| {
        if i < 10_000 {
            Ok(five(i))
        } else {
            Err(std::io::Error::other("disk read failed"))
        }
    });
    let err = Five::copy_in_stream(&db, stream::iter(rows))
        .await
        .unwrap_err();
    match &err {
        Error::CopySource { source } => assert_eq!(source.to_string(), "disk read failed"),
        other => panic!("expected CopySource, got {other:?}"),
    }
    assert_eq!(count::<Five>(&db).await, 0);
    // The connection is fine afterwards, and the same COPY goes through.
    assert_eq!(
        Five::copy_in(&db, (0..10_000).map(five)).await.unwrap(),
        10_000
    );
    assert_eq!(count::<Five>(&db).await, 10_000);
    drop(db);
    s.schemas.cleanup().await;
}

#[tokio::test]
async fn a_row_that_cannot_be_encoded_aborts_the_copy_and_writes_nothing() {
    let mut s = setup("bulk::copy_encode_error").await;
    let db = s.db("acme");
    Ledger::create_table(&db).await.unwrap();
    let rows: Vec<Ledger> = (0..5_000)
        .map(|i| Ledger {
            id: 0,
            amount: NonNegative(if i == 4_000 { -1 } else { i }),
        })
        .collect();
    let err = Ledger::copy_in(&db, &rows).await.unwrap_err();
    assert!(matches!(err, Error::Db(_)), "{err:?}");
    assert!(format!("{err:?}").contains("-1 is negative"), "{err:?}");
    assert_eq!(Ledger::query().count(&db).await.unwrap(), 0);
    drop(db);
    s.schemas.cleanup().await;
}

#[tokio::test]
async fn a_row_the_server_rejects_aborts_the_copy_and_writes_nothing() {
    let mut s = setup("bulk::copy_server_error").await;
    let mut db = s.db("acme");
    Five::create_table(&db).await.unwrap();
    // Duplicate unique key in the last row, found by the server while copying.
    let mut rows: Vec<Five> = (0..20_000).map(five).collect();
    rows[19_999].a = 5;
    let err = Five::copy_in(&db, &rows).await.unwrap_err();
    assert_eq!(err.sqlstate(), Some("23505"), "{err}");
    assert_eq!(count::<Five>(&db).await, 0);

    // Inside a transaction the failed COPY fails the transaction, like any failed
    // statement; rolling back leaves nothing either.
    let tx = db.transaction().await.unwrap();
    five(100_000).insert(&tx).await.unwrap();
    assert!(Five::copy_in(&tx, &rows).await.is_err());
    tx.rollback().await.unwrap();
    assert_eq!(count::<Five>(&db).await, 0);
    drop(db);
    s.schemas.cleanup().await;
}

#[tokio::test]
async fn copy_in_takes_column_types_from_the_table() {
    // The table's `amount` column is INTEGER while the model says BIGINT: COPY refuses the
    // first row instead of sending 8-byte values into a 4-byte column.
    let mut s = setup("bulk::copy_types").await;
    let db = s.db("acme");
    db.batch_execute(
        &tenant_runtime::sql::Template::builder()
            .sql("CREATE TABLE ")
            .slot(tenant_runtime::Slot::Tenant)
            .sql(".\"ledger\" (id BIGINT GENERATED BY DEFAULT AS IDENTITY, amount INTEGER)")
            .build(),
    )
    .await
    .unwrap();
    let rows = vec![
        Ledger {
            id: 0,
            amount: NonNegative(1)
        };
        3
    ];
    let err = Ledger::copy_in(&db, &rows).await.unwrap_err();
    assert!(
        format!("{err:?}").contains("WrongType"),
        "expected a type mismatch, got {err:?}"
    );
    assert_eq!(Ledger::query().count(&db).await.unwrap(), 0);
    drop(db);
    s.schemas.cleanup().await;
}

// ---------------------------------------------------------------------------------------
// Streaming in flat memory.

const STREAM_ROWS: i64 = 1_000_000;

#[tokio::test]
async fn streaming_a_million_rows_keeps_memory_flat() {
    let mut s = setup("bulk::stream_memory").await;
    let db = s.db("acme");
    Event::create_table(&db).await.unwrap();
    // Generated server-side: one statement, no rows through this process.
    let fill = tenant_runtime::sql::Template::builder()
        .sql("INSERT INTO ")
        .slot(tenant_runtime::Slot::Tenant)
        .sql(
            ".\"events\" (id, kind, amount, note) \
             SELECT g, 'event ' || g, g * 7, CASE WHEN g % 2 = 0 THEN 'note ' || g END \
             FROM generate_series(1, $1::bigint) g",
        )
        .build();
    assert_eq!(
        db.execute(&fill, &[&STREAM_ROWS]).await.unwrap(),
        STREAM_ROWS as u64
    );

    let mut events = Event::query()
        .order_by(Event::ID.asc())
        .stream(&db)
        .await
        .unwrap();
    let first = events.next().await.unwrap().unwrap();
    assert_eq!(first.id, 1);
    // From here on, nothing should accumulate.
    let start = live_bytes();
    reset_peak();
    let mut samples = Vec::with_capacity(16);
    let mut expected = 2;
    while let Some(event) = events.try_next().await.unwrap() {
        // Decoded right and in key order, checked without keeping anything.
        assert_eq!(event.id, expected);
        assert_eq!(event.amount, expected * 7);
        if expected % 100_000 == 0 {
            assert_eq!(event.kind, format!("event {expected}"));
            assert_eq!(event.note, Some(format!("note {expected}")));
            samples.push(live_bytes() - start);
        }
        expected += 1;
    }
    assert_eq!(expected - 1, STREAM_ROWS, "every row streamed once");
    assert_eq!(events.rows_affected(), Some(STREAM_ROWS as u64));
    let growth = peak_bytes() - start;
    let end = live_bytes() - start;

    // Holding the rows would take at least the models themselves plus their strings.
    let held =
        STREAM_ROWS as isize * (std::mem::size_of::<Event>() + "event 1000000".len()) as isize;
    const BOUND: isize = 4 << 20;
    println!(
        "streamed {STREAM_ROWS} rows: peak growth {growth} B, end {end} B, \
         samples every 100k rows {samples:?}; holding them would take >= {held} B"
    );
    assert!(held > 10 * BOUND);
    assert!(
        growth < BOUND,
        "live bytes grew by {growth} while streaming (samples {samples:?})"
    );
    drop(events);

    // The measurement sees growth when there is some: collecting 100k rows is way over.
    reset_peak();
    let start = live_bytes();
    let held: Vec<Event> = Event::query()
        .order_by(Event::ID.asc())
        .stream(&db)
        .await
        .unwrap()
        .take(100_000)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(held.len(), 100_000);
    assert!(
        live_bytes() - start > BOUND,
        "100k collected rows: {} B",
        live_bytes() - start
    );
    drop(held);
    drop(db);
    s.schemas.cleanup().await;
}

// ---------------------------------------------------------------------------------------
// The pooler-safe statement mode.

#[tokio::test]
async fn every_bulk_path_works_in_unnamed_statement_mode() {
    let schemas = TestSchemas::new("bulk::unnamed_mode").await;
    let allowlist = Allowlist::from_pairs([("acme", schemas.name("acme"))]).unwrap();
    let mut client = Client::connect(&database_url().await)
        .await
        .unwrap()
        .with_statement_mode(tenant_runtime::StatementMode::Unnamed);
    let tenant = allowlist.resolve("acme").unwrap();
    let mut db = client.for_tenant(&tenant);
    db.create_schema().await.unwrap();
    Sample::create_table(&db).await.unwrap();
    let input = samples(50);
    let stored = Sample::insert_many_returning(&mut db, &input)
        .await
        .unwrap();
    assert_eq!(without_ids(&stored), input);
    assert_eq!(Sample::copy_in(&db, &input).await.unwrap(), 50);
    let streamed: Vec<Sample> = Sample::query()
        .order_by(Sample::ID.asc())
        .stream(&db)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(streamed.len(), 100);
    assert_eq!(without_ids(&streamed[50..]), input);
    drop(db);
    schemas.cleanup().await;
}
