//! Replays every input kept in `fuzz/fixtures/TARGET/` through its target's check: an
//! input that once broke a property (a crash found by fuzzing, copied there from
//! `fuzz/artifacts/TARGET/`) is checked in every `cargo test`, not only while fuzzing.

use sitesync_fuzz_checks::Check;
use std::path::Path;

/// Replays every input under `root/TARGET/` through that target's check; returns how
/// many were replayed, or the first that fails with how to replay it.
fn replay(root: &Path, targets: &[(&str, Check)]) -> Result<usize, String> {
    let mut replayed = 0;
    for (target, check) in targets {
        let folder = root.join(target);
        let entries = std::fs::read_dir(&folder).map_err(|e| {
            format!(
                "{}: {e}; every target keeps at least one input",
                folder.display()
            )
        })?;
        for entry in entries {
            let path = entry.map_err(|e| e.to_string())?.path();
            let data = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            if std::panic::catch_unwind(|| check(&data)).is_err() {
                return Err(format!(
                    "fuzz input {} fails its check again; replay it with `cargo fuzz run -s none {target} {}`",
                    path.display(),
                    path.display()
                ));
            }
            replayed += 1;
        }
    }
    Ok(replayed)
}

#[test]
fn every_kept_fuzz_input_still_passes_its_check() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/fixtures");
    let replayed = replay(&root, sitesync_fuzz_checks::TARGETS).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        replayed >= sitesync_fuzz_checks::TARGETS.len(),
        "replayed {replayed} inputs"
    );
}

#[test]
fn an_input_that_breaks_its_check_is_named() {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir(root.path().join("picky")).unwrap();
    std::fs::write(root.path().join("picky/fine"), b"ok").unwrap();
    std::fs::write(root.path().join("picky/bad"), b"no").unwrap();
    let picky: Check = |data| assert_eq!(data, b"ok");
    let error = replay(root.path(), &[("picky", picky)]).unwrap_err();
    assert!(
        error.contains("picky/bad") && error.contains("cargo fuzz run"),
        "{error}"
    );
    let missing = replay(root.path(), &[("absent", picky)]).unwrap_err();
    assert!(missing.contains("absent"), "{missing}");
}
