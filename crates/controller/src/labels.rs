//! A cached pod's labels, kept as a sorted list of shared strings (a map of its own would cost
//! half a kilobyte a pod even for one label), which the core's selector queries match.

use std::collections::BTreeMap;
use std::sync::Arc;

use ferroscale_autoscaler::selector::Labelled;
pub use ferroscale_autoscaler::selector::Query;

use crate::interner::Interner;

/// Labels sorted by key; keys and values are the interner's shared copies.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Labels(Box<[(Arc<str>, Arc<str>)]>);

impl Labels {
    pub fn new(labels: &BTreeMap<String, String>, strings: &mut Interner<str>) -> Self {
        // A BTreeMap iterates in key order: the list is sorted as built.
        Self(labels.iter().map(|(k, v)| (strings.get(k), strings.get(v))).collect())
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        let i = self.0.binary_search_by(|(k, _)| (**k).cmp(key)).ok()?;
        Some(&self.0[i].1)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (&**k, &**v))
    }

    /// The shared strings themselves, for indexes that key by them.
    pub fn shared(&self) -> impl Iterator<Item = &(Arc<str>, Arc<str>)> {
        self.0.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn to_map(&self) -> BTreeMap<String, String> {
        self.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }
}

/// Labels of their own, sharing nothing: for tests and one-off conversions.
impl From<&BTreeMap<String, String>> for Labels {
    fn from(labels: &BTreeMap<String, String>) -> Self {
        Self::new(labels, &mut Interner::default())
    }
}

impl Labelled for Labels {
    fn label(&self, key: &str) -> Option<&str> {
        self.get(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_answer_queries_as_their_map_does() {
        let mut strings = Interner::default();
        let maps: Vec<BTreeMap<String, String>> = [vec![], vec![("app", "web"), ("tier", "front")]]
            .into_iter()
            .map(|pairs| pairs.into_iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
            .collect();
        for text in ["", "app=web", "tier notin (front)", "!zone"] {
            let query =
                Query::new(&ferroscale_autoscaler::selector::parse(text).unwrap_or_else(|e| panic!("{text}: {e}")));
            for map in &maps {
                let labels = Labels::new(map, &mut strings);
                assert_eq!(query.matches(&labels), query.matches(map), "{text} on {map:?}");
                assert_eq!(labels.to_map(), *map);
            }
        }
    }

    #[test]
    fn labels_are_found_by_key_and_share_their_strings() {
        let mut strings = Interner::default();
        let map: BTreeMap<String, String> = [("b", "2"), ("a", "1"), ("c", "1")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let labels = Labels::new(&map, &mut strings);
        assert_eq!(labels.get("a"), Some("1"));
        assert_eq!(labels.get("c"), Some("1"));
        assert_eq!(labels.get("d"), None);
        assert!(Arc::ptr_eq(&labels.0[0].1, &labels.0[2].1), "one copy of \"1\"");
    }
}
