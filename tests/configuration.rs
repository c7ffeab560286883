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

#[test]
fn an_unknown_key_in_the_file_refuses_with_one_line_and_exit_code_2() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("kurz.toml");
    std::fs::write(&file, "[storage]\ndata_dri = \"elsewhere\"\n").expect("written");
    let output = Command::new(env!("CARGO_BIN_EXE_kurz"))
        .env("KURZ_CONFIG", &file)
        .env("KURZ_HTTP__LISTEN", "127.0.0.1:0")
        .env("KURZ_STORAGE__DATA_DIR", dir.path())
        .output()
        .expect("kurz runs");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("data_dri") && stderr.contains("kurz.toml"), "{stderr}");
}

#[test]
fn an_otlp_endpoint_without_the_otlp_build_refuses_with_one_line_and_exit_code_2() {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = Command::new(env!("CARGO_BIN_EXE_kurz"))
        .env("KURZ_LOG__OTLP_ENDPOINT", "http://127.0.0.1:4318")
        .env("KURZ_HTTP__LISTEN", "127.0.0.1:0")
        .env("KURZ_STORAGE__DATA_DIR", dir.path())
        .output()
        .expect("kurz runs");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("log.otlp_endpoint") && stderr.contains("--features otlp"), "{stderr}");
}
