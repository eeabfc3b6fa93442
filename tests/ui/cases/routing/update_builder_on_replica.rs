// The query builder's UPDATE (and DELETE) through a replica handle does not compile.
use tenant_runtime::pool::ReplicaDb;
use tenant_runtime::Model;

#[derive(Model)]
#[tenant(table = "invoices")]
struct Invoice {
    #[tenant(primary_key, identity)]
    id: i64,
    paid: bool,
}

async fn write(db: &ReplicaDb) {
    let _ = Invoice::query()
        .filter(Invoice::PAID.eq(false))
        .update()
        .set(Invoice::PAID, true)
        .execute(db)
        .await;
}

fn main() {}
