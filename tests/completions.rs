//! `wazo-astdebug completions SHELL` run as the real binary: each script is
//! accepted by its shell (`bash -n`, and `zsh -n`/`fish -n` where installed),
//! and the bash one really completes. The packaged files are checked by
//! `packaging/check-deb.sh`.

use std::io::Write as _;
use std::process::{Command as StdCommand, Stdio};

use assert_cmd::Command;

fn script(shell: &str) -> String {
    let output = Command::cargo_bin("wazo-astdebug")
        .unwrap()
        .args(["completions", shell])
        .output()
        .unwrap();
    assert!(output.status.success(), "{shell}: {output:?}");
    assert!(output.stderr.is_empty(), "{shell}: {output:?}");
    String::from_utf8(output.stdout).unwrap()
}

/// `SHELL -n` on the script, read from stdin.
fn syntax_check(shell: &str, script: &str) {
    let mut child = StdCommand::new(shell)
        .arg("-n")
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{shell} -n: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn every_script_parses_and_names_every_subcommand() {
    for shell in ["bash", "zsh", "fish"] {
        let script = script(shell);
        for sub in ["setup-dbg", "crash", "freeze", "graph", "completions"] {
            assert!(script.contains(sub), "{shell} script lacks {sub}");
        }
        crate::common::need(shell, shell);
        syntax_check(shell, &script);
    }
}

#[test]
fn bash_completes_subcommands_and_global_options() {
    let script = script("bash");
    let complete = |words: &str| -> String {
        let output = StdCommand::new("bash")
            .arg("-c")
            .arg(
                r#"eval "$SCRIPT"
                read -ra COMP_WORDS <<<"$WORDS"
                COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
                COMP_LINE=$WORDS; COMP_POINT=${#COMP_LINE}
                fn=$(complete -p wazo-astdebug | sed 's/.* -F \([^ ]*\) .*/\1/')
                "$fn" wazo-astdebug "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
                printf '%s\n' "${COMPREPLY[@]}""#,
            )
            .env("SCRIPT", &script)
            .env("WORDS", words)
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        String::from_utf8(output.stdout).unwrap()
    };
    assert_eq!(complete("wazo-astdebug cr").trim(), "crash");
    // After a subcommand (clap-rs/clap#6421, worked around in src/cli/completions.rs).
    assert_eq!(complete("wazo-astdebug completions z").trim(), "zsh");
    assert_eq!(complete("wazo-astdebug crash --co").trim(), "--core");
    assert_eq!(
        complete("wazo-astdebug setup-dbg --dry").trim(),
        "--dry-run"
    );
    assert!(complete("wazo-astdebug --dry").contains("--dry-run"));
}

#[test]
fn an_unknown_shell_is_bad_usage() {
    Command::cargo_bin("wazo-astdebug")
        .unwrap()
        .args(["completions", "powershell"])
        .assert()
        .code(2);
}

#[test]
fn fish_completes_subcommands_options_and_shells() {
    crate::common::need("fish", "fish");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wazo-astdebug.fish");
    std::fs::write(&path, script("fish")).unwrap();
    let complete = |line: &str| -> String {
        let output = StdCommand::new("fish")
            .arg("-c")
            .arg("source $argv[1]; complete -C $argv[2]")
            .arg(&path)
            .arg(line)
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        String::from_utf8(output.stdout)
            .unwrap()
            .lines()
            .map(|line| line.split('\t').next().unwrap_or("").to_string())
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(complete("wazo-astdebug cr"), "crash");
    assert_eq!(complete("wazo-astdebug crash --co"), "--core");
    assert_eq!(complete("wazo-astdebug completions "), "bash fish zsh");
}
