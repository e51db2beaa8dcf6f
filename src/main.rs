//! The `wazo-astdebug` binary: everything lives in the library so that tests
//! (and the man page generator) see the same command-line definition.

fn main() -> std::process::ExitCode {
    wazo_astdebug::main()
}
