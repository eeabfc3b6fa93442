use tenant_runtime::Model;

#[derive(Model)]
#[tenant(table = "invoices")]
struct Invoice {
    #[tenant(primary_key, identity)]
    id: i64,
    paid: bool,
    note: Option<String>,
}

fn main() {
    let _ = Invoice::query().update().set(Invoice::NOTE, 42);
}
