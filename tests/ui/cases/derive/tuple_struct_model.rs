use tenant_runtime::Model;

#[derive(Model)]
#[tenant(table = "pairs")]
struct Pair(i64, String);

fn main() {}
