//! Where kernel lines are kept, and how to read them fast and safely.
//!
//! The procedure says `grep segfault /var/log/syslog`, but on a real server
//! the line may be in `kern.log` or `messages` instead, in a rotated and
//! gzipped copy, or, on Debian 12 which has no rsyslog, only in the journal
//! and the kernel ring buffer. Every source is read here the same way, and
//! the way is grep's: search big blocks for the bytes `segfault` and look at
//! lines only around a hit. Logs of a broken PBX are big (a looping error can
//! write gigabytes), hold NUL runs after a hard reset and invalid UTF-8, so we
//! never read a file whole, never split it into lines first, and never
//! assume it is text.
//!
//! Timestamps come in three styles: rsyslog's traditional `Oct 16 16:12:43`
//! (no year: we infer it from the file's mtime), ISO 8601 (newer rsyslog,
//! `journalctl -o short-iso`), and the kernel's boot-relative `[ 141.45]`
//! seconds of `dmesg`, turned into wall time with the boot time of
//! `/proc/stat`. They are parsed in [`stamp`].

use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Local};
use flate2::read::MultiGzDecoder;
use memchr::memmem::Finder;

use crate::engine::interrupt::Interrupt;
use crate::error::{Error, Result};
use crate::host::Host;

pub mod stamp;
pub use stamp::{Clock, boot_time, parse_time_spec, stamp_of};

/// What is searched for before any parsing, as `grep segfault` does.
pub const NEEDLE: &[u8] = b"segfault";

/// Bytes read per round: big enough that syscalls and per-round work vanish
/// next to the search itself.
const CHUNK: usize = 1 << 20;

/// The longest line tail we keep. Kernel lines are under 1 KiB; a longer
/// "line" is binary junk or a NUL run glued to a real line, whose useful end
/// we keep. This is what bounds memory whatever the file.
pub const MAX_LINE: usize = 64 << 10;

/// The log files scanned by default, under `/var/log`.
pub const DEFAULT_LOGS: [&str; 3] = ["syslog", "kern.log", "messages"];

/// A place kernel lines can be read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A log file on this machine (already rebased under `--root`), plain or gzip.
    File(PathBuf),
    /// `journalctl`'s kernel messages: the live journal, or the journal
    /// files of a copied server tree.
    Journal { directory: Option<PathBuf> },
    /// The live kernel ring buffer.
    Dmesg,
}

impl Source {
    /// How the source is named to the user.
    pub fn label(&self) -> String {
        match self {
            Source::File(path) => path.display().to_string(),
            Source::Journal { directory: None } => "journalctl".to_string(),
            Source::Journal {
                directory: Some(dir),
            } => format!("journalctl -D {}", dir.display()),
            Source::Dmesg => "dmesg".to_string(),
        }
    }
}

/// Every source of the host, in order of preference for duplicates: the
/// current files first, then their rotated copies, then the journal and the
/// ring buffer (which only exist for the live system, or for a copied
/// journal under `--root`). Missing files are simply not listed.
pub fn default_sources(host: &Host) -> Vec<Source> {
    let dir = host.path("/var/log");
    let mut sources = Vec::new();
    for base in DEFAULT_LOGS {
        sources.extend(rotated_files(&dir, base).into_iter().map(Source::File));
    }
    if host.is_live() {
        sources.push(Source::Journal { directory: None });
        sources.push(Source::Dmesg);
    } else {
        let journal = host.path("/var/log/journal");
        if journal.is_dir() {
            sources.push(Source::Journal {
                directory: Some(journal),
            });
        }
    }
    sources
}

/// `base`, then `base.1`, `base.2.gz`, ... and dateext copies
/// (`base-20261128.gz`), newest first.
pub fn rotated_files(dir: &Path, base: &str) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<(u64, String)> = entries
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter_map(|name| rotation_rank(&name, base).map(|rank| (rank, name)))
        .collect();
    found.sort();
    found
        .into_iter()
        .map(|(_, name)| dir.join(name))
        .filter(|path| !path.is_dir())
        .collect()
}

/// 0 for `base`, N for `base.N[.gz]`, and for dateext copies a rank that puts
/// newer dates first, after the numbered ones. None for other files.
fn rotation_rank(name: &str, base: &str) -> Option<u64> {
    let rest = name.strip_prefix(base)?;
    if rest.is_empty() {
        return Some(0);
    }
    let rest = rest.strip_suffix(".gz").unwrap_or(rest);
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if let Some(number) = rest.strip_prefix('.').filter(|s| all_digits(s)) {
        return number.parse().ok();
    }
    if let Some(date) = rest
        .strip_prefix('-')
        .filter(|s| all_digits(s) && s.len() == 8)
    {
        return Some(u64::MAX / 2 - date.parse::<u64>().ok()?);
    }
    None
}

/// Calls `on_line` with every line of `reader` that contains [`NEEDLE`], in
/// bounded memory, as `grep -a segfault` would print them (less "\r" and
/// anything up to a NUL byte, which is junk left by a hard reset).
///
/// On a read error (a truncated gzip, an I/O error) the complete lines read
/// so far are still reported before the error is returned.
pub fn scan_lines(
    mut reader: impl Read,
    interrupt: Option<&Interrupt>,
    on_line: &mut dyn FnMut(&[u8]),
) -> io::Result<()> {
    let finder = Finder::new(NEEDLE);
    let mut storage = crate::host::read_buffer::ReadBuffer::new(CHUNK + MAX_LINE);
    let buf = storage.as_mut_slice();
    let mut kept = 0;
    loop {
        if interrupt.is_some_and(|i| i.received().is_some()) {
            return Err(io::Error::new(io::ErrorKind::Interrupted, "interrupted"));
        }
        let (read, failure) = fill(&mut reader, &mut buf[kept..kept + CHUNK]);
        let end = kept + read;
        let last = read == 0 || failure.is_some();
        // At a clean end the last line needs no newline; after an error it
        // is cut short, and a cut "ip 7f2a1c" would be a wrong address.
        let complete = if read == 0 && failure.is_none() {
            end
        } else if failure.is_some() {
            memchr::memrchr(b'\n', &buf[..end]).map_or(0, |p| p + 1)
        } else {
            memchr::memrchr(b'\n', &buf[kept..end]).map_or(0, |p| kept + p + 1)
        };
        search(&finder, &buf[..complete], on_line);
        if let Some(error) = failure {
            return Err(error);
        }
        if last {
            return Ok(());
        }
        // Keep the unfinished line for the next round, or its end only if it
        // has grown past MAX_LINE.
        let tail_start = complete.max(end.saturating_sub(MAX_LINE));
        buf.copy_within(tail_start..end, 0);
        kept = end - tail_start;
    }
}

/// Reads until `buf` is at least half full or the input ends; decoders and
/// pipes hand out small pieces, and a round per piece would cost.
fn fill(reader: &mut impl Read, buf: &mut [u8]) -> (usize, Option<io::Error>) {
    let mut filled = 0;
    while filled < buf.len() / 2 {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return (filled, Some(error)),
        }
    }
    (filled, None)
}

fn search(finder: &Finder, data: &[u8], on_line: &mut dyn FnMut(&[u8])) {
    let mut from = 0;
    while let Some(found) = finder.find(&data[from..]) {
        let at = from + found;
        let start = memchr::memrchr(b'\n', &data[..at]).map_or(0, |p| p + 1);
        let stop = memchr::memchr(b'\n', &data[at..]).map_or(data.len(), |p| at + p);
        on_line(clean(&data[start..stop]));
        from = stop + 1;
        if from >= data.len() {
            break;
        }
    }
}

fn clean(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    match memchr::memrchr(0, line) {
        Some(nul) => &line[nul + 1..],
        None => line,
    }
}

/// Scans one log file, plain or gzip (told by its magic bytes, not its name,
/// since rotated copies get renamed), calling `on_line` with each matching
/// line and the clock that dates it. Returns a warning to show when the file
/// does not look like a text log.
pub fn scan_file(
    path: &Path,
    interrupt: Option<&Interrupt>,
    on_line: &mut dyn FnMut(&[u8], &Clock),
) -> Result<Option<String>> {
    // A FIFO or a device would block or never end: refused before a byte is read.
    let file = crate::host::files::open_input(path, "give a log file, plain or gzip")?;
    let metadata = file.metadata().map_err(|error| Error::read(path, error))?;
    let clock = Clock {
        mtime: metadata.modified().ok().map(DateTime::<Local>::from),
        boot_time: None,
    };
    let mut reader = BufReader::with_capacity(8 << 10, file);
    let head = reader
        .fill_buf()
        .map_err(|error| Error::read(path, error))?
        .to_vec();
    let mut callback = |line: &[u8]| on_line(line, &clock);
    let gzip = head.starts_with(&[0x1f, 0x8b]);
    let outcome = if gzip {
        scan_lines(MultiGzDecoder::new(reader), interrupt, &mut callback).map_err(|error| {
            io::Error::new(
                error.kind(),
                format!("{error} (truncated or corrupt gzip file?)"),
            )
        })
    } else if let Some(format) = other_compression(&head) {
        return Err(Error::read(
            path,
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "compressed with {format}, which is not supported: decompress it and pass the result with --log"
                ),
            ),
        ));
    } else {
        scan_lines(reader, interrupt, &mut callback)
    };
    match outcome {
        Err(error) if error.kind() == io::ErrorKind::Interrupted => Err(Error::Interrupted),
        Err(error) => Err(Error::read(path, error)),
        Ok(()) if !gzip && looks_binary(&head) => Ok(Some(format!(
            "{}: does not look like a text log (binary data at its start); scanned it anyway",
            path.display()
        ))),
        Ok(()) => Ok(None),
    }
}

fn other_compression(head: &[u8]) -> Option<&'static str> {
    if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        Some("xz")
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Some("zstd")
    } else if head.starts_with(b"BZh") {
        Some("bzip2")
    } else {
        None
    }
}

/// Like grep's test: text logs have no NUL bytes and few control bytes at
/// their start.
fn looks_binary(head: &[u8]) -> bool {
    let odd = head
        .iter()
        .filter(|&&b| b < 0x20 && !matches!(b, b'\n' | b'\r' | b'\t' | 0x1b))
        .count();
    !head.is_empty() && odd * 10 > head.len()
}

/// Runs `program args` and scans its output. `Ok(false)` when the program is
/// not installed (nothing to scan, nothing to say); an error naming the
/// command when it fails, after the lines it printed are reported.
pub fn scan_command(
    program: &str,
    args: &[String],
    clock: Clock,
    interrupt: Option<&Interrupt>,
    on_line: &mut dyn FnMut(&[u8], &Clock),
) -> Result<bool> {
    let Ok(path) = which::which(program) else {
        return Ok(false);
    };
    let command = std::iter::once(program)
        .chain(args.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join(" ");
    let handle = duct::cmd(path, args)
        .stdin_null()
        .stderr_capture()
        .unchecked()
        .reader()
        .map_err(|source| Error::Spawn {
            command: command.clone(),
            source,
        })?;
    let mut callback = |line: &[u8]| on_line(line, &clock);
    let outcome = scan_lines(&handle, interrupt, &mut callback);
    if let Err(error) = outcome {
        let _ = handle.kill();
        if error.kind() == io::ErrorKind::Interrupted {
            return Err(Error::Interrupted);
        }
        return Err(Error::read(PathBuf::from(command), error));
    }
    match handle.try_wait() {
        Ok(Some(output)) if output.status.success() => Ok(true),
        Ok(Some(output)) => {
            let stderr = String::from_utf8_lossy(&output.stderr);
            Err(Error::StepFailed {
                command,
                status: output.status.to_string(),
                hint: match stderr.trim() {
                    "" => String::new(),
                    message => format!(": {message}"),
                },
            })
        }
        Ok(None) => Ok(true),
        Err(source) => Err(Error::Spawn { command, source }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_of(data: &[u8]) -> Vec<Vec<u8>> {
        let mut found = Vec::new();
        scan_lines(data, None, &mut |line| found.push(line.to_vec())).unwrap();
        found
    }

    #[test]
    fn scanning_finds_what_grep_finds() {
        let data = b"a\nsegfault one\r\nb segfault\x00\x00Oct 1 x segfault two\nsegfault\n\xff\xfe segfault";
        assert_eq!(
            lines_of(data),
            vec![
                b"segfault one".to_vec(),
                b"Oct 1 x segfault two".to_vec(),
                b"segfault".to_vec(),
                b"\xff\xfe segfault".to_vec(),
            ]
        );
        assert!(lines_of(b"").is_empty());
        assert!(lines_of(b"nothing here\n").is_empty());
    }

    #[test]
    fn lines_across_rounds_and_overlong_lines() {
        let mut data = b"short line\n".repeat((CHUNK - 5) / 11);
        let crossing = data.len() + 2;
        data.extend_from_slice(b"x segfault across\n");
        data.extend(std::iter::repeat_n(b'y', 3 * CHUNK));
        data.extend_from_slice(b" segfault long\nend segfault");
        assert!(crossing < CHUNK && crossing + 16 > CHUNK);
        let found = lines_of(&data);
        assert_eq!(found.len(), 3);
        assert_eq!(found[0], b"x segfault across");
        // The overlong line keeps its end, bounded.
        assert!(found[1].ends_with(b"y segfault long"));
        assert!(found[1].len() <= MAX_LINE + CHUNK);
        assert_eq!(found[2], b"end segfault");
    }

    #[test]
    fn a_read_error_keeps_the_complete_lines_only() {
        struct Failing<'a>(&'a [u8]);
        impl Read for Failing<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if self.0.is_empty() {
                    return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "cut"));
                }
                let n = self.0.len().min(buf.len());
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut found = Vec::new();
        let data = b"a segfault at 1\nb segfault at 0 ip 7f2a";
        let outcome = scan_lines(Failing(data), None, &mut |line| found.push(line.to_vec()));
        assert_eq!(outcome.unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
        assert_eq!(found, [b"a segfault at 1".to_vec()]);
    }

    #[test]
    fn rotation_order() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "syslog",
            "syslog.2.gz",
            "syslog.1",
            "syslog.10.gz",
            "syslog-20261101.gz",
            "syslogd",
            "syslog.old",
        ] {
            std::fs::write(dir.path().join(name), "").unwrap();
        }
        let names: Vec<String> = rotated_files(dir.path(), "syslog")
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            [
                "syslog",
                "syslog.1",
                "syslog.2.gz",
                "syslog.10.gz",
                "syslog-20261101.gz"
            ]
        );
    }

    #[test]
    fn gzip_plain_truncated_and_binary_files() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let text =
            b"Nov 28 04:00:00 h kernel: a[1]: segfault at 1 ip 2 sp 3 error 4\n".repeat(1000);
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(&text).unwrap();
        let gz = encoder.finish().unwrap();
        let count = |path: &Path| {
            let mut n = 0;
            let outcome = scan_file(path, None, &mut |_, clock| {
                assert!(clock.mtime.is_some());
                n += 1
            });
            (n, outcome)
        };
        let plain = dir.path().join("syslog.1");
        std::fs::write(&plain, &text).unwrap();
        assert!(matches!(count(&plain), (1000, Ok(None))));
        let zipped = dir.path().join("renamed");
        std::fs::write(&zipped, &gz).unwrap();
        assert!(matches!(count(&zipped), (1000, Ok(None))));
        let truncated = dir.path().join("syslog.2.gz");
        std::fs::write(&truncated, &gz[..gz.len() / 2]).unwrap();
        let (found, outcome) = count(&truncated);
        let message = outcome.unwrap_err().to_string();
        assert!(message.contains("syslog.2.gz"), "{message}");
        assert!(found < 1000, "{found}");
        let binary = dir.path().join("bin");
        std::fs::write(&binary, b"\x7fELF\x00\x00\x00\x01\x02segfault\x00\x00").unwrap();
        let (found, outcome) = count(&binary);
        assert_eq!(found, 1);
        assert!(outcome.unwrap().unwrap().contains("binary"));
        let (_, outcome) = count(dir.path());
        assert!(outcome.unwrap_err().to_string().contains("directory"));
        std::fs::write(&binary, b"\xfd7zXZ\x00rest").unwrap();
        assert!(count(&binary).1.unwrap_err().to_string().contains("xz"));
    }
}

#[cfg(test)]
mod fuzz_tests;
