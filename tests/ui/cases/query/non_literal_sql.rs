use tenant_runtime::{query, Model};

#[derive(Model)]
#[tenant(table = "invoices")]
struct Invoice {
    #[tenant(primary_key, identity)]
    id: i64,
    paid: bool,
    note: Option<String>,
}

fn main() {
    let sql = "SELECT 1";
    let _ = query!(sql);
}
