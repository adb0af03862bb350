//! SHA-256 digests, as lowercase hex: how lem pins plugins, models and data.

use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::Path;

/// The SHA-256 of `bytes`, lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The SHA-256 of a file's contents, lowercase hex, read in chunks.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok(hex::encode(hasher.finalize()));
        }
        hasher.update(&buf[..n]);
    }
}

/// The SHA-256 of a sequence of byte strings, each framed by its length
/// (8 bytes, little-endian) so that no two sequences hash alike. Hashed in
/// place: a large value is never serialized into a copy first.
pub fn sha256_parts<'a>(parts: impl IntoIterator<Item = &'a [u8]>) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part);
    }
    hex::encode(hasher.finalize())
}

/// Whether `text` looks like a SHA-256 hex digest.
pub fn is_sha256_hex(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digest() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(is_sha256_hex(&sha256_hex(b"")));
        assert!(!is_sha256_hex("abc"));
        // Framing: moving a byte between parts changes the digest.
        assert_ne!(
            sha256_parts([&b"ab"[..], b"c"]),
            sha256_parts([&b"a"[..], b"bc"])
        );
        assert_eq!(sha256_parts([&b"ab"[..]]), sha256_parts([&b"ab"[..]]));
    }
}
