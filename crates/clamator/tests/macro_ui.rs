//! Compile-time checks of `#[clamator::contract]`: valid contracts compile, invalid names and
//! signatures are spanned compile errors.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass_*.rs");
    t.compile_fail("tests/ui/fail_*.rs");
}
