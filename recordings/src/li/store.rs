//! Persistence of interception tasks: one JSON file, readable only by the daemon's user,
//! replaced atomically (write a temporary file with mode 0600, fsync, rename, fsync the
//! folder) so a crash leaves either the old or the new set, never half of one.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::task::{Task, TaskSpec};

/// Why the task file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("LI folder {}: {source}", path.display())]
    Dir { path: PathBuf, source: io::Error },
    #[error("LI task file {}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("LI task file {}: {reason}", path.display())]
    Corrupt { path: PathBuf, reason: String },
}

/// The task file inside the LI folder.
#[derive(Debug, Clone)]
pub(super) struct TaskStore {
    path: PathBuf,
}

impl TaskStore {
    /// Use `dir` (created with mode 0700 if missing; an existing folder is tightened to it).
    pub(super) fn open(dir: &Path) -> Result<TaskStore, StoreError> {
        let err = |source| StoreError::Dir {
            path: dir.to_path_buf(),
            source,
        };
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(err)?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(err)?;
        Ok(TaskStore {
            path: dir.join("tasks.json"),
        })
    }

    #[cfg(test)]
    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// The persisted tasks; none when the file does not exist yet.
    pub(super) fn load(&self) -> Result<Vec<Task>, StoreError> {
        let text = match fs::read(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(StoreError::Io {
                    path: self.path.clone(),
                    source,
                })
            }
        };
        let corrupt = |reason: String| StoreError::Corrupt {
            path: self.path.clone(),
            reason,
        };
        let specs: Vec<TaskSpec> =
            serde_json::from_slice(&text).map_err(|e| corrupt(e.to_string()))?;
        specs
            .into_iter()
            .map(|s| Task::new(s).map_err(|e| corrupt(e.to_string())))
            .collect()
    }

    /// Replace the file with `tasks`.
    pub(super) fn save<'a>(
        &self,
        tasks: impl Iterator<Item = &'a TaskSpec>,
    ) -> Result<(), StoreError> {
        let specs: Vec<&TaskSpec> = tasks.collect();
        let body = serde_json::to_vec_pretty(&specs).expect("task specs serialize");
        let io = |source| StoreError::Io {
            path: self.path.clone(),
            source,
        };
        let tmp = self.path.with_extension("json.tmp");
        let _ = fs::remove_file(&tmp);
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io)?;
        f.write_all(&body).and_then(|()| f.sync_all()).map_err(io)?;
        drop(f);
        fs::rename(&tmp, &self.path).map_err(io)?;
        if let Some(dir) = self.path.parent() {
            File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::li::task::{Destination, Target};
    use std::os::unix::fs::MetadataExt;

    fn spec(xid: &str) -> TaskSpec {
        TaskSpec {
            xid: xid.into(),
            target: Target {
                tag: Some("t".into()),
                ..Default::default()
            },
            destination: Destination::X3 {
                address: "127.0.0.1:7000".parse().unwrap(),
                tls: false,
            },
            correlation_id: 9,
            valid_from: Some(1),
            valid_until: None,
        }
    }

    #[test]
    fn save_load_modes_and_corruption() {
        let dir = std::env::temp_dir().join(format!("ngmedia-li-store-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let store = TaskStore::open(&dir.join("li")).unwrap();
        assert!(store.load().unwrap().is_empty());
        let a = spec("00000000-0000-0000-0000-000000000001");
        let b = spec("00000000-0000-0000-0000-000000000002");
        store.save([&a, &b].into_iter()).unwrap();
        let loaded: Vec<TaskSpec> = store.load().unwrap().into_iter().map(|t| t.spec).collect();
        assert_eq!(loaded, vec![a.clone(), b]);
        let meta = fs::metadata(store.path()).unwrap();
        assert_eq!(meta.mode() & 0o777, 0o600);
        assert_eq!(fs::metadata(dir.join("li")).unwrap().mode() & 0o777, 0o700);
        assert!(!store.path().with_extension("json.tmp").exists());
        store.save([&a].into_iter()).unwrap();
        assert_eq!(store.load().unwrap().len(), 1);
        fs::write(store.path(), b"[{\"xid\":1}]").unwrap();
        assert!(matches!(store.load(), Err(StoreError::Corrupt { .. })));
        fs::remove_dir_all(&dir).unwrap();
    }
}
