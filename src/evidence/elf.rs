//! Telling an ELF core file (or an ELF program) by its header.
//!
//! A core file holds the whole memory of Asterisk: SIP passwords, AMI
//! secrets, tokens. The doc says it must never be attached publicly. Cores
//! are renamed, copied and compressed by hand on a broken PBX
//! (`core.1234.1700000000`, `asterisk.core`, `notes.txt`...), so a file name
//! proves nothing: only the first bytes do. The same check lets `crash
//! --core` refuse an executable given where a core was expected.
//!
//! The ELF header starts with `e_ident` (16 bytes: magic, class, data
//! encoding, version, ...) followed by the 2-byte `e_type`, whose byte order
//! is the one `e_ident[EI_DATA]` announces. That is all we need, for 32- and
//! 64-bit files alike, so [`HEADER_LEN`] bytes are enough.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

/// The bytes every ELF file starts with.
pub const MAGIC: &[u8; 4] = b"\x7fELF";

/// How many leading bytes [`classify`] needs to decide.
pub const HEADER_LEN: usize = 18;

const EI_CLASS: usize = 4;
const EI_DATA: usize = 5;
const ELFCLASS32: u8 = 1;
const ELFCLASS64: u8 = 2;
const ELFDATA2LSB: u8 = 1;
const ELFDATA2MSB: u8 = 2;
const E_TYPE: usize = 16;

const ET_REL: u16 = 1;
const ET_EXEC: u16 = 2;
const ET_DYN: u16 = 3;
const ET_CORE: u16 = 4;

/// What an ELF header says the file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElfKind {
    /// A core dump (`ET_CORE`).
    Core,
    /// A program linked at a fixed address (`ET_EXEC`).
    Executable,
    /// A shared object, or a position-independent executable such as
    /// `/usr/sbin/asterisk` on Debian (`ET_DYN`).
    SharedObject,
    /// An object file (`ET_REL`).
    Relocatable,
    /// Any other `e_type` (`ET_NONE`, OS- or processor-specific).
    Other(u16),
}

impl ElfKind {
    /// True for what can be run or loaded: executables and shared objects
    /// (PIE executables are `ET_DYN`).
    pub fn is_program(self) -> bool {
        matches!(self, ElfKind::Executable | ElfKind::SharedObject)
    }

    /// A short description for messages.
    pub fn describe(self) -> &'static str {
        match self {
            ElfKind::Core => "ELF core file",
            ElfKind::Executable => "ELF executable",
            ElfKind::SharedObject => "ELF shared object or PIE executable",
            ElfKind::Relocatable => "ELF object file",
            ElfKind::Other(_) => "ELF file of an unusual type",
        }
    }
}

/// Reads an ELF header from the start of `bytes`.
///
/// `None` when the bytes are not an ELF header: wrong magic, too short to
/// hold `e_type`, or a class or byte order that no ELF file has (such bytes
/// are then only "binary", which callers treat with suspicion anyway).
pub fn classify(bytes: &[u8]) -> Option<ElfKind> {
    if bytes.len() < HEADER_LEN || !bytes.starts_with(MAGIC) {
        return None;
    }
    if !matches!(bytes[EI_CLASS], ELFCLASS32 | ELFCLASS64) {
        return None;
    }
    let raw = [bytes[E_TYPE], bytes[E_TYPE + 1]];
    let e_type = match bytes[EI_DATA] {
        ELFDATA2LSB => u16::from_le_bytes(raw),
        ELFDATA2MSB => u16::from_be_bytes(raw),
        _ => return None,
    };
    Some(match e_type {
        ET_CORE => ElfKind::Core,
        ET_EXEC => ElfKind::Executable,
        ET_DYN => ElfKind::SharedObject,
        ET_REL => ElfKind::Relocatable,
        other => ElfKind::Other(other),
    })
}

/// True when `bytes` start with the header of an ELF core file.
pub fn is_core(bytes: &[u8]) -> bool {
    classify(bytes) == Some(ElfKind::Core)
}

/// The offset of the first ELF core header found anywhere in `bytes`.
///
/// A file that starts as text can still carry a core further on (a core
/// appended to a log with `cat`, a core inside an uncompressed tar): this
/// finds it so that such a file is left out too.
pub fn find_core_header(bytes: &[u8]) -> Option<usize> {
    // 0x7f is rare in text: a memchr first spares building a searcher for
    // each line of a log.
    memchr::memchr(MAGIC[0], bytes)?;
    memchr::memmem::find_iter(bytes, MAGIC).find(|&at| is_core(&bytes[at..]))
}

/// Reads the header of the file at `path`.
///
/// `Ok(None)` for a file that is not ELF, including an empty or short one;
/// `Err` only when the file cannot be opened or read.
pub fn classify_file(path: &Path) -> io::Result<Option<ElfKind>> {
    let mut header = Vec::with_capacity(HEADER_LEN);
    File::open(path)?
        .take(HEADER_LEN as u64)
        .read_to_end(&mut header)?;
    Ok(classify(&header))
}

/// True when the file at `path` is an ELF core file, whatever its name.
pub fn is_core_file(path: &Path) -> io::Result<bool> {
    Ok(classify_file(path)? == Some(ElfKind::Core))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};

    fn header(class: u8, data: u8, e_type: u16) -> Vec<u8> {
        let mut bytes = vec![0u8; 64];
        bytes[..4].copy_from_slice(MAGIC);
        bytes[EI_CLASS] = class;
        bytes[EI_DATA] = data;
        bytes[6] = 1;
        let raw = if data == ELFDATA2MSB {
            e_type.to_be_bytes()
        } else {
            e_type.to_le_bytes()
        };
        bytes[E_TYPE..E_TYPE + 2].copy_from_slice(&raw);
        bytes
    }

    #[test]
    fn cores_of_every_class_and_byte_order() {
        for class in [ELFCLASS32, ELFCLASS64] {
            for data in [ELFDATA2LSB, ELFDATA2MSB] {
                let bytes = header(class, data, ET_CORE);
                assert_eq!(classify(&bytes), Some(ElfKind::Core), "{class} {data}");
                assert!(is_core(&bytes));
                assert!(!classify(&bytes).is_some_and(ElfKind::is_program));
            }
        }
    }

    #[test]
    fn byte_order_is_honoured() {
        // 0x0400 read in the wrong order would be ET_CORE.
        let mut bytes = header(ELFCLASS64, ELFDATA2MSB, 0);
        bytes[E_TYPE] = 4;
        assert_eq!(classify(&bytes), Some(ElfKind::Other(0x0400)));
    }

    #[test]
    fn programs_are_not_cores() {
        for (e_type, kind) in [
            (ET_EXEC, ElfKind::Executable),
            (ET_DYN, ElfKind::SharedObject),
            (ET_REL, ElfKind::Relocatable),
        ] {
            let bytes = header(ELFCLASS64, ELFDATA2LSB, e_type);
            assert_eq!(classify(&bytes), Some(kind));
            assert!(!is_core(&bytes));
        }
        assert!(
            classify(&header(ELFCLASS32, ELFDATA2MSB, ET_EXEC)).is_some_and(ElfKind::is_program)
        );
        assert!(
            !classify(&header(ELFCLASS32, ELFDATA2MSB, ET_REL)).is_some_and(ElfKind::is_program)
        );
    }

    #[test]
    fn short_empty_and_odd_inputs_are_not_elf() {
        assert_eq!(classify(b""), None);
        assert_eq!(classify(b"\x7fEL"), None);
        assert_eq!(
            classify(&header(ELFCLASS64, ELFDATA2LSB, ET_CORE)[..17]),
            None
        );
        assert_eq!(classify(&header(3, ELFDATA2LSB, ET_CORE)), None);
        assert_eq!(classify(&header(ELFCLASS64, 0, ET_CORE)), None);
        assert_eq!(classify(b"core dumped, see core.1234 for details\n"), None);
    }

    #[test]
    fn a_core_header_is_found_inside_other_bytes() {
        let mut bytes = b"some log line\n\x7fELF but not a header\n".to_vec();
        assert_eq!(find_core_header(&bytes), None);
        let at = bytes.len();
        bytes.extend(header(ELFCLASS64, ELFDATA2LSB, ET_CORE));
        assert_eq!(find_core_header(&bytes), Some(at));
    }

    #[test]
    fn files_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty");
        std::fs::write(&empty, b"").unwrap();
        assert_eq!(classify_file(&empty).unwrap(), None);
        let short = dir.path().join("short");
        std::fs::write(&short, b"\x7fEL").unwrap();
        assert!(!is_core_file(&short).unwrap());
        assert!(classify_file(&dir.path().join("missing")).is_err());

        let true_bin = Path::new("/bin/true");
        if true_bin.exists() {
            let kind = classify_file(true_bin).unwrap().unwrap();
            assert!(kind.is_program(), "{kind:?}");
            assert!(!is_core_file(true_bin).unwrap());
        }
    }

    /// A real core, made by gcore from a short-lived `sleep`.
    #[test]
    fn a_real_core_from_gcore() {
        let dir = tempfile::tempdir().unwrap();
        let Ok(mut child) = Command::new("sleep").arg("30").spawn() else {
            errln!("note: cannot run sleep; real-core test skipped");
            return;
        };
        let prefix = dir.path().join("core");
        let status = Command::new("gcore")
            .arg("-o")
            .arg(&prefix)
            .arg(child.id().to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = child.kill();
        let _ = child.wait();
        let core = dir.path().join(format!("core.{}", child.id()));
        if !matches!(status, Ok(status) if status.success()) || !core.exists() {
            errln!(
                "note: gcore failed (not installed, or ptrace not permitted); real-core test skipped"
            );
            return;
        }
        assert_eq!(classify_file(&core).unwrap(), Some(ElfKind::Core));
        assert!(is_core_file(&core).unwrap());
        let renamed = dir.path().join("notes.txt");
        std::fs::rename(&core, &renamed).unwrap();
        assert!(is_core_file(&renamed).unwrap());
    }
}

#[cfg(test)]
mod fuzz_tests;
