//! Each instance's proxy token: 32 random hex characters it presents to the mesh in its
//! proxy URL, registered only as a SHA-256 digest, so that the registry never holds
//! what would let another process pass for the instance.

use sha2::{Digest, Sha256};

/// The instance metadata key holding the SHA-256 (lower-case hex) of its proxy token.
pub const TOKEN_DIGEST: &str = "conway.token_sha256";

/// A fresh token from the operating system's random source.
pub fn generate() -> std::io::Result<String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(hex(&bytes))
}

/// The digest registered for `token`.
pub fn digest(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_32_hex_characters_and_differ() {
        let a = generate().unwrap();
        let b = generate().unwrap();
        assert_eq!(a.len(), 32);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert_ne!(a, b);
    }

    #[test]
    fn digest_is_sha256_hex() {
        // printf abc | sha256sum
        assert_eq!(
            digest("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
