//! The small values a graph holds by the hundred thousand: sites, site
//! lists and lock addresses, each a word or two wide so that a dump of
//! 100,000 threads with several locks each stays in tens of MB.

use std::borrow::Borrow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::sync::Arc;

use serde::Serialize;

/// What a [`Site`] says: a file, a line and a function.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct SiteData {
    pub file: Arc<str>,
    pub line: Option<u32>,
    pub func: Arc<str>,
}

/// A place in Asterisk's source: where a lock was taken or is awaited.
///
/// One pointer wide: a dump names a few hundred places hundreds of thousands
/// of times, so [`crate::locks::graph::LockGraph::site`] shares each one;
/// the fields are read through `Deref` (`site.file`, `site.line`).
#[derive(Clone, Default)]
pub struct Site(Arc<SiteData>);

impl Site {
    /// A site with its own strings; [`crate::locks::graph::LockGraph::site`]
    /// shares them instead.
    pub fn new(file: &str, line: Option<u32>, func: &str) -> Site {
        Site(Arc::new(SiteData {
            file: Arc::from(file),
            line,
            func: Arc::from(func),
        }))
    }

    pub(super) fn from_data(data: SiteData) -> Site {
        Site(Arc::new(data))
    }

    /// The same shared site, not only an equal one.
    pub(super) fn same(&self, other: &Site) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// Nothing to show: no file, no line, no function (gdb's `??` is none).
    pub fn is_empty(&self) -> bool {
        self.file.is_empty() && self.line.is_none() && matches!(&*self.func, "" | "??")
    }
}

impl Deref for Site {
    type Target = SiteData;

    fn deref(&self) -> &SiteData {
        &self.0
    }
}

impl Borrow<SiteData> for Site {
    fn borrow(&self) -> &SiteData {
        &self.0
    }
}

impl PartialEq for Site {
    fn eq(&self, other: &Site) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || *self.0 == *other.0
    }
}

impl Eq for Site {}

impl Hash for Site {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl fmt::Debug for Site {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Site")
            .field("file", &self.file)
            .field("line", &self.line)
            .field("func", &self.func)
            .finish()
    }
}

impl Serialize for Site {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut site = serializer.serialize_struct("Site", 3)?;
        site.serialize_field("file", &*self.file)?;
        site.serialize_field("line", &self.line)?;
        site.serialize_field("func", &*self.func)?;
        site.end()
    }
}

impl fmt::Display for Site {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        match (&*self.func, self.file.is_empty() && self.line.is_none()) {
            ("" | "??", _) => Ok(()),
            (func, true) => f.write_str(func),
            (func, false) => write!(f, " {func}"),
        }
    }
}

/// The "Locked Here" sites of a wait, read as a `[Site]`: only waits have
/// any, so one word in every acquisition (a `Vec` is three). The list behind
/// it is shared ([`crate::locks::graph::LockGraph::add_locked_here`] interns
/// it): a dump repeats the same few lists on every wait, and a list of its own
/// cost each wait two allocations, 64 bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct SiteList(Option<Arc<Vec<Site>>>);

impl SiteList {
    pub(super) fn shared(list: Arc<Vec<Site>>) -> SiteList {
        SiteList(Some(list))
    }

    /// The same list, not only an equal one.
    pub(super) fn same(&self, other: &SiteList) -> bool {
        match (&self.0, &other.0) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        }
    }
}

impl Deref for SiteList {
    type Target = [Site];

    fn deref(&self) -> &[Site] {
        self.0.as_deref().map_or(&[], Vec::as_slice)
    }
}

impl<const N: usize> PartialEq<[Site; N]> for SiteList {
    fn eq(&self, other: &[Site; N]) -> bool {
        **self == *other
    }
}

/// A lock's identity: its address as a number when it is one (what `%p`
/// prints, however padded), else its text, lowercased (`(nil)`).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Addr(AddrRepr);

/// `Text` is one word (an `Arc<str>` is two): sixteen bytes a lock, not 24,
/// and the text never happens on real dumps.
#[derive(Clone, PartialEq, Eq, Hash)]
enum AddrRepr {
    Value(u64),
    Text(Arc<String>),
}

impl Addr {
    pub(super) fn value(value: u64) -> Addr {
        Addr(AddrRepr::Value(value))
    }

    pub(super) fn text(text: &str) -> Addr {
        Addr(AddrRepr::Text(Arc::new(text.to_string())))
    }

    /// The address as a number, when it is one.
    pub fn as_value(&self) -> Option<u64> {
        match self.0 {
            AddrRepr::Value(value) => Some(value),
            AddrRepr::Text(_) => None,
        }
    }

    /// Calls `f` with the address as text, formatted on the stack.
    pub fn with_str<R>(&self, f: impl FnOnce(&str) -> R) -> R {
        match &self.0 {
            AddrRepr::Value(value) => {
                let mut buffer = [0u8; 18];
                f(hex(*value, &mut buffer))
            }
            AddrRepr::Text(text) => f(text),
        }
    }
}

/// `{:#x}` without the formatting machinery: JSON writes one per lock and edge.
fn hex(mut value: u64, buffer: &mut [u8; 18]) -> &str {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut at = buffer.len();
    loop {
        at -= 1;
        if let Some(slot) = buffer.get_mut(at) {
            *slot = DIGITS[(value & 0xf) as usize];
        }
        value >>= 4;
        if value == 0 || at <= 2 {
            break;
        }
    }
    at -= 2;
    if let Some(prefix) = buffer.get_mut(at..at + 2) {
        prefix.copy_from_slice(b"0x");
    }
    std::str::from_utf8(buffer.get(at..).unwrap_or(&[])).unwrap_or("")
}

impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.with_str(|text| f.write_str(text))
    }
}

impl fmt::Debug for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.with_str(|text| fmt::Debug::fmt(text, f))
    }
}

impl PartialEq<str> for Addr {
    fn eq(&self, other: &str) -> bool {
        self.with_str(|text| text == other)
    }
}

impl PartialEq<&str> for Addr {
    fn eq(&self, other: &&str) -> bool {
        self.with_str(|text| text == *other)
    }
}

/// Ids of this many bytes or fewer are kept in the [`ThreadId`] itself.
const INLINE: usize = 22;

/// A thread's id as the source printed it (`0x7f3a00001000`, `3077372784`,
/// `LWP 1234`), read as a `str`. Every thread has its own, so the short ones
/// (all of them on real dumps) live in the value itself: an `Arc<str>` per
/// thread cost 64 bytes with its allocation, this costs 24 and none.
#[derive(Clone)]
pub struct ThreadId(IdRepr);

#[derive(Clone)]
enum IdRepr {
    Inline { len: u8, bytes: [u8; INLINE] },
    Shared(Arc<str>),
}

impl ThreadId {
    pub fn new(text: &str) -> ThreadId {
        let source = text.as_bytes();
        match u8::try_from(source.len()) {
            Ok(len) if source.len() <= INLINE => {
                let mut bytes = [0u8; INLINE];
                if let Some(slot) = bytes.get_mut(..source.len()) {
                    slot.copy_from_slice(source);
                }
                ThreadId(IdRepr::Inline { len, bytes })
            }
            _ => ThreadId(IdRepr::Shared(Arc::from(text))),
        }
    }
}

impl ThreadId {
    /// The id's bytes, not checked again as UTF-8 (they were a `str`), for
    /// writers that copy bytes: JSON reads an id for every claim and edge.
    pub fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            IdRepr::Inline { len, bytes } => bytes.get(..usize::from(*len)).unwrap_or(&[]),
            IdRepr::Shared(text) => text.as_bytes(),
        }
    }
}

impl Deref for ThreadId {
    type Target = str;

    fn deref(&self) -> &str {
        match &self.0 {
            // The bytes were a whole `str`: the check cannot fail, and
            // there is no unchecked way without `unsafe`.
            IdRepr::Inline { len, bytes } => {
                std::str::from_utf8(bytes.get(..usize::from(*len)).unwrap_or(&[])).unwrap_or("")
            }
            IdRepr::Shared(text) => text,
        }
    }
}

impl PartialEq for ThreadId {
    fn eq(&self, other: &ThreadId) -> bool {
        **self == **other
    }
}

impl Eq for ThreadId {}

impl PartialEq<str> for ThreadId {
    fn eq(&self, other: &str) -> bool {
        **self == *other
    }
}

impl Hash for ThreadId {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (**self).hash(state);
    }
}

impl fmt::Display for ThreadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self)
    }
}

impl fmt::Debug for ThreadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_matches_the_formatter() {
        for value in [0, 1, 0xf, 0x10, 0x55d0_c8b4_e100, u64::MAX] {
            assert_eq!(Addr::value(value).to_string(), format!("{value:#x}"));
        }
    }

    #[test]
    fn values_stay_small() {
        assert_eq!(std::mem::size_of::<Site>(), 8);
        assert_eq!(std::mem::size_of::<SiteList>(), 8);
        assert_eq!(std::mem::size_of::<Addr>(), 16);
        assert_eq!(std::mem::size_of::<ThreadId>(), 24);
    }

    #[test]
    fn thread_ids_keep_their_text() {
        let long = "x".repeat(INLINE + 1);
        for text in [
            "",
            "0x7f3a00001000",
            "3077372784",
            "LWP 1234",
            "é",
            long.as_str(),
        ] {
            let id = ThreadId::new(text);
            assert_eq!(&*id, text);
            assert_eq!(id.as_bytes(), text.as_bytes());
            assert_eq!(id.to_string(), text);
            assert_eq!(format!("{id:?}"), format!("{text:?}"));
        }
        let exact = "y".repeat(INLINE);
        assert_eq!(&*ThreadId::new(&exact), exact);
    }
}
