// `Db::execute` through a replica handle does not compile: it runs a statement that may
// write. Reads (`Db::query`) stay allowed.
use tenant_runtime::{ReplicaDb, Template};

async fn write(db: &ReplicaDb, delete: &Template) {
    let _ = db.query(delete, &[]).await;
    let _ = db.execute(delete, &[]).await;
}

fn main() {}
