//! A namespace's PodMetrics, kept compact: every string once in one buffer, and the pods, their
//! containers and usage, label sets and indexes in a few flat arrays of offsets. A list of
//! 20,000 pods is then a dozen allocations of a few MiB altogether, instead of a couple of
//! hundred thousand small ones, and a new list every few seconds leaves no scattered
//! survivors in the allocator's pages when the old one goes.
//!
//! Pods are grouped by label set (the pods of one workload share theirs) and the groups
//! indexed by label, so that a selector looks at the groups that carry its `key=value` (or
//! `key in (...)`) rather than at every pod.

use std::collections::HashMap;
use std::time::Duration;

use ferroscale_autoscaler::samples::{ContainerUsage, PodUsage};
use ferroscale_autoscaler::selector::{Labelled, Query};
use jiff::Timestamp;

use crate::pod_metrics::{PodMetricsItem, Text};

/// A run of bytes of [`NamespaceList::text`] (one string), or of entries of one of the list's
/// arrays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Run {
    start: u32,
    end: u32,
}

impl Run {
    /// The run from `start` to `end`, a length the arrays have reached.
    fn to(start: u32, end: usize) -> Result<Self, String> {
        Ok(Self {
            start,
            end: offset(end)?,
        })
    }

    fn range(self) -> std::ops::Range<usize> {
        self.start as usize..self.end as usize
    }
}

#[derive(Debug)]
struct Pod {
    name: Run,
    timestamp: Timestamp,
    window: Duration,
    /// In `containers`.
    containers: Run,
}

#[derive(Debug)]
struct Container {
    name: Run,
    /// In `usage`.
    usage: Run,
}

/// Pods sharing one label set.
#[derive(Debug)]
struct Group {
    /// In `labels`, sorted by key.
    labels: Run,
    /// In `group_pods`, in list order.
    pods: Run,
}

/// The list is too large for 32-bit offsets: over 4 GiB of names, or 4 billion entries.
const TOO_LARGE: &str = "the PodMetrics list is too large to index";

fn offset(position: usize) -> Result<u32, String> {
    u32::try_from(position).map_err(|_| TOO_LARGE.to_string())
}

/// A namespace's PodMetrics, indexed for selectors.
#[derive(Debug, Default)]
pub struct NamespaceList {
    text: String,
    pods: Vec<Pod>,
    containers: Vec<Container>,
    /// Resource name and milli-value.
    usage: Vec<(Run, i64)>,
    /// Every group's labels, group after group.
    labels: Vec<(Run, Run)>,
    groups: Vec<Group>,
    /// Pod positions, group after group.
    group_pods: Vec<u32>,
    /// Each group's labels with the group, sorted by key then value.
    by_label: Vec<(Run, Run, u32)>,
}

/// Builds a [`NamespaceList`] from items as they are parsed.
#[derive(Debug, Default)]
pub struct Builder<'a> {
    list: NamespaceList,
    /// Strings many items repeat (label keys and values, container and resource names),
    /// stored once.
    interned: HashMap<Text<'a>, Run>,
    group_of: HashMap<Box<[(Run, Run)]>, u32>,
    /// Each pod's group.
    pod_groups: Vec<u32>,
    /// The first error; the items after it are skipped.
    error: Option<String>,
}

impl<'a> Builder<'a> {
    fn store(&mut self, text: &str) -> Result<Run, String> {
        let start = offset(self.list.text.len())?;
        self.list.text.push_str(text);
        Run::to(start, self.list.text.len())
    }

    fn intern(&mut self, text: Text<'a>) -> Result<Run, String> {
        if let Some(run) = self.interned.get(&text) {
            return Ok(*run);
        }
        let run = self.store(&text)?;
        self.interned.insert(text, run);
        Ok(run)
    }

    /// Adds one item, in list order.
    pub fn push(&mut self, item: PodMetricsItem<'a>) {
        if self.error.is_none()
            && let Err(error) = self.try_push(item)
        {
            self.error = Some(error);
        }
    }

    fn try_push(&mut self, item: PodMetricsItem<'a>) -> Result<(), String> {
        let name = self.store(&item.name)?;
        let first_container = offset(self.list.containers.len())?;
        for container in item.containers {
            let name = self.intern(container.name)?;
            let first_usage = offset(self.list.usage.len())?;
            for (resource, value) in container.usage {
                let resource = self.intern(resource)?;
                self.list.usage.push((resource, value));
            }
            let usage = Run::to(first_usage, self.list.usage.len())?;
            self.list.containers.push(Container { name, usage });
        }
        let containers = Run::to(first_container, self.list.containers.len())?;
        // Sorted by key already; equal strings share a run, so equal sets have equal runs.
        let labels = item
            .labels
            .into_iter()
            .map(|(k, v)| Ok((self.intern(k)?, self.intern(v)?)))
            .collect::<Result<Box<[_]>, String>>()?;
        let group = match self.group_of.get(&labels) {
            Some(group) => *group,
            None => {
                let group = offset(self.list.groups.len())?;
                let start = offset(self.list.labels.len())?;
                self.list.labels.extend_from_slice(&labels);
                self.list.groups.push(Group {
                    labels: Run::to(start, self.list.labels.len())?,
                    pods: Run { start: 0, end: 0 },
                });
                self.group_of.insert(labels, group);
                group
            }
        };
        self.pod_groups.push(group);
        self.list.pods.push(Pod {
            name,
            timestamp: item.timestamp,
            window: item.window,
            containers,
        });
        Ok(())
    }

    /// The list, its indexes built.
    pub fn finish(self) -> Result<NamespaceList, String> {
        if let Some(error) = self.error {
            return Err(error);
        }
        let mut list = self.list;
        // Each group's pods in one run: count, place the runs, then fill them in list order.
        let mut next = vec![0u32; list.groups.len()];
        for group in &self.pod_groups {
            next[*group as usize] += 1;
        }
        let mut start = 0u32;
        for (group, count) in list.groups.iter_mut().zip(next.iter_mut()) {
            group.pods = Run {
                start,
                end: start + *count,
            };
            (start, *count) = (start + *count, start);
        }
        list.group_pods = vec![0; self.pod_groups.len()];
        for (pod, group) in self.pod_groups.iter().enumerate() {
            let slot = &mut next[*group as usize];
            list.group_pods[*slot as usize] = offset(pod)?;
            *slot += 1;
        }
        let mut by_label = Vec::with_capacity(list.labels.len());
        for (g, group) in list.groups.iter().enumerate() {
            let g = offset(g)?;
            by_label.extend(list.labels[group.labels.range()].iter().map(|(k, v)| (*k, *v, g)));
        }
        by_label.sort_unstable_by(|a, b| (list.str(a.0), list.str(a.1), a.2).cmp(&(list.str(b.0), list.str(b.1), b.2)));
        list.by_label = by_label;
        list.text.shrink_to_fit();
        list.pods.shrink_to_fit();
        list.containers.shrink_to_fit();
        list.usage.shrink_to_fit();
        list.labels.shrink_to_fit();
        list.groups.shrink_to_fit();
        Ok(list)
    }
}

/// One group's labels, as a query reads them.
struct GroupLabels<'l> {
    list: &'l NamespaceList,
    labels: &'l [(Run, Run)],
}

impl Labelled for GroupLabels<'_> {
    fn label(&self, key: &str) -> Option<&str> {
        let i = self.labels.binary_search_by(|(k, _)| self.list.str(*k).cmp(key)).ok()?;
        Some(self.list.str(self.labels[i].1))
    }
}

impl NamespaceList {
    fn str(&self, run: Run) -> &str {
        &self.text[run.range()]
    }

    /// How many pods the list holds.
    pub fn len(&self) -> usize {
        self.pods.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pods.is_empty()
    }

    /// The groups carrying `key=value`.
    fn groups_with<'s>(&'s self, key: &'s str, value: &'s str) -> impl Iterator<Item = u32> + 's {
        let first = self
            .by_label
            .partition_point(|(k, v, _)| (self.str(*k), self.str(*v)) < (key, value));
        self.by_label[first..]
            .iter()
            .take_while(move |(k, v, _)| self.str(*k) == key && self.str(*v) == value)
            .map(|(_, _, group)| *group)
    }

    /// The usage of the pods whose labels `selector` matches, in list order, as metrics-server
    /// selects them.
    pub fn select(&self, selector: &str) -> Result<Vec<PodUsage>, String> {
        let query = Query::new(
            &ferroscale_autoscaler::selector::parse(selector)
                .map_err(|e| format!("unable to fetch metrics from resource metrics API: {e}"))?,
        );
        // The groups one requirement with values allows, when there is one: an index lookup.
        let candidates: Vec<u32> = match query.required().next() {
            Some((key, values)) => values
                .into_iter()
                .flat_map(|value| self.groups_with(key, value))
                .collect(),
            None => (0..offset(self.groups.len())?).collect(),
        };
        let mut picked: Vec<u32> = candidates
            .into_iter()
            .map(|group| &self.groups[group as usize])
            .filter(|group| {
                query.matches(&GroupLabels {
                    list: self,
                    labels: &self.labels[group.labels.range()],
                })
            })
            .flat_map(|group| self.group_pods[group.pods.range()].iter().copied())
            .collect();
        picked.sort_unstable();
        Ok(picked
            .into_iter()
            .map(|pod| self.usage_of(&self.pods[pod as usize]))
            .collect())
    }

    fn usage_of(&self, pod: &Pod) -> PodUsage {
        PodUsage {
            pod: self.str(pod.name).to_string(),
            timestamp: pod.timestamp,
            window: pod.window,
            containers: self.containers[pod.containers.range()]
                .iter()
                .map(|c| ContainerUsage {
                    name: self.str(c.name).to_string(),
                    usage: self.usage[c.usage.range()]
                        .iter()
                        .map(|(resource, value)| (self.str(*resource).to_string(), *value))
                        .collect(),
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pod_metrics::read_list;

    fn list(body: &str) -> NamespaceList {
        let mut builder = Builder::default();
        read_list(body, |item| builder.push(item)).unwrap();
        builder.finish().unwrap()
    }

    fn pod(name: &str, labels: serde_json::Value, cpu: &str) -> serde_json::Value {
        serde_json::json!({"metadata": {"name": name, "labels": labels},
            "timestamp": "2026-12-03T10:00:00Z", "window": "15s",
            "containers": [{"name": "c", "usage": {"cpu": cpu}}, {"name": "sidecar", "usage": {"cpu": "1m", "memory": "1Ki"}}]})
    }

    #[test]
    fn a_selector_picks_its_pods_out_of_the_namespace_list() {
        let body = serde_json::json!({"items": [
            pod("a-1", serde_json::json!({"app": "a", "tier": "web"}), "10m"),
            pod("b-1", serde_json::json!({"app": "b", "tier": "web"}), "20m"),
            pod("a-2", serde_json::json!({"tier": "db", "app": "a"}), "30m"),
            pod("bare", serde_json::json!(null), "40m"),
            pod("a-3", serde_json::json!({"app": "a", "tier": "web"}), "50m"),
        ]})
        .to_string();
        let list = list(&body);
        assert_eq!((list.len(), list.groups.len()), (5, 4), "a-1 and a-3 share a group");
        let picked =
            |selector: &str| -> Vec<String> { list.select(selector).unwrap().into_iter().map(|u| u.pod).collect() };
        assert_eq!(picked("app=a"), ["a-1", "a-2", "a-3"]);
        assert_eq!(picked("app=a,tier=db"), ["a-2"]);
        assert_eq!(picked("app in (a,b),app!=a"), ["b-1"]);
        assert_eq!(picked("tier!=web"), ["a-2", "bare"]);
        assert_eq!(picked("!app"), ["bare"]);
        assert_eq!(picked("app=c"), Vec::<String>::new());
        assert_eq!(
            picked("tier=a"),
            Vec::<String>::new(),
            "a value of another key is no match"
        );
        assert_eq!(picked(""), ["a-1", "b-1", "a-2", "bare", "a-3"]);
        assert!(list.select("app in (").unwrap_err().contains("resource metrics API"));
    }

    #[test]
    fn each_pod_keeps_its_own_usage() {
        let body = serde_json::json!({"items": [
            pod("a-1", serde_json::json!({"app": "a"}), "10m"),
            pod("a-2", serde_json::json!({"app": "a"}), "30m"),
        ]})
        .to_string();
        let mut expected = Vec::new();
        read_list(&body, |item| expected.push(item.usage())).unwrap();
        assert_eq!(list(&body).select("app=a").unwrap(), expected);
        assert_eq!(expected[1].containers[0].usage, [("cpu".to_string(), 30)]);
        assert_eq!(
            expected[1].containers[1].usage,
            [("cpu".to_string(), 1), ("memory".to_string(), 1024 * 1000)]
        );
    }
}
