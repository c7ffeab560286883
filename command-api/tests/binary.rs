//! The `command-api` binary refuses a deployment it cannot serve, and says why.

use std::process::{Command, Output};

fn run(environment: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_command-api"))
        .env("KURZ_HTTP__LISTEN", "127.0.0.1:0")
        .envs(environment.iter().copied())
        .output()
        .expect("the binary runs")
}

#[test]
fn without_the_shared_secret_key_file_it_refuses_to_start_and_says_how_to_make_one() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("missing.key");
    let output = run(&[("KURZ_SECRET_KEY_FILE", missing.to_str().expect("utf-8 path"))]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("missing.key"), "names the file: {stderr}");
    assert!(stderr.contains("head -c 32 /dev/urandom"), "says how to create it: {stderr}");
}

#[test]
fn an_invalid_setting_is_named() {
    let output = run(&[("KURZ_KAFKA__PARTITIONS", "lots")]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("invalid configuration"), "{stderr}");
    assert!(stderr.to_lowercase().contains("kafka.partitions"), "names the setting: {stderr}");
}
