//! Compile-fail tests: derive mistakes and attempts to reach SQL without an allowlisted tenant.
//! One case per file; the committed `.stderr` next to each case is the expected diagnostic.

#[test]
fn derive_errors_are_clear_and_point_at_the_mistake() {
    trybuild::TestCases::new().compile_fail("ui/derive/*.rs");
}

#[test]
fn only_an_allowlisted_tenant_reaches_a_statement() {
    trybuild::TestCases::new().compile_fail("ui/door/*.rs");
}
