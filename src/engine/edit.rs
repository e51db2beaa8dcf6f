//! A file edit as a plan step: the new content is computed from what the file
//! holds when the step runs, so a preview, the `--dry-run` script and the real
//! run agree. Backups and their guaranteed restore are `engine::backup`.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::engine::command::Cmd;
use crate::error::{Error, Result};

/// Computes a file's new text from its current text; `Err` with a message
/// saying why the file cannot be edited safely.
pub type Transform = Arc<dyn Fn(&str) -> std::result::Result<String, String> + Send + Sync>;

/// Rewrites one file in place from what it holds when the step runs.
#[derive(Clone)]
pub struct FileEdit {
    path: PathBuf,
    description: String,
    transform: Transform,
    /// The same edit as a command, for the `--dry-run` script.
    shell: Option<Cmd>,
}

impl fmt::Debug for FileEdit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileEdit")
            .field("path", &self.path)
            .field("description", &self.description)
            .finish_non_exhaustive()
    }
}

impl FileEdit {
    pub fn new(
        path: impl Into<PathBuf>,
        description: impl Into<String>,
        transform: impl Fn(&str) -> std::result::Result<String, String> + Send + Sync + 'static,
    ) -> FileEdit {
        FileEdit {
            path: path.into(),
            description: description.into(),
            transform: Arc::new(transform),
            shell: None,
        }
    }

    /// The command a script runs to make the same edit (`sed -i …`).
    pub fn with_shell(mut self, cmd: Cmd) -> FileEdit {
        self.shell = Some(cmd);
        self
    }

    pub fn shell(&self) -> Option<&Cmd> {
        self.shell.as_ref()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn description(&self) -> &str {
        &self.description
    }

    /// What the file would hold after the edit, without writing it.
    pub fn preview(&self) -> Result<String> {
        let bytes = std::fs::read(&self.path).map_err(|source| Error::read(&self.path, source))?;
        let text = String::from_utf8(bytes).map_err(|_| {
            Error::bad_input(format!(
                "{} is not UTF-8 text; not editing it",
                self.path.display()
            ))
        })?;
        (self.transform)(&text).map_err(|message| {
            Error::bad_input(format!("cannot edit {}: {message}", self.path.display()))
        })
    }

    /// Rewrites the file in place (same inode, so owner and mode stay).
    pub fn apply(&self) -> Result<()> {
        let new = self.preview()?;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&self.path)
            .map_err(|source| Error::write(&self.path, source))?;
        file.write_all(new.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|source| Error::write(&self.path, source))
    }
}
