//! POSIX sh quoting, for echoing commands and for `--dry-run` scripts.
//!
//! Commands are always run as argv; quoting exists only so that what we
//! print can be pasted into (or piped to) `sh` and mean the same argv.

/// Quotes one word so that `sh` reads it back unchanged.
pub fn quote(word: &str) -> String {
    let safe = !word.is_empty()
        && word
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"-_./=:,+@%^".contains(&byte));
    if safe {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// Quotes an argv as one command line.
pub fn join<S: AsRef<str>>(argv: &[S]) -> String {
    argv.iter()
        .map(|word| quote(word.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Turns free text into `# ` comment lines, so a script stays valid whatever
/// the text holds.
pub fn comment(text: &str) -> String {
    text.lines()
        .map(|line| {
            if line.is_empty() {
                "#".to_string()
            } else {
                format!("# {line}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_words_stay_bare() {
        assert_eq!(
            join(&["apt-get", "install", "-t", "wazo-25.15", "gdb"]),
            "apt-get install -t wazo-25.15 gdb"
        );
    }

    #[test]
    fn special_words_are_single_quoted() {
        assert_eq!(quote(""), "''");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote("$(reboot)"), "'$(reboot)'");
        assert_eq!(quote("~"), "'~'");
    }

    #[test]
    fn comments_cover_every_line() {
        assert_eq!(comment("a\n\nb"), "# a\n#\n# b");
    }
}
