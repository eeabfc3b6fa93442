use tenant_runtime::Tenant;

fn main() {
    let _forged: Tenant = "tenant_acme".into();
    let _parsed: Tenant = "tenant_acme".parse().unwrap();
}
