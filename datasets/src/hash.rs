//! One stable hash for ids, duplicate detection and derived seeds. Stable across runs, builds and
//! Rust releases, unlike the standard library's hasher, so outputs stay byte-identical by seed.

/// 64-bit FNV-1a over byte strings, each followed by a `0xff` separator so that ("ab", "c") and
/// ("a", "bc") differ (the scheme Alertmanager uses for label-set fingerprints).
pub(crate) fn stable_hash(parts: &[&[u8]]) -> u64 {
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for &byte in *part {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(PRIME);
        }
        hash ^= 0xff;
        hash = hash.wrapping_mul(PRIME);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_separated_and_the_hash_is_fnv1a() {
        assert_ne!(stable_hash(&[b"ab", b"c"]), stable_hash(&[b"a", b"bc"]));
        assert_eq!(stable_hash(&[b"x"]), stable_hash(&[b"x"]));
        // FNV-1a of the empty string, then the separator byte.
        let expected = (0xcbf2_9ce4_8422_2325_u64 ^ 0xff).wrapping_mul(0x0000_0100_0000_01b3);
        assert_eq!(stable_hash(&[b""]), expected);
    }
}
