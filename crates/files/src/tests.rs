use super::*;

const NO_LIMIT: Limit = (u64::MAX, "no limit");

fn files() -> (tempfile::TempDir, Files) {
    let dir = tempfile::tempdir().unwrap();
    let files = Files::new(dir.path().join("files"));
    (dir, files)
}

/// `len` bytes that differ from chunk to chunk.
fn bytes(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i / 7) as u8 ^ seed).collect()
}

#[test]
fn a_file_put_in_pieces_reads_back_chunk_by_chunk() {
    let (_dir, files) = files();
    let data = bytes(2 * CHUNK_SIZE + 5, 1);
    let mut put = Put::new(NO_LIMIT);
    for piece in data.chunks(100_003) {
        put.feed(&files, piece).unwrap();
    }
    let manifest = put.finish(&files).unwrap();
    assert_eq!(manifest.size, data.len() as u64);
    assert_eq!(manifest.chunks.len(), 3);
    assert!(files.is_whole(&manifest.hash()).unwrap());
    let read: Vec<u8> = (0..3)
        .flat_map(|i| files.read_chunk(&manifest, i).unwrap())
        .collect();
    assert_eq!(read, data);
    assert_eq!(files.manifest(&manifest.hash()).unwrap(), Some(manifest));
}

#[test]
fn a_file_over_the_limit_is_refused() {
    let (_dir, files) = files();
    let err = files
        .put_from(&mut &bytes(1000, 0)[..], (999, "file-max-size"))
        .unwrap_err();
    assert!(
        matches!(
            err,
            FileError::TooLarge {
                size: 1000,
                limit: 999,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn chunks_that_do_not_match_are_refused_and_only_missing_ones_are_listed() {
    let (dir, files) = files();
    let data = bytes(CHUNK_SIZE + 10, 2);
    let manifest = files.put_from(&mut &data[..], NO_LIMIT).unwrap();
    // Another site, with the manifest only.
    let other = Files::new(dir.path().join("other"));
    other.save_manifest(&manifest).unwrap();
    assert_eq!(other.missing(&manifest), vec![0, 1]);
    assert!(!other.is_whole(&manifest.hash()).unwrap());
    let second = &data[CHUNK_SIZE..];
    let err = other
        .put_chunk(&manifest, 1, &data[..10], true)
        .unwrap_err();
    assert!(matches!(err, FileError::BadChunk { index: 1, .. }), "{err}");
    other.put_chunk(&manifest, 1, second, true).unwrap();
    assert_eq!(other.missing(&manifest), vec![0]);
    let err = other.put_chunk(&manifest, 2, second, true).unwrap_err();
    assert!(
        matches!(err, FileError::NoSuchChunk { index: 2, .. }),
        "{err}"
    );
}

#[test]
fn a_chunk_altered_on_disk_is_detected_and_removed() {
    let (_dir, files) = files();
    let manifest = files.put_from(&mut &bytes(5000, 3)[..], NO_LIMIT).unwrap();
    let path = files.chunk_path(&manifest.chunks[0]);
    let mut altered = fs::read(&path).unwrap();
    altered[10] ^= 1;
    fs::write(&path, altered).unwrap();
    let err = files.read_chunk(&manifest, 0).unwrap_err();
    assert!(err.to_string().contains("altered"), "{err}");
    assert!(!files.is_whole(&manifest.hash()).unwrap(), "pending again");
}

#[test]
fn a_manifest_altered_on_disk_counts_as_absent() {
    let (_dir, files) = files();
    let manifest = files.put_from(&mut &bytes(10, 4)[..], NO_LIMIT).unwrap();
    let path = files.path("manifests", &manifest.hash());
    fs::write(&path, br#"{"size": 11, "chunks": []}"#).unwrap();
    assert_eq!(files.manifest(&manifest.hash()).unwrap(), None);
}

#[test]
fn the_sweep_removes_unreferenced_files_after_the_grace_but_not_shared_chunks() {
    let (_dir, files) = files();
    let shared = bytes(CHUNK_SIZE, 5);
    let mut a_data = shared.clone();
    a_data.extend(bytes(10, 6));
    let mut b_data = shared;
    b_data.extend(bytes(10, 7));
    let a = files.put_from(&mut &a_data[..], NO_LIMIT).unwrap();
    let b = files.put_from(&mut &b_data[..], NO_LIMIT).unwrap();
    let only_b: HashSet<Hash> = [b.hash()].into();
    // Within the grace period nothing goes; it is noted when a went unreferenced.
    let swept = files.sweep(&only_b, Duration::from_secs(3600)).unwrap();
    assert_eq!(swept, Swept::default());
    assert!(files.is_whole(&a.hash()).unwrap());
    // Referred to again: the note goes.
    let both: HashSet<Hash> = [a.hash(), b.hash()].into();
    files.sweep(&both, Duration::ZERO).unwrap();
    assert!(files.is_whole(&a.hash()).unwrap());
    let swept = files.sweep(&only_b, Duration::ZERO).unwrap();
    assert_eq!((swept.files, swept.chunks, swept.bytes), (1, 1, 10));
    assert!(files.manifest(&a.hash()).unwrap().is_none());
    assert!(files.is_whole(&b.hash()).unwrap(), "the shared chunk stays");
    assert_eq!(files.files().unwrap(), vec![b.hash()]);
}

#[test]
fn uploads_are_listed_until_done() {
    let (_dir, files) = files();
    let m = files.put_from(&mut &bytes(10, 8)[..], NO_LIMIT).unwrap();
    assert!(files.uploads().unwrap().is_empty());
    files.mark_upload(&m.hash()).unwrap();
    assert_eq!(files.uploads().unwrap(), vec![m.hash()]);
    files.uploaded(&m.hash());
    assert!(files.uploads().unwrap().is_empty());
}

#[test]
fn an_empty_file_is_a_file() {
    let (_dir, files) = files();
    let m = files.put_from(&mut &[][..], NO_LIMIT).unwrap();
    assert_eq!((m.size, m.chunks.len()), (0, 0));
    assert!(files.is_whole(&m.hash()).unwrap());
}
