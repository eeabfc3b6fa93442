//! Compile-fail tests for routing: a replica handle cannot write or open a transaction, and
//! a statement cannot leave a transaction for the replica. One case per file; the committed
//! `.stderr` next to each case is the expected diagnostic.

#[test]
fn writes_and_transactions_cannot_reach_a_replica() {
    trybuild::TestCases::new().compile_fail("ui/routing/*.rs");
}
