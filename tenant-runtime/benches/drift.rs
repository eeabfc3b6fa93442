//! The drift check of 10,000 tenant schemas (`BENCH_TENANTS` to change), wall time.
//!
//! Setup (untimed, printed): the schemas, migrated with `tests/migrations/drift` (two tables,
//! a foreign key, a unique constraint, an index, a default) over 8 connections. Then
//! `Migrator::check` of every schema, each variant `BENCH_RUNS` times (3 by default):
//!
//! - `models/jobs=8`: against the models, reads spread over 8 connections (500 schemas per
//!   read);
//! - `models/jobs=1`: the same on one connection (what the batching alone gives);
//! - `migrations/jobs=8`: against what the migrations build in a scratch schema (what the
//!   `tenant check` command does).
//!
//! Every check must find every tenant clean. Not a criterion bench: one run of a 10,000-schema
//! check takes seconds, so medians and ranges of a few runs are printed instead.
//!
//! Run: `cargo bench -p tenant-runtime --bench drift` (uses `$DATABASE_URL`).

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use tenant_runtime::lifecycle::{connect_many, Connections, Expected};
use tenant_runtime::{embed_migrations, Allowlist, Migrations, Migrator, Model, ModelSet};
use tokio::runtime::Runtime;

static DRIFT: Migrations = embed_migrations!("../tests/migrations/drift");

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
    note: Option<String>,
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(default)
}

fn database_url() -> String {
    std::env::var("DATABASE_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs it with no arguments and
    // must stay quick: then only 20 schemas.
    let benching = std::env::args().any(|a| a == "--bench");
    let n = env_usize("BENCH_TENANTS", if benching { 10_000 } else { 20 });
    let runs = env_usize("BENCH_RUNS", if benching { 3 } else { 1 });
    let rt = Runtime::new().unwrap();
    let url = database_url();
    let prefix = format!("bench_drift_{}", std::process::id());
    let allowlist = Allowlist::with_max_len(n + 1);
    for i in 0..n {
        allowlist
            .insert(&format!("t{i:05}"), &format!("{prefix}_t{i:05}"))
            .unwrap();
    }
    let tenants = allowlist.tenants();
    let models = ModelSet::new().with::<Customer>().with::<Invoice>();
    let clients = rt.block_on(connect_many(&url, 8)).unwrap();

    let setup = Instant::now();
    rt.block_on(async {
        let names: Vec<String> = tenants.iter().map(|t| t.schema().quoted()).collect();
        let per = names.len().div_ceil(clients.len()).max(1);
        join_all(
            clients
                .iter()
                .zip(names.chunks(per))
                .map(|(client, chunk)| async move {
                    for batch in chunk.chunks(200) {
                        let sql: Vec<String> =
                            batch.iter().map(|s| format!("CREATE SCHEMA {s}")).collect();
                        client
                            .as_tokio_postgres()
                            .batch_execute(&sql.join(";"))
                            .await
                            .unwrap();
                    }
                }),
        )
        .await;
        let report = Migrator::new(&DRIFT)
            .run(Connections::url(&url, 8), &tenants)
            .await
            .unwrap();
        assert!(report.is_success(), "{report}");
    });
    println!(
        "setup: {n} schemas created and migrated in {:.1?}",
        setup.elapsed()
    );

    let migrator = Migrator::new(&DRIFT);
    let mut results: Vec<(&str, Vec<Duration>)> = Vec::new();
    for (name, jobs, expected) in [
        ("models/jobs=8", 8, Expected::Models(&models)),
        ("models/jobs=1", 1, Expected::Models(&models)),
        ("migrations/jobs=8", 8, Expected::Migrations),
    ] {
        let mut times = Vec::with_capacity(runs);
        for _ in 0..runs {
            let start = Instant::now();
            let report = rt
                .block_on(migrator.check(Connections::url(&url, jobs), &tenants, expected))
                .unwrap();
            times.push(start.elapsed());
            println!("  {name}: {:.2?}", start.elapsed());
            assert_eq!(report.tenants.len(), n);
            assert!(report.is_clean(), "{report}");
        }
        times.sort();
        results.push((name, times));
    }

    println!("\ndrift check of {n} schemas, {runs} run(s) each (median [min, max]):");
    for (name, times) in &results {
        let median = times[times.len() / 2];
        println!(
            "  {name:<20} {median:>9.2?}  [{:.2?}, {:.2?}]  = {:.2?} per 1,000 schemas",
            times[0],
            times[times.len() - 1],
            median.mul_f64(1_000.0 / n.max(1) as f64)
        );
    }
    rt.block_on(async {
        let names: Vec<String> = tenants.iter().map(|t| t.schema().quoted()).collect();
        let per = names.len().div_ceil(clients.len()).max(1);
        join_all(
            clients
                .iter()
                .zip(names.chunks(per))
                .map(|(client, chunk)| async move {
                    // A few schemas per statement: each dropped object takes a lock slot.
                    for batch in chunk.chunks(5) {
                        let sql = format!("DROP SCHEMA {} CASCADE", batch.join(", "));
                        client
                            .as_tokio_postgres()
                            .batch_execute(&sql)
                            .await
                            .unwrap();
                    }
                }),
        )
        .await;
    });
}
