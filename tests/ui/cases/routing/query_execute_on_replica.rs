// `query!(..).execute` through a replica handle does not compile: it may write, and writes go
// to the primary (a standby would refuse the DELETE at run time with 25006).
use tenant_runtime::pool::ReplicaDb;
use tenant_runtime::{query, Model};

#[derive(Model)]
#[tenant(table = "invoices")]
struct Invoice {
    #[tenant(primary_key, identity)]
    id: i64,
    paid: bool,
}

async fn write(db: &ReplicaDb) {
    let _ = query!("DELETE FROM {Invoice} WHERE {Invoice.paid}").execute(db).await;
}

fn main() {}
