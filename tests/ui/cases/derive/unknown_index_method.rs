use tenant_runtime::Model;

#[derive(Model)]
#[tenant(table = "docs")]
struct Doc {
    #[tenant(primary_key)]
    id: i64,
    #[tenant(index(using = "gist2"))]
    tags: Vec<String>,
}

fn main() {}
