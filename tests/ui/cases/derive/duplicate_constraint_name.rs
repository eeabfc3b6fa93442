use tenant_runtime::Model;

#[derive(Model)]
#[tenant(table = "lines", unique(sku, name = "lines_once"), check(expr = "qty > 0", name = "lines_once"))]
struct Line {
    #[tenant(primary_key)]
    id: i64,
    sku: String,
    qty: i32,
}

fn main() {}
