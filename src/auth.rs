//! Bearer tokens: verification (jsonwebtoken, algorithm fixed by
//! configuration) and development minting.
//!
//! The token contract: `sub`, `iss`, `aud`, `exp`, `nbf` are required; `iat`
//! and `name` optional. A person carries `role` (one of the five roles) and
//! `agency` (agency code; optional for a board chair); a machine client
//! carries `scope` (`cases:read`, `statistics:read`, space-separated) instead
//! of or beside `role`. `partnership` (partnership code) is always required.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use jsonwebtoken::jwk::JwkSet;
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

/// A setting that makes verification impossible; the server refuses to start.
#[derive(Debug, thiserror::Error)]
pub enum AuthConfigError {
    /// A required setting is missing.
    #[error("{0} is required")]
    Missing(&'static str),
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
}

/// What a verified token says (codes not yet resolved against the directory).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedClaims {
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
}

/// Verifies tokens with the configured key and rules.
pub struct Verifier {
    keys: Keys,
    validation: Validation,
    hs256_secret: Option<Vec<u8>>,
    issuer: String,
    audience: String,
    anonymous: BTreeSet<AnonymousAccessKind>,
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
        if args.jwt_leeway_seconds > MAX_LEEWAY_SECONDS {
            return Err(AuthConfigError::Invalid {
                setting: "JWT_LEEWAY_SECONDS",
                reason: format!("at most {MAX_LEEWAY_SECONDS}"),
            });
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
            JwtAlgorithm::Rs256 | JwtAlgorithm::Es256 => {
                match (&args.jwt_public_key_file, &args.jwt_jwks_file) {
                    (Some(path), None) => {
                        let pem = std::fs::read(path).map_err(|e| AuthConfigError::Invalid {
                            setting: "JWT_PUBLIC_KEY_FILE",
                            reason: e.to_string(),
                        })?;
                        let key = if algorithm == Algorithm::RS256 {
                            DecodingKey::from_rsa_pem(&pem)
                        } else {
                            DecodingKey::from_ec_pem(&pem)
                        }
                        .map_err(|e| AuthConfigError::Invalid {
                            setting: "JWT_PUBLIC_KEY_FILE",
                            reason: e.to_string(),
                        })?;
                        Keys::Single(key)
                    }
                    (None, Some(path)) => {
                        let text = std::fs::read_to_string(path).map_err(|e| {
                            AuthConfigError::Invalid {
                                setting: "JWT_JWKS_FILE",
                                reason: e.to_string(),
                            }
                        })?;
                        Keys::ByKid(jwks_keys(&text)?)
                    }
                    (None, None) => {
                        return Err(AuthConfigError::Missing(
                            "JWT_PUBLIC_KEY_FILE or JWT_JWKS_FILE",
                        ));
                    }
                    (Some(_), Some(_)) => {
                        return Err(AuthConfigError::Invalid {
                            setting: "JWT_PUBLIC_KEY_FILE",
                            reason: "give either a public key file or a JWKS file, not both".into(),
                        });
                    }
                }
            }
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
            None => [AnonymousAccessKind::Introspection].into(),
        };
        Ok(Self { keys, validation, hs256_secret, issuer, audience, anonymous })
    }

    /// Whether anonymous callers may do this kind of operation.
    pub fn anonymous_allows(&self, kind: AnonymousAccessKind) -> bool {
        self.anonymous.contains(&kind)
    }

    /// Verifies a compact JWT and reads its claims.
    pub fn verify(&self, token: &str) -> Result<VerifiedClaims, AuthError> {
        let key = match &self.keys {
            Keys::Single(key) => key,
            Keys::ByKid(keys) => {
                let header = jsonwebtoken::decode_header(token).map_err(map_jwt_error)?;
                let kid = header.kid.ok_or(AuthError::UnknownKey)?;
                keys.get(&kid).ok_or(AuthError::UnknownKey)?
            }
        };
        let data = jsonwebtoken::decode::<RawClaims>(token, key, &self.validation)
            .map_err(map_jwt_error)?;
        let raw = data.claims;
        if raw.sub.trim().is_empty() {
            return Err(AuthError::MissingClaim("sub".into()));
        }
        let role = match raw.role.as_deref() {
            None => None,
            Some(r) => Some(Role::parse(r).ok_or(AuthError::UnknownRole)?),
        };
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
        Ok(VerifiedClaims { sub: raw.sub, name: raw.name, role, scopes, agency, partnership })
    }

    /// Mints a development token with the HS256 secret; refused when tokens
    /// are verified with a public key (the server cannot sign those).
    pub fn mint(&self, claims: &MintClaims, ttl: Duration) -> Result<String, AuthConfigError> {
        let secret = self.hs256_secret.as_deref().ok_or(AuthConfigError::Invalid {
            setting: "JWT_ALGORITHM",
            reason: "tokens can be minted only with an HS256 secret; ask your identity provider"
                .into(),
        })?;
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

fn jwks_keys(text: &str) -> Result<HashMap<String, DecodingKey>, AuthConfigError> {
    let invalid = |reason: String| AuthConfigError::Invalid { setting: "JWT_JWKS_FILE", reason };
    let set: JwkSet = serde_json::from_str(text).map_err(|e| invalid(e.to_string()))?;
    let mut keys = HashMap::new();
    for jwk in &set.keys {
        let Some(kid) = jwk.common.key_id.clone() else { continue };
        let key = DecodingKey::from_jwk(jwk).map_err(|e| invalid(format!("key {kid}: {e}")))?;
        keys.insert(kid, key);
    }
    if keys.is_empty() {
        return Err(invalid("no key with a kid".into()));
    }
    Ok(keys)
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
