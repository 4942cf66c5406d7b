//! Resource metrics read once per namespace and shared. Upstream's HPA lists PodMetrics once
//! per HPA per period, with the target's selector; with thousands of Autoscalers that is
//! thousands of requests through the API server's aggregation layer to metrics-server every
//! period, each costing far more than the few pods it returns. One list of a namespace's
//! PodMetrics serves every Autoscaler of the namespace that reads within `max_age` of it, each
//! taking the pods its selector matches (metrics-server copies the pods' labels into their
//! PodMetrics, and selects by them itself).
//!
//! A namespace list is not always cheaper: one Autoscaler over 2 pods in a namespace of 20,000
//! would pay for 20,000. In `Auto` mode each namespace goes the cheaper way by a cost model
//! counted over the last sync period: a request costs as much as [`REQUEST_COST_IN_PODS`] pods,
//! per-Autoscaler reads cost a request each plus the pods they select, and namespace reads cost
//! a request plus the namespace's pods, up to once per `max_age`.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferroscale_autoscaler::samples::PodUsage;
use prometheus_client::metrics::counter::Counter;
use tokio::sync::OnceCell;
use tokio::time::Instant;

use crate::kubernetes::MetricsApis;
use crate::namespace_list::NamespaceList;

/// How PodMetrics are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PodMetricsRead {
    /// One list per Autoscaler with its target's selector, as upstream reads.
    Selector,
    /// One list per namespace, shared.
    Namespace,
    /// Whichever of the two costs less in each namespace.
    Auto,
}

/// The fixed cost of one request through the aggregation layer (authentication, the proxy hop,
/// TLS, a response of its own), in pods listed. A rough estimate, not a measurement: the load
/// benchmark compares the two ways only at their extremes.
pub const REQUEST_COST_IN_PODS: usize = 50;

type Listed = Arc<Result<NamespaceList, String>>;

/// One namespace's shared reads and what was asked of it.
#[derive(Debug, Default)]
struct Namespace {
    /// The latest namespace-wide list (or the one in flight) and when it was started.
    list: Option<(Instant, Arc<OnceCell<Listed>>)>,
    /// The pods the last namespace list held.
    pods: Option<usize>,
    /// Each read within the last period: when, and how many pods its selector matched.
    demand: VecDeque<(Instant, usize)>,
    /// The pods of all reads in `demand`, kept as they come and go rather than summed per read.
    selected: usize,
}

impl Namespace {
    fn record(&mut self, at: Instant, pods: usize) {
        self.demand.push_back((at, pods));
        self.selected += pods;
    }

    fn forget_before(&mut self, start: Instant) {
        while let Some((_, pods)) = self.demand.front().copied().filter(|(at, _)| *at < start) {
            self.demand.pop_front();
            self.selected -= pods;
        }
    }

    /// Whether a namespace list costs less than per-Autoscaler lists over a period.
    fn shared_is_cheaper(&self, period: Duration, max_age: Duration) -> bool {
        let reads = self.demand.len();
        if reads < 2 {
            return false;
        }
        let selected = self.selected;
        // Unknown until listed once: try it, and learn.
        let namespace_pods = self.pods.unwrap_or(selected);
        let lists_per_period = (period.as_secs_f64() / max_age.as_secs_f64().max(0.001))
            .ceil()
            .min(reads as f64);
        let shared = lists_per_period * (REQUEST_COST_IN_PODS + namespace_pods) as f64;
        let separate = (reads * REQUEST_COST_IN_PODS + selected) as f64;
        shared < separate
    }
}

/// How many PodMetrics lists went out, of each kind (exported on /metrics).
#[derive(Debug, Clone, Default)]
pub struct ListCounters {
    pub selector: Counter,
    pub namespace: Counter,
}

/// The shared reads of every namespace.
#[derive(Debug)]
pub struct SharedPodMetrics {
    mode: PodMetricsRead,
    counters: ListCounters,
    /// How old a namespace list may be and still serve.
    max_age: Duration,
    /// The window over which demand is counted: the operator's sync period.
    period: Duration,
    namespaces: Mutex<Namespaces>,
}

/// Every namespace read, and when those no longer read were last dropped.
#[derive(Debug, Default)]
struct Namespaces {
    by_name: HashMap<String, Namespace>,
    swept: Option<Instant>,
}

impl SharedPodMetrics {
    pub fn new(mode: PodMetricsRead, max_age: Duration, period: Duration) -> Self {
        Self {
            mode,
            counters: ListCounters::default(),
            max_age,
            period,
            namespaces: Mutex::default(),
        }
    }

    /// Counts the lists on `counters` (the operator's /metrics).
    pub fn with_counters(mut self, counters: ListCounters) -> Self {
        self.counters = counters;
        self
    }

    fn namespaces(&self) -> std::sync::MutexGuard<'_, Namespaces> {
        self.namespaces.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The PodMetrics of the pods `selector` matches in `namespace`.
    pub async fn read(&self, apis: &MetricsApis, namespace: &str, selector: &str) -> Result<Vec<PodUsage>, String> {
        let now = Instant::now();
        let list = {
            let mut namespaces = self.namespaces();
            let period_start = now.checked_sub(self.period).unwrap_or(now);
            // Namespaces no longer read are dropped with their lists, once a period: a sweep
            // at every read would walk every namespace on the evaluation path.
            if namespaces.swept.is_none_or(|at| at <= period_start) {
                namespaces.swept = Some(now);
                namespaces.by_name.retain(|_, n| {
                    n.forget_before(period_start);
                    !n.demand.is_empty() || n.list.as_ref().is_some_and(|(at, _)| at.elapsed() < self.max_age)
                });
            }
            let entry = namespaces.by_name.entry(namespace.to_string()).or_default();
            entry.forget_before(period_start);
            let shared = match self.mode {
                PodMetricsRead::Selector => false,
                PodMetricsRead::Namespace => true,
                PodMetricsRead::Auto => entry.shared_is_cheaper(self.period, self.max_age),
            };
            shared.then(|| match &entry.list {
                Some((started, list)) if started.elapsed() < self.max_age => list.clone(),
                _ => {
                    let list = Arc::new(OnceCell::new());
                    entry.list = Some((now, list.clone()));
                    list
                }
            })
        };
        let usage = match list {
            None => {
                self.counters.selector.inc();
                apis.pod_metrics(namespace, selector).await?
            }
            Some(list) => {
                let listed = list
                    .get_or_init(|| async {
                        self.counters.namespace.inc();
                        Arc::new(apis.namespace_pod_metrics(namespace).await)
                    })
                    .await
                    .clone();
                let list = listed.as_ref().as_ref().map_err(Clone::clone)?;
                if let Some(n) = self.namespaces().by_name.get_mut(namespace) {
                    n.pods = Some(list.len());
                }
                list.select(selector)?
            }
        };
        if let Some(n) = self.namespaces().by_name.get_mut(namespace) {
            n.record(now, usage.len());
        }
        Ok(usage)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn namespace(reads: usize, selected_each: usize, pods: Option<usize>) -> Namespace {
        let now = Instant::now();
        let mut namespace = Namespace {
            pods,
            ..Namespace::default()
        };
        for _ in 0..reads {
            namespace.record(now, selected_each);
        }
        namespace
    }

    #[test]
    fn many_small_autoscalers_share_and_a_lone_one_in_a_big_namespace_does_not() {
        let (period, max_age) = (Duration::from_secs(15), Duration::from_secs(5));
        // 10,000 Autoscalers of 2 pods each in a namespace of 20,000.
        assert!(namespace(10_000, 2, Some(20_000)).shared_is_cheaper(period, max_age));
        // 100 Autoscalers of 10 pods in a namespace of 1,000.
        assert!(namespace(100, 10, Some(1_000)).shared_is_cheaper(period, max_age));
        // 2 Autoscalers of 2 pods in a namespace of 20,000.
        assert!(!namespace(2, 2, Some(20_000)).shared_is_cheaper(period, max_age));
        // One Autoscaler reads alone: nothing to share.
        assert!(!namespace(1, 5_000, Some(5_000)).shared_is_cheaper(period, max_age));
        // Reads older than the period leave the count and the sum alike.
        let mut old = namespace(100, 10, Some(1_000));
        old.forget_before(Instant::now() + Duration::from_secs(1));
        assert_eq!((old.demand.len(), old.selected), (0, 0));
        assert!(!old.shared_is_cheaper(period, max_age));
    }

    #[tokio::test]
    async fn concurrent_reads_of_a_namespace_send_one_list_and_each_gets_its_pods() {
        use http::{Request, Response};
        use kube::client::Body;
        let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let apis = MetricsApis::new(kube::Client::new(service, "default"), Duration::from_secs(5));
        let shared = SharedPodMetrics::new(
            PodMetricsRead::Namespace,
            Duration::from_secs(5),
            Duration::from_secs(15),
        );
        let server = tokio::spawn(async move {
            let mut paths = Vec::new();
            while let Some((request, respond)) = handle.next_request().await {
                paths.push(request.uri().to_string());
                let pod = |name: &str, app: &str| {
                    serde_json::json!({"metadata": {"name": name, "labels": {"app": app}},
                        "timestamp": "2026-12-03T10:00:00Z", "window": "15s",
                        "containers": [{"name": "c", "usage": {"cpu": "50m"}}]})
                };
                let list = serde_json::json!({"items": [pod("a-1", "a"), pod("b-1", "b"), pod("a-2", "a")]});
                respond.send_response(Response::new(Body::from(serde_json::to_vec(&list).unwrap())));
            }
            paths
        });
        let selectors = ["app=a", "app=b"].repeat(5);
        let reads = futures::future::join_all(selectors.iter().map(|s| shared.read(&apis, "shop", s))).await;
        for (selector, read) in selectors.iter().zip(reads) {
            let pods = read.unwrap().len();
            assert_eq!(pods, if *selector == "app=a" { 2 } else { 1 }, "{selector}");
        }
        assert_eq!(shared.counters.namespace.get(), 1);
        drop(apis);
        let paths = server.await.unwrap();
        assert_eq!(paths, ["/apis/metrics.k8s.io/v1beta1/namespaces/shop/pods"]);
    }
}
