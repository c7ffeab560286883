//! The process's secrets, created on first start and kept beside the data: the key that makes
//! generated codes unguessable and the key that pseudonymises visitors. Losing the file changes
//! future codes (still unique: the registry holds every claim) and restarts visitor counting.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use kurz_domain::CodeKey;
use kurz_query_api::VisitorKey;

pub struct Secrets {
    pub code_key: CodeKey,
    pub visitor_key: VisitorKey,
}

pub fn load_or_create(path: &Path) -> anyhow::Result<Secrets> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => create(path)?,
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let bytes: [u8; 32] = bytes
        .try_into()
        .map_err(|b: Vec<u8>| anyhow::anyhow!("{} holds {} bytes, expected 32", path.display(), b.len()))?;
    let (code, visitor) = bytes.split_at(16);
    Ok(Secrets {
        code_key: CodeKey::new(code.try_into().expect("16 bytes")),
        visitor_key: VisitorKey(visitor.try_into().expect("16 bytes")),
    })
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
