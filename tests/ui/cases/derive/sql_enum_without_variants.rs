use tenant_runtime::SqlEnum;

#[derive(Debug, SqlEnum)]
enum Status {}

fn main() {}
