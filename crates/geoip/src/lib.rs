//! Visitors' places from a MaxMind-format (`.mmdb`) database the operator provides: MaxMind's
//! GeoLite2/GeoIP2 City, DB-IP's, or the flat city files of `ip-location-db`. The file is read
//! into memory, and read again when it changes on disk (databases are replaced monthly), without a
//! restart: a watcher thread looks at its modification time every few seconds.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock, Weak};
use std::time::{Duration, SystemTime};

use kurz_ports::{GeoLookup, Place};
use maxminddb::{LookupResult, PathElement, Reader};

/// How often the watcher looks for a new file.
const RELOAD_CHECK: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
#[error("GeoIP database {path}: {source}")]
pub struct GeoError {
    path: PathBuf,
    source: maxminddb::MaxMindDbError,
}

pub struct GeoDatabase {
    path: PathBuf,
    reader: RwLock<Arc<Reader<Vec<u8>>>>,
}

impl std::fmt::Debug for GeoDatabase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeoDatabase").field("path", &self.path).finish_non_exhaustive()
    }
}

impl GeoDatabase {
    /// Reads the database, and watches it for changes for as long as the returned value lives.
    pub fn open(path: &Path) -> Result<Arc<Self>, GeoError> {
        let reader = read(path)?;
        tracing::info!(path = %path.display(), kind = %reader.metadata.database_type, "GeoIP database loaded");
        let database = Arc::new(Self { path: path.to_path_buf(), reader: RwLock::new(Arc::new(reader)) });
        let watched = Arc::downgrade(&database);
        let modified = modified(path);
        std::thread::Builder::new()
            .name("geoip-reload".into())
            .spawn(move || watch(&watched, modified))
            .expect("a thread can be started");
        Ok(database)
    }

    fn reader(&self) -> Arc<Reader<Vec<u8>>> {
        Arc::clone(&self.reader.read().unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    /// Reads the file again; a file that does not read leaves the loaded one in use.
    fn reload(&self) {
        match read(&self.path) {
            Ok(reader) => {
                tracing::info!(path = %self.path.display(), "GeoIP database changed on disk; reloaded");
                *self.reader.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(reader);
            }
            Err(error) => tracing::warn!(%error, "GeoIP database changed but does not read; keeping the loaded one"),
        }
    }
}

fn read(path: &Path) -> Result<Reader<Vec<u8>>, GeoError> {
    Reader::open_readfile(path).map_err(|source| GeoError { path: path.to_path_buf(), source })
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

fn watch(database: &Weak<GeoDatabase>, mut seen: Option<SystemTime>) {
    loop {
        std::thread::sleep(RELOAD_CHECK);
        let Some(database) = database.upgrade() else { return };
        let now = modified(&database.path);
        if now.is_some() && now != seen {
            seen = now;
            database.reload();
        }
    }
}

impl GeoLookup for GeoDatabase {
    fn place(&self, address: IpAddr) -> Place {
        let reader = self.reader();
        let Ok(found) = reader.lookup(address) else { return Place::default() };
        if !found.has_data() {
            return Place::default();
        }
        // GeoIP2 layout first (MaxMind, DB-IP), then ip-location-db's flat one.
        let country = text(&found, &["country", "iso_code"]).or_else(|| text(&found, &["country_code"]));
        let region = text(&found, &["subdivisions", "0", "names", "en"]).or_else(|| text(&found, &["state1"]));
        let city = text(&found, &["city", "names", "en"]).or_else(|| text(&found, &["city"]));
        Place { country: country.map(|c| c.to_ascii_uppercase()), region, city }
    }
}

/// A string at `path` (numbers are array indices), if there is one.
fn text(found: &LookupResult<'_, Vec<u8>>, path: &[&str]) -> Option<String> {
    let path: Vec<PathElement<'_>> =
        path.iter().map(|step| step.parse::<usize>().map_or(PathElement::Key(step), PathElement::Index)).collect();
    found.decode_path::<String>(&path).ok().flatten().filter(|text| !text.is_empty())
}
