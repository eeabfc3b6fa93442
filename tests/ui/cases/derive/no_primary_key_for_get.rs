use tenant_runtime::{Db, Executor, Model};

#[derive(Model)]
#[tenant(table = "audit_log")]
struct AuditEntry {
    message: String,
}

async fn fetch<E: Executor>(db: &Db<E>) {
    let _ = AuditEntry::get(db, 1).await;
}

fn main() {}
