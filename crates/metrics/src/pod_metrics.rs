//! PodMetrics lists read as they are parsed: each item's name, labels and usage are taken from
//! the response body (borrowed, where a string needs no unescaping) and handed on one by one,
//! skipping the rest of the object. A namespace's list holds thousands of items; kept as owned
//! items first, or as `ObjectMeta` with a map per label set, it costs several times what the
//! index built from it does, and its many small allocations outlive the parse in the
//! allocator's pages.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use ferroscale_api::quantity::milli_value;
use ferroscale_autoscaler::samples::{ContainerUsage, PodUsage};
use jiff::Timestamp;
use serde::Deserialize;
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// A string of the response: borrowed from the body unless it had escapes to undo.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Text<'a>(pub Cow<'a, str>);

impl std::ops::Deref for Text<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl<'de> Visitor<'de> for TextVisitor {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: serde::de::Error>(self, value: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed(value)))
            }
            fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(value.to_string())))
            }
            fn visit_string<E: serde::de::Error>(self, value: String) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(value)))
            }
        }
        deserializer.deserialize_str(TextVisitor)
    }
}

/// A JSON object of strings, as its pairs in the order given.
#[derive(Debug, Default)]
struct Pairs<'a>(Vec<(Text<'a>, Text<'a>)>);

impl<'de: 'a, 'a> Deserialize<'de> for Pairs<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PairsVisitor;
        impl<'de> Visitor<'de> for PairsVisitor {
            type Value = Pairs<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of strings")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Pairs<'de>, A::Error> {
                let mut pairs = Vec::with_capacity(map.size_hint().unwrap_or(0).min(64));
                while let Some(pair) = map.next_entry()? {
                    pairs.push(pair);
                }
                Ok(Pairs(pairs))
            }
        }
        deserializer.deserialize_map(PairsVisitor)
    }
}

/// One container's usage, in milli-units; a value that is not a quantity is left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerItem<'a> {
    pub name: Text<'a>,
    pub usage: Vec<(Text<'a>, i64)>,
}

/// One PodMetrics item: what ferroscale reads of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodMetricsItem<'a> {
    pub name: Text<'a>,
    /// The pod's labels (metrics-server copies them), sorted by key, each key once.
    pub labels: Vec<(Text<'a>, Text<'a>)>,
    pub timestamp: Timestamp,
    /// Zero when absent or not a duration.
    pub window: Duration,
    pub containers: Vec<ContainerItem<'a>>,
}

impl PodMetricsItem<'_> {
    /// The usage as the decision core takes it.
    pub fn usage(&self) -> PodUsage {
        PodUsage {
            pod: self.name.to_string(),
            timestamp: self.timestamp,
            window: self.window,
            containers: self
                .containers
                .iter()
                .map(|c| ContainerUsage {
                    name: c.name.to_string(),
                    usage: c.usage.iter().map(|(r, v)| (r.to_string(), *v)).collect(),
                })
                .collect(),
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for PodMetricsItem<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize, Default)]
        struct Metadata<'a> {
            #[serde(default, borrow)]
            name: Option<Text<'a>>,
            #[serde(default, borrow)]
            labels: Option<Pairs<'a>>,
        }
        #[derive(Deserialize)]
        struct Container<'a> {
            #[serde(borrow)]
            name: Text<'a>,
            #[serde(default, borrow)]
            usage: Option<Pairs<'a>>,
        }
        #[derive(Deserialize)]
        struct Raw<'a> {
            #[serde(default, borrow)]
            metadata: Metadata<'a>,
            timestamp: Timestamp,
            #[serde(default, borrow)]
            window: Option<Text<'a>>,
            #[serde(default, borrow)]
            containers: Option<Vec<Container<'a>>>,
        }
        let raw = Raw::deserialize(deserializer)?;
        let window = raw
            .window
            .and_then(|w| ferroscale_api::duration::parse(&w).ok())
            .unwrap_or(Duration::ZERO);
        let containers = raw
            .containers
            .unwrap_or_default()
            .into_iter()
            .map(|c| ContainerItem {
                name: c.name,
                usage: c
                    .usage
                    .unwrap_or_default()
                    .0
                    .into_iter()
                    .filter_map(|(resource, q)| milli_value(&q).ok().map(|v| (resource, v)))
                    .collect(),
            })
            .collect();
        let mut labels = raw.metadata.labels.unwrap_or_default().0;
        // Stable: of a key given twice, the first stays.
        labels.sort_by(|a, b| a.0.cmp(&b.0));
        labels.dedup_by(|later, earlier| later.0 == earlier.0);
        Ok(Self {
            name: raw.metadata.name.unwrap_or(Text(Cow::Borrowed(""))),
            labels,
            timestamp: raw.timestamp,
            window,
            containers,
        })
    }
}

/// Parses a PodMetricsList in `body`, handing `each` its items one by one as they are read.
/// Everything but `items` is skipped.
pub fn read_list<'a>(body: &'a str, each: impl FnMut(PodMetricsItem<'a>)) -> Result<(), serde_json::Error> {
    let mut deserializer = serde_json::Deserializer::from_str(body);
    deserializer.deserialize_map(ListVisitor(each))?;
    deserializer.end()
}

struct ListVisitor<F>(F);

impl<'de, F: FnMut(PodMetricsItem<'de>)> Visitor<'de> for ListVisitor<F> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a PodMetricsList")
    }
    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<Text<'de>>()? {
            if &*key == "items" {
                map.next_value_seed(Items(&mut self.0))?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

/// The `items` array, each element handed on as soon as it is parsed.
struct Items<'f, F>(&'f mut F);

impl<'de, F: FnMut(PodMetricsItem<'de>)> DeserializeSeed<'de> for Items<'_, F> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_option(self)
    }
}

impl<'de, F: FnMut(PodMetricsItem<'de>)> Visitor<'de> for Items<'_, F> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of PodMetrics")
    }
    /// `"items": null` is an empty list, as Go writes a nil slice.
    fn visit_none<E: serde::de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(item) = seq.next_element::<PodMetricsItem<'de>>()? {
            (self.0)(item);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(body: &str) -> Result<Vec<PodMetricsItem<'_>>, serde_json::Error> {
        let mut items = Vec::new();
        read_list(body, |item| items.push(item))?;
        Ok(items)
    }

    #[test]
    fn an_item_keeps_its_labels_and_usage_and_nothing_else() {
        let body = serde_json::json!({
            "kind": "PodMetricsList", "apiVersion": "metrics.k8s.io/v1beta1", "metadata": {},
            "items": [{
                "metadata": {"name": "web-1", "namespace": "shop", "creationTimestamp": "2026-12-03T09:00:00Z",
                             "labels": {"tier": "front", "app": "web"}, "annotations": {"a": "b"}},
                "timestamp": "2026-12-03T10:00:00Z", "window": "15s",
                "containers": [
                    {"name": "app", "usage": {"cpu": "250m", "memory": "64Mi"}},
                    {"name": "sidecar", "usage": {"cpu": "not a quantity"}},
                    {"name": "idle", "usage": null}
                ]
            }]
        })
        .to_string();
        let items = items(&body).unwrap();
        assert_eq!(items.len(), 1);
        let item = &items[0];
        let labels: Vec<(&str, &str)> = item.labels.iter().map(|(k, v)| (&**k, &**v)).collect();
        assert_eq!(labels, [("app", "web"), ("tier", "front")]);
        assert!(matches!(item.name.0, Cow::Borrowed("web-1")), "taken from the body");
        let usage = item.usage();
        assert_eq!(usage.pod, "web-1");
        assert_eq!(usage.window, Duration::from_secs(15));
        assert_eq!(usage.timestamp, "2026-12-03T10:00:00Z".parse::<Timestamp>().unwrap());
        let containers: Vec<(&str, Vec<(&str, i64)>)> = usage
            .containers
            .iter()
            .map(|c| (c.name.as_str(), c.usage.iter().map(|(r, v)| (r.as_str(), *v)).collect()))
            .collect();
        assert_eq!(
            containers,
            [
                ("app", vec![("cpu", 250), ("memory", 64 * 1024 * 1024 * 1000)]),
                ("sidecar", vec![]),
                ("idle", vec![])
            ]
        );
    }

    #[test]
    fn escaped_strings_absent_fields_and_repeated_keys_are_read_as_the_server_meant() {
        let body = r#"{"items": [
            {"metadata": {"name": "a\u002d1", "labels": {"app": "x", "app": "y"}}, "timestamp": "2026-12-03T10:00:00Z"}
        ]}"#;
        let items = items(body).unwrap();
        let item = &items[0];
        assert_eq!(&*item.name, "a-1");
        assert_eq!(item.labels.len(), 1);
        assert_eq!(&*item.labels[0].1, "x");
        assert_eq!((item.window, item.containers.len()), (Duration::ZERO, 0));
        assert!(self::items(r#"{"items": null}"#).unwrap().is_empty());
        assert!(self::items(r#"{"kind": "PodMetricsList"}"#).unwrap().is_empty());
    }

    #[test]
    fn what_is_not_a_pod_metrics_list_is_refused() {
        for body in [
            "",
            "[]",
            r#"{"items": [{"metadata": {"name": "x"}}]}"#,
            r#"{"items": [{"timestamp": "yesterday"}]}"#,
            r#"{"items": []} trailing"#,
            r#"{"items": [{"timestamp": "2026-12-03T10:00:00Z", "containers": [{"usage": {}}]}]}"#,
        ] {
            assert!(items(body).is_err(), "{body:?}");
        }
    }
}
