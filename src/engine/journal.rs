//! What survives a SIGKILL: the journal of pending undo steps, and the lock
//! that keeps two changing runs apart.
//!
//! The executor's unwind covers failures, Ctrl-C and panics, but not the OOM
//! killer, `kill -9` or a power cut. So before each guarded step runs, its
//! undo is written to `journal.json` in a root-only state directory and
//! fsynced; once the undo has run, it is taken out again. A journal that
//! still holds steps when the next run starts is what a killed run left:
//! `info` shows it, `recover` runs it, and every changing command refuses to
//! start until then. What cannot be covered: a kill between a step's effect
//! and the fsync that follows its undo leaves a step that `recover` runs a
//! second time, which is why undo steps are written to be repeatable.
//!
//! Every child started by a run carries the run's id in its environment, so
//! that `recover` can name (and stop) the children a killed run left behind:
//! an `apt-get` still installing from the archive, valgrind still running.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::engine::command::Cmd;
use crate::error::{Error, Result};
use crate::host::Host;
use crate::host::files::{self, create_private};

/// Where the journal and the lock live, under `--root`.
pub const STATE_DIR: &str = "/var/lib/wazo-astdebug";
/// The environment variable naming the run a child belongs to.
pub const RUN_ENV: &str = "WAZO_ASTDEBUG_RUN";
const JOURNAL: &str = "journal.json";
const LOCK: &str = "lock";
const JOURNAL_LIMIT: u64 = 4 << 20;

/// This run's id: pid and start time, unique on this machine.
pub fn run_id() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| {
        format!(
            "{}-{}",
            std::process::id(),
            chrono::Local::now().format("%Y%m%dT%H%M%S%.f")
        )
    })
}

pub struct StateDir {
    path: PathBuf,
}

/// The lock held by a run that changes the system; released when dropped or
/// when the process dies, however it dies.
pub struct RunLock {
    _file: File,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Journal {
    pub run: String,
    pub pid: u32,
    pub command: String,
    pub started: String,
    /// Innermost last.
    pub pending: Vec<Entry>,
}

/// The undo of one guarded step.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    /// The step it undoes, as the run log shows it.
    pub after: String,
    pub undo: Vec<Vec<String>>,
    /// When this path is gone, the step never ran or its undo had finished
    /// (a backup that only exists in between): there is nothing to undo.
    pub needs: Option<PathBuf>,
}

impl Entry {
    pub fn new(after: &Cmd, undo: &[Cmd], needs: Option<&Path>) -> Entry {
        Entry {
            after: after.to_string(),
            undo: undo.iter().map(Cmd::argv).collect(),
            needs: needs.map(Path::to_path_buf),
        }
    }

    pub fn commands(&self) -> Vec<Cmd> {
        self.undo
            .iter()
            .map(|argv| Cmd::new(argv.clone()))
            .collect()
    }

    /// False when [`Entry::needs`] names a path that is gone.
    pub fn still_needed(&self) -> bool {
        self.needs
            .as_deref()
            .is_none_or(|path| path.exists() || path.is_symlink())
    }
}

impl Journal {
    /// Whether the run that wrote it is still going (then it puts its
    /// steps back itself, and holds the lock meanwhile).
    pub fn is_live(&self) -> bool {
        let Ok(pid) = i32::try_from(self.pid) else {
            return false;
        };
        pid as u32 != std::process::id()
            && fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|comm| comm.trim_end() == "wazo-astdebug")
    }
}

impl StateDir {
    pub fn of(host: &Host) -> StateDir {
        StateDir {
            path: host.path(STATE_DIR),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Takes the one-run-at-a-time lock, or says who holds it. Never waits.
    pub fn lock(&self) -> Result<RunLock> {
        files::private_dir(&self.path)?;
        let path = self.path.join(LOCK);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)
            .map_err(|source| Error::OutputUnusable {
                path: path.clone(),
                source,
            })?;
        // SAFETY: flock(2) on a descriptor we own.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            let pid = pid.trim();
            return Err(Error::Busy {
                pid: if pid.is_empty() { "unknown" } else { pid }.to_string(),
            });
        }
        let _ = file.set_len(0);
        let _ = writeln!(file, "{}", std::process::id());
        Ok(RunLock { _file: file })
    }

    /// What an earlier run left, if anything.
    pub fn leftovers(&self) -> Result<Option<Journal>> {
        let path = self.path.join(JOURNAL);
        match fs::symlink_metadata(&path) {
            Ok(_) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            // Not root: the directory is closed to us, which is not "nothing left".
            Err(source) => return Err(Error::read(&path, source)),
        }
        files::check_private_dir(&self.path)?;
        let file = files::open_untrusted(&path)?;
        let mut bytes = Vec::new();
        file.take(JOURNAL_LIMIT)
            .read_to_end(&mut bytes)
            .map_err(|source| Error::read(&path, source))?;
        let journal: Journal = serde_json::from_slice(&bytes).map_err(|error| {
            Error::bad_input(format!(
                "{} is damaged ({error}); read it and put back by hand what it lists, \
                 then remove it",
                path.display()
            ))
        })?;
        Ok(Some(journal).filter(|journal| !journal.pending.is_empty()))
    }
}

/// The journal of this run, on disk after every change.
pub struct JournalFile {
    dir: PathBuf,
    journal: Journal,
}

impl JournalFile {
    /// A journal for this run, empty (nothing is written until a step is).
    pub fn new(state: &StateDir) -> JournalFile {
        JournalFile::adopt(state, Vec::new())
    }

    /// A journal for this run that takes over `pending` from a killed one.
    pub fn adopt(state: &StateDir, pending: Vec<Entry>) -> JournalFile {
        JournalFile {
            dir: state.path.clone(),
            journal: Journal {
                run: run_id().to_string(),
                pid: std::process::id(),
                command: std::env::args().collect::<Vec<_>>().join(" "),
                started: chrono::Local::now().to_rfc3339(),
                pending,
            },
        }
    }

    pub fn pending(&self) -> &[Entry] {
        &self.journal.pending
    }

    /// Records an undo before its step runs.
    pub fn push(&mut self, entry: Entry) -> Result<()> {
        self.journal.pending.push(entry);
        self.save()
    }

    /// Forgets the undo at `index`, once it has run (or its step did not).
    pub fn remove(&mut self, index: usize) -> Result<()> {
        if index < self.journal.pending.len() {
            self.journal.pending.remove(index);
        }
        self.save()
    }

    fn save(&self) -> Result<()> {
        let path = self.dir.join(JOURNAL);
        if self.journal.pending.is_empty() {
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => return Err(Error::write(&path, source)),
            }
            return sync_dir(&self.dir);
        }
        let next = self.dir.join(format!("{JOURNAL}.new"));
        let bytes = serde_json::to_vec_pretty(&self.journal)
            .map_err(|error| Error::Encode(error.to_string()))?;
        let mut file = create_private(&next)?;
        file.write_all(&bytes)
            .and_then(|()| file.sync_all())
            .map_err(|source| Error::write(&next, source))?;
        fs::rename(&next, &path).map_err(|source| Error::write(&path, source))?;
        sync_dir(&self.dir)
    }
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|dir| dir.sync_all())
        .map_err(|source| Error::write(dir, source))
}

/// A process a killed run started that still runs.
#[derive(Debug, Clone, Serialize)]
pub struct Orphan {
    pub pid: i32,
    pub group: i32,
    pub command: String,
}

/// The processes whose environment names `run`.
pub fn orphans(run: &str) -> Vec<Orphan> {
    let marker = format!("{RUN_ENV}={run}");
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for entry in entries.filter_map(|entry| entry.ok()) {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse::<i32>().ok())
        else {
            continue;
        };
        let environ = read_proc(&entry.path().join("environ"));
        if !environ
            .split(|&b| b == 0)
            .any(|var| var == marker.as_bytes())
        {
            continue;
        }
        let stat = String::from_utf8_lossy(&read_proc(&entry.path().join("stat"))).into_owned();
        // The fields after the command name, which is in parentheses and may hold spaces.
        let group = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(2)?.parse().ok())
            .unwrap_or(pid);
        let command = read_proc(&entry.path().join("cmdline"))
            .split(|&b| b == 0)
            .filter(|arg| !arg.is_empty())
            .map(|arg| String::from_utf8_lossy(arg).into_owned())
            .collect::<Vec<_>>()
            .join(" ");
        found.push(Orphan {
            pid,
            group,
            command,
        });
    }
    found.sort_by_key(|orphan| orphan.pid);
    found
}

fn read_proc(path: &Path) -> Vec<u8> {
    let mut bytes = Vec::new();
    if let Ok(file) = File::open(path) {
        let _ = file.take(1 << 20).read_to_end(&mut bytes);
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_journal_is_on_disk_while_a_step_is_pending_and_gone_after() {
        let root = tempfile::tempdir().unwrap();
        let state = StateDir::of(&Host::new(root.path().to_path_buf()));
        let _lock = state.lock().unwrap();
        let mut journal = JournalFile::new(&state);
        let undo = [Cmd::new(["wazo-dist", "-m", "pelican-bookworm"])];
        journal
            .push(Entry::new(&Cmd::new(["wazo-dist", "-a", "x"]), &undo, None))
            .unwrap();
        let left = state.leftovers().unwrap().unwrap();
        assert_eq!(
            left.pending[0].undo[0],
            ["wazo-dist", "-m", "pelican-bookworm"]
        );
        assert_eq!(left.pid, std::process::id());
        journal.remove(0).unwrap();
        assert!(state.leftovers().unwrap().is_none());
    }

    #[test]
    fn a_second_lock_is_refused_with_the_holders_pid() {
        let root = tempfile::tempdir().unwrap();
        let state = StateDir::of(&Host::new(root.path().to_path_buf()));
        let _held = state.lock().unwrap();
        let error = match state.lock() {
            Err(error) => error,
            Ok(_) => panic!("locked twice"),
        };
        assert!(
            error.to_string().contains(&std::process::id().to_string()),
            "{error}"
        );
        assert_eq!(error.exit_code(), 2);
    }
}
