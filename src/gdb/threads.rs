//! What gdb's lock analysis says about a process's threads, and the views
//! built from it: who waits for which lock, and where threads are stuck.
//!
//! A frozen Asterisk has hundreds of threads; reading hundreds of stacks is
//! how freezes go undiagnosed at night. Grouping identical stacks ("112
//! threads in ast_cond_wait <- ...") shows in one screen where it is stuck.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// The JSON object `gdb_locks.py` writes.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Analysis {
    pub pid: Option<i64>,
    #[serde(default)]
    pub current_thread: Option<u32>,
    #[serde(default)]
    pub signal: Option<Signal>,
    #[serde(default)]
    pub threads: Vec<Thread>,
    #[serde(default)]
    pub errors: Vec<String>,
    /// Live: the shared objects gdb was made to read the symbols of, those
    /// the threads' frames are in, of those mapped.
    #[serde(default)]
    pub solibs: Option<Solibs>,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize)]
pub struct Solibs {
    /// Those gdb has the symbols of: the frames' libraries, and libc.
    pub read: usize,
    pub mapped: usize,
    /// The script fell back to loading every one, as bare gdb does.
    #[serde(default)]
    pub all: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Signal {
    pub number: i32,
    pub code: i32,
    #[serde(default)]
    pub address: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Thread {
    pub num: u32,
    pub lwp: i64,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub start: Option<String>,
    #[serde(default)]
    pub frames: Vec<Frame>,
    #[serde(default)]
    pub waits: Option<Wait>,
    /// The taskprocessor task it runs, when a frame is `ast_taskprocessor_execute`.
    #[serde(default)]
    pub task: Option<Task>,
}

/// What memory says about the taskprocessor a thread runs a task of.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct Task {
    /// The index of the `ast_taskprocessor_execute` frame.
    #[serde(default)]
    pub frame: usize,
    /// `tps->name`, read with debug symbols.
    #[serde(default)]
    pub name: Option<String>,
    /// Without symbols: the C strings at each pointer the frame holds.
    #[serde(default)]
    pub candidates: Vec<TaskCandidate>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct TaskCandidate {
    pub strings: Vec<String>,
    /// That memory also holds the thread's own pthread_t, as a taskprocessor
    /// does while one of its tasks runs.
    #[serde(default, rename = "self")]
    pub holds_self: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Frame {
    pub function: String,
    #[serde(default)]
    pub pc: Option<String>,
    #[serde(default)]
    pub file: Option<String>,
    #[serde(default)]
    pub line: Option<u32>,
    #[serde(default)]
    pub no_symbols: bool,
    /// The file the pc is in (the executable or a shared object), and the
    /// pc's offset from that file's load base: what `addr2line -e` takes.
    #[serde(default)]
    pub object: Option<String>,
    #[serde(default)]
    pub offset: Option<String>,
}

/// A lock a thread is blocked on.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Wait {
    /// `mutex` or `rwlock`.
    pub kind: String,
    /// For a rwlock: `read` or `write`.
    #[serde(default)]
    pub mode: Option<String>,
    #[serde(default)]
    pub address: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    /// The LWP of the mutex owner or rwlock writer, when memory says.
    #[serde(default)]
    pub owner_lwp: Option<i64>,
    #[serde(default, rename = "where")]
    pub site: Option<Site>,
    /// For a rwlock: how many readers glibc counts (it never says which threads).
    #[serde(default)]
    pub readers: Option<u32>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Site {
    #[serde(default)]
    pub file: Option<String>,
    #[serde(default)]
    pub line: Option<u32>,
    #[serde(default)]
    pub function: Option<String>,
    #[serde(default)]
    pub object: Option<String>,
    #[serde(default)]
    pub offset: Option<String>,
}

/// `res_foo.so+0x1229`: a place without a symbol, as `addr2line` takes it.
fn object_offset(object: Option<&str>, offset: Option<&str>) -> Option<String> {
    let object = object?;
    let name = object.rsplit('/').next().unwrap_or(object);
    Some(match offset {
        Some(offset) => format!("{name}+{offset}"),
        None => name.to_string(),
    })
}

impl Site {
    /// The function, or where it is when it has no symbol (`res_foo.so+0x1229`).
    pub fn function_or_place(&self) -> Option<String> {
        match self.function.as_deref() {
            Some(function) if function != "??" => Some(function.to_string()),
            _ => object_offset(self.object.as_deref(), self.offset.as_deref()),
        }
    }
}

impl Frame {
    /// `function (file.c:12)`, `function`, or `?? (res_foo.so+0x1229)`.
    pub fn describe(&self) -> String {
        match (&self.file, self.line) {
            (Some(file), Some(line)) => format!("{} ({file}:{line})", self.function),
            _ => self.short(),
        }
    }

    /// The function's name, or for a frame without one, its file and offset.
    pub fn short(&self) -> String {
        if self.function != "??" {
            return self.function.clone();
        }
        match object_offset(self.object.as_deref(), self.offset.as_deref()) {
            Some(place) => format!("?? ({place})"),
            None => "??".to_string(),
        }
    }

    /// A name for labels: the function, else `res_foo.so+0x1229`.
    fn name_or_place(&self) -> Option<String> {
        if self.function != "??" {
            return Some(readable_name(&self.function).to_string());
        }
        object_offset(self.object.as_deref(), self.offset.as_deref())
    }

    /// In the C library or the dynamic loader: how a thread waits or starts,
    /// not what it does.
    pub fn in_libc(&self) -> bool {
        self.object.as_deref().is_some_and(|object| {
            let name = object.rsplit('/').next().unwrap_or(object);
            name.starts_with("libc.so")
                || name.starts_with("libpthread")
                || name.starts_with("ld-linux")
        })
    }

    fn is_lock_or_plumbing(&self) -> bool {
        let name = readable_name(&self.function);
        is_plumbing(name) || is_lock_call(name)
    }
}

/// Functions that only start a thread.
fn is_starter(name: &str) -> bool {
    matches!(
        name,
        "clone" | "clone3" | "start_thread" | "dummy_start" | "thread_start"
    )
}

/// Lock calls: the thread is blocked in one, the label should say in what code.
fn is_lock_call(name: &str) -> bool {
    name.starts_with("pthread_mutex_")
        || name.starts_with("pthread_rwlock_")
        || name.starts_with("ast_pthread_mutex")
        || name.starts_with("ast_rwlock_")
        || matches!(name, "ao2_lock" | "ao2_rdlock" | "ao2_wrlock")
}

impl Analysis {
    /// Names the locks gdb left unnamed with `name` (of an address), each
    /// address asked once: gdb names none of a live process's (an `info
    /// symbol` per lock would be paid while Asterisk is stopped). Returns
    /// how many waits were named.
    pub fn name_locks(&mut self, name: &mut dyn FnMut(u64) -> Option<String>) -> usize {
        let mut names: HashMap<u64, Option<String>> = HashMap::new();
        let mut named = 0;
        for wait in self.threads.iter_mut().filter_map(|t| t.waits.as_mut()) {
            if wait.name.as_deref().is_some_and(|name| !name.is_empty()) {
                continue;
            }
            let Some(address) = wait.address.as_deref().and_then(parse_address) else {
                continue;
            };
            let found = names.entry(address).or_insert_with(|| name(address));
            if let Some(found) = found {
                wait.name = Some(found.clone());
                named += 1;
            }
        }
        named
    }
}

/// `0x7f00...` as gdb's script writes an address.
fn parse_address(text: &str) -> Option<u64> {
    u64::from_str_radix(text.strip_prefix("0x")?, 16).ok()
}

impl Thread {
    /// A short label: `LWP 1234 (what)`, see [`Thread::what`].
    pub fn label(&self) -> String {
        match self.what() {
            Some(what) => format!("LWP {} ({what})", self.lwp),
            None => format!("LWP {}", self.lwp),
        }
    }

    /// What the thread is: the function it was started with (past the
    /// trampolines, the C library and lock calls); without symbols, the first
    /// frame of Asterisk's own code, as `res_foo.so+0x1229`; else gdb's name.
    pub fn what(&self) -> Option<String> {
        let started_with = self
            .frames
            .iter()
            .rev()
            .filter(|frame| frame.function != "??" && !frame.in_libc())
            .map(|frame| readable_name(&frame.function))
            .find(|name| !is_starter(name) && !is_plumbing(name) && !is_lock_call(name));
        if let Some(name) = started_with {
            return Some(name.to_string());
        }
        self.frames
            .iter()
            .find(|frame| {
                !frame.in_libc() && !frame.is_lock_or_plumbing() && frame.object.is_some()
            })
            .and_then(Frame::name_or_place)
            .or_else(|| self.start.clone())
            .or_else(|| self.name.clone())
    }
}

/// Threads whose stacks are the same, function for function.
#[derive(Debug, Clone, Serialize)]
pub struct StackGroup {
    pub count: usize,
    pub functions: Vec<String>,
    pub lwps: Vec<i64>,
}

/// Groups threads by identical stacks, largest group first.
pub fn stack_groups(threads: &[Thread]) -> Vec<StackGroup> {
    let mut groups: Vec<StackGroup> = Vec::new();
    let mut index: HashMap<Vec<String>, usize> = HashMap::new();
    for thread in threads {
        // Frames without a symbol are told apart by where they are, or two
        // different stacks would print the same.
        let functions: Vec<String> = thread.frames.iter().map(Frame::short).collect();
        match index.get(&functions) {
            Some(&at) => {
                groups[at].count += 1;
                groups[at].lwps.push(thread.lwp);
            }
            None => {
                index.insert(functions.clone(), groups.len());
                groups.push(StackGroup {
                    count: 1,
                    functions,
                    lwps: vec![thread.lwp],
                });
            }
        }
    }
    // Stable: equal counts keep gdb's thread order.
    groups.sort_by_key(|group| std::cmp::Reverse(group.count));
    groups
}

/// "112 threads in ast_cond_wait <- ast_taskprocessor_execute <- ..."
pub fn describe_group(group: &StackGroup, depth: usize) -> String {
    let mut readable: Vec<&str> = Vec::new();
    for function in group
        .functions
        .iter()
        .map(|function| readable_name(function))
    {
        let libc_place = function.starts_with("?? (libc.so")
            || function.starts_with("?? (libpthread")
            || function.starts_with("?? (ld-linux");
        if function != "??"
            && !libc_place
            && !is_plumbing(function)
            && readable.last() != Some(&function)
        {
            readable.push(function);
        }
    }
    let more = if readable.len() > depth {
        " <- ..."
    } else {
        ""
    };
    let shown = &readable[..readable.len().min(depth)];
    let noun = if group.count == 1 {
        "thread"
    } else {
        "threads"
    };
    let stack = if shown.is_empty() {
        "frames without symbols".to_string()
    } else {
        shown.join(" <- ")
    };
    format!("{} {noun} in {stack}{more}", group.count)
}

/// `__GI___pthread_mutex_lock` -> `pthread_mutex_lock`: glibc's aliases
/// differ across releases, the call they stand for does not.
fn readable_name(function: &str) -> &str {
    let name = function.trim_start_matches('_');
    let name = name.strip_prefix("GI_").unwrap_or(name);
    name.trim_start_matches('_')
}

/// glibc's frames under a blocking call (futex waits, lll_ helpers,
/// `*_common`): they say how it waits, not what for.
fn is_plumbing(name: &str) -> bool {
    name.contains("futex")
        || name.starts_with("lll_")
        || name.ends_with("_common")
        || name.ends_with("_common64")
        || name.ends_with("_full64")
        || name == "syscall"
}

/// A signal number in words, as a crash summary needs it.
pub fn signal_name(number: i32) -> &'static str {
    match number {
        4 => "SIGILL (illegal instruction)",
        6 => "SIGABRT (abort: an assertion, a freeze watchdog or a double free)",
        7 => "SIGBUS (bus error)",
        8 => "SIGFPE (arithmetic error)",
        11 => "SIGSEGV (segmentation fault: a bad memory access)",
        _ => "a signal",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unnamed_locks_are_named_once_per_address() {
        let mut analysis: Analysis = serde_json::from_str(
            r#"{"pid": 1, "threads": [
                {"num": 1, "lwp": 10, "waits": {"kind": "mutex", "address": "0x4040"}},
                {"num": 2, "lwp": 11, "waits": {"kind": "mutex", "address": "0x4040", "name": null}},
                {"num": 3, "lwp": 12, "waits": {"kind": "mutex", "address": "0x9000", "name": "by_gdb"}},
                {"num": 4, "lwp": 13, "waits": {"kind": "rwlock", "address": "0x5000"}},
                {"num": 5, "lwp": 14, "waits": {"kind": "mutex"}},
                {"num": 6, "lwp": 15}
            ]}"#,
        )
        .unwrap();
        let mut asked = Vec::new();
        let named = analysis.name_locks(&mut |address| {
            asked.push(address);
            (address == 0x4040).then(|| "agents_lock".to_string())
        });
        assert_eq!(named, 2);
        assert_eq!(asked, [0x4040, 0x5000]);
        let names: Vec<Option<&str>> = analysis
            .threads
            .iter()
            .map(|t| t.waits.as_ref().and_then(|w| w.name.as_deref()))
            .collect();
        assert_eq!(
            names,
            [
                Some("agents_lock"),
                Some("agents_lock"),
                Some("by_gdb"),
                None,
                None,
                None
            ]
        );
    }

    fn thread(lwp: i64, functions: &[&str]) -> Thread {
        Thread {
            num: lwp as u32,
            lwp,
            name: None,
            start: None,
            frames: functions
                .iter()
                .map(|function| Frame {
                    function: function.to_string(),
                    pc: None,
                    file: None,
                    line: None,
                    no_symbols: false,
                    object: None,
                    offset: None,
                })
                .collect(),
            waits: None,
            task: None,
        }
    }

    #[test]
    fn groups_identical_stacks_largest_first() {
        let threads = vec![
            thread(1, &["main"]),
            thread(
                2,
                &[
                    "pthread_cond_wait",
                    "ast_cond_wait",
                    "tps_processing_function",
                ],
            ),
            thread(
                3,
                &[
                    "pthread_cond_wait",
                    "ast_cond_wait",
                    "tps_processing_function",
                ],
            ),
            thread(
                4,
                &[
                    "pthread_cond_wait",
                    "ast_cond_wait",
                    "tps_processing_function",
                ],
            ),
        ];
        let groups = stack_groups(&threads);
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].count, 3);
        assert_eq!(groups[0].lwps, [2, 3, 4]);
        assert_eq!(
            describe_group(&groups[0], 2),
            "3 threads in pthread_cond_wait <- ast_cond_wait <- ..."
        );
        assert_eq!(describe_group(&groups[1], 5), "1 thread in main");
        let glibc = vec![thread(
            5,
            &[
                "futex_wait",
                "__GI___lll_lock_wait",
                "lll_mutex_lock_optimized",
                "___pthread_mutex_lock",
                "agent_thread",
                "start_thread",
                "clone3",
            ],
        )];
        assert_eq!(
            describe_group(&stack_groups(&glibc)[0], 3),
            "1 thread in pthread_mutex_lock <- agent_thread <- start_thread <- ..."
        );
    }

    #[test]
    fn reads_the_scripts_json_with_missing_fields() {
        let analysis: Analysis = serde_json::from_str(
            r#"{"pid": 12, "threads": [{"num": 1, "lwp": 12, "frames": [{"function": "??"}],
                "waits": {"kind": "mutex", "address": "0x10", "owner_lwp": 13, "where": {"file": "a.c", "line": 3}}}],
                "errors": []}"#,
        )
        .unwrap();
        let wait = analysis.threads[0].waits.as_ref().unwrap();
        assert_eq!(wait.owner_lwp, Some(13));
        assert_eq!(wait.site.as_ref().unwrap().line, Some(3));
        assert!(analysis.signal.is_none());
    }
}

#[cfg(test)]
mod fuzz_tests;
