use tenant_runtime::Model;

#[derive(Model)]
#[tenant(table = "lines", index(sku, qtty))]
struct Line {
    #[tenant(primary_key)]
    id: i64,
    sku: String,
    qty: i32,
}

fn main() {}
