use tenant_runtime::{query, Model};

#[derive(Model)]
#[tenant(table = "invoices")]
struct Invoice {
    #[tenant(primary_key, identity)]
    id: i64,
    paid: bool,
    #[tenant(rename = "remark")]
    note: Option<String>,
}

fn main() {
    let _ = query!("SELECT {Invoice.id} FROM {Invoice} WHERE {Invoice.payd}");
}
