//! Quick start: two tenants, the same models, one database, no `search_path`.
//!
//! ```sh
//! cargo run -p tenant-runtime --example quickstart
//! ```
//! Uses `$DATABASE_URL`, else `postgres://postgres@127.0.0.1:5432/postgres`, else a
//! throwaway cluster started from the PostgreSQL binaries on `PATH` (and removed when the
//! example ends): the same default as the tests (`tenant-testing`).

use std::time::Duration;

use tenant_runtime::{
    query_scalar, Allowlist, Client, Model, ModelSet, Provisioner, Registry, SchemaMap,
};

#[derive(Debug, Clone, PartialEq, Model)]
#[tenant(table = "customers")]
struct Customer {
    #[tenant(primary_key, identity)]
    id: i64,
    #[tenant(unique)]
    email: String,
    name: String,
}

#[derive(Debug, Clone, PartialEq, Model)]
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

/// Plans are shared by every tenant: they live in the `shared` slot.
#[derive(Debug, Clone, PartialEq, Model)]
#[tenant(table = "plans", schema = "shared")]
struct Plan {
    #[tenant(primary_key)]
    code: String,
    monthly_cents: i64,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    // Errors are shown as sentences (Display), not as a Debug dump.
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let url = tenant_testing::find_database().await?;
    let client = Client::connect(&url).await?;

    // The models every tenant gets (created in foreign-key order), and where the `shared`
    // slot and the tenant registry live in this example.
    let shared = SchemaMap::new().with("shared", "quickstart_shared")?;
    let provisioner = Provisioner::new(
        ModelSet::new()
            .with::<Customer>()
            .with::<Invoice>()
            .with::<Plan>(),
    )?
    .with_registry(Registry::new("quickstart_registry")?)
    .with_schema_map(shared.clone());
    client
        .as_tokio_postgres()
        .batch_execute("CREATE SCHEMA IF NOT EXISTS quickstart_shared")
        .await?;
    provisioner.install(&client).await?; // the registry and the shared `plans` table
    let mut client = client.with_schema_map(shared);

    // Provisioning creates each schema and its tables in one transaction, records the tenant
    // in the registry, and puts it in the allowlist: the one door to a `Tenant`.
    let allowlist = Allowlist::new();
    for (key, schema) in [("acme", "quickstart_acme"), ("globex", "quickstart_globex")] {
        provisioner
            .provision(&mut client, &allowlist, key, schema)
            .await?;
    }

    for (key, customer, amounts) in [
        ("acme", "Wile E. Coyote", [1200, 4500]),
        ("globex", "Hank Scorpio", [99_900, 10]),
    ] {
        let tenant = allowlist.resolve(key)?;
        let db = client.for_tenant(&tenant);
        let c = Customer {
            id: 0,
            email: format!("billing@{key}.example"),
            name: customer.into(),
        }
        .insert(&db)
        .await?;
        for amount in amounts {
            Invoice {
                id: 0,
                customer_id: c.id,
                amount_cents: amount,
                paid: false,
                note: None,
            }
            .insert(&db)
            .await?;
        }
    }

    // Shared rows are visible to every tenant, through any tenant's handle.
    let acme = allowlist.resolve("acme")?;
    Plan {
        code: "pro".into(),
        monthly_cents: 4900,
    }
    .insert(&client.for_tenant(&acme))
    .await?;

    for key in ["acme", "globex"] {
        let tenant = allowlist.resolve(key)?;
        let db = client.for_tenant(&tenant);
        let customers = Customer::query()
            .order_by(Customer::ID.asc())
            .fetch_all(&db)
            .await?;
        let mut invoices = Invoice::query()
            .order_by(Invoice::ID.asc())
            .fetch_all(&db)
            .await?;
        println!(
            "{key} (schema {}): {} customer(s), {} invoice(s)",
            tenant.schema(),
            customers.len(),
            invoices.len()
        );
        for c in &customers {
            println!("  customer #{} {} <{}>", c.id, c.name, c.email);
        }
        // A checked query: placeholders name models and columns, never schemas.
        let unpaid: i64 = query_scalar!(
            "SELECT count(*) FROM {Invoice} WHERE {Invoice.paid} = $1",
            false
        )
        .fetch_one(&db)
        .await?;
        println!("  unpaid before paying one and deleting one: {unpaid}");
        // Update one invoice, delete another: each touches only this tenant's rows.
        invoices[0].paid = true;
        invoices[0].note = Some("paid by card".into());
        invoices[0].update(&db).await?;
        Invoice::delete(&db, invoices[1].id).await?;
        for i in Invoice::query()
            .order_by(Invoice::ID.asc())
            .fetch_all(&db)
            .await?
        {
            println!(
                "  invoice #{} customer #{} {} cents paid={} note={:?}",
                i.id, i.customer_id, i.amount_cents, i.paid, i.note
            );
        }
        println!("  plans seen: {:?}", Plan::query().fetch_all(&db).await?);
    }

    // Isolation: both tenants' first customer has id 1, yet each sees only its own.
    let globex = allowlist.resolve("globex")?;
    let acme_1 = Customer::get(&client.for_tenant(&acme), 1).await?;
    let globex_1 = Customer::get(&client.for_tenant(&globex), 1).await?;
    println!(
        "customer #1 for acme is {:?}; for globex it is {:?}",
        acme_1.map(|c| c.name),
        globex_1.map(|c| c.name)
    );

    // Unknown tenants never reach SQL.
    match allowlist.resolve("initech") {
        Err(e) => println!("resolve(\"initech\") refused: {e}"),
        Ok(_) => unreachable!("initech is not in the allowlist"),
    }

    // Clean up in two phases: retire (rename, stop resolving), then purge (drop) with no
    // grace period; then the example's own shared schemas.
    for key in ["acme", "globex"] {
        let retired = provisioner.retire(&mut client, &allowlist, key).await?;
        println!("retired {key}: renamed to {}", retired.renamed_to);
    }
    let purged = provisioner.purge(&mut client, Duration::ZERO).await?;
    println!("purged {} retired schema(s)", purged.len());
    client
        .as_tokio_postgres()
        .batch_execute(
            "DROP SCHEMA quickstart_shared CASCADE; DROP SCHEMA quickstart_registry CASCADE",
        )
        .await?;
    Ok(())
}
