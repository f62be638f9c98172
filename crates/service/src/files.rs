//! Files in records: `sitesync file put|get`, the local API's
//! `/api/v1/{collection}/{id}/files/{field}`, and what the sync API lets a satellite
//! send and fetch. The bytes live in [`Files`] (chunks on disk, one folder per
//! organisation); the record's field holds the file's name, size, media type and hash,
//! and travels with the record as any field does. A site may read a record before its
//! file has arrived: the file is then pending.
//!
//! A satellite sends the primary the files put there (its `uploads`), and fetches the
//! files of the records it holds; the primary gives a site a file only for a record
//! routed to it, and takes one only for a record the site may write that already names
//! it (so the record is pushed first).

use crate::actor::Actor;
use crate::error::ServiceError;
use crate::records::{RecordView, StoreChoice};
use crate::site::Site;
use serde_json::Map;
use sitesync_core::file::{FileRef, Hash, Manifest, files_in};
use sitesync_core::{OrgId, validate};
use sitesync_files::{FileError, Files, Limit, Put, Swept};
use sitesync_store::SiteRow;
use std::collections::HashSet;
use std::io::ErrorKind;

/// A file of a record, and whether its bytes are here.
#[derive(Debug, Clone)]
pub struct FileHere {
    /// The file as the record names it.
    pub file: FileRef,
    /// Its manifest, when this site has it whole; `None` while it is pending.
    pub whole: Option<Manifest>,
    /// Where its chunks are.
    pub files: Files,
}

/// A record, by collection and id.
pub type RecordKey = (String, String);

impl Site {
    /// The files of organisation `org` on this site.
    pub fn files(&self, org: OrgId) -> Files {
        Files::new(self.dir.root.join("files").join(org.to_string()))
    }

    /// The most a new file of `org` may hold, and which limit that is: the per-file
    /// limit, or what is left of the organisation's.
    pub fn file_room(&self, org: OrgId) -> Result<Limit, ServiceError> {
        let limits = self.config.files.clone().unwrap_or_default();
        let used = self.files(org).total_size()?;
        let left = limits.max_org_size().saturating_sub(used);
        Ok(match left < limits.max_file_size() {
            true => (
                left,
                "what is left of the organisation's org-files-max-size",
            ),
            false => (limits.max_file_size(), "file-max-size"),
        })
    }

    /// Starts putting a file of `org`'s: feed it the bytes, then [`Site::attach_file`].
    pub fn start_file(
        &self,
        actor: Actor,
        org: Option<&str>,
    ) -> Result<(Put, Files), ServiceError> {
        actor.local("put files here; a site's files arrive by sync")?;
        let org = self.org(org)?;
        Ok((Put::new(self.file_room(org.id)?), self.files(org.id)))
    }

    /// Puts a file read from `reader` (a chunk at a time): then [`Site::attach_file`].
    pub fn store_file(
        &self,
        actor: Actor,
        org: Option<&str>,
        reader: &mut dyn std::io::Read,
    ) -> Result<Manifest, ServiceError> {
        actor.local("put files here; a site's files arrive by sync")?;
        let org = self.org(org)?;
        Ok(self
            .files(org.id)
            .put_from(reader, self.file_room(org.id)?)?)
    }

    /// Writes the file of `manifest` (put by [`Site::start_file`] or [`Site::store_file`]) into a record's
    /// field, named `name`, of type `media_type`: the record is written as by `record
    /// put`, checked against its collection's definition, and at a satellite the file
    /// is queued for the primary.
    #[allow(clippy::too_many_arguments)]
    pub fn attach_file(
        &self,
        actor: Actor,
        org: Option<&str>,
        (collection, id, field): (&str, &str, &str),
        (name, media_type): (&str, &str),
        manifest: &Manifest,
        store: StoreChoice<'_>,
        now_ms: u64,
    ) -> Result<RecordView, ServiceError> {
        validate::field(field, &serde_json::Value::Null)?;
        let name = file_name(name)?;
        let media_type = media_type.trim();
        if media_type.is_empty() || !media_type.contains('/') {
            return Err(ServiceError::Input(format!(
                "{media_type:?} is not a media type: give one like application/pdf (--type, or the Content-Type header)"
            )));
        }
        let file = FileRef {
            name,
            size: manifest.size,
            media_type: media_type.to_string(),
            hash: manifest.hash(),
        };
        let mut body = Map::new();
        body.insert(field.to_string(), file.to_value());
        let view = self.put_record(actor, org, (collection, id), body.into(), store, now_ms)?;
        if !self.is_primary() {
            self.files(self.org(org)?.id).mark_upload(&file.hash)?;
        }
        Ok(view)
    }

    /// The file in a record's field, and whether it is here whole.
    pub fn file_of(
        &self,
        actor: Actor,
        org: Option<&str>,
        (collection, id, field): (&str, &str, &str),
    ) -> Result<FileHere, ServiceError> {
        let record = self.get_record(actor, org, (collection, id))?;
        let file = record
            .fields
            .get(field)
            .and_then(FileRef::from_value)
            .ok_or_else(|| {
                ServiceError::Input(format!(
                    "field {field:?} of {collection}/{id} holds no file: put one with \
                     `sitesync file put {collection} {id} {field} PATH`"
                ))
            })?;
        let files = self.files(self.org(org)?.id);
        let whole = files.whole(&file.hash)?;
        Ok(FileHere { file, whole, files })
    }

    /// The record `site` asks a file for, checked: here, routed to the site (or, with
    /// `writing`, writable by it), and naming the file in some field.
    fn file_record(
        &self,
        site: &SiteRow,
        (collection, id): (&str, &str),
        file: &Hash,
        writing: bool,
    ) -> Result<(), ServiceError> {
        let missing = || ServiceError::NoRecord {
            collection: collection.to_string(),
            id: id.to_string(),
        };
        let record = self
            .primary()?
            .record(site.org, collection, id)?
            .ok_or_else(missing)?;
        let allowed = match writing {
            true => {
                let restricted = self.primary()?.restricted(site.org)?;
                let restricted = restricted.iter().any(|c| c == collection);
                site.assignment
                    .may_write(record.state.store, restricted)
                    .is_ok()
            }
            false => site.assignment.routes(record.state.store),
        };
        if !allowed {
            return Err(missing());
        }
        if !files_in(&record.state).any(|(_, f)| f.hash == *file) {
            return Err(ServiceError::Input(format!(
                "{collection}/{id} names no file {file} here: push the record first, then its file"
            )));
        }
        Ok(())
    }

    /// Primary: the manifest of a file `site` may fetch, for a record routed to it.
    /// Pending while the site that put it has not sent it whole.
    pub fn file_for_site(
        &self,
        site: &SiteRow,
        record: (&str, &str),
        file: &Hash,
    ) -> Result<Manifest, ServiceError> {
        self.file_record(site, record, file, false)?;
        self.files(site.org)
            .whole(file)?
            .ok_or(ServiceError::FilePending { file: *file })
    }

    /// Primary: chunk `index` of a file `site` may fetch, for a record routed to it
    /// (pending while the primary lacks it).
    pub fn chunk_for_site(
        &self,
        site: &SiteRow,
        record: (&str, &str),
        file: &Hash,
        index: usize,
    ) -> Result<Vec<u8>, ServiceError> {
        self.file_record(site, record, file, false)?;
        let files = self.files(site.org);
        let pending = || ServiceError::FilePending { file: *file };
        let manifest = files.manifest(file)?.ok_or_else(pending)?;
        match files.read_chunk(&manifest, index) {
            Err(FileError::Io { source, .. }) if source.kind() == ErrorKind::NotFound => {
                Err(pending())
            }
            read => Ok(read?),
        }
    }

    /// Primary: takes the manifest of a file `site` put, for a record it may write that
    /// names it; returns the chunks still to send, by index.
    pub fn take_manifest(
        &self,
        site: &SiteRow,
        record: (&str, &str),
        manifest: &Manifest,
    ) -> Result<Vec<usize>, ServiceError> {
        let file = manifest.hash();
        self.file_record(site, record, &file, true)?;
        let files = self.files(site.org);
        if files.manifest(&file)?.is_none() {
            let (limit, what) = self.file_room(site.org)?;
            if manifest.size > limit {
                return Err(ServiceError::File(sitesync_files::FileError::TooLarge {
                    what,
                    size: manifest.size,
                    limit,
                }));
            }
            files.save_manifest(manifest)?;
        }
        Ok(files.missing(manifest))
    }

    /// Primary: takes chunk `index` of file `file` from `site`, whose manifest it sent.
    pub fn take_chunk(
        &self,
        site: &SiteRow,
        file: &Hash,
        index: usize,
        bytes: &[u8],
    ) -> Result<(), ServiceError> {
        let files = self.files(site.org);
        let manifest = files.manifest(file)?.ok_or_else(|| {
            ServiceError::Input(format!(
                "no file {file} is expected here: send its manifest first"
            ))
        })?;
        Ok(files.put_chunk(&manifest, index, bytes, true)?)
    }

    /// Every file the records of `org` here refer to, with one record naming each.
    pub fn referenced_files(&self, org: OrgId) -> Result<Vec<(Hash, RecordKey)>, ServiceError> {
        let mut found = Vec::new();
        let mut seen = HashSet::new();
        for record in self.records().records_naming_files(org)? {
            for (_, file) in files_in(&record.state) {
                if seen.insert(file.hash) {
                    found.push((file.hash, (record.collection.clone(), record.id.clone())));
                }
            }
        }
        Ok(found)
    }

    /// Removes the files of `org` no record here refers to any more, once the grace
    /// period (`[files] grace`) has passed since the sweep first found them so.
    pub fn sweep_files(&self, org: OrgId) -> Result<Swept, ServiceError> {
        let referenced: HashSet<Hash> = self
            .referenced_files(org)?
            .into_iter()
            .map(|(h, _)| h)
            .collect();
        let grace = self.config.files.clone().unwrap_or_default().grace();
        let swept = self.files(org).sweep(&referenced, grace)?;
        if swept.files > 0 {
            tracing::info!(
                files = swept.files,
                bytes = swept.bytes,
                "files no record refers to any more were removed"
            );
        }
        Ok(swept)
    }

    /// The sweep, as an operator asks for it (`sitesync file sweep`).
    pub fn sweep_files_now(&self, actor: Actor, org: Option<&str>) -> Result<Swept, ServiceError> {
        actor.local("sweep this site's files")?;
        let org = self.org(org)?;
        self.sweep_files(org.id)
    }

    /// Satellite: the files of records held here that are not here whole, with a
    /// record naming each (what the file lane fetches).
    pub fn files_wanted(&self, org: OrgId) -> Result<Vec<(Hash, RecordKey)>, ServiceError> {
        let files = self.files(org);
        let mut wanted = Vec::new();
        for (hash, record) in self.referenced_files(org)? {
            if !files.is_whole(&hash)? {
                wanted.push((hash, record));
            }
        }
        Ok(wanted)
    }
}

/// A file's name as a record keeps it: the last part of a path, not empty.
fn file_name(name: &str) -> Result<String, ServiceError> {
    let name = name.rsplit(['/', '\\']).next().unwrap_or_default().trim();
    if name.is_empty() || name.len() > 255 || name.chars().any(char::is_control) {
        return Err(ServiceError::Input(format!(
            "{name:?} cannot name a file: give a name of 1 to 255 printable characters (--name)"
        )));
    }
    Ok(name.to_string())
}
