use tenant_runtime::{query_as, Model};

#[derive(Model)]
#[tenant(table = "invoices")]
struct Invoice {
    #[tenant(primary_key, identity)]
    id: i64,
    paid: bool,
    note: Option<String>,
}

fn main() {
    let _ = query_as!(String, "SELECT {Invoice.note} FROM {Invoice}");
}
