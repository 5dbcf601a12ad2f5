//! Replays every saved `cargo fuzz` input (`hw/fuzz/regressions/<target>/*`) through the body
//! of its target, on stable: an input that once crashed a decoder is a test for good.

use std::path::Path;

use rhca_hw::fuzzing::TARGETS;

#[test]
fn every_saved_fuzz_input_replays_cleanly() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions");
    for (name, body) in TARGETS {
        let dir = root.join(name);
        let mut inputs: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e} (every target keeps its seeds)", dir.display()))
            .map(|e| e.expect("a directory entry").path())
            .collect();
        inputs.sort();
        assert!(!inputs.is_empty(), "{}: no inputs", dir.display());
        for path in inputs {
            let data = std::fs::read(&path).expect("a readable input");
            // A panic names the input that caused it.
            let r = std::panic::catch_unwind(|| body(&data));
            assert!(r.is_ok(), "{name}: {} panics", path.display());
        }
    }
}
