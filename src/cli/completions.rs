//! `wazo-astdebug completions SHELL`: the shell completion script, generated
//! by clap_complete from the same clap definition as the man pages.
//!
//! The Debian package runs this at build time (`packaging/build-deb.sh`) to
//! ship the scripts where bash-completion, zsh and fish look for them.

use std::io::Write as _;

use clap::{Args, CommandFactory, ValueEnum};

use crate::Result;
use crate::cli::Cli;

/// The name completions are registered for: the installed binary's name.
const BIN_NAME: &str = "wazo-astdebug";

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to print the completion script for
    #[arg(value_enum)]
    pub shell: CompletionShell,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CompletionShell {
    /// Bash (bash-completion): /usr/share/bash-completion/completions/wazo-astdebug
    Bash,
    /// Zsh: /usr/share/zsh/vendor-completions/_wazo-astdebug
    Zsh,
    /// Fish: /usr/share/fish/vendor_completions.d/wazo-astdebug.fish
    Fish,
}

impl CompletionShell {
    fn generator(self) -> clap_complete::Shell {
        match self {
            CompletionShell::Bash => clap_complete::Shell::Bash,
            CompletionShell::Zsh => clap_complete::Shell::Zsh,
            CompletionShell::Fish => clap_complete::Shell::Fish,
        }
    }
}

/// The completion script for `shell`.
pub fn script(shell: CompletionShell) -> Vec<u8> {
    let mut command = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(shell.generator(), &mut command, BIN_NAME, &mut script);
    match shell {
        CompletionShell::Bash => script = fix_bash_hyphenated_bin_name(&script),
        // clap_complete's fish script completes no positional value: offer
        // the shells after `completions` (the other positionals are files,
        // fish's default).
        CompletionShell::Fish => {
            let shells: Vec<_> = CompletionShell::value_variants()
                .iter()
                .filter_map(|shell| shell.to_possible_value())
                .map(|value| value.get_name().to_string())
                .collect();
            script.extend_from_slice(
                format!(
                    "complete -c {BIN_NAME} -n \"__fish_{}_using_subcommand completions\" -f -a \"{}\"\n",
                    BIN_NAME.replace('-', "_"),
                    shells.join(" ")
                )
                .as_bytes(),
            );
        }
        CompletionShell::Zsh => {}
    }
    script
}

/// clap_complete's bash script (4.6.11 and before, clap-rs/clap#6421) spells
/// the state of a subcommand two ways when the binary's name has a hyphen:
/// the loop over the words sets `wazo__astdebug__subcmd__crash`, the `case`
/// arms test `wazo__subcmd__astdebug__subcmd__crash`, so nothing after a
/// subcommand (its options, `completions <shell>`) ever completed. The arms
/// are respelled the loop's way; once clap_complete is fixed, this finds
/// nothing to replace.
fn fix_bash_hyphenated_bin_name(script: &[u8]) -> Vec<u8> {
    let wrong = BIN_NAME.replace('-', "__subcmd__");
    let right = BIN_NAME.replace('-', "__");
    String::from_utf8_lossy(script)
        .replace(&wrong, &right)
        .into_bytes()
}

/// Prints the script on stdout. A closed pipe is not an error (as with
/// `outln!`): the script is all this command does.
pub fn run(args: &CompletionsArgs) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(&script(args.shell));
    let _ = stdout.flush();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_script_names_the_binary_and_every_subcommand() {
        let command = Cli::command();
        for shell in CompletionShell::value_variants() {
            let script = String::from_utf8(script(*shell)).unwrap();
            assert!(script.contains(BIN_NAME), "{shell:?}");
            for sub in command.get_subcommands() {
                assert!(
                    script.contains(sub.get_name()),
                    "{shell:?} script lacks {}",
                    sub.get_name()
                );
            }
        }
    }

    #[test]
    fn bash_case_arms_are_spelled_like_the_loop() {
        let script = String::from_utf8(script(CompletionShell::Bash)).unwrap();
        assert!(!script.contains("wazo__subcmd__astdebug"));
        assert!(script.contains("cmd=\"wazo__astdebug__subcmd__crash\""));
        assert!(script.contains("\n        wazo__astdebug__subcmd__crash)\n"));
    }
}
