// A replica handle offers no transaction: transactions run on the primary.
use tenant_runtime::pool::ReplicaDb;

async fn begin(mut db: ReplicaDb) {
    let _tx = db.transaction().await;
}

fn main() {}
