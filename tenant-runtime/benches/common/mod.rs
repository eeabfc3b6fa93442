//! Shared by the benches: the database, tenant schemas, the benchmarked model, the
//! hand-written baseline's decoding, and the ratio printout.
//!
//! Every bench runs on a current-thread tokio runtime (the connection task and the bench
//! loop share one thread, as in a request handler) against `$DATABASE_URL`, else
//! `postgres://postgres@127.0.0.1:5432/postgres`. Schemas are named `bench_<pid>_<name>_<n>`
//! and dropped at the end.
#![allow(dead_code)] // each bench uses part of this module

use std::path::PathBuf;
use std::time::Duration;

use criterion::measurement::Measurement;
use criterion::{Bencher, BenchmarkGroup, BenchmarkId, Criterion};
use tenant_runtime::{Allowlist, Client, Model, Tenant};
use tokio::runtime::Runtime;
use tokio_postgres::Row;

pub fn database_url() -> String {
    std::env::var("DATABASE_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

pub fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// A connection of the runtime, with the default statement cache (512).
pub async fn client() -> Client {
    Client::connect(&database_url())
        .await
        .expect("connecting to PostgreSQL (set DATABASE_URL)")
}

/// Criterion settings for a bench whose iterations take about `per_iter`.
pub fn criterion(measurement: Duration, samples: usize) -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(measurement)
        .sample_size(samples)
        .configure_from_args()
}

/// The benchmarked model: an invoice row as in the README.
#[derive(Debug, Clone, PartialEq, Model)]
#[tenant(table = "invoices")]
pub struct Invoice {
    #[tenant(primary_key, identity)]
    pub id: i64,
    pub customer_id: i64,
    pub amount_cents: i64,
    pub paid: bool,
    pub note: Option<String>,
}

/// The hand-written decoding the baseline uses.
pub fn invoice_from_row(row: &Row) -> Invoice {
    Invoice {
        id: row.get(0),
        customer_id: row.get(1),
        amount_cents: row.get(2),
        paid: row.get(3),
        note: row.get(4),
    }
}

pub fn invoices(n: usize) -> Vec<Invoice> {
    (0..n)
        .map(|i| Invoice {
            id: 0,
            customer_id: (i % 1000) as i64,
            amount_cents: (i * 37 % 100_000) as i64,
            paid: i % 3 == 0,
            note: (i % 2 == 0).then(|| format!("invoice number {i}")),
        })
        .collect()
}

/// `INSERT ... SELECT` that fills `schema.invoices` with `rows` rows server-side.
pub fn fill_invoices_sql(schema: &str, rows: i64) -> String {
    format!(
        "INSERT INTO \"{schema}\".\"invoices\" (customer_id, amount_cents, paid, note) \
         SELECT g % 1000, g * 37 % 100000, g % 3 = 0, \
                CASE WHEN g % 2 = 0 THEN 'invoice number ' || g END \
         FROM generate_series(1, {rows}) g"
    )
}

/// `n` tenant schemas for one bench, each with the tables `ddl` creates (given the quoted
/// schema), made in batches; dropped by [`Tenants::drop_all`].
pub struct Tenants {
    pub allowlist: Allowlist,
    pub schemas: Vec<String>,
}

impl Tenants {
    pub async fn create(
        pg: &tokio_postgres::Client,
        name: &str,
        n: usize,
        ddl: impl Fn(&str) -> String,
    ) -> Tenants {
        let prefix = format!("bench_{}_{name}", std::process::id());
        let schemas: Vec<String> = (0..n).map(|i| format!("{prefix}_{i}")).collect();
        // Leftovers of an interrupted run with the same pid are unlikely, but harmless.
        for batch in schemas.chunks(100) {
            let mut sql = String::new();
            for s in batch {
                sql.push_str(&format!(
                    "DROP SCHEMA IF EXISTS \"{s}\" CASCADE; CREATE SCHEMA \"{s}\"; {};",
                    ddl(&format!("\"{s}\""))
                ));
            }
            pg.batch_execute(&sql)
                .await
                .expect("creating bench schemas");
        }
        let allowlist = Allowlist::from_pairs(
            schemas
                .iter()
                .enumerate()
                .map(|(i, s)| (format!("t{i}"), s.clone())),
        )
        .expect("allowlist");
        Tenants { allowlist, schemas }
    }

    pub fn tenant(&self, i: usize) -> Tenant {
        self.allowlist.resolve(&format!("t{i}")).expect("tenant")
    }

    pub fn all(&self) -> Vec<Tenant> {
        (0..self.schemas.len()).map(|i| self.tenant(i)).collect()
    }

    pub async fn drop_all(self, pg: &tokio_postgres::Client) {
        for batch in self.schemas.chunks(100) {
            let sql: String = batch
                .iter()
                .map(|s| format!("DROP SCHEMA IF EXISTS \"{s}\" CASCADE;"))
                .collect();
            pg.batch_execute(&sql)
                .await
                .expect("dropping bench schemas");
        }
    }
}

/// Where criterion writes its estimates: `$CRITERION_HOME`, else `<target>/criterion`.
fn criterion_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return home.into();
    }
    if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(target).join("criterion");
    }
    // The bench runs as <target>/<profile>/deps/<name>-<hash>.
    let exe = std::env::current_exe().expect("current exe");
    exe.ancestors()
        .nth(3)
        .map(|target| target.join("criterion"))
        .unwrap_or_else(|| PathBuf::from("target/criterion"))
}

/// Time per iteration, in nanoseconds, of `group/function` in the last run: criterion's
/// slope estimate (linear sampling) or its mean (flat sampling).
fn estimate_ns(group: &str, function: &str) -> Option<f64> {
    let path = criterion_dir()
        .join(group)
        .join(function)
        .join("new/estimates.json");
    let text = std::fs::read_to_string(path).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    json["slope"]["point_estimate"]
        .as_f64()
        .or_else(|| json["mean"]["point_estimate"].as_f64())
}

/// How many times [`rounds`] benchmarks each contender.
pub const ROUNDS: u32 = 4;

/// Benchmarks every contender [`ROUNDS`] times (ids `name/1` … `name/4`), in the orders
/// A B …, … B A, … B A, A B … (ABBA BAAB for a pair), so that a load that drifts during the
/// run (other builds on this shared machine) weighs on every contender alike;
/// [`print_ratios`] averages the rounds.
pub fn rounds<M: Measurement>(
    g: &mut BenchmarkGroup<'_, M>,
    contenders: &mut [(&str, &mut dyn FnMut(&mut Bencher<'_, M>))],
) {
    for round in 1..=ROUNDS {
        let mut order: Vec<usize> = (0..contenders.len()).collect();
        if round == 2 || round == 3 {
            order.reverse();
        }
        for i in order {
            let (name, f) = &mut contenders[i];
            g.bench_function(BenchmarkId::new(*name, round), &mut **f);
        }
    }
}

fn human(ns: f64) -> String {
    match ns {
        n if n >= 1e9 => format!("{:.3} s", n / 1e9),
        n if n >= 1e6 => format!("{:.2} ms", n / 1e6),
        n if n >= 1e3 => format!("{:.1} µs", n / 1e3),
        n => format!("{n:.0} ns"),
    }
}

/// Prints, for each `(group, ours, baseline, elements per iteration, target)`, the time per
/// iteration of each (the mean over its [`rounds`]) and the throughput ratio
/// ours / baseline (= baseline time / our time), overall and per round, as markdown table
/// rows. `target` is the minimum ratio, if the bench has one.
pub fn print_ratios(pairs: &[(&str, &str, &str, u64, Option<f64>)]) {
    println!();
    println!("| bench | ours | baseline | ours/baseline | per round | target |");
    println!("|---|---|---|---|---|---|");
    for &(group, ours, baseline, elements, target) in pairs {
        let times = |name: &str| -> Option<Vec<f64>> {
            (1..=ROUNDS)
                .map(|r| estimate_ns(group, &format!("{name}/{r}")))
                .collect()
        };
        let (Some(o), Some(b)) = (times(ours), times(baseline)) else {
            println!("| {group} | (not run) | | | | |");
            continue;
        };
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        let (om, bm) = (mean(&o), mean(&b));
        let per_sec = |ns: f64| elements as f64 * 1e9 / ns;
        let ratio = bm / om;
        let per_round: Vec<String> = o
            .iter()
            .zip(&b)
            .map(|(o, b)| format!("{:.2}", b / o))
            .collect();
        let verdict = match target {
            Some(t) if ratio >= t => format!("≥ {t}: met"),
            Some(t) => format!("≥ {t}: MISSED"),
            None => "—".into(),
        };
        println!(
            "| {group}: {ours} vs {baseline} | {} ({:.0}/s) | {} ({:.0}/s) | **{ratio:.3}** | {} | {verdict} |",
            human(om),
            per_sec(om),
            human(bm),
            per_sec(bm),
            per_round.join(", "),
        );
    }
}

/// `CREATE TABLE` for [`Invoice`] in `schema` (quoted), as the derive writes it, plus `rows`
/// rows made server-side.
pub fn invoices_ddl(schema: &str, rows: i64) -> String {
    let mut sql = format!(
        "CREATE TABLE {schema}.\"invoices\" (\"id\" BIGINT GENERATED BY DEFAULT AS IDENTITY, \
         \"customer_id\" BIGINT NOT NULL, \"amount_cents\" BIGINT NOT NULL, \
         \"paid\" BOOLEAN NOT NULL, \"note\" TEXT, CONSTRAINT \"invoices_pkey\" PRIMARY KEY (\"id\"));"
    );
    if rows > 0 {
        sql.push_str(&fill_invoices_sql(schema.trim_matches('"'), rows));
        sql.push(';');
    }
    sql
}

/// The column list the derive selects, for the baseline's hand-written SQL.
pub const INVOICE_COLUMNS: &str = "\"id\", \"customer_id\", \"amount_cents\", \"paid\", \"note\"";
