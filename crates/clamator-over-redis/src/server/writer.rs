//! The writer of a service: every finished entry goes through it. It writes replies and dead
//! letters first and acks (`XACK` + `XDEL`) only the entries whose writes succeeded, retrying
//! what failed for a reason that can pass (connection lost, `LOADING`, `OOM`) within the
//! request's deadline. An entry whose reply can never be written (`WRONGTYPE`, `NOPERM`) is
//! dead-lettered with the reason; one it gives up on stays pending, for another delivery.
//!
//! It sends what is ready in one round trip and never waits for a batch to fill.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::aio::ConnectionManager;
use redis::Value;
use tokio::sync::{mpsc, OwnedSemaphorePermit};
use tokio_util::sync::CancellationToken;
use tokio_util::task::task_tracker::TaskTrackerToken;

use super::service::InflightGuard;
use super::shared::{Counters, Shared};
use crate::config::{is_denied, is_transient, millis, sleep_or_cancel, Backoff};
use crate::entry::Entry;

/// Finished entries written per round trip at most.
const MAX_BATCH: usize = 512;

/// A reply to write: `XADD <to> [MAXLEN ~ N] * type rpc envelope <json>`.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) to: String,
    pub(crate) envelope: String,
    /// The client trims its own reply stream (`reply-trim: client`): no `MAXLEN`, so no reply
    /// is trimmed before the client read it.
    pub(crate) client_trims: bool,
    /// Written already (only its stream's TTL and the ack are left).
    pub(crate) written: bool,
}

/// Why and how an entry goes to the dead-letter stream.
#[derive(Debug)]
pub(crate) struct DeadLetter {
    pub(crate) reason: String,
    pub(crate) deliveries: Option<u64>,
    pub(crate) last_consumer: String,
}

/// What keeps an entry "in flight" until the writer is done with it: its handler slot, its
/// place in the heartbeat, and its place in the server's drain.
#[derive(Debug)]
pub(crate) struct Hold {
    pub(crate) _slot: Option<OwnedSemaphorePermit>,
    pub(crate) _inflight: InflightGuard,
    pub(crate) _token: TaskTrackerToken,
}

/// A finished entry.
#[derive(Debug)]
pub(crate) struct Done {
    pub(crate) entry: Entry,
    pub(crate) reply: Option<Reply>,
    pub(crate) dead: Option<DeadLetter>,
    /// Writes are retried until then (the request's deadline, or a default).
    pub(crate) retry_until: Instant,
    /// Released when the writer is done with the entry.
    pub(crate) _hold: Hold,
}

impl Done {
    fn pending_reply(&self) -> Option<&Reply> {
        self.reply.as_ref().filter(|r| !r.written)
    }

    fn writes(&self) -> usize {
        usize::from(self.pending_reply().is_some()) + usize::from(self.dead.is_some())
    }
}

pub(crate) struct Writer {
    pub(crate) service: String,
    pub(crate) stream: String,
    pub(crate) group: String,
    pub(crate) dead_stream: String,
    pub(crate) reply_maxlen: usize,
    pub(crate) reply_ttl: Duration,
    pub(crate) conn: ConnectionManager,
    pub(crate) shared: Arc<Shared>,
    pub(crate) rx: mpsc::UnboundedReceiver<Done>,
    /// Cancelled when the server is gone (after its drain, or dropped).
    pub(crate) background: CancellationToken,
    /// Cancelled when the drain window is over: give up retrying.
    pub(crate) shutdown: CancellationToken,
}

impl Writer {
    pub(crate) async fn run(mut self) {
        let mut retry: Vec<Done> = Vec::new();
        let mut backoff = Backoff::new();
        loop {
            let mut batch = std::mem::take(&mut retry);
            if batch.is_empty() {
                tokio::select! {
                    biased;
                    done = self.rx.recv() => match done {
                        Some(done) => batch.push(done),
                        None => return,
                    },
                    () = self.background.cancelled() => return,
                }
            }
            while batch.len() < MAX_BATCH {
                match self.rx.try_recv() {
                    Ok(done) => batch.push(done),
                    Err(_) => break,
                }
            }
            retry = self.write(batch).await;
            if retry.is_empty() {
                backoff.reset();
                continue;
            }
            retry.retain(|done| self.keep_trying(done));
            if !retry.is_empty() && !sleep_or_cancel(backoff.next_delay(), &self.shutdown).await {
                for done in retry.drain(..) {
                    self.give_up(&done, "the server stopped");
                }
            }
        }
    }

    fn keep_trying(&self, done: &Done) -> bool {
        if self.shutdown.is_cancelled() {
            self.give_up(done, "the server stopped");
            false
        } else if Instant::now() >= done.retry_until {
            self.give_up(done, "its deadline passed");
            false
        } else {
            Counters::bump(&self.shared.counters.write_retries);
            true
        }
    }

    fn give_up(&self, done: &Done, why: &str) {
        tracing::error!(
            service = %self.service,
            entry_id = %done.entry.id,
            "gave up writing the reply (or ack) of an entry because {why}; it stays pending and will be delivered again after the claim idle time (check that Redis accepts writes)"
        );
    }

    /// One round: writes, then acks of what was written. Returns what must be retried.
    async fn write(&mut self, batch: Vec<Done>) -> Vec<Done> {
        let (writes, mut to_ack): (Vec<Done>, Vec<Done>) =
            batch.into_iter().partition(|d| d.writes() > 0);
        let mut retry = Vec::new();
        if !writes.is_empty() {
            let mut pipe = redis::pipe();
            pipe.ignore_errors();
            for done in &writes {
                if let Some(dead) = &done.dead {
                    pipe.add_command(self.dead_letter_cmd(&done.entry, dead));
                }
                if let Some(reply) = done.pending_reply() {
                    pipe.add_command(self.reply_cmd(reply));
                }
            }
            match pipe
                .query_async::<Vec<redis::RedisResult<Value>>>(&mut self.conn)
                .await
            {
                Err(error) => {
                    tracing::warn!(service = %self.service, %error, entries = writes.len(), "writing replies failed; retrying");
                    retry.extend(writes);
                }
                Ok(results) => {
                    let mut results = results.into_iter();
                    for done in writes {
                        let dead_result = done.dead.as_ref().map(|_| results.next());
                        let reply_result = done.pending_reply().map(|_| results.next());
                        self.after_write(
                            done,
                            dead_result.flatten(),
                            reply_result.flatten(),
                            &mut to_ack,
                            &mut retry,
                        );
                    }
                }
            }
        }
        if !to_ack.is_empty() {
            retry.extend(self.ack(to_ack).await);
        }
        retry
    }

    fn after_write(
        &self,
        mut done: Done,
        dead: Option<redis::RedisResult<Value>>,
        reply: Option<redis::RedisResult<Value>>,
        to_ack: &mut Vec<Done>,
        retry: &mut Vec<Done>,
    ) {
        if let Some(dead_result) = dead {
            match dead_result {
                Ok(_) => {
                    Counters::bump(&self.shared.counters.dead_lettered);
                    if let Some(Err(error)) = &reply {
                        tracing::warn!(service = %self.service, entry_id = %done.entry.id, %error, "could not tell the caller that its request was dead-lettered");
                    }
                    // the caller's reply (if any) went out with it, or is not sent at all
                    done.dead = None;
                    done.reply = done.reply.take().filter(|_| matches!(reply, Some(Ok(_))));
                    mark_written(&mut done);
                    to_ack.push(done);
                }
                Err(e) if is_transient(&e) => retry.push(done),
                Err(error) => {
                    tracing::error!(service = %self.service, entry_id = %done.entry.id, %error, dead_letter_stream = %self.dead_stream,
                        "could not write to the dead-letter stream; the entry stays pending (check the Redis user's permissions on it)");
                }
            }
            return;
        }
        match reply {
            Some(Ok(_)) | None => {
                mark_written(&mut done);
                to_ack.push(done);
            }
            Some(Err(e)) if is_transient(&e) => retry.push(done),
            Some(Err(error)) => {
                let to = done.reply.take().map(|r| r.to).unwrap_or_default();
                let reason = format!("reply could not be written to {to}: {error}");
                tracing::warn!(service = %self.service, entry_id = %done.entry.id, %reason, "dead-lettering an entry whose reply can never be written");
                done.dead = Some(DeadLetter {
                    reason,
                    deliveries: None,
                    last_consumer: String::new(),
                });
                retry.push(done);
            }
        }
    }

    /// `PEXPIRE` of the reply streams written to, then `XACK` and `XDEL` of every entry.
    async fn ack(&mut self, done: Vec<Done>) -> Vec<Done> {
        let ttl = self
            .shared
            .reply_ttl
            .load(std::sync::atomic::Ordering::Relaxed);
        let streams: BTreeSet<&str> = done
            .iter()
            .filter_map(|d| d.reply.as_ref().map(|r| r.to.as_str()))
            .collect();
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        if ttl {
            for stream in &streams {
                pipe.cmd("PEXPIRE")
                    .arg(*stream)
                    .arg(millis(self.reply_ttl).max(1));
            }
        }
        let ids: Vec<&str> = done.iter().map(|d| d.entry.id.as_str()).collect();
        pipe.cmd("XACK")
            .arg(&self.stream)
            .arg(&self.group)
            .arg(&ids);
        pipe.cmd("XDEL").arg(&self.stream).arg(&ids);
        let expires = if ttl { streams.len() } else { 0 };
        match pipe
            .query_async::<Vec<redis::RedisResult<Value>>>(&mut self.conn)
            .await
        {
            Ok(results) => {
                if let Some(error) = results[..expires].iter().find_map(|r| r.as_ref().err()) {
                    if is_denied(error) {
                        self.shared
                            .reply_ttl
                            .store(false, std::sync::atomic::Ordering::Relaxed);
                        tracing::warn!(%error, "reply-stream TTLs are off: PEXPIRE is no longer permitted");
                    }
                }
                if let Some(error) = results[expires..].iter().find_map(|r| r.as_ref().err()) {
                    if is_transient(error) {
                        return done;
                    }
                    tracing::error!(service = %self.service, %error, entries = ids.len(),
                        "acking entries failed; they stay pending and will be delivered again (check the Redis user's permissions)");
                }
                Vec::new()
            }
            Err(error) => {
                tracing::warn!(service = %self.service, %error, entries = ids.len(), "acking entries failed; retrying");
                done
            }
        }
    }

    fn reply_cmd(&self, reply: &Reply) -> redis::Cmd {
        let mut cmd = redis::cmd("XADD");
        cmd.arg(&reply.to);
        if !reply.client_trims {
            cmd.arg("MAXLEN").arg("~").arg(self.reply_maxlen);
        }
        cmd.arg("*")
            .arg("type")
            .arg("rpc")
            .arg("envelope")
            .arg(&reply.envelope);
        cmd
    }

    fn dead_letter_cmd(&self, entry: &Entry, dead: &DeadLetter) -> redis::Cmd {
        tracing::error!(service = %self.service, entry_id = %entry.id, reason = %dead.reason, dead_letter_stream = %self.dead_stream,
            "moving an entry to the dead-letter stream (inspect it with `clamator dlq list`, put it back with `clamator dlq replay`)");
        let mut cmd = redis::cmd("XADD");
        cmd.arg(&self.dead_stream)
            .arg("*")
            .arg("dead-reason")
            .arg(&dead.reason)
            .arg("dead-entry-id")
            .arg(&entry.id);
        if let Some(n) = dead.deliveries {
            cmd.arg("dead-deliveries").arg(n);
        }
        if !dead.last_consumer.is_empty() {
            cmd.arg("dead-last-consumer").arg(&dead.last_consumer);
        }
        for (k, v) in &entry.fields {
            cmd.arg(k.as_slice()).arg(v.as_slice());
        }
        cmd
    }
}

/// Its reply is written: only the stream's TTL and the ack are left.
fn mark_written(done: &mut Done) {
    if let Some(reply) = &mut done.reply {
        reply.written = true;
        reply.envelope = String::new();
    }
}
