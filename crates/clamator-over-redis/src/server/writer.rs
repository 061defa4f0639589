//! The writer of a service: every finished entry goes through it. It writes replies and dead
//! letters first and acks (`XACK` + `XDEL`) only the entries whose writes succeeded, retrying
//! what failed for a reason that can pass (connection lost, `LOADING`, `OOM`) within the
//! request's deadline. An entry whose reply can never be written (`WRONGTYPE`, `NOPERM`) is
//! dead-lettered with the reason; one it gives up on stays pending, for another delivery.
//!
//! It sends what is ready in one round trip and never waits for a batch to fill.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::conn::Conn;
use clamator_protocol::transport::{Backoff, ServerCounters, Slot};
use clamator_protocol::Intake;
use redis::Value;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::task_tracker::TaskTrackerToken;

use super::service::InflightGuard;
use super::shared::Shared;
use crate::entry::Entry;
use crate::errors::{is_denied, is_transient};
use crate::settings::millis;

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
    pub(crate) _slot: Option<Slot>,
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

/// What a writer round leaves for the next.
struct Round {
    /// Written (or with nothing to write) and not acked yet.
    written: Vec<Done>,
    /// To write again.
    retry: Vec<Done>,
    /// Something failed: back off before the next round.
    trouble: bool,
}

pub(crate) struct Writer {
    pub(crate) service: String,
    pub(crate) stream: String,
    pub(crate) group: String,
    pub(crate) dead_stream: String,
    pub(crate) reply_maxlen: usize,
    pub(crate) reply_ttl: Duration,
    pub(crate) durability: Option<crate::settings::Durability>,
    pub(crate) conn: Conn,
    pub(crate) shared: Arc<Shared>,
    pub(crate) intake: Intake,
    pub(crate) rx: mpsc::UnboundedReceiver<Done>,
    /// Cancelled when the server is gone (after its drain, or dropped).
    pub(crate) background: CancellationToken,
    /// Cancelled when the drain window is over: give up retrying.
    pub(crate) shutdown: CancellationToken,
}

impl Writer {
    pub(crate) async fn run(mut self) {
        // written, waiting for their acks (sent with the next round trip)
        let mut unacked: Vec<Done> = Vec::new();
        // writes to do again after a backoff
        let mut retry: Vec<Done> = Vec::new();
        let mut backoff = Backoff::new();
        loop {
            let mut batch = std::mem::take(&mut retry);
            if batch.is_empty() && unacked.is_empty() {
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
            let round = self.round(std::mem::take(&mut unacked), batch).await;
            unacked = round.written;
            retry = round.retry;
            if !round.trouble {
                backoff.reset();
                continue;
            }
            retry.retain(|done| self.keep_trying(done));
            if self
                .shutdown
                .run_until_cancelled(tokio::time::sleep(backoff.next_delay()))
                .await
                .is_none()
            {
                for done in retry.drain(..).chain(unacked.drain(..)) {
                    self.give_up(&done, "the server stopped");
                }
            }
        }
    }

    fn counters(&self) -> &ServerCounters {
        self.intake.counters()
    }

    fn keep_trying(&self, done: &Done) -> bool {
        if self.shutdown.is_cancelled() {
            self.give_up(done, "the server stopped");
            false
        } else if Instant::now() >= done.retry_until {
            self.give_up(done, "its deadline passed");
            false
        } else {
            self.counters().write_retry(&self.service);
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

    /// One round trip: `PEXPIRE` of the reply streams written in the previous round, `XACK` +
    /// `XDEL` of the entries written then (and of this batch's entries that write nothing),
    /// then this batch's dead letters and replies. Returns the entries written now (acked next
    /// round) and those to write again.
    async fn round(&mut self, written: Vec<Done>, batch: Vec<Done>) -> Round {
        let (writes, nothing_to_write): (Vec<Done>, Vec<Done>) =
            batch.into_iter().partition(|d| d.writes() > 0);
        let mut acks = written;
        acks.extend(nothing_to_write);
        let mut cmds = Vec::new();
        let ack_commands = self.ack_cmds(&mut cmds, &acks);
        for done in &writes {
            if let Some(dead) = &done.dead {
                cmds.push(self.dead_letter_cmd(&done.entry, dead));
            }
            if let Some(reply) = done.pending_reply() {
                cmds.push(self.reply_cmd(reply));
            }
        }
        let mut unacked = Vec::new();
        let mut retry = Vec::new();
        let mut trouble = false;
        // One round trip on one node; on a cluster one per node, at once (the acks here are of
        // entries written in an earlier round, so replies still come before their acks).
        // With min_replicas, a WAIT follows each node's writes: a reply the replicas did not
        // confirm is written again, and its entry acked only after.
        match self.conn.each_replicated(&cmds, self.durability).await {
            Err(error) => {
                tracing::warn!(service = %self.service, %error, entries = acks.len() + writes.len(), "writing replies and acks failed; retrying until each call's deadline (entries stay pending meanwhile; check that Redis accepts writes)");
                unacked = acks;
                retry = writes;
                trouble = true;
            }
            Ok(results) => {
                let mut results = results.into_iter();
                let ack_results: Vec<_> = results.by_ref().take(ack_commands).collect();
                if !self.acked(&ack_results, acks.len()) {
                    unacked = acks;
                    trouble = true;
                }
                for done in writes {
                    let dead_result = done.dead.as_ref().map(|_| results.next());
                    let reply_result = done.pending_reply().map(|_| results.next());
                    self.after_write(
                        done,
                        dead_result.flatten(),
                        reply_result.flatten(),
                        &mut unacked,
                        &mut retry,
                    );
                }
            }
        }
        trouble |= !retry.is_empty();
        Round {
            written: unacked,
            retry,
            trouble,
        }
    }

    fn after_write(
        &self,
        mut done: Done,
        dead: Option<redis::RedisResult<Value>>,
        reply: Option<redis::RedisResult<Value>>,
        written: &mut Vec<Done>,
        retry: &mut Vec<Done>,
    ) {
        if let Some(dead_result) = dead {
            match dead_result {
                Ok(_) => {
                    self.counters().dead_lettered(&self.service);
                    if let Some(Err(error)) = &reply {
                        tracing::warn!(service = %self.service, entry_id = %done.entry.id, %error, "could not tell the caller that its request was dead-lettered (its call will time out; the entry is in the dead-letter stream)");
                    }
                    // the caller's reply (if any) went out with it, or is not sent at all
                    done.dead = None;
                    done.reply = done.reply.take().filter(|_| matches!(reply, Some(Ok(_))));
                    mark_written(&mut done);
                    written.push(done);
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
                written.push(done);
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

    /// Adds `PEXPIRE` of the reply streams written to, then one `XACK` and one `XDEL` of every
    /// entry, to `cmds`; returns how many commands it added.
    fn ack_cmds(&self, cmds: &mut Vec<redis::Cmd>, done: &[Done]) -> usize {
        if done.is_empty() {
            return 0;
        }
        let mut added = 0;
        if self.shared.reply_ttl.load(Ordering::Relaxed) {
            let streams: BTreeSet<&str> = done
                .iter()
                .filter_map(|d| d.reply.as_ref().map(|r| r.to.as_str()))
                .collect();
            for stream in streams {
                let mut cmd = redis::cmd("PEXPIRE");
                cmd.arg(stream).arg(millis(self.reply_ttl).max(1));
                cmds.push(cmd);
                added += 1;
            }
        }
        let ids: Vec<&str> = done.iter().map(|d| d.entry.id.as_str()).collect();
        let mut xack = redis::cmd("XACK");
        xack.arg(&self.stream).arg(&self.group).arg(&ids);
        let mut xdel = redis::cmd("XDEL");
        xdel.arg(&self.stream).arg(&ids);
        cmds.push(xack);
        cmds.push(xdel);
        added + 2
    }

    /// Whether the acks went through (`false`: send them again). The `PEXPIRE`s come first,
    /// then `XACK` and `XDEL`.
    fn acked(&self, results: &[redis::RedisResult<Value>], entries: usize) -> bool {
        let Some(expires) = results.len().checked_sub(2) else {
            return true;
        };
        if let Some(error) = results[..expires].iter().find_map(|r| r.as_ref().err()) {
            if is_denied(error) {
                self.shared.reply_ttl.store(false, Ordering::Relaxed);
                tracing::warn!(service = %self.service, %error, "reply-stream TTLs are off: PEXPIRE is no longer permitted (allow +pexpire, or reply streams of dead clients stay)");
            }
        }
        match results[expires..].iter().find_map(|r| r.as_ref().err()) {
            None => true,
            Some(error) if is_transient(error) => false,
            Some(error) => {
                tracing::error!(service = %self.service, %error, entries,
                    "acking entries failed; they stay pending and will be delivered again (check the Redis user's permissions)");
                true
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
