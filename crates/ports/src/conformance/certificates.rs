//! A throwaway certificate authority for tests of TLS to a backend: a CA, a server certificate for
//! 127.0.0.1 and localhost, and a client certificate, made with the `openssl` command.

use std::path::{Path, PathBuf};
use std::process::Command;

/// PEM files in a directory that lives as long as the value.
#[derive(Debug)]
pub struct TestCertificates {
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    dir: PathBuf,
}

impl Drop for TestCertificates {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl TestCertificates {
    /// New certificates, or `None` (the calling test says it is skipped, or fails in CI) when the
    /// `openssl` command is missing.
    pub fn make_or_skip() -> Option<Self> {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        if Command::new("openssl").arg("version").output().is_err() {
            super::skip("no openssl command", "apt-get install openssl", false);
            return None;
        }
        let dir = std::env::temp_dir().join(format!(
            "kurz-test-certs-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("a directory for the certificates");
        let file = |name: &str| dir.join(name);
        openssl(
            &dir,
            &["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"],
            &["-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=Kurz test CA"],
        );
        std::fs::write(file("server.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n").expect("written");
        for (name, extensions) in [("server", Some("server.ext")), ("client", None)] {
            openssl(
                &dir,
                &["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"],
                &[
                    "-keyout",
                    &format!("{name}.key"),
                    "-out",
                    &format!("{name}.csr"),
                    "-subj",
                    &format!("/CN=kurz-test-{name}"),
                ],
            );
            let mut sign = vec![
                "-in".to_owned(),
                format!("{name}.csr"),
                "-CA".into(),
                "ca.pem".into(),
                "-CAkey".into(),
                "ca.key".into(),
                "-CAcreateserial".into(),
                "-out".into(),
                format!("{name}.pem"),
                "-days".into(),
                "2".into(),
            ];
            if let Some(extensions) = extensions {
                sign.extend(["-extfile".into(), extensions.into()]);
            }
            openssl(&dir, &["x509", "-req"], &sign.iter().map(String::as_str).collect::<Vec<_>>());
        }
        Some(Self {
            ca: file("ca.pem"),
            server_cert: file("server.pem"),
            server_key: file("server.key"),
            client_cert: file("client.pem"),
            client_key: file("client.key"),
            dir,
        })
    }
}

fn openssl(dir: &Path, command: &[&str], arguments: &[&str]) {
    let output = Command::new("openssl").args(command).args(arguments).current_dir(dir).output().expect("openssl runs");
    assert!(output.status.success(), "openssl {command:?}: {}", String::from_utf8_lossy(&output.stderr));
}
