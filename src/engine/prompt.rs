//! Yes/no questions.
//!
//! `--yes` answers them; with no terminal to ask on, we fail before changing
//! anything rather than guess, since the usual cause is a script or cron job
//! that did not mean to change the server.

use std::io::IsTerminal;

use dialoguer::Confirm;

use crate::error::{Error, Result};

/// Whether someone can answer a question: not `--yes`, and a terminal to
/// ask on. Without one, a question that only refines a default (when did
/// it happen? which core?) takes the default.
pub fn can_ask(yes: bool) -> bool {
    !yes && std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

/// Asks `question` (`yes`: `--yes` was given, answer it without asking);
/// `Ok(())` to go on, `Err(Declined)` if the user says no.
/// `what` names the action in the error shown when nobody can answer.
pub fn confirm(yes: bool, what: &str, question: &str) -> Result<()> {
    if yes {
        errln!("{question} yes (--yes)");
        return Ok(());
    }
    if !can_ask(yes) {
        return Err(Error::NeedsYes {
            what: what.to_string(),
        });
    }
    match Confirm::new()
        .with_prompt(question)
        .default(false)
        .interact()
    {
        Ok(true) => Ok(()),
        Ok(false) => Err(Error::Declined),
        // dialoguer reads keys in raw mode, so Ctrl-C arrives here, not as a signal.
        Err(_) => Err(Error::Interrupted),
    }
}
