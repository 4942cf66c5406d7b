//! One shared copy of each value that many cached pods repeat: label keys and values, owner
//! references, the requests of a template's containers. Ten thousand pods of a thousand
//! templates then hold a thousand copies, not ten thousand.

use std::collections::HashSet;
use std::hash::Hash;
use std::sync::Arc;

/// Below this many values, the interner never sweeps.
const MIN_SWEEP: usize = 256;

/// Hands out shared copies; forgets values no one else holds any more.
#[derive(Debug)]
pub struct Interner<T: ?Sized> {
    values: HashSet<Arc<T>>,
    /// How many values were kept by the last sweep.
    kept: usize,
}

impl<T: ?Sized> Default for Interner<T> {
    fn default() -> Self {
        Self {
            values: HashSet::new(),
            kept: 0,
        }
    }
}

impl<T: ?Sized + Hash + Eq> Interner<T>
where
    for<'a> Arc<T>: From<&'a T>,
{
    /// The shared copy of `value`.
    pub fn get(&mut self, value: &T) -> Arc<T> {
        if let Some(shared) = self.values.get(value) {
            return shared.clone();
        }
        let shared: Arc<T> = Arc::from(value);
        self.insert(shared.clone());
        shared
    }

    /// Replaces `value` with the shared copy of what it holds; a value not yet known becomes
    /// the shared copy itself.
    pub fn share(&mut self, value: &mut Arc<T>) {
        match self.values.get(&**value) {
            Some(shared) => *value = shared.clone(),
            None => self.insert(value.clone()),
        }
    }

    fn insert(&mut self, value: Arc<T>) {
        self.values.insert(value);
        // Values whose pods are gone stay until the set has doubled since the last sweep: the
        // sweeps cost O(1) per insert overall, and what is kept stays at most twice what is used.
        if self.values.len() >= MIN_SWEEP.max(2 * self.kept) {
            self.values.retain(|v| Arc::strong_count(v) > 1);
            self.kept = self.values.len();
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.values.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_values_share_one_copy() {
        let mut strings: Interner<str> = Interner::default();
        let a = strings.get("app");
        let b = strings.get(&String::from("app"));
        assert!(Arc::ptr_eq(&a, &b));
        let mut lists: Interner<[u32]> = Interner::default();
        let mut c: Arc<[u32]> = Arc::from(vec![1, 2]);
        let d = lists.get(&[1, 2]);
        lists.share(&mut c);
        assert!(Arc::ptr_eq(&c, &d));
        let first: Arc<[u32]> = Arc::from(vec![3]);
        let mut e = first.clone();
        lists.share(&mut e);
        assert!(Arc::ptr_eq(&e, &first), "a new value is kept, not copied");
        assert!(Arc::ptr_eq(&lists.get(&[3]), &first));
    }

    #[test]
    fn values_no_one_holds_are_swept_as_the_set_grows() {
        let mut strings: Interner<str> = Interner::default();
        let held: Vec<Arc<str>> = (0..10).map(|i| strings.get(&format!("held-{i}"))).collect();
        for i in 0..10 * MIN_SWEEP {
            strings.get(&format!("gone-{i}"));
        }
        assert!(strings.len() <= MIN_SWEEP, "{} values kept", strings.len());
        for value in &held {
            assert!(Arc::ptr_eq(value, &strings.get(value)), "a held value stays shared");
        }
    }
}
