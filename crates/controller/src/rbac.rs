//! Every API call the operator makes, as RBAC sees it. The chart's test checks that its
//! ClusterRole and Role grant each of them; keep this list in step with the code.

/// One permission: verbs on a resource (or `group/resource/subresource`) of an API group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Permission {
    pub group: &'static str,
    pub resource: &'static str,
    pub verbs: &'static [&'static str],
    /// Granted only when the feature is on (a chart value), e.g. reading Secrets.
    pub optional: Option<&'static str>,
}

const fn p(group: &'static str, resource: &'static str, verbs: &'static [&'static str]) -> Permission {
    Permission {
        group,
        resource,
        verbs,
        optional: None,
    }
}

/// Cluster-wide permissions.
pub const CLUSTER: &[Permission] = &[
    // The Autoscaler controller watches Autoscalers and patches their status (reading it back
    // when a conditional write conflicts).
    p("ferroscale.dev", "autoscalers", &["get", "list", "watch"]),
    p("ferroscale.dev", "autoscalers/status", &["get", "patch"]),
    // The PodSet controller watches PodSets, patches status, and sets owner references that
    // block deletion (which needs update on finalizers where that admission plugin runs).
    p("ferroscale.dev", "podsets", &["get", "list", "watch"]),
    p("ferroscale.dev", "podsets/status", &["patch"]),
    p("ferroscale.dev", "podsets/finalizers", &["update"]),
    // One shared pod watch; PodSets create, delete and adopt (patch) pods.
    p("", "pods", &["get", "list", "watch", "create", "delete", "patch"]),
    // Scale targets, through scale only (the default target groups).
    p("apps", "deployments/scale", &["get", "patch"]),
    p("apps", "statefulsets/scale", &["get", "patch"]),
    p("ferroscale.dev", "podsets/scale", &["get", "patch"]),
    // Metric sources.
    p("metrics.k8s.io", "pods", &["list"]),
    p("custom.metrics.k8s.io", "pods/qps", &["get"]),
    p("custom.metrics.k8s.io", "deployments.apps/qps", &["get"]),
    p("external.metrics.k8s.io", "queue_messages_ready", &["list"]),
    // Upstream HPAs (autoscaling/v1, served by every version), so that an Autoscaler never
    // fights one over a target; ReplicaSets, for pods selected by owner through a Deployment.
    p("autoscaling", "horizontalpodautoscalers", &["list", "watch"]),
    p("apps", "replicasets", &["get"]),
    // Events (events.k8s.io/v1; repeated ones are patched into a series).
    p("events.k8s.io", "events", &["create", "patch"]),
    // Prometheus credentials, when Autoscalers name a Secret.
    Permission {
        group: "",
        resource: "secrets",
        verbs: &["get"],
        optional: Some("prometheus.readSecrets"),
    },
];

/// Permissions in the operator's own namespace, for leader election.
pub const LEADER_ELECTION: &[Permission] = &[p(
    "coordination.k8s.io",
    "leases",
    // list and watch: every replica watches the shards' Leases of its group.
    &["get", "list", "watch", "create", "patch", "update"],
)];
