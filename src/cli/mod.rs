//! The command-line definition.
//!
//! Kept apart from the code that runs commands so that the man pages in
//! `man/` and the tests are generated from exactly what users type.

pub mod completions;

use clap::{Parser, Subcommand};

pub use crate::context::GlobalOpts;

const EXIT_CODES: &str = "\
Exit codes:
  0    done
  1    a step failed (cleanup has run: the apt mirror and edited files are restored),
       or the cleanup itself failed (CLEANUP FAILED: the commands to run by hand are printed)
  2    bad usage or bad input, or another run holds the lock (nothing was changed)
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
    propagate_version = true,
    // `--help` on every command says it all; a `help` subcommand would be a
    // man page that does not exist.
    disable_help_subcommand = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalOpts,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show the detected version, its era, the apt mirror, Asterisk's pid and the tools found
    #[command(after_help = "Examples:\n  wazo-astdebug info\n  wazo-astdebug --json info")]
    Info,

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

    /// List Asterisk segfaults found in syslog, kern.log, messages (rotated and gzipped too), the journal and dmesg
    #[command(
        after_help = "Examples:\n  wazo-astdebug segfaults\n  wazo-astdebug segfaults --since -2d\n  \
            wazo-astdebug --json segfaults --log ./syslog.2.gz --log ./kern.log"
    )]
    Segfaults(crate::commands::segfaults::SegfaultsArgs),

    /// After a crash: find the core, take gdb's backtrace, copy the logs that cover it, write a bug report
    #[command(
        long_about = "After a crash: find the core, take gdb's backtrace, copy the logs that cover it, write a bug report.\n\n\
            Finds the kernel's segfault lines and asks when the incident happened (default: the newest \
            segfault). Picks the core file in /var/spool/asterisk (or core_pattern's directory) whose pid \
            or time fits, runs the doc's `gdb -batch -ex \"bt full\" -ex \"thread apply all bt\"` into \
            bt-threads.txt and, from the same gdb run, every thread's `bt full` into bt-full.txt, prints the signal and the crashing thread's top frames, copies the Asterisk \
            `full` log that covers the incident (a rotated one if need be) and writes bug-report.md. \
            Artefacts are mode 0600; the core file is never copied.",
        after_help = "Examples:\n  wazo-astdebug crash\n  wazo-astdebug crash --at \"2026-11-28 04:10\"\n  \
            wazo-astdebug --yes crash --core /var/spool/asterisk/core.1255.1764303163"
    )]
    Crash(crate::commands::crash::CrashArgs),

    /// During a freeze: symptoms, live backtrace, `core show locks`, and which threads deadlock on which locks
    #[command(
        long_about = "During a freeze: symptoms, live backtrace, `core show locks`, and which threads deadlock on which locks.\n\n\
            First reads the wait-for graph from /proc, without stopping Asterisk (--no-attach stops there). \
            Checks the doc's symptoms with a time limit each (service status, `core show channels`, \
            `core show taskprocessors`), saves `core show locks` when Asterisk has DEBUG_THREADS, takes the doc's `gdb -batch -ex \"thread apply \
            all bt\"` and, in the same attach, reads who waits for which mutex or rwlock from memory, so the \
            deadlock is found even without DEBUG_THREADS. Prints the deadlock in words and the threads grouped \
            by identical stacks; --graph also draws it. The process is left running. --core does the same on \
            a core file, e.g. one left by the freeze check's abort(), and also writes every thread's `bt \
            full` into bt-full.txt from the same gdb run. --samples N first reads /proc N times \
            and compares: frozen (no lock changes hands) or only slow. The deadlocked threads' and top lock \
            holders' own lines in the `full` log go into threads-log.txt, and stuck taskprocessors are named \
            with the thread serving each.",
        after_help = "Examples:\n  wazo-astdebug freeze --graph\n  wazo-astdebug --json freeze --pid 1255\n  \
            wazo-astdebug freeze --samples 3 --interval 0.5\n  \
            wazo-astdebug freeze --core /var/spool/asterisk/core.1255.1764303163"
    )]
    Freeze(crate::commands::freeze::FreezeArgs),

    /// Watch Asterisk from /proc without stopping it; at a freeze, capture the evidence once
    #[command(
        long_about = "Watch Asterisk from /proc without stopping it; at a freeze, capture the evidence once.\n\n\
            Every --interval seconds, reads from /proc alone (never gdb, never a signal) which thread of \
            Asterisk sleeps on which mutex or rwlock and which thread owns it. A freeze is a wait-for \
            cycle whose threads do not move, or a stalled lock (its owner asleep and not scheduled, the \
            threads behind it not fewer), lasting --confirm samples in a row; contention that moves is \
            not one. At a freeze it says which rule fired and captures once, into a new run directory \
            under --output-dir: what the samples showed and the /proc graph (watch.txt, watch.json), a \
            `wazo-astdebug freeze` run (gdb backtrace and lock analysis, the CLI checks, the log, the bug \
            report; the only moment Asterisk is stopped), with --gcore a core; then one syslog line \
            naming the threads and the directory, and --on-freeze. It follows Asterisk across restarts \
            and waits while it is gone. Each capture's run directory is printed on stdout (with --json, \
            a JSON object). The Debian package installs it as wazo-astdebug-watch.service, disabled: \
            `systemctl enable --now wazo-astdebug-watch`.",
        after_help = "Examples:\n  wazo-astdebug watch\n  wazo-astdebug watch --gcore --on-freeze 'mail -s \"Asterisk frozen\" oncall < \"$WAZO_ASTDEBUG_RUN_DIR/watch.txt\"'\n  \
            wazo-astdebug --json watch --once --max-time 3600"
    )]
    Watch(crate::commands::watch::WatchArgs),

    /// Draw the lock wait-for graph of a saved `core show locks` output and explain its deadlocks
    #[command(
        after_help = "Examples:\n  wazo-astdebug graph core-show-locks.txt\n  \
            wazo-astdebug graph core-show-locks.txt -f svg -o graph-locks.svg\n  \
            asterisk -rx 'core show locks' | wazo-astdebug graph - -f dot | circo -Tsvg -o graph-locks.svg"
    )]
    Graph(crate::commands::graph::GraphArgs),

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
    Report(crate::commands::report::ReportArgs),

    /// Replace asterisk with Wazo's asterisk-vanilla (no Wazo patches), or put asterisk back (19.13+)
    #[command(
        long_about = "Replace asterisk with Wazo's asterisk-vanilla (no Wazo patches), or put asterisk back (19.13+).\n\n\
            asterisk-vanilla is upstream Asterisk built with DONT_OPTIMIZE, for reproducing a crash \
            before reporting it to Asterisk. It loses Wazo-only features (queue skill-based routing, \
            voicemail consultation and call transfers via the REST API): you are asked before anything \
            changes. Like setup-dbg, apt points at your version's archive while installing, and the \
            production mirror of your era is always put back, also on failure or Ctrl-C. Before 19.13, \
            use `rebuild --vanilla`.",
        after_help = "Examples:\n  wazo-astdebug vanilla install\n  wazo-astdebug vanilla revert\n  \
            wazo-astdebug --dry-run --wazo-version 25.15 vanilla install"
    )]
    Vanilla(crate::commands::vanilla::VanillaArgs),

    /// Recompile Asterisk with DEBUG_THREADS and DONT_OPTIMIZE (or other flags), without an editor
    #[command(
        long_about = "Recompile Asterisk with DEBUG_THREADS and DONT_OPTIMIZE (or other flags), without an editor.\n\n\
            Points apt at your version's archive (so the source is that of the installed Asterisk) \
            with its deb-src line enabled, from a byte-for-byte backup of the apt source file that is \
            put back at the end with the production mirror, also on failure or Ctrl-C \
            (--current-mirror: the doc's way, deb-src enabled in wazo-dist.list or xivo-dist.list as \
            they are); fetches the asterisk source package and its build dependencies in the work \
            directory; turns the flags on in \
            debian/rules (fixing the two `:=` assignments that drop each other) and checks that \
            menuselect gets each one; adds a VERSION+debug1 changelog entry; builds with \
            dpkg-buildpackage -us -uc; lists the .deb files and offers to install them. With \
            --vanilla (Wazo before 17.17), Wazo's patches are unapplied with quilt first.",
        after_help = "Examples:\n  wazo-astdebug rebuild\n  wazo-astdebug rebuild --flags DEBUG_THREADS,DONT_OPTIMIZE,BETTER_BACKTRACES\n  \
            wazo-astdebug --wazo-version 16.08 rebuild --vanilla --workdir /srv/ast-rebuild\n  \
            wazo-astdebug --dry-run rebuild > rebuild.sh"
    )]
    Rebuild(crate::commands::rebuild::RebuildArgs),

    /// Run Asterisk in the foreground under valgrind until Ctrl-C, then put everything back and summarise
    #[command(
        long_about = "Run Asterisk in the foreground under valgrind until Ctrl-C, then put everything back and summarise.\n\n\
            Stops monit, the services given with --stop and Asterisk; optionally adds noload lines to \
            modules.conf and comments out highpriority in asterisk.conf, from backups; puts valgrind.supp \
            in /tmp; runs `valgrind --leak-check=full --log-file=valgrind.txt --suppressions=valgrind.supp \
            --vgdb=no asterisk -G asterisk -U asterisk -fnc` from /tmp without Wazo's tcmalloc LD_PRELOAD. \
            Press Ctrl-C to end the run: valgrind writes its report (this can take minutes), the files are \
            put back byte for byte, Asterisk, the services and monit are started again, valgrind.txt is \
            copied to the output directory (0600) and summarised: errors by kind, lost bytes, top stacks. \
            A run ended by Ctrl-C exits 0; by SIGTERM/SIGHUP 130.",
        after_help = "Examples:\n  wazo-astdebug valgrind --noload chan_sip,res_snmp --stop wazo-calld\n  \
            wazo-astdebug valgrind --suppressions ~/ast-rebuild/asterisk-20.5.0/contrib/valgrind.supp\n  \
            wazo-astdebug --dry-run valgrind --noload chan_sip > valgrind.sh"
    )]
    Valgrind(crate::commands::valgrind::ValgrindArgs),

    /// Put back what a killed run left half-changed (apt mirror, edited files, stopped services)
    #[command(
        long_about = "Put back what a killed run left half-changed (apt mirror, edited files, stopped services).\n\n\
            Every change a run makes is preceded by its undo, written (fsynced) to a journal in \
            /var/lib/wazo-astdebug (under --root), and taken out once it has run. A run killed with \
            SIGKILL, by the OOM killer or by a power cut leaves those steps behind; until they are \
            run, the commands that change the system refuse to start. recover names the processes \
            the killed run left running (an apt-get still installing), shows the undo steps, asks, \
            stops those processes and runs the steps, innermost first, without being interrupted. \
            With --dry-run it only prints them.",
        after_help = "Examples:\n  wazo-astdebug info\n  wazo-astdebug --dry-run recover\n  wazo-astdebug recover"
    )]
    Recover(crate::commands::recover::RecoverArgs),

    /// List the version eras and procedures loaded (built-in or from --runbooks)
    #[command(
        after_help = "Examples:\n  wazo-astdebug runbooks\n  wazo-astdebug runbooks --export ./my-runbooks\n  \
            wazo-astdebug --runbooks ./my-runbooks --wazo-version 26.07 --dry-run setup-dbg"
    )]
    Runbooks(crate::commands::runbooks::RunbooksArgs),
    /// Print the bash, zsh or fish completion script (the Debian package installs them)
    #[command(
        after_help = "Examples:\n  wazo-astdebug completions bash > /etc/bash_completion.d/wazo-astdebug\n  \
            wazo-astdebug completions zsh > /usr/local/share/zsh/site-functions/_wazo-astdebug\n  \
            wazo-astdebug completions fish > ~/.config/fish/completions/wazo-astdebug.fish"
    )]
    Completions(crate::cli::completions::CompletionsArgs),
}
