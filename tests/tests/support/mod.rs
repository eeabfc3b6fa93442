//! A concurrent multi-tenant load on a `TenantPool`, shared by the pool, pgbouncer and fault
//! tests. Every row carries the key of the tenant that wrote it, so a row read or written in
//! the wrong schema is caught by the read that sees it and by the final per-schema count.
#![allow(dead_code)]

use std::sync::Arc;

use tenant_runtime::sql::Template;
use tenant_runtime::{Allowlist, Error, Model, Slot, TenantPool};
use tokio::sync::Mutex;

/// One row of the load: tagged with its tenant's key.
#[derive(Debug, Clone, PartialEq, Model)]
#[tenant(table = "items")]
pub struct Item {
    #[tenant(primary_key, identity)]
    pub id: i64,
    #[tenant(index)]
    pub tenant_key: String,
    pub seq: i64,
    pub payload: String,
}

/// An allowlist of `n` tenants `t000`, `t001`... in schemas `<prefix>_t000`...
pub fn tenants(prefix_name: impl Fn(&str) -> String, n: usize) -> Allowlist {
    Allowlist::from_pairs((0..n).map(|i| {
        let key = format!("t{i:03}");
        let schema = prefix_name(&key);
        (key, schema)
    }))
    .unwrap()
}

/// Creates every tenant's schema and `items` table through the pool.
pub async fn create_tables(pool: &TenantPool, allowlist: &Allowlist) {
    for tenant in allowlist.tenants() {
        let db = pool.get(&tenant).await.unwrap();
        db.create_schema().await.unwrap();
        Item::create_table(&db).await.unwrap();
    }
}

/// How much load, and how.
#[derive(Debug, Clone, Copy)]
pub struct LoadConfig {
    /// Concurrent tasks.
    pub tasks: usize,
    /// Operations in all (each is one checkout and one or more statements).
    pub ops: usize,
    /// Seed of the per-task pseudo-random streams.
    pub seed: u64,
    /// Pause of a task after a failed operation (fault tests: keeps the load going through
    /// an outage instead of failing every remaining operation at once).
    pub pause_after_error: Option<std::time::Duration>,
}

/// What a load did.
#[derive(Debug, Default)]
pub struct LoadReport {
    pub ops_ok: u64,
    pub ops_failed: u64,
    pub statements: u64,
    pub reads: u64,
    pub writes: u64,
    /// Rows returned to a tenant, each checked for its tag.
    pub rows_checked: u64,
    /// Rows seen by a tenant that carry another tenant's key. Must be 0.
    pub wrong_tenant_rows: u64,
    /// Per tenant (allowlist order): inserts whose commit was confirmed.
    pub confirmed_inserts: Vec<u64>,
    /// Per tenant: inserts attempted (an error may hide a commit that happened).
    pub attempted_inserts: Vec<u64>,
    /// The first few errors, for the assertion message.
    pub sample_errors: Vec<String>,
}

impl LoadReport {
    fn merge(&mut self, other: LoadReport) {
        self.ops_ok += other.ops_ok;
        self.ops_failed += other.ops_failed;
        self.statements += other.statements;
        self.reads += other.reads;
        self.writes += other.writes;
        self.rows_checked += other.rows_checked;
        self.wrong_tenant_rows += other.wrong_tenant_rows;
        for (a, b) in self
            .confirmed_inserts
            .iter_mut()
            .zip(other.confirmed_inserts)
        {
            *a += b;
        }
        for (a, b) in self
            .attempted_inserts
            .iter_mut()
            .zip(other.attempted_inserts)
        {
            *a += b;
        }
        for e in other.sample_errors {
            if self.sample_errors.len() < 8 {
                self.sample_errors.push(e);
            }
        }
    }
}

/// xorshift64*: a small deterministic stream per task.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// `SELECT <columns> FROM {tenant}.items ORDER BY id DESC LIMIT 10`.
pub fn recent_items() -> Template {
    Template::builder()
        .sql("SELECT id, tenant_key, seq, payload FROM ")
        .slot(Slot::Tenant)
        .sql(".\"items\" ORDER BY id DESC LIMIT 10")
        .build()
}

/// `SELECT count(*) FROM {tenant}.items WHERE tenant_key <> $1`.
pub fn foreign_rows() -> Template {
    Template::builder()
        .sql("SELECT count(*) FROM ")
        .slot(Slot::Tenant)
        .sql(".\"items\" WHERE tenant_key <> $1")
        .build()
}

fn check_rows(report: &mut LoadReport, key: &str, rows: &[Item]) {
    report.rows_checked += rows.len() as u64;
    report.wrong_tenant_rows += rows.iter().filter(|r| r.tenant_key != key).count() as u64;
}

/// Runs `config.ops` operations from `config.tasks` tasks over every tenant of `allowlist`.
pub async fn run_load(pool: &TenantPool, allowlist: &Allowlist, config: LoadConfig) -> LoadReport {
    let tenants = Arc::new(allowlist.tenants());
    let n = tenants.len();
    let recent = Arc::new(recent_items());
    let foreign = Arc::new(foreign_rows());
    // Highest id each tenant may have (an upper bound for reads by key).
    let high_water = Arc::new(Mutex::new(vec![0i64; n]));
    let mut handles = Vec::new();
    for task in 0..config.tasks {
        let ops = config.ops / config.tasks + usize::from(task < config.ops % config.tasks);
        let (pool, tenants, recent, foreign, high_water) = (
            pool.clone(),
            tenants.clone(),
            recent.clone(),
            foreign.clone(),
            high_water.clone(),
        );
        let mut rng = Rng(config.seed ^ (task as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        handles.push(tokio::spawn(async move {
            let mut report = LoadReport {
                confirmed_inserts: vec![0; n],
                attempted_inserts: vec![0; n],
                ..LoadReport::default()
            };
            for op in 0..ops {
                let t = rng.below(n as u64) as usize;
                let tenant = &tenants[t];
                let kind = rng.below(100);
                let max_id = high_water.lock().await[t];
                let pick = rng.below(max_id.max(1) as u64) as i64 + 1;
                let result = one_op(
                    &pool,
                    tenant,
                    t,
                    kind,
                    pick,
                    (task * 1_000_000 + op) as i64,
                    &recent,
                    &foreign,
                    &mut report,
                )
                .await;
                match result {
                    Ok(Some(id)) => {
                        report.ops_ok += 1;
                        let mut hw = high_water.lock().await;
                        hw[t] = hw[t].max(id);
                    }
                    Ok(None) => report.ops_ok += 1,
                    Err(e) => {
                        report.ops_failed += 1;
                        if report.sample_errors.len() < 8 {
                            report.sample_errors.push(e.to_string());
                        }
                        if let Some(pause) = config.pause_after_error {
                            tokio::time::sleep(pause).await;
                        }
                    }
                }
            }
            report
        }));
    }
    let mut total = LoadReport {
        confirmed_inserts: vec![0; n],
        attempted_inserts: vec![0; n],
        ..LoadReport::default()
    };
    for h in handles {
        total.merge(h.await.expect("load task panicked"));
    }
    total
}

/// One operation for `tenant`; returns the highest id it wrote, if any.
#[allow(clippy::too_many_arguments)]
async fn one_op(
    pool: &TenantPool,
    tenant: &tenant_runtime::Tenant,
    t: usize,
    kind: u64,
    pick: i64,
    seq: i64,
    recent: &Template,
    foreign: &Template,
    report: &mut LoadReport,
) -> Result<Option<i64>, Error> {
    let key = tenant.key();
    let mut db = pool.get(tenant).await?;
    let item = |n: i64| Item {
        id: 0,
        tenant_key: key.to_owned(),
        seq: seq * 10 + n,
        payload: format!("{key} payload {seq}"),
    };
    match kind {
        // Insert one row.
        0..=34 => {
            report.attempted_inserts[t] += 1;
            report.statements += 1;
            report.writes += 1;
            let row = item(0).insert(&db).await?;
            report.confirmed_inserts[t] += 1;
            check_rows(report, key, std::slice::from_ref(&row));
            Ok(Some(row.id))
        }
        // Read one row by a key that exists in many schemas.
        35..=59 => {
            report.statements += 1;
            report.reads += 1;
            let row = Item::get(&db, pick).await?;
            check_rows(report, key, row.as_slice());
            Ok(None)
        }
        // Read-modify-write one row.
        60..=69 => {
            report.statements += 2;
            report.reads += 1;
            report.writes += 1;
            if let Some(mut row) = Item::get(&db, pick).await? {
                check_rows(report, key, std::slice::from_ref(&row));
                row.payload = format!("{key} updated {seq}");
                row.update(&db).await?;
            }
            Ok(None)
        }
        // The newest rows, through a run-time template.
        70..=79 => {
            report.statements += 1;
            report.reads += 1;
            let rows = db.fetch_all(recent, &[]).await?;
            let rows = rows
                .iter()
                .map(Item::from_row)
                .collect::<Result<Vec<_>, _>>()?;
            check_rows(report, key, &rows);
            Ok(None)
        }
        // A transaction: two inserts and a read; one in three rolls back.
        80..=94 => {
            let commit = seq % 3 != 0;
            let tx = db.transaction().await?;
            report.statements += 4;
            report.writes += 2;
            report.reads += 1;
            if commit {
                report.attempted_inserts[t] += 2;
            }
            let a = item(1).insert(&tx).await?;
            let b = item(2).insert(&tx).await?;
            let rows = tx.fetch_all(recent, &[]).await?;
            let rows = rows
                .iter()
                .map(Item::from_row)
                .collect::<Result<Vec<_>, _>>()?;
            check_rows(report, key, &[a.clone(), b.clone()]);
            check_rows(report, key, &rows);
            if commit {
                tx.commit().await?;
                report.confirmed_inserts[t] += 2;
                Ok(Some(b.id))
            } else {
                tx.rollback().await?;
                Ok(None)
            }
        }
        // Count rows that carry another tenant's key: must be none.
        _ => {
            report.statements += 1;
            report.reads += 1;
            let n: i64 = db.fetch_one(foreign, &[&key]).await?.get(0);
            report.wrong_tenant_rows += n as u64;
            Ok(None)
        }
    }
}

/// Per tenant, with plain SQL on `client`: (rows in its schema, rows there with another key).
pub async fn count_per_schema(
    client: &tokio_postgres::Client,
    allowlist: &Allowlist,
) -> Vec<(i64, i64)> {
    let mut out = Vec::new();
    for tenant in allowlist.tenants() {
        let sql = format!(
            "SELECT count(*), count(*) FILTER (WHERE tenant_key <> $1) FROM {}.items",
            tenant.schema()
        );
        let row = client.query_one(&sql, &[&tenant.key()]).await.unwrap();
        out.push((row.get(0), row.get(1)));
    }
    out
}

/// Asserts the end state: every row in the schema of the tenant that wrote it, and each
/// schema holding between the confirmed and the attempted number of inserts.
pub async fn assert_rows_in_their_schemas(
    client: &tokio_postgres::Client,
    allowlist: &Allowlist,
    report: &LoadReport,
) {
    let counts = count_per_schema(client, allowlist).await;
    for (i, (tenant, (rows, foreign))) in allowlist.tenants().iter().zip(counts).enumerate() {
        assert_eq!(foreign, 0, "{} holds rows of other tenants", tenant.key());
        let (lo, hi) = (report.confirmed_inserts[i], report.attempted_inserts[i]);
        assert!(
            (lo..=hi).contains(&(rows as u64)),
            "{}: {rows} rows, expected between {lo} confirmed and {hi} attempted inserts",
            tenant.key()
        );
    }
}

/// Sum of `a`.
pub fn total(a: &[u64]) -> u64 {
    a.iter().sum()
}
