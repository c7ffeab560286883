//! The command line every binary shares: `--help` and `--version`. A service's settings come from
//! its configuration (defaults, the TOML file, `KURZ_` variables), not from flags.

/// A binary's command line: its name, what it is, its version (the binary's own
/// `CARGO_PKG_VERSION`), and where its settings come from.
pub fn command(name: &'static str, about: &'static str, version: &'static str) -> clap::Command {
    clap::Command::new(name).about(about).version(version).after_help(
        "Settings: built-in defaults, then the TOML file named by KURZ_CONFIG (default kurz.toml), then \
         KURZ_<SECTION>__<KEY> environment variables (KURZ_HTTP__LISTEN=0.0.0.0:8080). See the README's \
         Configuration section.",
    )
}
