//! Request signatures, as pure functions of the secret and the exact body
//! bytes sent.
//!
//! Two schemes are sent side by side when a hook has a `secret`:
//! - Kong's `X-Kong-Signature: sha1=<hex HMAC-SHA1(secret, body)>` (Kong up
//!   to 3.13), or `sha256=<hex HMAC-SHA256(secret, body)>` (Kong 3.14), as
//!   the server's [`KongSignature`] setting says;
//! - Standard Webhooks' `webhook-signature: v1,<base64 HMAC-SHA256(key,
//!   "<webhook-id>.<webhook-timestamp>.<body>")>`, which binds the id and the
//!   time so a captured request cannot be replayed later.
//!
//! While a hook's previous secret is live (see
//! [`hookd_model::hook::Secrets`]), `webhook-signature` carries one
//! signature per secret, the current one first, space-separated as
//! Standard Webhooks allows: a receiver holding either secret verifies the
//! request. `X-Kong-Signature` has room for one and stays on the current
//! secret; a hook whose secret was removed while the previous one is live
//! sends only the Standard Webhooks signature, made with the previous one.
//!
//! The Standard Webhooks key is the secret's bytes, except that a secret
//! written the Standard Webhooks way, `whsec_<base64>`, is keyed by the
//! decoded bytes after the prefix, so receivers using a Standard Webhooks
//! library verify it with the same string. A `whsec_` secret whose remainder
//! is not base64 is used as plain bytes, prefix included. Kong's header is
//! always keyed by the secret's plain bytes, as Kong does.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha1::Sha1;
use sha2::Sha256;
use std::borrow::Cow;

/// Kong's signature header name.
pub const KONG_SIGNATURE_HEADER: &str = "x-kong-signature";
/// Standard Webhooks: the message id.
pub const WEBHOOK_ID_HEADER: &str = "webhook-id";
/// Standard Webhooks: when the attempt was sent, unix seconds.
pub const WEBHOOK_TIMESTAMP_HEADER: &str = "webhook-timestamp";
/// Standard Webhooks: the signature.
pub const WEBHOOK_SIGNATURE_HEADER: &str = "webhook-signature";

/// The prefix of secrets written the Standard Webhooks way.
const WHSEC_PREFIX: &str = "whsec_";

/// The HMAC of Kong's `X-Kong-Signature` header.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KongSignature {
    /// `sha1=<hex>`, what Kong up to 3.13 sends; the default.
    #[default]
    Sha1,
    /// `sha256=<hex>`, what Kong 3.14 sends.
    Sha256,
}

/// The value of `X-Kong-Signature` for `body`: `sha1=<hex>` or `sha256=<hex>`.
pub fn kong_signature(alg: KongSignature, secret: &str, body: &[u8]) -> String {
    match alg {
        KongSignature::Sha1 => format!(
            "sha1={}",
            hex::encode(hmac::<Hmac<Sha1>>(secret.as_bytes(), &[body]))
        ),
        KongSignature::Sha256 => format!(
            "sha256={}",
            hex::encode(hmac::<Hmac<Sha256>>(secret.as_bytes(), &[body]))
        ),
    }
}

/// The value of `webhook-signature`: `v1,<base64 HMAC-SHA256>` of
/// `"<id>.<timestamp_s>.<body>"`.
pub fn standard_signature(secret: &str, id: &str, timestamp_s: i64, body: &[u8]) -> String {
    let prefix = format!("{id}.{timestamp_s}.");
    let mac = hmac::<Hmac<Sha256>>(&standard_key(secret), &[prefix.as_bytes(), body]);
    format!("v1,{}", STANDARD.encode(mac))
}

/// The value of `webhook-signature` with one signature per secret, in
/// their order, separated by spaces; `None` without any secret.
pub fn standard_signatures<'s>(
    secrets: impl IntoIterator<Item = &'s str>,
    id: &str,
    timestamp_s: i64,
    body: &[u8],
) -> Option<String> {
    let signatures: Vec<String> = secrets
        .into_iter()
        .map(|secret| standard_signature(secret, id, timestamp_s, body))
        .collect();
    (!signatures.is_empty()).then(|| signatures.join(" "))
}

/// The Standard Webhooks key of a secret (see the module documentation).
fn standard_key(secret: &str) -> Cow<'_, [u8]> {
    match secret
        .strip_prefix(WHSEC_PREFIX)
        .and_then(|encoded| STANDARD.decode(encoded).ok())
    {
        Some(key) => Cow::Owned(key),
        None => Cow::Borrowed(secret.as_bytes()),
    }
}

fn hmac<M: Mac + hmac::digest::KeyInit>(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut mac =
        <M as hmac::digest::KeyInit>::new_from_slice(key).expect("HMAC accepts keys of any length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kongs_test_vector() {
        assert_eq!(
            kong_signature(KongSignature::Sha1, "hunter2", b"foobar"),
            "sha1=47632029fcc7936dc59ff90b5bb736a44c74ab62"
        );
    }

    #[test]
    fn sha256_matches_a_published_vector() {
        // RFC 4231, test case 2.
        assert_eq!(
            kong_signature(
                KongSignature::Sha256,
                "Jefe",
                b"what do ya want for nothing?"
            ),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn standard_signature_matches_the_standard_webhooks_example() {
        // The example of the Standard Webhooks specification and its libraries.
        assert_eq!(
            standard_signature(
                "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1614265330,
                br#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn standard_signature_signs_id_timestamp_and_body() {
        let id = "6f1c2b9e-5d3a-4c1e-9b7f-2a8d4e6c0b13";
        let got = standard_signature("s3cret", id, 1_700_000_000, b"{}");
        // Independent recomputation, straight from the hmac crate.
        let mut mac = Hmac::<Sha256>::new_from_slice(b"s3cret").unwrap();
        mac.update(format!("{id}.1700000000.{{}}").as_bytes());
        let want = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
        assert_eq!(got, want);
        assert_ne!(got, standard_signature("s3cret", id, 1_700_000_001, b"{}"));
    }

    #[test]
    fn each_secret_signs_in_turn_separated_by_spaces() {
        let (id, at, body) = ("msg_1", 1_700_000_000, b"{}".as_slice());
        let new = standard_signature("whsec_bmV3", id, at, body);
        let old = standard_signature("whsec_b2xk", id, at, body);
        assert_ne!(new, old);
        assert_eq!(
            standard_signatures(["whsec_bmV3", "whsec_b2xk"], id, at, body),
            Some(format!("{new} {old}"))
        );
        assert_eq!(standard_signatures(["whsec_bmV3"], id, at, body), Some(new));
        assert_eq!(standard_signatures([], id, at, body), None);
    }

    #[test]
    fn whsec_secrets_are_keyed_by_their_decoded_bytes() {
        assert_eq!(standard_key("whsec_aGVsbG8="), b"hello".as_slice());
        assert_eq!(standard_key("plain"), b"plain".as_slice());
        // Not base64 after the prefix: the whole string is the key.
        assert_eq!(
            standard_key("whsec_not base64!"),
            b"whsec_not base64!".as_slice()
        );
    }
}
