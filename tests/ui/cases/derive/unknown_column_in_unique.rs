use tenant_runtime::Model;

#[derive(Model)]
#[tenant(table = "lines", unique(invoice_id, skuu))]
struct Line {
    #[tenant(primary_key)]
    id: i64,
    invoice_id: i64,
    sku: String,
}

fn main() {}
