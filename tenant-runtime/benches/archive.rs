//! Export and import of one tenant of 1M rows (`BENCH_ROWS` to change): the archive
//! ([`Exporter`], [`Importer`]) next to binary `COPY` by hand with tokio-postgres (a file of
//! `COPY ... TO STDOUT (FORMAT binary)`, loaded back with `COPY ... FROM STDIN` into a table
//! made by hand), and next to `pg_dump -n <schema> -Fc --compress=0` / `pg_restore` when they
//! are on `PATH`, interleaved in the same run (see `common::interleaved`).
//!
//! - export: the archive of `invoices` (1M rows, rows in key order, checksummed, one
//!   REPEATABLE READ snapshot) to a file, vs. the plain COPY to a file, vs. pg_dump.
//! - import: a new tenant provisioned (schema, table, registry row) and loaded from the
//!   archive in one transaction, checksums verified and the sequence continued, vs. the
//!   table made by hand and COPY FROM the file in one transaction, vs. pg_restore into a
//!   database of its own. Dropping what an import made is not timed.
//!
//! Peak RSS (`VmHWM` of /proc/self/status) is printed after setup and after each group: the
//! archive streams, so it does not grow with the rows.
//! Run: `cargo bench -p tenant-runtime --bench archive` (uses `$DATABASE_URL`).

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{fill_invoices_sql, invoices_ddl, Invoice};
use criterion::{SamplingMode, Throughput};
use futures_util::{SinkExt, StreamExt};
use tenant_runtime::lifecycle::archive::{Exporter, Importer};
use tenant_runtime::{Allowlist, ModelSet, Provisioner, Registry};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn run(command: &mut Command) {
    let out = command.output().expect("the tool runs");
    assert!(
        out.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn main() {
    let rows: i64 = std::env::var("BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let rt = common::runtime();
    let mut c = common::criterion(Duration::from_secs(10), 10);
    let url = common::database_url();
    let mut client = rt.block_on(common::client());
    let admin = rt.block_on(async {
        let (pg, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        pg
    });
    let pid = std::process::id();
    let prefix = format!("bench_{pid}_archive");
    let source = format!("{prefix}_source");
    let registry = format!("{prefix}_registry");
    let dir = std::env::temp_dir().join(&prefix);
    std::fs::create_dir_all(&dir).unwrap();
    rt.block_on(admin.batch_execute(&format!(
        "DROP SCHEMA IF EXISTS \"{source}\" CASCADE; CREATE SCHEMA \"{source}\"; {}; {}; ANALYZE \"{source}\".invoices",
        invoices_ddl(&format!("\"{source}\""), 0),
        fill_invoices_sql(&source, rows)
    )))
    .unwrap();
    let provisioner = Provisioner::new(ModelSet::new().with::<Invoice>())
        .unwrap()
        .with_registry(Registry::new(&registry).unwrap());
    rt.block_on(provisioner.install(&client)).unwrap();
    let allowlist = Allowlist::from_pairs([("source", source.as_str())]).unwrap();
    let tenant = allowlist.resolve("source").unwrap();
    let exporter = Exporter::for_models(provisioner.models());
    let ours_file = dir.join("ours.tenant");
    let hand_file = dir.join("hand.copy");
    let dump_file = dir.join("dump.pgdump");
    let dump = have("pg_dump") && have("pg_restore");
    let restore_db = format!("{prefix}_restore");
    if dump {
        // One statement each: DROP/CREATE DATABASE cannot run in a (batch's) transaction.
        rt.block_on(async {
            let drop = format!("DROP DATABASE IF EXISTS \"{restore_db}\"");
            admin.batch_execute(&drop).await.unwrap();
            let create = format!("CREATE DATABASE \"{restore_db}\"");
            admin.batch_execute(&create).await.unwrap();
        });
    }
    let restore_url = {
        let (base, _) = url
            .rsplit_once('/')
            .expect("a database URL ends with /<database>");
        format!("{base}/{restore_db}")
    };
    let started_kib = peak_rss_kib();

    // --- export --------------------------------------------------------------------------
    let mut contenders = vec!["tenant", "copy_by_hand"];
    if dump {
        contenders.push("pg_dump");
    }
    let export_copy = format!("COPY \"{source}\".\"invoices\" TO STDOUT (FORMAT binary)");
    common::interleaved(
        &mut c,
        "export_1m",
        |g| {
            g.sampling_mode(SamplingMode::Flat).sample_size(10);
            g.throughput(Throughput::Elements(rows as u64));
        },
        &rt,
        &contenders,
        async |contender, _| match contender {
            0 => {
                let start = Instant::now();
                let summary = exporter
                    .export_to_file(&mut client, &tenant, &ours_file)
                    .await
                    .unwrap();
                let spent = start.elapsed();
                assert_eq!(summary.rows(), rows as u64);
                spent
            }
            1 => {
                let start = Instant::now();
                let file = tokio::fs::File::create(&hand_file).await.unwrap();
                let mut out = tokio::io::BufWriter::with_capacity(64 << 10, file);
                let stream = admin.copy_out(export_copy.as_str()).await.unwrap();
                futures_util::pin_mut!(stream);
                while let Some(chunk) = stream.next().await {
                    out.write_all(&chunk.unwrap()).await.unwrap();
                }
                out.flush().await.unwrap();
                out.into_inner().sync_all().await.unwrap();
                start.elapsed()
            }
            _ => {
                let start = Instant::now();
                run(Command::new("pg_dump")
                    .args(["-d", &url, "-n", &source, "-Fc", "--compress=0", "-f"])
                    .arg(&dump_file));
                start.elapsed()
            }
        },
    );
    let export_kib = peak_rss_kib();

    // --- import --------------------------------------------------------------------------
    let target = format!("{prefix}_copy");
    let drop_target = format!(
        "DROP SCHEMA IF EXISTS \"{target}\" CASCADE; DELETE FROM \"{registry}\".tenants WHERE key = 'copy'"
    );
    let hand_ddl = format!(
        "DROP SCHEMA IF EXISTS \"{target}\" CASCADE; CREATE SCHEMA \"{target}\"; {}",
        invoices_ddl(&format!("\"{target}\""), 0)
    );
    let import_copy = format!("COPY \"{target}\".\"invoices\" FROM STDIN (FORMAT binary)");
    let restore = rt.block_on(async {
        if !dump {
            return None;
        }
        let (pg, conn) = tokio_postgres::connect(&restore_url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        Some(pg)
    });
    let mut pg = rt.block_on(async {
        let (pg, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        pg
    });
    let mut contenders = vec!["tenant", "copy_by_hand"];
    if dump {
        contenders.push("pg_restore");
    }
    common::interleaved(
        &mut c,
        "import_1m",
        |g| {
            g.sampling_mode(SamplingMode::Flat).sample_size(10);
            g.throughput(Throughput::Elements(rows as u64));
        },
        &rt,
        &contenders,
        async |contender, _| match contender {
            0 => {
                admin.batch_execute(&drop_target).await.unwrap();
                let start = Instant::now();
                let imported = Importer::new(&provisioner)
                    .import_file(&mut client, &Allowlist::new(), "copy", &target, &ours_file)
                    .await
                    .unwrap();
                let spent = start.elapsed();
                assert_eq!(imported.tables[0].rows, rows as u64);
                spent
            }
            1 => {
                admin.batch_execute(&drop_target).await.unwrap();
                let start = Instant::now();
                let tx = pg.transaction().await.unwrap();
                tx.batch_execute(&hand_ddl).await.unwrap();
                let sink = tx.copy_in(import_copy.as_str()).await.unwrap();
                futures_util::pin_mut!(sink);
                let mut file = tokio::fs::File::open(&hand_file).await.unwrap();
                let mut buf = vec![0u8; 256 << 10];
                loop {
                    let n = file.read(&mut buf).await.unwrap();
                    if n == 0 {
                        break;
                    }
                    sink.send(bytes::Bytes::copy_from_slice(&buf[..n]))
                        .await
                        .unwrap();
                }
                let n = sink.finish().await.unwrap();
                tx.commit().await.unwrap();
                let spent = start.elapsed();
                assert_eq!(n, rows as u64);
                spent
            }
            _ => {
                let restore = restore
                    .as_ref()
                    .expect("pg_restore is run only with a database");
                restore
                    .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{source}\" CASCADE"))
                    .await
                    .unwrap();
                let start = Instant::now();
                run(Command::new("pg_restore")
                    .args(["-d", &restore_url, "--no-owner", "--single-transaction"])
                    .arg(&dump_file));
                start.elapsed()
            }
        },
    );
    let import_kib = peak_rss_kib();

    rt.block_on(async {
        admin.batch_execute(&drop_target).await.unwrap();
        admin
            .batch_execute(&format!(
                "DROP SCHEMA IF EXISTS \"{source}\" CASCADE; DROP SCHEMA IF EXISTS \"{registry}\" CASCADE"
            ))
            .await
            .unwrap();
        drop(restore);
        if dump {
            admin
                .batch_execute(&format!("DROP DATABASE IF EXISTS \"{restore_db}\" WITH (FORCE)"))
                .await
                .unwrap();
        }
    });
    let sizes: Vec<(String, u64)> = [&ours_file, &hand_file, &dump_file]
        .iter()
        .filter_map(|p: &&PathBuf| {
            std::fs::metadata(p).ok().map(|m| {
                (
                    p.file_name().unwrap().to_string_lossy().into_owned(),
                    m.len(),
                )
            })
        })
        .collect();
    std::fs::remove_dir_all(&dir).unwrap();
    c.final_summary();
    let mut pairs = vec![
        ("export_1m", "tenant", "copy_by_hand", rows as u64, None),
        ("import_1m", "tenant", "copy_by_hand", rows as u64, None),
    ];
    if dump {
        pairs.push(("export_1m", "tenant", "pg_dump", rows as u64, None));
        pairs.push(("import_1m", "tenant", "pg_restore", rows as u64, None));
    }
    common::print_ratios(&pairs);
    println!();
    println!("rows: {rows}; files: {sizes:?}");
    println!(
        "peak RSS (VmHWM): {} MiB after setup, {} MiB after the exports, {} MiB after the imports",
        started_kib / 1024,
        export_kib / 1024,
        import_kib / 1024
    );
}
