//! The pull loop of one served service: pull requests sized to free handler slots, several
//! open at once.
//!
//! Each pull request asks JetStream for up to `n` requests (`n` free slots, reserved for it)
//! with its own reply subject (an inbox subscribed for that pull only), so each delivery is
//! counted against the pull it belongs to. A new pull is sent as soon as a slot is free and
//! nothing is pulled, or when a quarter of the batch cap is free (so a busy server keeps pulls
//! open without sending one per message). A pull ends when it got its `n`, with a `408`
//! (expired) or `409` (consumer deleted, leadership change, limits), with a `503` (no consumer
//! answers), or when nothing was heard of it well after it expired (the NATS server restarted,
//! or the consumer is gone: nats-server does not answer pulls of a consumer it lacks); then its
//! subscription is dropped (nats-server delivers to a pull only while its reply subject has a
//! subscriber) and its unused slots are free again. A `503`, a `409 Consumer Deleted` or a
//! pull never answered makes the loop check the stream and consumer (two JetStream API
//! requests) and create what is missing.
//!
//! Stop: no new pulls; every open pull's subscription is drained (`UNSUB` + `PING`), and every
//! request that arrives before the `PONG` is run, not given back: a stopping server never
//! bounces requests (each bounce would count as a delivery towards `max_deliveries`).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use async_nats::jetstream;
use async_nats::StatusCode;
use clamator_protocol::transport::{Backoff, Slot};
use futures::stream::{SelectAll, Stream, StreamExt};
use futures::FutureExt;
use tokio::time::{Instant, Sleep};
use tokio_util::sync::CancellationToken;

use super::ServiceCtx;

/// Requests pulled per pull request at most (fewer when fewer handler slots are free).
pub(super) const MAX_BATCH: usize = 256;
/// How long a pull request waits at the NATS server for requests to arrive.
const PULL_EXPIRES: Duration = Duration::from_secs(1);
/// A pull neither filled nor ended by the NATS server this long after it expired is taken as
/// lost (the NATS server restarted, or its `408` was lost).
const PULL_LOST_AFTER: Duration = Duration::from_millis(500);
/// For how long after a reconnect the stream is checked for requests acked but not deleted
/// (the consumer's ack floor passes them only once the requests before them are acked), and
/// how often.
const PURGE_CHECKS_AFTER_RECONNECT: Duration = Duration::from_secs(600);
const PURGE_CHECK_EVERY: Duration = Duration::from_secs(10);
/// How long a stopping server waits for its drained pulls to end.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// What an open pull yields.
enum PullEvent {
    /// A delivered request, with the slot reserved for it.
    Request(async_nats::Message, Slot),
    /// The pull expired (`408`): no more requests were waiting.
    Expired,
    /// The pull ended because nobody serves the consumer (`503`), it was deleted (`409`), or
    /// nothing was heard of it well after it expired (the NATS server restarted, and may have
    /// lost the stream): the stream and consumer are checked.
    Check(String),
}

/// One open pull request: its subscription and the slots reserved for what it delivers. Ends
/// (and is dropped, unsubscribing and freeing its unused slots) when filled, ended by the NATS
/// server, or lost.
struct OpenPull {
    sub: async_nats::Subscriber,
    slots: Vec<Slot>,
    lost: Pin<Box<Sleep>>,
    ended: bool,
}

impl Stream for OpenPull {
    type Item = PullEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<PullEvent>> {
        if self.ended || self.slots.is_empty() {
            return Poll::Ready(None);
        }
        if self.lost.poll_unpin(cx).is_ready() {
            self.ended = true;
            return Poll::Ready(Some(PullEvent::Check("no answer to a pull request".into())));
        }
        loop {
            let Some(message) = std::task::ready!(self.sub.poll_next_unpin(cx)) else {
                return Poll::Ready(None);
            };
            match message.status {
                None | Some(StatusCode::OK) => {
                    let slot = self
                        .slots
                        .pop()
                        .expect("a pull with no slot left has ended");
                    return Poll::Ready(Some(PullEvent::Request(message, slot)));
                }
                Some(StatusCode::IDLE_HEARTBEAT) => {}
                Some(status) => {
                    self.ended = true;
                    let description = message.description.unwrap_or_default();
                    if status == StatusCode::NO_RESPONDERS
                        || description.eq_ignore_ascii_case("consumer deleted")
                    {
                        return Poll::Ready(Some(PullEvent::Check(format!(
                            "{status} {description}"
                        ))));
                    }
                    if status == StatusCode::TIMEOUT {
                        return Poll::Ready(Some(PullEvent::Expired));
                    }
                    return Poll::Ready(None);
                }
            }
        }
    }
}

pub(super) struct Puller {
    ctx: Arc<ServiceCtx>,
    pulls: SelectAll<OpenPull>,
    cap: usize,
}

impl Puller {
    pub(super) fn new(ctx: Arc<ServiceCtx>) -> Self {
        let cap = ctx.settings.concurrency.get().min(MAX_BATCH);
        Self {
            ctx,
            pulls: SelectAll::new(),
            cap,
        }
    }

    /// Whether no pull is open.
    fn nothing_pulled(&self) -> bool {
        self.pulls.iter().all(|p| p.ended || p.slots.is_empty())
    }

    /// How many free slots a new pull waits for: one when nothing is pulled, else a quarter of
    /// the cap.
    fn pull_threshold(&self) -> usize {
        if self.nothing_pulled() {
            1
        } else {
            (self.cap / 4).max(1)
        }
    }

    pub(super) async fn run(mut self, stop: CancellationToken) {
        let name = self.ctx.service.name().to_owned();
        let slots = self.ctx.slots.clone();
        let mut backoff = Backoff::new();
        // Set while the stream and consumer are to be checked: no pulls until they are there.
        let mut missing: Option<String> = None;
        let mut warned = false;
        // Set when a pull expired with nothing left to deliver, cleared by the next request:
        // while quiet, freed slots wait until every open pull has ended and are then pulled as
        // one (an idle server keeps one pull open, not one per burst it once served).
        let mut quiet = false;
        let mut connects = self.ctx.connects();
        // After a reconnect: the next check for acked requests not deleted, and until when.
        let mut purge_checks: Option<(Instant, Instant)> = None;
        loop {
            if self.ctx.connects() != connects {
                connects = self.ctx.connects();
                self.ctx.refresh_limits();
                let now = Instant::now();
                purge_checks = Some((
                    now + PURGE_CHECK_EVERY / 2,
                    now + PURGE_CHECKS_AFTER_RECONNECT,
                ));
            }
            let next_purge_check = purge_checks.map(|(next, _)| next);
            let threshold = self.pull_threshold();
            let may_pull = missing.is_none() && (!quiet || self.nothing_pulled());
            tokio::select! {
                biased;
                () = stop.cancelled() => break,
                Some(event) = self.pulls.next(), if !self.pulls.is_empty() => match event {
                    PullEvent::Request(message, slot) => {
                        quiet = false;
                        self.ctx.spawn(
                            jetstream::Message { message, context: self.ctx.js.clone() },
                            slot,
                        );
                    }
                    PullEvent::Expired => {
                        quiet = true;
                        // Idle: the ack floor has caught up; check now rather than at the next
                        // tick (at most every 2 s).
                        if let Some((next, until)) = purge_checks {
                            let last = next.checked_sub(PURGE_CHECK_EVERY);
                            if last.is_none_or(|last| last + PURGE_CHECK_EVERY / 5 < Instant::now()) {
                                purge_checks = Some((Instant::now(), until));
                            }
                        }
                    }
                    PullEvent::Check(why) => missing = Some(why),
                },
                taken = slots.batch_of(threshold, self.cap), if may_pull => {
                    self.pull(taken).await;
                }
                () = tokio::time::sleep_until(next_purge_check.unwrap_or_else(Instant::now)), if next_purge_check.is_some() => {
                    self.remove_acked();
                    purge_checks = purge_checks
                        .map(|(_, until)| (Instant::now() + PURGE_CHECK_EVERY, until))
                        .filter(|(next, until)| next < until);
                }
                () = tokio::time::sleep(backoff.peek()), if missing.is_some() => {
                    let why = missing.take().unwrap_or_default();
                    match self.ctx.ensure_broker_state(&why).await {
                        Ok(()) => {
                            backoff.reset();
                            warned = false;
                        }
                        Err(error) => {
                            if warned {
                                tracing::debug!(service = %name, %error, "stream or consumer check failed again");
                            } else {
                                tracing::warn!(service = %name, %error, %why, "could not check or create the service's stream and consumer; no requests are pulled until it works (retrying with backoff; check that JetStream is enabled and reachable)");
                                warned = true;
                            }
                            backoff.next_delay();
                            missing = Some(why);
                        }
                    }
                }
            }
        }
        // Stop: nothing new is pulled; what the open pulls still deliver before their drain
        // completes is run.
        for pull in self.pulls.iter_mut() {
            let _ = pull.sub.drain().await;
        }
        let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
            while let Some(event) = self.pulls.next().await {
                if let PullEvent::Request(message, slot) = event {
                    let message = jetstream::Message {
                        message,
                        context: self.ctx.js.clone(),
                    };
                    self.ctx.spawn(message, slot);
                }
            }
        })
        .await;
        if drained.is_err() {
            tracing::warn!(service = %name, "pulls did not drain within 5 s; requests delivered after that wait for the ack wait");
        }
    }

    /// Checks the stream for requests acked but not deleted (in the background; one check at a
    /// time).
    fn remove_acked(&self) {
        if self
            .ctx
            .cleaning
            .swap(true, std::sync::atomic::Ordering::AcqRel)
        {
            return;
        }
        let ctx = Arc::clone(&self.ctx);
        tokio::spawn(async move {
            if let Err(error) = ctx.remove_acked().await {
                tracing::debug!(service = ctx.service.name(), %error, "could not check the stream for acked requests after a reconnect");
            }
            ctx.cleaning
                .store(false, std::sync::atomic::Ordering::Release);
        });
    }

    /// Sends a pull request for as many requests as `slots`, on an inbox of its own.
    async fn pull(&mut self, slots: Vec<Slot>) {
        let ctx = &self.ctx;
        let inbox = ctx.client.new_inbox();
        let sub = match ctx.client.subscribe(inbox.clone()).await {
            Ok(sub) => sub,
            Err(error) => {
                // The client is closed: the server is going away.
                tracing::debug!(service = ctx.service.name(), %error, "pull not subscribed");
                return;
            }
        };
        let request = serde_json::json!({
            "batch": slots.len(),
            "expires": PULL_EXPIRES.as_nanos() as u64,
        });
        let subject = format!(
            "$JS.API.CONSUMER.MSG.NEXT.{}.{}",
            ctx.stream, ctx.consumer_name
        );
        let sent = ctx
            .client
            .publish_with_reply(subject, inbox, request.to_string().into())
            .await;
        if let Err(error) = sent {
            tracing::debug!(service = ctx.service.name(), %error, "pull request not sent");
            return;
        }
        self.pulls.push(OpenPull {
            sub,
            slots,
            lost: Box::pin(tokio::time::sleep_until(
                Instant::now() + PULL_EXPIRES + PULL_LOST_AFTER,
            )),
            ended: false,
        });
    }
}
