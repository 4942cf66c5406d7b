//! The rules the API server cannot enforce on every version (quantities, cross-field rules on
//! servers without CEL), checked in Rust so the controller and `explain` can name each problem.

use std::fmt;

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use crate::autoscaler::*;
use crate::podset::PodSetSpec;
use crate::quantity::ParsedQuantity;

/// One problem with an object, and where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// JSON path of the offending field, e.g. `spec.metrics[0].resource.target`.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// All problems found, in field order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FieldErrors(pub Vec<FieldError>);

impl fmt::Display for FieldErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&parts.join("; "))
    }
}

impl std::error::Error for FieldErrors {}

#[derive(Default)]
struct Collector(Vec<FieldError>);

impl Collector {
    fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError {
            path: path.into(),
            message: message.into(),
        });
    }

    fn finish(self) -> Result<(), FieldErrors> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(FieldErrors(self.0))
        }
    }

    fn positive_quantity(&mut self, path: String, quantity: &Quantity) {
        match ParsedQuantity::parse(&quantity.0) {
            Err(e) => self.push(path, e.to_string()),
            Ok(q) if q.is_negative() || q.is_zero() => self.push(path, "must be positive"),
            Ok(_) => {}
        }
    }

    fn selector(&mut self, path: String, selector: &LabelSelector) {
        for (i, req) in selector.match_expressions.iter().flatten().enumerate() {
            let at = format!("{path}.matchExpressions[{i}]");
            let has_values = req.values.as_ref().is_some_and(|v| !v.is_empty());
            match req.operator.as_str() {
                "In" | "NotIn" if !has_values => {
                    self.push(format!("{at}.values"), "must be non-empty when operator is In or NotIn")
                }
                "Exists" | "DoesNotExist" if has_values => self.push(
                    format!("{at}.values"),
                    "must be empty when operator is Exists or DoesNotExist",
                ),
                "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
                other => self.push(
                    format!("{at}.operator"),
                    format!("unsupported operator {other:?}: must be In, NotIn, Exists or DoesNotExist"),
                ),
            }
            if req.key.is_empty() {
                self.push(format!("{at}.key"), "must not be empty");
            }
        }
    }
}

impl AutoscalerSpec {
    /// Checks every rule of the spec; returns all problems, each with its field path.
    pub fn validate(&self) -> Result<(), FieldErrors> {
        let mut c = Collector::default();
        if self.scale_target_ref.kind.is_empty() {
            c.push("spec.scaleTargetRef.kind", "must not be empty");
        }
        if self.scale_target_ref.name.is_empty() {
            c.push("spec.scaleTargetRef.name", "must not be empty");
        }
        let metrics = self.metrics.as_deref().unwrap_or_default();
        let min = self.min_replicas_or_default();
        if min < 0 {
            c.push("spec.minReplicas", "must be greater than or equal to 0");
        } else if min == 0
            && !metrics.iter().any(|m| {
                matches!(
                    m.type_,
                    MetricSourceType::Object | MetricSourceType::External | MetricSourceType::Prometheus
                )
            })
        {
            c.push(
                "spec.minReplicas",
                "may be 0 only when at least one Object, External or Prometheus metric is configured",
            );
        }
        if self.max_replicas < 1 {
            c.push("spec.maxReplicas", "must be greater than 0");
        }
        if self.max_replicas < min {
            c.push(
                "spec.maxReplicas",
                format!("must be greater than or equal to minReplicas ({min})"),
            );
        }
        if metrics.len() > 100 {
            c.push("spec.metrics", "must have at most 100 items");
        }
        for (i, metric) in metrics.iter().enumerate() {
            validate_metric(&mut c, &format!("spec.metrics[{i}]"), metric, self.sync_period_seconds);
        }
        if let Some(period) = self.sync_period_seconds
            && !(1..=3600).contains(&period)
        {
            c.push("spec.syncPeriodSeconds", "must be between 1 and 3600");
        }
        if let Some(behavior) = &self.behavior {
            for (rules, name) in [(&behavior.scale_up, "scaleUp"), (&behavior.scale_down, "scaleDown")] {
                if let Some(rules) = rules {
                    validate_rules(&mut c, &format!("spec.behavior.{name}"), rules);
                }
            }
        }
        validate_names(&mut c, metrics);
        for (i, schedule) in self.schedules.iter().flatten().enumerate() {
            validate_schedule(&mut c, &format!("spec.schedules[{i}]"), schedule, i, self);
        }
        if let Some(formula) = &self.formula {
            validate_target(
                &mut c,
                "spec.formula.target",
                &formula.target,
                &[MetricTargetType::Value, MetricTargetType::AverageValue],
            );
            if let Some(threshold) = &formula.activation_threshold {
                match ParsedQuantity::parse(&threshold.0) {
                    Err(e) => c.push("spec.formula.activationThreshold", e.to_string()),
                    Ok(q) if q.is_negative() => c.push("spec.formula.activationThreshold", "must not be negative"),
                    Ok(_) => {}
                }
            }
            if !metrics.iter().any(|m| m.name.is_some()) {
                c.push("spec.formula", "needs at least one metric with a name to refer to");
            }
        }
        c.finish()
    }
}

/// Whether `name` is a DNS label: lower-case letters, digits and `-`, starting with a letter
/// (so that a formula can tell it from a number), at most 63 characters.
pub fn is_metric_name(name: &str) -> bool {
    name.len() <= 63
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && !name.ends_with('-')
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn validate_names(c: &mut Collector, metrics: &[MetricSpec]) {
    let mut seen = std::collections::HashSet::new();
    for (i, m) in metrics.iter().enumerate() {
        let Some(name) = &m.name else { continue };
        let at = format!("spec.metrics[{i}].name");
        if !is_metric_name(name) {
            c.push(
                at,
                format!("{name:?} must be a DNS label starting with a letter (a-z, 0-9 and '-', at most 63)"),
            );
        } else if !seen.insert(name.as_str()) {
            c.push(at, format!("{name:?} names another metric already"));
        }
    }
}

fn validate_schedule(c: &mut Collector, path: &str, s: &Schedule, index: usize, spec: &AutoscalerSpec) {
    if s.name.is_empty() {
        c.push(format!("{path}.name"), "must not be empty");
    } else if spec
        .schedules
        .iter()
        .flatten()
        .take(index)
        .any(|other| other.name == s.name)
    {
        c.push(
            format!("{path}.name"),
            format!("{:?} names another schedule already", s.name),
        );
    }
    if let (Some(min), Some(max)) = (s.min_replicas, s.max_replicas)
        && min > max
    {
        c.push(
            format!("{path}.maxReplicas"),
            format!("must be greater than or equal to minReplicas ({min})"),
        );
    }
    if s.min_replicas.is_some_and(|m| m < 0) {
        c.push(format!("{path}.minReplicas"), "must be greater than or equal to 0");
    }
    if s.max_replicas.is_some_and(|m| m < 1) {
        c.push(format!("{path}.maxReplicas"), "must be greater than 0");
    }
    if s.min_replicas == Some(0) && spec.min_replicas_or_default() != 0 {
        c.push(
            format!("{path}.minReplicas"),
            "may be 0 only when spec.minReplicas is 0",
        );
    }
}

fn validate_predictive(c: &mut Collector, path: &str, p: &Predictive, sync_period_seconds: Option<i32>) {
    let mut duration = |field: &str, text: &Option<String>| -> Option<std::time::Duration> {
        let text = text.as_ref()?;
        match crate::duration::parse(text) {
            Ok(d) if d.as_secs() == 0 => {
                c.push(format!("{path}.{field}"), "must be at least 1s");
                None
            }
            Ok(d) if d.as_secs() > MAX_PREDICTIVE_SECONDS => {
                c.push(format!("{path}.{field}"), "must be at most 31 days");
                None
            }
            Ok(d) => Some(d),
            Err(e) => {
                c.push(format!("{path}.{field}"), e);
                None
            }
        }
    };
    let history = duration("history", &p.history);
    let look_ahead = duration("lookAhead", &p.look_ahead);
    let season = duration("season", &p.season);
    let window = duration("window", &p.window);
    if p.model == PredictiveModel::LinearRegression && season.is_some() {
        c.push(
            format!("{path}.season"),
            "applies to SeasonalNaive and HoltWinters, not LinearRegression",
        );
    }
    if p.model != PredictiveModel::LinearRegression && window.is_some() {
        c.push(format!("{path}.window"), "applies to LinearRegression only");
    }
    let season = season.unwrap_or(p.season_or_default());
    if p.model != PredictiveModel::LinearRegression {
        let step = sync_period_seconds.map_or(1, |s| s.max(1) as u64);
        if season.as_secs() < 2 * step {
            c.push(format!("{path}.season"), "must span at least two sync periods");
        }
        if let Some(look_ahead) = look_ahead
            && look_ahead >= season
        {
            c.push(format!("{path}.lookAhead"), "must be shorter than the season");
        }
    }
    if let Some(history) = history {
        let needed = p.history_needed();
        if history < needed {
            c.push(
                format!("{path}.history"),
                format!(
                    "must be at least {}s for this model ({})",
                    needed.as_secs(),
                    p.history_rule()
                ),
            );
        }
    }
    if p.max_error_percent.is_some_and(|e| !(1..=1000).contains(&e)) {
        c.push(format!("{path}.maxErrorPercent"), "must be between 1 and 1000");
    }
}

/// The longest duration a predictive field may hold: a range query over more is refused.
const MAX_PREDICTIVE_SECONDS: u64 = 31 * 24 * 3600;

/// The fallback and activation threshold of the member that `type` names.
fn validate_extensions(c: &mut Collector, path: &str, m: &MetricSpec) {
    let member = match m.type_ {
        MetricSourceType::Resource => "resource",
        MetricSourceType::ContainerResource => "containerResource",
        MetricSourceType::Pods => "pods",
        MetricSourceType::Object => "object",
        MetricSourceType::External => "external",
        MetricSourceType::Prometheus => "prometheus",
        MetricSourceType::Unknown => return,
    };
    if let Some(fallback) = m.fallback() {
        if fallback.replicas < 1 {
            c.push(format!("{path}.{member}.fallback.replicas"), "must be at least 1");
        }
        if fallback.failure_duration_seconds.is_some_and(|s| s < 1) {
            c.push(
                format!("{path}.{member}.fallback.failureDurationSeconds"),
                "must be at least 1",
            );
        }
    }
    if let Some(threshold) = m.activation_threshold() {
        let at = format!("{path}.{member}.activationThreshold");
        match ParsedQuantity::parse(&threshold.0) {
            Err(e) => c.push(at, e.to_string()),
            Ok(q) if q.is_negative() => c.push(at, "must not be negative"),
            Ok(_) => {}
        }
    }
}

fn validate_metric(c: &mut Collector, path: &str, m: &MetricSpec, sync_period_seconds: Option<i32>) {
    validate_extensions(c, path, m);
    if m.type_ == MetricSourceType::Unknown {
        c.push(
            format!("{path}.type"),
            "must be one of Resource, ContainerResource, Pods, Object, External or Prometheus",
        );
        return;
    }
    let members = [
        (MetricSourceType::Resource, "resource", m.resource.is_some()),
        (
            MetricSourceType::ContainerResource,
            "containerResource",
            m.container_resource.is_some(),
        ),
        (MetricSourceType::Pods, "pods", m.pods.is_some()),
        (MetricSourceType::Object, "object", m.object.is_some()),
        (MetricSourceType::External, "external", m.external.is_some()),
        (MetricSourceType::Prometheus, "prometheus", m.prometheus.is_some()),
    ];
    for (ty, member, set) in members {
        if ty == m.type_ && !set {
            c.push(
                format!("{path}.{member}"),
                format!("must be set when type is {}", ty.as_str()),
            );
        } else if ty != m.type_ && set {
            c.push(
                format!("{path}.{member}"),
                format!("must not be set when type is {}", m.type_.as_str()),
            );
        }
    }
    use MetricTargetType::*;
    if let (MetricSourceType::Resource, Some(r)) = (m.type_, &m.resource) {
        check_resource_name(c, &format!("{path}.resource.name"), &r.name);
        validate_target(
            c,
            &format!("{path}.resource.target"),
            &r.target,
            &[Utilization, AverageValue],
        );
    }
    if let (MetricSourceType::ContainerResource, Some(r)) = (m.type_, &m.container_resource) {
        check_resource_name(c, &format!("{path}.containerResource.name"), &r.name);
        if r.container.is_empty() {
            c.push(format!("{path}.containerResource.container"), "must not be empty");
        }
        validate_target(
            c,
            &format!("{path}.containerResource.target"),
            &r.target,
            &[Utilization, AverageValue],
        );
    }
    if let (MetricSourceType::Pods, Some(p)) = (m.type_, &m.pods) {
        validate_identifier(c, &format!("{path}.pods.metric"), &p.metric);
        validate_target(c, &format!("{path}.pods.target"), &p.target, &[AverageValue]);
    }
    if let (MetricSourceType::Object, Some(o)) = (m.type_, &m.object) {
        if o.described_object.kind.is_empty() {
            c.push(format!("{path}.object.describedObject.kind"), "must not be empty");
        }
        if o.described_object.name.is_empty() {
            c.push(format!("{path}.object.describedObject.name"), "must not be empty");
        }
        validate_identifier(c, &format!("{path}.object.metric"), &o.metric);
        validate_target(c, &format!("{path}.object.target"), &o.target, &[Value, AverageValue]);
    }
    if let (MetricSourceType::External, Some(e)) = (m.type_, &m.external) {
        validate_identifier(c, &format!("{path}.external.metric"), &e.metric);
        validate_target(c, &format!("{path}.external.target"), &e.target, &[Value, AverageValue]);
    }
    if let (MetricSourceType::Prometheus, Some(p)) = (m.type_, &m.prometheus) {
        if p.query.trim().is_empty() {
            c.push(format!("{path}.prometheus.query"), "must not be empty");
        }
        if let Some(address) = &p.server_address
            && !(address.starts_with("http://") || address.starts_with("https://"))
        {
            c.push(
                format!("{path}.prometheus.serverAddress"),
                format!("{address:?} must be an http:// or https:// URL"),
            );
        }
        validate_target(
            c,
            &format!("{path}.prometheus.target"),
            &p.target,
            &[Value, AverageValue],
        );
        if let Some(predictive) = &p.predictive {
            validate_predictive(
                c,
                &format!("{path}.prometheus.predictive"),
                predictive,
                sync_period_seconds,
            );
        }
    }
}

fn check_resource_name(c: &mut Collector, path: &str, name: &str) {
    if name.is_empty() {
        c.push(path, "must not be empty");
    }
}

fn validate_identifier(c: &mut Collector, path: &str, id: &MetricIdentifier) {
    if id.name.is_empty() {
        c.push(format!("{path}.name"), "must not be empty");
    }
    if let Some(selector) = &id.selector {
        c.selector(format!("{path}.selector"), selector);
    }
}

fn validate_target(c: &mut Collector, path: &str, t: &MetricTarget, allowed: &[MetricTargetType]) {
    let name = |ty: MetricTargetType| match ty {
        MetricTargetType::Utilization => "Utilization",
        MetricTargetType::Value => "Value",
        MetricTargetType::AverageValue => "AverageValue",
    };
    if !allowed.contains(&t.type_) {
        let names: Vec<&str> = allowed.iter().map(|ty| name(*ty)).collect();
        c.push(
            format!("{path}.type"),
            format!(
                "{} is not supported here: must be {}",
                name(t.type_),
                names.join(" or ")
            ),
        );
    }
    match (t.type_, &t.value, &t.average_value, t.average_utilization) {
        (MetricTargetType::Utilization, _, _, None) => c.push(
            format!("{path}.averageUtilization"),
            "must be set when type is Utilization",
        ),
        (MetricTargetType::Value, None, _, _) => c.push(format!("{path}.value"), "must be set when type is Value"),
        (MetricTargetType::AverageValue, _, None, _) => {
            c.push(format!("{path}.averageValue"), "must be set when type is AverageValue")
        }
        _ => {}
    }
    if let Some(v) = &t.value {
        c.positive_quantity(format!("{path}.value"), v);
    }
    if let Some(v) = &t.average_value {
        c.positive_quantity(format!("{path}.averageValue"), v);
    }
    if let Some(u) = t.average_utilization
        && u < 1
    {
        c.push(format!("{path}.averageUtilization"), "must be greater than 0");
    }
}

fn validate_rules(c: &mut Collector, path: &str, rules: &ScalingRules) {
    if let Some(w) = rules.stabilization_window_seconds
        && !(0..=3600).contains(&w)
    {
        c.push(
            format!("{path}.stabilizationWindowSeconds"),
            "must be between 0 and 3600",
        );
    }
    if let Some(policies) = &rules.policies {
        if policies.is_empty() {
            c.push(format!("{path}.policies"), "must hold at least one policy when set");
        }
        for (i, p) in policies.iter().enumerate() {
            if p.value < 1 {
                c.push(format!("{path}.policies[{i}].value"), "must be greater than 0");
            }
            if !(1..=1800).contains(&p.period_seconds) {
                c.push(
                    format!("{path}.policies[{i}].periodSeconds"),
                    "must be between 1 and 1800",
                );
            }
        }
    }
    if let Some(t) = &rules.tolerance {
        match ParsedQuantity::parse(&t.0) {
            Err(e) => c.push(format!("{path}.tolerance"), e.to_string()),
            Ok(q) if q.is_negative() => c.push(format!("{path}.tolerance"), "must not be negative"),
            Ok(_) => {}
        }
    }
}

impl PodSetSpec {
    /// Checks the spec; in particular that the selector is usable and selects the template.
    pub fn validate(&self) -> Result<(), FieldErrors> {
        let mut c = Collector::default();
        if self.replicas < 0 {
            c.push("spec.replicas", "must be greater than or equal to 0");
        }
        let empty = self.selector.match_labels.as_ref().is_none_or(|l| l.is_empty())
            && self.selector.match_expressions.as_ref().is_none_or(|e| e.is_empty());
        if empty {
            c.push(
                "spec.selector",
                "must not be empty: a PodSet would otherwise own every pod in its namespace",
            );
        }
        c.selector("spec.selector".into(), &self.selector);
        let template = self.template.spec();
        if c.0.is_empty() {
            let labels = template
                .metadata
                .as_ref()
                .and_then(|m| m.labels.clone())
                .unwrap_or_default();
            match kube::core::Selector::try_from(self.selector.clone()) {
                Ok(selector) if !kube::core::SelectorExt::matches(&selector, &labels) => c.push(
                    "spec.template.metadata.labels",
                    format!("do not match spec.selector ({selector}): the PodSet could never see the pods it creates"),
                ),
                Ok(_) => {}
                Err(e) => c.push("spec.selector", e.0),
            }
        }
        if template.spec.as_ref().is_none_or(|s| s.containers.is_empty()) {
            c.push("spec.template.spec.containers", "must hold at least one container");
        }
        c.finish()
    }
}
