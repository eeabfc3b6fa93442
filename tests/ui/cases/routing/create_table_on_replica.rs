// DDL through a replica handle does not compile.
use tenant_runtime::pool::ReplicaDb;
use tenant_runtime::Model;

#[derive(Model)]
#[tenant(table = "invoices")]
struct Invoice {
    #[tenant(primary_key, identity)]
    id: i64,
    amount_cents: i64,
}

async fn write(db: &ReplicaDb) {
    let _ = Invoice::create_table(db).await;
}

fn main() {}
