use tenant_runtime::Model;

#[derive(Model)]
#[tenant(table = "invoices")]
struct Invoice {
    #[tenant(primary_key)]
    id: i64,
    #[tenant(rename = "Amount Cents")]
    amount_cents: i64,
}

fn main() {}
