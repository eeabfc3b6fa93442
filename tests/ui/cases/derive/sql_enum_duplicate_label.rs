use tenant_runtime::SqlEnum;

#[derive(Debug, SqlEnum)]
enum Status {
    Open,
    #[tenant(rename = "open")]
    Reopened,
}

fn main() {}
