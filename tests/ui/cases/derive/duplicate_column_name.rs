use tenant_runtime::Model;

#[derive(Model)]
#[tenant(table = "invoices")]
struct Invoice {
    #[tenant(primary_key)]
    id: i64,
    amount: i64,
    #[tenant(rename = "amount")]
    amount_cents: i64,
}

fn main() {}
