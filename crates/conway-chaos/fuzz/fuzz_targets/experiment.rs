//! The experiment parser on arbitrary input: it must never panic, and every position
//! it reports must lie inside the input. Seed it with the example:
//! `cargo +nightly fuzz run experiment ../../examples/shop/chaos`.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(source) = std::str::from_utf8(data) else {
        return;
    };
    let Err(diagnostics) = conway_chaos::parse(source) else {
        return;
    };
    assert!(!diagnostics.is_empty());
    let lines: Vec<&str> = source.split('\n').collect();
    for d in diagnostics.iter() {
        assert!((1..=lines.len()).contains(&d.line), "{d:?}");
        let width = lines[d.line - 1].chars().count();
        assert!((1..=width + 1).contains(&d.column), "{d:?}");
    }
});
