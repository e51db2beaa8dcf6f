//! The command-line definition.
//!
//! Kept apart from the code that runs commands so that the man pages in
//! `man/` and the tests are generated from exactly what users type.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

const EXIT_CODES: &str = "\
Exit codes:
  0    done
  1    a step failed (cleanup has run: the apt mirror and edited files are restored)
  2    bad usage or bad input (nothing was changed)
  130  interrupted by Ctrl-C, SIGTERM or SIGHUP (cleanup has run)";

#[derive(Debug, Parser)]
#[command(
    name = "wazo-astdebug",
    version,
    about = "Debug a crashed or frozen Asterisk on Wazo Platform, safely",
    long_about = "Debug a crashed or frozen Asterisk on Wazo Platform, safely.\n\n\
        Turns Wazo's \"Debugging Asterisk\" procedures into guided, version-aware steps: \
        the right commands for your Wazo version, every command shown before it runs, \
        the apt mirror and edited files always put back, and --dry-run to print it all \
        as a shell script instead.",
    after_help = EXIT_CODES,
    after_long_help = EXIT_CODES,
    propagate_version = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalOpts,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Args)]
pub struct GlobalOpts {
    /// Print the commands that would change the system, as a POSIX sh script, and change nothing
    #[arg(short = 'n', long, global = true)]
    pub dry_run: bool,

    /// Answer yes to every question (and pass -y to apt-get)
    #[arg(short = 'y', long, global = true)]
    pub yes: bool,

    /// Use this Wazo version (e.g. 25.15) instead of detecting it
    #[arg(long, value_name = "VER", global = true)]
    pub wazo_version: Option<String>,

    /// Read host files (version files, apt sources, logs, spool) under DIR instead of /
    #[arg(long, value_name = "DIR", global = true, default_value = "/")]
    pub root: PathBuf,

    /// Where artefacts and the run log go [default: /var/local/wazo-astdebug/<YYYYMMDD-HHMMSS>-<hostname>/]
    #[arg(short = 'o', long, value_name = "DIR", global = true)]
    pub output_dir: Option<PathBuf>,

    /// Machine-readable output on stdout, for commands that report
    #[arg(long, global = true)]
    pub json: bool,

    /// Read the version eras and procedures from DIR instead of the built-in ones
    #[arg(long, value_name = "DIR", global = true)]
    pub runbooks: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Install gdb and the debug symbols that match your Asterisk, then put the apt mirror back
    #[command(
        name = "setup-dbg",
        long_about = "Install gdb and the debug symbols that match your Asterisk, then put the apt mirror back.\n\n\
            Points apt at the archive of your Wazo version (so Asterisk is not upgraded), installs \
            gdb, libc6-dbg and the Asterisk/libsccp debug packages of your era, then restores the \
            production mirror. The restore is guaranteed: it also runs when a step fails or you \
            press Ctrl-C. Finally checks that the debug symbols match the installed Asterisk.",
        after_help = "Examples:\n  wazo-astdebug setup-dbg\n  wazo-astdebug --dry-run --wazo-version 25.15 setup-dbg > setup.sh"
    )]
    SetupDbg,

    /// Show the detected version, its era, the apt mirror, Asterisk's pid and the tools found
    #[command(after_help = "Examples:\n  wazo-astdebug info\n  wazo-astdebug --json info")]
    Info,

    /// List the version eras and procedures loaded (built-in or from --runbooks)
    #[command(
        after_help = "Examples:\n  wazo-astdebug runbooks\n  wazo-astdebug runbooks --export ./my-runbooks\n  \
            wazo-astdebug --runbooks ./my-runbooks --wazo-version 26.07 --dry-run setup-dbg"
    )]
    Runbooks(RunbooksArgs),

    /// Pack a run directory into DIR.tar.gz for the bug tracker: no core file, secrets redacted
    #[command(
        long_about = "Pack a run directory into DIR.tar.gz for the bug tracker: no core file, secrets redacted.\n\n\
            Writes DIR.tar.gz beside DIR, mode 0600, through a temporary file (never a partial bundle). \
            Core files are found by their ELF header, whatever their name, and left out, as are other \
            binaries (images excepted), symlinks and special files. In every text file (gzip ones too), \
            passwords, secrets, SIP digest responses and nonces, AMI secrets, tokens and `bt full` \
            locals are replaced by [REDACTED], keeping the key. Prints each file with its count, each \
            file left out and why. With --dry-run, only lists that and writes nothing.",
        after_help = "Examples:\n  wazo-astdebug report\n  wazo-astdebug --dry-run report /var/local/wazo-astdebug/20261128-045500-wazo\n  \
            wazo-astdebug --json report --force /var/local/wazo-astdebug/20261128-045500-wazo"
    )]
    Report(crate::report::ReportArgs),
    /// After a crash: find the core, take gdb's backtrace, copy the logs that cover it, write a bug report
    #[command(
        long_about = "After a crash: find the core, take gdb's backtrace, copy the logs that cover it, write a bug report.\n\n\
            Finds the kernel's segfault lines and asks when the incident happened (default: the newest \
            segfault). Picks the core file in /var/spool/asterisk (or core_pattern's directory) whose pid \
            or time fits, runs the doc's `gdb -batch -ex \"bt full\" -ex \"thread apply all bt\"` into \
            bt-threads.txt, prints the signal and the crashing thread's top frames, copies the Asterisk \
            `full` log that covers the incident (a rotated one if need be) and writes bug-report.md. \
            Artefacts are mode 0600; the core file is never copied.",
        after_help = "Examples:\n  wazo-astdebug crash\n  wazo-astdebug crash --at \"2026-11-28 04:10\"\n  \
            wazo-astdebug --yes crash --core /var/spool/asterisk/core.1255.1764303163"
    )]
    Crash(crate::crash::CrashArgs),

    /// During a freeze: symptoms, live backtrace, `core show locks`, and which threads deadlock on which locks
    #[command(
        long_about = "During a freeze: symptoms, live backtrace, `core show locks`, and which threads deadlock on which locks.\n\n\
            Checks the doc's symptoms with a time limit each (service status, `core show channels`), saves \
            `core show locks` when Asterisk has DEBUG_THREADS, takes the doc's `gdb -batch -ex \"thread apply \
            all bt\"` and, in the same attach, reads who waits for which mutex or rwlock from memory, so the \
            deadlock is found even without DEBUG_THREADS. Prints the deadlock in words and the threads grouped \
            by identical stacks; --graph also draws it. The process is left running. --core does the same on \
            a core file, e.g. one left by the freeze check's abort().",
        after_help = "Examples:\n  wazo-astdebug freeze --graph\n  wazo-astdebug --json freeze --pid 1255\n  \
            wazo-astdebug freeze --core /var/spool/asterisk/core.1255.1764303163"
    )]
    Freeze(crate::freeze::FreezeArgs),

    /// List Asterisk segfaults found in syslog, kern.log, messages (rotated and gzipped too), the journal and dmesg
    #[command(
        after_help = "Examples:\n  wazo-astdebug segfaults\n  wazo-astdebug segfaults --since -2d\n  \
            wazo-astdebug --json segfaults --log ./syslog.2.gz --log ./kern.log"
    )]
    Segfaults(crate::segfaults::SegfaultsArgs),
    /// Draw the lock wait-for graph of a saved `core show locks` output and explain its deadlocks
    #[command(
        after_help = "Examples:\n  wazo-astdebug graph core-show-locks.txt\n  \
            wazo-astdebug graph core-show-locks.txt -f svg -o graph-locks.svg\n  \
            asterisk -rx 'core show locks' | wazo-astdebug graph - -f dot | circo -Tsvg -o graph-locks.svg"
    )]
    Graph(crate::graph::GraphArgs),

    /// Print the bash, zsh or fish completion script (the Debian package installs them)
    #[command(
        after_help = "Examples:\n  wazo-astdebug completions bash > /etc/bash_completion.d/wazo-astdebug\n  \
            wazo-astdebug completions zsh > /usr/local/share/zsh/site-functions/_wazo-astdebug\n  \
            wazo-astdebug completions fish > ~/.config/fish/completions/wazo-astdebug.fish"
    )]
    Completions(crate::completions::CompletionsArgs),
}

#[derive(Debug, Args)]
pub struct RunbooksArgs {
    /// Write the built-in runbook files into DIR, to edit them and use them with --runbooks DIR
    #[arg(long, value_name = "DIR")]
    pub export: Option<PathBuf>,
}
