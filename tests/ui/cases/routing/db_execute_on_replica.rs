// `Db::execute` through a replica handle does not compile: it runs a statement that may
// write. Reads (`Db::fetch_all`) stay allowed.
use tenant_runtime::pool::ReplicaDb;
use tenant_runtime::sql::Template;

async fn write(db: &ReplicaDb, delete: &Template) {
    let _ = db.fetch_all(delete, &[]).await;
    let _ = db.execute(delete, &[]).await;
}

fn main() {}
