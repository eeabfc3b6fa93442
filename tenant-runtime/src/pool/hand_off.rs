//! The permits of a [`TenantPool`](super::TenantPool) (one per connection), and the hand-off
//! of a returned connection to the waiter whose tenant prefers it.
//!
//! With every connection busy, a checkout waits. A plain semaphore wakes the waiters first
//! come, first served, and each takes whatever connection came back: under saturation, tenant
//! affinity is lost and every backend ends up touching every tenant's tables. Here a returned
//! connection goes to the oldest waiter that ranks it first (its rendezvous ranking of the
//! slots); so a tenant keeps to its few connections even when the pool is saturated.
//!
//! When no waiter ranks it first (the tenants' first choices are never evenly loaded: with a
//! few hot tenants, their connections have long lines while others have none), it goes to a
//! waiter of the tenant with the most waiters in the line, the one ranking it best among
//! them: a hot tenant's few statements are the likeliest to be cached on any connection
//! already, and spreading the hot tenants is what balances the load. Only if every waiting
//! tenant waits once does it go to the waiter ranking it best (the oldest among equals).
//! Measured on the Zipf bench (10,000 tenants, 64 tasks, 16 connections): without the hot
//! tenants first, 29 % of hand-offs went to a waiter that did not rank the connection first,
//! and statements run off their tenant's first choice missed the statement cache 31 % of the
//! time (22 % on it); with them, 72 % of statements ran on their first choice (67 % before).
//!
//! With a spread (`TenantPoolBuilder::affinity_spread`), a checkout with a ranking takes
//! only a slot it ranks under the spread, widened by one for each slot its tenant holds
//! (a hot tenant's concurrent checkouts spread out; a tenant's own checkouts never wait for
//! each other), and waits for one of those while others are idle:
//! the hand-off then assigns the slots itself (it knows which are held), and a returned slot
//! goes only to a waiter that may take it, else stays free. So a tenant's statements never
//! land on a connection outside its few, where they would miss the statement cache and push
//! out the statements of that connection's own tenants.
//!
//! Fairness is bounded: a waiter passed over `max_passes` times (4 per connection of the
//! pool) is served next, whatever its ranking.
//!
//! Why 4 per connection: a waiter whose first choice is one of `n` busy connections waits
//! for that one to come back, about `n` hand-offs on average; after `4n` hand-offs it has
//! missed it in only `(1 - 1/n)^(4n)`, about 2 %, of cases. At a few thousand statements a
//! second, `4n` hand-offs are a few milliseconds: the longest extra wait.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use smallvec::SmallVec;
use tokio::sync::oneshot;

/// The permits and the line of waiters.
pub(super) struct HandOff {
    state: Mutex<State>,
    /// How many later waiters may be served before a waiter (see the module doc).
    max_passes: u32,
    /// The spread: a caller with a ranking takes only the slots it ranks under it, plus one
    /// for each slot its tenant holds (then the hand-off assigns the slots, see
    /// `State::held`); `None`: any slot.
    spread: Option<u8>,
}

struct State {
    /// Permits no one holds (only while no one waits); unused with a spread.
    free: usize,
    /// With a spread: who holds each slot's permit (`held[slot]`); empty without.
    held: Vec<Holder>,
    closed: bool,
    next_id: u64,
    /// Oldest first.
    waiters: VecDeque<Waiter>,
}

struct Waiter {
    id: u64,
    /// The waiter's tenant (a hash of its schema), if it ranks the slots.
    tenant: Option<u64>,
    /// The waiter's rank of each slot (`ranks[slot]`, 0 = its first choice); empty: no
    /// preference (every slot is as good as its first choice).
    ranks: SmallVec<[u8; 32]>,
    /// Hand-offs that went to a later waiter.
    passed: u32,
    grant: oneshot::Sender<Option<usize>>,
}

/// Who holds a slot's permit, with a spread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Holder {
    Free,
    /// A caller of this tenant (`None`: a caller without a ranking).
    Held(Option<u64>),
}

/// The slots `tenant`'s callers hold (0 for a caller without a ranking).
fn in_use(held: &[Holder], tenant: Option<u64>) -> u8 {
    match tenant {
        Some(_) => held
            .iter()
            .filter(|&&h| h == Holder::Held(tenant))
            .count()
            .try_into()
            .unwrap_or(u8::MAX),
        None => 0,
    }
}

/// Which tenants hold slots and how many each, counted once per returned connection: the
/// line's waiters are mostly of a few hot tenants, and each would count the slots again. A
/// 64-bit mask of their hashes (a bit per `tenant % 64`) answers "none" for most tenants
/// without a lookup.
struct Holders {
    mask: u64,
    counts: SmallVec<[(u64, u8); 16]>,
}

impl Holders {
    fn of(held: &[Holder]) -> Holders {
        let mut holders = Holders {
            mask: 0,
            counts: SmallVec::new(),
        };
        for holder in held {
            if let Holder::Held(Some(tenant)) = *holder {
                holders.mask |= Holders::bit(tenant);
                match holders.counts.iter_mut().find(|(t, _)| *t == tenant) {
                    Some((_, count)) => *count = count.saturating_add(1),
                    None => holders.counts.push((tenant, 1)),
                }
            }
        }
        holders
    }

    fn bit(tenant: u64) -> u64 {
        1 << (tenant % 64)
    }

    /// The slots `tenant`'s callers hold, as [`in_use`] counts them.
    fn in_use(&self, tenant: Option<u64>) -> u8 {
        match tenant {
            Some(t) if self.mask & Holders::bit(t) != 0 => self
                .counts
                .iter()
                .find(|(held_by, _)| *held_by == t)
                .map_or(0, |&(_, count)| count),
            _ => 0,
        }
    }
}

impl Waiter {
    fn rank(&self, slot: Option<usize>) -> u8 {
        match slot {
            Some(slot) => rank(&self.ranks, slot),
            None => 0,
        }
    }
}

/// The rank of `slot` in `ranks` (0 for a caller with no preference).
fn rank(ranks: &[u8], slot: usize) -> u8 {
    ranks.get(slot).copied().unwrap_or(0)
}

/// Why [`HandOff::acquire`] returned no permit.
pub(super) enum AcquireError {
    /// The wait passed its bound.
    Timeout,
    /// The pool was closed.
    Closed,
}

/// One permit; given back when dropped, to the waiter that prefers the slot in
/// [`Permit::slot`] (the connection just returned), if anyone waits.
pub(super) struct Permit {
    hand_off: Arc<HandOff>,
    /// The slot whose connection this permit holds, once the checkout took one.
    pub(super) slot: Option<usize>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.hand_off.release(self.slot);
    }
}

/// A granted permit and the slot to try first (a connection just returned there).
pub(super) struct Granted {
    pub(super) permit: Permit,
    pub(super) slot: Option<usize>,
}

impl HandOff {
    /// `max_passes` per permit (see the module doc).
    const PASSES_PER_PERMIT: usize = 4;

    /// One permit per slot; with `spread` (under `permits`), a caller with a ranking takes
    /// only the slots it ranks under it.
    pub(super) fn new(permits: usize, spread: Option<usize>) -> HandOff {
        let spread = spread
            .filter(|&spread| spread < permits)
            .map(|spread| u8::try_from(spread).unwrap_or(u8::MAX));
        HandOff {
            state: Mutex::new(State {
                free: permits,
                held: if spread.is_some() {
                    vec![Holder::Free; permits]
                } else {
                    Vec::new()
                },
                closed: false,
                next_id: 0,
                waiters: VecDeque::new(),
            }),
            max_passes: u32::try_from(permits.saturating_mul(Self::PASSES_PER_PERMIT))
                .unwrap_or(u32::MAX),
            spread,
        }
    }

    /// Whether a permit comes with its slot assigned (with a spread): the checkout then takes
    /// that slot, and no other.
    pub(super) fn assigns_slots(&self) -> bool {
        self.spread.is_some()
    }

    /// Whether a caller may take a slot it ranks `rank`, its tenant holding `own()` slots
    /// already (see [`in_use`]; read only past the spread): one it ranks under the spread,
    /// widened by one for each slot its tenant holds (so a tenant with concurrent checkouts
    /// spreads over as many connections, and one with a checkout at a time keeps to its first
    /// `spread`).
    fn may_take(&self, rank: u8, own: impl FnOnce() -> u8) -> bool {
        self.spread
            .is_none_or(|spread| rank < spread || rank - spread < own())
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Callers waiting for a permit now.
    pub(super) fn waiting(&self) -> usize {
        self.lock().waiters.len()
    }

    /// No more permits: waiters and later callers get [`AcquireError::Closed`].
    pub(super) fn close(&self) {
        let waiters = {
            let mut state = self.lock();
            state.closed = true;
            std::mem::take(&mut state.waiters)
        };
        // Their senders dropped: each waiter wakes to a closed channel.
        drop(waiters);
    }

    /// A permit: a free one at once, else waits (at most `wait`) for one to be handed over.
    /// `ranks` gives the caller's rank of each slot (`ranks()[slot]`, 0 = first choice; empty:
    /// no preference), computed only if the caller has to wait; `tenant` tells the waiters of
    /// one tenant (a hash of its schema; `None` with no preference).
    pub(super) async fn acquire(
        self: &Arc<Self>,
        tenant: Option<u64>,
        ranks: impl FnOnce() -> SmallVec<[u8; 32]>,
        wait: Option<Duration>,
    ) -> Result<Granted, AcquireError> {
        let (id, receiver) = {
            let mut state = self.lock();
            if state.closed {
                return Err(AcquireError::Closed);
            }
            let ranks = if self.assigns_slots() {
                let ranks = ranks();
                let own = in_use(&state.held, tenant);
                // The free slot it ranks best, among those it may take.
                let free = (0..state.held.len())
                    .filter(|&slot| {
                        state.held[slot] == Holder::Free
                            && self.may_take(rank(&ranks, slot), || own)
                    })
                    .min_by_key(|&slot| rank(&ranks, slot));
                if let Some(slot) = free {
                    state.held[slot] = Holder::Held(tenant);
                    return Ok(Granted {
                        permit: self.permit(Some(slot)),
                        slot: Some(slot),
                    });
                }
                ranks
            } else {
                if state.free > 0 {
                    state.free -= 1;
                    return Ok(Granted {
                        permit: self.permit(None),
                        slot: None,
                    });
                }
                ranks()
            };
            let (grant, receiver) = oneshot::channel();
            let id = state.next_id;
            state.next_id += 1;
            state.waiters.push_back(Waiter {
                id,
                tenant,
                ranks,
                passed: 0,
                grant,
            });
            (id, receiver)
        };
        let mut queued = Queued {
            hand_off: self,
            id,
            receiver,
            granted: false,
        };
        let received = match wait {
            Some(wait) => match tokio::time::timeout(wait, &mut queued.receiver).await {
                Ok(received) => received,
                Err(_elapsed) => return Err(AcquireError::Timeout),
            },
            None => (&mut queued.receiver).await,
        };
        match received {
            Ok(slot) => {
                queued.granted = true;
                // With a spread the slot is this permit's: given back with it.
                let held = slot.filter(|_| self.assigns_slots());
                Ok(Granted {
                    permit: self.permit(held),
                    slot,
                })
            }
            Err(_closed) => Err(AcquireError::Closed),
        }
    }

    fn permit(self: &Arc<Self>, slot: Option<usize>) -> Permit {
        Permit {
            hand_off: Arc::clone(self),
            slot,
        }
    }

    /// A permit comes back (with the connection of `slot`, if it held one): to the waiter that
    /// ranks `slot` best (with a spread, among those that may take it), else to the free ones.
    fn release(&self, slot: Option<usize>) {
        let mut state = self.lock();
        let assigned = slot.filter(|_| self.assigns_slots());
        if let Some(slot) = assigned {
            state.held[slot] = Holder::Free;
        }
        loop {
            let State { waiters, held, .. } = &mut *state;
            let takers = self.takers(waiters, slot, held);
            let Some(chosen) = self.choose(&takers) else {
                if assigned.is_none() {
                    state.free += 1;
                }
                return;
            };
            for taker in takers.iter().take_while(|taker| taker.position < chosen) {
                waiters[taker.position].passed += 1;
            }
            let waiter = waiters.remove(chosen).expect("chosen from the line");
            if let Some(slot) = assigned {
                held[slot] = Holder::Held(waiter.tenant);
            }
            // Sent under the lock: a waiter that gives up (see `Queued`) either is still in
            // the line or finds this grant in its channel.
            if waiter.grant.send(slot).is_ok() {
                return;
            }
            if let Some(slot) = assigned {
                held[slot] = Holder::Free;
            }
            // Its caller is gone without dequeuing (cannot happen but through a panic
            // inside the lock); try the next one.
        }
    }

    /// The `waiters` that may take `slot` (see the spread), oldest first: one pass over the
    /// line, which [`HandOff::choose`] and the passes then read (the line is as long as the
    /// callers waiting, tens under saturation, and each release reads it under the lock).
    fn takers(
        &self,
        waiters: &VecDeque<Waiter>,
        slot: Option<usize>,
        held: &[Holder],
    ) -> SmallVec<[Taker; 16]> {
        let holders = Holders::of(held);
        waiters
            .iter()
            .enumerate()
            .filter(|(_, w)| {
                slot.is_none_or(|slot| {
                    self.may_take(rank(&w.ranks, slot), || holders.in_use(w.tenant))
                })
            })
            .map(|(position, w)| Taker {
                position,
                tenant: w.tenant,
                rank: w.rank(slot),
                starved: w.passed >= self.max_passes,
            })
            .collect()
    }

    /// The waiter to hand the slot to, among the `takers` (those that may take it, oldest
    /// first): the oldest one passed over `max_passes` times, else the oldest that ranks the
    /// slot first, else one of the tenant with the most waiters (at least 2) ranking the slot
    /// best, else the one ranking it best (the oldest among equals everywhere). Its position in
    /// the line.
    fn choose(&self, takers: &[Taker]) -> Option<usize> {
        if let Some(starved) = takers.iter().find(|t| t.starved) {
            return Some(starved.position);
        }
        let best = takers.iter().min_by_key(|t| (t.rank, t.position))?;
        // Ranking it first, or one tenant waiting (or none with a preference): nothing to
        // spread.
        if best.rank == 0 || takers.iter().all(|t| t.tenant == best.tenant) {
            return Some(best.position);
        }
        Some(hottest(takers).unwrap_or(best.position))
    }
}

/// A waiter that may take a returned slot (see [`HandOff::takers`]).
#[derive(Clone, Copy)]
struct Taker {
    /// In the line.
    position: usize,
    tenant: Option<u64>,
    /// Its rank of the slot.
    rank: u8,
    /// Passed over `max_passes` times.
    starved: bool,
}

/// Of the `takers`, the one of the tenant with the most of them (at least 2) that ranks the
/// slot best, the oldest among equals (its position in the line); `None` if no tenant waits
/// more than once.
fn hottest(takers: &[Taker]) -> Option<usize> {
    // (tenant, rank of the slot, position), grouped by tenant, each group best first.
    let mut by_tenant: SmallVec<[(u64, u8, usize); 64]> = takers
        .iter()
        .filter_map(|t| Some((t.tenant?, t.rank, t.position)))
        .collect();
    by_tenant.sort_unstable();
    // The most waiters first, then the best rank of the slot, then the oldest.
    by_tenant
        .chunk_by(|a, b| a.0 == b.0)
        .filter(|group| group.len() >= 2)
        .min_by_key(|group| (std::cmp::Reverse(group.len()), group[0].1, group[0].2))
        .map(|group| group[0].2)
}

/// A caller in the line. Dropped without its grant taken (a timeout, the caller's future
/// dropped), it leaves the line, or passes on a grant already sent to it.
struct Queued<'a> {
    hand_off: &'a HandOff,
    id: u64,
    receiver: oneshot::Receiver<Option<usize>>,
    granted: bool,
}

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        if self.granted {
            return;
        }
        let mut state = self.hand_off.lock();
        if let Some(k) = state.waiters.iter().position(|w| w.id == self.id) {
            state.waiters.remove(k);
            return;
        }
        drop(state);
        // Not in the line: a grant was sent (under the lock) and is in the channel, or the
        // pool was closed.
        if let Ok(slot) = self.receiver.try_recv() {
            self.hand_off.release(slot);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ranks(order: &[usize]) -> impl FnOnce() -> SmallVec<[u8; 32]> + '_ {
        move || {
            let mut ranks: SmallVec<[u8; 32]> = SmallVec::from_elem(0, order.len());
            for (rank, &slot) in order.iter().enumerate() {
                ranks[slot] = rank as u8;
            }
            ranks
        }
    }

    fn granted(result: Result<Granted, AcquireError>) -> Granted {
        match result {
            Ok(granted) => granted,
            Err(AcquireError::Timeout) => panic!("timed out"),
            Err(AcquireError::Closed) => panic!("closed"),
        }
    }

    #[tokio::test]
    async fn a_returned_slot_goes_to_the_waiter_that_ranks_it_first() {
        let hand_off = Arc::new(HandOff::new(2, None));
        let mut a = granted(hand_off.acquire(None, SmallVec::new, None).await).permit;
        let mut b = granted(hand_off.acquire(None, SmallVec::new, None).await).permit;
        a.slot = Some(0);
        b.slot = Some(1);
        // Two waiters: the older prefers slot 0, the younger slot 1.
        let older = tokio::spawn({
            let hand_off = Arc::clone(&hand_off);
            async move { granted(hand_off.acquire(Some(1), ranks(&[0, 1]), None).await).slot }
        });
        while hand_off.waiting() < 1 {
            tokio::task::yield_now().await;
        }
        let younger = tokio::spawn({
            let hand_off = Arc::clone(&hand_off);
            async move { granted(hand_off.acquire(Some(2), ranks(&[1, 0]), None).await) }
        });
        while hand_off.waiting() < 2 {
            tokio::task::yield_now().await;
        }
        // Slot 1 comes back first: the younger waiter, who ranks it first, gets it.
        drop(b);
        let younger = younger.await.unwrap();
        assert_eq!(younger.slot, Some(1));
        assert_eq!(hand_off.waiting(), 1);
        drop(a);
        assert_eq!(older.await.unwrap(), Some(0));
    }

    #[tokio::test]
    async fn a_waiter_passed_over_four_times_per_slot_goes_next() {
        let hand_off = Arc::new(HandOff::new(2, None));
        let mut held = granted(hand_off.acquire(None, SmallVec::new, None).await).permit;
        let other = granted(hand_off.acquire(None, SmallVec::new, None).await).permit;
        held.slot = Some(0);
        // The oldest waiter ranks slot 0 last; each later one ranks it first.
        let oldest = tokio::spawn({
            let hand_off = Arc::clone(&hand_off);
            async move { granted(hand_off.acquire(Some(1), ranks(&[1, 0]), None).await).slot }
        });
        while hand_off.waiting() < 1 {
            tokio::task::yield_now().await;
        }
        for round in 0..8 {
            let later = tokio::spawn({
                let hand_off = Arc::clone(&hand_off);
                async move {
                    let mut permit = granted(
                        hand_off
                            .acquire(Some(10 + round), ranks(&[0, 1]), None)
                            .await,
                    )
                    .permit;
                    permit.slot = Some(0);
                    permit
                }
            });
            while hand_off.waiting() < 2 {
                tokio::task::yield_now().await;
            }
            drop(held);
            held = later.await.unwrap();
            assert_eq!(
                hand_off.waiting(),
                1,
                "round {round}: the later waiter served"
            );
        }
        // Passed over 8 times (4 per slot): the oldest gets the next hand-off.
        let later = tokio::spawn({
            let hand_off = Arc::clone(&hand_off);
            async move { granted(hand_off.acquire(Some(2), ranks(&[0, 1]), None).await).slot }
        });
        while hand_off.waiting() < 2 {
            tokio::task::yield_now().await;
        }
        drop(held);
        assert_eq!(oldest.await.unwrap(), Some(0));
        drop(other);
        // `other` held no connection: its permit comes with no slot to prefer.
        assert_eq!(later.await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_slot_no_waiter_ranks_first_goes_to_the_tenant_waiting_most() {
        let hand_off = Arc::new(HandOff::new(3, None));
        let mut held: Vec<Permit> = Vec::new();
        for slot in 0..3 {
            let mut permit = granted(hand_off.acquire(None, SmallVec::new, None).await).permit;
            permit.slot = Some(slot);
            held.push(permit);
        }
        // In line, oldest first: tenant 1 ranks slot 2 second; tenant 7 waits twice and ranks
        // it last; no one ranks it first.
        let mut waiters = Vec::new();
        for (tenant, order) in [(1, [0, 2, 1]), (7, [1, 0, 2]), (7, [1, 0, 2])] {
            let before = hand_off.waiting();
            let line = Arc::clone(&hand_off);
            waiters.push(tokio::spawn(async move {
                // The permit is kept (returned): dropped, it would go on to the next waiter.
                granted(line.acquire(Some(tenant), ranks(&order), None).await)
            }));
            while hand_off.waiting() == before {
                tokio::task::yield_now().await;
            }
        }
        drop(held.pop()); // slot 2
                          // The first of tenant 7's two waiters got it.
        let hot = tokio::time::timeout(Duration::from_secs(5), waiters.remove(1))
            .await
            .expect("slot 2 handed to tenant 7's first waiter")
            .unwrap();
        assert_eq!(hot.slot, Some(2));
        assert_eq!(hand_off.waiting(), 2);
        drop(held);
        for waiter in waiters {
            waiter.await.unwrap();
        }
        drop(hot);
    }

    #[tokio::test]
    async fn with_a_spread_a_caller_waits_for_its_own_slots_while_others_are_free() {
        let hand_off = Arc::new(HandOff::new(3, Some(1)));
        assert!(hand_off.assigns_slots());
        let acquire = |tenant: u64, order: [usize; 3]| {
            let hand_off = Arc::clone(&hand_off);
            async move {
                granted(
                    hand_off
                        .acquire(Some(tenant), ranks(&order), Some(Duration::ZERO))
                        .await,
                )
            }
        };
        // Tenant 1 holds nothing: it may take only its first choice, slot 0, and takes it.
        let first = acquire(1, [0, 1, 2]).await;
        assert_eq!((first.slot, first.permit.slot), (Some(0), Some(0)));
        // Tenant 2's first choice is slot 0 too: it waits, though slots 1 and 2 are free.
        let waiter = tokio::spawn({
            let hand_off = Arc::clone(&hand_off);
            async move { granted(hand_off.acquire(Some(2), ranks(&[0, 2, 1]), None).await) }
        });
        while hand_off.waiting() < 1 {
            tokio::task::yield_now().await;
        }
        // Tenant 1 holds one: it may take its first two, and gets slot 1 at once; holding
        // two, its first three: slot 2.
        let second = acquire(1, [0, 1, 2]).await;
        assert_eq!(second.slot, Some(1));
        let third = acquire(1, [0, 1, 2]).await;
        assert_eq!(third.slot, Some(2));
        // Slot 2 back: tenant 2's waiter ranks it second and holds nothing, so may not take
        // it; it stays free, and a caller without a ranking takes it.
        drop(third);
        assert_eq!(hand_off.waiting(), 1);
        let any = granted(
            hand_off
                .acquire(None, SmallVec::new, Some(Duration::ZERO))
                .await,
        );
        assert_eq!(any.slot, Some(2));
        // Slot 0 back: to tenant 2's waiter.
        drop(first);
        let waited = waiter.await.unwrap();
        assert_eq!((waited.slot, waited.permit.slot), (Some(0), Some(0)));
        assert_eq!(hand_off.waiting(), 0);
        // All three held: a caller without a ranking waits, and gets the next one back.
        let waiting = tokio::spawn({
            let hand_off = Arc::clone(&hand_off);
            async move { granted(hand_off.acquire(None, SmallVec::new, None).await).slot }
        });
        while hand_off.waiting() < 1 {
            tokio::task::yield_now().await;
        }
        drop(any);
        assert_eq!(waiting.await.unwrap(), Some(2));
        drop((second, waited));
    }

    #[test]
    fn holders_count_each_tenants_slots_as_in_use_does() {
        // Tenants 3 and 67 share a mask bit (67 % 64 = 3); 5 holds none.
        let held = [
            Holder::Held(Some(3)),
            Holder::Free,
            Holder::Held(Some(67)),
            Holder::Held(Some(3)),
            Holder::Held(None),
            Holder::Held(Some(9)),
        ];
        let holders = Holders::of(&held);
        for tenant in [Some(3), Some(67), Some(9), Some(5), Some(131), None] {
            assert_eq!(holders.in_use(tenant), in_use(&held, tenant), "{tenant:?}");
        }
        assert_eq!(holders.in_use(Some(3)), 2);
    }

    #[test]
    fn a_spread_of_every_slot_is_no_spread() {
        assert!(!HandOff::new(4, Some(4)).assigns_slots());
        assert!(!HandOff::new(4, Some(9)).assigns_slots());
        assert!(HandOff::new(4, Some(3)).assigns_slots());
    }

    #[tokio::test]
    async fn a_waiter_that_gives_up_leaves_the_line_and_its_grant_goes_on() {
        let hand_off = Arc::new(HandOff::new(1, None));
        let held = granted(hand_off.acquire(None, SmallVec::new, None).await).permit;
        let timed_out = hand_off
            .acquire(None, SmallVec::new, Some(Duration::from_millis(20)))
            .await;
        assert!(matches!(timed_out, Err(AcquireError::Timeout)));
        assert_eq!(hand_off.waiting(), 0);
        drop(held);
        // The permit came back free: taken at once.
        let again = granted(
            hand_off
                .acquire(None, SmallVec::new, Some(Duration::ZERO))
                .await,
        );
        assert_eq!(again.slot, None);
    }

    #[tokio::test]
    async fn closing_wakes_the_waiters_and_refuses_later_callers() {
        let hand_off = Arc::new(HandOff::new(1, None));
        let _held = granted(hand_off.acquire(None, SmallVec::new, None).await).permit;
        let waiter = tokio::spawn({
            let hand_off = Arc::clone(&hand_off);
            async move {
                matches!(
                    hand_off.acquire(None, SmallVec::new, None).await,
                    Err(AcquireError::Closed)
                )
            }
        });
        while hand_off.waiting() < 1 {
            tokio::task::yield_now().await;
        }
        hand_off.close();
        assert!(waiter.await.unwrap());
        assert!(matches!(
            hand_off.acquire(None, SmallVec::new, None).await,
            Err(AcquireError::Closed)
        ));
    }
}
