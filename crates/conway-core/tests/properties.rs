//! Properties of the parser over inputs nobody wrote by hand: it never panics, every
//! position it reports lies inside the input, and the value syntaxes print back to what
//! they parse from.

use std::time::Duration as StdDuration;

use conway_core::units::{ByteSize, Duration, Rate, Share};
use conway_core::{Diagnostics, parse};
use proptest::prelude::*;

const SHOP: &str = include_str!("../../../examples/shop/conway.toml");

/// Parses `source` and checks that every finding's line and column exist in it.
fn parse_and_check_positions(source: &str) -> Result<(), TestCaseError> {
    let diagnostics: Diagnostics = match parse(source) {
        Ok(loaded) => loaded.warnings,
        Err(diagnostics) => diagnostics,
    };
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
            "column {} outside 1..={} on line {}: {}",
            d.column,
            width + 1,
            d.line,
            d.message
        );
        prop_assert!(!d.message.is_empty());
    }
    Ok(())
}

/// One change to a text.
#[derive(Debug, Clone)]
enum Edit {
    /// Insert a character before the character at this index (modulo the length).
    Insert(usize, char),
    /// Delete the character at this index.
    Delete(usize),
    /// Repeat the line at this index.
    DuplicateLine(usize),
    /// Remove the line at this index.
    DeleteLine(usize),
    /// Swap two lines.
    SwapLines(usize, usize),
}

/// Characters that matter to TOML and to the manifest's value syntaxes, and any other.
fn interesting_char() -> impl Strategy<Value = char> {
    prop_oneof![
        3 => prop::sample::select(vec![
            '[', ']', '{', '}', '"', '\'', '=', ',', '.', '\n', '#', ' ', '\\', '%', '/', ':',
            '-', '0', '9', 's', 'm', 'a', '\t', '\r', 'é',
        ]),
        1 => any::<char>(),
    ]
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        4 => (any::<usize>(), interesting_char()).prop_map(|(at, c)| Edit::Insert(at, c)),
        3 => any::<usize>().prop_map(Edit::Delete),
        1 => any::<usize>().prop_map(Edit::DuplicateLine),
        1 => any::<usize>().prop_map(Edit::DeleteLine),
        1 => (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Edit::SwapLines(a, b)),
    ]
}

fn apply(text: &str, edits: &[Edit]) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for edit in edits {
        match *edit {
            Edit::Insert(at, c) => chars.insert(at % (chars.len() + 1), c),
            Edit::Delete(at) if !chars.is_empty() => {
                chars.remove(at % chars.len());
            }
            Edit::Delete(_) => {}
            Edit::DuplicateLine(at) | Edit::DeleteLine(at) | Edit::SwapLines(at, _) => {
                let text: String = chars.iter().collect();
                let mut lines: Vec<&str> = text.split('\n').collect();
                let i = at % lines.len();
                match *edit {
                    Edit::DuplicateLine(_) => lines.insert(i, lines[i]),
                    Edit::DeleteLine(_) => {
                        lines.remove(i);
                    }
                    Edit::SwapLines(_, other) => {
                        let j = other % lines.len();
                        lines.swap(i, j);
                    }
                    _ => unreachable!(),
                }
                chars = lines.join("\n").chars().collect();
            }
        }
    }
    chars.into_iter().collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_string_parses_without_panic(source in any::<String>()) {
        parse_and_check_positions(&source)?;
    }

    #[test]
    fn toml_like_strings_parse_without_panic(
        source in "([\\[\\]{}\"'=,.#%/:\n \\-_a-z0-9]|services|gateway|routes|run|health){0,120}"
    ) {
        parse_and_check_positions(&source)?;
    }

    #[test]
    fn mutated_shop_manifests_parse_without_panic(edits in prop::collection::vec(edit(), 1..8)) {
        let source = apply(SHOP, &edits);
        parse_and_check_positions(&source)?;
    }

    #[test]
    fn shop_manifests_with_random_bytes_parse_without_panic(
        at in any::<usize>(),
        bytes in prop::collection::vec(any::<u8>(), 1..16),
    ) {
        let mut raw = SHOP.as_bytes().to_vec();
        let at = at % (raw.len() + 1);
        raw.splice(at..at, bytes);
        parse_and_check_positions(&String::from_utf8_lossy(&raw))?;
    }

    #[test]
    fn durations_print_back_to_themselves(micros in 0u64..100 * 365 * 24 * 3600 * 1_000_000) {
        let duration = Duration::from(StdDuration::from_micros(micros));
        let shown = duration.to_string();
        prop_assert_eq!(shown.parse::<Duration>(), Ok(duration), "{}", shown);
    }

    #[test]
    fn written_durations_parse_to_what_they_print(
        whole in 0u64..1_000_000,
        fraction in prop::option::of("[0-9]{1,3}"),
        unit in prop::sample::select(vec!["us", "ms", "s", "m", "h"]),
    ) {
        let text = match &fraction {
            Some(fraction) => format!("{whole}.{fraction}{unit}"),
            None => format!("{whole}{unit}"),
        };
        let duration: Duration = text.parse().map_err(|e| TestCaseError::fail(format!("{e}")))?;
        prop_assert_eq!(duration.get().subsec_nanos() % 1000, 0, "{} is kept to the microsecond", text);
        prop_assert_eq!(duration.to_string().parse::<Duration>(), Ok(duration), "{}", text);
    }

    #[test]
    fn rates_print_back_to_themselves(
        count in 1u64..,
        per in prop::sample::select(vec![1u64, 60, 3600]),
    ) {
        let rate = Rate { count, per: StdDuration::from_secs(per) };
        let shown = rate.to_string();
        prop_assert_eq!(shown.parse::<Rate>(), Ok(rate), "{}", shown);
    }

    #[test]
    fn shares_print_back_to_themselves(basis_points in 0u32..=10_000) {
        let text = format!("{}.{:02}%", basis_points / 100, basis_points % 100);
        let share: Share = text.parse().map_err(|e| TestCaseError::fail(format!("{e}")))?;
        prop_assert_eq!(share.basis_points(), basis_points);
        let shown = share.to_string();
        prop_assert_eq!(shown.parse::<Share>(), Ok(share), "{}", shown);
    }

    #[test]
    fn byte_sizes_print_back_to_themselves(bytes in any::<u64>()) {
        let size = ByteSize::bytes(bytes);
        let shown = size.to_string();
        prop_assert_eq!(shown.parse::<ByteSize>(), Ok(size), "{}", shown);
    }
}
