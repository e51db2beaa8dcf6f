//! The prefilter: the words every rule needs, found in one pass.
//!
//! It finds what the regex [`PREFILTER`] finds, match for match (leftmost
//! first, without overlaps), which its tests check on random lines: a
//! regex of ~30 case-insensitive words runs its lazy DFA over every byte,
//! and then runs back to each match's start, a quarter of the time of a
//! big log's redaction. Here the words are an Aho-Corasick automaton, and
//! the one pattern that is not a word (`1001 =>`, a voicemail line) is
//! found from its `=>`.

use aho_corasick::{AhoCorasick, Input, MatchKind};
use memchr::memmem;

/// What the prefilter matches, as a regex: the reference the tests hold
/// [`Prefilter`] to.
#[cfg(test)]
pub(super) const PREFILTER: &str = r"(?i-u)mysql|mariadb|pass|pwd|pin|key|cred|token|secret|jwt|communit|phrase|ha1|com2sec|bearer|basic|digest|nonce|response|rspauth|://|sip|register|auth|cookie|eyj|[0-9*#+][ \t]*=>|-p|-u|--user";

/// [`PREFILTER`]'s words, in its order. None is a prefix of another, and
/// none starts with what `[0-9*#+][ \t]*=>` starts with, so at a given
/// byte at most one alternative matches: finding the leftmost match of
/// either kind is finding the regex's.
const WORDS: [&str; 29] = [
    "mysql", "mariadb", "pass", "pwd", "pin", "key", "cred", "token", "secret", "jwt", "communit",
    "phrase", "ha1", "com2sec", "bearer", "basic", "digest", "nonce", "response", "rspauth", "://",
    "sip", "register", "auth", "cookie", "eyj", "-p", "-u", "--user",
];

pub struct Prefilter {
    words: AhoCorasick,
    arrow: memmem::Finder<'static>,
}

impl Prefilter {
    pub fn new() -> Prefilter {
        Prefilter {
            // Constants of this file, checked by its tests.
            words: AhoCorasick::builder()
                .ascii_case_insensitive(true)
                .match_kind(MatchKind::LeftmostFirst)
                .build(WORDS)
                .expect("built-in words"),
            arrow: memmem::Finder::new(b"=>"),
        }
    }

    /// The matches in `hay`, as `start..end`, left to right, none
    /// overlapping: what `Regex::find_iter` on [`PREFILTER`] gives.
    pub fn find_iter<'h>(&'h self, hay: &'h [u8]) -> impl Iterator<Item = (usize, usize)> + 'h {
        // The next match of each kind, kept while it is still ahead: a
        // long line is searched once for each, not once per match.
        let mut word: Option<Option<(usize, usize)>> = None;
        let mut arrow: Option<Option<(usize, usize)>> = None;
        let mut at = 0;
        std::iter::from_fn(move || {
            if at > hay.len() {
                return None;
            }
            if word.is_some_and(|next| next.is_some_and(|(start, _)| start < at)) {
                word = None;
            }
            let next_word = *word.get_or_insert_with(|| {
                self.words
                    .find(Input::new(hay).span(at..hay.len()))
                    .map(|found| (found.start(), found.end()))
            });
            if arrow.is_some_and(|next| next.is_some_and(|(start, _)| start < at)) {
                arrow = None;
            }
            let next_arrow = *arrow.get_or_insert_with(|| self.voicemail(hay, at));
            let found = match (next_word, next_arrow) {
                (Some(word), Some(arrow)) => Some(if arrow.0 < word.0 { arrow } else { word }),
                (word, arrow) => word.or(arrow),
            };
            let (start, end) = found?;
            at = end;
            Some((start, end))
        })
    }

    /// The first `[0-9*#+][ \t]*=>` that starts at `from` or after.
    fn voicemail(&self, hay: &[u8], from: usize) -> Option<(usize, usize)> {
        let mut search = from;
        while let Some(found) = self.arrow.find(&hay[search.min(hay.len())..]) {
            let arrow = search + found;
            let blanks = hay[from..arrow]
                .iter()
                .rev()
                .take_while(|&&byte| byte == b' ' || byte == b'\t')
                .count();
            let lead = arrow - blanks;
            if lead > from && matches!(hay[lead - 1], b'0'..=b'9' | b'*' | b'#' | b'+') {
                return Some((lead - 1, arrow + 2));
            }
            search = arrow + 2;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use regex::bytes::Regex;

    type Spans = Vec<(usize, usize)>;

    /// What the regex finds, then what the prefilter finds.
    fn both(hay: &[u8]) -> (Spans, Spans) {
        static BOTH: std::sync::LazyLock<(Regex, Prefilter)> =
            std::sync::LazyLock::new(|| (Regex::new(PREFILTER).unwrap(), Prefilter::new()));
        let (regex, prefilter) = &*BOTH;
        let expected = regex
            .find_iter(hay)
            .map(|found| (found.start(), found.end()))
            .collect();
        (expected, prefilter.find_iter(hay).collect())
    }

    #[test]
    fn finds_what_the_regex_finds() {
        for hay in [
            &b""[..],
            b"nothing here",
            b"secret=x PassWord => 1001 => 1234,Name",
            b"-pass --user -u -p ha11 => ha1=> 1=>2=> 3 \t=> *=> #=>+=> ==> =>",
            b"Authorization: Digest username=\"1001\", response=\"ab\", nonce=\"x\"",
            b"sip:1001:pw@host mysql -pX curl -u a:b http://x/token/eyJ",
            b"com2sec communit COM2SEC ha1 HA1 rspauth bearer basic cookie",
            b"1 => 2 => pin1=>9",
        ] {
            let (expected, got) = both(hay);
            assert_eq!(got, expected, "{}", String::from_utf8_lossy(hay));
        }
    }

    /// Lines made of the words' pieces, digits, blanks and arrows: where
    /// matches meet, overlap and cut each other.
    fn line() -> impl Strategy<Value = Vec<u8>> {
        let piece = prop_oneof![
            proptest::sample::select(WORDS.to_vec()).prop_map(|word| word.as_bytes().to_vec()),
            proptest::sample::select(WORDS.to_vec())
                .prop_map(|word| word.to_uppercase().as_bytes()[..word.len() / 2 + 1].to_vec()),
            proptest::sample::select(vec![
                "=>", "=", ">", " ", "\t", "1", "9", "*", "#", "+", "-", ":", "/", "a", "\u{e9}",
            ])
            .prop_map(|piece| piece.as_bytes().to_vec()),
        ];
        proptest::collection::vec(piece, 0..40).prop_map(|pieces| pieces.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]
        #[test]
        fn finds_what_the_regex_finds_on_any_line(hay in line()) {
            let (expected, got) = both(&hay);
            prop_assert_eq!(got, expected);
        }
    }
}
