//! Bulk loads of 100k rows: `insert_many` vs a hand-written chunked multi-row INSERT in a
//! transaction (same chunk size, both statement shapes prepared once), and `copy_in` vs a
//! hand-written binary COPY (statement prepared once, column types written out).

mod common;

use std::time::{Duration, Instant};

use common::{invoices, invoices_ddl, Invoice, Tenants};
use criterion::{SamplingMode, Throughput};
use futures_util::pin_mut;
use tenant_runtime::model::bulk::rows_per_insert;
use tenant_runtime::postgres_types::{ToSql, Type};
use tenant_runtime::{Db, Model};
use tokio_postgres::binary_copy::BinaryCopyInWriter;

const ROWS: usize = 100_000;
const INSERTED: &str = "\"customer_id\", \"amount_cents\", \"paid\", \"note\"";

fn insert_sql(schema: &str, rows: usize) -> String {
    let values: Vec<String> = (0..rows)
        .map(|r| {
            let p = r * 4;
            format!("(${}, ${}, ${}, ${})", p + 1, p + 2, p + 3, p + 4)
        })
        .collect();
    format!(
        "INSERT INTO \"{schema}\".\"invoices\" ({INSERTED}) VALUES {}",
        values.join(", ")
    )
}

async fn count(pg: &tokio_postgres::Client, schema: &str) -> i64 {
    let sql = format!("SELECT count(*) FROM \"{schema}\".\"invoices\"");
    pg.query_one(&sql, &[]).await.unwrap().get(0)
}

fn main() {
    let rt = common::runtime();
    let mut c = common::criterion(Duration::from_secs(8), 10);
    let mut client = rt.block_on(common::client());
    let mut pg = rt.block_on(async {
        let (pg, conn) = tokio_postgres::connect(&common::database_url(), tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        pg
    });
    let admin = rt.block_on(async {
        let (pg, conn) = tokio_postgres::connect(&common::database_url(), tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        pg
    });
    // One schema for ours, one for the baseline: neither sees the other's rows.
    let tenants = rt.block_on(Tenants::create(&admin, "bulk", 2, |s| invoices_ddl(s, 0)));
    let (acme, theirs) = (tenants.tenant(0), tenants.schemas[1].clone());
    let truncate = |schema: &str| format!("TRUNCATE \"{schema}\".\"invoices\" RESTART IDENTITY");
    let truncate_ours = truncate(&tenants.schemas[0]);
    let truncate_theirs = truncate(&theirs);
    let rows = invoices(ROWS);

    // --- insert_many -------------------------------------------------------------------
    let per_statement = rows_per_insert::<Invoice>();
    let (full, last) = rt.block_on(async {
        (
            pg.prepare(&insert_sql(&theirs, per_statement))
                .await
                .unwrap(),
            pg.prepare(&insert_sql(&theirs, ROWS % per_statement))
                .await
                .unwrap(),
        )
    });
    let mut params: Vec<&(dyn ToSql + Sync)> = Vec::with_capacity(per_statement * 4);
    common::interleaved(
        &mut c,
        "insert_many_100k",
        |g| {
            g.sampling_mode(SamplingMode::Flat).sample_size(10);
            g.throughput(Throughput::Elements(ROWS as u64));
        },
        &rt,
        &["tenant", "baseline"],
        async |contender, _| {
            if contender == 0 {
                admin.batch_execute(&truncate_ours).await.unwrap();
                let mut db = Db::new(&mut client, &acme);
                let start = Instant::now();
                let n = Invoice::insert_many(&mut db, &rows).await.unwrap();
                let spent = start.elapsed();
                assert_eq!(n, ROWS as u64);
                spent
            } else {
                admin.batch_execute(&truncate_theirs).await.unwrap();
                let start = Instant::now();
                let tx = pg.transaction().await.unwrap();
                let mut n = 0;
                for chunk in rows.chunks(per_statement) {
                    params.clear();
                    for r in chunk {
                        params.extend_from_slice(&[
                            &r.customer_id,
                            &r.amount_cents,
                            &r.paid,
                            &r.note,
                        ]);
                    }
                    let statement = if chunk.len() == per_statement {
                        &full
                    } else {
                        &last
                    };
                    n += tx.execute(statement, &params).await.unwrap();
                }
                tx.commit().await.unwrap();
                let spent = start.elapsed();
                assert_eq!(n, ROWS as u64);
                spent
            }
        },
    );
    for schema in [&tenants.schemas[0], &theirs] {
        assert_eq!(rt.block_on(count(&admin, schema)), ROWS as i64);
    }

    // --- copy_in -----------------------------------------------------------------------
    let copy = rt
        .block_on(pg.prepare(&format!(
            "COPY \"{theirs}\".\"invoices\" ({INSERTED}) FROM STDIN (FORMAT binary)"
        )))
        .unwrap();
    let types = [Type::INT8, Type::INT8, Type::BOOL, Type::TEXT];
    common::interleaved(
        &mut c,
        "copy_in_100k",
        |g| {
            g.sampling_mode(SamplingMode::Flat).sample_size(10);
            g.throughput(Throughput::Elements(ROWS as u64));
        },
        &rt,
        &["tenant", "baseline"],
        async |contender, _| {
            if contender == 0 {
                admin.batch_execute(&truncate_ours).await.unwrap();
                let db = Db::new(&client, &acme);
                let start = Instant::now();
                let n = Invoice::copy_in(&db, &rows).await.unwrap();
                let spent = start.elapsed();
                assert_eq!(n, ROWS as u64);
                spent
            } else {
                admin.batch_execute(&truncate_theirs).await.unwrap();
                let start = Instant::now();
                let sink = pg.copy_in(&copy).await.unwrap();
                let writer = BinaryCopyInWriter::new(sink, &types);
                pin_mut!(writer);
                for r in &rows {
                    writer
                        .as_mut()
                        .write(&[&r.customer_id, &r.amount_cents, &r.paid, &r.note])
                        .await
                        .unwrap();
                }
                let n = writer.finish().await.unwrap();
                let spent = start.elapsed();
                assert_eq!(n, ROWS as u64);
                spent
            }
        },
    );
    for schema in [&tenants.schemas[0], &theirs] {
        assert_eq!(rt.block_on(count(&admin, schema)), ROWS as i64);
    }

    rt.block_on(tenants.drop_all(&admin));
    c.final_summary();
    common::print_ratios(&[
        ("insert_many_100k", "tenant", "baseline", ROWS as u64, None),
        (
            "copy_in_100k",
            "tenant",
            "baseline",
            ROWS as u64,
            Some(0.95),
        ),
    ]);
}
