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
    let _ = query!("UPDATE {Invoice} SET {Invoice.note} = $1 WHERE {Invoice.id} = $2", 5, 1i64);
}
