//! The projector's command line: `--help`, `--version`, `--rebuild`, and nothing else.

use std::process::Command;

fn projector(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_projector")).args(args).output().expect("the projector runs")
}

#[test]
fn help_names_rebuild_and_version_answers() {
    let help = projector(&["--help"]);
    assert!(help.status.success());
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("--rebuild") && help.contains("KURZ_CONFIG"), "{help}");
    let version = projector(&["--version"]);
    assert_eq!(String::from_utf8_lossy(&version.stdout).trim(), format!("projector {}", env!("CARGO_PKG_VERSION")));
    assert_eq!(projector(&["--rebuld"]).status.code(), Some(2), "a misspelt flag is a usage error");
}
