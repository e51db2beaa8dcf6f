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
/// any, so one word in every acquisition (a `Vec` is three) and the list
/// behind it for the few that do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
// The extra allocation is the point: one word here instead of a Vec's three.
#[allow(clippy::box_collection)]
pub struct SiteList(Option<Box<Vec<Site>>>);

impl SiteList {
    pub(super) fn push(&mut self, site: Site) {
        self.0
            .get_or_insert_with(|| Box::new(Vec::with_capacity(1)))
            .push(site);
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

#[derive(Clone, PartialEq, Eq, Hash)]
enum AddrRepr {
    Value(u64),
    Text(Arc<str>),
}

impl Addr {
    pub(super) fn value(value: u64) -> Addr {
        Addr(AddrRepr::Value(value))
    }

    pub(super) fn text(text: &str) -> Addr {
        Addr(AddrRepr::Text(Arc::from(text)))
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
        assert!(std::mem::size_of::<Addr>() <= 24);
    }
}
