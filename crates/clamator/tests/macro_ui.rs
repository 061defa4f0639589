//! Compile-time checks of `#[clamator::contract]`: valid contracts compile, invalid names and
//! signatures are spanned compile errors.
//!
//! The `.stderr` snapshots are rustc's output under the suite's feature set
//! (`cargo test --workspace --all-features`, as `scripts/test.sh` runs it): rustc shortens type
//! paths (`Send` vs `std::marker::Send`) differently when other crates are in the graph, so bless
//! them with `TRYBUILD=overwrite cargo test --workspace --all-features --test macro_ui`.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass_*.rs");
    t.compile_fail("tests/ui/fail_*.rs");
}
