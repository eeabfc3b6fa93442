use tenant_runtime::Model;

struct Customer {
    id: i64,
}

#[derive(Model)]
#[tenant(table = "invoices")]
struct Invoice {
    #[tenant(primary_key)]
    id: i64,
    #[tenant(references = Customer)]
    customer_id: i64,
}

fn main() {}
