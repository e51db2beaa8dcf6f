//! The two Asterisk config edits of a valgrind run, as pure text
//! transformations: `noload` lines in `modules.conf` (fewer modules start
//! faster under valgrind and make less noise) and `highpriority` commented
//! out in `asterisk.conf` (a real-time Asterisk slowed 20 times by valgrind
//! can starve the machine). Kept apart from the procedure so they can be
//! tested on their own; the procedure backs the files up and puts them back.

use crate::error::{Error, Result};

/// Module names as given to `--noload`, checked, with `.so`, deduplicated.
pub fn check_modules(modules: &[String]) -> Result<Vec<String>> {
    let mut checked = Vec::new();
    for module in modules {
        let module = module.trim();
        let valid = !module.is_empty()
            && module
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b));
        if !valid {
            return Err(Error::bad_input(format!(
                "--noload: {module:?} is not a module name like chan_sip or res_pjsip.so"
            )));
        }
        let name = if module.ends_with(".so") {
            module.to_string()
        } else {
            format!("{module}.so")
        };
        if !checked.contains(&name) {
            checked.push(name);
        }
    }
    Ok(checked)
}

/// Adds `noload => MODULE` lines at the end of the `[modules]` section, and
/// comments out `load =>` lines of the same modules (both would be a conflict).
pub fn add_noload(text: &str, modules: &[String]) -> std::result::Result<String, String> {
    if modules.is_empty() {
        return Ok(text.to_string());
    }
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let start = lines
        .iter()
        .position(|line| line.trim() == "[modules]")
        .ok_or("it has no [modules] section")?;
    let end = lines[start + 1..]
        .iter()
        .position(|line| line.trim_start().starts_with('['))
        .map_or(lines.len(), |offset| start + 1 + offset);
    let directive = |line: &str| -> Option<(String, String)> {
        let line = line.split(';').next()?.trim();
        let (key, value) = line.split_once("=>").or_else(|| line.split_once('='))?;
        Some((key.trim().to_string(), value.trim().to_string()))
    };
    let mut insert = Vec::new();
    for module in modules {
        let already = lines[start..end]
            .iter()
            .any(|line| directive(line) == Some(("noload".to_string(), module.clone())));
        for line in &mut lines[start..end] {
            if directive(line) == Some(("load".to_string(), module.clone())) {
                *line = format!(";{line} ; wazo-astdebug valgrind: noload instead");
            }
        }
        if !already {
            insert.push(format!("noload => {module} ; wazo-astdebug valgrind"));
        }
    }
    let mut at = end;
    while at > start + 1 && lines[at - 1].trim().is_empty() {
        at -= 1;
    }
    lines.splice(at..at, insert);
    let mut new = lines.join("\n");
    if text.ends_with('\n') || text.is_empty() {
        new.push('\n');
    }
    Ok(new)
}

pub fn has_highpriority(text: &str) -> bool {
    text.lines().any(|line| {
        let line = line.trim_start();
        line.starts_with("highpriority")
            && line["highpriority".len()..]
                .trim_start()
                .starts_with(['=', '>'])
    })
}

pub fn comment_highpriority(text: &str) -> std::result::Result<String, String> {
    let mut new: String = text
        .lines()
        .map(|line| {
            if has_highpriority(line) {
                format!(";{line} ; wazo-astdebug valgrind")
            } else {
                line.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    if text.ends_with('\n') {
        new.push('\n');
    }
    Ok(new)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MODULES: &str =
        "[modules]\nautoload=yes\nload => chan_sip.so\nnoload => chan_skinny.so\n\n[global]\nx=1\n";

    #[test]
    fn noload_lines_go_into_the_modules_section() {
        let new = add_noload(
            MODULES,
            &[
                "chan_sip.so".to_string(),
                "chan_skinny.so".to_string(),
                "res_x.so".to_string(),
            ],
        )
        .unwrap();
        assert_eq!(
            new,
            "[modules]\nautoload=yes\n;load => chan_sip.so ; wazo-astdebug valgrind: noload instead\n\
             noload => chan_skinny.so\nnoload => chan_sip.so ; wazo-astdebug valgrind\n\
             noload => res_x.so ; wazo-astdebug valgrind\n\n[global]\nx=1\n"
        );
        assert!(add_noload("[global]\n", &["a.so".to_string()]).is_err());
    }

    #[test]
    fn only_an_active_highpriority_is_commented() {
        let text = "[options]\n;highpriority = yes\nhighpriority = yes\nhighpriorityx = 1\n";
        assert!(has_highpriority(text));
        assert_eq!(
            comment_highpriority(text).unwrap(),
            "[options]\n;highpriority = yes\n;highpriority = yes ; wazo-astdebug valgrind\nhighpriorityx = 1\n"
        );
        assert!(!has_highpriority(";highpriority = yes\n"));
    }

    #[test]
    fn module_names_are_checked() {
        assert_eq!(
            check_modules(&["chan_sip".to_string(), "chan_sip.so".to_string()]).unwrap(),
            ["chan_sip.so"]
        );
        assert!(check_modules(&["a b".to_string()]).is_err());
    }
}
