//! Every ```rust block of README.md compiles (this file does not build otherwise), and every
//! block not marked `rust,no_run` runs against a database of its own, in a fresh state.
//!
//! `tests/build.rs` turns the blocks into `async fn`s (see its doc). A block uses the names
//! the README's prose introduces (`db`, `pool`, `acme`, ...); [`Given`] is where they come
//! from: two provisioned tenants (`acme` in `tenant_acme`, `globex` in `tenant_globex`) with
//! the README's models, the `shared` slot mapped to `public`, one plan, one customer and a
//! few invoices each. A block after `<!-- readme-test: fresh database -->` gets the same
//! names over an empty database (nothing provisioned), for the blocks that provision.

#![allow(clippy::all)]

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

// What README blocks import for their items (structs and impls are lifted to module level,
// their block's `use` lines stay in the block's function).
#[allow(unused_imports)]
use axum::extract::FromRef;
#[allow(unused_imports)]
use futures_util::TryStreamExt;
#[allow(unused_imports)]
use tenant_runtime::lifecycle::{self, Connections};
#[allow(unused_imports)]
use tenant_runtime::pool::{
    DatabaseRegistry, Partitions, ReadBalance, ReplicatedPool, TenantDatabases,
};
#[allow(unused_imports)]
use tenant_runtime::web::{TenantDb, TenantResolver};
#[allow(unused_imports)]
use tenant_runtime::{
    embed_migrations, Allowlist, Client, Db, Executor, Migrations, Migrator, Model, ModelSet,
    Provisioner, Registry, SchemaMap, Slot, StatementMode, Tenant, TenantPool,
};
// The README's enum type section derives `SqlEnum` on a lifted enum.
#[allow(unused_imports)]
use tenant_runtime::SqlEnum;
use tenant_tests::TestDatabase;

type Outcome = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// One README block: where it is, whether it runs, and the function made of it.
pub struct Block {
    line: usize,
    run: bool,
    fresh: bool,
    call: fn(Given) -> Pin<Box<dyn Future<Output = Outcome>>>,
}

/// The names README blocks use without defining them.
pub struct Given {
    database_url: String,
    request_host: &'static str,
    allowlist: Allowlist,
    acme: Tenant,
    client: Client,
    pool: TenantPool,
    invoice: Invoice,
    rows: Vec<Invoice>,
    registry: Registry,
    provisioner: Provisioner,
    models: ModelSet,
    control_client: Client,
    replicated: ReplicatedPool,
}

/// A function the README calls but leaves to the reader: SQL written for `search_path`.
#[allow(dead_code)]
async fn legacy_report(
    pg: &impl tokio_postgres::GenericClient,
) -> Result<(), tokio_postgres::Error> {
    pg.query("SELECT count(*) FROM invoices", &[]).await?;
    Ok(())
}

include!(concat!(env!("OUT_DIR"), "/readme_blocks.rs"));

/// The `shared` slot in public, as the README's pool sections configure it.
fn shared_in_public() -> SchemaMap {
    SchemaMap::new().with("shared", "public").unwrap()
}

fn readme_models() -> ModelSet {
    ModelSet::new()
        .with::<Plan>()
        .with::<Customer>()
        .with::<Invoice>()
}

fn an_invoice() -> Invoice {
    Invoice {
        id: 0,
        customer_id: 1,
        amount_cents: 1200,
        paid: false,
        note: None,
    }
}

/// Empties the database: every schema but the system ones dropped, `public` made again;
/// and makes sure the role `app` the README grants to exists (roles are per cluster).
async fn reset(url: &str) {
    let (pg, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    let connection = tokio::spawn(connection);
    pg.batch_execute(
        "DO $$ DECLARE s text; BEGIN \
           FOR s IN SELECT nspname FROM pg_namespace \
                    WHERE nspname NOT LIKE 'pg\\_%' AND nspname <> 'information_schema' LOOP \
             EXECUTE format('DROP SCHEMA %I CASCADE', s); \
           END LOOP; END $$; \
         CREATE SCHEMA public; \
         DO $$ BEGIN CREATE ROLE app NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$;",
    )
    .await
    .unwrap();
    drop(pg);
    let _ = connection.await;
}

async fn given(url: &str, fresh: bool) -> Given {
    reset(url).await;
    let mut client = Client::connect(url)
        .await
        .unwrap()
        .with_schema_map(shared_in_public());
    let provisioner = Provisioner::new(readme_models())
        .unwrap()
        .with_schema_map(shared_in_public());
    let allowlist;
    let acme;
    if fresh {
        allowlist =
            Allowlist::from_pairs([("acme", "tenant_acme"), ("globex", "tenant_globex")]).unwrap();
        acme = allowlist.resolve("acme").unwrap();
    } else {
        provisioner.install(&client).await.unwrap();
        allowlist = Allowlist::new();
        acme = provisioner
            .provision(&mut client, &allowlist, "acme", "tenant_acme")
            .await
            .unwrap();
        let globex = provisioner
            .provision(&mut client, &allowlist, "globex", "tenant_globex")
            .await
            .unwrap();
        Plan {
            code: "basic".into(),
            monthly_cents: 1_000,
        }
        .insert(&client.for_tenant(&acme))
        .await
        .unwrap();
        for tenant in [&acme, &globex] {
            let db = client.for_tenant(tenant);
            Customer {
                id: 0,
                name: "Ada".into(),
                plan_code: "basic".into(),
            }
            .insert(&db)
            .await
            .unwrap();
            for cents in [500, 12_000, 25_000] {
                Invoice {
                    amount_cents: cents,
                    ..an_invoice()
                }
                .insert(&db)
                .await
                .unwrap();
            }
        }
    }
    let pool = TenantPool::builder(url)
        .unwrap()
        .max_size(4)
        .wait_timeout(Some(Duration::from_secs(10)))
        .schema_map(shared_in_public())
        .build()
        .unwrap();
    let replicated = ReplicatedPool::builder(pool.clone()).build().unwrap();
    Given {
        replicated,
        database_url: url.to_string(),
        request_host: "acme",
        allowlist,
        acme,
        client,
        pool,
        invoice: an_invoice(),
        rows: (1..=3)
            .map(|i| Invoice {
                amount_cents: i * 100,
                ..an_invoice()
            })
            .collect(),
        registry: provisioner.registry().clone(),
        provisioner,
        models: readme_models(),
        control_client: Client::connect(url).await.unwrap(),
    }
}

#[tokio::test]
async fn every_runnable_readme_block_runs() {
    let database = TestDatabase::create("readme").await;
    let url = database.url();
    let mut failures = Vec::new();
    let mut ran = 0;
    for block in BLOCKS.iter().filter(|b| b.run) {
        let given = given(&url, block.fresh).await;
        ran += 1;
        if let Err(e) = (block.call)(given).await {
            failures.push(format!("README.md line {}: {e}", block.line));
        }
    }
    assert!(
        ran >= 10,
        "only {ran} README blocks ran: are they all marked no_run?"
    );
    assert!(
        failures.is_empty(),
        "README blocks failed:\n{}",
        failures.join("\n")
    );
    database.drop_now().await;
}

#[test]
fn the_readme_has_rust_blocks_and_they_are_all_here() {
    let readme = include_str!("../../README.md");
    let fences = readme.lines().filter(|l| l.starts_with("```rust")).count();
    assert_eq!(fences, BLOCKS.len(), "build.rs missed a ```rust block");
}
