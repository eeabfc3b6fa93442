// `Db::batch_execute` through a replica handle does not compile: it runs DDL and writes.
use tenant_runtime::pool::ReplicaDb;
use tenant_runtime::sql::Template;

async fn write(db: &ReplicaDb, ddl: &Template) {
    let _ = db.batch_execute(ddl).await;
}

fn main() {}
