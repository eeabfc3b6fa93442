use tenant_runtime::SqlEnum;

#[derive(Debug, SqlEnum)]
enum Status {
    Open,
    #[tenant(rename = "closed_because_the_customer_asked_us_to_and_we_agreed_with_them_entirely")]
    Closed,
}

fn main() {}
