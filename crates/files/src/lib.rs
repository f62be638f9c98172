//! A site's files on disk, one folder per organisation, content-addressed:
//!
//! - `chunks/ab/<hash>`: a chunk (at most [`CHUNK_SIZE`] bytes), named by its BLAKE3
//!   hash, kept once however many files hold it;
//! - `manifests/<hash>`: a file's [`Manifest`] (its size and its chunks' hashes), named
//!   by the file's hash. A file is here when its manifest and every chunk are;
//!   pending while some chunk is not;
//! - `uploads/<hash>`: a satellite's file that the primary has not yet taken whole;
//! - `unreferenced/<hash>`: when the sweep first found no record referring to the file.
//!
//! Every write goes to `tmp/` first, is synced, and is renamed into place: nothing
//! half-written is ever seen under its name, whatever stops the process. A chunk is
//! checked against its hash when it arrives and again each time it is read; one altered
//! on disk is removed, so the file is pending again and is fetched anew.
//!
//! Nothing here holds a whole file in memory: files go in and out a chunk at a time.

use sitesync_core::file::{CHUNK_SIZE, Hash, Manifest};
use std::collections::HashSet;
use std::fs;
use std::io::{ErrorKind, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

/// Chunks in no manifest (a put cut short) are removed once this old.
const ORPHAN_AGE: Duration = Duration::from_secs(3600);

/// What can go wrong with files.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The disk refused: full, read-only, or gone.
    #[error("cannot {doing} {path}: {source}")]
    Io {
        doing: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// The disk is full: nothing half-written was kept.
    #[error(
        "the disk is full: cannot write {path} (nothing half-written was kept; free some space and try again)"
    )]
    DiskFull { path: PathBuf },
    /// Over a size limit.
    #[error(
        "the file is larger than {limit} bytes, which {what} allows (it has at least {size}): \
         put a smaller file, or raise the limit with `sitesync settings set`"
    )]
    TooLarge {
        /// The limit, as its setting is named (`file-max-size`).
        what: &'static str,
        /// The file's size, or the bytes read of it when it went past.
        size: u64,
        /// The limit in bytes.
        limit: u64,
    },
    /// A chunk whose bytes do not match its hash.
    #[error("chunk {index} of file {file} does not match its hash{on_disk}")]
    BadChunk {
        file: Hash,
        index: usize,
        on_disk: &'static str,
    },
    /// A chunk index past the file's end.
    #[error("file {file} has {chunks} chunks: there is no chunk {index}")]
    NoSuchChunk {
        file: Hash,
        index: usize,
        chunks: usize,
    },
    /// A manifest whose chunks are not as many as its size says.
    #[error("the manifest of a {size}-byte file lists {chunks} chunks: it is not whole")]
    BadManifest { size: u64, chunks: usize },
}

impl FileError {
    fn io(doing: &'static str, path: &Path, source: std::io::Error) -> FileError {
        // ENOSPC (28) and EDQUOT (122) on Linux.
        if source.kind() == ErrorKind::StorageFull
            || matches!(source.raw_os_error(), Some(28 | 122))
        {
            return FileError::DiskFull {
                path: path.to_path_buf(),
            };
        }
        FileError::Io {
            doing,
            path: path.to_path_buf(),
            source,
        }
    }
}

/// What a sweep removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    /// Files removed.
    pub files: u64,
    /// Chunks removed.
    pub chunks: u64,
    /// Bytes freed.
    pub bytes: u64,
}

/// One organisation's files on a site.
#[derive(Debug, Clone)]
pub struct Files {
    root: PathBuf,
}

/// Names temporary files apart within a process.
static TMP: AtomicU64 = AtomicU64::new(0);

impl Files {
    /// The files kept in `root` (made when first written).
    pub fn new(root: PathBuf) -> Files {
        Files { root }
    }

    /// The folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn chunk_path(&self, chunk: &Hash) -> PathBuf {
        let hex = chunk.to_hex();
        self.root.join("chunks").join(&hex[..2]).join(hex)
    }

    fn path(&self, folder: &str, file: &Hash) -> PathBuf {
        self.root.join(folder).join(file.to_hex())
    }

    /// Writes `bytes` to `path` whole or not at all (and, `durable`, synced to disk
    /// before it has its name).
    fn write_whole(&self, path: &Path, bytes: &[u8], durable: bool) -> Result<(), FileError> {
        let tmp_dir = self.root.join("tmp");
        let n = TMP.fetch_add(1, Ordering::Relaxed);
        let tmp = tmp_dir.join(format!("{}-{n}", std::process::id()));
        let write = || -> std::io::Result<()> {
            fs::create_dir_all(&tmp_dir)?;
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent)?;
            }
            let mut file = fs::File::create(&tmp)?;
            file.write_all(bytes)?;
            if durable {
                file.sync_all()?;
            }
            fs::rename(&tmp, path)
        };
        write().map_err(|e| {
            let _ = fs::remove_file(&tmp);
            FileError::io("write", path, e)
        })
    }

    /// Keeps a chunk put here (if not already here), synced, and returns its hash.
    pub fn store_chunk(&self, bytes: &[u8]) -> Result<Hash, FileError> {
        let hash = Hash::of(bytes);
        self.keep_chunk(&hash, bytes, true)?;
        Ok(hash)
    }

    fn keep_chunk(&self, hash: &Hash, bytes: &[u8], durable: bool) -> Result<(), FileError> {
        let path = self.chunk_path(hash);
        match path.exists() {
            true => Ok(()),
            false => self.write_whole(&path, bytes, durable),
        }
    }

    /// Keeps chunk `index` of the file of `manifest`, which `bytes` must match. Chunks
    /// fetched several at once are written without waiting for the disk, and synced
    /// together at the end ([`Files::sync_chunks`]); a chunk the primary takes is
    /// `durable` at once, as the site that sent it then counts it sent.
    pub fn put_chunk(
        &self,
        manifest: &Manifest,
        index: usize,
        bytes: &[u8],
        durable: bool,
    ) -> Result<(), FileError> {
        let expected = chunk_of(manifest, index)?;
        if bytes.len() != manifest.chunk_len(index) || Hash::of(bytes) != expected {
            return Err(FileError::BadChunk {
                file: manifest.hash(),
                index,
                on_disk: "",
            });
        }
        self.keep_chunk(&expected, bytes, durable)
    }

    /// Syncs every chunk of `manifest` to disk (after a fetch of them that was not
    /// `durable`, before the file counts as here).
    pub fn sync_chunks(&self, manifest: &Manifest) -> Result<(), FileError> {
        for chunk in &manifest.chunks {
            let path = self.chunk_path(chunk);
            fs::File::open(&path)
                .and_then(|f| f.sync_all())
                .map_err(|e| FileError::io("sync", &path, e))?;
        }
        Ok(())
    }

    /// Chunk `index` of the file of `manifest`, checked. One altered on disk is removed
    /// (the file is pending again) and refused.
    pub fn read_chunk(&self, manifest: &Manifest, index: usize) -> Result<Vec<u8>, FileError> {
        let expected = chunk_of(manifest, index)?;
        let path = self.chunk_path(&expected);
        let bytes = fs::read(&path).map_err(|e| FileError::io("read", &path, e))?;
        if Hash::of(&bytes) != expected {
            let _ = fs::remove_file(&path);
            return Err(FileError::BadChunk {
                file: manifest.hash(),
                index,
                on_disk: " on disk: it was altered there, and is removed to be fetched again",
            });
        }
        Ok(bytes)
    }

    /// Keeps a file's manifest (its chunks may come later) and returns the file's hash.
    pub fn save_manifest(&self, manifest: &Manifest) -> Result<Hash, FileError> {
        if !manifest.is_whole() {
            return Err(FileError::BadManifest {
                size: manifest.size,
                chunks: manifest.chunks.len(),
            });
        }
        let hash = manifest.hash();
        let path = self.path("manifests", &hash);
        if !path.exists() {
            let bytes = serde_json::to_vec(manifest).unwrap_or_default();
            self.write_whole(&path, &bytes, true)?;
        }
        Ok(hash)
    }

    /// The manifest of file `file`, if here. One that does not match its name (altered
    /// on disk) is removed and counts as absent.
    pub fn manifest(&self, file: &Hash) -> Result<Option<Manifest>, FileError> {
        let path = self.path("manifests", file);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(FileError::io("read", &path, e)),
        };
        match serde_json::from_slice::<Manifest>(&bytes) {
            Ok(m) if m.hash() == *file && m.is_whole() => Ok(Some(m)),
            _ => {
                let _ = fs::remove_file(&path);
                Ok(None)
            }
        }
    }

    /// The chunks of `manifest` not here, by index.
    pub fn missing(&self, manifest: &Manifest) -> Vec<usize> {
        (0..manifest.chunks.len())
            .filter(|&i| !self.chunk_path(&manifest.chunks[i]).exists())
            .collect()
    }

    /// The manifest of file `file` when it is here whole.
    pub fn whole(&self, file: &Hash) -> Result<Option<Manifest>, FileError> {
        Ok(self.manifest(file)?.filter(|m| self.missing(m).is_empty()))
    }

    /// Whether file `file` is here whole.
    pub fn is_whole(&self, file: &Hash) -> Result<bool, FileError> {
        Ok(self.whole(file)?.is_some())
    }

    /// Reads a whole file from `reader` into chunks, at most `limit` bytes: a chunk at
    /// a time, never the whole file in memory. Returns its manifest, saved.
    pub fn put_from(&self, reader: &mut dyn Read, limit: Limit) -> Result<Manifest, FileError> {
        let mut put = Put::new(limit);
        let mut buf = vec![0; 64 << 10];
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(FileError::io("read", Path::new("the file given"), e)),
            };
            put.feed(self, &buf[..n])?;
        }
        put.finish(self)
    }

    /// Notes that the primary has yet to take file `file` whole from this site.
    pub fn mark_upload(&self, file: &Hash) -> Result<(), FileError> {
        self.write_whole(&self.path("uploads", file), b"", true)
    }

    /// The files the primary has yet to take whole from this site.
    pub fn uploads(&self) -> Result<Vec<Hash>, FileError> {
        self.listed("uploads")
    }

    /// The primary has file `file` whole.
    pub fn uploaded(&self, file: &Hash) {
        let _ = fs::remove_file(self.path("uploads", file));
    }

    fn listed(&self, folder: &str) -> Result<Vec<Hash>, FileError> {
        let dir = self.root.join(folder);
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(FileError::io("list", &dir, e)),
        };
        Ok(entries
            .filter_map(|e| Hash::from_hex(e.ok()?.file_name().to_str()?))
            .collect())
    }

    /// Every file with a manifest here.
    pub fn files(&self) -> Result<Vec<Hash>, FileError> {
        self.listed("manifests")
    }

    /// The bytes of every file with a manifest here (whole or pending).
    pub fn total_size(&self) -> Result<u64, FileError> {
        let mut total = 0;
        for file in self.files()? {
            total += self.manifest(&file)?.map_or(0, |m| m.size);
        }
        Ok(total)
    }

    /// Removes the files no record refers to any more (`referenced` are those that
    /// are) once they have been unreferenced for `grace`, with their chunks that no
    /// other file holds, and chunks of no file (a put cut short) after an hour.
    pub fn sweep(&self, referenced: &HashSet<Hash>, grace: Duration) -> Result<Swept, FileError> {
        let now = SystemTime::now();
        let mut swept = Swept::default();
        let mut kept_chunks = HashSet::new();
        let mut gone_chunks = HashSet::new();
        for file in self.files()? {
            let Some(manifest) = self.manifest(&file)? else {
                continue;
            };
            let mark = self.path("unreferenced", &file);
            if referenced.contains(&file) {
                let _ = fs::remove_file(&mark);
                kept_chunks.extend(manifest.chunks);
                continue;
            }
            let since = fs::metadata(&mark).and_then(|m| m.modified()).ok();
            let due = since.is_some_and(|t| now.duration_since(t).unwrap_or_default() >= grace);
            if since.is_none() {
                self.write_whole(&mark, b"", true)?;
            }
            if due || (since.is_none() && grace.is_zero()) {
                let path = self.path("manifests", &file);
                fs::remove_file(&path).map_err(|e| FileError::io("remove", &path, e))?;
                let _ = fs::remove_file(&mark);
                self.uploaded(&file);
                swept.files += 1;
                gone_chunks.extend(manifest.chunks);
            } else {
                kept_chunks.extend(manifest.chunks);
            }
        }
        for chunk in gone_chunks.difference(&kept_chunks) {
            swept.bytes += self.remove_chunk(chunk);
            swept.chunks += 1;
        }
        for (chunk, age) in self.chunks()? {
            if !kept_chunks.contains(&chunk) && age >= ORPHAN_AGE {
                swept.bytes += self.remove_chunk(&chunk);
                swept.chunks += 1;
            }
        }
        Ok(swept)
    }

    /// Removes a chunk; returns its size.
    fn remove_chunk(&self, chunk: &Hash) -> u64 {
        let path = self.chunk_path(chunk);
        let size = fs::metadata(&path).map_or(0, |m| m.len());
        match fs::remove_file(&path) {
            Ok(()) => size,
            Err(_) => 0,
        }
    }

    /// Every chunk here, with its age.
    fn chunks(&self) -> Result<Vec<(Hash, Duration)>, FileError> {
        let dir = self.root.join("chunks");
        let Ok(folders) = fs::read_dir(&dir) else {
            return Ok(Vec::new());
        };
        let now = SystemTime::now();
        let mut found = Vec::new();
        for folder in folders.flatten() {
            let Ok(entries) = fs::read_dir(folder.path()) else {
                continue;
            };
            for entry in entries.flatten() {
                let Some(hash) = entry.file_name().to_str().and_then(Hash::from_hex) else {
                    continue;
                };
                let modified = entry.metadata().and_then(|m| m.modified()).unwrap_or(now);
                found.push((hash, now.duration_since(modified).unwrap_or_default()));
            }
        }
        Ok(found)
    }
}

fn chunk_of(manifest: &Manifest, index: usize) -> Result<Hash, FileError> {
    manifest
        .chunks
        .get(index)
        .copied()
        .ok_or_else(|| FileError::NoSuchChunk {
            file: manifest.hash(),
            index,
            chunks: manifest.chunks.len(),
        })
}

/// A file being put, fed its bytes in pieces of any size: each full chunk is kept as
/// it fills, so memory holds at most one chunk.
pub struct Put {
    buffer: Vec<u8>,
    chunks: Vec<Hash>,
    size: u64,
    limit: Limit,
}

/// A limit in bytes, and its name as the settings say it.
pub type Limit = (u64, &'static str);

impl Put {
    /// A put of at most `limit` bytes.
    pub fn new(limit: Limit) -> Put {
        Put {
            buffer: Vec::with_capacity(CHUNK_SIZE),
            chunks: Vec::new(),
            size: 0,
            limit,
        }
    }

    /// Takes the next bytes.
    pub fn feed(&mut self, files: &Files, mut bytes: &[u8]) -> Result<(), FileError> {
        self.size += bytes.len() as u64;
        if self.size > self.limit.0 {
            return Err(FileError::TooLarge {
                what: self.limit.1,
                size: self.size,
                limit: self.limit.0,
            });
        }
        while !bytes.is_empty() {
            let room = CHUNK_SIZE - self.buffer.len();
            let (now, later) = bytes.split_at(room.min(bytes.len()));
            self.buffer.extend_from_slice(now);
            bytes = later;
            if self.buffer.len() == CHUNK_SIZE {
                self.chunks.push(files.store_chunk(&self.buffer)?);
                self.buffer.clear();
            }
        }
        Ok(())
    }

    /// The last chunk kept and the manifest saved.
    pub fn finish(mut self, files: &Files) -> Result<Manifest, FileError> {
        if !self.buffer.is_empty() {
            self.chunks.push(files.store_chunk(&self.buffer)?);
        }
        let manifest = Manifest {
            size: self.size,
            chunks: self.chunks,
        };
        files.save_manifest(&manifest)?;
        Ok(manifest)
    }
}

#[cfg(test)]
mod tests;
