//! Secrets sealed at rest: values the service must store and later send on (the automation
//! headers of runbook catalogues: bearer tokens, API keys) are stored encrypted with
//! ChaCha20-Poly1305 under a key kept outside the database, so a copy of the database file, a
//! dump or a backup does not give them away.
//!
//! The key is 32 random bytes written as 64 hex digits in a file (`actions.secret_key_file`;
//! default `secret.key` in the data directory), created with mode 0600 the first time a secret
//! is sealed, so a service that never stores a secret writes no key. Every replica sharing a
//! database needs the same key file; `openssl rand -hex 32` makes one.
//!
//! A sealed value reads `sealed:v1:` followed by the hex of a random 12-byte nonce and the
//! ciphertext. Its associated data says where it belongs (for a header: the runbook and the
//! header name), so a sealed value copied to another place does not open there.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};

/// How every sealed value starts.
pub const SEALED_PREFIX: &str = "sealed:v1:";

const KEY_BYTES: usize = 32;
const NONCE_BYTES: usize = 12;

/// Why a value could not be sealed or opened.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// The key file cannot be read, written or understood.
    #[error("secret key file {path}: {why}")]
    Key {
        /// The key file.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// The value is sealed but does not open with this key here: another key, or changed.
    #[error(
        "the sealed secret of {context} does not open with the key in {path}: it was sealed \
         with another key (every replica needs the same actions.secret_key_file) or changed"
    )]
    WrongKey {
        /// Where the value belongs.
        context: String,
        /// The key file.
        path: PathBuf,
    },
}

/// Seals and opens secrets with the key in one file.
#[derive(Debug)]
pub struct Sealer {
    path: PathBuf,
    /// Read at start-up when the file exists, else created with the first sealed value.
    key: Mutex<Option<[u8; KEY_BYTES]>>,
}

/// Whether `text` is a sealed value (rather than a secret stored before sealing existed).
pub fn is_sealed(text: &str) -> bool {
    text.starts_with(SEALED_PREFIX)
}

impl Sealer {
    /// A sealer with the key in `path`: read now if the file exists (a malformed key file is an
    /// error here, not at the first secret), else created when the first value is sealed.
    pub fn new(path: &Path) -> Result<Sealer, SealError> {
        let key = if path.exists() {
            Some(read_key(path)?)
        } else {
            None
        };
        Ok(Sealer {
            path: path.to_owned(),
            key: Mutex::new(key),
        })
    }

    /// The key file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `value` sealed for `context` (where it belongs); creates the key file if there is none.
    pub fn seal(&self, value: &str, context: &str) -> Result<String, SealError> {
        let key = self.key(true)?.expect("created when missing");
        let mut nonce = [0u8; NONCE_BYTES];
        getrandom::fill(&mut nonce).map_err(|e| self.key_error(format!("no random bytes: {e}")))?;
        let sealed = ChaCha20Poly1305::new(&Key::from(key))
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: value.as_bytes(),
                    aad: context.as_bytes(),
                },
            )
            .expect("ChaCha20-Poly1305 encrypts any message under 256 GiB");
        let mut text =
            String::with_capacity(SEALED_PREFIX.len() + 2 * (nonce.len() + sealed.len()));
        text.push_str(SEALED_PREFIX);
        push_hex(&mut text, &nonce);
        push_hex(&mut text, &sealed);
        Ok(text)
    }

    /// The secret `text` (a value [`Sealer::seal`] made for the same `context`) holds.
    pub fn open(&self, text: &str, context: &str) -> Result<String, SealError> {
        let wrong = || SealError::WrongKey {
            context: context.to_owned(),
            path: self.path.clone(),
        };
        let Some(key) = self.key(false)? else {
            return Err(self.key_error(format!(
                "missing, but the database holds secrets sealed with a key (the secret of \
                 {context}): restore the key file or send the secrets again"
            )));
        };
        let bytes = text
            .strip_prefix(SEALED_PREFIX)
            .and_then(from_hex)
            .filter(|bytes| bytes.len() >= NONCE_BYTES + 16)
            .ok_or_else(wrong)?;
        let (nonce, sealed) = bytes.split_at(NONCE_BYTES);
        let nonce: [u8; NONCE_BYTES] = nonce.try_into().expect("split at its length");
        let opened = ChaCha20Poly1305::new(&Key::from(key))
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: sealed,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| wrong())?;
        String::from_utf8(opened).map_err(|_| wrong())
    }

    /// The key; created (file and all) when missing and `create` is set.
    fn key(&self, create: bool) -> Result<Option<[u8; KEY_BYTES]>, SealError> {
        let mut key = self.key.lock().unwrap_or_else(|e| e.into_inner());
        if key.is_none() && create {
            *key = Some(create_key(&self.path)?);
        }
        Ok(*key)
    }

    fn key_error(&self, why: String) -> SealError {
        SealError::Key {
            path: self.path.clone(),
            why,
        }
    }
}

fn read_key(path: &Path) -> Result<[u8; KEY_BYTES], SealError> {
    let error = |why: String| SealError::Key {
        path: path.to_owned(),
        why,
    };
    let text = std::fs::read_to_string(path).map_err(|e| error(format!("cannot read it: {e}")))?;
    let bytes = from_hex(text.trim())
        .filter(|bytes| bytes.len() == KEY_BYTES)
        .ok_or_else(|| {
            error(format!(
                "expected {} hex digits (openssl rand -hex {KEY_BYTES})",
                2 * KEY_BYTES
            ))
        })?;
    let mut key = [0u8; KEY_BYTES];
    key.copy_from_slice(&bytes);
    Ok(key)
}

/// A new random key in a new file, readable by its owner only (its directory created 0700).
/// `create_new`: a key file another process made meanwhile is read, never overwritten.
fn create_key(path: &Path) -> Result<[u8; KEY_BYTES], SealError> {
    let error = |why: String| SealError::Key {
        path: path.to_owned(),
        why,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder
            .create(dir)
            .map_err(|e| error(format!("cannot create its directory: {e}")))?;
    }
    let mut key = [0u8; KEY_BYTES];
    getrandom::fill(&mut key).map_err(|e| error(format!("no random bytes: {e}")))?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = match options.open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return read_key(path),
        Err(e) => return Err(error(format!("cannot create it: {e}"))),
    };
    let mut text = String::with_capacity(2 * KEY_BYTES + 1);
    push_hex(&mut text, &key);
    text.push('\n');
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| error(format!("cannot write it: {e}")))?;
    tracing::info!(
        path = %path.display(),
        "created the key that seals stored secrets: back it up apart from the database"
    );
    Ok(key)
}

fn push_hex(text: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for byte in bytes {
        text.push(DIGITS[usize::from(byte >> 4)] as char);
        text.push(DIGITS[usize::from(byte & 15)] as char);
    }
}

fn from_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    text.as_bytes()
        .chunks(2)
        .map(|pair| Some((digit(pair[0])? << 4) | digit(pair[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealer() -> (Sealer, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let sealer = Sealer::new(&dir.path().join("keys/secret.key")).unwrap();
        (sealer, dir)
    }

    #[test]
    fn a_sealed_value_opens_where_it_belongs_only() {
        let (sealer, _dir) = sealer();
        let sealed = sealer
            .seal("Bearer s3cr3t", "runbook restart, header Authorization")
            .unwrap();
        assert!(is_sealed(&sealed));
        assert!(!sealed.contains("s3cr3t"));
        assert_eq!(
            sealer
                .open(&sealed, "runbook restart, header Authorization")
                .unwrap(),
            "Bearer s3cr3t"
        );
        // Another place, a changed byte, another key: none opens.
        assert!(matches!(
            sealer.open(&sealed, "runbook failover, header Authorization"),
            Err(SealError::WrongKey { .. })
        ));
        let mut changed = sealed.clone().into_bytes();
        let last = changed.len() - 1;
        changed[last] = if changed[last] == b'0' { b'1' } else { b'0' };
        let changed = String::from_utf8(changed).unwrap();
        assert!(
            sealer
                .open(&changed, "runbook restart, header Authorization")
                .is_err()
        );
        let (other, _other_dir) = self::sealer();
        other.seal("x", "y").unwrap();
        assert!(matches!(
            other.open(&sealed, "runbook restart, header Authorization"),
            Err(SealError::WrongKey { .. })
        ));
    }

    #[test]
    fn each_seal_uses_a_fresh_nonce() {
        let (sealer, _dir) = sealer();
        let a = sealer.seal("token", "here").unwrap();
        let b = sealer.seal("token", "here").unwrap();
        assert_ne!(a, b);
        assert_eq!(sealer.open(&b, "here").unwrap(), "token");
    }

    #[test]
    fn the_key_file_is_created_on_first_use_owner_only_and_read_again() {
        let (sealer, dir) = sealer();
        let path = dir.path().join("keys/secret.key");
        assert!(!path.exists(), "no key before a secret is sealed");
        let sealed = sealer.seal("token", "here").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&path), 0o600);
            assert_eq!(mode(path.parent().unwrap()), 0o700);
        }
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.trim().len(), 64);
        // A restart reads the same key.
        let again = Sealer::new(&path).unwrap();
        assert_eq!(again.open(&sealed, "here").unwrap(), "token");
    }

    #[test]
    fn a_missing_or_malformed_key_is_named() {
        let (sealer, dir) = sealer();
        let error = sealer
            .open("sealed:v1:00", "runbook r, header X")
            .unwrap_err();
        assert!(error.to_string().contains("missing"), "{error}");
        let bad = dir.path().join("bad.key");
        std::fs::write(&bad, "not hex").unwrap();
        let error = Sealer::new(&bad).unwrap_err();
        assert!(error.to_string().contains("64 hex digits"), "{error}");
    }
}
