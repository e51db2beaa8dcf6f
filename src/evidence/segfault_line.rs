//! The kernel's "segfault at" line, parsed.
//!
//! When a process dies of SIGSEGV on x86, the kernel logs one line naming the
//! process, the faulting address, the instruction and stack pointers, the
//! page-fault error code and the mapping the instruction was in. That line is
//! the first thing the "Debugging Asterisk" procedure asks for: it dates the
//! crash (to pick the right core file and log excerpt) and, with the library
//! and the offset of ip inside it, lets `addr2line` name the crashing function
//! even when no core was kept.
//!
//! The line has two shapes, and both are seen on Wazo servers:
//!
//! ```text
//! asterisk[1255]: segfault at e ip b751aa6b sp b5ef14d4 error 4 in libc-2.11.3.so[b74ad000+140000]
//! sv[3009]: segfault at 10 ip 0000564047d6c139 sp 00007fff570de850 error 4 in sv[1139,564047d6c000+1000] likely on CPU 1 (core 1, socket 0)
//! ```
//!
//! Every number is hexadecimal, the error code included (`error 14` is 0x14).
//! The " in lib[...]" part is missing when ip is in no mapping, and on some
//! kernels it was a separate printk continuation that syslog wrote on a line
//! of its own; such lines are still segfaults, with no library.
//!
//! Only the kernel message is parsed here; where the line came from and its
//! timestamp are `syslog`'s business.

/// One segfault, as the kernel reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelSegfault {
    /// The thread's `comm`, exactly as printed (at most 15 bytes, may hold spaces).
    pub process: String,
    pub pid: u32,
    /// The address whose access faulted ("segfault at").
    pub fault_address: u64,
    pub ip: u64,
    pub sp: u64,
    /// The page-fault error code (printed in hex by the kernel); None when absent.
    pub error_code: Option<u64>,
    /// The mapping ip was in, when the kernel printed it.
    pub mapping: Option<Mapping>,
    /// The CPU of the "likely on CPU N" suffix of newer kernels.
    pub cpu: Option<u32>,
}

/// The "in lib[...]" part: the file mapped where ip points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    /// The file's base name, as the kernel prints it.
    pub library: String,
    /// Start of the mapping ip was in.
    pub base: u64,
    pub size: u64,
    /// The offset the newer kernels print first (`lib[off,base+size]`): ip's
    /// offset inside the file, which accounts for the mapping's file offset.
    pub printed_offset: Option<u64>,
}

impl KernelSegfault {
    /// ip - base: the offset of ip inside the mapping, for addr2line.
    pub fn offset(&self) -> Option<u64> {
        let mapping = self.mapping.as_ref()?;
        self.ip.checked_sub(mapping.base)
    }

    /// The best address to give `addr2line -e LIB`: the printed file offset of
    /// newer kernels when there is one (it is right even when the mapping does
    /// not start at file offset 0), ip - base otherwise.
    pub fn addr2line_offset(&self) -> Option<u64> {
        let mapping = self.mapping.as_ref()?;
        mapping.printed_offset.or_else(|| self.offset())
    }

    /// The error code in words, e.g. "user-mode read of an unmapped address".
    pub fn error_words(&self) -> Option<String> {
        self.error_code.map(decode_error)
    }
}

/// The x86 page-fault error code in words.
///
/// Bit 0: protection violation (set) or page not present (clear); bit 1:
/// write (set) or read; bit 2: user mode (set) or kernel mode; bit 3: a
/// reserved bit was set in a page-table entry; bit 4: instruction fetch;
/// bit 5: protection keys; bit 15: SGX.
pub fn decode_error(code: u64) -> String {
    let mode = if code & 0b100 != 0 {
        "user-mode"
    } else {
        "kernel-mode"
    };
    let access = if code & 0b1_0000 != 0 {
        "instruction fetch from"
    } else if code & 0b10 != 0 {
        "write to"
    } else {
        "read of"
    };
    let target = if code & 0b1 != 0 {
        "a protected page (protection violation)"
    } else {
        "an unmapped address"
    };
    let mut words = format!("{mode} {access} {target}");
    if code & 0b1000 != 0 {
        words.push_str(", reserved bit set in a page-table entry");
    }
    if code & 0b10_0000 != 0 {
        words.push_str(", protection-key violation");
    }
    if code & 0x8000 != 0 {
        words.push_str(", SGX violation");
    }
    words
}

const MARKER: &[u8] = b"]: segfault at ";

/// Parses the kernel segfault message inside `line`, wherever it starts (a
/// syslog, journal or dmesg prefix may come first). None when the line is
/// not a kernel segfault line.
pub fn parse_kernel_line(line: &[u8]) -> Option<KernelSegfault> {
    // "segfault at" may appear more than once (a user message quoting one);
    // the kernel's own is the first that parses. Each try scans back to the
    // line start (for '[' and "kernel: "), so the tries are capped: a junk
    // line made of thousands of markers was quadratic (42 s for 512 KiB),
    // and a real line has its kernel marker first.
    memchr::memmem::find_iter(line, MARKER)
        .take(MAX_MARKERS)
        .find_map(|at| parse_at(line, at))
}

/// How many "]: segfault at " of one line are tried (see `parse_kernel_line`).
const MAX_MARKERS: usize = 8;

/// `at` is where "]: segfault at " starts in `line`.
fn parse_at(line: &[u8], at: usize) -> Option<KernelSegfault> {
    let open = line[..at].iter().rposition(|&byte| byte == b'[')?;
    let pid = parse_decimal(&line[open + 1..at])?;
    let name_start = name_start(line, open);
    if name_start >= open {
        return None;
    }
    let process = String::from_utf8_lossy(&line[name_start..open]).into_owned();
    let mut rest = Fields(&line[at + MARKER.len()..]);

    let fault_address = rest.hex()?;
    // 2.6.18-era x86_64 kernels said "rip"/"rsp".
    rest.keyword(&["ip", "rip"])?;
    let ip = rest.hex()?;
    rest.keyword(&["sp", "rsp"])?;
    let sp = rest.hex()?;
    let error_code = match rest.keyword(&["error"]) {
        Some(()) => Some(rest.hex()?),
        None => None,
    };
    let mapping = if rest.keyword(&["in"]).is_some() {
        parse_mapping(&mut rest)
    } else {
        None
    };
    let cpu = rest.find_cpu();
    Some(KernelSegfault {
        process,
        pid,
        fault_address,
        ip,
        sp,
        error_code,
        mapping,
        cpu,
    })
}

/// Where the process name ends backwards, `open` being its `[pid]` bracket.
///
/// The name may hold spaces, so "the previous word" is not enough: the
/// message starts after "kernel: " (syslog, journal), after the kernel's own
/// "[ 12.345678] " stamp (dmesg, and syslog's copy of it), or, for prefixes
/// we do not know, after the last space.
fn name_start(line: &[u8], open: usize) -> usize {
    let head = &line[..open];
    let mut start = match memchr::memmem::rfind(head, b"kernel: ") {
        Some(found) => found + b"kernel: ".len(),
        None => match skip_stamp(head, 0) {
            Some(after) => after,
            None => return head.iter().rposition(|&b| b == b' ').map_or(0, |p| p + 1),
        },
    };
    if let Some(after) = skip_stamp(head, start) {
        start = after;
    }
    start
}

/// If `head[from..]` starts with a "[  141.451421] " stamp, where it ends.
fn skip_stamp(head: &[u8], from: usize) -> Option<usize> {
    let rest = head.get(from..)?;
    if rest.first() != Some(&b'[') {
        return None;
    }
    let close = memchr::memchr(b']', rest)?;
    let inside = &rest[1..close];
    if inside.is_empty()
        || !inside
            .iter()
            .all(|b| b.is_ascii_digit() || *b == b'.' || *b == b' ')
    {
        return None;
    }
    let mut end = from + close + 1;
    while head.get(end) == Some(&b' ') {
        end += 1;
    }
    Some(end)
}

/// Uptime seconds of the kernel's "[ 12.345678]" stamp, if the message has one.
pub fn kernel_stamp(line: &[u8]) -> Option<f64> {
    let start = match memchr::memmem::find(line, b"kernel: ") {
        Some(found) => found + b"kernel: ".len(),
        None => 0,
    };
    let end = skip_stamp(line, start)?;
    let text = std::str::from_utf8(&line[start + 1..end]).ok()?;
    text.trim().trim_end_matches(']').trim().parse().ok()
}

fn parse_mapping(rest: &mut Fields) -> Option<Mapping> {
    // "libc-2.11.3.so[b74ad000+140000]" or "sv[1139,564047d6c000+1000]"; the
    // name may itself hold '[' or spaces, so the numbers are the last bracket.
    let text = rest.0;
    let end = memchr::memchr(b']', text)?;
    let open = text[..end].iter().rposition(|&b| b == b'[')?;
    let library = String::from_utf8_lossy(&text[..open]).into_owned();
    let inside = &text[open + 1..end];
    let (printed_offset, range) = match memchr::memchr(b',', inside) {
        Some(comma) => (Some(parse_hex(&inside[..comma])?), &inside[comma + 1..]),
        None => (None, inside),
    };
    let plus = memchr::memchr(b'+', range)?;
    let base = parse_hex(&range[..plus])?;
    let size = parse_hex(&range[plus + 1..])?;
    rest.0 = &text[end + 1..];
    Some(Mapping {
        library,
        base,
        size,
        printed_offset,
    })
}

/// The words after "segfault at", consumed left to right.
struct Fields<'a>(&'a [u8]);

impl<'a> Fields<'a> {
    fn word(&mut self) -> Option<&'a [u8]> {
        let text = self.0;
        let start = text.iter().position(|&b| b != b' ')?;
        let end = text[start..]
            .iter()
            .position(|&b| b == b' ')
            .map_or(text.len(), |p| start + p);
        self.0 = &text[end..];
        Some(&text[start..end])
    }

    /// Consumes the next word if it is one of `words`.
    fn keyword(&mut self, words: &[&str]) -> Option<()> {
        let saved = self.0;
        let word = self.word()?;
        if words.iter().any(|w| w.as_bytes() == word) {
            let after = self.0;
            self.0 = after.strip_prefix(b" ").unwrap_or(after);
            Some(())
        } else {
            self.0 = saved;
            None
        }
    }

    fn hex(&mut self) -> Option<u64> {
        parse_hex(self.word()?)
    }

    /// "likely on CPU 1 (core 1, socket 0)".
    fn find_cpu(&self) -> Option<u32> {
        let at = memchr::memmem::find(self.0, b"on CPU ")?;
        let digits = &self.0[at + b"on CPU ".len()..];
        let end = digits
            .iter()
            .position(|b| !b.is_ascii_digit())
            .unwrap_or(digits.len());
        std::str::from_utf8(&digits[..end]).ok()?.parse().ok()
    }
}

fn parse_hex(text: &[u8]) -> Option<u64> {
    let text = text.strip_prefix(b"0x").unwrap_or(text);
    if text.is_empty() || text.len() > 16 {
        return None;
    }
    u64::from_str_radix(std::str::from_utf8(text).ok()?, 16).ok()
}

fn parse_decimal(text: &[u8]) -> Option<u32> {
    if text.is_empty() || !text.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(text).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: &str = "Oct 16 16:12:43 xivo-1 kernel: [10295061.047120] asterisk[1255]: segfault at e ip b751aa6b sp b5ef14d4 error 4 in libc-2.11.3.so[b74ad000+140000]";
    const NEW: &str = "[  141.451421] sv[3009]: segfault at 10 ip 0000564047d6c139 sp 00007fff570de850 error 4 in sv[1139,564047d6c000+1000] likely on CPU 1 (core 1, socket 0)";

    #[test]
    fn old_shape() {
        let s = parse_kernel_line(OLD.as_bytes()).unwrap();
        assert_eq!(s.process, "asterisk");
        assert_eq!(s.pid, 1255);
        assert_eq!(s.fault_address, 0xe);
        assert_eq!(s.ip, 0xb751aa6b);
        assert_eq!(s.sp, 0xb5ef14d4);
        assert_eq!(s.error_code, Some(4));
        let mapping = s.mapping.clone().unwrap();
        assert_eq!(mapping.library, "libc-2.11.3.so");
        assert_eq!((mapping.base, mapping.size), (0xb74ad000, 0x140000));
        assert_eq!(mapping.printed_offset, None);
        assert_eq!(s.offset(), Some(0xb751aa6b - 0xb74ad000));
        assert_eq!(s.addr2line_offset(), s.offset());
        assert_eq!(s.cpu, None);
        assert_eq!(kernel_stamp(OLD.as_bytes()), Some(10295061.047120));
    }

    #[test]
    fn new_shape() {
        let s = parse_kernel_line(NEW.as_bytes()).unwrap();
        assert_eq!(s.process, "sv");
        assert_eq!(s.pid, 3009);
        assert_eq!(s.fault_address, 0x10);
        assert_eq!(s.ip, 0x564047d6c139);
        assert_eq!(s.sp, 0x7fff570de850);
        let mapping = s.mapping.clone().unwrap();
        assert_eq!(mapping.library, "sv");
        assert_eq!(mapping.base, 0x564047d6c000);
        assert_eq!(mapping.size, 0x1000);
        assert_eq!(mapping.printed_offset, Some(0x1139));
        assert_eq!(s.offset(), Some(0x139));
        assert_eq!(s.addr2line_offset(), Some(0x1139));
        assert_eq!(s.cpu, Some(1));
        assert_eq!(kernel_stamp(NEW.as_bytes()), Some(141.451421));
    }

    #[test]
    fn journal_prefix_and_names_with_spaces() {
        let line =
            "2026-11-28T04:12:43+0100 pbx kernel: Web Content[77]: segfault at 0 ip 1 sp 2 error 6";
        let s = parse_kernel_line(line.as_bytes()).unwrap();
        assert_eq!(s.process, "Web Content");
        assert_eq!(s.error_code, Some(6));
        assert_eq!(s.mapping, None);
        assert_eq!(kernel_stamp(line.as_bytes()), None);
    }

    #[test]
    fn split_continuation_and_old_rip_shape() {
        let s =
            parse_kernel_line(b"kernel: asterisk[9]: segfault at 0 ip 7f sp 7e error 4").unwrap();
        assert_eq!(s.mapping, None);
        let s = parse_kernel_line(
            b"kernel: asterisk[9]: segfault at 0000000000000000 rip 00002aaaab0c1d2e rsp 0000000040a00f40 error 4",
        )
        .unwrap();
        assert_eq!(s.ip, 0x2aaaab0c1d2e);
        assert_eq!(s.error_code, Some(4));
    }

    #[test]
    fn error_codes_in_words() {
        assert_eq!(decode_error(4), "user-mode read of an unmapped address");
        assert_eq!(decode_error(6), "user-mode write to an unmapped address");
        assert_eq!(
            decode_error(7),
            "user-mode write to a protected page (protection violation)"
        );
        assert_eq!(
            decode_error(0x14),
            "user-mode instruction fetch from an unmapped address"
        );
        assert_eq!(
            decode_error(0x15),
            "user-mode instruction fetch from a protected page (protection violation)"
        );
        assert_eq!(decode_error(0), "kernel-mode read of an unmapped address");
        assert_eq!(
            decode_error(0xd),
            "user-mode read of a protected page (protection violation), reserved bit set in a page-table entry"
        );
        // The kernel prints the code in hex: "error 14" is an instruction fetch.
        let s = parse_kernel_line(b"x[1]: segfault at 0 ip 0 sp 0 error 14").unwrap();
        assert_eq!(s.error_code, Some(0x14));
    }

    #[test]
    fn garbage_is_not_a_segfault() {
        for line in [
            &b"segfault"[..],
            b"asterisk: caught a segfault at startup",
            b"]: segfault at ",
            b"x[]: segfault at 1 ip 2 sp 3",
            b"x[12a]: segfault at 1 ip 2 sp 3",
            b"x[1]: segfault at zz ip 2 sp 3",
            b"x[1]: segfault at 1 ip 2",
            b"\x00\xff\xfe[1]: segfault at 1 ip",
            b"a[1]: segfault at 11111111111111111 ip 2 sp 3",
        ] {
            assert_eq!(
                parse_kernel_line(line),
                None,
                "{}",
                String::from_utf8_lossy(line)
            );
        }
        // Invalid UTF-8 in the name is kept, lossily.
        let s =
            parse_kernel_line(b"\xffab[1]: segfault at 1 ip 2 sp 3 error 4 in \xfe[0+1]").unwrap();
        assert_eq!(s.process, "\u{fffd}ab");
        assert_eq!(s.mapping.unwrap().library, "\u{fffd}");
    }
}

#[cfg(test)]
mod fuzz_tests;
