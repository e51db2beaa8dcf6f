//! Naming an address of a live process without gdb, from its
//! /proc/PID/maps and the ELF files it maps: `agents_lock (app_agent_pool.so)`
//! when the file's symbol tables name it (a static mutex of a module that is
//! not stripped), else the mapping and the section it is in
//! (`res_foo.so .bss+0x120`), `heap`, `anonymous memory`.
//!
//! A file is opened through `/proc/PID/map_files/`, which is the very file
//! mapped even when a package upgrade replaced it on disk since Asterisk
//! started; failing that (no CAP_SYS_ADMIN), through its path, and only
//! when the inode there is still the one mapped. Its tables are read once
//! per file (path, inode, mtime): `watch` names locks sample after sample.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;

use crate::host::elf_symbols::ElfTables;
use crate::host::files::open_input;
use crate::host::procfs::{Mapping, place};

/// Files whose tables are kept, at most: a process maps a few hundred.
const MAX_FILES: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct FileKey {
    path: String,
    inode: u64,
    mtime: (i64, i64),
}

/// Symbol tables already read, by file.
#[derive(Default)]
pub struct SymbolCache {
    files: HashMap<FileKey, Option<Arc<ElfTables>>>,
    /// How many files were parsed (not found in the cache), for the tests.
    pub reads: usize,
}

impl SymbolCache {
    /// The tables of the file `mapping` maps in process `pid`; None when it
    /// cannot be opened or is no ELF64 file.
    fn tables(&mut self, pid: u32, mapping: &Mapping) -> Option<Arc<ElfTables>> {
        let file = open_mapped(pid, mapping)?;
        let metadata = file.metadata().ok()?;
        let key = FileKey {
            path: mapping.path.clone(),
            inode: metadata.ino(),
            mtime: (metadata.mtime(), metadata.mtime_nsec()),
        };
        if let Some(found) = self.files.get(&key) {
            return found.clone();
        }
        if self.files.len() >= MAX_FILES {
            self.files.clear();
        }
        self.reads += 1;
        let tables = ElfTables::read(&(&file, metadata.len())).map(Arc::new);
        self.files.insert(key, tables.clone());
        tables
    }
}

/// The file behind `mapping`, as mapped.
pub fn open_mapped(pid: u32, mapping: &Mapping) -> Option<File> {
    let link = format!(
        "/proc/{pid}/map_files/{:x}-{:x}",
        mapping.start, mapping.end
    );
    if let Ok(file) = open_input(Path::new(&link), "not reading it") {
        return Some(file);
    }
    if mapping.path.ends_with(" (deleted)") || !mapping.path.starts_with('/') {
        return None;
    }
    let file = open_input(Path::new(&mapping.path), "not reading it").ok()?;
    let inode = file.metadata().ok()?.ino();
    (inode == mapping.inode).then_some(file)
}

/// The file's name as shown: its last component.
pub fn file_name(path: &str) -> &str {
    let path = path.strip_suffix(" (deleted)").unwrap_or(path);
    path.rsplit('/').next().unwrap_or(path)
}

/// The page size, which rounds a segment's file offset down to its
/// mapping's.
fn page_mask() -> u64 {
    // SAFETY: sysconf(3) reads a constant.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    let size = u64::try_from(size).ok().filter(|s| s.is_power_of_two());
    !(size.unwrap_or(4096) - 1)
}

/// The file address (as in its symbol table) of `address`, which lies in
/// (or, for `.bss` past the file's last page, just after) `mapping`.
fn file_address(tables: &ElfTables, mapping: &Mapping, address: u64) -> Option<u64> {
    let mask = page_mask();
    // The segment the mapping was made for: its offset rounds down to the
    // mapping's; else (a RELRO split of one segment into two mappings) the
    // segment that holds the mapping's first byte.
    let segment = tables
        .segments
        .iter()
        .find(|s| s.offset & mask == mapping.offset)
        .or_else(|| {
            tables
                .segments
                .iter()
                .find(|s| s.offset & mask <= mapping.offset && mapping.offset < s.offset + s.filesz)
        })?;
    let bias = mapping
        .start
        .wrapping_sub(mapping.offset)
        .wrapping_sub(segment.vaddr.wrapping_sub(segment.offset));
    Some(address.wrapping_sub(bias))
}

/// Where `address` of process `pid` is, in words, or None when no mapping
/// holds it.
pub fn name(cache: &mut SymbolCache, pid: u32, maps: &[Mapping], address: u64) -> Option<String> {
    let index = maps
        .iter()
        .position(|m| m.start <= address && address < m.end)?;
    let mut mapping = &maps[index];
    // The end of a file's .bss that does not fit in its last page is
    // anonymous memory mapped right after it.
    if mapping.path.is_empty() && index > 0 {
        let before = &maps[index - 1];
        if before.end == mapping.start && before.path.starts_with('/') && before.perms.contains('w')
        {
            mapping = before;
        }
    }
    if !mapping.path.starts_with('/') {
        return place(maps, address);
    }
    let file = file_name(&mapping.path);
    let found = cache
        .tables(pid, mapping)
        .and_then(|tables| Some((file_address(&tables, mapping, address)?, tables)));
    let Some((at, tables)) = found else {
        return place(maps, address);
    };
    if let Some(object) = tables.object_at(at) {
        return Some(format!("{object} ({file})"));
    }
    Some(match tables.section_at(at) {
        Some(section) => format!("{file} {section}"),
        None => format!("{file}+0x{at:x}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::elf_symbols::tests::tiny_elf;

    fn mapping(line: &str) -> Mapping {
        Mapping::parse(line).unwrap()
    }

    #[test]
    fn a_static_lock_is_named_and_a_nameless_one_placed_in_its_section() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("res_foo.so");
        // .bss at file address 0x4000 (0x100 bytes), agents_lock at 0x4040.
        std::fs::write(&path, tiny_elf(Some(("agents_lock", 0x4040, 40)))).unwrap();
        let inode = std::fs::metadata(&path).unwrap().ino();
        let shown = path.display();
        let maps = vec![
            mapping(&format!(
                "7f0000000000-7f0000001000 r--p 00000000 08:01 {inode} {shown}"
            )),
            mapping(&format!(
                "7f0000003000-7f0000004000 rw-p 00003000 08:01 {inode} {shown}"
            )),
            mapping("7f0000004000-7f0000005000 rw-p 00000000 00:00 0 "),
        ];
        let mut cache = SymbolCache::default();
        // Not a process of ours with these mappings: map_files fails, the
        // path (same inode) is read.
        let pid = u32::MAX;
        assert_eq!(
            name(&mut cache, pid, &maps, 0x7f0000004040).as_deref(),
            Some("agents_lock (res_foo.so)")
        );
        assert_eq!(
            name(&mut cache, pid, &maps, 0x7f0000004048).as_deref(),
            Some("agents_lock+0x8 (res_foo.so)")
        );
        assert_eq!(
            name(&mut cache, pid, &maps, 0x7f0000004080).as_deref(),
            Some("res_foo.so .bss+0x80")
        );
        assert_eq!(cache.reads, 1, "read once, then from the cache");
        // Stripped of the name: the section and offset.
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, tiny_elf(None)).unwrap();
        let inode = std::fs::metadata(&path).unwrap().ino();
        let maps: Vec<Mapping> = maps
            .into_iter()
            .map(|mut m| {
                if m.inode != 0 {
                    m.inode = inode;
                }
                m
            })
            .collect();
        assert_eq!(
            name(&mut cache, pid, &maps, 0x7f0000004040).as_deref(),
            Some("res_foo.so .bss+0x40")
        );
        assert_eq!(cache.reads, 2);
    }

    #[test]
    fn a_replaced_file_is_not_read_for_the_one_mapped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("res_foo.so");
        std::fs::write(&path, tiny_elf(Some(("agents_lock", 0x4040, 40)))).unwrap();
        let shown = path.display();
        let maps = vec![mapping(&format!(
            "7f0000003000-7f0000005000 rw-p 00003000 08:01 1 {shown}"
        ))];
        let mut cache = SymbolCache::default();
        assert_eq!(
            name(&mut cache, u32::MAX, &maps, 0x7f0000004040).as_deref(),
            Some("res_foo.so+0x4040")
        );
    }
}
