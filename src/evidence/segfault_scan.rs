//! Every kernel segfault line of a process, wherever the server keeps them
//! (syslog and its rotated, gzipped copies, kern.log, the journal, dmesg),
//! each crash once however many logs hold it. `segfaults` lists them;
//! `crash` dates the incident with them and matches its core.

use std::collections::HashMap;

#[cfg(test)]
use chrono::Local;
use chrono::{DateTime, FixedOffset};
use serde::Serialize;

use crate::engine::interrupt::Interrupt;
use crate::error::{Error, Result};
use crate::evidence::segfault_line::{KernelSegfault, parse_kernel_line};
use crate::evidence::syslog::{self, Clock, Source};
use crate::host::Host;
use crate::output::Warnings;

/// Which segfaults to keep.
#[derive(Debug, Clone)]
pub struct Filter {
    /// The process name, matched exactly.
    pub process: String,
    pub since: Option<DateTime<FixedOffset>>,
    pub until: Option<DateTime<FixedOffset>>,
}

impl Filter {
    /// Every segfault of `process`, whenever.
    pub fn process(process: &str) -> Filter {
        Filter {
            process: process.to_string(),
            since: None,
            until: None,
        }
    }

    /// A segfault whose time is unknown is kept only when no time range is asked.
    fn keeps_time(&self, time: Option<DateTime<FixedOffset>>) -> bool {
        match time {
            Some(time) => {
                self.since.is_none_or(|since| time >= since)
                    && self.until.is_none_or(|until| time <= until)
            }
            None => self.since.is_none() && self.until.is_none(),
        }
    }
}

/// One crash, merged from every log that holds it.
#[derive(Debug, Clone)]
pub struct Segfault {
    /// Wall time of the line; None when it had no stamp we understand.
    pub time: Option<DateTime<FixedOffset>>,
    /// The host named in the log line (for dmesg: this machine).
    pub host: Option<String>,
    pub kernel: KernelSegfault,
    /// The kernel's seconds-since-boot stamp, when the line had one.
    pub uptime: Option<f64>,
    /// Where it was found first (the most readable source).
    pub file: String,
    /// The other sources that hold the same crash.
    pub also_in: Vec<String>,
    /// The line as found (lossy UTF-8).
    pub line: String,
}

/// Sources further apart than this are different crashes even with the same
/// pid, ip and address. Generous because syslog, the journal and dmesg's
/// boot-time arithmetic do not agree to the second.
const SAME_CRASH_WINDOW_SECONDS: i64 = 600;

/// What a scan found and what went wrong on the way.
#[derive(Debug, Default)]
pub struct Scan {
    /// Deduplicated, oldest first, unknown times first.
    pub segfaults: Vec<Segfault>,
    /// The sources read successfully, by label.
    pub scanned: Vec<String>,
    /// Notes to show on stderr (a file that does not look like a log).
    pub warnings: Vec<String>,
    /// Sources that could not be read (in full): the segfaults found before
    /// the error, and in other sources, still count.
    pub errors: Vec<Error>,
}

/// The segfaults of `filter.process` in `sources`, oldest first, with the
/// scan's warnings raised. The newest is `.last()`.
pub fn find_segfaults(
    host: &Host,
    sources: &[Source],
    filter: &Filter,
    interrupt: Option<&Interrupt>,
    warnings: &mut Warnings,
) -> Result<Vec<Segfault>> {
    let scan = scan(host, sources, filter, interrupt)?;
    warn(&scan, warnings);
    Ok(scan.segfaults)
}

/// Raises what went wrong on the way; the segfaults found still count.
pub fn warn(scan: &Scan, warnings: &mut Warnings) {
    for warning in &scan.warnings {
        warnings.raise(warning.clone());
    }
    for error in &scan.errors {
        warnings.raise(format!(
            "{error} (segfaults found before and elsewhere are listed)"
        ));
    }
}

/// Reads every source; an unreadable one becomes a warning, not a failure.
pub fn scan(
    host: &Host,
    sources: &[Source],
    filter: &Filter,
    interrupt: Option<&Interrupt>,
) -> Result<Scan> {
    let mut scan = Scan::default();
    let mut index: HashMap<(String, u32, u64, u64), Vec<usize>> = HashMap::new();
    for source in sources {
        let label = source.label();
        let mut found = Vec::new();
        let mut on_line = |line: &[u8], clock: &Clock| {
            if let Some(segfault) = segfault_of(line, clock, filter, &label) {
                found.push(segfault);
            }
        };
        let outcome = match source {
            Source::File(path) => syslog::scan_file(path, interrupt, &mut on_line).map(|warning| {
                scan.warnings.extend(warning);
                true
            }),
            Source::Journal { directory } => {
                let mut args: Vec<String> = Vec::new();
                if let Some(dir) = directory {
                    args.extend(["-D".to_string(), dir.display().to_string()]);
                }
                // -k would imply -b (this boot only); the match reads every boot.
                args.extend(
                    ["_TRANSPORT=kernel", "-o", "short-iso", "--no-pager", "-q"].map(String::from),
                );
                syslog::scan_command(
                    "journalctl",
                    &args,
                    Clock::default(),
                    interrupt,
                    &mut on_line,
                )
            }
            Source::Dmesg => {
                let clock = Clock {
                    mtime: None,
                    boot_time: syslog::boot_time(host),
                };
                syslog::scan_command("dmesg", &[], clock, interrupt, &mut on_line).map_err(
                    |error| match error {
                        // kernel.dmesg_restrict: the usual case for non-root users.
                        Error::StepFailed { .. } => Error::bad_input(format!(
                            "{error}; the kernel ring buffer was not read (run as root to include it)"
                        )),
                        other => other,
                    },
                )
            }
        };
        if *source == Source::Dmesg {
            let name = crate::host::sys::hostname();
            for segfault in &mut found {
                segfault.host.get_or_insert_with(|| name.clone());
            }
        }
        for segfault in found {
            merge(&mut scan.segfaults, &mut index, segfault);
        }
        match outcome {
            Ok(true) => scan.scanned.push(label),
            Ok(false) => {}
            Err(Error::Interrupted) => return Err(Error::Interrupted),
            Err(error) => scan.errors.push(error),
        }
    }
    // Stable: equal times keep the order of preference.
    scan.segfaults.sort_by_key(|segfault| segfault.time);
    Ok(scan)
}

fn segfault_of(line: &[u8], clock: &Clock, filter: &Filter, label: &str) -> Option<Segfault> {
    let kernel = parse_kernel_line(line)?;
    if kernel.process != filter.process {
        return None;
    }
    let (time, host) = syslog::stamp_of(line, clock);
    if !filter.keeps_time(time) {
        return None;
    }
    Some(Segfault {
        time,
        host,
        uptime: crate::evidence::segfault_line::kernel_stamp(line),
        kernel,
        file: label.to_string(),
        also_in: Vec::new(),
        line: String::from_utf8_lossy(line).into_owned(),
    })
}

/// Adds `new` unless it is a crash already seen, in which case the sources
/// are merged and fields the first copy lacked are filled in.
fn merge(
    list: &mut Vec<Segfault>,
    index: &mut HashMap<(String, u32, u64, u64), Vec<usize>>,
    new: Segfault,
) {
    let k = &new.kernel;
    let key = (k.process.clone(), k.pid, k.ip, k.fault_address);
    let candidates = index.entry(key).or_default();
    let same = candidates
        .iter()
        .copied()
        .find(|&i| same_crash(&list[i], &new));
    let Some(i) = same else {
        candidates.push(list.len());
        list.push(new);
        return;
    };
    let old = &mut list[i];
    if old.file != new.file && !old.also_in.contains(&new.file) {
        old.also_in.push(new.file);
    }
    old.time = old.time.or(new.time);
    old.host = old.host.take().or(new.host);
    old.uptime = old.uptime.or(new.uptime);
    if old.kernel.mapping.is_none() {
        old.kernel.mapping = new.kernel.mapping;
    }
    old.kernel.error_code = old.kernel.error_code.or(new.kernel.error_code);
    old.kernel.cpu = old.kernel.cpu.or(new.kernel.cpu);
}

fn same_crash(a: &Segfault, b: &Segfault) -> bool {
    // The kernel's own stamp is exact and copied verbatim by syslog: when
    // both copies have it, it decides (the same pid, ip and address do recur
    // after a reboot when the crash is deterministic and ASLR is off).
    if let (Some(x), Some(y)) = (a.uptime, b.uptime) {
        return (x - y).abs() < 0.001;
    }
    match (a.time, b.time) {
        (Some(x), Some(y)) => (x - y).num_seconds().abs() <= SAME_CRASH_WINDOW_SECONDS,
        _ => true,
    }
}

/// The JSON shape of one segfault (`docs/json.md`, "segfault"), the same in
/// `segfaults` and `crash`. Addresses are hex strings: 64-bit values do not
/// fit in a JSON number.
#[derive(Debug, Serialize)]
pub struct SegfaultJson {
    pub time: Option<String>,
    pub host: Option<String>,
    pub process: String,
    /// The number in `NAME[N]: segfault at`: the kernel prints the faulting
    /// thread's id, which is the process id only when the main thread faulted.
    pub lwp: u32,
    pub fault_address: String,
    pub ip: String,
    pub sp: String,
    pub error_code: Option<u64>,
    pub error: Option<String>,
    pub library: Option<String>,
    pub library_base: Option<String>,
    pub library_size: Option<String>,
    /// ip - base.
    pub offset: Option<String>,
    /// The offset printed by newer kernels (`lib[off,base+size]`).
    pub file_offset: Option<String>,
    pub cpu: Option<u32>,
    pub uptime: Option<f64>,
    /// Where it was found first: a file, `journalctl` or `dmesg`.
    pub source: String,
    pub also_in: Vec<String>,
    pub line: String,
}

pub fn hex(value: u64) -> String {
    format!("0x{value:x}")
}

impl From<&Segfault> for SegfaultJson {
    fn from(s: &Segfault) -> SegfaultJson {
        let k = &s.kernel;
        let mapping = k.mapping.as_ref();
        SegfaultJson {
            time: s.time.map(|t| t.to_rfc3339()),
            host: s.host.clone(),
            process: k.process.clone(),
            lwp: k.pid,
            fault_address: hex(k.fault_address),
            ip: hex(k.ip),
            sp: hex(k.sp),
            error_code: k.error_code,
            error: k.error_words(),
            library: mapping.map(|m| m.library.clone()),
            library_base: mapping.map(|m| hex(m.base)),
            library_size: mapping.map(|m| hex(m.size)),
            offset: k.offset().map(hex),
            file_offset: mapping.and_then(|m| m.printed_offset).map(hex),
            cpu: k.cpu,
            uptime: s.uptime,
            source: s.file.clone(),
            also_in: s.also_in.clone(),
            line: s.line.clone(),
        }
    }
}

/// One block of text per segfault; `machine` finds the library the kernel
/// named, so that the `addr2line` line can be run as printed.
pub fn describe(s: &Segfault, machine: Option<&Host>) -> String {
    let k = &s.kernel;
    let time = s.time.map_or_else(
        || "time unknown".to_string(),
        |t| t.format("%Y-%m-%d %H:%M:%S%.3f %:z").to_string(),
    );
    let host = s.host.as_deref().unwrap_or("?");
    let mut text = format!("{time}  {host}  {}[{}]\n", k.process, k.pid);
    text.push_str(&format!(
        "  segfault at {}  ip {}  sp {}\n",
        hex(k.fault_address),
        hex(k.ip),
        hex(k.sp)
    ));
    if let (Some(code), Some(words)) = (k.error_code, k.error_words()) {
        text.push_str(&format!("  error {code:x} (hex): {words}\n"));
    }
    match &k.mapping {
        Some(m) => {
            let offset = k.offset().map_or_else(|| "?".to_string(), hex);
            text.push_str(&format!(
                "  in {}  offset {offset} (ip - base {}, size {})",
                m.library,
                hex(m.base),
                hex(m.size)
            ));
            if let Some(printed) = m.printed_offset {
                text.push_str(&format!(", file offset {}", hex(printed)));
            }
            if let Some(at) = k.addr2line_offset() {
                let path = machine
                    .and_then(|machine| crate::host::asterisk::library_path(machine, &m.library))
                    .map(|path| crate::engine::shell::quote(&path.display().to_string()))
                    .unwrap_or_else(|| format!("<path of {}>", m.library));
                text.push_str(&format!("\n  addr2line -f -e {path} {}", hex(at)));
            }
            text.push('\n');
        }
        None => text.push_str("  in no known mapping (the kernel printed none)\n"),
    }
    text.push_str(&format!("  from {}", s.file));
    if !s.also_in.is_empty() {
        text.push_str(&format!(" (also in {})", s.also_in.join(", ")));
    }
    text.push_str("\n\n");
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(line: &str, label: &str, process: &str) -> Option<Segfault> {
        let clock = Clock {
            mtime: Some(Local::now()),
            boot_time: Some(1_795_841_337),
        };
        segfault_of(line.as_bytes(), &clock, &Filter::process(process), label)
    }

    #[test]
    fn process_names_match_exactly() {
        let line = "[  141.451421] sv[3009]: segfault at 10 ip 0000564047d6c139 sp 00007fff570de850 error 4 in sv[1139,564047d6c000+1000] likely on CPU 1 (core 1, socket 0)";
        assert!(found(line, "dmesg", "asterisk").is_none());
        assert!(found(line, "dmesg", "s").is_none());
        let segfault = found(line, "dmesg", "sv").unwrap();
        assert_eq!(segfault.kernel.pid, 3009);
        assert!(segfault.time.is_some());
    }

    #[test]
    fn duplicates_merge_and_distinct_crashes_do_not() {
        let syslog = "Nov 28 04:12:43 pbx kernel: [141.451421] asterisk[9]: segfault at 10 ip 1 sp 2 error 4";
        let journal = "2026-11-28T04:12:43+0000 pbx kernel: asterisk[9]: segfault at 10 ip 1 sp 2 error 4 in libc.so[0+1000]";
        let later =
            "2026-11-28T06:12:43+0000 pbx kernel: asterisk[9]: segfault at 10 ip 1 sp 2 error 4";
        let mut list = Vec::new();
        let mut index = HashMap::new();
        let mut first = found(syslog, "syslog", "asterisk").unwrap();
        first.time = found(journal, "x", "asterisk").unwrap().time;
        merge(&mut list, &mut index, first);
        merge(
            &mut list,
            &mut index,
            found(journal, "journalctl", "asterisk").unwrap(),
        );
        merge(
            &mut list,
            &mut index,
            found(syslog, "syslog", "asterisk").unwrap(),
        );
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].also_in, ["journalctl"]);
        assert_eq!(list[0].kernel.mapping.as_ref().unwrap().library, "libc.so");
        merge(
            &mut list,
            &mut index,
            found(later, "journalctl", "asterisk").unwrap(),
        );
        assert_eq!(list.len(), 2);
        // Same pid, ip and address a minute later, in another boot.
        let reboot = "Nov 28 04:13:43 pbx1 kernel: [41.000001] asterisk[9]: segfault at 10 ip 1 sp 2 error 4";
        merge(
            &mut list,
            &mut index,
            found(reboot, "syslog", "asterisk").unwrap(),
        );
        assert_eq!(list.len(), 3);
    }

    #[test]
    fn time_filter_and_text() {
        let mut filter = Filter::process("asterisk");
        assert!(filter.keeps_time(None));
        filter.since = Some(Local::now().fixed_offset());
        assert!(!filter.keeps_time(None));
        let line = "Oct 16 16:12:43 xivo-1 kernel: [10295061.047120] asterisk[1255]: segfault at e ip b751aa6b sp b5ef14d4 error 4 in libc-2.11.3.so[b74ad000+140000]";
        let text = describe(&found(line, "/var/log/syslog", "asterisk").unwrap(), None);
        assert!(
            text.contains("user-mode read of an unmapped address"),
            "{text}"
        );
        assert!(text.contains("offset 0x6da6b"), "{text}");
        assert!(text.contains("xivo-1  asterisk[1255]"), "{text}");
    }
}
