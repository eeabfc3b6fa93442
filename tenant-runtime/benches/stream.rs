//! Streaming 1M rows: `Model::stream` vs hand-written `query_raw` with the statement
//! prepared once, decoding every row into the same struct, on the same connection.

mod common;

use std::hint::black_box;
use std::time::{Duration, Instant};

use common::{invoice_from_row, invoices_ddl, Invoice, Tenants, INVOICE_COLUMNS};
use criterion::{SamplingMode, Throughput};
use futures_util::{pin_mut, TryStreamExt};
use tenant_runtime::{Db, Model};

const ROWS: i64 = 1_000_000;

fn main() {
    let rt = common::runtime();
    let mut c = common::criterion(Duration::from_secs(20), 10);
    let client = rt.block_on(common::client());
    let pg = client.as_tokio_postgres();
    let tenants = rt.block_on(Tenants::create(pg, "stream", 1, |s| invoices_ddl(s, ROWS)));
    rt.block_on(pg.batch_execute(&format!(
        "VACUUM ANALYZE \"{}\".\"invoices\"",
        tenants.schemas[0]
    )))
    .unwrap();
    let tenant = tenants.tenant(0);
    let statement = rt
        .block_on(pg.prepare(&format!(
            "SELECT {INVOICE_COLUMNS} FROM \"{}\".\"invoices\" ORDER BY \"id\"",
            tenants.schemas[0]
        )))
        .unwrap();

    common::interleaved(
        &mut c,
        "stream_1m_rows",
        |g| {
            g.sampling_mode(SamplingMode::Flat).sample_size(10);
            g.throughput(Throughput::Elements(ROWS as u64));
        },
        &rt,
        &["tenant", "baseline"],
        async |contender, _| {
            let start = Instant::now();
            let (mut n, mut sum) = (0i64, 0i64);
            if contender == 0 {
                let db = Db::new(&client, &tenant);
                let mut rows = Invoice::query()
                    .order_by(Invoice::ID.asc())
                    .stream(&db)
                    .await
                    .unwrap();
                while let Some(invoice) = rows.try_next().await.unwrap() {
                    n += 1;
                    sum += black_box(invoice).amount_cents;
                }
            } else {
                let rows = pg
                    .query_raw(&statement, std::iter::empty::<i64>())
                    .await
                    .unwrap();
                pin_mut!(rows);
                while let Some(row) = rows.try_next().await.unwrap() {
                    n += 1;
                    sum += black_box(invoice_from_row(&row)).amount_cents;
                }
            }
            assert_eq!(n, ROWS);
            black_box(sum);
            start.elapsed()
        },
    );

    rt.block_on(tenants.drop_all(pg));
    c.final_summary();
    common::print_ratios(&[(
        "stream_1m_rows",
        "tenant",
        "baseline",
        ROWS as u64,
        Some(0.95),
    )]);
}
