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
//!
//! A stripped file (no `.symtab`) is named from its debug file when one is
//! installed (`-dbgsym` packages, `wazo-astdebug setup-dbg`): the file's
//! build-id note names it, `/usr/lib/debug/.build-id/xx/yyyy.debug`, whose
//! `.symtab` has the same addresses. That is what gdb reads too, so a lock
//! is named as well as gdb would.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
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

/// Where debug packages put their files.
pub const DEBUG_ROOT: &str = "/usr/lib/debug";

/// Symbol tables already read, by file.
pub struct SymbolCache {
    files: HashMap<FileKey, Option<Arc<ElfTables>>>,
    /// Where debug files are looked for, by build-id (a parameter for the tests).
    debug_root: PathBuf,
    /// How many files were parsed (not found in the cache), for the tests.
    pub reads: usize,
}

impl Default for SymbolCache {
    fn default() -> SymbolCache {
        SymbolCache::with_debug_root(Path::new(DEBUG_ROOT))
    }
}

impl SymbolCache {
    pub fn with_debug_root(debug_root: &Path) -> SymbolCache {
        SymbolCache {
            files: HashMap::new(),
            debug_root: debug_root.to_path_buf(),
            reads: 0,
        }
    }

    /// The data objects of the debug file of a stripped file, added to its
    /// tables; the tables as they are when there is none, or it is not the
    /// stripped file's (another build-id).
    fn with_debug_file(&self, mut tables: ElfTables) -> ElfTables {
        if tables.has_symtab {
            return tables;
        }
        let Some(path) = tables
            .build_id
            .as_deref()
            .and_then(|id| debug_file(&self.debug_root, id))
        else {
            return tables;
        };
        let Ok(file) = open_input(&path, "not reading it") else {
            return tables;
        };
        let Some(debug) = file
            .metadata()
            .ok()
            .and_then(|metadata| ElfTables::read(&(&file, metadata.len())))
        else {
            return tables;
        };
        if debug.build_id != tables.build_id || !debug.has_symtab {
            return tables;
        }
        tables.objects.extend(debug.objects);
        tables.objects.sort_by_key(|span| span.start);
        tables.objects.dedup();
        tables.has_symtab = true;
        tables
    }

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
        let tables = ElfTables::read(&(&file, metadata.len()))
            .map(|tables| Arc::new(self.with_debug_file(tables)));
        self.files.insert(key, tables.clone());
        tables
    }
}

/// `ROOT/.build-id/xx/yyyy.debug` for build-id `xxyyyy`, as gdb looks it up.
fn debug_file(root: &Path, id: &[u8]) -> Option<PathBuf> {
    let (first, rest) = id.split_first()?;
    if rest.is_empty() {
        return None;
    }
    let rest: String = rest.iter().map(|byte| format!("{byte:02x}")).collect();
    Some(
        root.join(".build-id")
            .join(format!("{first:02x}"))
            .join(format!("{rest}.debug")),
    )
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
    // mapping's (of two, the one as writable as the mapping); else (a RELRO split of one segment into two mappings) the
    // segment that holds the mapping's first byte.
    let writable = mapping.perms.contains('w');
    let at_offset = |s: &&crate::host::elf_symbols::Segment| s.offset & mask == mapping.offset;
    let segment = tables
        .segments
        .iter()
        .filter(at_offset)
        .find(|s| s.writable == writable)
        .or_else(|| tables.segments.iter().find(at_offset))
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

/// What the tables of the file `address` lies in say about it.
enum Found {
    /// A data object of the file (`agents_lock`, `lock_table+0x40`), and the file's name.
    Object(String, String),
    /// No object there: where it is in words (`res_foo.so .bss+0x120`, `heap`).
    Place(String),
}

fn find(cache: &mut SymbolCache, pid: u32, maps: &[Mapping], address: u64) -> Option<Found> {
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
        return place(maps, address).map(Found::Place);
    }
    let file = file_name(&mapping.path);
    let found = cache
        .tables(pid, mapping)
        .and_then(|tables| Some((file_address(&tables, mapping, address)?, tables)));
    let Some((at, tables)) = found else {
        return place(maps, address).map(Found::Place);
    };
    if let Some(object) = tables.object_at(at) {
        return Some(Found::Object(object, file.to_string()));
    }
    Some(Found::Place(match tables.section_at(at) {
        Some(section) => format!("{file} {section}"),
        None => format!("{file}+0x{at:x}"),
    }))
}

/// Where `address` of process `pid` is, in words, or None when no mapping
/// holds it: `agents_lock (app_agent_pool.so)`, `res_foo.so .bss+0x120`, `heap`.
pub fn name(cache: &mut SymbolCache, pid: u32, maps: &[Mapping], address: u64) -> Option<String> {
    Some(match find(cache, pid, maps, address)? {
        Found::Object(object, file) => format!("{object} ({file})"),
        Found::Place(place) => place,
    })
}

/// The name gdb's `info symbol` would give `address` (`agents_lock`,
/// `lock_table+0x40`, without the file), else [`name`]'s words for where
/// it is: what gdb's reading of a live process is named with, after gdb.
pub fn symbol_or_place(
    cache: &mut SymbolCache,
    pid: u32,
    maps: &[Mapping],
    address: u64,
) -> Option<String> {
    Some(match find(cache, pid, maps, address)? {
        Found::Object(object, _) => object,
        Found::Place(place) => place,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::elf_symbols::ElfTables;
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

    fn run(program: &str, args: &[&std::ffi::OsStr]) {
        let status = std::process::Command::new(program)
            .args(args)
            .status()
            .unwrap();
        assert!(status.success(), "{program} {args:?}");
    }

    #[test]
    fn a_stripped_file_is_named_from_its_debug_file_found_by_build_id() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("prog.c");
        std::fs::write(
            &source,
            "int agents_lock[10] = {1};\nint main(void) { return agents_lock[0]; }\n",
        )
        .unwrap();
        let built = dir.path().join("prog");
        let debug = dir.path().join("prog.debug");
        let stripped = dir.path().join("asterisk");
        run(
            "cc",
            &[
                "-g".as_ref(),
                "-Wl,--build-id".as_ref(),
                "-o".as_ref(),
                built.as_os_str(),
                source.as_os_str(),
            ],
        );
        run(
            "objcopy",
            &[
                "--only-keep-debug".as_ref(),
                built.as_os_str(),
                debug.as_os_str(),
            ],
        );
        run(
            "objcopy",
            &[
                "--strip-all".as_ref(),
                built.as_os_str(),
                stripped.as_os_str(),
            ],
        );

        let read = |path: &Path| {
            let file = File::open(path).unwrap();
            let length = file.metadata().unwrap().len();
            ElfTables::read(&(&file, length)).unwrap()
        };
        let full = read(&built);
        let lock = full
            .objects
            .iter()
            .find(|o| o.name == "agents_lock")
            .unwrap()
            .start;
        let tables = read(&stripped);
        assert!(!tables.has_symtab);
        let id = tables
            .build_id
            .clone()
            .expect("cc -Wl,--build-id gives a build-id note");
        assert_eq!(read(&debug).build_id.as_ref(), Some(&id));
        // The data segment, mapped at 0x7f0000000000 plus its file addresses.
        let segment = *tables
            .segments
            .iter()
            .find(|s| s.vaddr <= lock && lock < s.vaddr + s.filesz)
            .unwrap();
        let base = 0x7f00_0000_0000u64;
        let start = base + (segment.vaddr & !0xfff);
        let end = (base + segment.vaddr + segment.filesz + 0xfff) & !0xfff;
        let inode = std::fs::metadata(&stripped).unwrap().ino();
        let maps = vec![mapping(&format!(
            "{start:x}-{end:x} rw-p {:08x} 08:01 {inode} {}",
            segment.offset & !0xfff,
            stripped.display()
        ))];
        let address = base + lock;

        // No debug file installed: the section only.
        let root = dir.path().join("debug");
        let mut cache = SymbolCache::with_debug_root(&root);
        let placed = name(&mut cache, u32::MAX, &maps, address).unwrap();
        assert!(placed.starts_with("asterisk .data+0x"), "{placed}");

        let hex: String = id.iter().map(|byte| format!("{byte:02x}")).collect();
        let installed = root.join(".build-id").join(&hex[..2]);
        std::fs::create_dir_all(&installed).unwrap();
        std::fs::copy(&debug, installed.join(format!("{}.debug", &hex[2..]))).unwrap();
        let mut cache = SymbolCache::with_debug_root(&root);
        assert_eq!(
            name(&mut cache, u32::MAX, &maps, address + 4).as_deref(),
            Some("agents_lock+0x4 (asterisk)")
        );
        assert_eq!(
            symbol_or_place(&mut cache, u32::MAX, &maps, address).as_deref(),
            Some("agents_lock")
        );
        assert_eq!(cache.reads, 1);

        // Another build's debug file under that name is not this file's.
        std::fs::copy(&stripped, installed.join(format!("{}.debug", &hex[2..]))).unwrap();
        let mut cache = SymbolCache::with_debug_root(&root);
        let placed = name(&mut cache, u32::MAX, &maps, address).unwrap();
        assert!(placed.starts_with("asterisk .data+0x"), "{placed}");
    }
}
