//! The fuzz corpus as a regression suite: every file under `fuzz/corpus/TARGET/`
//! (realistic seeds, inputs the fuzzer found interesting, and the inputs of
//! every bug it found) goes through the same checks as the fuzz target, so plain
//! `cargo test` replays them in well under a second, without cargo-fuzz.

#[path = "../fuzz/src/lib.rs"]
mod checks;

use std::path::Path;

fn replay(target: &str, check: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("corpus entry").path();
        let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let outcome = std::panic::catch_unwind(|| check(&data));
        assert!(
            outcome.is_ok(),
            "{} fails the {target} checks",
            path.display()
        );
        n += 1;
    }
    assert!(n > 0, "{} is empty", dir.display());
}

#[test]
fn cni_config_corpus_passes() {
    replay("cni_config", checks::cni_config);
}

#[test]
fn port_spec_corpus_passes() {
    replay("port_spec", checks::port_spec);
}

#[test]
fn names_corpus_passes() {
    replay("names", checks::names);
}
