//! Which glibc a live process runs, and so whether the /proc reading may
//! read its lock owners.
//!
//! The reading takes a mutex's owner from 8 bytes into it and an rwlock's
//! writer from 24 bytes in: glibc's layout on x86-64 from 2.28 (buster) to
//! the 2.4x releases (bookworm's 2.36, trixie's 2.41, sid). On another
//! glibc, or a process whose glibc cannot be told, a number read there
//! could be anything that looks like a thread id: the reading says it
//! cannot read owners rather than name a wrong one.
//!
//! The tool is a static musl binary on a PBX: its own mutexes are musl's,
//! so they prove nothing about Asterisk's glibc. The version is read from
//! the target's own libc instead: from its file name (`libc-2.28.so` up to
//! bullseye) or from the banner every glibc carries in `.rodata` ("… release
//! version 2.36.").

use crate::host::addresses::{file_name, open_mapped};
use crate::host::elf_symbols::ElfTables;
use crate::host::procfs::Mapping;

/// The first and last glibc releases whose lock layout the reading knows.
pub const FIRST_KNOWN: (u32, u32) = (2, 28);
pub const LAST_KNOWN: (u32, u32) = (2, 49);

/// The most of libc's `.rodata` searched for its banner (2.36's is 0.2 MiB).
const RODATA_LIMIT: u64 = 8 << 20;

/// Whether lock owners can be read, and what that rests on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockLayout {
    /// The owners are where the reading looks, in this glibc (`2.36`).
    Known { glibc: String },
    /// They cannot be read; why, in words.
    Unknown { why: String },
}

impl LockLayout {
    pub fn owners_readable(&self) -> bool {
        matches!(self, LockLayout::Known { .. })
    }

    /// One sentence for the reading's notes.
    pub fn note(&self) -> String {
        match self {
            LockLayout::Known { glibc } => format!(
                "lock owners read where glibc {glibc} keeps them (a mutex's 8 bytes in, an \
                 rwlock's writer 24 bytes in)"
            ),
            LockLayout::Unknown { why } => format!(
                "lock owners NOT read: {why}; the waits are shown without their holders (gdb \
                 can read them: freeze without --no-attach)"
            ),
        }
    }
}

/// The layout for process `pid`, whose mappings are `maps`.
pub fn lock_layout(pid: u32, maps: &[Mapping]) -> LockLayout {
    match version(pid, maps) {
        Ok(version) => layout_of(version),
        Err(why) => LockLayout::Unknown { why },
    }
}

fn layout_of((major, minor): (u32, u32)) -> LockLayout {
    let shown = format!("{major}.{minor}");
    if (major, minor) < FIRST_KNOWN || (major, minor) > LAST_KNOWN {
        return LockLayout::Unknown {
            why: format!(
                "the process runs glibc {shown}, outside {}.{} to {}.{}, the releases whose lock \
                 layout this reading knows",
                FIRST_KNOWN.0, FIRST_KNOWN.1, LAST_KNOWN.0, LAST_KNOWN.1
            ),
        };
    }
    LockLayout::Known { glibc: shown }
}

/// The glibc version of `pid`, or why it cannot be told.
fn version(pid: u32, maps: &[Mapping]) -> Result<(u32, u32), String> {
    let Some(libc) = maps
        .iter()
        .find(|m| m.path.starts_with('/') && is_libc(file_name(&m.path)))
    else {
        return Err(
            "cannot tell which glibc the process runs: it maps no libc.so.6 (a static or \
             non-glibc program)"
                .to_string(),
        );
    };
    let name = file_name(&libc.path);
    if let Some(version) = version_from_name(name) {
        return Ok(version);
    }
    let Some(file) = open_mapped(pid, libc) else {
        return Err(format!(
            "cannot tell which glibc the process runs: {} cannot be opened as the file mapped",
            libc.path
        ));
    };
    let length = file.metadata().map(|m| m.len()).unwrap_or(0);
    ElfTables::section_bytes(&(&file, length), ".rodata", RODATA_LIMIT)
        .and_then(|rodata| version_from_banner(&rodata))
        .ok_or_else(|| {
            format!(
                "cannot tell which glibc the process runs: {} has no glibc release banner",
                libc.path
            )
        })
}

fn is_libc(name: &str) -> bool {
    name == "libc.so.6" || (name.starts_with("libc-") && name.ends_with(".so"))
}

/// `libc-2.28.so` → 2.28.
pub fn version_from_name(name: &str) -> Option<(u32, u32)> {
    parse_version(name.strip_prefix("libc-")?.strip_suffix(".so")?)
}

/// "GNU C Library (Debian GLIBC 2.36-9) stable release version 2.36." → 2.36.
pub fn version_from_banner(bytes: &[u8]) -> Option<(u32, u32)> {
    const MARK: &[u8] = b"release version ";
    let at = memchr::memmem::find(bytes, MARK)? + MARK.len();
    let rest = bytes.get(at..at + 16.min(bytes.len() - at))?;
    let end = rest
        .iter()
        .position(|b| !(b.is_ascii_digit() || *b == b'.'))
        .unwrap_or(rest.len());
    let text = std::str::from_utf8(rest.get(..end)?).ok()?;
    parse_version(text.trim_end_matches('.'))
}

fn parse_version(text: &str) -> Option<(u32, u32)> {
    let mut parts = text.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_the_version_by_name_or_banner() {
        assert_eq!(version_from_name("libc-2.28.so"), Some((2, 28)));
        assert_eq!(version_from_name("libc.so.6"), None);
        assert_eq!(
            version_from_banner(
                b"\0GNU C Library (Debian GLIBC 2.36-9+deb12u4) stable release version 2.36.\n"
            ),
            Some((2, 36))
        );
        assert_eq!(version_from_banner(b"release version 2.41"), Some((2, 41)));
        assert_eq!(version_from_banner(b"release version "), None);
        assert_eq!(version_from_banner(b"nothing here"), None);
    }

    #[test]
    fn reads_owners_only_where_the_layout_is_known() {
        assert!(layout_of((2, 28)).owners_readable());
        assert!(layout_of((2, 42)).owners_readable());
        let old = layout_of((2, 24));
        assert!(!old.owners_readable());
        assert!(
            old.note().contains("glibc 2.24, outside 2.28 to 2.49"),
            "{}",
            old.note()
        );
        assert!(!layout_of((2, 50)).owners_readable());
        // A process without glibc: cannot tell.
        let static_program = lock_layout(u32::MAX, &[]);
        assert!(static_program.note().contains("cannot tell"));
    }

    #[test]
    fn our_own_glibc_is_known() {
        let text = std::fs::read_to_string("/proc/self/maps").unwrap();
        let maps: Vec<Mapping> = text.lines().filter_map(Mapping::parse).collect();
        let layout = lock_layout(std::process::id(), &maps);
        if maps.iter().any(|m| is_libc(file_name(&m.path))) {
            assert!(layout.owners_readable(), "{layout:?}");
        }
    }
}
