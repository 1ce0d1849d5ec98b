//! Sealing secrets at rest with AES-256-GCM.
//!
//! Every seal uses a fresh random 96-bit nonce, and the associated data binds the ciphertext to
//! its table, row, column and key label: a ciphertext copied to another row, column or label
//! fails to open. Stored bytes are `version (1) || nonce (12) || ciphertext || tag (16)`.

use std::collections::BTreeMap;
use std::fmt;

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, Key, KeyInit, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use secrecy::{ExposeSecret, SecretString};

const FORMAT_VERSION: u8 = 1;
const NONCE_LEN: usize = 12;
const KEY_LEN: usize = 32;
const MAX_LABEL_LEN: usize = 64;

/// Why a key ring could not be built. Messages name settings, never key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyRingError {
    #[error(
        "the key ring is empty: set encryption.keys (BERTH_ENCRYPTION__KEYS) to label:base64key,..."
    )]
    Empty,
    #[error("key entry {0} is not label:base64key")]
    EntryShape(usize),
    #[error("key label {0:?} must be 1 to 64 characters of letters, digits, '.', '_' or '-'")]
    Label(String),
    #[error("key {0:?} is not base64 of exactly 32 bytes")]
    KeyMaterial(String),
    #[error("key label {0:?} appears twice")]
    DuplicateLabel(String),
    #[error(
        "the current key label {0:?} is not in the key ring (encryption.current_label, BERTH_ENCRYPTION__CURRENT_LABEL)"
    )]
    UnknownCurrent(String),
    #[error("the system random number generator failed")]
    Random,
}

/// Why a seal could not be made or opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("no key labelled {0:?} is in the key ring")]
    UnknownLabel(String),
    #[error("the sealed value is malformed")]
    Malformed,
    #[error("the sealed value does not open: wrong key, tampered, or moved from another row")]
    DoesNotOpen,
    #[error("the system random number generator failed")]
    Random,
}

/// Where a sealed value lives; part of the associated data.
#[derive(Debug, Clone, Copy)]
pub struct SealBinding<'a> {
    pub table: &'a str,
    pub row: &'a str,
    pub column: &'a str,
}

/// A sealed value and the label of the key that sealed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    pub label: String,
    pub bytes: Vec<u8>,
}

/// Labelled AES-256 keys and the label new seals use.
#[derive(Clone)]
pub struct KeyRing {
    ciphers: BTreeMap<String, Aes256Gcm>,
    current: String,
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing")
            .field("labels", &self.ciphers.keys().collect::<Vec<_>>())
            .field("current", &self.current)
            .finish()
    }
}

fn valid_label(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= MAX_LABEL_LEN
        && label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

impl KeyRing {
    /// Parses `label:base64key,label:base64key` (each key 32 bytes, standard base64).
    ///
    /// # Errors
    /// A [`KeyRingError`] naming the broken entry; key material never appears in it.
    pub fn from_spec(spec: &SecretString, current: &str) -> Result<Self, KeyRingError> {
        let mut ciphers = BTreeMap::new();
        let entries = spec
            .expose_secret()
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty());
        for (index, entry) in entries.enumerate() {
            let (label, material) = entry
                .split_once(':')
                .ok_or(KeyRingError::EntryShape(index + 1))?;
            let label = label.trim();
            if !valid_label(label) {
                return Err(KeyRingError::Label(label.to_owned()));
            }
            let bytes = BASE64
                .decode(material.trim())
                .ok()
                .filter(|bytes| bytes.len() == KEY_LEN)
                .ok_or_else(|| KeyRingError::KeyMaterial(label.to_owned()))?;
            let key = Key::<Aes256Gcm>::try_from(bytes.as_slice())
                .map_err(|_| KeyRingError::KeyMaterial(label.to_owned()))?;
            if ciphers
                .insert(label.to_owned(), Aes256Gcm::new(&key))
                .is_some()
            {
                return Err(KeyRingError::DuplicateLabel(label.to_owned()));
            }
        }
        if ciphers.is_empty() {
            return Err(KeyRingError::Empty);
        }
        if !ciphers.contains_key(current) {
            return Err(KeyRingError::UnknownCurrent(current.to_owned()));
        }
        Ok(Self {
            ciphers,
            current: current.to_owned(),
        })
    }

    /// A new random key in the `label:base64key` form [`KeyRing::from_spec`] reads.
    ///
    /// # Errors
    /// [`KeyRingError::Label`] or [`KeyRingError::Random`].
    pub fn generate_spec_entry(label: &str) -> Result<SecretString, KeyRingError> {
        if !valid_label(label) {
            return Err(KeyRingError::Label(label.to_owned()));
        }
        let mut key = [0u8; KEY_LEN];
        getrandom::fill(&mut key).map_err(|_| KeyRingError::Random)?;
        Ok(SecretString::from(format!(
            "{label}:{}",
            BASE64.encode(key)
        )))
    }

    pub fn current_label(&self) -> &str {
        &self.current
    }

    pub fn contains(&self, label: &str) -> bool {
        self.ciphers.contains_key(label)
    }

    pub fn labels(&self) -> impl Iterator<Item = &str> {
        self.ciphers.keys().map(String::as_str)
    }

    /// Seals `plaintext` under the current key.
    ///
    /// # Errors
    /// [`SealError::Random`] if no nonce could be drawn.
    pub fn seal(&self, binding: SealBinding<'_>, plaintext: &[u8]) -> Result<Sealed, SealError> {
        let cipher = self
            .ciphers
            .get(&self.current)
            .ok_or_else(|| SealError::UnknownLabel(self.current.clone()))?;
        let mut nonce_bytes = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce_bytes).map_err(|_| SealError::Random)?;
        let nonce = Nonce::from(nonce_bytes);
        let aad = associated_data(binding, &self.current);
        let ciphertext = cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .map_err(|_| SealError::Malformed)?;
        let mut bytes = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
        bytes.push(FORMAT_VERSION);
        bytes.extend_from_slice(&nonce_bytes);
        bytes.extend_from_slice(&ciphertext);
        Ok(Sealed {
            label: self.current.clone(),
            bytes,
        })
    }

    /// Opens a sealed value with the key named by `label`.
    ///
    /// # Errors
    /// [`SealError::UnknownLabel`], [`SealError::Malformed`] or [`SealError::DoesNotOpen`].
    pub fn open(
        &self,
        binding: SealBinding<'_>,
        label: &str,
        bytes: &[u8],
    ) -> Result<Vec<u8>, SealError> {
        let cipher = self
            .ciphers
            .get(label)
            .ok_or_else(|| SealError::UnknownLabel(label.to_owned()))?;
        let (&version, rest) = bytes.split_first().ok_or(SealError::Malformed)?;
        if version != FORMAT_VERSION || rest.len() < NONCE_LEN + 16 {
            return Err(SealError::Malformed);
        }
        let (nonce_bytes, ciphertext) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_from(nonce_bytes).map_err(|_| SealError::Malformed)?;
        let aad = associated_data(binding, label);
        cipher
            .decrypt(
                &nonce,
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .map_err(|_| SealError::DoesNotOpen)
    }
}

fn associated_data(binding: SealBinding<'_>, label: &str) -> Vec<u8> {
    // Length-prefixed parts, so no choice of names can make two bindings read the same.
    let mut aad = Vec::from(&b"berth-seal-v1"[..]);
    for part in [binding.table, binding.row, binding.column, label] {
        aad.extend_from_slice(&(part.len() as u32).to_be_bytes());
        aad.extend_from_slice(part.as_bytes());
    }
    aad
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(entries: &[&str], current: &str) -> KeyRing {
        let spec: Vec<String> = entries
            .iter()
            .map(|label| {
                KeyRing::generate_spec_entry(label)
                    .unwrap()
                    .expose_secret()
                    .to_owned()
            })
            .collect();
        KeyRing::from_spec(&SecretString::from(spec.join(",")), current).unwrap()
    }

    const ROW: SealBinding<'static> = SealBinding {
        table: "t",
        row: "r1",
        column: "c",
    };

    #[test]
    fn round_trip_and_fresh_nonce() {
        let ring = ring(&["k1"], "k1");
        let first = ring.seal(ROW, b"hunter2").unwrap();
        let second = ring.seal(ROW, b"hunter2").unwrap();
        assert_ne!(
            first.bytes, second.bytes,
            "the same secret sealed twice must differ"
        );
        assert_eq!(ring.open(ROW, "k1", &first.bytes).unwrap(), b"hunter2");
        assert!(!first.bytes.windows(7).any(|w| w == b"hunter2"));
    }

    #[test]
    fn tampering_and_moving_fail() {
        let ring = ring(&["k1", "k2"], "k1");
        let sealed = ring.seal(ROW, b"hunter2").unwrap();
        for index in 1..sealed.bytes.len() {
            let mut flipped = sealed.bytes.clone();
            flipped[index] ^= 0x01;
            assert!(ring.open(ROW, "k1", &flipped).is_err(), "flip at {index}");
        }
        let other_row = SealBinding { row: "r2", ..ROW };
        assert_eq!(
            ring.open(other_row, "k1", &sealed.bytes),
            Err(SealError::DoesNotOpen)
        );
        let other_column = SealBinding { column: "d", ..ROW };
        assert_eq!(
            ring.open(other_column, "k1", &sealed.bytes),
            Err(SealError::DoesNotOpen)
        );
        assert_eq!(
            ring.open(ROW, "k2", &sealed.bytes),
            Err(SealError::DoesNotOpen)
        );
        assert_eq!(
            ring.open(ROW, "k9", &sealed.bytes),
            Err(SealError::UnknownLabel("k9".into()))
        );
        assert_eq!(ring.open(ROW, "k1", &[]), Err(SealError::Malformed));
    }

    #[test]
    fn spec_errors_never_show_key_material() {
        let bad = SecretString::from("k1:bm90LWEta2V5");
        let error = KeyRing::from_spec(&bad, "k1").unwrap_err();
        assert_eq!(error, KeyRingError::KeyMaterial("k1".into()));
        assert!(!error.to_string().contains("bm90"));
        assert_eq!(
            KeyRing::from_spec(&SecretString::from(""), "k1").unwrap_err(),
            KeyRingError::Empty
        );
        assert_eq!(
            KeyRing::from_spec(&SecretString::from("nocolon"), "k1").unwrap_err(),
            KeyRingError::EntryShape(1)
        );
        let entry = KeyRing::generate_spec_entry("k1").unwrap();
        assert_eq!(
            KeyRing::from_spec(&entry, "k2").unwrap_err(),
            KeyRingError::UnknownCurrent("k2".into())
        );
        let twice = SecretString::from(format!(
            "{},{}",
            entry.expose_secret(),
            entry.expose_secret()
        ));
        assert_eq!(
            KeyRing::from_spec(&twice, "k1").unwrap_err(),
            KeyRingError::DuplicateLabel("k1".into())
        );
        let debug = format!("{:?}", ring(&["k1"], "k1"));
        assert_eq!(debug, r#"KeyRing { labels: ["k1"], current: "k1" }"#);
    }
}
