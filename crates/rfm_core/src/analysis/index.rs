//! The index of a wide table (see `state::WideTable`): customer key → entry number.
//!
//! A row of a wide state reads two places at random: the key's slot in the index, then the
//! customer's 64-byte entry. With a general hash table the slot is only found by looking
//! it up, so every row waits for that read before the next one starts. Here the slots are
//! in buckets of one cache line each, and the bucket of a key is known from its hash alone:
//! the state computes the hashes of a batch of rows, asks the CPU for all their buckets
//! ([`Index::prefetch`]), and only then looks the rows up, so that the reads overlap.
//!
//! A bucket holds five slots. A key goes to the first bucket with room from its home bucket
//! on (`hash & mask`, then the next ones, wrapping); every bucket passed over gets its
//! `overflow` flag, so a lookup stops at the first bucket without it. Nothing is ever
//! removed, so the flags stay true. The index grows (doubles) before it is seven-eighths
//! full, as `hashbrown` does: with 12.8 bytes a slot, about the memory of its 12-byte
//! slots and control bytes.

/// Slots per bucket.
const SLOTS: usize = 5;

/// One cache line: five (key, entry number) slots, how many are used, and whether a key
/// whose home is here or before was put further on.
#[derive(Debug, Clone, Copy)]
#[repr(C, align(64))]
struct Bucket {
    keys: [u64; SLOTS],
    idx: [u32; SLOTS],
    len: u8,
    overflow: bool,
}

const EMPTY: Bucket = Bucket {
    keys: [0; SLOTS],
    idx: [0; SLOTS],
    len: 0,
    overflow: false,
};

/// Keys (a bigint as a state stores it, or a text key's hash) and their entry numbers.
#[derive(Debug, Default)]
pub(super) struct Index {
    buckets: Vec<Bucket>,
    len: usize,
}

impl Index {
    /// Keys in the index.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Bytes allocated.
    pub(super) fn allocation_size(&self) -> usize {
        self.buckets.capacity() * std::mem::size_of::<Bucket>()
    }

    /// Whether one more key needs the index to grow first.
    #[inline]
    pub(super) fn is_full(&self) -> bool {
        (self.len + 1) * 8 > self.buckets.len() * SLOTS * 7
    }

    #[inline]
    fn home(&self, hash: u64) -> usize {
        hash as usize & (self.buckets.len().wrapping_sub(1))
    }

    /// Asks the CPU to fetch the home bucket of `hash` into its cache, without waiting.
    #[inline]
    pub(super) fn prefetch(&self, hash: u64) {
        if let Some(b) = self.buckets.get(self.home(hash)) {
            super::prefetch(b);
        }
    }

    /// The entry number of the key with `hash` for which `eq(key, entry number)` holds.
    #[inline]
    pub(super) fn find(&self, hash: u64, mut eq: impl FnMut(u64, u32) -> bool) -> Option<u32> {
        if self.buckets.is_empty() {
            return None;
        }
        let mask = self.buckets.len() - 1;
        let mut b = self.home(hash);
        loop {
            let bucket = &self.buckets[b];
            for s in 0..bucket.len as usize {
                if eq(bucket.keys[s], bucket.idx[s]) {
                    return Some(bucket.idx[s]);
                }
            }
            if !bucket.overflow {
                return None;
            }
            b = (b + 1) & mask;
        }
    }

    /// Adds a key that is not in the index; [`Index::grow`] must have made room
    /// ([`Index::is_full`] false).
    #[inline]
    pub(super) fn insert(&mut self, hash: u64, key: u64, idx: u32) {
        debug_assert!(!self.is_full());
        let mask = self.buckets.len() - 1;
        let mut b = self.home(hash);
        loop {
            let bucket = &mut self.buckets[b];
            let n = bucket.len as usize;
            if n < SLOTS {
                bucket.keys[n] = key;
                bucket.idx[n] = idx;
                bucket.len += 1;
                self.len += 1;
                return;
            }
            bucket.overflow = true;
            b = (b + 1) & mask;
        }
    }

    /// Doubles the buckets (at least 4) and puts every key in again; `hash` gives the
    /// hash of a stored key.
    pub(super) fn grow(&mut self, hash: impl Fn(u64) -> u64) {
        let n = (self.buckets.len() * 2).max(4);
        let old = std::mem::replace(&mut self.buckets, vec![EMPTY; n]);
        self.len = 0;
        for bucket in &old {
            for s in 0..bucket.len as usize {
                let key = bucket.keys[s];
                self.insert(hash(key), key, bucket.idx[s]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mix(k: u64) -> u64 {
        // a fixed hash with good low bits (splitmix64's finalizer)
        let mut z = k.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn add(ix: &mut Index, hash: impl Fn(u64) -> u64 + Copy, key: u64, idx: u32) {
        if ix.is_full() {
            ix.grow(hash);
        }
        ix.insert(hash(key), key, idx);
    }

    #[test]
    fn a_bucket_is_one_cache_line() {
        assert_eq!(std::mem::size_of::<Bucket>(), 64);
        assert_eq!(std::mem::align_of::<Bucket>(), 64);
    }

    #[test]
    fn finds_every_key_and_no_other_through_growth() {
        let mut ix = Index::default();
        assert_eq!(ix.find(mix(1), |k, _| k == 1), None);
        let keys: Vec<u64> = (0..50_000u64).map(|i| i * 7 + 3).collect();
        for (i, &k) in keys.iter().enumerate() {
            add(&mut ix, mix, k, i as u32);
            // the key just added and an early one are found at once
            assert_eq!(ix.find(mix(k), |x, _| x == k), Some(i as u32));
            assert_eq!(ix.find(mix(keys[0]), |x, _| x == keys[0]), Some(0));
        }
        assert_eq!(ix.len(), keys.len());
        for (i, &k) in keys.iter().enumerate() {
            assert_eq!(ix.find(mix(k), |x, _| x == k), Some(i as u32), "key {k}");
            assert_eq!(
                ix.find(mix(k + 1), |x, _| x == k + 1),
                None,
                "absent {}",
                k + 1
            );
        }
        // never more than seven-eighths full, and twice the buckets at most after growth
        assert!(ix.len() * 8 <= ix.buckets.len() * SLOTS * 7);
        assert!(ix.len() * 8 * 2 > ix.buckets.len() * SLOTS * 7);
    }

    #[test]
    fn colliding_hashes_overflow_into_the_next_buckets_and_wrap() {
        // every key has the same home: the last bucket, so the probe wraps to the first
        let mut ix = Index::default();
        let last = |_: u64| u64::MAX;
        for k in 0..30u64 {
            add(&mut ix, last, k, k as u32 + 100);
        }
        for k in 0..30u64 {
            assert_eq!(ix.find(u64::MAX, |x, _| x == k), Some(k as u32 + 100));
        }
        assert_eq!(ix.find(u64::MAX, |x, _| x == 30), None);
        // a key whose home is an untouched bucket is not found in the overflowing ones
        let free = ix.buckets.iter().position(|b| b.len == 0 && !b.overflow);
        if let Some(f) = free {
            assert_eq!(ix.find(f as u64, |x, _| x < 30), None);
        }
    }

    #[test]
    fn equal_keys_are_told_apart_by_eq_only() {
        // keys of one hash: find returns the one eq accepts, whatever the order
        let mut ix = Index::default();
        let same = |_: u64| 42;
        for k in [5u64, 9, 1, 7] {
            add(&mut ix, same, k, (k * 10) as u32);
        }
        for k in [1u64, 5, 7, 9] {
            assert_eq!(ix.find(42, |x, _| x == k), Some((k * 10) as u32));
        }
    }
}
