use tenant_runtime::Model;

#[derive(Model)]
#[tenant(table = "users", index(expr = "lower(email)"))]
struct User {
    #[tenant(primary_key)]
    id: i64,
    email: String,
}

fn main() {}
