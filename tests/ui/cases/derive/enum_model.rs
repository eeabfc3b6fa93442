use tenant_runtime::Model;

#[derive(Model)]
enum Status {
    Open,
    Paid,
}

fn main() {}
