// While a transaction is open on a routed handle, no statement can go to the replica:
// everything in the transaction stays on the primary.
use tenant_runtime::pool::RoutedDb;
use tenant_runtime::Model;

#[derive(Model)]
#[tenant(table = "invoices")]
struct Invoice {
    #[tenant(primary_key, identity)]
    id: i64,
    amount_cents: i64,
}

async fn mixed(mut db: RoutedDb) -> Result<(), tenant_runtime::Error> {
    let tx = db.transaction().await?;
    Invoice { id: 0, amount_cents: 1 }.insert(&tx).await?;
    let _stale = Invoice::query().count(db.read().await?).await?;
    tx.commit().await
}

fn main() {}
