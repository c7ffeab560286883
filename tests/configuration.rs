//! The all-in-one binary's configuration: stray variables are ignored, a wrong file refuses.

use std::process::{Command, Stdio};
use std::time::Duration;

use std::io::{BufRead, BufReader};

#[test]
fn stray_kurz_variables_do_not_stop_kurz() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_kurz"))
        .env("KURZ_HTTP__LISTEN", "127.0.0.1:0")
        .env("KURZ_STORAGE__DATA_DIR", dir.path())
        .env("KURZ_BIN", "x")
        .env("KURZ_QUERY_API_SERVICE_HOST", "10.0.0.1")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kurz starts");
    let stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    while !seen.iter().any(|l: &String| l.contains("kurz is serving")) {
        let line = receiver.recv_timeout(Duration::from_mins(1)).unwrap_or_else(|_| panic!("kurz serves: {seen:#?}"));
        seen.push(line);
    }
    child.kill().expect("stopped");
    child.wait().expect("reaped");
    for name in ["KURZ_BIN", "KURZ_QUERY_API_SERVICE_HOST"] {
        assert!(seen.iter().any(|l| l.contains("ignoring") && l.contains(name)), "{name} named: {seen:#?}");
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
