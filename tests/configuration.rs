//! The all-in-one binary's configuration: stray variables are ignored, a wrong file refuses.

mod common;

use std::process::Command;

#[test]
fn stray_kurz_variables_do_not_stop_kurz() {
    let dir = tempfile::tempdir().expect("temp dir");
    let stray = [("KURZ_BIN", "x"), ("KURZ_QUERY_API_SERVICE_HOST", "10.0.0.1")];
    let common::RunningKurz { mut child, startup: lines, .. } = common::start_kurz_binary(dir.path(), &stray);
    child.kill().expect("stopped");
    child.wait().expect("reaped");
    for (name, _) in stray {
        assert!(lines.iter().any(|l| l.contains("ignoring") && l.contains(name)), "{name} named: {lines:#?}");
    }
}

/// Runs `kurz` (with `args`) on a fresh data directory and the given settings, expecting it to
/// refuse its configuration: exit code 2 and one line on stderr, which is returned.
fn refusal(args: &[&str], settings: &[(&str, &std::ffi::OsStr)]) -> String {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = Command::new(env!("CARGO_BIN_EXE_kurz"))
        .args(args)
        .env("KURZ_HTTP__LISTEN", "127.0.0.1:0")
        .env("KURZ_STORAGE__DATA_DIR", dir.path())
        .envs(settings.iter().copied())
        .output()
        .expect("kurz runs");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    stderr
}

#[test]
fn an_unknown_key_in_the_file_refuses_with_one_line_and_exit_code_2() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("kurz.toml");
    std::fs::write(&file, "[storage]\ndata_dri = \"elsewhere\"\n").expect("written");
    let stderr = refusal(&[], &[("KURZ_CONFIG", file.as_os_str())]);
    assert!(stderr.contains("data_dri") && stderr.contains("kurz.toml"), "{stderr}");
}

#[test]
fn an_otlp_endpoint_without_the_otlp_build_refuses_with_one_line_and_exit_code_2() {
    let stderr = refusal(&[], &[("KURZ_LOG__OTLP_ENDPOINT", "http://127.0.0.1:4318".as_ref())]);
    assert!(stderr.contains("log.otlp_endpoint") && stderr.contains("--features otlp"), "{stderr}");
}

#[test]
fn help_version_and_the_default_command() {
    let kurz = |args: &[&str]| Command::new(env!("CARGO_BIN_EXE_kurz")).args(args).output().expect("kurz runs");
    let version = kurz(&["--version"]);
    assert!(version.status.success());
    assert_eq!(String::from_utf8_lossy(&version.stdout).trim(), format!("kurz {}", env!("CARGO_PKG_VERSION")));
    let help = kurz(&["--help"]);
    assert!(help.status.success());
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("serve") && help.contains("KURZ_CONFIG"), "{help}");
    assert_eq!(kurz(&["bogus"]).status.code(), Some(2));
}

#[test]
fn serve_is_what_kurz_does_without_a_command() {
    // `kurz serve` starts like `kurz` (which the other tests run without a command): it gets as
    // far as reading its configuration, and refuses what this build refuses there.
    let stderr = refusal(&["serve"], &[("KURZ_LOG__OTLP_ENDPOINT", "http://127.0.0.1:4318".as_ref())]);
    assert!(stderr.contains("log.otlp_endpoint"), "{stderr}");
}
