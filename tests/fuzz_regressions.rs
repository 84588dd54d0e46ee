//! Inputs the fuzz targets (fuzz/src/lib.rs, docs/fuzzing.md) found to crash a parser, reduced
//! to what matters and named after the cause; the raw inputs are replayed from
//! fuzz/regressions/TARGET by tests/fuzz_corpus.rs.

/// profile_yaml crash-76ca118d: the YAML parser counts columns in characters; the error
/// pointer sliced the text at that many bytes, inside a 4-byte character.
#[test]
fn a_yaml_error_after_a_multibyte_character_points_at_a_char_boundary() {
    let text = "name: x\nisa: rv64gc\u{5e756}: lp64d\n";
    let errs = rvbuild::profile::check_board_text("b.yaml", "b", text).expect_err("not a board");
    let e = &errs[0];
    assert_eq!(e.line, 2, "{e}");
    let span = e.span.expect("a span");
    assert!(text.is_char_boundary(span.offset()) && text.is_char_boundary(span.offset() + span.len()), "{span:?}");
    assert!(span.offset() >= text.find("isa").expect("isa"), "{span:?}");
}
