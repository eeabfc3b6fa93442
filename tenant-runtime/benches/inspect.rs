//! Reading and diffing 1,000 tenant schemas (`BENCH_TENANTS` to change).
//!
//! Setup (untimed): 1,000 schemas with the two-table model set below (constraints, an index,
//! a default), built over 8 connections. Then, on one connection:
//!
//! - `inspect+diff/all-at-once`: [`SchemaSnapshot::read`] of all the schemas (four catalog
//!   queries, pipelined: one round trip), then [`ModelSet::expected_shape`] and
//!   [`SchemaShape::diff`](tenant_runtime::SchemaShape::diff) per tenant; every diff must be
//!   empty.
//! - `inspect+diff/one-schema-per-read`: the same, one `read` per schema, the baseline a
//!   per-tenant loop would be, over the first 50 schemas only (`BENCH_BASELINE_SCHEMAS`; each
//!   catalog read costs about as much for one schema as for many), extrapolated per 1,000.
//!
//! Run: `cargo bench -p tenant-runtime --bench inspect` (uses `$DATABASE_URL`). Medians, the
//! round trips of each variant, and the ratio are printed at the end.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode};
use futures_util::future::join_all;
use tenant_runtime::lifecycle::connect_many;
use tenant_runtime::model::SchemaSnapshot;
use tenant_runtime::{Allowlist, Client, Db, Model, ModelSet, SchemaName, Slot, Tenant};
use tokio::runtime::Runtime;

#[derive(Debug, Model)]
#[tenant(table = "customers")]
struct Customer {
    #[tenant(primary_key, identity)]
    id: i64,
    #[tenant(unique)]
    email: String,
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
    note: Option<String>,
}

thread_local! {
    static TIMES: RefCell<BTreeMap<&'static str, Vec<Duration>>> = RefCell::default();
}

fn database_url() -> String {
    std::env::var("DATABASE_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

fn tenant_count() -> usize {
    std::env::var("BENCH_TENANTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000)
}

fn models() -> ModelSet {
    ModelSet::new().with::<Customer>().with::<Invoice>()
}

fn record(name: &'static str, d: Duration) -> Duration {
    TIMES.with(|t| t.borrow_mut().entry(name).or_default().push(d));
    d
}

/// Reads `tenants` in reads of `per_read` schemas, diffs each against the models, asserts
/// every diff is empty. Returns the time and the number of reads (round trips).
async fn inspect_and_diff(
    client: &Client,
    tenants: &[Tenant],
    per_read: usize,
) -> (Duration, usize) {
    let models = models();
    let start = Instant::now();
    let mut reads = 0;
    for chunk in tenants.chunks(per_read) {
        let names: Vec<SchemaName> = chunk.iter().map(|t| t.schema()).collect();
        let snapshot = SchemaSnapshot::read(client, &names).await.unwrap();
        reads += 1;
        for tenant in chunk {
            let expected = models
                .expected_shape(&Db::new(client, tenant), Slot::Tenant)
                .unwrap();
            let live = snapshot.get(tenant.schema()).expect("schema exists");
            let diff = expected.diff(live);
            assert!(diff.is_empty(), "{}: {diff:?}", tenant.key());
        }
    }
    (start.elapsed(), reads)
}

fn bench(c: &mut Criterion) {
    let rt = Runtime::new().unwrap();
    let url = database_url();
    let n = tenant_count();
    let prefix = format!("bench_insp_{}", std::process::id());
    let allowlist = Allowlist::with_max_len(n + 1);
    for i in 0..n {
        allowlist
            .insert(&format!("t{i:04}"), &format!("{prefix}_t{i:04}"))
            .unwrap();
    }
    let tenants = allowlist.tenants();
    let clients = rt.block_on(connect_many(&url, 8)).unwrap();
    let setup = Instant::now();
    rt.block_on(async {
        let per = tenants.len().div_ceil(clients.len());
        join_all(
            clients
                .iter()
                .zip(tenants.chunks(per))
                .map(|(client, chunk)| async move {
                    for tenant in chunk {
                        let db = Db::new(client, tenant);
                        db.create_schema().await.unwrap();
                        models().create_tenant_tables(&db).await.unwrap();
                    }
                }),
        )
        .await;
    });
    println!("setup: {n} schemas built in {:.2?}", setup.elapsed());
    let client = &clients[0];

    let mut group = c.benchmark_group("inspect+diff");
    group.sample_size(10).sampling_mode(SamplingMode::Flat);
    let mut reads: BTreeMap<&str, usize> = BTreeMap::new();
    let baseline: usize = std::env::var("BENCH_BASELINE_SCHEMAS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(50)
        .min(n);
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for (name, per_read, count) in [
        ("inspect+diff/all-at-once", n, n),
        ("inspect+diff/one-schema-per-read", 1, baseline),
    ] {
        counts.insert(name, count);
        let tenants = &tenants[..count];
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| {
                        let (d, r) = rt.block_on(inspect_and_diff(client, tenants, per_read));
                        reads.insert(name, r);
                        record(name, d)
                    })
                    .sum()
            })
        });
    }
    group.finish();

    rt.block_on(async {
        let pg = client.as_tokio_postgres();
        let names: Vec<String> = tenants.iter().map(|t| t.schema().quoted()).collect();
        for chunk in names.chunks(50) {
            pg.batch_execute(&format!("DROP SCHEMA {} CASCADE", chunk.join(", ")))
                .await
                .unwrap();
        }
    });

    let medians: BTreeMap<&str, Duration> = TIMES.with(|t| {
        t.borrow()
            .iter()
            .map(|(k, v)| {
                let mut v = v.clone();
                v.sort();
                (*k, v[v.len() / 2])
            })
            .collect()
    });
    println!("\nmedians (2 tables, 9 columns, 5 constraints, 1 index per schema):");
    let mut per_thousand: BTreeMap<&str, f64> = BTreeMap::new();
    for (name, d) in &medians {
        let count = counts[name];
        let per = d.as_secs_f64() * 1000.0 / count as f64;
        per_thousand.insert(name, per);
        println!(
            "  {name:<34} {count:>5} schemas in {d:>10.2?}, {:>5} round trips ({per:.2} s per 1,000 schemas)",
            reads.get(name).copied().unwrap_or(0),
        );
    }
    if let (Some(all), Some(one)) = (
        per_thousand.get("inspect+diff/all-at-once"),
        per_thousand.get("inspect+diff/one-schema-per-read"),
    ) {
        println!(
            "  per schema: one-schema-per-read / all-at-once = {:.0}x",
            one / all
        );
    }
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
    c.final_summary();
}
