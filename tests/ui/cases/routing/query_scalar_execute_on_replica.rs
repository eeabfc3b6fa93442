// `query_scalar!(..).execute` through a replica handle does not compile: it may write.
use tenant_runtime::pool::ReplicaDb;
use tenant_runtime::{query_scalar, Model};

#[derive(Model)]
#[tenant(table = "invoices")]
struct Invoice {
    #[tenant(primary_key, identity)]
    id: i64,
    paid: bool,
}

async fn write(db: &ReplicaDb) {
    let _ = query_scalar!("DELETE FROM {Invoice} RETURNING {Invoice.id}")
        .execute(db)
        .await;
}

fn main() {}
