use tenant_runtime::{SchemaName, Tenant};

fn main() {
    let _forged = Tenant {
        key: "acme".into(),
        schema: SchemaName::parse("tenant_acme").unwrap(),
    };
}
