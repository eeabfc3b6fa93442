use tenant_runtime::Model;

// A generic struct is refused, and its fields are still checked in the same build.
#[derive(Model)]
#[tenant(table = "boxes")]
struct Boxed<T> {
    #[tenant(primary_key)]
    id: i64,
    #[tenant(rename = "Value")]
    value: T,
}

fn main() {}
