use super::*;

/// A small ELF64 shared object as a linker lays one out: a read-only
/// segment at 0, a writable one at 0x3000 whose `.bss` (0x4000, 0x100
/// bytes) ends past its file bytes, `.rodata` holding `rodata`, and, when
/// `symbol` is given, a `.symtab` with that one data object (name, file
/// address, size); without it, the file is as `strip` leaves it.
pub fn tiny_elf_with(symbol: Option<(&str, u64, u64)>, rodata: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; 64 + 2 * 56];
    let mut shstrtab = b"\0.rodata\0.data\0.bss\0.symtab\0.strtab\0.shstrtab\0".to_vec();
    shstrtab.push(0);
    let name = |what: &str| {
        let text = String::from_utf8_lossy(&shstrtab).into_owned();
        text.find(&format!("\0{what}\0")).unwrap() as u32 + 1
    };
    let (n_rodata, n_data, n_bss, n_symtab, n_strtab, n_shstrtab) = (
        name(".rodata"),
        name(".data"),
        name(".bss"),
        name(".symtab"),
        name(".strtab"),
        name(".shstrtab"),
    );
    let rodata_at = out.len() as u64;
    out.extend_from_slice(rodata);
    let shstrtab_at = out.len() as u64;
    out.extend_from_slice(&shstrtab);
    let mut strtab = vec![0u8];
    let mut symtab = vec![0u8; 24];
    if let Some((symbol, value, size)) = symbol {
        let at = strtab.len() as u32;
        strtab.extend_from_slice(symbol.as_bytes());
        strtab.push(0);
        let mut entry = Vec::new();
        entry.extend_from_slice(&at.to_le_bytes());
        entry.push(STT_OBJECT); // local object
        entry.push(0);
        entry.extend_from_slice(&3u16.to_le_bytes()); // in .bss
        entry.extend_from_slice(&value.to_le_bytes());
        entry.extend_from_slice(&size.to_le_bytes());
        symtab.extend_from_slice(&entry);
    }
    let strtab_at = out.len() as u64;
    out.extend_from_slice(&strtab);
    let symtab_at = out.len() as u64;
    out.extend_from_slice(&symtab);
    let shoff = out.len() as u64;
    let mut section = |name: u32,
                       kind: u32,
                       flags: u64,
                       addr: u64,
                       offset: u64,
                       size: u64,
                       link: u32,
                       entsize: u64| {
        let mut entry = Vec::new();
        entry.extend_from_slice(&name.to_le_bytes());
        entry.extend_from_slice(&kind.to_le_bytes());
        entry.extend_from_slice(&flags.to_le_bytes());
        entry.extend_from_slice(&addr.to_le_bytes());
        entry.extend_from_slice(&offset.to_le_bytes());
        entry.extend_from_slice(&size.to_le_bytes());
        entry.extend_from_slice(&link.to_le_bytes());
        entry.extend_from_slice(&0u32.to_le_bytes());
        entry.extend_from_slice(&8u64.to_le_bytes());
        entry.extend_from_slice(&entsize.to_le_bytes());
        out.extend_from_slice(&entry);
    };
    section(0, 0, 0, 0, 0, 0, 0, 0);
    section(
        n_rodata,
        1,
        SHF_ALLOC,
        0x800,
        rodata_at,
        rodata.len() as u64,
        0,
        0,
    );
    section(n_data, 1, SHF_ALLOC | 1, 0x3000, 0x3000, 0x1000, 0, 0);
    section(n_bss, 8, SHF_ALLOC | 1, 0x4000, 0x4000, 0x100, 0, 0);
    let mut count = 4u16;
    if symbol.is_some() {
        section(
            n_symtab,
            SHT_SYMTAB,
            0,
            0,
            symtab_at,
            symtab.len() as u64,
            5,
            24,
        );
        section(n_strtab, 3, 0, 0, strtab_at, strtab.len() as u64, 0, 0);
        count += 2;
    }
    section(
        n_shstrtab,
        3,
        0,
        0,
        shstrtab_at,
        shstrtab.len() as u64,
        0,
        0,
    );
    count += 1;
    out[..4].copy_from_slice(b"\x7fELF");
    out[4] = 2;
    out[5] = 1;
    out[6] = 1;
    out[16..18].copy_from_slice(&3u16.to_le_bytes());
    out[18..20].copy_from_slice(&62u16.to_le_bytes());
    out[32..40].copy_from_slice(&64u64.to_le_bytes());
    out[40..48].copy_from_slice(&shoff.to_le_bytes());
    out[52..54].copy_from_slice(&64u16.to_le_bytes());
    out[54..56].copy_from_slice(&56u16.to_le_bytes());
    out[56..58].copy_from_slice(&2u16.to_le_bytes());
    out[58..60].copy_from_slice(&64u16.to_le_bytes());
    out[60..62].copy_from_slice(&count.to_le_bytes());
    out[62..64].copy_from_slice(&(count - 1).to_le_bytes());
    for (index, (offset, vaddr, size)) in [(0u64, 0u64, 0x1000u64), (0x3000, 0x3000, 0x1000)]
        .into_iter()
        .enumerate()
    {
        let at = 64 + 56 * index;
        out[at..at + 4].copy_from_slice(&PT_LOAD.to_le_bytes());
        out[at + 8..at + 16].copy_from_slice(&offset.to_le_bytes());
        out[at + 16..at + 24].copy_from_slice(&vaddr.to_le_bytes());
        out[at + 32..at + 40].copy_from_slice(&size.to_le_bytes());
        out[at + 40..at + 48].copy_from_slice(&size.to_le_bytes());
    }
    out
}

/// [`tiny_elf_with`] and no `.rodata` bytes.
pub fn tiny_elf(symbol: Option<(&str, u64, u64)>) -> Vec<u8> {
    tiny_elf_with(symbol, b"")
}

#[test]
fn reads_segments_sections_and_objects() {
    let bytes = tiny_elf(Some(("agents_lock", 0x4040, 40)));
    let tables = ElfTables::read(&bytes.as_slice()).unwrap();
    assert!(tables.has_symtab);
    assert_eq!(tables.segments.len(), 2);
    assert_eq!(tables.object_at(0x4040).as_deref(), Some("agents_lock"));
    assert_eq!(
        tables.object_at(0x4067).as_deref(),
        Some("agents_lock+0x27")
    );
    assert_eq!(tables.object_at(0x4068), None);
    assert_eq!(tables.section_at(0x4068).as_deref(), Some(".bss+0x68"));
    assert_eq!(tables.section_at(0x3010).as_deref(), Some(".data+0x10"));
    let stripped = ElfTables::read(&tiny_elf(None).as_slice()).unwrap();
    assert!(!stripped.has_symtab);
    assert_eq!(stripped.object_at(0x4040), None);
    assert_eq!(stripped.section_at(0x4040).as_deref(), Some(".bss+0x40"));
}

#[test]
fn reads_a_section_whole_within_a_bound() {
    let bytes = tiny_elf_with(None, b"GNU C Library stable release version 2.36.\n");
    let rodata = ElfTables::section_bytes(&bytes.as_slice(), ".rodata", 1 << 20).unwrap();
    assert!(rodata.starts_with(b"GNU C Library"));
    let cut = ElfTables::section_bytes(&bytes.as_slice(), ".rodata", 3).unwrap();
    assert_eq!(cut, b"GNU");
    assert_eq!(
        ElfTables::section_bytes(&bytes.as_slice(), ".nothing", 10),
        None
    );
}

#[test]
fn refuses_what_is_not_an_elf64_little_endian_file() {
    assert_eq!(ElfTables::read(&&b""[..]), None);
    assert_eq!(ElfTables::read(&&b"\x7fELF"[..]), None);
    let mut bytes = tiny_elf(None);
    bytes[4] = 1;
    assert_eq!(ElfTables::read(&bytes.as_slice()), None);
    // Cut inside the section headers: segments kept, sections lost.
    let bytes = tiny_elf(Some(("agents_lock", 0x4040, 40)));
    let cut = &bytes[..bytes.len() - 10];
    let tables = ElfTables::read(&cut).unwrap();
    assert_eq!(tables.segments.len(), 2);
    assert!(tables.objects.is_empty());
}

#[test]
fn reads_our_own_executable_in_place() {
    let file = File::open("/proc/self/exe").unwrap();
    let length = file.metadata().unwrap().len();
    let tables = ElfTables::read(&(&file, length)).unwrap();
    assert!(!tables.segments.is_empty());
    assert!(tables.sections.iter().any(|s| s.name == ".bss"));
}
