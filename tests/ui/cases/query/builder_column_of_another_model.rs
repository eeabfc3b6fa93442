use tenant_runtime::Model;

#[derive(Model)]
#[tenant(table = "invoices")]
struct Invoice {
    #[tenant(primary_key, identity)]
    id: i64,
    paid: bool,
    note: Option<String>,
}

#[derive(Model)]
#[tenant(table = "customers")]
struct Customer {
    #[tenant(primary_key)]
    id: i64,
}

fn main() {
    let _ = Invoice::query().filter(Customer::ID.eq(1));
}
