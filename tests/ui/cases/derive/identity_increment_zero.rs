use tenant_runtime::Model;

#[derive(Model)]
#[tenant(table = "tickets")]
struct Ticket {
    #[tenant(primary_key, identity(always, increment = 0))]
    id: i64,
}

fn main() {}
