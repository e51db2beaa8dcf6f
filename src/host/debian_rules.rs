//! Turning on Asterisk's menuselect compile flags in `debian/rules`.
//!
//! Wazo's asterisk packaging (wazo-platform/asterisk, `debian/rules`, a cdbs
//! makefile) passes `$(MENUSELECT_EXTRA_ARGS)` to `menuselect` and ships the
//! debug flags as commented-out assignments:
//!
//! ```make
//! # uncomment the next line to create a "MALLOC_DEBUG" version of asterisk
//! #MENUSELECT_EXTRA_ARGS := --enable MALLOC_DEBUG
//! # uncomment the next 2 lines to create a "debug" version of asterisk
//! #MENUSELECT_EXTRA_ARGS := --enable DONT_OPTIMIZE
//! #MENUSELECT_EXTRA_ARGS += --enable DEBUG_THREADS
//! ```
//!
//! The trap: two of them assign with `:=`, so uncommenting MALLOC_DEBUG and
//! the debug pair silently drops MALLOC_DEBUG (the later `:=` replaces it).
//! Here every active assignment after the first is turned into `+=`, and the
//! result is checked by evaluating the assignments the way make does: a
//! build that takes 30 minutes must not turn out to lack the flag it was for.

use std::sync::LazyLock;

use regex::Regex;

pub const VARIABLE: &str = "MENUSELECT_EXTRA_ARGS";

/// The flags the doc and Asterisk's "Getting a Backtrace" page name.
pub const KNOWN_FLAGS: [&str; 4] = [
    "DEBUG_THREADS",
    "DONT_OPTIMIZE",
    "BETTER_BACKTRACES",
    "MALLOC_DEBUG",
];

static ASSIGNMENT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?P<indent>[ \t]*)(?P<comment>#[ \t]*)?MENUSELECT_EXTRA_ARGS[ \t]*(?P<op>:=|::=|\+=|\?=|=)[ \t]*(?P<value>.*)$")
        .expect("a valid regex")
});

/// One `MENUSELECT_EXTRA_ARGS` assignment line.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Assignment {
    line: usize,
    commented: bool,
    op: String,
    value: String,
}

fn assignments(lines: &[String]) -> Vec<Assignment> {
    lines
        .iter()
        .enumerate()
        .filter_map(|(line, text)| {
            let captures = ASSIGNMENT.captures(text)?;
            Some(Assignment {
                line,
                commented: captures.name("comment").is_some(),
                op: captures["op"].to_string(),
                value: captures["value"].to_string(),
            })
        })
        .collect()
}

/// The flags a value turns on (`--enable X`) and off (`--disable X`), in order.
fn switches(value: &str) -> Vec<(bool, String)> {
    let words: Vec<&str> = value.split_whitespace().collect();
    words
        .windows(2)
        .filter_map(|pair| match pair[0] {
            "--enable" => Some((true, pair[1].to_string())),
            "--disable" => Some((false, pair[1].to_string())),
            _ => None,
        })
        .collect()
}

/// The flags `debian/rules` turns on, evaluating the active assignments of
/// `MENUSELECT_EXTRA_ARGS` as make would.
pub fn enabled_flags(text: &str) -> Vec<String> {
    let lines: Vec<String> = text.lines().map(str::to_string).collect();
    let mut value: Option<String> = None;
    for assignment in assignments(&lines).into_iter().filter(|a| !a.commented) {
        value = match (assignment.op.as_str(), value) {
            ("+=", Some(before)) => Some(format!("{before} {}", assignment.value)),
            ("?=", Some(before)) => Some(before),
            (_, _) => Some(assignment.value),
        };
    }
    let mut flags: Vec<String> = Vec::new();
    for (enable, flag) in switches(value.as_deref().unwrap_or_default()) {
        flags.retain(|known| known != &flag);
        if enable {
            flags.push(flag);
        }
    }
    flags
}

/// `text` with `flags` turned on, and what was changed (for the user).
pub fn enable(text: &str, flags: &[String]) -> Result<(String, Vec<String>), String> {
    if !text.contains(&format!("$({VARIABLE})")) && !text.contains(&format!("${{{VARIABLE}}}")) {
        return Err(format!(
            "it never passes $({VARIABLE}) to menuselect, so this tool cannot tell where the \
             flags go; add `--enable FLAG` to the menuselect call in debian/rules by hand"
        ));
    }
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let mut changes = Vec::new();
    for flag in flags {
        let found = assignments(&lines).into_iter().find(|a| {
            switches(&a.value)
                .iter()
                .any(|(enable, name)| *enable && name == flag)
        });
        match found {
            Some(assignment) if assignment.commented => {
                let uncommented = uncomment(&lines[assignment.line]);
                changes.push(format!(
                    "line {}: uncommented `{uncommented}`",
                    assignment.line + 1
                ));
                lines[assignment.line] = uncommented;
            }
            Some(_) => {}
            None => {
                let at = insertion_point(&lines);
                let added = format!("{VARIABLE} += --enable {flag}");
                changes.push(format!("line {}: added `{added}`", at + 1));
                lines.insert(at, added);
            }
        }
    }
    let mut first = true;
    for assignment in assignments(&lines).into_iter().filter(|a| !a.commented) {
        if !first && assignment.op != "+=" && assignment.op != "?=" {
            let fixed = lines[assignment.line].replacen(&assignment.op, "+=", 1);
            changes.push(format!(
                "line {}: `{}` replaced the flags set above it, now `{fixed}`",
                assignment.line + 1,
                lines[assignment.line].trim()
            ));
            lines[assignment.line] = fixed;
        }
        first = false;
    }
    let mut new = lines.join("\n");
    if text.ends_with('\n') {
        new.push('\n');
    }
    let enabled = enabled_flags(&new);
    let missing: Vec<&String> = flags
        .iter()
        .filter(|flag| !enabled.contains(flag))
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "after the edit, menuselect would still not get --enable {} (it gets: {}); \
             edit debian/rules by hand",
            missing
                .iter()
                .map(|flag| flag.as_str())
                .collect::<Vec<_>>()
                .join(", --enable "),
            enabled.join(" ")
        ));
    }
    Ok((new, changes))
}

fn uncomment(line: &str) -> String {
    let indent_len = line.len() - line.trim_start().len();
    let (indent, rest) = line.split_at(indent_len);
    let rest = rest.strip_prefix('#').unwrap_or(rest).trim_start();
    format!("{indent}{rest}")
}

/// After the last assignment (commented or not), else after the includes,
/// else after the first line (`#!/usr/bin/make -f`).
fn insertion_point(lines: &[String]) -> usize {
    if let Some(last) = assignments(lines).last() {
        return last.line + 1;
    }
    lines
        .iter()
        .rposition(|line| line.starts_with("include "))
        .map(|line| line + 1)
        .unwrap_or(lines.len().min(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    const WAZO: &str = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/asterisk-src/debian/rules"
    ));

    fn flags(names: &[&str]) -> Vec<String> {
        names.iter().map(|name| name.to_string()).collect()
    }

    #[test]
    fn the_fixture_starts_with_no_flag() {
        assert!(enabled_flags(WAZO).is_empty());
    }

    #[test]
    fn the_default_pair_is_uncommented() {
        let (new, changes) = enable(WAZO, &flags(&["DEBUG_THREADS", "DONT_OPTIMIZE"])).unwrap();
        assert!(new.contains("\nMENUSELECT_EXTRA_ARGS := --enable DONT_OPTIMIZE\n"));
        assert!(new.contains("\nMENUSELECT_EXTRA_ARGS += --enable DEBUG_THREADS\n"));
        assert!(new.contains("\n#MENUSELECT_EXTRA_ARGS := --enable MALLOC_DEBUG\n"));
        assert_eq!(enabled_flags(&new), ["DONT_OPTIMIZE", "DEBUG_THREADS"]);
        assert_eq!(changes.len(), 2, "{changes:?}");
        assert_eq!(new.lines().count(), WAZO.lines().count());
    }

    #[test]
    fn the_second_assignment_no_longer_drops_the_first() {
        let (new, changes) = enable(
            WAZO,
            &flags(&["MALLOC_DEBUG", "DEBUG_THREADS", "DONT_OPTIMIZE"]),
        )
        .unwrap();
        assert!(new.contains("\nMENUSELECT_EXTRA_ARGS := --enable MALLOC_DEBUG\n"));
        assert!(new.contains("\nMENUSELECT_EXTRA_ARGS += --enable DONT_OPTIMIZE\n"));
        assert!(
            changes
                .iter()
                .any(|change| change.contains("replaced the flags set above")),
            "{changes:?}"
        );
        let mut enabled = enabled_flags(&new);
        enabled.sort();
        assert_eq!(enabled, ["DEBUG_THREADS", "DONT_OPTIMIZE", "MALLOC_DEBUG"]);
    }

    #[test]
    fn a_flag_with_no_line_gets_one() {
        let (new, _) = enable(WAZO, &flags(&["BETTER_BACKTRACES", "DONT_OPTIMIZE"])).unwrap();
        assert!(new.contains(
            "#MENUSELECT_EXTRA_ARGS += --enable TEST_FRAMEWORK\nMENUSELECT_EXTRA_ARGS += --enable BETTER_BACKTRACES\n"
        ), "{new}");
        assert_eq!(enabled_flags(&new), ["DONT_OPTIMIZE", "BETTER_BACKTRACES"]);
    }

    #[test]
    fn enabling_is_idempotent() {
        let wanted = flags(&["DEBUG_THREADS", "DONT_OPTIMIZE", "MALLOC_DEBUG"]);
        let (once, _) = enable(WAZO, &wanted).unwrap();
        let (twice, changes) = enable(&once, &wanted).unwrap();
        assert_eq!(once, twice);
        assert!(changes.is_empty(), "{changes:?}");
    }

    #[test]
    fn make_semantics_are_followed() {
        let text = "A\nMENUSELECT_EXTRA_ARGS = --enable X\nMENUSELECT_EXTRA_ARGS ?= --enable Y\n\
                    MENUSELECT_EXTRA_ARGS += --enable Z --disable X\n";
        assert_eq!(enabled_flags(text), ["Z"]);
        let text = "MENUSELECT_EXTRA_ARGS += --enable X\nMENUSELECT_EXTRA_ARGS := --enable Y\n";
        assert_eq!(enabled_flags(text), ["Y"]);
    }

    #[test]
    fn a_rules_file_of_another_shape_is_refused() {
        let error = enable(
            "#!/usr/bin/make -f\n%:\n\tdh $@\n",
            &flags(&["DONT_OPTIMIZE"]),
        )
        .unwrap_err();
        assert!(error.contains("by hand"), "{error}");
        // Disabled again further down: the check after the edit catches it.
        let text = "MENUSELECT_EXTRA_ARGS := --enable DONT_OPTIMIZE\n\
                    MENUSELECT_EXTRA_ARGS += --disable DONT_OPTIMIZE\n\t$(MENUSELECT_EXTRA_ARGS)\n";
        let error = enable(text, &flags(&["DONT_OPTIMIZE"])).unwrap_err();
        assert!(
            error.contains("would still not get --enable DONT_OPTIMIZE"),
            "{error}"
        );
    }
}
