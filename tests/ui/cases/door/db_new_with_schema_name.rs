use tenant_runtime::{Client, Db, SchemaName};

fn handle(client: &Client) {
    let schema = SchemaName::parse("tenant_acme").unwrap();
    let _db = Db::new(client, &schema);
}

fn main() {}
