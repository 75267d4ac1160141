//! The JOSE `alg` values ringgate verifies, and the one static table that maps each to
//! ring.
//!
//! Modelled on rustls-ring's `verify.rs`: every supported algorithm is one row naming its
//! wire name, the key it needs and the ring primitive that checks it. Nothing else in the
//! module picks a ring algorithm, so adding or removing an `alg` is a one-row change.
//! `none` has no variant and no row (RFC 8725 §3.1); ES512 and Ed448 have no row because
//! ring cannot verify them, so they are refused as unsupported before any key is touched.

use ring::hmac;
use ring::signature::{self, EcdsaVerificationAlgorithm, RsaParameters};

/// A JWS signature algorithm ringgate can verify (RFC 7518 §3.1, RFC 8037 §3.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Alg {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    RS384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    RS512,
    /// RSASSA-PSS with SHA-256 and MGF1-SHA-256.
    PS256,
    /// RSASSA-PSS with SHA-384 and MGF1-SHA-384.
    PS384,
    /// RSASSA-PSS with SHA-512 and MGF1-SHA-512.
    PS512,
    /// ECDSA on P-256 with SHA-256, signature as fixed-width `r || s`.
    ES256,
    /// ECDSA on P-384 with SHA-384, signature as fixed-width `r || s`.
    ES384,
    /// EdDSA; only the Ed25519 curve (RFC 8037).
    EdDSA,
    /// HMAC with SHA-256 (only with `enable_hs_signatures` and a secret).
    HS256,
    /// HMAC with SHA-384 (only with `enable_hs_signatures` and a secret).
    HS384,
    /// HMAC with SHA-512 (only with `enable_hs_signatures` and a secret).
    HS512,
}

/// Why an `alg` string is not an [`Alg`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlgParseError {
    /// `none` in any letter case: unsecured JWS is never accepted (RFC 8725 §3.1).
    None,
    /// A name that is not registered, or one ring cannot verify (ES512, ES256K, HS1, …).
    /// Ed448 shares the name `EdDSA` and is refused by its key's curve instead.
    Unsupported,
}

/// The key an algorithm needs; RFC 8725 §3.1 — a key is only ever used with algorithms of
/// its own type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KeyKind {
    Rsa,
    EcP256,
    EcP384,
    Ed25519,
    Hmac,
}

/// How a signature is checked.
pub(crate) enum Scheme {
    Rsa(&'static RsaParameters),
    Ecdsa(&'static EcdsaVerificationAlgorithm),
    Ed25519,
    Hmac(&'static hmac::Algorithm),
}

/// One row of the table.
pub(crate) struct Row {
    pub(crate) alg: Alg,
    pub(crate) name: &'static str,
    pub(crate) key: KeyKind,
    pub(crate) scheme: Scheme,
}

/// The table, indexed by `Alg as usize` (a test checks the order). RSA rows use ring's
/// `2048_8192` variants, so a short modulus fails at verification time too, not only when
/// the JWKS is read.
static TABLE: [Row; 12] = [
    row(Alg::RS256, "RS256", KeyKind::Rsa, Scheme::Rsa(&signature::RSA_PKCS1_2048_8192_SHA256)),
    row(Alg::RS384, "RS384", KeyKind::Rsa, Scheme::Rsa(&signature::RSA_PKCS1_2048_8192_SHA384)),
    row(Alg::RS512, "RS512", KeyKind::Rsa, Scheme::Rsa(&signature::RSA_PKCS1_2048_8192_SHA512)),
    row(Alg::PS256, "PS256", KeyKind::Rsa, Scheme::Rsa(&signature::RSA_PSS_2048_8192_SHA256)),
    row(Alg::PS384, "PS384", KeyKind::Rsa, Scheme::Rsa(&signature::RSA_PSS_2048_8192_SHA384)),
    row(Alg::PS512, "PS512", KeyKind::Rsa, Scheme::Rsa(&signature::RSA_PSS_2048_8192_SHA512)),
    row(Alg::ES256, "ES256", KeyKind::EcP256, Scheme::Ecdsa(&signature::ECDSA_P256_SHA256_FIXED)),
    row(Alg::ES384, "ES384", KeyKind::EcP384, Scheme::Ecdsa(&signature::ECDSA_P384_SHA384_FIXED)),
    row(Alg::EdDSA, "EdDSA", KeyKind::Ed25519, Scheme::Ed25519),
    row(Alg::HS256, "HS256", KeyKind::Hmac, Scheme::Hmac(&hmac::HMAC_SHA256)),
    row(Alg::HS384, "HS384", KeyKind::Hmac, Scheme::Hmac(&hmac::HMAC_SHA384)),
    row(Alg::HS512, "HS512", KeyKind::Hmac, Scheme::Hmac(&hmac::HMAC_SHA512)),
];

const fn row(alg: Alg, name: &'static str, key: KeyKind, scheme: Scheme) -> Row {
    Row { alg, name, key, scheme }
}

impl Alg {
    /// Every supported algorithm, in table order.
    pub const ALL: [Alg; 12] = [
        Alg::RS256,
        Alg::RS384,
        Alg::RS512,
        Alg::PS256,
        Alg::PS384,
        Alg::PS512,
        Alg::ES256,
        Alg::ES384,
        Alg::EdDSA,
        Alg::HS256,
        Alg::HS384,
        Alg::HS512,
    ];

    /// Parses a JOSE `alg` value. Names are case-sensitive (RFC 7515 §4.1.1), except that
    /// `none` is recognised in any case so that it is reported as what it is.
    pub fn from_name(name: &str) -> Result<Alg, AlgParseError> {
        if name.eq_ignore_ascii_case("none") {
            return Err(AlgParseError::None);
        }
        TABLE.iter().find(|row| row.name == name).map(|row| row.alg).ok_or(AlgParseError::Unsupported)
    }

    /// The registered name (`"RS256"`, …).
    pub fn name(self) -> &'static str {
        self.row().name
    }

    /// Whether this is one of the HMAC algorithms, which need `enable_hs_signatures`.
    pub fn is_hmac(self) -> bool {
        matches!(self.row().key, KeyKind::Hmac)
    }

    pub(crate) fn row(self) -> &'static Row {
        &TABLE[self as usize]
    }

    pub(crate) fn key_kind(self) -> KeyKind {
        self.row().key
    }

    /// A bit for [`AlgSet`].
    const fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

impl std::fmt::Display for Alg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A set of algorithms: the configured allow-list (RFC 8725 §3.1: the algorithm comes from
/// configuration, the token only picks among these).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct AlgSet(u16);

impl AlgSet {
    /// No algorithm.
    pub const EMPTY: AlgSet = AlgSet(0);

    /// Every supported algorithm. HMAC rows are still subject to the HS switch of the
    /// policy.
    pub const ALL: AlgSet = AlgSet((1 << 12) - 1);

    /// The set holding exactly these algorithms.
    pub fn of(algs: &[Alg]) -> AlgSet {
        AlgSet(algs.iter().fold(0, |acc, a| acc | a.bit()))
    }

    /// Whether `alg` is in the set.
    pub fn contains(self, alg: Alg) -> bool {
        self.0 & alg.bit() != 0
    }

    /// The set with `alg` added.
    pub fn with(self, alg: Alg) -> AlgSet {
        AlgSet(self.0 | alg.bit())
    }
}

impl std::fmt::Debug for AlgSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(Alg::ALL.iter().filter(|a| self.contains(**a)).map(|a| a.name())).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_rows_are_in_enum_order() {
        for (i, alg) in Alg::ALL.iter().enumerate() {
            assert_eq!(TABLE[i].alg, *alg);
            assert_eq!(*alg as usize, i);
            assert_eq!(Alg::from_name(alg.name()), Ok(*alg));
        }
    }

    #[test]
    fn none_in_any_case_is_refused_as_none() {
        for name in ["none", "None", "NONE", "nOnE"] {
            assert_eq!(Alg::from_name(name), Err(AlgParseError::None));
        }
    }

    #[test]
    fn unsupported_and_wrong_case_names_are_refused() {
        for name in ["ES512", "ES256K", "Ed25519", "Ed448", "rs256", "HS1", "", "RS256 "] {
            assert_eq!(Alg::from_name(name), Err(AlgParseError::Unsupported), "{name:?}");
        }
    }

    #[test]
    fn alg_set_holds_what_was_put_in() {
        let set = AlgSet::of(&[Alg::RS256, Alg::ES384]);
        assert!(set.contains(Alg::RS256) && set.contains(Alg::ES384));
        assert!(!set.contains(Alg::PS256) && !set.contains(Alg::HS256));
        assert!(AlgSet::ALL.contains(Alg::HS512));
        assert!(!AlgSet::EMPTY.contains(Alg::RS256));
        assert!(AlgSet::EMPTY.with(Alg::EdDSA).contains(Alg::EdDSA));
    }
}
