//! The Helm chart: `helm lint`, and `helm template` under several value sets, each rendered
//! document parsed into its k8s-openapi type (a round trip that would lose an unknown field
//! fails), RBAC that grants every API call the operator makes, and flags the binary knows.
//! Needs helm (.ci/run installs it); without it, the test says so and skips (but not in CI).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::path::PathBuf;
use std::process::Command;

use ferroscale_controller::rbac::{CLUSTER, LEADER_ELECTION, Permission};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Service, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

fn chart() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../charts/ferroscale")
}

fn helm() -> Option<String> {
    let helm = std::env::var("HELM").unwrap_or_else(|_| "helm".into());
    if Command::new(&helm)
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        return Some(helm);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "helm is not installed; .ci/run installs it"
    );
    println!("skipped: helm is not installed (.ci/install-helm installs it)");
    None
}

fn render(helm: &str, values: &[&str]) -> Vec<Value> {
    render_for(helm, values, "1.28.0")
}

/// `helm template` as for a cluster of `kube_version`.
fn render_for(helm: &str, values: &[&str], kube_version: &str) -> Vec<Value> {
    let mut cmd = Command::new(helm);
    cmd.args([
        "template",
        "ferroscale",
        chart().to_str().unwrap(),
        "--namespace",
        "ops",
        "--kube-version",
        kube_version,
    ]);
    for v in values {
        cmd.args(["--set", v]);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "helm template {values:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    serde_yaml::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .filter(|v: &Value| !v.is_null())
        .collect()
}

fn round_trip<T: DeserializeOwned + Serialize>(doc: &Value) -> T {
    let typed: T =
        serde_json::from_value(doc.clone()).unwrap_or_else(|e| panic!("{} does not parse: {e}", doc["kind"]));
    assert_eq!(
        &serde_json::to_value(&typed).unwrap(),
        doc,
        "{} {} has fields its type does not know",
        doc["kind"],
        doc["metadata"]["name"]
    );
    typed
}

fn grants(rules: &[PolicyRule], need: &Permission) -> bool {
    let (resource, sub) = need
        .resource
        .split_once('/')
        .map_or((need.resource, None), |(r, s)| (r, Some(s)));
    need.verbs.iter().all(|verb| {
        rules.iter().any(|rule| {
            let groups = rule.api_groups.clone().unwrap_or_default();
            let resources = rule.resources.clone().unwrap_or_default();
            let group_ok = groups.iter().any(|g| g == need.group || g == "*");
            let resource_ok = resources.iter().any(|r| {
                r == "*"
                    || r == need.resource
                    || sub.is_some_and(|s| r == &format!("*/{s}") || r == &format!("{resource}/*"))
            });
            let verb_ok = rule.verbs.iter().any(|v| v == verb || v == "*");
            group_ok && resource_ok && verb_ok
        })
    })
}

#[test]
fn helm_lint_passes() {
    let Some(helm) = helm() else { return };
    let out = Command::new(&helm)
        .args(["lint", chart().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn rendered_documents_are_valid_and_grant_what_the_operator_needs() {
    let Some(helm) = helm() else { return };
    let value_sets: [&[&str]; 3] = [
        &[],
        &[
            "serviceMonitor.enabled=true",
            "prometheus.readSecrets=true",
            "watchNamespaces={shop,web}",
            "prometheus.url=http://prom:9090",
            "prometheus.allowedUrls={http://thanos:9090/tenant-a,https://prom.other:9090}",
        ],
        &["leaderElection.enabled=false", "replicaCount=1"],
    ];
    let run_help = String::from_utf8(
        Command::new(env!("CARGO_BIN_EXE_ferroscale"))
            .args(["run", "--help"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    for values in value_sets {
        let docs = render(&helm, values);
        let mut cluster_rules = Vec::new();
        let mut lease_rules = Vec::new();
        let mut kinds = Vec::new();
        for doc in &docs {
            let kind = doc["kind"].as_str().unwrap().to_string();
            match kind.as_str() {
                "ServiceAccount" => drop(round_trip::<ServiceAccount>(doc)),
                "ClusterRole" => cluster_rules.extend(round_trip::<ClusterRole>(doc).rules.unwrap_or_default()),
                "Role" => lease_rules.extend(round_trip::<Role>(doc).rules.unwrap_or_default()),
                "ClusterRoleBinding" => drop(round_trip::<ClusterRoleBinding>(doc)),
                "RoleBinding" => drop(round_trip::<RoleBinding>(doc)),
                "Service" => drop(round_trip::<Service>(doc)),
                "CustomResourceDefinition" => drop(round_trip::<CustomResourceDefinition>(doc)),
                "Deployment" => {
                    let deployment = round_trip::<Deployment>(doc);
                    let container = &deployment.spec.unwrap().template.spec.unwrap().containers[0];
                    let security = container.security_context.clone().unwrap();
                    assert_eq!(security.read_only_root_filesystem, Some(true));
                    assert_eq!(security.allow_privilege_escalation, Some(false));
                    assert_eq!(security.capabilities.unwrap().drop, Some(vec!["ALL".to_string()]));
                    let args = container.args.clone().unwrap_or_default();
                    if values.iter().any(|v| v.starts_with("prometheus.allowedUrls")) {
                        assert!(
                            args.contains(
                                &"--prometheus-allowed-urls=http://thanos:9090/tenant-a,https://prom.other:9090".into()
                            ),
                            "{args:?}"
                        );
                    }
                    for arg in args.iter().skip(1) {
                        let flag = arg.split('=').next().unwrap();
                        assert!(
                            run_help.contains(&format!("{flag} ")) || run_help.contains(&format!("{flag}\n")),
                            "the chart passes {flag}, which `ferroscale run` does not know"
                        );
                    }
                }
                "ServiceMonitor" => {
                    assert_eq!(doc["apiVersion"], "monitoring.coreos.com/v1");
                    assert_eq!(doc["spec"]["endpoints"][0]["path"], "/metrics");
                }
                other => panic!("unexpected kind {other} in the chart"),
            }
            kinds.push(kind);
        }
        for want in [
            "CustomResourceDefinition",
            "ServiceAccount",
            "ClusterRole",
            "ClusterRoleBinding",
            "Deployment",
            "Service",
        ] {
            assert!(kinds.iter().any(|k| k == want), "{values:?}: no {want}");
        }
        let read_secrets = values.contains(&"prometheus.readSecrets=true");
        for need in CLUSTER {
            let granted = grants(&cluster_rules, need);
            match need.optional {
                Some(_) if !read_secrets => assert!(!granted, "{values:?}: {need:?} is granted though not asked for"),
                _ => assert!(granted, "{values:?}: the ClusterRole does not grant {need:?}"),
            }
        }
        let leader_election = !values.contains(&"leaderElection.enabled=false");
        for need in LEADER_ELECTION {
            assert_eq!(
                grants(&lease_rules, need),
                leader_election,
                "{values:?}: leases {need:?}"
            );
        }
    }
}

#[test]
fn shards_are_one_deployment_each_that_the_service_still_selects() {
    let Some(helm) = helm() else { return };
    let docs = render(&helm, &["sharding.shards=3", "replicaCount=2"]);
    let deployments: Vec<Deployment> = docs
        .iter()
        .filter(|d| d["kind"] == "Deployment")
        .map(round_trip::<Deployment>)
        .collect();
    assert_eq!(deployments.len(), 3);
    let service = docs
        .iter()
        .find(|d| d["kind"] == "Service")
        .map(round_trip::<Service>)
        .unwrap();
    let service_selector = service.spec.unwrap().selector.unwrap();
    let mut selectors = Vec::new();
    for (index, deployment) in deployments.iter().enumerate() {
        assert_eq!(
            deployment.metadata.name.as_deref(),
            Some(format!("ferroscale-shard-{index}").as_str())
        );
        let spec = deployment.spec.clone().unwrap();
        assert_eq!(spec.replicas, Some(2));
        let selector = spec.selector.match_labels.unwrap();
        assert_eq!(selector.get("ferroscale.dev/shard"), Some(&index.to_string()));
        let template = spec.template;
        let labels = template.metadata.unwrap().labels.unwrap();
        assert!(selector.iter().all(|(k, v)| labels.get(k) == Some(v)), "{labels:?}");
        assert!(
            service_selector.iter().all(|(k, v)| labels.get(k) == Some(v)),
            "{labels:?}"
        );
        let args = template.spec.unwrap().containers[0].args.clone().unwrap();
        for arg in [
            "--leader-elect".to_string(),
            "--shards=3".into(),
            format!("--shard-index={index}"),
        ] {
            assert!(args.contains(&arg), "{args:?}");
        }
        selectors.push(selector);
    }
    // No Deployment's selector matches another's pods.
    selectors.dedup();
    assert_eq!(selectors.len(), 3);
    // One shard is the plain Deployment, without shard flags.
    let one: Vec<Value> = render(&helm, &[])
        .into_iter()
        .filter(|d| d["kind"] == "Deployment")
        .collect();
    assert_eq!(one.len(), 1);
    assert!(!one[0].to_string().contains("--shards"));
}

#[test]
fn the_chart_installs_the_crds_each_cluster_version_takes() {
    let Some(helm) = helm() else { return };
    for (cluster, crds_for) in [
        ("1.19.0", "1.19"),
        ("1.24.17", "1.24"),
        ("1.25.0", "1.25"),
        ("1.33.1", "1.33"),
    ] {
        let rendered: Vec<Value> = render_for(&helm, &[], cluster)
            .into_iter()
            .filter(|d| d["kind"] == "CustomResourceDefinition")
            .collect();
        let mut expected: Vec<Value> = ferroscale_api::crd::for_kube_version(crds_for.parse().unwrap())
            .iter()
            .map(|c| serde_json::to_value(c).unwrap())
            .collect();
        for crd in &mut expected {
            crd["metadata"]["annotations"] = serde_json::json!({"helm.sh/resource-policy": "keep"});
        }
        assert_eq!(rendered, expected, "the CRDs rendered for Kubernetes {cluster}");
    }
    let none = render_for(&helm, &["crds.install=false"], "1.28.0");
    assert!(none.iter().all(|d| d["kind"] != "CustomResourceDefinition"));
}

/// The metric families the operator exports: those its telemetry registers, as a scrape names
/// them once each labelled family has a sample (an empty one is not written out).
fn exported_families() -> Vec<String> {
    use ferroscale_controller::telemetry::{Direction, DirectionLabels, Telemetry};
    let mut registry = prometheus_client::registry::Registry::default();
    let telemetry = Telemetry::new(&mut registry);
    drop(telemetry.reconcile_timer("autoscaler"));
    telemetry.reconcile_failed("autoscaler", "metrics");
    telemetry.metric_fetched(
        ferroscale_api::MetricSourceType::Resource,
        std::time::Duration::from_millis(1),
        false,
    );
    telemetry
        .scale_actions
        .get_or_create(&DirectionLabels {
            direction: Direction::Up,
        })
        .inc();
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    text.lines()
        .filter_map(|line| line.strip_prefix("# TYPE ")?.split(' ').next())
        .map(String::from)
        .collect()
}

/// The `ferroscale_*` series a query names that the operator does not export (counters are
/// exported as `_total`, histograms as `_bucket`, `_sum` and `_count`), given the `registered`
/// families.
fn unknown_series(expr: &str, registered: &[String]) -> Vec<String> {
    let mut unknown = Vec::new();
    let mut rest = expr;
    while let Some(at) = rest.find("ferroscale_") {
        let name: String = rest[at..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        rest = &rest[at + name.len()..];
        let known = registered.iter().any(|base| {
            ["", "_total", "_bucket", "_sum", "_count"]
                .iter()
                .any(|suffix| name == format!("{base}{suffix}"))
        });
        if !known {
            unknown.push(name);
        }
    }
    unknown
}

#[test]
fn the_dashboard_configmap_carries_the_dashboard_whose_queries_name_exported_series() {
    let Some(helm) = helm() else { return };
    let file = std::fs::read_to_string(chart().join("dashboards/ferroscale.json")).unwrap();
    let registered = exported_families();
    assert!(
        registered.contains(&"ferroscale_autoscaler_current_replicas".to_string()),
        "{registered:?}"
    );
    assert!(
        render(&helm, &[]).iter().all(|d| d["kind"] != "ConfigMap"),
        "the dashboard is off by default"
    );
    let docs = render(&helm, &["grafanaDashboard.enabled=true"]);
    let configmap = docs
        .iter()
        .find(|d| d["kind"] == "ConfigMap")
        .expect("the dashboard ConfigMap");
    let configmap: k8s_openapi::api::core::v1::ConfigMap = round_trip(configmap);
    assert_eq!(configmap.metadata.labels.unwrap()["grafana_dashboard"], "1");
    let data = &configmap.data.unwrap()["ferroscale.json"];
    assert_eq!(
        data.trim(),
        file.trim(),
        "the ConfigMap holds dashboards/ferroscale.json"
    );

    let dashboard: Value = serde_json::from_str(data).unwrap();
    let panels = dashboard["panels"].as_array().unwrap();
    assert!(panels.len() >= 8, "{} panels", panels.len());
    for panel in panels {
        let targets = panel["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "panel {} has no query", panel["title"]);
        for target in targets {
            let expr = target["expr"].as_str().unwrap();
            assert!(expr.contains("ferroscale_"), "{expr}");
            assert_eq!(
                unknown_series(expr, &registered),
                Vec::<String>::new(),
                "in panel {}",
                panel["title"]
            );
        }
    }
    assert_eq!(
        unknown_series("rate(ferroscale_reconcile_total[1m])", &registered),
        ["ferroscale_reconcile_total"],
        "the check sees a misspelt series"
    );
}
