use tenant_runtime::Model;

#[derive(Model)]
#[tenant(table = "invoices")]
struct Invoice {
    #[tenant(primary_key, identity)]
    id: String,
}

fn main() {}
