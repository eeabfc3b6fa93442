use tenant_runtime::Model;

#[derive(Model)]
#[tenant(table = "lines")]
struct Line {
    #[tenant(primary_key)]
    id: i64,
    #[tenant(check = "qty > 0); DROP TABLE lines; --")]
    qty: i32,
}

fn main() {}
