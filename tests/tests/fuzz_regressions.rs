//! Replays every saved input of the operation-sequence fuzzer (`tests/fuzz`, target `ops`;
//! inputs in `tests/fuzz/regressions/ops/`) against the driver on the simulated machine, on
//! stable: a sequence that once broke the driver stays a test for good.

use std::path::Path;

use rhca_tests::scenario;

#[test]
fn every_saved_operation_sequence_replays_cleanly() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions/ops");
    let mut inputs: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_none_or(|x| x != "md"))
        .collect();
    inputs.sort();
    assert!(!inputs.is_empty(), "{}: no inputs", dir.display());
    for path in inputs {
        let data = std::fs::read(&path).expect("a readable input");
        let o = scenario::ops_from_bytes(&data);
        assert!(o.ok(), "{}: {o:#?}", path.display());
        assert!(o.cycles > 0, "{}: no operation ran", path.display());
        eprintln!(
            "{}: {} operations, {} MADs",
            path.display(),
            o.cycles,
            o.mads_sent
        );
    }
}
