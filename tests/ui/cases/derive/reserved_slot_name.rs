use tenant_runtime::Model;

#[derive(Model)]
#[tenant(table = "plans", schema = "pg_catalog")]
struct Plan {
    #[tenant(primary_key)]
    id: i32,
}

fn main() {}
