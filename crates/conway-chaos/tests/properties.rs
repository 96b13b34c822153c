//! The experiment parser on any input: it never panics, and every position it reports
//! lies inside the input. The fuzz target (`fuzz/`) runs the same check under
//! libFuzzer where a nightly toolchain exists.

use conway_chaos::parse;
use proptest::prelude::*;

const EXAMPLE: &str = include_str!("../../../examples/shop/chaos/slow-inventory.toml");

fn parse_and_check_positions(source: &str) -> Result<(), TestCaseError> {
    let Err(diagnostics) = parse(source) else {
        return Ok(());
    };
    prop_assert!(!diagnostics.is_empty());
    let lines: Vec<&str> = source.split('\n').collect();
    for d in diagnostics.iter() {
        prop_assert!(
            (1..=lines.len()).contains(&d.line),
            "line {} outside 1..={}: {}",
            d.line,
            lines.len(),
            d.message
        );
        let width = lines[d.line - 1].chars().count();
        prop_assert!(
            (1..=width + 1).contains(&d.column),
            "column {} outside 1..={}: {}",
            d.column,
            width + 1,
            d.message
        );
        prop_assert!(!d.message.is_empty());
    }
    Ok(())
}

#[test]
fn the_shop_example_is_valid() {
    let experiment = parse(EXAMPLE).expect("examples/shop/chaos/slow-inventory.toml");
    assert_eq!(experiment.method.len(), 3);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_string_parses_without_panic(source in any::<String>()) {
        parse_and_check_positions(&source)?;
    }

    #[test]
    fn toml_like_strings_parse_without_panic(
        source in "([\\[\\]{}\"'=,.#%\n \\-_a-z0-9]|steady_state|probes|method|action|percent|for|rollback|ms|http){0,120}"
    ) {
        parse_and_check_positions(&source)?;
    }

    #[test]
    fn the_example_with_a_line_replaced_parses_without_panic(
        line in any::<usize>(),
        replacement in "[a-z_]{0,12} ?= ?(\"[0-9a-z%.]{0,8}\"|-?[0-9]{1,6}(\\.[0-9])?|\\[\\]|\\{\\}|true)",
    ) {
        let mut lines: Vec<&str> = EXAMPLE.lines().collect();
        let at = line % lines.len();
        lines[at] = &replacement;
        parse_and_check_positions(&lines.join("\n"))?;
    }

    #[test]
    fn the_example_with_random_bytes_parses_without_panic(
        at in any::<usize>(),
        bytes in prop::collection::vec(any::<u8>(), 1..16),
    ) {
        let mut raw = EXAMPLE.as_bytes().to_vec();
        let at = at % (raw.len() + 1);
        raw.splice(at..at, bytes);
        if let Ok(source) = String::from_utf8(raw) {
            parse_and_check_positions(&source)?;
        }
    }
}
