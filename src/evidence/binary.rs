//! Where a file that starts as text stops being text.
//!
//! A core file holds the whole memory of Asterisk, and it does not always
//! come alone: `cat core >> notes.log`, a log whose last line runs into
//! the bytes of a crash, raw memory pasted after a backtrace. `report`
//! reads the first 8 KiB of a file to tell text from binary; [`TextGuard`]
//! watches every later piece of a text file as it streams:
//!
//! - an ELF core header anywhere, **across piece boundaries** too (a line
//!   longer than the reader's limit may be cut inside the 18-byte header);
//! - a NUL byte, or a piece dense with control bytes: what follows is not
//!   text (process memory, a core whose header is damaged, a truncated
//!   write) and must not be redacted as if it were.

use crate::evidence::elf;

/// What a piece of a file says about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Text: redact it and go on.
    Text,
    /// An ELF core header (or the start of an ELF file) at this offset.
    Core(u64),
    /// Not text from this offset (the piece's start) on.
    Binary(u64, &'static str),
}

/// Pieces shorter than this are not judged by their share of control
/// bytes (a short line with one escape code is still text).
const DENSE_MIN: usize = 32;

/// Watches the pieces of one file, in order.
#[derive(Debug, Default)]
pub struct TextGuard {
    /// The last `HEADER_LEN - 1` bytes seen: a header cut between two
    /// pieces is found when the next one arrives.
    tail: Vec<u8>,
}

impl TextGuard {
    pub fn new() -> TextGuard {
        TextGuard::default()
    }

    /// Judges the next piece, which starts at byte `offset` of the file.
    pub fn check(&mut self, piece: &[u8], offset: u64) -> Verdict {
        let keep = elf::HEADER_LEN - 1;
        let tail_len = self.tail.len();
        // A header that starts in the tail and ends in this piece (the
        // tail is only joined to the piece when it holds the magic's 0x7f).
        let mut straddling = None;
        let mut tail_magic = None;
        if memchr::memchr(elf::MAGIC[0], &self.tail).is_some() {
            let mut joined = self.tail.clone();
            joined.extend_from_slice(&piece[..piece.len().min(keep)]);
            let back = |at: usize| offset - (tail_len - at) as u64;
            straddling = elf::find_core_header(&joined)
                .filter(|&at| at < tail_len)
                .map(back);
            tail_magic = memchr::memmem::find(&joined, &elf::MAGIC[..])
                .filter(|&at| at < tail_len)
                .map(back);
        }
        if piece.len() >= keep {
            self.tail.clear();
            self.tail.extend_from_slice(&piece[piece.len() - keep..]);
        } else {
            self.tail.extend_from_slice(piece);
            let extra = self.tail.len().saturating_sub(keep);
            self.tail.drain(..extra);
        }
        if let Some(at) = straddling {
            return Verdict::Core(at);
        }
        if let Some(at) = elf::find_core_header(piece) {
            return Verdict::Core(offset + at as u64);
        }
        let nul = memchr::memchr(0, piece).is_some();
        let dense = piece.len() >= DENSE_MIN && controls(piece) * 10 > piece.len();
        if nul || dense {
            // Binary from here: an ELF file starting here is a core
            // until proven otherwise (its header may be damaged or cut).
            let magic = tail_magic.or_else(|| {
                memchr::memmem::find(piece, &elf::MAGIC[..]).map(|at| offset + at as u64)
            });
            if let Some(at) = magic {
                return Verdict::Core(at);
            }
            let why = if nul {
                "a NUL byte"
            } else {
                "mostly control bytes"
            };
            return Verdict::Binary(offset, why);
        }
        Verdict::Text
    }
}

/// Bytes that no text file holds: controls other than tab, newline,
/// carriage return, form feed and escape (colours), and backspace.
pub fn controls(bytes: &[u8]) -> usize {
    // Every line of a file goes through here: branchless, counted in u8
    // lanes a block at a time, so that it compiles to vector compares.
    let control = |byte: u8| {
        (byte < 0x20)
            & (byte != b'\t')
            & (byte != b'\n')
            & (byte != b'\r')
            & (byte != 0x0c)
            & (byte != 0x1b)
            & (byte != 0x08)
    };
    bytes
        .chunks(255)
        .map(|block| {
            block
                .iter()
                .fold(0u8, |count, &byte| count + control(byte) as u8) as usize
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn core_header() -> Vec<u8> {
        let mut bytes = vec![0u8; 64];
        bytes[..4].copy_from_slice(elf::MAGIC);
        bytes[4] = 2;
        bytes[5] = 1;
        bytes[6] = 1;
        bytes[16] = 4;
        bytes
    }

    #[test]
    fn text_stays_text() {
        let mut guard = TextGuard::new();
        assert_eq!(
            guard.check(b"a log line \x1b[31mred\x1b[0m \xff\xfe\n", 0),
            Verdict::Text
        );
        assert_eq!(guard.check(b"\x01 short\n", 40), Verdict::Text);
    }

    #[test]
    fn a_header_cut_at_every_offset_is_found() {
        let header = core_header();
        for cut in 0..=elf::HEADER_LEN {
            let mut first = b"x".repeat(100);
            first.extend_from_slice(&header[..cut]);
            let second = &header[cut..];
            let mut guard = TextGuard::new();
            let one = guard.check(&first, 0);
            let verdict = if one == Verdict::Text {
                guard.check(second, first.len() as u64)
            } else {
                one
            };
            assert_eq!(verdict, Verdict::Core(100), "cut at {cut}");
        }
    }

    #[test]
    fn a_header_cut_over_many_small_pieces_is_found() {
        let header = core_header();
        let mut guard = TextGuard::new();
        let mut verdict = guard.check(b"text ", 0);
        for (index, byte) in header.iter().enumerate() {
            if verdict != Verdict::Text {
                break;
            }
            verdict = guard.check(std::slice::from_ref(byte), 5 + index as u64);
        }
        assert_eq!(verdict, Verdict::Core(5));
    }

    #[test]
    fn memory_after_text_is_binary_from_its_piece() {
        let mut guard = TextGuard::new();
        assert_eq!(guard.check(b"text\n", 0), Verdict::Text);
        assert_eq!(
            guard.check(b"\x10\x20\x00\x00\x55\x55", 5),
            Verdict::Binary(5, "a NUL byte")
        );
        let mut guard = TextGuard::new();
        let dense = b"\x01\x02\x03\x04\x05\x06abcdefghijklmnopqrstuvwxyz0123".to_vec();
        assert!(matches!(guard.check(&dense, 9), Verdict::Binary(9, _)));
    }
}

#[cfg(test)]
mod fuzz_tests;
