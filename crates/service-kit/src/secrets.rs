//! A deployment's secrets, 32 bytes in one file: the key that makes generated codes unguessable and
//! the key that pseudonymises visitors. The all-in-one process creates the file on first start
//! beside its data; distributed services share one file (a mounted secret) and never create it,
//! since instances with different keys would count visitors differently. Losing the file changes
//! future codes (still unique: the registry holds every claim) and restarts visitor counting.

use std::io::Write;
use std::path::Path;

use anyhow::Context;

#[derive(Clone)]
pub struct Secrets {
    pub code_key: [u8; 16],
    pub visitor_key: [u8; 16],
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secrets(..)")
    }
}

/// Reads the secrets, creating the file with fresh random keys when it does not exist.
pub fn load_or_create(path: &Path) -> anyhow::Result<Secrets> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => create(path)?,
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    parse(path, bytes)
}

/// Reads the secrets of a distributed deployment; the file must exist.
pub fn load(path: &Path) -> anyhow::Result<Secrets> {
    let bytes = std::fs::read(path).with_context(|| {
        format!(
            "reading the secret key file {} (create it once per deployment: head -c 32 /dev/urandom > FILE)",
            path.display()
        )
    })?;
    parse(path, bytes)
}

fn parse(path: &Path, bytes: Vec<u8>) -> anyhow::Result<Secrets> {
    let bytes: [u8; 32] = bytes
        .try_into()
        .map_err(|b: Vec<u8>| anyhow::anyhow!("{} holds {} bytes, expected 32", path.display(), b.len()))?;
    let (code, visitor) = bytes.split_at(16);
    Ok(Secrets { code_key: code.try_into().expect("16 bytes"), visitor_key: visitor.try_into().expect("16 bytes") })
}

fn create(path: &Path) -> anyhow::Result<Vec<u8>> {
    let mut bytes = vec![0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness for the secrets: {e}"))?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).with_context(|| format!("creating {}", path.display()))?;
    file.write_all(&bytes)?;
    file.sync_all()?;
    Ok(bytes)
}
