//! Files in records. A file field's value is the file's metadata, `{"name", "size",
//! "media_type", "hash"}`; the bytes travel apart from the record, as chunks of
//! [`CHUNK_SIZE`] bytes named by their BLAKE3 hash. The file's own hash is BLAKE3 over
//! its size and its chunks' hashes in order (its [`Manifest`]), so a manifest that
//! arrives is checked against the record before any chunk is, and each chunk on its own
//! as it arrives.

use crate::RecordState;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::fmt;

/// The size of every chunk but a file's last.
pub const CHUNK_SIZE: usize = 1 << 20;

/// What a file's hash says before its hex digits.
const PREFIX: &str = "blake3:";

/// A BLAKE3 hash: of a chunk, or of a file's manifest.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Hash(pub [u8; 32]);

impl Hash {
    /// The hash of `bytes`.
    pub fn of(bytes: &[u8]) -> Hash {
        Hash(*blake3::hash(bytes).as_bytes())
    }

    /// Reads 64 hex digits.
    pub fn from_hex(hex: &str) -> Option<Hash> {
        blake3::Hash::from_hex(hex)
            .ok()
            .map(|h| Hash(*h.as_bytes()))
    }

    /// Reads a file's hash as records hold it: `blake3:` and 64 hex digits.
    pub fn from_file_hash(text: &str) -> Option<Hash> {
        Hash::from_hex(text.strip_prefix(PREFIX)?)
    }

    /// 64 lower-case hex digits.
    pub fn to_hex(&self) -> String {
        blake3::Hash::from_bytes(self.0).to_hex().to_string()
    }

    /// The file's hash as records hold it: `blake3:` and 64 hex digits.
    pub fn file_hash(&self) -> String {
        format!("{PREFIX}{}", self.to_hex())
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl Serialize for Hash {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for Hash {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Hash, D::Error> {
        let text = String::deserialize(d)?;
        Hash::from_hex(&text)
            .ok_or_else(|| serde::de::Error::custom("a chunk hash is 64 hex digits"))
    }
}

/// A file as a record's field holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRef {
    /// The file's name (no folder).
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its media type (`application/pdf`).
    pub media_type: String,
    /// The hash of its manifest.
    pub hash: Hash,
}

impl FileRef {
    /// The file a field's value names: exactly `{"name", "size", "media_type", "hash"}`
    /// with a non-empty name and media type and a `blake3:` hash; `None` for anything
    /// else.
    pub fn from_value(value: &Value) -> Option<FileRef> {
        let meta = value.as_object().filter(|m| m.len() == 4)?;
        let text = |key: &str| {
            meta.get(key)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
        };
        Some(FileRef {
            name: text("name")?.to_string(),
            size: meta.get("size")?.as_u64()?,
            media_type: text("media_type")?.to_string(),
            hash: Hash::from_file_hash(text("hash")?)?,
        })
    }

    /// The field's value.
    pub fn to_value(&self) -> Value {
        json!({
            "name": self.name,
            "size": self.size,
            "media_type": self.media_type,
            "hash": self.hash.file_hash(),
        })
    }
}

/// Whether a record's stored bytes may name a file (they hold `blake3:`): a fast
/// filter for storage, each candidate then read with [`files_in`].
pub fn may_name_file(bytes: &[u8]) -> bool {
    memchr::memmem::find(bytes, PREFIX.as_bytes()).is_some()
}

/// The files a record refers to, by field (none for a deleted record).
pub fn files_in(state: &RecordState) -> impl Iterator<Item = (&str, FileRef)> {
    state
        .fields
        .iter()
        .filter(|(_, f)| f.value.is_object() && !f.hidden_by(state.deleted))
        .filter_map(|(name, f)| Some((name.as_str(), FileRef::from_value(&f.value)?)))
}

/// The files among a write's values.
pub fn files_written(values: &Map<String, Value>) -> impl Iterator<Item = FileRef> {
    values.values().filter_map(FileRef::from_value)
}

/// A file's size and its chunks' hashes, in order: what names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The file's size in bytes.
    pub size: u64,
    /// The hash of each chunk.
    pub chunks: Vec<Hash>,
}

impl Manifest {
    /// The file's hash.
    pub fn hash(&self) -> Hash {
        let mut hasher = blake3::Hasher::new();
        hasher.update(b"sitesync file 1\n");
        hasher.update(&self.size.to_le_bytes());
        for chunk in &self.chunks {
            hasher.update(&chunk.0);
        }
        Hash(*hasher.finalize().as_bytes())
    }

    /// How many chunks a file of `size` bytes has.
    pub fn chunk_count(size: u64) -> usize {
        size.div_ceil(CHUNK_SIZE as u64) as usize
    }

    /// The size of chunk `index`.
    pub fn chunk_len(&self, index: usize) -> usize {
        let start = index as u64 * CHUNK_SIZE as u64;
        self.size.saturating_sub(start).min(CHUNK_SIZE as u64) as usize
    }

    /// Whether the chunks are as many as the size says.
    pub fn is_whole(&self) -> bool {
        self.chunks.len() == Manifest::chunk_count(self.size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Clock;

    #[test]
    fn a_file_reference_reads_back_as_written_and_nothing_else_reads_as_one() {
        let manifest = Manifest {
            size: 5,
            chunks: vec![Hash::of(b"hello")],
        };
        let file = FileRef {
            name: "cv.pdf".into(),
            size: 5,
            media_type: "application/pdf".into(),
            hash: manifest.hash(),
        };
        assert_eq!(FileRef::from_value(&file.to_value()), Some(file.clone()));
        let mut other = file.to_value();
        other["hash"] = json!("sha256:00");
        assert_eq!(FileRef::from_value(&other), None);
        other = file.to_value();
        other["extra"] = json!(1);
        assert_eq!(FileRef::from_value(&other), None);
        assert_eq!(FileRef::from_value(&json!("cv.pdf")), None);
    }

    #[test]
    fn a_manifest_names_its_file_by_size_and_chunks() {
        let one = Manifest {
            size: CHUNK_SIZE as u64 + 1,
            chunks: vec![Hash::of(b"a"), Hash::of(b"b")],
        };
        assert!(one.is_whole());
        assert_eq!(one.chunk_len(0), CHUNK_SIZE);
        assert_eq!(one.chunk_len(1), 1);
        let mut two = one.clone();
        two.size += 1;
        assert_ne!(one.hash(), two.hash());
        two.chunks.swap(0, 1);
        assert_ne!(one.hash(), two.hash());
        assert!(
            Manifest {
                size: 0,
                chunks: vec![]
            }
            .is_whole()
        );
        assert!(
            !Manifest {
                size: 1,
                chunks: vec![]
            }
            .is_whole()
        );
    }

    #[test]
    fn a_deleted_record_refers_to_no_file() {
        let file = FileRef {
            name: "a".into(),
            size: 0,
            media_type: "text/plain".into(),
            hash: Hash::of(b""),
        };
        let mut clock = Clock::default();
        let mut values = Map::new();
        values.insert("doc".into(), file.to_value());
        values.insert("note".into(), json!("x"));
        let state = RecordState::default()
            .write(None, values, &mut clock, 1, 2)
            .unwrap();
        let found: Vec<_> = files_in(&state).collect();
        assert_eq!(found, vec![("doc", file)]);
        let mut deleted = state.clone();
        deleted.deleted = state.latest();
        assert_eq!(files_in(&deleted).count(), 0);
    }
}
