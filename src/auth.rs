//! Bearer tokens: verification (jsonwebtoken, algorithm fixed by
//! configuration) and development minting.
//!
//! RS256/ES256 keys come from a PEM file, a JWKS file or a JWKS URL. A JWKS
//! URL is fetched at start ([`Verifier::start`] fails when that fetch fails
//! or yields no usable key) and again, never more than once per
//! `JWT_JWKS_MIN_REFRESH_SECONDS` and one fetch at a time:
//! - when a token names a `kid` the keys lack (rotation at the identity
//!   provider); concurrent tokens wait for the fetch in flight and use its
//!   result, and within the window they are refused at once;
//! - on the first verification after the keys are `JWT_JWKS_REFRESH_SECONDS`
//!   old (no background task: an idle server fetches nothing), so a key the
//!   provider withdrew stops being accepted.
//!
//! A failed refresh keeps the previous keys and logs a warning (the URL and
//! the reason, never a token).
//!
//! The token contract: `sub`, `iss`, `aud`, `exp`, `nbf` are required; `iat`
//! and `name` optional. Before anything else a token longer than
//! [`MAX_TOKEN_BYTES`] is refused, unread. A verified token is still refused
//! when its header lists `crit` extensions (RFC 7515 §4.1.11: this server
//! understands none), when `iat` lies in the future beyond the leeway, when
//! its lifetime (`exp` − `iat`, or `exp` − `nbf` without `iat`) exceeds
//! `JWT_MAX_LIFETIME` (a token with a role) or `JWT_MAX_CLIENT_LIFETIME`
//! (a machine client), and when a claim the server stores or looks up
//! (`sub`, `partnership`, `agency`) holds a NUL character or, for `sub`, is
//! longer than its column ([`MAX_SUB_CHARS`]).
//!
//! A person carries `role` (one of the five roles) and `agency` (agency code;
//! optional for a board chair); a machine client carries `scope`
//! (`cases:read`, `statistics:read`, space-separated) instead of or beside
//! `role`. `partnership` (partnership code) is always required.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{
    AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, KeyOperations, PublicKeyUse,
};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind};
use serde::{Deserialize, Serialize};

use crate::config::{AnonymousAccess, AuthArgs, JwtAlgorithm};
use crate::domain::role::{Role, Scope};

/// The development secret `--demo` uses when `JWT_SECRET` is unset. Public by
/// design: demo tokens are worthless anywhere else.
pub const DEMO_SECRET: &str = "escalations-demo-secret-do-not-use-in-production";
/// Issuer used in demo mode when `JWT_ISSUER` is unset.
pub const DEMO_ISSUER: &str = "escalations-demo";
/// Audience used in demo mode when `JWT_AUDIENCE` is unset.
pub const DEMO_AUDIENCE: &str = "escalations";
/// The largest leeway accepted.
pub const MAX_LEEWAY_SECONDS: u64 = 300;
/// `JWT_JWKS_MIN_REFRESH_SECONDS` when unset.
pub const DEFAULT_JWKS_MIN_REFRESH_SECONDS: u64 = 60;
/// `JWT_JWKS_REFRESH_SECONDS` when unset.
pub const DEFAULT_JWKS_REFRESH_SECONDS: u64 = 3600;
/// `JWT_MAX_LIFETIME` and `JWT_MAX_CLIENT_LIFETIME` when unset: one day.
pub const DEFAULT_MAX_LIFETIME: Duration = Duration::from_secs(24 * 3600);
/// The longest token read, in bytes; a longer one is refused before it is
/// decoded. 8 KiB is what common reverse proxies allow for a header line
/// and far more than a token of this contract needs.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;
/// The longest `sub` accepted, in characters: the length of the columns that
/// store it (`author_sub`, `actor_sub`).
pub const MAX_SUB_CHARS: usize = 256;
/// How long one JWKS fetch may take, connection to last byte.
const JWKS_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest JWKS document read (providers publish a few kilobytes).
const MAX_JWKS_BYTES: usize = 256 * 1024;

/// A setting that makes verification impossible; the server refuses to start.
#[derive(Debug, thiserror::Error)]
pub enum AuthConfigError {
    /// A required setting is missing.
    #[error("{0} is required (README: Production)")]
    Missing(&'static str),
    /// Outside demo mode, nothing says how tokens are verified.
    #[error(
        "no token key is set: outside --demo, set JWT_SECRET (HS256, at least 32 random bytes) \
         or JWT_ALGORITHM=RS256 or ES256 with one of JWT_PUBLIC_KEY_FILE, JWT_JWKS_FILE and \
         JWT_JWKS_URL, and JWT_ISSUER and JWT_AUDIENCE (README: Production)"
    )]
    NoKey,
    /// Outside demo mode, `JWT_SECRET` is the development secret, which is
    /// published with the source.
    #[error(
        "JWT_SECRET is the development secret of --demo, published with the source: outside \
         --demo set a secret of your own (at least 32 random bytes, e.g. the output of \
         `openssl rand -base64 48`) or verify with a public key (JWT_ALGORITHM=RS256 or ES256)"
    )]
    DevelopmentSecret,
    /// A setting is present but unusable.
    #[error("{setting}: {reason}")]
    Invalid {
        /// The setting.
        setting: &'static str,
        /// Why.
        reason: String,
    },
}

/// Why a token was refused. Every variant becomes HTTP 401 with
/// `WWW-Authenticate: Bearer error="invalid_token"` and `UNAUTHENTICATED`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization: Bearer` header, and the operation needs one.
    #[error("a bearer token is required")]
    Missing,
    /// Not a JWT, or a claim of the wrong type.
    #[error("the token is malformed")]
    Malformed,
    /// Past `exp`.
    #[error("the token has expired")]
    Expired,
    /// Before `nbf`.
    #[error("the token is not valid yet")]
    NotYetValid,
    /// The signature does not verify.
    #[error("the token's signature is invalid")]
    BadSignature,
    /// Signed with another algorithm than the configured one. (An unsigned
    /// `alg: none` token does not even parse: it is `Malformed`.)
    #[error("the token's algorithm is not accepted")]
    WrongAlgorithm,
    /// `iss` is not the configured issuer.
    #[error("the token's issuer is not accepted")]
    WrongIssuer,
    /// `aud` does not include the configured audience.
    #[error("the token's audience is not accepted")]
    WrongAudience,
    /// A required claim is absent.
    #[error("the token lacks the {0} claim")]
    MissingClaim(String),
    /// `role` is not one of the five roles.
    #[error("the token's role is unknown")]
    UnknownRole,
    /// Neither a role nor a known scope.
    #[error("the token carries neither a role nor a known scope")]
    NoRoleOrScope,
    /// No JWKS key has the token's `kid`.
    #[error("no key matches the token's kid")]
    UnknownKey,
    /// `partnership` names no partnership here.
    #[error("the token's partnership is unknown")]
    UnknownPartnership,
    /// `agency` names no agency of that partnership.
    #[error("the token's agency is unknown in its partnership")]
    UnknownAgency,
    /// `agency` names an agency that was deactivated.
    #[error(
        "the token's agency has been deactivated in its partnership: its cases and history are \
         kept, but its tokens are no longer accepted"
    )]
    DeactivatedAgency,
    /// Longer than [`MAX_TOKEN_BYTES`].
    #[error("the token is longer than {MAX_TOKEN_BYTES} bytes")]
    TooLarge,
    /// The header lists critical extensions (`crit`), none of which this
    /// server understands.
    #[error("the token's header names critical extensions (crit) this server does not understand")]
    CriticalExtension,
    /// `iat` is in the future beyond the leeway.
    #[error("the token's issue time (iat) is in the future")]
    IssuedInFuture,
    /// `exp` − `iat` (or `exp` − `nbf`) exceeds the configured maximum.
    #[error("the token's lifetime exceeds {max_seconds} s")]
    TooLongLived {
        /// The maximum, in seconds.
        max_seconds: u64,
    },
    /// `sub` is longer than [`MAX_SUB_CHARS`] characters.
    #[error("the token's sub claim is longer than {MAX_SUB_CHARS} characters")]
    SubTooLong,
    /// A text claim holds U+0000, which no database column stores.
    #[error("the token's {0} claim holds a NUL character")]
    NulInClaim(&'static str),
}

/// What a verified token says (codes not yet resolved against the directory).
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedClaims {
    /// The issuer (`iss`): with `sub`, who the caller is.
    pub issuer: String,
    /// The user or client id.
    pub sub: String,
    /// Display name.
    pub name: Option<String>,
    /// A person's role.
    pub role: Option<Role>,
    /// Machine-client scopes (unknown ones are ignored).
    pub scopes: BTreeSet<Scope>,
    /// Agency code.
    pub agency: Option<String>,
    /// Partnership code.
    pub partnership: String,
    /// When the token expires (`exp`, seconds since the epoch): a
    /// connection that outlives a request (a subscription) ends then.
    pub expires: Option<f64>,
}

#[derive(Debug, Deserialize)]
struct RawClaims {
    // Defaulted so that a token without `sub` is reported as lacking it
    // (jsonwebtoken reads the claims before checking the required ones).
    #[serde(default)]
    sub: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    scope: Option<ScopeClaim>,
    #[serde(default)]
    agency: Option<String>,
    #[serde(default)]
    partnership: Option<String>,
    // NumericDate may be fractional (RFC 7519 §2); `exp` and `nbf` are
    // required and checked by jsonwebtoken before these are read.
    #[serde(default)]
    exp: Option<f64>,
    #[serde(default)]
    nbf: Option<f64>,
    #[serde(default)]
    iat: Option<f64>,
}

/// `scope` as a space-separated string (RFC 8693) or an array of strings.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum ScopeClaim {
    Text(String),
    List(Vec<String>),
}

enum Keys {
    Single(DecodingKey),
    ByKid(HashMap<String, DecodingKey>),
    Remote(RemoteJwks),
}

/// Verifies tokens with the configured key and rules.
pub struct Verifier {
    keys: Keys,
    algorithm: Algorithm,
    validation: Validation,
    hs256_secret: Option<Vec<u8>>,
    issuer: String,
    audience: String,
    anonymous: BTreeSet<AnonymousAccessKind>,
    leeway: u64,
    max_lifetime: Duration,
    max_client_lifetime: Duration,
}

/// What anonymous callers may do (resolved setting).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum AnonymousAccessKind {
    /// Introspection fields.
    Introspection,
    /// Partnerships and agencies.
    Directory,
}

impl Verifier {
    /// Builds the verifier from the settings; `demo` fills unset values with
    /// development defaults.
    pub fn from_args(args: &AuthArgs, demo: bool) -> Result<Self, AuthConfigError> {
        let keyless = args.jwt_secret.is_none()
            && args.jwt_public_key_file.is_none()
            && args.jwt_jwks_file.is_none()
            && args.jwt_jwks_url.is_none();
        if keyless && !demo {
            return Err(AuthConfigError::NoKey);
        }
        // Anyone can mint tokens with the published secret: said first,
        // before any other setting is asked for.
        let hs256 = args.jwt_algorithm == JwtAlgorithm::Hs256;
        if hs256 && !demo && args.jwt_secret.as_deref() == Some(DEMO_SECRET) {
            return Err(AuthConfigError::DevelopmentSecret);
        }
        let issuer = match (&args.jwt_issuer, demo) {
            (Some(i), _) => i.clone(),
            (None, true) => DEMO_ISSUER.to_owned(),
            (None, false) => return Err(AuthConfigError::Missing("JWT_ISSUER")),
        };
        let audience = match (&args.jwt_audience, demo) {
            (Some(a), _) => a.clone(),
            (None, true) => DEMO_AUDIENCE.to_owned(),
            (None, false) => return Err(AuthConfigError::Missing("JWT_AUDIENCE")),
        };
        // The issuer is stored with every idempotency key (a 256-character column).
        if issuer.chars().count() > 256 || issuer.contains('\0') {
            return Err(AuthConfigError::Invalid {
                setting: "JWT_ISSUER",
                reason: "at most 256 characters, no NUL".into(),
            });
        }
        if args.jwt_leeway_seconds > MAX_LEEWAY_SECONDS {
            return Err(AuthConfigError::Invalid {
                setting: "JWT_LEEWAY_SECONDS",
                reason: format!("at most {MAX_LEEWAY_SECONDS}"),
            });
        }
        let max_lifetime = args.jwt_max_lifetime.unwrap_or(DEFAULT_MAX_LIFETIME);
        let max_client_lifetime = args.jwt_max_client_lifetime.unwrap_or(DEFAULT_MAX_LIFETIME);
        for (setting, value) in
            [("JWT_MAX_LIFETIME", max_lifetime), ("JWT_MAX_CLIENT_LIFETIME", max_client_lifetime)]
        {
            if value.as_secs() == 0 {
                return Err(AuthConfigError::Invalid {
                    setting,
                    reason: "must be at least one second".into(),
                });
            }
        }
        let algorithm = match args.jwt_algorithm {
            JwtAlgorithm::Hs256 => Algorithm::HS256,
            JwtAlgorithm::Rs256 => Algorithm::RS256,
            JwtAlgorithm::Es256 => Algorithm::ES256,
        };
        let mut hs256_secret = None;
        let keys = match args.jwt_algorithm {
            JwtAlgorithm::Hs256 => {
                let secret = match (&args.jwt_secret, demo) {
                    (Some(s), _) => s.clone(),
                    (None, true) => DEMO_SECRET.to_owned(),
                    (None, false) => return Err(AuthConfigError::Missing("JWT_SECRET")),
                };

                if secret.len() < 32 {
                    return Err(AuthConfigError::Invalid {
                        setting: "JWT_SECRET",
                        reason: "must be at least 32 bytes".into(),
                    });
                }
                hs256_secret = Some(secret.clone().into_bytes());
                Keys::Single(DecodingKey::from_secret(secret.as_bytes()))
            }
            JwtAlgorithm::Rs256 | JwtAlgorithm::Es256 => public_keys(args, algorithm)?,
        };
        let mut validation = Validation::new(algorithm);
        validation.algorithms = vec![algorithm];
        validation.set_issuer(&[&issuer]);
        validation.set_audience(&[&audience]);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.leeway = args.jwt_leeway_seconds;
        let anonymous = match &args.anonymous_access {
            Some(list) => list
                .iter()
                .filter_map(|a| match a {
                    AnonymousAccess::None => None,
                    AnonymousAccess::Introspection => Some(AnonymousAccessKind::Introspection),
                    AnonymousAccess::Directory => Some(AnonymousAccessKind::Directory),
                })
                .collect(),
            None if demo => {
                [AnonymousAccessKind::Introspection, AnonymousAccessKind::Directory].into()
            }
            // Secure by default: outside demo mode a deployment opens what
            // it chooses to.
            None => BTreeSet::new(),
        };
        Ok(Self {
            keys,
            algorithm,
            validation,
            hs256_secret,
            issuer,
            audience,
            anonymous,
            leeway: args.jwt_leeway_seconds,
            max_lifetime,
            max_client_lifetime,
        })
    }

    /// [`Verifier::from_args`], then, with `JWT_JWKS_URL`, the first fetch of
    /// the keys: an error when it fails or yields no usable key. (A verifier
    /// from `from_args` alone fetches on its first verification instead.)
    pub async fn start(args: &AuthArgs, demo: bool) -> Result<Self, AuthConfigError> {
        let verifier = Self::from_args(args, demo)?;
        if let Keys::Remote(remote) = &verifier.keys {
            remote.fetch_first().await?;
        }
        Ok(verifier)
    }

    /// Whether anonymous callers may do this kind of operation.
    pub fn anonymous_allows(&self, kind: AnonymousAccessKind) -> bool {
        self.anonymous.contains(&kind)
    }

    /// Verifies a compact JWT and reads its claims. With a JWKS URL this may
    /// wait for a fetch of the keys (see the module documentation).
    pub async fn verify(&self, token: &str) -> Result<VerifiedClaims, AuthError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(AuthError::TooLarge);
        }
        let fetched;
        let key = match &self.keys {
            Keys::Single(key) => key,
            Keys::ByKid(keys) => keys.get(&self.kid(token)?).ok_or(AuthError::UnknownKey)?,
            Keys::Remote(remote) => {
                let kid = self.kid(token)?;
                fetched = remote.keys_for(&kid).await;
                fetched.keys.get(&kid).ok_or(AuthError::UnknownKey)?
            }
        };
        let data = jsonwebtoken::decode::<RawClaims>(token, key, &self.validation)
            .map_err(map_jwt_error)?;
        if data.header.crit.is_some() {
            return Err(AuthError::CriticalExtension);
        }
        let raw = data.claims;
        if raw.sub.trim().is_empty() {
            return Err(AuthError::MissingClaim("sub".into()));
        }
        if raw.sub.contains('\0') {
            return Err(AuthError::NulInClaim("sub"));
        }
        if raw.sub.chars().count() > MAX_SUB_CHARS {
            return Err(AuthError::SubTooLong);
        }
        for (claim, value) in [("partnership", &raw.partnership), ("agency", &raw.agency)] {
            if value.as_deref().is_some_and(|v| v.contains('\0')) {
                return Err(AuthError::NulInClaim(claim));
            }
        }
        let role = match raw.role.as_deref() {
            None => None,
            Some(r) => Some(Role::parse(r).ok_or(AuthError::UnknownRole)?),
        };
        let max_lifetime =
            if role.is_some() { self.max_lifetime } else { self.max_client_lifetime };
        check_times(&raw, chrono::Utc::now().timestamp(), self.leeway, max_lifetime)?;
        let scopes: BTreeSet<Scope> = match raw.scope {
            None => BTreeSet::new(),
            Some(ScopeClaim::Text(s)) => s.split_whitespace().filter_map(Scope::parse).collect(),
            Some(ScopeClaim::List(v)) => v.iter().filter_map(|s| Scope::parse(s)).collect(),
        };
        if role.is_none() && scopes.is_empty() {
            return Err(AuthError::NoRoleOrScope);
        }
        let partnership = raw
            .partnership
            .filter(|p| !p.is_empty())
            .ok_or(AuthError::MissingClaim("partnership".into()))?;
        let agency = raw.agency.filter(|a| !a.is_empty());
        // A person acts for an agency (a board chair acts for the partnership);
        // a cases:read client reads its own agency's cases.
        let needs_agency = matches!(role, Some(r) if r != Role::BoardChair)
            || (role.is_none() && scopes.contains(&Scope::CasesRead));
        if needs_agency && agency.is_none() {
            return Err(AuthError::MissingClaim("agency".into()));
        }
        Ok(VerifiedClaims {
            issuer: self.issuer.clone(),
            sub: raw.sub,
            name: raw.name,
            role,
            scopes,
            agency,
            partnership,
            expires: raw.exp,
        })
    }

    /// The `kid` of a token signed with the configured algorithm (checked
    /// first, so that no other token can make the server fetch keys).
    fn kid(&self, token: &str) -> Result<String, AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(map_jwt_error)?;
        if header.alg != self.algorithm {
            return Err(AuthError::WrongAlgorithm);
        }
        header.kid.ok_or(AuthError::UnknownKey)
    }

    /// Mints a development token with the HS256 secret; refused when tokens
    /// are verified with a public key (the server cannot sign those).
    pub fn mint(&self, claims: &MintClaims, ttl: Duration) -> Result<String, AuthConfigError> {
        let secret = self.hs256_secret.as_deref().ok_or(AuthConfigError::Invalid {
            setting: "JWT_ALGORITHM",
            reason: "tokens can be minted only with an HS256 secret; ask your identity provider"
                .into(),
        })?;
        let max = if claims.role.is_some() { self.max_lifetime } else { self.max_client_lifetime };
        if ttl > max {
            return Err(AuthConfigError::Invalid {
                setting: "--ttl",
                reason: format!(
                    "longer than the {} s this server accepts (JWT_MAX_LIFETIME, \
                     JWT_MAX_CLIENT_LIFETIME)",
                    max.as_secs()
                ),
            });
        }
        let now = chrono::Utc::now().timestamp();
        let body = MintBody {
            sub: &claims.sub,
            name: claims.name.as_deref(),
            role: claims.role.map(Role::as_str),
            scope: claims.scope.as_deref(),
            agency: claims.agency.as_deref(),
            partnership: &claims.partnership,
            iss: &self.issuer,
            aud: &self.audience,
            iat: now,
            nbf: now,
            exp: now + i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX / 2),
        };
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &body,
            &EncodingKey::from_secret(secret),
        )
        .map_err(|e| AuthConfigError::Invalid { setting: "JWT_SECRET", reason: e.to_string() })
    }
}

/// The claims of a development token.
#[derive(Debug, Clone, Default)]
pub struct MintClaims {
    /// Subject.
    pub sub: String,
    /// Display name.
    pub name: Option<String>,
    /// Role.
    pub role: Option<Role>,
    /// Space-separated scopes.
    pub scope: Option<String>,
    /// Agency code.
    pub agency: Option<String>,
    /// Partnership code.
    pub partnership: String,
}

#[derive(Serialize)]
struct MintBody<'a> {
    sub: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    agency: Option<&'a str>,
    partnership: &'a str,
    iss: &'a str,
    aud: &'a str,
    iat: i64,
    nbf: i64,
    exp: i64,
}

/// The keys of an RS256/ES256 configuration: exactly one of a PEM file, a
/// JWKS file and a JWKS URL.
fn public_keys(args: &AuthArgs, algorithm: Algorithm) -> Result<Keys, AuthConfigError> {
    let given: Vec<&str> = [
        ("JWT_PUBLIC_KEY_FILE", args.jwt_public_key_file.is_some()),
        ("JWT_JWKS_FILE", args.jwt_jwks_file.is_some()),
        ("JWT_JWKS_URL", args.jwt_jwks_url.is_some()),
    ]
    .into_iter()
    .filter_map(|(name, set)| set.then_some(name))
    .collect();
    if given.len() > 1 {
        return Err(AuthConfigError::Invalid {
            setting: given[0],
            reason: format!(
                "give one of JWT_PUBLIC_KEY_FILE, JWT_JWKS_FILE and JWT_JWKS_URL, not {}",
                given.join(" and ")
            ),
        });
    }
    if let Some(path) = &args.jwt_public_key_file {
        let invalid =
            |reason: String| AuthConfigError::Invalid { setting: "JWT_PUBLIC_KEY_FILE", reason };
        let pem = std::fs::read(path).map_err(|e| invalid(e.to_string()))?;
        let key = if algorithm == Algorithm::RS256 {
            DecodingKey::from_rsa_pem(&pem)
        } else {
            DecodingKey::from_ec_pem(&pem)
        }
        .map_err(|e| invalid(e.to_string()))?;
        Ok(Keys::Single(key))
    } else if let Some(path) = &args.jwt_jwks_file {
        let invalid =
            |reason: String| AuthConfigError::Invalid { setting: "JWT_JWKS_FILE", reason };
        let text = std::fs::read(path).map_err(|e| invalid(e.to_string()))?;
        let (keys, skipped) = jwks_keys(&text, algorithm).map_err(invalid)?;
        if !skipped.is_empty() {
            tracing::warn!(skipped = %skipped.join("; "), "JWT_JWKS_FILE: keys left out");
        }
        Ok(Keys::ByKid(keys))
    } else if let Some(url) = &args.jwt_jwks_url {
        Ok(Keys::Remote(RemoteJwks::new(url, algorithm, args)?))
    } else {
        Err(AuthConfigError::Missing("JWT_PUBLIC_KEY_FILE, JWT_JWKS_FILE or JWT_JWKS_URL"))
    }
}

/// A JWKS document fetched from the identity provider, kept fresh.
struct RemoteJwks {
    url: reqwest::Url,
    /// The URL as logged: no user info, no query.
    shown: String,
    client: reqwest::Client,
    algorithm: Algorithm,
    min_refresh: Duration,
    max_age: Duration,
    /// The keys in use, swapped whole by a successful fetch.
    current: std::sync::Mutex<Arc<KeySet>>,
    /// Held while a fetch is in flight (one at a time); when the last fetch
    /// began, successful or not.
    fetching: tokio::sync::Mutex<Option<Instant>>,
    /// Fetches finished so far, so that a verification that waited for a
    /// fetch uses its result instead of fetching again.
    finished: AtomicU64,
}

#[derive(Default)]
struct KeySet {
    keys: HashMap<String, DecodingKey>,
    /// When these keys were fetched; `None` before the first fetch.
    fetched_at: Option<Instant>,
}

impl RemoteJwks {
    fn new(text: &str, algorithm: Algorithm, args: &AuthArgs) -> Result<Self, AuthConfigError> {
        let invalid = |reason: String| AuthConfigError::Invalid { setting: "JWT_JWKS_URL", reason };
        let url = reqwest::Url::parse(text).map_err(|e| invalid(format!("{text:?}: {e}")))?;
        let https = match url.scheme() {
            "https" => true,
            "http" if is_loopback(&url) => false,
            "http" => {
                return Err(invalid(
                    "must be https (plain http only to a loopback address)".into(),
                ));
            }
            other => return Err(invalid(format!("unsupported scheme {other:?}"))),
        };
        let min_refresh =
            args.jwt_jwks_min_refresh_seconds.unwrap_or(DEFAULT_JWKS_MIN_REFRESH_SECONDS);
        let max_age = args.jwt_jwks_refresh_seconds.unwrap_or(DEFAULT_JWKS_REFRESH_SECONDS);
        if max_age == 0 {
            return Err(AuthConfigError::Invalid {
                setting: "JWT_JWKS_REFRESH_SECONDS",
                reason: "must be at least 1".into(),
            });
        }
        let client = reqwest::Client::builder()
            .timeout(JWKS_TIMEOUT)
            .connect_timeout(JWKS_TIMEOUT)
            .https_only(https)
            .redirect(reqwest::redirect::Policy::limited(3))
            // Fetches are minutes apart: a kept-alive connection would only
            // hide a provider that went away.
            .pool_max_idle_per_host(0)
            .user_agent(concat!("escalations/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| invalid(error_chain(&e)))?;
        let mut shown = url.clone();
        let _ = shown.set_username("");
        let _ = shown.set_password(None);
        shown.set_query(None);
        shown.set_fragment(None);
        Ok(Self {
            url,
            shown: shown.to_string(),
            client,
            algorithm,
            min_refresh: Duration::from_secs(min_refresh),
            max_age: Duration::from_secs(max_age),
            current: std::sync::Mutex::default(),
            fetching: tokio::sync::Mutex::new(None),
            finished: AtomicU64::new(0),
        })
    }

    fn current(&self) -> Arc<KeySet> {
        self.current.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Whether the throttle lets a fetch start now.
    fn may_fetch(&self, last: Option<Instant>) -> bool {
        last.is_none_or(|began| began.elapsed() >= self.min_refresh)
    }

    /// The fetch at start, whose failure stops the start.
    async fn fetch_first(&self) -> Result<(), AuthConfigError> {
        let mut last = self.fetching.lock().await;
        *last = Some(Instant::now());
        let result = self.fetch().await;
        if let Ok((keys, skipped)) = &result {
            tracing::info!(jwks.url = %self.shown, jwks.kids = ?kids(keys), "JWKS fetched");
            if !skipped.is_empty() {
                tracing::warn!(jwks.url = %self.shown, skipped = %skipped.join("; "), "JWKS keys left out");
            }
        }
        let outcome = result.map(|(keys, _)| self.install(keys));
        self.finished.fetch_add(1, Ordering::AcqRel);
        outcome.map_err(|reason| AuthConfigError::Invalid {
            setting: "JWT_JWKS_URL",
            reason: format!("fetching the JWKS from {} failed: {reason}", self.shown),
        })
    }

    /// The keys to look `kid` up in: refreshed first when they are older
    /// than `max_age` (by one verification; the others go on with the keys
    /// they have), and fetched again when `kid` is unknown, unless a fetch
    /// finished while this one waited or the last began less than
    /// `min_refresh` ago.
    async fn keys_for(&self, kid: &str) -> Arc<KeySet> {
        let seen = self.finished.load(Ordering::Acquire);
        let mut keys = self.current();
        if keys.fetched_at.is_none_or(|at| at.elapsed() >= self.max_age)
            && let Ok(mut last) = self.fetching.try_lock()
            && self.may_fetch(*last)
        {
            self.refresh(&mut last).await;
            keys = self.current();
        }
        if keys.keys.contains_key(kid) {
            return keys;
        }
        let mut last = self.fetching.lock().await;
        if self.finished.load(Ordering::Acquire) == seen && self.may_fetch(*last) {
            self.refresh(&mut last).await;
        }
        drop(last);
        self.current()
    }

    /// A fetch after the first: on failure the keys stay as they were.
    async fn refresh(&self, last: &mut Option<Instant>) {
        *last = Some(Instant::now());
        match self.fetch().await {
            Ok((keys, skipped)) => {
                if !skipped.is_empty() {
                    tracing::debug!(jwks.url = %self.shown, skipped = %skipped.join("; "), "JWKS keys left out");
                }
                let previous = self.current();
                let after = kids(&keys);
                if kids(&previous.keys) == after {
                    tracing::debug!(jwks.url = %self.shown, "JWKS refreshed, same keys");
                } else {
                    tracing::info!(jwks.url = %self.shown, jwks.kids = ?after, "JWKS refreshed");
                }
                self.install(keys);
            }
            Err(reason) => tracing::warn!(
                jwks.url = %self.shown,
                error = %reason,
                "could not refresh the JWKS; keeping the previous keys"
            ),
        }
        self.finished.fetch_add(1, Ordering::AcqRel);
    }

    fn install(&self, keys: HashMap<String, DecodingKey>) {
        let set = Arc::new(KeySet { keys, fetched_at: Some(Instant::now()) });
        *self.current.lock().unwrap_or_else(PoisonError::into_inner) = set;
    }

    /// One GET of the document, within the time and size limits.
    async fn fetch(&self) -> Result<(HashMap<String, DecodingKey>, Vec<String>), String> {
        let mut response = self
            .client
            .get(self.url.clone())
            .header(reqwest::header::ACCEPT, "application/jwk-set+json, application/json")
            .send()
            .await
            .map_err(|e| error_chain(&e.without_url()))?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("HTTP status {status}"));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| error_chain(&e.without_url()))? {
            if body.len() + chunk.len() > MAX_JWKS_BYTES {
                return Err(format!("the document is larger than {MAX_JWKS_BYTES} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        jwks_keys(&body, self.algorithm)
    }
}

fn kids(keys: &HashMap<String, DecodingKey>) -> BTreeSet<&str> {
    keys.keys().map(String::as_str).collect()
}

/// Whether the URL's host is `localhost` or a loopback address.
fn is_loopback(url: &reqwest::Url) -> bool {
    match url.host_str() {
        Some("localhost") => true,
        Some(host) => host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback()),
        None => false,
    }
}

/// An error and its sources, `a: b: c`.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// The keys of a JWKS document usable with `algorithm`, by `kid`, and why
/// the others were left out: keys for other algorithms or uses, or without
/// a `kid` (an identity provider often publishes some). None left is an
/// error.
fn jwks_keys(
    text: &[u8],
    algorithm: Algorithm,
) -> Result<(HashMap<String, DecodingKey>, Vec<String>), String> {
    #[derive(Deserialize)]
    struct RawSet {
        keys: Vec<serde_json::Value>,
    }
    let set: RawSet =
        serde_json::from_slice(text).map_err(|e| format!("not a JWKS document: {e}"))?;
    let mut keys = HashMap::new();
    let mut skipped = Vec::new();
    for (index, value) in set.keys.into_iter().enumerate() {
        let jwk: Jwk = match serde_json::from_value(value) {
            Ok(jwk) => jwk,
            Err(e) => {
                skipped.push(format!("key #{index}: {e}"));
                continue;
            }
        };
        let Some(kid) = jwk.common.key_id.clone() else {
            skipped.push(format!("key #{index}: no kid"));
            continue;
        };
        if let Some(reason) = unusable(&jwk, algorithm) {
            skipped.push(format!("key {kid}: {reason}"));
            continue;
        }
        if keys.contains_key(&kid) {
            skipped.push(format!("key {kid}: a second key with this kid"));
            continue;
        }
        match DecodingKey::from_jwk(&jwk) {
            Ok(key) => {
                keys.insert(kid, key);
            }
            Err(e) => skipped.push(format!("key {kid}: {e}")),
        }
    }
    if keys.is_empty() {
        let why =
            if skipped.is_empty() { "the document has no keys".into() } else { skipped.join("; ") };
        return Err(format!("no usable {algorithm:?} key ({why})"));
    }
    Ok((keys, skipped))
}

/// Why a JWK cannot verify `algorithm` signatures, if it cannot.
fn unusable(jwk: &Jwk, algorithm: Algorithm) -> Option<String> {
    let common = &jwk.common;
    if let Some(key_use) = &common.public_key_use
        && *key_use != PublicKeyUse::Signature
    {
        return Some("not a signature key (use)".into());
    }
    if let Some(ops) = &common.key_operations
        && !ops.contains(&KeyOperations::Verify)
    {
        return Some("not a verification key (key_ops)".into());
    }
    let expected =
        if algorithm == Algorithm::RS256 { KeyAlgorithm::RS256 } else { KeyAlgorithm::ES256 };
    if let Some(alg) = common.key_algorithm
        && alg != expected
    {
        return Some(format!("for {alg}, not {expected}"));
    }
    let fits = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => algorithm == Algorithm::RS256,
        AlgorithmParameters::EllipticCurve(ec) => {
            algorithm == Algorithm::ES256 && ec.curve == EllipticCurve::P256
        }
        AlgorithmParameters::OctetKey(_) | AlgorithmParameters::OctetKeyPair(_) => false,
    };
    (!fits).then(|| format!("not a {expected} key"))
}

/// The time rules jsonwebtoken does not know: `iat` no later than `now`
/// plus the leeway, and a lifetime, from `iat` (or `nbf` when `iat` is
/// absent) to `exp`, of at most `max_lifetime`. (`exp` and `nbf` themselves
/// were checked by jsonwebtoken.)
fn check_times(
    raw: &RawClaims,
    now: i64,
    leeway: u64,
    max_lifetime: Duration,
) -> Result<(), AuthError> {
    let leeway = i64::try_from(leeway).unwrap_or(i64::MAX);
    // Whole seconds, saturating: a lifetime is compared with a setting in
    // seconds, and jsonwebtoken rounds `exp` and `nbf` the same way.
    let seconds = |t: f64| t.round() as i64;
    if let Some(iat) = raw.iat
        && seconds(iat) > now.saturating_add(leeway)
    {
        return Err(AuthError::IssuedInFuture);
    }
    let (Some(exp), Some(start)) = (raw.exp, raw.iat.or(raw.nbf)) else {
        return Err(AuthError::Malformed);
    };
    let lifetime = seconds(exp).saturating_sub(seconds(start));
    let max_seconds = max_lifetime.as_secs();
    if u64::try_from(lifetime).is_ok_and(|l| l > max_seconds) {
        return Err(AuthError::TooLongLived { max_seconds });
    }
    Ok(())
}

fn map_jwt_error(err: jsonwebtoken::errors::Error) -> AuthError {
    match err.kind() {
        ErrorKind::ExpiredSignature => AuthError::Expired,
        ErrorKind::ImmatureSignature => AuthError::NotYetValid,
        ErrorKind::InvalidSignature => AuthError::BadSignature,
        ErrorKind::InvalidAlgorithm
        | ErrorKind::InvalidAlgorithmName
        | ErrorKind::MissingAlgorithm => AuthError::WrongAlgorithm,
        ErrorKind::InvalidIssuer => AuthError::WrongIssuer,
        ErrorKind::InvalidAudience => AuthError::WrongAudience,
        ErrorKind::MissingRequiredClaim(c) => AuthError::MissingClaim(c.clone()),
        _ => AuthError::Malformed,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;
    const DAY: i64 = 24 * 3600;

    fn raw(iat: Option<i64>, nbf: i64, exp: i64) -> RawClaims {
        #[allow(clippy::cast_precision_loss)]
        let t = |v: i64| v as f64;
        RawClaims {
            sub: "s".into(),
            name: None,
            role: None,
            scope: None,
            agency: None,
            partnership: None,
            exp: Some(t(exp)),
            nbf: Some(t(nbf)),
            iat: iat.map(t),
        }
    }

    #[track_caller]
    fn check(name: &str, claims: RawClaims, expected: Result<(), AuthError>) {
        let got = check_times(&claims, NOW, 30, Duration::from_secs(DAY as u64));
        assert_eq!(got, expected, "{name}");
    }

    #[test]
    fn issue_time_and_lifetime() {
        let too_long = Err(AuthError::TooLongLived { max_seconds: DAY as u64 });
        check("ten minutes", raw(Some(NOW), NOW, NOW + 600), Ok(()));
        check("exactly the maximum", raw(Some(NOW), NOW, NOW + DAY), Ok(()));
        check("a second over", raw(Some(NOW), NOW, NOW + DAY + 1), too_long.clone());
        check("iat inside the leeway", raw(Some(NOW + 30), NOW, NOW + 600), Ok(()));
        check(
            "iat beyond the leeway",
            raw(Some(NOW + 31), NOW, NOW + 600),
            Err(AuthError::IssuedInFuture),
        );
        check("without iat, from nbf", raw(None, NOW - 3600, NOW + DAY - 3600), Ok(()));
        check("without iat, nbf long ago", raw(None, NOW - 3600, NOW + DAY), too_long.clone());
        // iat counts when present: an old issue time is an old token, whatever nbf says.
        check("old iat, recent nbf", raw(Some(NOW - 2 * DAY), NOW, NOW + 600), too_long);
        check("expired before issued", raw(Some(NOW), NOW, NOW - 1), Ok(()));
    }

    /// What the key settings give, outside demo mode and in it.
    #[track_caller]
    fn settings(name: &str, args: &AuthArgs, demo: bool, expected: Result<(), &str>) {
        let got = Verifier::from_args(args, demo).map(|_| ()).map_err(|e| e.to_string());
        match (got, expected) {
            (Ok(()), Ok(())) => {}
            (Err(got), Err(want)) => assert!(got.contains(want), "{name}: {got}"),
            (got, want) => panic!("{name}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn outside_demo_mode_a_key_of_ones_own_is_required() {
        let secret = |s: &str| AuthArgs {
            jwt_secret: Some(s.into()),
            jwt_issuer: Some("https://idp.example".into()),
            jwt_audience: Some("api".into()),
            ..AuthArgs::default()
        };
        let own = "a-secret-of-our-own-of-at-least-32-bytes";
        settings("demo, nothing set", &AuthArgs::default(), true, Ok(()));
        settings("demo, its own secret", &secret(DEMO_SECRET), true, Ok(()));
        settings("nothing set", &AuthArgs::default(), false, Err("no token key is set"));
        settings("the demo secret", &secret(DEMO_SECRET), false, Err("development secret"));
        settings("a short secret", &secret("short"), false, Err("at least 32 bytes"));
        settings("a secret of our own", &secret(own), false, Ok(()));
        let no_issuer = AuthArgs { jwt_issuer: None, ..secret(own) };
        settings("no issuer", &no_issuer, false, Err("JWT_ISSUER is required"));
        let bare = |s: &str| AuthArgs { jwt_secret: Some(s.into()), ..AuthArgs::default() };
        settings("the demo secret alone", &bare(DEMO_SECRET), false, Err("development secret"));
        let rs256 = AuthArgs { jwt_algorithm: JwtAlgorithm::Rs256, ..AuthArgs::default() };
        settings("RS256 without a key", &rs256, false, Err("no token key is set"));
    }

    #[test]
    fn outside_demo_mode_nothing_is_open_to_anonymous_callers_by_default() {
        let args = AuthArgs {
            jwt_secret: Some("a-secret-of-our-own-of-at-least-32-bytes".into()),
            jwt_issuer: Some("https://idp.example".into()),
            jwt_audience: Some("api".into()),
            ..AuthArgs::default()
        };
        let open = |demo| {
            let v = Verifier::from_args(&args, demo).unwrap();
            [AnonymousAccessKind::Introspection, AnonymousAccessKind::Directory]
                .map(|k| v.anonymous_allows(k))
        };
        assert_eq!(open(false), [false, false]);
        assert_eq!(open(true), [true, true]);
    }
}
