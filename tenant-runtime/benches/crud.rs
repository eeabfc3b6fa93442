//! Get by key (1 and 100 tenants) and a select of 100 rows: the runtime vs hand-written
//! tokio-postgres with static schema-qualified SQL prepared once, on the same connection.

mod common;

use std::hint::black_box;
use std::time::{Duration, Instant};

use common::{invoice_from_row, invoices_ddl, Invoice, Tenants, INVOICE_COLUMNS};
use criterion::{Bencher, Throughput};
use tenant_runtime::{Db, Model};

const ROWS_PER_TENANT: i64 = 1_000;

fn main() {
    let rt = common::runtime();
    let mut c = common::criterion(Duration::from_secs(2), 30);
    let client = rt.block_on(common::client());
    let pg = client.as_tokio_postgres();

    let many = rt.block_on(Tenants::create(pg, "crud_get", 100, |s| {
        invoices_ddl(s, ROWS_PER_TENANT)
    }));
    for n in [1usize, 100] {
        let tenants: Vec<_> = (0..n).map(|i| many.tenant(i)).collect();
        let statements: Vec<_> = many.schemas[..n]
            .iter()
            .map(|s| {
                rt.block_on(pg.prepare(&format!(
                    "SELECT {INVOICE_COLUMNS} FROM \"{s}\".\"invoices\" WHERE \"id\" = $1"
                )))
                .unwrap()
            })
            .collect();
        let key = |k: u64| 1 + (k * 7_919) as i64 % ROWS_PER_TENANT;

        let mut g = c.benchmark_group(format!("get_by_key_{n}_tenants"));
        g.throughput(Throughput::Elements(1));
        let mut k = 0u64;
        let mut ours = |b: &mut Bencher<'_>| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        // A handle per request, as a service makes one.
                        let db = Db::new(&client, &tenants[k as usize % n]);
                        let found = Invoice::get(&db, key(k)).await.unwrap();
                        black_box(found.expect("row"));
                        k += 1;
                    }
                    start.elapsed()
                })
            })
        };
        let mut k = 0u64;
        let mut baseline = |b: &mut Bencher<'_>| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        let row = pg
                            .query_opt(&statements[k as usize % n], &[&key(k)])
                            .await
                            .unwrap();
                        black_box(row.as_ref().map(invoice_from_row).expect("row"));
                        k += 1;
                    }
                    start.elapsed()
                })
            })
        };
        common::rounds(
            &mut g,
            &mut [("tenant", &mut ours), ("baseline", &mut baseline)],
        );
        g.finish();
    }

    let one = rt.block_on(Tenants::create(pg, "crud_select", 1, |s| {
        invoices_ddl(s, 100)
    }));
    let tenant = one.tenant(0);
    let statement = rt
        .block_on(pg.prepare(&format!(
            "SELECT {INVOICE_COLUMNS} FROM \"{}\".\"invoices\" ORDER BY \"id\"",
            one.schemas[0]
        )))
        .unwrap();
    let mut g = c.benchmark_group("select_100_rows");
    g.throughput(Throughput::Elements(100));
    let mut ours = |b: &mut Bencher<'_>| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    let db = Db::new(&client, &tenant);
                    let rows = Invoice::all(&db).await.unwrap();
                    assert_eq!(rows.len(), 100);
                    black_box(rows);
                }
                start.elapsed()
            })
        })
    };
    let mut baseline = |b: &mut Bencher<'_>| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    let rows: Vec<Invoice> = pg
                        .query(&statement, &[])
                        .await
                        .unwrap()
                        .iter()
                        .map(invoice_from_row)
                        .collect();
                    assert_eq!(rows.len(), 100);
                    black_box(rows);
                }
                start.elapsed()
            })
        })
    };
    common::rounds(
        &mut g,
        &mut [("tenant", &mut ours), ("baseline", &mut baseline)],
    );
    g.finish();

    rt.block_on(async {
        many.drop_all(pg).await;
        one.drop_all(pg).await;
    });
    c.final_summary();
    common::print_ratios(&[
        ("get_by_key_1_tenants", "tenant", "baseline", 1, Some(0.95)),
        (
            "get_by_key_100_tenants",
            "tenant",
            "baseline",
            1,
            Some(0.95),
        ),
        ("select_100_rows", "tenant", "baseline", 100, Some(0.95)),
    ]);
}
