//! Get by key (1 and 100 tenants) and a select of 100 rows: the runtime vs hand-written
//! tokio-postgres with static schema-qualified SQL prepared once, on the same connection.

mod common;

use std::hint::black_box;
use std::time::{Duration, Instant};

use common::{invoice_from_row, invoices_ddl, Invoice, Tenants, INVOICE_COLUMNS};
use criterion::Throughput;
use tenant_runtime::{Db, Model};

const ROWS_PER_TENANT: i64 = 1_000;

fn main() {
    let rt = common::runtime();
    let mut c = common::criterion(Duration::from_secs(3), 30);
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
        // Tenant and key of the k-th get: every tenant in turn, keys spread over the table.
        let tenant = |k: u64| k as usize % n;
        let key = |k: u64| 1 + (k * 7_919) as i64 % ROWS_PER_TENANT;
        common::interleaved(
            &mut c,
            &format!("get_by_key_{n}_tenants"),
            |g| {
                g.throughput(Throughput::Elements(1));
            },
            &rt,
            &["tenant", "baseline"],
            async |contender, k| {
                let start = Instant::now();
                let found = if contender == 0 {
                    // A handle per request, as a service makes one.
                    let db = Db::new(&client, &tenants[tenant(k)]);
                    Invoice::get(&db, key(k)).await.unwrap()
                } else {
                    let row = pg
                        .query_opt(&statements[tenant(k)], &[&key(k)])
                        .await
                        .unwrap();
                    row.as_ref().map(invoice_from_row)
                };
                black_box(found.expect("row"));
                start.elapsed()
            },
        );
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
    common::interleaved(
        &mut c,
        "select_100_rows",
        |g| {
            g.throughput(Throughput::Elements(100));
        },
        &rt,
        &["tenant", "baseline"],
        async |contender, _| {
            let start = Instant::now();
            let rows = if contender == 0 {
                let db = Db::new(&client, &tenant);
                Invoice::query()
                    .order_by(Invoice::ID.asc())
                    .fetch_all(&db)
                    .await
                    .unwrap()
            } else {
                let rows = pg.query(&statement, &[]).await.unwrap();
                rows.iter().map(invoice_from_row).collect()
            };
            assert_eq!(rows.len(), 100);
            black_box(rows);
            start.elapsed()
        },
    );

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
