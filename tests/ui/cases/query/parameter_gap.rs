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
    let _ = query!("SELECT {Invoice.id} FROM {Invoice} WHERE {Invoice.paid} = $1 AND {Invoice.id} > $3", true, 1i64, 2i64);
}
