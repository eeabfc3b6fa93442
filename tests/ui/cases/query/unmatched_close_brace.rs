use tenant_runtime::{query, Model};

#[derive(Model)]
#[tenant(table = "invoices")]
struct Invoice {
    #[tenant(primary_key, identity)]
    id: i64,
    paid: bool,
    note: Option<String>,
}

// A brace in a string literal is data; outside one, `}` must be doubled.
fn main() {
    let _ = query!("SELECT '}', {Invoice.id}} FROM {Invoice}");
}
