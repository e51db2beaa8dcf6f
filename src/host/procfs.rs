//! Looking at a live process without stopping it: what the kernel shows in
//! /proc.
//!
//! gdb stops every thread of Asterisk while it reads them (seconds on a
//! busy PBX), so the first look at a freeze is taken here instead: for each
//! thread, `/proc/PID/task/TID/syscall` says whether it sleeps in `futex`
//! and on which word, and `/proc/PID/mem` holds the lock around that word
//! (a glibc mutex keeps its owner's LWP 8 bytes after it). Reading either
//! needs the right to ptrace-read the process (root), and never stops it:
//! the process's `TracerPid` stays 0 and no thread is ever `t` or `T`.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::host::addresses::{self, SymbolCache};
use crate::host::glibc::{self, LockLayout};

/// `futex` on x86-64.
pub const SYS_FUTEX: i64 = 202;

/// One thread, as /proc shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    pub tid: u32,
    /// The thread's name (`comm`), which Asterisk leaves as `asterisk`.
    pub name: String,
    /// The state letter: R running, S sleeping, D disk, T/t stopped, Z zombie.
    pub state: char,
    pub syscall: Syscall,
}

/// What `/proc/PID/task/TID/syscall` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Syscall {
    /// On a CPU, or between system calls.
    Running,
    /// Blocked in system call `number` with these arguments.
    Blocked { number: i64, args: Vec<u64> },
    /// The file could not be read or parsed (the thread exited, or no right).
    Unknown,
}

impl Task {
    /// A thread known by its system call alone.
    fn bare(tid: u32, syscall: Syscall) -> Task {
        Task {
            tid,
            name: String::new(),
            state: '?',
            syscall,
        }
    }
}

impl Syscall {
    /// Parses the file's one line: `202 0x7f... 0x80 0x2 0x0 ...`, or `running`,
    /// or `-1 sp pc` (not in a system call).
    pub fn parse(text: &str) -> Syscall {
        let mut words = text.split_whitespace();
        let Some(first) = words.next() else {
            return Syscall::Unknown;
        };
        if first == "running" {
            return Syscall::Running;
        }
        let Ok(number) = first.parse::<i64>() else {
            return Syscall::Unknown;
        };
        if number < 0 {
            return Syscall::Running;
        }
        let args = words
            .take(6)
            .filter_map(|word| {
                u64::from_str_radix(word.strip_prefix("0x").unwrap_or(word), 16).ok()
            })
            .collect();
        Syscall::Blocked { number, args }
    }

    /// The futex word and operation of a thread sleeping in `futex`.
    pub fn futex(&self) -> Option<(u64, u64)> {
        match self {
            Syscall::Blocked { number, args } if *number == SYS_FUTEX => {
                Some((*args.first()?, *args.get(1)?))
            }
            _ => None,
        }
    }
}

impl std::fmt::Display for Syscall {
    /// In words, for "has not moved (asleep in futex on 0x…)".
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Syscall::Running => f.write_str("on a CPU"),
            Syscall::Unknown => f.write_str("in an unknown state"),
            Syscall::Blocked { number, args } => {
                let name = syscall_name(*number);
                match (self.futex(), name) {
                    (Some((word, _)), _) => write!(f, "asleep in futex on 0x{word:x}"),
                    (None, Some(name)) => write!(f, "asleep in {name}"),
                    (None, None) => {
                        write!(f, "in system call {number}")?;
                        match args.first() {
                            Some(first) => write!(f, " (0x{first:x}, …)"),
                            None => Ok(()),
                        }
                    }
                }
            }
        }
    }
}

/// The name of the x86-64 system calls a blocked Asterisk thread sits in.
pub fn syscall_name(number: i64) -> Option<&'static str> {
    Some(match number {
        0 => "read",
        1 => "write",
        7 => "poll",
        23 => "select",
        34 => "pause",
        35 => "nanosleep",
        42 => "connect",
        43 => "accept",
        45 => "recvfrom",
        47 => "recvmsg",
        61 => "wait4",
        202 => "futex",
        230 => "clock_nanosleep",
        232 => "epoll_wait",
        270 => "pselect6",
        271 => "ppoll",
        281 => "epoll_pwait",
        288 => "accept4",
        _ => return None,
    })
}

/// A live process's threads, read without stopping it.
pub struct Process {
    pub pid: u32,
    mem: File,
    kept: std::cell::RefCell<Kept>,
    /// The places of the lock addresses threads kept waiting on, sample
    /// after sample (see [`Process::places_of_waited`]).
    places: std::cell::RefCell<HashMap<u64, String>>,
    /// The symbol tables of the files it maps, read once each.
    symbols: std::cell::RefCell<SymbolCache>,
    layout: std::cell::OnceCell<LockLayout>,
}

/// What `watch` keeps open between samples.
#[derive(Default)]
struct Kept {
    /// Each thread's `syscall` file, in tid order, read again from offset 0
    /// (the kernel regenerates it): an open and a close per thread were a
    /// third of a sample's cost.
    files: Vec<(u32, File)>,
    /// Whether `files` holds every thread of the last listing.
    complete: bool,
    /// The process's `stat`, for its number of threads.
    stat: Option<File>,
    /// That number at the last listing.
    count: Option<u64>,
}

/// Descriptors kept open for [`Process::syscalls`], at most: past it the
/// files are opened for each read (the limit on open files is shared with
/// the capture's children).
fn max_kept_open() -> usize {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit(2) writes into the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return 0;
    }
    usize::try_from(limit.rlim_cur)
        .unwrap_or(usize::MAX)
        .saturating_sub(256)
        .min(1 << 16)
}

/// Raises this process's soft limit on open files to its hard limit (at
/// most 65536 + 256), so that `watch` can keep a thread's file open per
/// thread of a large Asterisk.
pub fn raise_open_files_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit(2) read and write the struct we own.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
            limit.rlim_cur = limit.rlim_max.min((1 << 16) + 256);
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

impl Process {
    /// Opens `/proc/PID/mem`; refuses clearly when the kernel does not let us.
    pub fn open(pid: u32) -> Result<Process> {
        let path = PathBuf::from(format!("/proc/{pid}/mem"));
        let mem = File::open(&path).map_err(|error| match error.raw_os_error() {
            Some(libc::EACCES) | Some(libc::EPERM) => Error::bad_input(format!(
                "cannot read the memory of pid {pid} ({error}): reading another process's \
                 threads needs root (and a Yama ptrace_scope that allows it, see \
                 /proc/sys/kernel/yama/ptrace_scope)"
            )),
            Some(libc::ENOENT) | Some(libc::ESRCH) => {
                Error::bad_input(format!("no process with pid {pid} on this machine"))
            }
            _ => Error::read(&path, error),
        })?;
        Ok(Process {
            pid,
            mem,
            kept: Default::default(),
            places: Default::default(),
            symbols: Default::default(),
            layout: Default::default(),
        })
    }

    /// Every thread, in tid order: its system call, and its state only
    /// when the process is held (traced or stopped: then a thread's `t` or
    /// `T` is worth saying). One file per thread: `comm` and `stat` for
    /// each of a thousand threads tripled the reading, and Asterisk leaves
    /// its threads' names as its own (see [`Process::thread_name`]).
    pub fn tasks(&self) -> Result<Vec<Task>> {
        let mut tasks = self.list_tasks(false)?;
        if self.held() {
            let dir = PathBuf::from(format!("/proc/{}/task", self.pid));
            for task in &mut tasks {
                let stat = read_small(&dir.join(format!("{}/stat", task.tid)));
                if let Some((name, state)) = stat.as_deref().and_then(name_and_state) {
                    task.name = name.to_string();
                    task.state = state;
                }
            }
        }
        Ok(tasks)
    }

    /// Every thread's system call alone, in tid order (names empty, states
    /// `?`), for `watch`, which samples every few seconds for days: each
    /// thread's file stays open between samples, and the thread directory
    /// is listed again only when the number of threads changed or a thread
    /// has gone.
    pub fn syscalls(&self) -> Result<Vec<Task>> {
        self.list_tasks(true)
    }

    /// Thread `tid`'s name (`comm`), for the few threads a graph shows.
    pub fn thread_name(&self, tid: u32) -> Option<String> {
        read_small(&PathBuf::from(format!(
            "/proc/{}/task/{tid}/comm",
            self.pid
        )))
        .map(|name| name.trim().to_string())
    }

    /// Whether a debugger traces the process or a signal stopped it, by its
    /// main thread (both hold every thread).
    fn held(&self) -> bool {
        let Some(status) = read_small(&PathBuf::from(format!("/proc/{}/status", self.pid))) else {
            return false;
        };
        status.lines().any(|line| {
            line.strip_prefix("TracerPid:")
                .is_some_and(|pid| pid.trim() != "0")
                || line.strip_prefix("State:").is_some_and(|state| {
                    matches!(state.trim_start().chars().next(), Some('t' | 'T'))
                })
        })
    }

    /// The number of threads, from the process's `stat` (kept open).
    fn thread_count(&self, kept: &mut Kept) -> Option<u64> {
        if kept.stat.is_none() {
            kept.stat = File::open(format!("/proc/{}/stat", self.pid)).ok();
        }
        let mut bytes = [0u8; 1024];
        let length = kept.stat.as_ref()?.read_at(&mut bytes, 0).ok()?;
        let text = std::str::from_utf8(bytes.get(..length)?).ok()?;
        // After the name in parentheses: state is field 3, num_threads 20.
        text.rsplit_once(')')?
            .1
            .split_whitespace()
            .nth(17)?
            .parse()
            .ok()
    }

    fn list_tasks(&self, keep: bool) -> Result<Vec<Task>> {
        let mut kept = self.kept.borrow_mut();
        let count = if keep {
            self.thread_count(&mut kept)
        } else {
            None
        };
        if count.is_some() && count == kept.count && kept.complete {
            let mut tasks = Vec::with_capacity(kept.files.len());
            for (tid, file) in &kept.files {
                match read_syscall(file) {
                    Some(syscall) => tasks.push(Task::bare(*tid, syscall)),
                    // Gone (its file says ESRCH): list the directory again.
                    None => break,
                }
            }
            if tasks.len() == kept.files.len() {
                return Ok(tasks);
            }
        }
        let dir = PathBuf::from(format!("/proc/{}/task", self.pid));
        let entries = fs::read_dir(&dir).map_err(|error| Error::read(&dir, error))?;
        // Each file is opened relative to the task directory: a path from
        // / costs a lookup of every component, a thousand times a sample.
        let task_dir = File::open(&dir).ok();
        let mut tids: Vec<u32> = entries
            .flatten()
            .filter_map(|entry| entry.file_name().to_str()?.parse().ok())
            .collect();
        tids.sort_unstable();
        let cap = if keep { max_kept_open() } else { 0 };
        let old = std::mem::take(&mut kept.files);
        let mut old = old.into_iter().peekable();
        let mut files = Vec::new();
        let mut tasks = Vec::with_capacity(tids.len());
        for tid in tids {
            // Both lists in tid order: the kept file of `tid`, if any.
            while old.next_if(|(kept_tid, _)| *kept_tid < tid).is_some() {}
            let file = match old.next_if(|(kept_tid, _)| *kept_tid == tid) {
                Some((_, file)) => Some(file),
                None => match &task_dir {
                    Some(task_dir) => open_at(task_dir, &format!("{tid}/syscall")),
                    None => File::open(dir.join(format!("{tid}/syscall"))).ok(),
                },
            };
            let syscall = file.as_ref().and_then(read_syscall);
            let readable = syscall.is_some();
            tasks.push(Task::bare(tid, syscall.unwrap_or(Syscall::Unknown)));
            if let Some(file) = file.filter(|_| readable && files.len() < cap) {
                files.push((tid, file));
            }
        }
        kept.complete = keep && files.len() == tasks.len();
        kept.files = files;
        kept.count = count;
        Ok(tasks)
    }
    /// How many times thread `tid` was switched out so far (voluntary and
    /// not): unchanged between two readings, it has not run in between.
    pub fn switches(&self, tid: u32) -> Option<u64> {
        let status = read_small(&PathBuf::from(format!(
            "/proc/{}/task/{tid}/status",
            self.pid
        )))?;
        let mut total = 0u64;
        let mut found = false;
        for line in status.lines() {
            if let Some(value) = line
                .strip_prefix("voluntary_ctxt_switches:")
                .or_else(|| line.strip_prefix("nonvoluntary_ctxt_switches:"))
            {
                total = total.saturating_add(value.trim().parse().ok()?);
                found = true;
            }
        }
        found.then_some(total)
    }

    /// A little-endian 32-bit word of the process's memory.
    pub fn read_u32(&self, address: u64) -> Option<u32> {
        let mut bytes = [0u8; 4];
        self.mem.read_exact_at(&mut bytes, address).ok()?;
        Some(u32::from_le_bytes(bytes))
    }

    /// Words of the process's memory, each read once however often asked:
    /// the idle threads of a pool sleep on one condition variable, whose
    /// words every one of them would read again (a read of /proc/PID/mem
    /// walks the target's mappings). For one reading: memory moves on.
    pub fn word_cache(&self) -> WordCache<'_> {
        WordCache {
            process: self,
            words: Default::default(),
        }
    }

    /// What file descriptor `fd` is, in words: `a socket`, `a pipe`, a path.
    pub fn fd_kind(&self, fd: u64) -> Option<String> {
        let target = fs::read_link(format!("/proc/{}/fd/{fd}", self.pid)).ok()?;
        let target = target.to_string_lossy();
        Some(if target.starts_with("socket:") {
            "a socket".to_string()
        } else if target.starts_with("pipe:") {
            "a pipe".to_string()
        } else if let Some(kind) = target.strip_prefix("anon_inode:") {
            format!("an {}", kind.trim_matches(['[', ']']))
        } else {
            target.to_string()
        })
    }

    /// Where `address` is, in words (`agents_lock (res_foo.so)`,
    /// `res_foo.so .bss+0x120`, `heap`), from `maps` (of this process) and
    /// the symbol tables of the files they map.
    pub fn name_of(&self, maps: &[Mapping], address: u64) -> Option<String> {
        addresses::name(&mut self.symbols.borrow_mut(), self.pid, maps, address)
    }

    /// The name gdb would give `address` (`agents_lock`), else where it is
    /// in words, as [`Process::name_of`]: for gdb's reading, named after it.
    pub fn symbol_of(&self, maps: &[Mapping], address: u64) -> Option<String> {
        addresses::symbol_or_place(&mut self.symbols.borrow_mut(), self.pid, maps, address)
    }

    /// [`Process::name_of`] for the lock addresses of one sample, the
    /// mappings read only when one of them is new: a thread waiting on an
    /// address keeps it mapped, so its place holds while it stays waited
    /// on; one no longer asked for is forgotten (a module unloaded, another
    /// mapped there, must not inherit its name). The maps of a thousand
    /// threads are two thousand lines: not worth reading at every sample
    /// of a freeze.
    pub fn places_of_waited(&self, addresses: &[u64]) -> HashMap<u64, String> {
        let mut places = self.places.borrow_mut();
        places.retain(|address, _| addresses.contains(address));
        if addresses
            .iter()
            .any(|address| !places.contains_key(address))
        {
            let maps = self.maps();
            for &address in addresses {
                places
                    .entry(address)
                    .or_insert_with(|| self.name_of(&maps, address).unwrap_or_default());
            }
        }
        places.clone()
    }

    /// Whether its glibc keeps lock owners where the reading looks (told
    /// once: a process does not change its libc).
    pub fn lock_layout(&self) -> &LockLayout {
        self.layout
            .get_or_init(|| glibc::lock_layout(self.pid, &self.maps()))
    }

    /// [`Process::lock_layout`], from mappings already read.
    pub fn lock_layout_from(&self, maps: &[Mapping]) -> &LockLayout {
        self.layout
            .get_or_init(|| glibc::lock_layout(self.pid, maps))
    }

    /// The process's mappings, for naming addresses.
    pub fn maps(&self) -> Vec<Mapping> {
        read_bounded(
            &PathBuf::from(format!("/proc/{}/maps", self.pid)),
            MAPS_LIMIT,
        )
        .map(|text| text.lines().filter_map(Mapping::parse).collect())
        .unwrap_or_default()
    }
}

/// See [`Process::word_cache`].
pub struct WordCache<'a> {
    process: &'a Process,
    words: std::cell::RefCell<std::collections::HashMap<u64, Option<u32>>>,
}

impl WordCache<'_> {
    pub fn read(&self, address: u64) -> Option<u32> {
        *self
            .words
            .borrow_mut()
            .entry(address)
            .or_insert_with(|| self.process.read_u32(address))
    }
}

/// One line of /proc/PID/maps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    pub start: u64,
    pub end: u64,
    /// `rw-p` and the like.
    pub perms: String,
    pub offset: u64,
    /// The file's inode (0 for anonymous memory): the file now at `path`
    /// may not be the one mapped (a package upgraded under a running
    /// Asterisk).
    pub inode: u64,
    /// The file, `[heap]`, `[stack]`, or empty for anonymous memory.
    pub path: String,
}

impl Mapping {
    pub fn parse(line: &str) -> Option<Mapping> {
        let mut words = line.split_whitespace();
        let (start, end) = words.next()?.split_once('-')?;
        let perms = words.next()?.to_string();
        let offset = words.next()?;
        let _device = words.next()?;
        let inode = words.next()?.parse().ok()?;
        let path = words.collect::<Vec<_>>().join(" ");
        Some(Mapping {
            start: u64::from_str_radix(start, 16).ok()?,
            end: u64::from_str_radix(end, 16).ok()?,
            perms,
            offset: u64::from_str_radix(offset, 16).ok()?,
            inode,
            path,
        })
    }
}

/// About how many bytes a core of the process takes: its writable and
/// anonymous memory (what gcore writes; code is read from the files).
pub fn core_size_estimate(maps: &[Mapping]) -> u64 {
    maps.iter()
        .filter(|m| m.perms.contains('w') || !m.path.starts_with('/'))
        .filter(|m| m.path != "[vsyscall]" && m.path != "[vvar]")
        .map(|m| m.end.saturating_sub(m.start))
        .sum()
}

/// Bytes free on the file system of `path` (what a non-root writer gets; root may use a little more).
pub fn free_space(path: &std::path::Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs(3) writes into the struct we own; the path is NUL-terminated.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    let result = unsafe { libc::statvfs(c_path.as_ptr(), &mut stat) };
    (result == 0).then(|| stat.f_bavail.saturating_mul(stat.f_frsize))
}

/// Where `address` is, in words: `res_foo.so+0x4340`, `heap`, or None.
pub fn place(maps: &[Mapping], address: u64) -> Option<String> {
    let mapping = maps
        .iter()
        .find(|m| m.start <= address && address < m.end)?;
    if mapping.path.starts_with('/') {
        // The file's load base: its lowest mapping minus that mapping's offset.
        let base = maps
            .iter()
            .filter(|m| m.path == mapping.path)
            .map(|m| m.start.saturating_sub(m.offset))
            .min()
            .unwrap_or(mapping.start);
        let name = mapping.path.rsplit('/').next().unwrap_or(&mapping.path);
        return Some(format!("{name}+0x{:x}", address - base));
    }
    match mapping.path.as_str() {
        "[heap]" => Some("heap".to_string()),
        "" => Some("anonymous memory".to_string()),
        other => Some(other.trim_matches(['[', ']']).to_string()),
    }
}

/// A thread's system call, read through its open `syscall` file; None
/// when the thread has gone.
fn read_syscall(file: &File) -> Option<Syscall> {
    let mut bytes = [0u8; 256];
    let length = file
        .read_at(&mut bytes, 0)
        .ok()
        .filter(|length| *length > 0)?;
    let text = std::str::from_utf8(bytes.get(..length)?).ok()?;
    Some(Syscall::parse(text))
}

/// `comm` and the state letter of a `stat` line.
fn name_and_state(stat: &str) -> Option<(&str, char)> {
    let (head, rest) = stat.rsplit_once(')')?;
    let name = head.split_once('(')?.1;
    Some((name, rest.trim_start().chars().next()?))
}

/// Opens `relative` under directory `dir`, read-only.
fn open_at(dir: &File, relative: &str) -> Option<File> {
    use std::os::fd::{AsRawFd, FromRawFd};
    let name = std::ffi::CString::new(relative).ok()?;
    // SAFETY: openat(2) on a directory descriptor we own and a
    // NUL-terminated name; the descriptor returned is owned by the File.
    let fd = unsafe {
        libc::openat(
            dir.as_raw_fd(),
            name.as_ptr(),
            libc::O_RDONLY | libc::O_CLOEXEC,
        )
    };
    // SAFETY: fd was just opened and is not owned elsewhere.
    (fd >= 0).then(|| unsafe { File::from_raw_fd(fd) })
}

/// A /proc file of a few lines, read with a bound.
fn read_small(path: &std::path::Path) -> Option<String> {
    read_bounded(path, 64 * 1024)
}

/// The most of /proc/PID/maps read: two lines per thread (its stack and
/// guard page), so a thousand threads are past 150 KiB, and the libraries
/// come after the stacks.
const MAPS_LIMIT: u64 = 32 << 20;

fn read_bounded(path: &std::path::Path, limit: u64) -> Option<String> {
    let mut text = String::new();
    File::open(path)
        .ok()?
        .take(limit)
        .read_to_string(&mut text)
        .ok()?;
    Some(text)
}

#[cfg(test)]
mod tests;
