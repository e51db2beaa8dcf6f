//! Opening files as root without being steered by someone else's files.
//!
//! The tool runs as root on a server where other accounts own directories
//! it reads from (`/var/log/asterisk` belongs to the account Asterisk runs
//! as) and, sometimes, directories it is told to write to. A symlink planted
//! there would make root overwrite `/etc` or copy a root-only file into a
//! bundle meant for a bug tracker; a FIFO would block open(2) forever. So:
//! artefacts are created with `O_CREAT|O_EXCL|O_NOFOLLOW` in a directory
//! checked to be ours alone; inputs are opened with `O_NONBLOCK` (a FIFO
//! cannot hang the open) and refused after `fstat` on the opened descriptor
//! when they are not regular files; files read from directories others can
//! write are opened with `O_NOFOLLOW` too, and must belong to root, to us
//! or to the directory's owner. Every read of outside data has a bound.

use std::fs::{self, File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::host::sys::file_kind;

/// The most a text input (runbook, version file) may hold.
pub const TEXT_LIMIT: u64 = 16 << 20;

fn euid() -> u32 {
    // SAFETY: geteuid(2) cannot fail and touches no memory.
    unsafe { libc::geteuid() }
}

/// Creates `path` for writing, mode 0600, never through a symlink and never
/// into a file someone else made. A regular file of ours already there (the
/// same `-o` directory used twice) is replaced, not written into.
pub fn create_private(path: &Path) -> Result<File> {
    let open = || {
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(path)
    };
    match open() {
        Ok(file) => Ok(file),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
            let metadata =
                fs::symlink_metadata(path).map_err(|source| Error::write(path, source))?;
            if !metadata.is_file() || metadata.uid() != euid() || metadata.nlink() != 1 {
                return Err(Error::UnsafeFile {
                    path: path.to_path_buf(),
                    reason: format!(
                        "it already exists and is {} owned by {}{}; not writing through it",
                        file_kind(&metadata),
                        owner_name(metadata.uid()),
                        if metadata.nlink() > 1 {
                            ", with other hard links"
                        } else {
                            ""
                        }
                    ),
                });
            }
            fs::remove_file(path).map_err(|source| Error::write(path, source))?;
            open().map_err(|source| Error::write(path, source))
        }
        Err(source) => Err(Error::write(path, source)),
    }
}

/// Makes `dir` (and missing parents) mode 0700, or checks that the existing
/// one is a real directory of ours that no group or other account can write:
/// otherwise its owner could swap an artefact for a symlink between two runs.
pub fn private_dir(dir: &Path) -> Result<()> {
    match fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
    {
        Ok(()) => {}
        Err(source) => {
            return Err(Error::OutputUnusable {
                path: dir.to_path_buf(),
                source,
            });
        }
    }
    check_private_dir(dir)
}

/// The check of [`private_dir`], for a directory that must already exist.
pub fn check_private_dir(dir: &Path) -> Result<()> {
    let metadata = fs::symlink_metadata(dir).map_err(|source| Error::OutputUnusable {
        path: dir.to_path_buf(),
        source,
    })?;
    let unsafe_dir = |reason: String| {
        Err(Error::UnsafeFile {
            path: dir.to_path_buf(),
            reason,
        })
    };
    if !metadata.is_dir() {
        return unsafe_dir(format!("it is {}, not a directory", file_kind(&metadata)));
    }
    if metadata.uid() != euid() {
        return unsafe_dir(format!(
            "it belongs to {}, not to {}: give a directory of your own, or let the tool make one",
            owner_name(metadata.uid()),
            owner_name(euid())
        ));
    }
    if metadata.permissions().mode() & 0o022 != 0 {
        return unsafe_dir(format!(
            "its mode is {:o}: other accounts can write in it; `chmod go-w` it first",
            metadata.permissions().mode() & 0o7777
        ));
    }
    Ok(())
}

/// Opens an input the user named, following symlinks (the user chose the
/// path), refusing anything but a regular file before reading a byte.
pub fn open_input(path: &Path, hint: &str) -> Result<File> {
    open_checked(path, 0, hint)
}

/// Opens a file that lives where other accounts can write (a log directory,
/// a spool, a run directory): never through a symlink, and only when it
/// belongs to root, to us or to the directory's owner.
pub fn open_untrusted(path: &Path) -> Result<File> {
    let file = open_checked(path, libc::O_NOFOLLOW, "not reading it")?;
    let owner = file
        .metadata()
        .map_err(|source| Error::read(path, source))?
        .uid();
    let dir_owner = path
        .parent()
        .and_then(|dir| fs::metadata(dir).ok())
        .map(|metadata| metadata.uid());
    if owner != 0 && owner != euid() && Some(owner) != dir_owner {
        return Err(Error::UnsafeFile {
            path: path.to_path_buf(),
            reason: format!(
                "it belongs to {}, who does not own its directory; not reading it",
                owner_name(owner)
            ),
        });
    }
    Ok(file)
}

fn open_checked(path: &Path, flags: i32, hint: &str) -> Result<File> {
    if let Ok(metadata) = fs::symlink_metadata(path) {
        let followed = if metadata.file_type().is_symlink() && flags & libc::O_NOFOLLOW == 0 {
            fs::metadata(path).ok()
        } else {
            Some(metadata)
        };
        if let Some(metadata) = followed.filter(|metadata| !metadata.is_file()) {
            return Err(not_regular(path, &metadata, hint));
        }
    }
    // O_NONBLOCK: a FIFO swapped in after the check must not block the open.
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(flags | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(|source| match source.raw_os_error() {
            Some(libc::ELOOP) if flags & libc::O_NOFOLLOW != 0 => Error::NotARegularFile {
                path: path.to_path_buf(),
                kind: "a symbolic link".to_string(),
                hint: hint.to_string(),
            },
            _ => Error::read(path, source),
        })?;
    let metadata = file
        .metadata()
        .map_err(|source| Error::read(path, source))?;
    if !metadata.is_file() {
        return Err(not_regular(path, &metadata, hint));
    }
    // SAFETY: fcntl(2) on a descriptor we own; clearing O_NONBLOCK touches no memory.
    unsafe {
        let fd = file.as_raw_fd();
        let current = libc::fcntl(fd, libc::F_GETFL);
        if current >= 0 {
            libc::fcntl(fd, libc::F_SETFL, current & !libc::O_NONBLOCK);
        }
    }
    Ok(file)
}

fn not_regular(path: &Path, metadata: &fs::Metadata, hint: &str) -> Error {
    Error::NotARegularFile {
        path: path.to_path_buf(),
        kind: file_kind(metadata).to_string(),
        hint: hint.to_string(),
    }
}

/// Reads a whole input, refusing one longer than `limit` bytes rather than
/// filling the PBX's memory.
pub fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>> {
    let file = open_input(path, "not reading it")?;
    let mut bytes = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| Error::read(path, source))?;
    if bytes.len() as u64 > limit {
        return Err(Error::bad_input(format!(
            "{} is larger than {} MiB: not what it should be; not reading it",
            path.display(),
            limit >> 20
        )));
    }
    Ok(bytes)
}

/// A reader that fails once SIGINT, SIGTERM or SIGHUP has arrived, so that a
/// parser fed from it ends within a read of the signal whatever it does.
pub struct Interruptible<R>(pub R);

impl<R: Read> Read for Interruptible<R> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        if crate::host::sys::interrupted() {
            return Err(std::io::Error::other("interrupted by a signal"));
        }
        self.0.read(buffer)
    }
}

impl<R: std::io::BufRead> std::io::BufRead for Interruptible<R> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        if crate::host::sys::interrupted() {
            return Err(std::io::Error::other("interrupted by a signal"));
        }
        self.0.fill_buf()
    }

    fn consume(&mut self, amount: usize) {
        self.0.consume(amount);
    }
}

/// The error for a read that failed: the signal, when one arrived.
pub fn read_error(path: &Path, source: std::io::Error) -> Error {
    if crate::host::sys::interrupted() {
        Error::Interrupted
    } else {
        Error::read(path, source)
    }
}

/// A fresh directory only we can use, for files a program we start reads
/// or writes by name (valgrind's log and suppressions): never a shared
/// `/tmp` name another account could have planted.
pub fn fresh_private_dir(base: &Path, prefix: &str) -> Result<PathBuf> {
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .permissions(fs::Permissions::from_mode(0o700))
        .tempdir_in(base)
        .map_err(|source| Error::write(base, source))?;
    Ok(dir.keep())
}

/// The account name of `uid`, or the number.
pub fn owner_name(uid: u32) -> String {
    let Ok(passwd) = fs::read_to_string("/etc/passwd") else {
        return format!("uid {uid}");
    };
    passwd
        .lines()
        .find_map(|line| {
            let mut fields = line.split(':');
            let name = fields.next()?;
            let id = fields.nth(1)?;
            (id.parse::<u32>().ok()? == uid).then(|| format!("{name} (uid {uid})"))
        })
        .unwrap_or_else(|| format!("uid {uid}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_artefact_is_never_written_through_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        fs::write(&target, "keep").unwrap();
        let link = dir.path().join("run.log");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let error = create_private(&link).unwrap_err();
        assert!(matches!(error, Error::UnsafeFile { .. }), "{error}");
        assert_eq!(fs::read_to_string(&target).unwrap(), "keep");
    }

    #[test]
    fn a_file_of_ours_is_replaced_with_a_private_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.log");
        fs::write(&path, "old").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o666)).unwrap();
        drop(create_private(&path).unwrap());
        assert_eq!(fs::read(&path).unwrap(), b"");
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    #[test]
    fn special_files_are_refused_before_a_byte_is_read() {
        let error = open_input(Path::new("/dev/zero"), "give a file").unwrap_err();
        assert!(error.to_string().contains("a character device"), "{error}");
        assert_eq!(error.exit_code(), 2);
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let name = std::ffi::CString::new(fifo.to_string_lossy().as_bytes()).unwrap();
        // SAFETY: mkfifo(3) with a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o600) }, 0);
        let error = open_untrusted(&fifo).unwrap_err();
        assert!(error.to_string().contains("FIFO"), "{error}");
    }

    #[test]
    fn a_symlink_where_others_write_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("shadow");
        fs::write(&secret, "root only").unwrap();
        let full = dir.path().join("full");
        std::os::unix::fs::symlink(&secret, &full).unwrap();
        let error = open_untrusted(&full).unwrap_err();
        assert!(error.to_string().contains("a symbolic link"), "{error}");
        // A path the user typed may be a symlink: that is followed.
        assert!(open_input(&full, "").is_ok());
    }

    #[test]
    fn inputs_have_a_bound() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big");
        fs::write(&path, vec![b'x'; 2048]).unwrap();
        assert!(read_bounded(&path, 1024).is_err());
        assert_eq!(read_bounded(&path, 4096).unwrap().len(), 2048);
    }
}
