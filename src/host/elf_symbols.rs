//! The parts of an ELF64 file that name an address of a live process
//! without gdb: its load segments (where the file's addresses land in
//! memory), its allocated sections (`.bss`, `.data`) and the data objects of
//! its symbol tables (`.symtab` when the file is not stripped, `.dynsym`
//! always), so that a static mutex such as `agents_lock` is shown by name.
//!
//! The files are Asterisk's binary, its modules and the libraries it maps:
//! they may be truncated, replaced or garbage. Nothing here trusts a
//! header: every offset and size is checked against the file's length, every
//! table has a bound, and a read that fails is an absent table, never a
//! panic.

use std::fs::File;
use std::os::unix::fs::FileExt;

/// The most one table (symbols, their names, a section read whole) may
/// take: Asterisk's own `.symtab` is a few hundred KiB.
pub const TABLE_LIMIT: u64 = 32 << 20;

const MAX_SEGMENTS: usize = 256;
const MAX_SECTIONS: usize = 8192;
const MAX_NAME: usize = 256;

const PT_LOAD: u32 = 1;
const PT_NOTE: u32 = 4;
const PF_W: u32 = 2;
const SHT_NOTE: u32 = 7;
const NT_GNU_BUILD_ID: u32 = 3;
/// The most of notes read in search of the build-id: a file's notes are a
/// few hundred bytes.
const NOTES_LIMIT: u64 = 64 << 10;
/// SHA-1 is 20 bytes; nothing sane uses more than a SHA-512's 64.
const MAX_BUILD_ID: usize = 64;
const SHT_SYMTAB: u32 = 2;
const SHT_DYNSYM: u32 = 11;
const SHF_ALLOC: u64 = 2;
/// `.tdata`/`.tbss`: one copy per thread, at no fixed address.
const SHF_TLS: u64 = 0x400;
const STT_OBJECT: u8 = 1;
const SHN_LORESERVE: u16 = 0xff00;

/// Where bytes come from: a file read in place, or a buffer (the tests).
pub trait Source {
    /// Exactly `length` bytes at `offset`, or None.
    fn bytes(&self, offset: u64, length: u64) -> Option<Vec<u8>>;
}

impl Source for (&File, u64) {
    fn bytes(&self, offset: u64, length: u64) -> Option<Vec<u8>> {
        if offset.checked_add(length)? > self.1 || length > TABLE_LIMIT {
            return None;
        }
        let mut buffer = vec![0u8; usize::try_from(length).ok()?];
        self.0.read_exact_at(&mut buffer, offset).ok()?;
        Some(buffer)
    }
}

impl Source for &[u8] {
    fn bytes(&self, offset: u64, length: u64) -> Option<Vec<u8>> {
        let start = usize::try_from(offset).ok()?;
        let end = start.checked_add(usize::try_from(length).ok()?)?;
        self.get(start..end).map(<[u8]>::to_vec)
    }
}

/// One program header of type PT_LOAD.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    pub offset: u64,
    pub vaddr: u64,
    pub filesz: u64,
    /// PF_W: tells a data segment from the read-only one whose last page it
    /// shares (both then map at the same file offset).
    pub writable: bool,
}

/// One allocated section or one data object, by its file addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    pub start: u64,
    pub size: u64,
    pub name: String,
}

/// What one ELF file says about its addresses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ElfTables {
    pub segments: Vec<Segment>,
    /// Allocated sections, by start.
    pub sections: Vec<Span>,
    /// Data objects (`STT_OBJECT`: thread-local ones are `STT_TLS`, at no
    /// fixed address) of both tables, by start.
    pub objects: Vec<Span>,
    /// Whether the file has a `.symtab` (a stripped file keeps `.dynsym`,
    /// its exported names, only).
    pub has_symtab: bool,
    /// Its `NT_GNU_BUILD_ID` note: the name of its debug file under
    /// `/usr/lib/debug/.build-id/`, where a `-dbgsym` package puts the
    /// `.symtab` the stripped file lost.
    pub build_id: Option<Vec<u8>>,
    /// The bytes `objects` holds, about.
    kept_bytes: u64,
}

fn u16_at(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
}

/// A section header, as far as we use it.
#[derive(Debug, Clone, Copy)]
struct Section {
    name: u32,
    kind: u32,
    flags: u64,
    addr: u64,
    offset: u64,
    size: u64,
    link: u32,
    align: u64,
    entsize: u64,
}

/// The header, program headers and section headers of an ELF64
/// little-endian file; None when it is not one or they do not fit in it.
struct Headers {
    segments: Vec<Segment>,
    /// PT_NOTE segments: (offset, size, alignment).
    notes: Vec<(u64, u64, u64)>,
    sections: Vec<Section>,
    shstrndx: usize,
}

fn headers(source: &dyn Source) -> Option<Headers> {
    let header = source.bytes(0, 64)?;
    if header.get(..4)? != b"\x7fELF" || header[4] != 2 || header[5] != 1 {
        return None;
    }
    let phoff = u64_at(&header, 32)?;
    let shoff = u64_at(&header, 40)?;
    let phentsize = u16_at(&header, 54)?;
    let phnum = usize::from(u16_at(&header, 56)?);
    let shentsize = u16_at(&header, 58)?;
    let shnum = usize::from(u16_at(&header, 60)?);
    let shstrndx = usize::from(u16_at(&header, 62)?);
    let mut segments = Vec::new();
    let mut notes = Vec::new();
    if phnum > 0 && phentsize == 56 && phnum <= MAX_SEGMENTS {
        let table = source.bytes(phoff, 56 * phnum as u64)?;
        for entry in table.chunks_exact(56) {
            match u32_at(entry, 0)? {
                PT_LOAD => segments.push(Segment {
                    offset: u64_at(entry, 8)?,
                    vaddr: u64_at(entry, 16)?,
                    filesz: u64_at(entry, 32)?,
                    writable: u32_at(entry, 4)? & PF_W != 0,
                }),
                PT_NOTE => notes.push((u64_at(entry, 8)?, u64_at(entry, 32)?, u64_at(entry, 48)?)),
                _ => {}
            }
        }
    }
    let mut sections = Vec::new();
    // A stripped-to-the-bone file may have no section headers: its
    // segments alone still give offsets.
    if shnum > 0 && shentsize == 64 && shnum <= MAX_SECTIONS {
        if let Some(table) = source.bytes(shoff, 64 * shnum as u64) {
            for entry in table.chunks_exact(64) {
                sections.push(Section {
                    name: u32_at(entry, 0)?,
                    kind: u32_at(entry, 4)?,
                    flags: u64_at(entry, 8)?,
                    addr: u64_at(entry, 16)?,
                    offset: u64_at(entry, 24)?,
                    size: u64_at(entry, 32)?,
                    link: u32_at(entry, 40)?,
                    align: u64_at(entry, 48)?,
                    entsize: u64_at(entry, 56)?,
                });
            }
        }
    }
    Some(Headers {
        segments,
        notes,
        sections,
        shstrndx,
    })
}

/// The NUL-terminated name at `at` in a string table.
fn name_at(table: &[u8], at: u32) -> Option<String> {
    let rest = table.get(usize::try_from(at).ok()?..)?;
    let end = memchr::memchr(0, rest)?;
    let name = rest.get(..end.min(MAX_NAME))?;
    Some(String::from_utf8_lossy(name).into_owned())
}

impl ElfTables {
    /// Reads the tables of `source`; None when it is no ELF64 little-endian
    /// file (32-bit, big-endian, garbage, truncated before its headers).
    pub fn read(source: &dyn Source) -> Option<ElfTables> {
        let headers = headers(source)?;
        let section_names = headers
            .sections
            .get(headers.shstrndx)
            .and_then(|s| source.bytes(s.offset, s.size));
        let section_name = |section: &Section| {
            section_names
                .as_deref()
                .and_then(|table| name_at(table, section.name))
                .unwrap_or_default()
        };
        let mut tables = ElfTables {
            segments: headers.segments.clone(),
            ..ElfTables::default()
        };
        for section in &headers.sections {
            if section.flags & SHF_ALLOC != 0 && section.flags & SHF_TLS == 0 && section.size > 0 {
                tables.sections.push(Span {
                    start: section.addr,
                    size: section.size,
                    name: section_name(section),
                });
            }
        }
        for section in &headers.sections {
            if section.kind != SHT_SYMTAB && section.kind != SHT_DYNSYM {
                continue;
            }
            tables.has_symtab |= section.kind == SHT_SYMTAB;
            tables.read_symbols(source, section, &headers.sections);
        }
        tables.build_id = build_id(source, &headers);
        tables.sections.sort_by_key(|span| span.start);
        tables.objects.sort_by_key(|span| span.start);
        tables.objects.dedup();
        Some(tables)
    }

    fn read_symbols(&mut self, source: &dyn Source, table: &Section, all: &[Section]) {
        if table.entsize != 24 {
            return;
        }
        let Some(names) = usize::try_from(table.link)
            .ok()
            .and_then(|link| all.get(link))
            .and_then(|strings| source.bytes(strings.offset, strings.size))
        else {
            return;
        };
        let Some(entries) = source.bytes(table.offset, table.size - table.size % 24) else {
            return;
        };
        for entry in entries.chunks_exact(24) {
            let (Some(name), Some(info), Some(index), Some(value), Some(size)) = (
                u32_at(entry, 0),
                entry.get(4).copied(),
                u16_at(entry, 6),
                u64_at(entry, 8),
                u64_at(entry, 16),
            ) else {
                continue;
            };
            let kind = info & 0xf;
            if kind != STT_OBJECT || size == 0 {
                continue;
            }
            if index == 0 || index >= SHN_LORESERVE {
                continue;
            }
            if let Some(name) = name_at(&names, name).filter(|name| !name.is_empty()) {
                // Names may be shared by many entries: what is kept has a
                // bound of its own.
                self.kept_bytes += (name.len() + std::mem::size_of::<Span>()) as u64;
                if self.kept_bytes > TABLE_LIMIT {
                    return;
                }
                self.objects.push(Span {
                    start: value,
                    size,
                    name,
                });
            }
        }
    }

    /// The bytes of the section named `name`, at most `limit` of them.
    pub fn section_bytes(source: &dyn Source, name: &str, limit: u64) -> Option<Vec<u8>> {
        let headers = headers(source)?;
        let names = headers.sections.get(headers.shstrndx)?;
        let names = source.bytes(names.offset, names.size)?;
        let section = headers
            .sections
            .iter()
            .find(|s| name_at(&names, s.name).as_deref() == Some(name))?;
        source.bytes(section.offset, section.size.min(limit))
    }

    /// The data object holding file address `vaddr`: `agents_lock`, or
    /// `lock_table+0x40` inside a larger object.
    pub fn object_at(&self, vaddr: u64) -> Option<String> {
        let found = innermost(&self.objects, vaddr)?;
        Some(match vaddr - found.start {
            0 => found.name.clone(),
            offset => format!("{}+0x{offset:x}", found.name),
        })
    }

    /// The allocated section holding `vaddr` and the offset into it:
    /// `.bss+0x120`.
    pub fn section_at(&self, vaddr: u64) -> Option<String> {
        let found = innermost(&self.sections, vaddr)?;
        Some(format!("{}+0x{:x}", found.name, vaddr - found.start))
    }
}

/// The `NT_GNU_BUILD_ID` of the file: from its note sections, else (no
/// section headers) its PT_NOTE segments.
fn build_id(source: &dyn Source, headers: &Headers) -> Option<Vec<u8>> {
    let sections = headers
        .sections
        .iter()
        .filter(|s| s.kind == SHT_NOTE)
        .map(|s| (s.offset, s.size, s.align));
    let segments = headers.notes.iter().copied();
    for (offset, size, align) in sections.chain(segments) {
        let Some(bytes) = source.bytes(offset, size.min(NOTES_LIMIT)) else {
            continue;
        };
        // Notes are 4-aligned but for 8-aligned ones (.note.gnu.property).
        if let Some(id) = note_build_id(&bytes, if align == 8 { 8 } else { 4 }) {
            return Some(id);
        }
    }
    None
}

/// The build-id among the notes of `bytes`, aligned to `align`.
fn note_build_id(bytes: &[u8], align: usize) -> Option<Vec<u8>> {
    let pad = |length: usize| length.checked_add(align - 1).map(|l| l & !(align - 1));
    let mut at = 0;
    while at + 12 <= bytes.len() {
        let namesz = usize::try_from(u32_at(bytes, at)?).ok()?;
        let descsz = usize::try_from(u32_at(bytes, at + 4)?).ok()?;
        let kind = u32_at(bytes, at + 8)?;
        let name_at = at + 12;
        let desc_at = name_at.checked_add(pad(namesz)?)?;
        let end = desc_at.checked_add(pad(descsz)?)?;
        let name = bytes.get(name_at..name_at.checked_add(namesz)?)?;
        let desc = bytes.get(desc_at..desc_at.checked_add(descsz)?)?;
        if kind == NT_GNU_BUILD_ID && name == b"GNU\0" && (1..=MAX_BUILD_ID).contains(&descsz) {
            return Some(desc.to_vec());
        }
        at = end;
    }
    None
}

/// The span holding `at` that starts last (the innermost of nested ones).
fn innermost(spans: &[Span], at: u64) -> Option<&Span> {
    let after = spans.partition_point(|span| span.start <= at);
    spans
        .get(..after)?
        .iter()
        .rev()
        .take(64)
        .find(|span| at - span.start < span.size)
}

#[cfg(test)]
pub mod tests;

#[cfg(test)]
mod fuzz_tests;
