//! The server's settings, their defaults and the checks `build()` makes.

use std::num::NonZeroUsize;
use std::time::Duration;

use clamator_protocol::{TransportError, DEFAULT_SHUTDOWN_GRACE};

use crate::keys::{check_instance_id, check_key_prefix};
use crate::settings::DEFAULT_MAX_ENVELOPE_BYTES;
use crate::settings::DEFAULT_REPLY_STREAM_TTL;

/// The default number of handlers a server runs at once per service.
pub const DEFAULT_CONCURRENCY: usize = 64;
/// The default idle time after which another consumer reclaims a pending entry: 60 s.
pub const DEFAULT_CONSUMER_CLAIM_IDLE: Duration = Duration::from_secs(60);
/// The shortest `consumer_claim_idle` accepted: 100 ms. A live entry is refreshed every third
/// of it; below this a Redis round trip and a scheduling delay can outlast the margin, and live
/// handlers would be reclaimed and run twice. Values under a second are for tests.
pub const MIN_CONSUMER_CLAIM_IDLE: Duration = Duration::from_millis(100);
/// The default `MAXLEN ~` of the reply streams of clients that do not trim their own (the
/// Python and TypeScript 0.1.9 clients): 1024.
pub const DEFAULT_REPLY_STREAM_MAXLEN: usize = 1024;
/// The default number of deliveries after which an entry is dead-lettered.
pub const DEFAULT_MAX_DELIVERIES: u32 = 5;
/// The default idle time after which a consumer with nothing pending is removed from its
/// group (a server that died or was replaced): 1 hour, or twice the consumer liveness window
/// when that is longer (a claim idle of more than about 25 minutes).
pub const DEFAULT_CONSUMER_EXPIRY: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) key_prefix: String,
    pub(crate) instance_id: String,
    pub(crate) claim_idle: Duration,
    pub(crate) reply_maxlen: usize,
    pub(crate) grace: Duration,
    pub(crate) concurrency: NonZeroUsize,
    pub(crate) max_deliveries: u32,
    pub(crate) max_envelope_bytes: usize,
    pub(crate) reply_ttl: Duration,
    /// `None`: the default (see [`DEFAULT_CONSUMER_EXPIRY`]).
    pub(crate) consumer_expiry: Option<Duration>,
    /// Replies and dead letters count as written once this many replicas have them.
    pub(crate) durability: Option<crate::settings::Durability>,
}

impl Settings {
    pub(crate) fn new(key_prefix: String) -> Self {
        Self {
            key_prefix,
            instance_id: uuid::Uuid::new_v4().to_string(),
            claim_idle: DEFAULT_CONSUMER_CLAIM_IDLE,
            reply_maxlen: DEFAULT_REPLY_STREAM_MAXLEN,
            grace: DEFAULT_SHUTDOWN_GRACE,
            concurrency: NonZeroUsize::new(DEFAULT_CONCURRENCY).unwrap_or(NonZeroUsize::MIN),
            max_deliveries: DEFAULT_MAX_DELIVERIES,
            max_envelope_bytes: DEFAULT_MAX_ENVELOPE_BYTES,
            reply_ttl: DEFAULT_REPLY_STREAM_TTL,
            consumer_expiry: None,
            durability: None,
        }
    }

    /// Every value that cannot work is an error naming the setting.
    pub(crate) fn check(&self) -> Result<(), TransportError> {
        let bad = |msg: String| Err(TransportError::Config(msg));
        check_key_prefix(&self.key_prefix)?;
        check_instance_id(&self.instance_id)?;
        if self.claim_idle < MIN_CONSUMER_CLAIM_IDLE {
            return bad(format!(
                "consumer claim idle (consumer_claim_idle) must be at least {MIN_CONSUMER_CLAIM_IDLE:?}, got {:?}: \
                 live entries are refreshed every third of it, and a shorter one lets other servers reclaim live work",
                self.claim_idle
            ));
        }
        if self.reply_maxlen == 0 {
            return bad(
                "reply_stream_maxlen must be at least 1 (0 would trim every reply away)".into(),
            );
        }
        if self.max_deliveries == 0 {
            return bad("max_deliveries must be at least 1".into());
        }
        if self.max_envelope_bytes == 0 {
            return bad("max_envelope_bytes must be at least 1".into());
        }
        if self.reply_ttl < Duration::from_millis(1) {
            return bad("reply_stream_ttl must be at least 1 ms".into());
        }
        if let Some(expiry) = self
            .consumer_expiry
            .filter(|e| *e < self.liveness_window() * 2)
        {
            return bad(format!(
                "consumer_expiry must be at least twice the consumer liveness window ({:?}), got {expiry:?}",
                self.liveness_window() * 2,
            ));
        }
        Ok(())
    }

    /// After how long idle a consumer with nothing pending is removed.
    pub(crate) fn consumer_expiry(&self) -> Duration {
        self.consumer_expiry
            .unwrap_or_else(|| DEFAULT_CONSUMER_EXPIRY.max(self.liveness_window() * 2))
    }

    /// How often a consumer loop looks for entries to reclaim: `max(1 s, claim_idle / 4)`, as
    /// the 0.1.9 servers do.
    pub(crate) fn reclaim_period(&self) -> Duration {
        (self.claim_idle / 4).max(Duration::from_secs(1))
    }

    /// How recently a consumer must have talked to Redis to count as alive: the claim idle
    /// plus half a reclaim period (a live 0.1.9 server touches its consumer once per reclaim
    /// period; a live Rust server every third of the claim idle).
    pub(crate) fn liveness_window(&self) -> Duration {
        self.claim_idle + self.reclaim_period() / 2
    }
}
