use tenant_runtime::SqlEnum;

#[derive(Debug, SqlEnum)]
#[tenant(table = "status")]
enum Status {
    Open,
    #[tenant(label = "shut")]
    Closed,
}

fn main() {}
