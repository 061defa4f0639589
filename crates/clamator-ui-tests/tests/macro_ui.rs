//! Compile-time checks of `#[clamator::contract]`: valid contracts compile, invalid names and
//! signatures are spanned compile errors.
//!
//! The `.stderr` snapshots are rustc's output for the cases built against this crate's
//! dev-dependencies (clamator with its default features), which trybuild uses as declared
//! whatever the features of the run: bless them with
//! `TRYBUILD=overwrite cargo test -p clamator-ui-tests`.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass_*.rs");
    t.compile_fail("tests/ui/fail_*.rs");
}
