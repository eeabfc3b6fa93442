use tenant_runtime::Model;

struct Money {
    cents: i64,
}

#[derive(Model)]
#[tenant(table = "invoices")]
struct Invoice {
    #[tenant(primary_key)]
    id: i64,
    amount: Money,
}

fn main() {}
