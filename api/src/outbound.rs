//! Outbound webhooks reach only what the operator's [`OutboundPolicy`] permits (the public
//! internet, plus `SWITCHBOARD_OUTBOUND_ALLOW`). Checked twice: when a channel's
//! `outbound_url` is saved (its host resolved, every address checked), and on every send,
//! on the addresses the connection will use: a name that resolved to a public address when
//! saved and resolves to an internal one later (DNS rebinding) is refused then.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use domain::outbound::OutboundPolicy;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

const REFUSED: &str = "points at an address outbound webhooks may not reach (loopback, private, link-local or metadata); the operator can allow ranges with SWITCHBOARD_OUTBOUND_ALLOW";

/// How long saving a channel waits for its outbound host's addresses.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(3);

/// The URL's host as an address, when it is written as one (`http://10.0.0.1/`,
/// `http://[::1]:8080/`).
fn literal_host(url: &reqwest::Url) -> Option<IpAddr> {
    let host = url.host_str()?;
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()
}

/// Whether an outbound URL may be saved: written as an address, one the policy permits;
/// as a name, one that resolves to such addresses only (or not at all, yet). The error says
/// why, for the admin.
pub async fn check_url(policy: &OutboundPolicy, url: &str) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|_| "must be a valid URL".to_string())?;
    if let Some(address) = literal_host(&parsed) {
        return if policy.permits(address) {
            Ok(())
        } else {
            Err(REFUSED.to_string())
        };
    }
    let host = parsed.host_str().ok_or("must name a host")?;
    let port = parsed.port_or_known_default().unwrap_or(443);
    // A name that does not resolve now (not yet created, DNS down) is saved: the send-time
    // check decides on what it resolves to then.
    let found =
        match tokio::time::timeout(LOOKUP_TIMEOUT, tokio::net::lookup_host((host, port))).await {
            Ok(Ok(found)) => found,
            Ok(Err(_)) | Err(_) => return Ok(()),
        };
    let mut found = found.peekable();
    if found.peek().is_some() && !found.all(|address| policy.permits(address.ip())) {
        return Err(REFUSED.to_string());
    }
    Ok(())
}

/// At send time, for a URL whose host is an address (the resolver below never sees those):
/// why it is refused, if it is.
pub fn refused_literal(policy: &OutboundPolicy, url: &str) -> Option<String> {
    let parsed = reqwest::Url::parse(url).ok()?;
    let address = literal_host(&parsed)?;
    (!policy.permits(address)).then(|| format!("the outbound_url {REFUSED}"))
}

/// An HTTP client that reaches only what `policy` permits: names resolved through
/// [`GuardedResolver`] on every connection, no proxy (it would resolve them out of sight),
/// and at most `redirects` redirects, each to a host the policy permits too (an address
/// written in the URL never meets the resolver, so it is checked here).
pub fn guarded_client(
    policy: &OutboundPolicy,
    timeout: Duration,
    redirects: usize,
) -> Result<reqwest::Client, String> {
    let redirect = if redirects == 0 {
        reqwest::redirect::Policy::none()
    } else {
        let checked = policy.clone();
        reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() > redirects {
                attempt.error("too many redirects")
            } else if literal_host(attempt.url()).is_some_and(|address| !checked.permits(address)) {
                attempt.error(REFUSED)
            } else {
                attempt.follow()
            }
        })
    };
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(CONNECT_TIMEOUT.min(timeout))
        .redirect(redirect)
        .no_proxy()
        .dns_resolver(std::sync::Arc::new(GuardedResolver {
            policy: policy.clone(),
        }))
        .user_agent(concat!("switchboard/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|error| format!("cannot build an HTTP client: {error}"))
}

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The delivery client's resolver: the system's answers, less what the policy refuses; a
/// name left with no address fails the attempt.
pub struct GuardedResolver {
    pub policy: OutboundPolicy,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            let found = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let permitted: Vec<SocketAddr> = found
                .filter(|address| policy.permits(address.ip()))
                .collect();
            if permitted.is_empty() {
                return Err(format!("the outbound_url's host {host} {REFUSED}").into());
            }
            Ok(Box::new(permitted.into_iter()) as Addrs)
        })
    }
}
