//! A cached pod's labels, kept as a sorted list of shared strings (a map of its own would cost
//! half a kilobyte a pod even for one label), and the selectors that match them.

use std::collections::BTreeMap;
use std::sync::Arc;

use kube::core::{Expression, Selector};

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

/// A label selector, matched against [`Labels`] as Kubernetes matches it.
#[derive(Debug, Clone)]
pub struct Query(Vec<Expression>);

impl Query {
    pub fn new(selector: &Selector) -> Self {
        Self(selector.clone().into_iter().collect())
    }

    pub fn matches(&self, labels: &Labels) -> bool {
        self.0.iter().all(|expression| match expression {
            Expression::In(key, values) => labels.get(key).is_some_and(|v| values.contains(v)),
            Expression::NotIn(key, values) => labels.get(key).is_none_or(|v| !values.contains(v)),
            Expression::Equal(key, value) => labels.get(key) == Some(value.as_str()),
            Expression::NotEqual(key, value) => labels.get(key) != Some(value.as_str()),
            Expression::Exists(key) => labels.get(key).is_some(),
            Expression::DoesNotExist(key) => labels.get(key).is_none(),
        })
    }

    /// The `key=value` and `key in (...)` requirements: a pod must carry one of the values.
    pub fn required(&self) -> impl Iterator<Item = (&str, Vec<&str>)> {
        self.0.iter().filter_map(|expression| match expression {
            Expression::Equal(key, value) => Some((key.as_str(), vec![value.as_str()])),
            Expression::In(key, values) => Some((key.as_str(), values.iter().map(String::as_str).collect())),
            _ => None,
        })
    }

    /// A label every pod the query matches must carry (a requirement with one value), to
    /// index the query by.
    pub fn required_label(&self) -> Option<(&str, &str)> {
        self.required().find_map(|(key, values)| match values[..] {
            [value] => Some((key, value)),
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::SelectorExt;

    #[test]
    fn queries_match_as_kubernetes_selectors_do() {
        let mut strings = Interner::default();
        let maps: Vec<BTreeMap<String, String>> = [
            vec![],
            vec![("app", "web")],
            vec![("app", "web"), ("tier", "front")],
            vec![("app", "api"), ("tier", "back"), ("zone", "a")],
        ]
        .into_iter()
        .map(|pairs| pairs.into_iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
        .collect();
        for text in [
            "",
            "app=web",
            "app!=web",
            "app in (web,api)",
            "app notin (web)",
            "tier",
            "!tier",
            "app=web,tier=front",
            "app,zone notin (b),tier!=front",
        ] {
            let selector = ferroscale_autoscaler::selector::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            let query = Query::new(&selector);
            for map in &maps {
                let labels = Labels::new(map, &mut strings);
                assert_eq!(query.matches(&labels), selector.matches(map), "{text} on {map:?}");
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
