//! Compile-fail tests of the checked queries: `query!`/`query_as!`/`query_scalar!` mistakes
//! (SQL syntax, unknown models and columns, argument counts and types, placeholders) and
//! builder filters with a wrong column or value type. One case per file under
//! `tests/ui/query/`; the committed `.stderr` next to each case is the expected diagnostic.

#[test]
fn query_mistakes_are_compile_errors_that_point_at_the_mistake() {
    trybuild::TestCases::new().compile_fail("ui/query/*.rs");
}
