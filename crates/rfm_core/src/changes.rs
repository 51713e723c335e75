//! The customers whose segment differs between two runs of a managed segmentation: what a
//! refresh writes to its history. Both runs are `rfm.analysis` values; a customer's segment
//! is its scheme segment, or for ABC segmentations its tier, and the excluded customers of a
//! run with a default segment have that one. Keys are compared as the value stores them
//! (integers as integers), and segment names are interned, so that comparing a million
//! customers allocates only for the customers that changed.

use crate::analysis::{Customers, Key, Money, Snapshot};
use crate::error::Result;
use std::collections::HashMap;

/// How a run's customers become segments.
#[derive(Debug, Clone, Copy)]
pub struct Reading<'a> {
    /// The ABC tier is the segment (an ABC segmentation), else the scheme's segment.
    pub abc: bool,
    /// The segment of the excluded customers kept in the value, if any.
    pub default_segment: Option<&'a str>,
}

/// One customer whose segment changed: entered (`from` None), left (`to` None) or moved.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub key: String,
    pub from: Option<String>,
    pub to: Option<String>,
    /// The customer's monetary value in the new run (None when it left or is excluded).
    pub monetary: Option<Money>,
    /// What each run said of the customer (None where it was not among its customers):
    /// scores and metrics before and after, which explain the move.
    pub before: Option<Snapshot>,
    pub after: Option<Snapshot>,
}

#[derive(Hash, PartialEq, Eq)]
enum OwnedKey {
    Int(i64),
    Text(Box<[u8]>),
}

impl OwnedKey {
    fn of(k: Key) -> OwnedKey {
        match k {
            Key::Int(i) => OwnedKey::Int(i),
            Key::Text(t) => OwnedKey::Text(t.into()),
        }
    }

    fn text(&self) -> String {
        match self {
            OwnedKey::Int(i) => Customers::key_text(Key::Int(*i)),
            OwnedKey::Text(t) => Customers::key_text(Key::Text(t)),
        }
    }
}

/// Segment names by small numbers (0: no segment).
#[derive(Default)]
struct Names(Vec<String>);

impl Names {
    fn id(&mut self, name: Option<&str>) -> u16 {
        let Some(name) = name else { return 0 };
        match self.0.iter().position(|n| n == name) {
            Some(i) => i as u16 + 1,
            None => {
                self.0.push(name.to_string());
                self.0.len() as u16
            }
        }
    }

    fn name(&self, id: u16) -> Option<String> {
        (id > 0).then(|| self.0[id as usize - 1].clone())
    }
}

fn segment<'a>(rd: Reading, segment: Option<&'a str>, tier: Option<&'a str>) -> Option<&'a str> {
    if rd.abc {
        tier
    } else {
        segment
    }
}

/// The changes from `old` (None before the first run) to `new`: the new run's customers in
/// its order, then its excluded customers, then the customers that left, by key.
pub fn changes(old: Option<(&[u8], Reading)>, new: &[u8], rd: Reading) -> Result<Vec<Change>> {
    let mut names = Names::default();
    let mut before: HashMap<OwnedKey, u16> = HashMap::new();
    if let Some((bytes, old_rd)) = old {
        let c = crate::analysis::Analysis::customers(bytes)?;
        before.reserve(c.size_hint().0);
        c.for_each_raw(|k, s, t, _| {
            let id = names.id(segment(old_rd, s, t));
            before.insert(OwnedKey::of(k), id);
        });
        if let Some(d) = old_rd.default_segment {
            let id = names.id(Some(d));
            c.for_each_excluded_raw(|k| {
                before.insert(OwnedKey::of(k), id);
            });
        }
    }
    let mut out = Vec::new();
    let c = crate::analysis::Analysis::customers(new)?;
    // the keys of the changes, to read what the old run said of them afterwards
    let mut changed: HashMap<OwnedKey, usize> = HashMap::new();
    let mut take = |k: Key, to: u16, after: Option<Snapshot>, names: &Names| {
        let owned = OwnedKey::of(k);
        let from = before.remove(&owned).unwrap_or(0);
        if from != to {
            out.push(Change {
                key: owned.text(),
                from: names.name(from),
                to: names.name(to),
                monetary: after.map(|a| a.monetary),
                before: None,
                after,
            });
            if old.is_some() {
                changed.insert(owned, out.len() - 1);
            }
        }
    };
    c.for_each_snapshot(|k, s, t, snap| {
        let to = names.id(segment(rd, s, t));
        take(k, to, Some(snap), &names);
    });
    if let Some(d) = rd.default_segment {
        let id = names.id(Some(d));
        c.for_each_excluded_raw(|k| take(k, id, None, &names));
    }
    let mut left: Vec<(OwnedKey, u16)> = before.into_iter().filter(|(_, id)| *id > 0).collect();
    left.sort_by_cached_key(|(k, _)| k.text());
    for (k, id) in left {
        out.push(Change {
            key: k.text(),
            from: names.name(id),
            to: None,
            monetary: None,
            before: None,
            after: None,
        });
        changed.insert(k, out.len() - 1);
    }
    // a second pass over the old run for the changed customers only: their scores and
    // metrics before (memory for the changes, not for every customer)
    if let (Some((bytes, _)), false) = (old, changed.is_empty()) {
        crate::analysis::Analysis::customers(bytes)?.for_each_snapshot(|k, _, _, snap| {
            if let Some(&i) = changed.get(&OwnedKey::of(k)) {
                out[i].before = Some(snap);
            }
        });
    }
    Ok(out)
}
