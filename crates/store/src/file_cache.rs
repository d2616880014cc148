//! The file cache (spec/ops.md §9): each file is fetched once, by the `file_reader` system
//! subject, and shared while anyone holds it; every acquire authorizes its own caller, so
//! one user's access (or denial) never leaks to the next. Reference-counted, no TTL: a
//! file leaves the cache when its last holder drops it. A failed fetch is not cached.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
};

use gatehouse_rbac::{Action, Subject};
use tokio::sync::OnceCell;
use uuid::Uuid;

use crate::{
    Store, authz::check_or_hide, error::Result, models::File, objects::file_object,
    system::file_reader,
};

type Slot = Arc<OnceCell<Arc<File>>>;

#[derive(Debug, Default)]
struct Entries {
    files: HashMap<Uuid, (Slot, usize)>,
}

/// A shared, reference-counted cache of file contents.
#[derive(Debug, Clone, Default)]
pub struct FileCache {
    entries: Arc<Mutex<Entries>>,
}

/// A held file. Dropping it releases the reference.
#[derive(Debug)]
pub struct CachedFile {
    file: Arc<File>,
    id: Uuid,
    slot: Slot,
    cache: FileCache,
}

impl std::ops::Deref for CachedFile {
    type Target = File;

    fn deref(&self) -> &File {
        &self.file
    }
}

impl Drop for CachedFile {
    fn drop(&mut self) {
        self.cache.release(self.id, &self.slot);
    }
}

impl FileCache {
    pub fn new() -> FileCache {
        FileCache::default()
    }

    /// How many files are held right now.
    pub fn len(&self) -> usize {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .files
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops one reference to `slot`; a purged or replaced entry is left alone.
    fn release(&self, id: Uuid, slot: &Slot) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((current, refs)) = entries.files.get_mut(&id)
            && Arc::ptr_eq(current, slot)
        {
            *refs -= 1;
            if *refs == 0 {
                entries.files.remove(&id);
            }
        }
    }

    /// Fetches (once) and returns a file the subject may read.
    pub async fn acquire(&self, store: &Store, subject: &Subject, id: Uuid) -> Result<CachedFile> {
        let slot = {
            let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
            let (slot, refs) = entries
                .files
                .entry(id)
                .or_insert_with(|| (Slot::default(), 0));
            *refs += 1;
            slot.clone()
        };
        // The reference is counted from here on; `held` releases it on every exit.
        let held = Held {
            cache: self,
            id,
            slot: slot.clone(),
            armed: true,
        };
        let file = match slot
            .get_or_try_init(|| async { store.file_by_id(file_reader(), id).await.map(Arc::new) })
            .await
        {
            Ok(file) => file.clone(),
            Err(e) => {
                // Failures are not cached: drop the entry even if others wait on it.
                let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
                if entries
                    .files
                    .get(&id)
                    .is_some_and(|(current, _)| Arc::ptr_eq(current, &slot))
                {
                    entries.files.remove(&id);
                }
                drop(entries);
                held.disarm();
                return Err(e);
            }
        };
        check_or_hide(subject, Action::Read, &file_object(&file))?;
        held.disarm();
        Ok(CachedFile {
            file,
            id,
            slot,
            cache: self.clone(),
        })
    }
}

/// Releases an acquired reference unless disarmed (on success, or when the entry was
/// purged).
struct Held<'a> {
    cache: &'a FileCache,
    id: Uuid,
    slot: Slot,
    armed: bool,
}

impl Held<'_> {
    fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.cache.release(self.id, &self.slot);
        }
    }
}
