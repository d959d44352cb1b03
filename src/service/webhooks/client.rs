//! The HTTP client of deliveries: `reqwest` with a resolver that refuses
//! addresses that are not public (`domain::webhook::is_public`), so the
//! address checked is the address connected to (no window for a DNS
//! answer to change between the two); an IP literal in the URL never
//! reaches a resolver, so it is checked before the request. No redirects
//! are followed (a 3xx is a failed attempt), no proxy from the
//! environment is used (it would connect on our behalf, unchecked), and
//! every attempt has the timeout of `WEBHOOK_TIMEOUT`.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::domain::webhook::{UrlRefusal, check_address};

/// A resolver that answers only with allowed addresses.
struct CheckedResolver {
    allow_private: bool,
}

impl Resolve for CheckedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|e| -> Box<dyn std::error::Error + Send + Sync> { Box::new(e) })?
                .collect();
            if addrs.is_empty() {
                return Err(format!("{host} does not resolve").into());
            }
            // One refused address refuses the name: a receiver has no
            // reason to mix public and private answers.
            for addr in &addrs {
                check_address(addr.ip(), allow).map_err(
                    |r| -> Box<dyn std::error::Error + Send + Sync> {
                        format!("{host} resolves to {r}").into()
                    },
                )?;
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// The client of every delivery of one process.
pub fn build(timeout: Duration, allow_private: bool) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .dns_resolver(Arc::new(CheckedResolver { allow_private }))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(timeout)
        .connect_timeout(timeout)
        .user_agent(concat!("escalations-webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// Checks the host of a URL that is an IP literal (a name is checked by
/// the resolver when it is connected to).
pub fn check_literal(url: &url::Url, allow_private: bool) -> Result<(), UrlRefusal> {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => check_address(IpAddr::V4(ip), allow_private),
        Some(url::Host::Ipv6(ip)) => check_address(IpAddr::V6(ip), allow_private),
        Some(url::Host::Domain(_)) => Ok(()),
        None => Err(UrlRefusal::NoHost),
    }
}
